//! The accept loop every listener shares.
//!
//! - A connection slot is taken *before* `accept`: at the cap the loop waits,
//!   and further connections wait in the kernel's backlog without costing a
//!   file descriptor, so a flood of one port cannot starve the other port (or
//!   the JWKS fetches) of descriptors.
//! - An accept error (EMFILE, ENFILE, ENOBUFS…) backs off from 10 ms up to
//!   1 s instead of being retried at once, which spun a core at 100% before;
//!   it is counted, and logged at most once a second with the count since.
//! - Each accepted connection is prepared (TCP_NODELAY, a TLS handshake) on a
//!   task of its own, so a slow handshake never holds the loop.

use std::{future::Future, io, sync::Arc, time::Duration};

use tokio::{
    net::{TcpListener, TcpStream, UnixListener, UnixStream},
    sync::mpsc,
    task::JoinHandle,
    time::Instant,
};
use tokio_stream::wrappers::ReceiverStream;

use super::{ConnectionLimits, Guarded};

const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
const LOG_EVERY: Duration = Duration::from_secs(1);

/// A listening socket.
pub trait Accept: Send + 'static {
    type Stream: Send + 'static;
    fn accept_one(&self) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

impl Accept for TcpListener {
    type Stream = TcpStream;
    async fn accept_one(&self) -> io::Result<TcpStream> {
        self.accept().await.map(|(stream, _)| stream)
    }
}

impl Accept for UnixListener {
    type Stream = UnixStream;
    async fn accept_one(&self) -> io::Result<UnixStream> {
        self.accept().await.map(|(stream, _)| stream)
    }
}

/// The connections a loop yields (only `Ok`s; errors are handled inside).
pub type Accepted<S> = ReceiverStream<io::Result<Guarded<S>>>;

/// Accepts on `listener` within `limits`; `prepare` turns each accepted socket
/// into the stream to serve (`None` drops it, e.g. a failed TLS handshake).
/// The loop ends, closing the listener, once the returned stream is dropped.
pub fn spawn<L, P, F, S>(
    listener: L,
    limits: Arc<ConnectionLimits>,
    prepare: P,
) -> (Accepted<S>, JoinHandle<()>)
where
    L: Accept,
    P: Fn(L::Stream) -> F + Send + Sync + 'static,
    F: Future<Output = Option<S>> + Send + 'static,
    S: Send + 'static,
{
    let (tx, rx) = mpsc::channel(128);
    let task = tokio::spawn(async move {
        let mut backoff = BACKOFF_MIN;
        let mut failures_unlogged = 0u64;
        let mut last_logged: Option<Instant> = None;
        loop {
            let slot = tokio::select! {
                () = tx.closed() => break,
                slot = limits.slot() => slot,
            };
            let accepted = tokio::select! {
                () = tx.closed() => break,
                accepted = listener.accept_one() => accepted,
            };
            let stream = match accepted {
                Ok(stream) => {
                    backoff = BACKOFF_MIN;
                    stream
                }
                Err(error) => {
                    drop(slot);
                    limits.observer.accept_failed(limits.listener);
                    failures_unlogged += 1;
                    if last_logged.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
                        tracing::warn!(
                            listener = limits.listener,
                            %error,
                            failures = failures_unlogged,
                            backoff_ms = backoff.as_millis() as u64,
                            "accept failed; backing off"
                        );
                        failures_unlogged = 0;
                        last_logged = Some(Instant::now());
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            };
            let (tx, limits, prepared) = (tx.clone(), limits.clone(), prepare(stream));
            tokio::spawn(async move {
                if let Some(stream) = prepared.await {
                    let _ = tx.send(Ok(Guarded::new(stream, limits, slot))).await;
                }
            });
        }
    });
    (ReceiverStream::new(rx), task)
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    };

    use tokio_stream::StreamExt;

    use super::*;
    use crate::net::{ConnectionObserver, Deadlines};

    /// Fails every accept (as with EMFILE), counting the attempts.
    struct Exhausted(Arc<AtomicUsize>);

    impl Accept for Exhausted {
        type Stream = ();
        async fn accept_one(&self) -> io::Result<()> {
            self.0.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Err(io::Error::from_raw_os_error(24)) // EMFILE
        }
    }

    #[derive(Default)]
    struct Counted(Mutex<usize>);
    impl ConnectionObserver for Counted {
        fn accept_failed(&self, _listener: &'static str) {
            *self.0.lock().unwrap() += 1;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn failing_accepts_back_off_instead_of_spinning_and_are_counted() {
        let attempts = Arc::new(AtomicUsize::new(0));
        let observer = Arc::new(Counted::default());
        let limits = ConnectionLimits::new("test", 8, 8, Deadlines::default(), observer.clone());
        let (mut incoming, task) = spawn(Exhausted(attempts.clone()), limits, |()| {
            std::future::ready(Some(()))
        });
        // Ten seconds of failures: 10 ms doubling to 1 s is ~14 attempts, not millions.
        tokio::time::sleep(Duration::from_secs(10)).await;
        let tried = attempts.load(Ordering::SeqCst);
        assert!(
            (10..=20).contains(&tried),
            "{tried} accept attempts in 10 s"
        );
        assert_eq!(*observer.0.lock().unwrap(), tried);
        // Nothing was yielded, and dropping the stream ends the loop.
        assert!(
            tokio::time::timeout(Duration::from_millis(1), incoming.next())
                .await
                .is_err()
        );
        drop(incoming);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(task.is_finished());
    }

    #[tokio::test]
    async fn at_the_cap_no_further_connection_is_accepted_until_one_closes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = ConnectionLimits::new(
            "test",
            2,
            8,
            Deadlines::default(),
            Arc::new(Counted::default()),
        );
        let (mut incoming, _task) = spawn(listener, limits, |tcp| std::future::ready(Some(tcp)));
        let _clients: Vec<_> = futures_connect(addr, 3).await;
        let first = incoming.next().await.unwrap().unwrap();
        let _second = incoming.next().await.unwrap().unwrap();
        // The third waits in the backlog while both slots are held.
        assert!(
            tokio::time::timeout(Duration::from_millis(300), incoming.next())
                .await
                .is_err()
        );
        drop(first);
        let third = tokio::time::timeout(Duration::from_secs(5), incoming.next()).await;
        assert!(
            matches!(third, Ok(Some(Ok(_)))),
            "a freed slot admits the next"
        );
    }

    async fn futures_connect(addr: std::net::SocketAddr, n: usize) -> Vec<TcpStream> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(TcpStream::connect(addr).await.unwrap());
        }
        out
    }
}
