//! One accepted connection with its deadlines, and the shared limits it counts against.
//!
//! The deadlines are checked where the connection's own task already looks:
//! at the start of every read and write. Each is a tokio timer polled there,
//! so when it fires it wakes that task, and the next read returns `TimedOut`;
//! the protocol above (h2, hyper) treats that as a broken connection and
//! drops it with every stream it holds. No task per connection, no sweeper.
//!
//! The stall bound is for answers nobody reads. A peer that opens streams
//! with a zero flow-control window (or never reads its socket) leaves every
//! answer queued in the server, ~6 KB a stream, for as long as it likes: the
//! upper layer counts those answers here ([`UnreadAnswer`]), and a connection
//! that has answers waiting and delivers none of them for `stall` is closed.

use std::{
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::{OwnedSemaphorePermit, Semaphore},
    time::{Instant, Sleep},
};

use super::ConnectionObserver;

/// The deadlines of one listener's connections; `None` turns one off.
#[derive(Debug, Clone, Copy, Default)]
pub struct Deadlines {
    /// The peer's first bytes (HTTP/2 preface, TLS ClientHello, an HTTP request) within this.
    pub first_byte: Option<Duration>,
    /// Some byte from the peer at least this often.
    pub idle: Option<Duration>,
    /// Closed this long after accept, whatever it does (a slow-loris bound).
    pub lifetime: Option<Duration>,
    /// With answers waiting, one of them delivered at least this often.
    pub stall: Option<Duration>,
}

/// What a listener's connections share: the connection slots and the count of
/// answers written but not yet read by their peers.
pub struct ConnectionLimits {
    pub(super) listener: &'static str,
    slots: Arc<Semaphore>,
    unread_answers: AtomicUsize,
    max_unread_answers: usize,
    pub(super) deadlines: Deadlines,
    pub(super) observer: Arc<dyn ConnectionObserver>,
}

impl ConnectionLimits {
    pub fn new(
        listener: &'static str,
        max_connections: usize,
        max_unread_answers: usize,
        deadlines: Deadlines,
        observer: Arc<dyn ConnectionObserver>,
    ) -> Arc<Self> {
        Arc::new(Self {
            listener,
            slots: Arc::new(Semaphore::new(max_connections)),
            unread_answers: AtomicUsize::new(0),
            max_unread_answers,
            deadlines,
            observer,
        })
    }

    /// Waits for a free connection slot.
    pub(super) async fn slot(&self) -> OwnedSemaphorePermit {
        self.slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }

    /// Answers written on every connection and not yet read by their peers.
    pub fn unread_answers(&self) -> usize {
        self.unread_answers.load(Ordering::Relaxed)
    }
}

/// One connection's count of unread answers, shared by its I/O (which
/// enforces the stall bound) and the gRPC layer (which counts answers).
pub struct ConnectionState {
    unread: AtomicUsize,
    /// Bumped each time one of this connection's answers is delivered.
    delivered: AtomicU64,
    limits: Arc<ConnectionLimits>,
}

impl ConnectionState {
    /// Whether a new call on this connection must be refused at once: it
    /// already has answers waiting and, together, the connections already
    /// hold `max_unread_answers`. A connection whose peer reads (none
    /// waiting) is always answered.
    pub fn should_refuse(&self) -> bool {
        self.unread.load(Ordering::Relaxed) > 0
            && self.limits.unread_answers() >= self.limits.max_unread_answers
    }

    /// Counts a refused call (metrics).
    pub fn refused(&self) {
        self.limits.observer.answer_refused();
    }
}

/// An answer on its way to the peer: counted from creation until dropped
/// (the protocol drops it once the peer has taken it all, or the stream ends).
pub struct UnreadAnswer(Arc<ConnectionState>);

impl UnreadAnswer {
    pub fn new(state: Arc<ConnectionState>) -> Self {
        state.unread.fetch_add(1, Ordering::Relaxed);
        state.limits.unread_answers.fetch_add(1, Ordering::Relaxed);
        Self(state)
    }
}

impl Drop for UnreadAnswer {
    fn drop(&mut self) {
        self.0.unread.fetch_sub(1, Ordering::Relaxed);
        self.0.delivered.fetch_add(1, Ordering::Relaxed);
        self.0.limits.unread_answers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An accepted connection holding its slot, with the listener's deadlines.
pub struct Guarded<T> {
    io: T,
    state: Arc<ConnectionState>,
    _slot: OwnedSemaphorePermit,
    first_byte: Option<Pin<Box<Sleep>>>,
    idle: Option<Pin<Box<Sleep>>>,
    lifetime: Option<Pin<Box<Sleep>>>,
    /// The stall timer and the delivery count it was armed at.
    stall: Option<(u64, Pin<Box<Sleep>>)>,
    /// Set once a bound closed it: every later read and write fails too.
    closed_by: Option<&'static str>,
}

impl<T> Guarded<T> {
    pub(super) fn new(io: T, limits: Arc<ConnectionLimits>, slot: OwnedSemaphorePermit) -> Self {
        let timer = |d: Option<Duration>| d.map(|d| Box::pin(tokio::time::sleep(d)));
        let deadlines = limits.deadlines;
        Self {
            io,
            first_byte: timer(deadlines.first_byte),
            idle: timer(deadlines.idle),
            lifetime: timer(deadlines.lifetime),
            stall: None,
            closed_by: None,
            state: Arc::new(ConnectionState {
                unread: AtomicUsize::new(0),
                delivered: AtomicU64::new(0),
                limits,
            }),
            _slot: slot,
        }
    }

    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// The connection's shared state (for the layer that counts its answers).
    pub fn state(&self) -> &Arc<ConnectionState> {
        &self.state
    }

    /// Polls every armed deadline (registering this task's waker) and names
    /// the first that passed.
    fn passed_deadline(&mut self, cx: &mut Context<'_>) -> Option<&'static str> {
        if self.closed_by.is_some() {
            return self.closed_by;
        }
        let fired = |timer: &mut Option<Pin<Box<Sleep>>>, cx: &mut Context<'_>| {
            timer
                .as_mut()
                .is_some_and(|t| t.as_mut().poll(cx).is_ready())
        };
        let reason = if fired(&mut self.lifetime, cx) {
            Some("lifetime")
        } else if fired(&mut self.first_byte, cx) {
            Some("preface_timeout")
        } else if fired(&mut self.idle, cx) {
            Some("idle_timeout")
        } else if self.stalled(cx) {
            Some("stalled")
        } else {
            None
        };
        if let Some(reason) = reason {
            self.closed_by = Some(reason);
            let limits = &self.state.limits;
            limits.observer.closed_by_bound(limits.listener, reason);
        }
        reason
    }

    /// Whether answers have waited, none delivered, for the stall bound.
    fn stalled(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(bound) = self.state.limits.deadlines.stall else {
            return false;
        };
        if self.state.unread.load(Ordering::Relaxed) == 0 {
            self.stall = None;
            return false;
        }
        let delivered = self.state.delivered.load(Ordering::Relaxed);
        match &mut self.stall {
            Some((armed_at, timer)) if *armed_at == delivered => timer.as_mut().poll(cx).is_ready(),
            stall => {
                let mut timer = Box::pin(tokio::time::sleep(bound));
                let ready = timer.as_mut().poll(cx).is_ready();
                *stall = Some((delivered, timer));
                ready
            }
        }
    }

    fn read_some(&mut self) {
        self.first_byte = None;
        if let (Some(timer), Some(idle)) = (&mut self.idle, self.state.limits.deadlines.idle) {
            timer.as_mut().reset(Instant::now() + idle);
        }
    }
}

fn timed_out(reason: &'static str) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("connection closed: {reason}"),
    )
}

impl<T: AsyncRead + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(reason) = self.passed_deadline(cx) {
            return Poll::Ready(Err(timed_out(reason)));
        }
        let before = buf.filled().len();
        let result = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.read_some();
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(reason) = self.passed_deadline(cx) {
            return Poll::Ready(Err(timed_out(reason)));
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(reason) = self.passed_deadline(cx) {
            return Poll::Ready(Err(timed_out(reason)));
        }
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
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
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    struct Quiet;
    impl ConnectionObserver for Quiet {}

    fn limits(deadlines: Deadlines, max_unread: usize) -> Arc<ConnectionLimits> {
        ConnectionLimits::new("test", 4, max_unread, deadlines, Arc::new(Quiet))
    }

    async fn guarded(
        limits: &Arc<ConnectionLimits>,
    ) -> (Guarded<tokio::io::DuplexStream>, tokio::io::DuplexStream) {
        let (ours, theirs) = tokio::io::duplex(1024);
        let slot = limits.slot().await;
        (Guarded::new(ours, limits.clone(), slot), theirs)
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_never_sends_is_closed_after_the_first_byte_bound() {
        let limits = limits(
            Deadlines {
                first_byte: Some(Duration::from_secs(10)),
                ..Deadlines::default()
            },
            8,
        );
        let (mut conn, _peer) = guarded(&limits).await;
        let mut buf = [0u8; 8];
        let error = conn.read(&mut buf).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(error.to_string().contains("preface_timeout"), "{error}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_sent_its_first_bytes_is_not_held_to_that_bound() {
        let limits = limits(
            Deadlines {
                first_byte: Some(Duration::from_secs(10)),
                ..Deadlines::default()
            },
            8,
        );
        let (mut conn, mut peer) = guarded(&limits).await;
        peer.write_all(b"PRI").await.unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(conn.read(&mut buf).await.unwrap(), 3);
        // Long after the bound, the connection still reads.
        tokio::time::advance(Duration::from_secs(60)).await;
        peer.write_all(b"x").await.unwrap();
        assert_eq!(conn.read(&mut buf).await.unwrap(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn answers_that_are_never_delivered_close_the_connection_after_the_stall_bound() {
        let limits = limits(
            Deadlines {
                stall: Some(Duration::from_secs(5)),
                ..Deadlines::default()
            },
            8,
        );
        let (mut conn, mut peer) = guarded(&limits).await;
        let answer = UnreadAnswer::new(conn.state().clone());
        assert_eq!(limits.unread_answers(), 1);
        // The peer keeps talking (PING acks, new calls): still stalled.
        let talk = tokio::spawn(async move {
            for _ in 0..20 {
                if peer.write_all(b"ping").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            peer
        });
        let mut buf = [0u8; 64];
        let error = loop {
            match conn.read(&mut buf).await {
                Ok(_) => continue,
                Err(error) => break error,
            }
        };
        assert!(error.to_string().contains("stalled"), "{error}");
        drop(answer);
        assert_eq!(limits.unread_answers(), 0);
        drop(talk);
    }

    #[tokio::test(start_paused = true)]
    async fn answers_delivered_in_time_keep_the_connection() {
        let limits = limits(
            Deadlines {
                stall: Some(Duration::from_secs(5)),
                ..Deadlines::default()
            },
            8,
        );
        let (mut conn, mut peer) = guarded(&limits).await;
        let state = conn.state().clone();
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 64];
            let mut reads = 0;
            while conn.read(&mut buf).await.is_ok() {
                reads += 1;
                if reads == 10 {
                    return true;
                }
            }
            false
        });
        // An answer waits 3 s, is delivered, the next waits 3 s... never 5 s.
        for _ in 0..10 {
            let answer = UnreadAnswer::new(state.clone());
            peer.write_all(b"x").await.unwrap();
            tokio::time::sleep(Duration::from_secs(3)).await;
            drop(answer);
        }
        assert!(reader.await.unwrap(), "the connection was closed");
    }

    #[tokio::test]
    async fn calls_are_refused_only_on_connections_with_unread_answers_past_the_total() {
        let limits = limits(Deadlines::default(), 2);
        let (slow, _a) = guarded(&limits).await;
        let (reader, _b) = guarded(&limits).await;
        let _held: Vec<_> = (0..2)
            .map(|_| UnreadAnswer::new(slow.state().clone()))
            .collect();
        assert!(slow.state().should_refuse());
        assert!(
            !reader.state().should_refuse(),
            "a reading connection is served"
        );
    }
}
