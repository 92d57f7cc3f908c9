//! A plain HTTP/1.1 port bounded like every other listener: the side port
//! (metrics, probes) and the gateway's forward-auth port share it.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::net::TcpListener;
use tokio_stream::StreamExt;

use super::{ConnectionLimits, ConnectionObserver, Deadlines, accept};

/// The peer of a request's connection, as a request extension (for logs and audit).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<SocketAddr>);

/// The bounds of one HTTP/1.1 port.
pub struct Http1Port {
    /// The listener's label in metrics and logs (`metrics`, `gateway`).
    pub name: &'static str,
    pub max_connections: usize,
    /// A connection silent this long is closed; a request's headers must arrive within it.
    pub idle: Duration,
    /// No connection lives longer (its client reconnects).
    pub lifetime: Duration,
    /// After `shutdown`, requests in flight get this long to finish.
    pub drain: Duration,
}

/// Serves `router` on `listener` until `shutdown`, then lets requests in
/// flight finish within `port.drain` and drops what is left.
pub async fn serve(
    listener: TcpListener,
    port: Http1Port,
    router: axum::Router,
    observer: Arc<dyn ConnectionObserver>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = ConnectionLimits::new(
        port.name,
        port.max_connections,
        0,
        Deadlines {
            first_byte: Some(port.idle),
            idle: Some(port.idle),
            lifetime: Some(port.lifetime),
            stall: None,
        },
        observer,
    );
    let (mut incoming, accepting) =
        accept::spawn(listener, limits, |tcp| std::future::ready(Some(tcp)));
    let mut connections = tokio::task::JoinSet::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(port.idle);
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let io = tokio::select! {
            () = &mut shutdown => break,
            Some(Ok(io)) = incoming.next() => io,
            else => break,
        };
        let peer = Peer(io.get_ref().peer_addr().ok());
        let service = router.clone().layer(axum::Extension(peer));
        let connection = http.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
        let mut stopping = stopping.clone();
        connections.spawn(async move {
            tokio::pin!(connection);
            tokio::select! {
                _ = &mut connection => return,
                _ = stopping.wait_for(|stop| *stop) => {}
            }
            // Finish the request in flight, then close instead of keeping alive.
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        });
        // Reap finished connections so the set stays as small as the open ones.
        while connections.try_join_next().is_some() {}
    }
    accepting.abort();
    stop.send_replace(true);
    let _ = tokio::time::timeout(port.drain, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
    Ok(())
}
