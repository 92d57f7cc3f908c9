//! A connection shaped so that the frames ready in one pass of h2 leave in one
//! write: each connection the server accepts (and the load generator's).
//!
//! h2 copies a DATA frame into its write buffer only when the frame is small:
//! under 256 bytes on a transport that takes vectored writes, under 1 KiB on
//! one that does not. A larger frame is chained to the buffer instead, and h2
//! flushes before it buffers anything else. A ValidateToken answer with its
//! claims is ~0.5–1 KiB, so on a plain socket each answer cost one write for
//! its HEADERS and DATA and another for its trailers, and answers to calls
//! that finished together never shared a write. Each write on a socket runs
//! the peer's receive path and may wake it, which made up a large part of a
//! call's CPU when calls arrive one by one (see BENCHMARKS.md).
//!
//! [`Coalesced`] reports no vectored writes, so h2 copies answers under 1 KiB
//! into its buffer, and keeps a write buffer of its own, so the head and the
//! payload of a larger frame, which h2 then writes apart, still leave in one
//! system call at the flush. That buffer costs 16 KiB per connection, as
//! much as h2's own.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::io::{AsyncRead, AsyncWrite, BufWriter, ReadBuf};
use tokio_stream::Stream;
use tonic::transport::server::Connected;

/// Bytes written before a flush that are kept for it; h2's own buffer is
/// 16 KiB, so a full one goes straight to the socket.
const WRITE_BUFFER_BYTES: usize = 16 * 1024;

/// A connection whose writes are buffered until h2 flushes.
pub struct Coalesced<T> {
    io: BufWriter<T>,
}

impl<T: AsyncRead + AsyncWrite> Coalesced<T> {
    pub fn new(io: T) -> Self {
        Self {
            io: BufWriter::with_capacity(WRITE_BUFFER_BYTES, io),
        }
    }
}

/// Each connection `incoming` accepts, wrapped in [`Coalesced`].
pub fn coalesced<T: AsyncRead + AsyncWrite>(
    incoming: impl Stream<Item = io::Result<T>>,
) -> impl Stream<Item = io::Result<Coalesced<T>>> {
    tokio_stream::StreamExt::map(incoming, |accepted| accepted.map(Coalesced::new))
}

impl<T: Connected + AsyncWrite> Connected for Coalesced<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.get_ref().connect_info()
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Coalesced<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Coalesced<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    /// False on purpose: it is what makes h2 copy mid-sized frames into its
    /// buffer (see the module comment).
    fn is_write_vectored(&self) -> bool {
        false
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    use super::*;

    /// Reads what has arrived at `peer` within a short wait.
    async fn arrived(peer: &mut tokio::io::DuplexStream) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0u8; 64 * 1024];
        while let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(50), peer.read(&mut buf)).await
        {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        got
    }

    #[tokio::test]
    async fn writes_leave_together_at_the_flush_and_none_is_lost() {
        let (ours, mut peer) = duplex(256 * 1024);
        let mut conn = Coalesced::new(ours);
        assert!(!conn.is_write_vectored());
        conn.write_all(b"HEADERS").await.unwrap();
        conn.write_all(&[7u8; 900]).await.unwrap();
        conn.write_all(b"TRAILERS").await.unwrap();
        assert!(
            arrived(&mut peer).await.is_empty(),
            "nothing may leave before the flush"
        );
        conn.flush().await.unwrap();
        let got = arrived(&mut peer).await;
        let mut expected = b"HEADERS".to_vec();
        expected.extend_from_slice(&[7u8; 900]);
        expected.extend_from_slice(b"TRAILERS");
        assert_eq!(got, expected);
    }

    #[tokio::test]
    async fn a_write_larger_than_the_buffer_goes_through_whole_and_in_order() {
        let (ours, mut peer) = duplex(256 * 1024);
        let mut conn = Coalesced::new(ours);
        let large: Vec<u8> = (0..3 * WRITE_BUFFER_BYTES).map(|i| i as u8).collect();
        conn.write_all(b"head").await.unwrap();
        conn.write_all(&large).await.unwrap();
        conn.shutdown().await.unwrap();
        let mut got = Vec::new();
        peer.read_to_end(&mut got).await.unwrap();
        assert_eq!(&got[..4], b"head");
        assert_eq!(&got[4..], &large[..]);
    }
}
