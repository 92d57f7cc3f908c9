//! Server assembly, read top to bottom: listener → limits → health →
//! reflection → TokenValidator → serve until shutdown, then drain.
//!
//! Health (see [`super::health`]) reports NOT_SERVING until every required
//! pool has keys, and again as soon as shutdown starts, so load balancers stop
//! sending before in-flight calls end.

use std::{future::Future, path::PathBuf, pin::Pin, sync::Arc, time::Duration};

use tokio::{
    net::{TcpListener, TcpStream, UnixListener},
    task::JoinHandle,
};
use tonic::transport::{Server, server::Router};
use tonic_health::ServingStatus;
use tower::layer::util::{Identity, Stack};

use super::{
    ext_authz::ExtAuthzService, health::Health, limits::OversizeIsInvalidArgument, proto,
    service::TokenValidatorService, tls::TlsSource, transport::coalesced,
    unread::CountUnreadAnswers,
};
use crate::{
    config::{ListenAddr, ServerConfig},
    jwks::KeyStore,
    net::{ConnectionLimits, ConnectionObserver, Deadlines, accept},
};

/// A bound listening socket, TCP or Unix.
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// Binds `addr`. A stale Unix socket left by a previous run is replaced;
    /// anything else at the path (a file, a directory, a socket another process
    /// listens on) is an error, never deleted.
    pub async fn bind(addr: &ListenAddr) -> std::io::Result<Self> {
        match addr {
            ListenAddr::Tcp(addr) => Ok(Listener::Tcp(TcpListener::bind(addr).await?)),
            ListenAddr::Unix(path) => {
                remove_stale_socket(path).await?;
                Ok(Listener::Unix(UnixListener::bind(path)?, path.clone()))
            }
        }
    }

    /// The address clients use: `127.0.0.1:50051` or `unix:///path`.
    pub fn local_addr(&self) -> String {
        match self {
            Listener::Tcp(l) => l
                .local_addr()
                .map_or_else(|e| format!("<unknown: {e}>"), |a| a.to_string()),
            Listener::Unix(_, path) => format!("unix://{}", path.display()),
        }
    }
}

/// Removes `path` only when it is a Unix socket nobody listens on.
async fn remove_stale_socket(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !metadata.file_type().is_socket() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a socket; refusing to replace it",
                path.display()
            ),
        ));
    }
    if tokio::net::UnixStream::connect(path).await.is_ok() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!("another process is listening on {}", path.display()),
        ));
    }
    std::fs::remove_file(path)
}

/// The layers every call passes, outermost last (tonic stacks them so).
type Layers = Stack<OversizeIsInvalidArgument, Stack<CountUnreadAnswers, Identity>>;

/// A started server: its future, the switch that stops it accepting, and
/// the tasks that feed it (accept loop, TLS reloader).
struct Started {
    serving: Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>>,
    stop: tokio::sync::oneshot::Sender<()>,
    background: Vec<JoinHandle<()>>,
}

/// The gRPC server: the TokenValidator service (built by the caller), health,
/// reflection, the connection bounds and TLS.
pub struct GrpcServer {
    service: Arc<TokenValidatorService>,
    ext_authz: Arc<ExtAuthzService>,
    keys: Arc<KeyStore>,
    tls: Option<Arc<TlsSource>>,
    observer: Arc<dyn ConnectionObserver>,
    config: ServerConfig,
}

impl GrpcServer {
    pub fn new(
        service: Arc<TokenValidatorService>,
        ext_authz: Arc<ExtAuthzService>,
        keys: Arc<KeyStore>,
        tls: Option<Arc<TlsSource>>,
        observer: Arc<dyn ConnectionObserver>,
        config: ServerConfig,
    ) -> Self {
        Self {
            service,
            ext_authz,
            keys,
            tls,
            observer,
            config,
        }
    }

    /// The bounds on the gRPC port's connections (see [`crate::net`]).
    fn connection_limits(&self) -> Arc<ConnectionLimits> {
        let secs = |s: u64| Some(Duration::from_secs(s));
        ConnectionLimits::new(
            "grpc",
            crate::net::connections_within_file_limit(self.config.max_connections),
            self.config.max_unread_answers,
            Deadlines {
                first_byte: secs(self.config.preface_timeout_secs),
                stall: secs(self.config.stall_timeout_secs),
                idle: None,
                lifetime: None,
            },
            self.observer.clone(),
        )
    }

    /// Serves on `listener` until `drain` resolves, then stops accepting, lets
    /// in-flight calls finish for up to `shutdown_grace_secs`, and returns.
    pub async fn serve(
        self,
        listener: Listener,
        drain: impl Future<Output = ()>,
    ) -> Result<(), tonic::transport::Error> {
        let (health, health_service) = Health::new(self.keys.clone()).await;
        let readiness = health.spawn_watchers();
        let router = self.router(health_service);
        let mut started = self.start(router, listener);
        tokio::select! {
            result = &mut started.serving => {
                started.background.iter().chain(&readiness).for_each(|t| t.abort());
                return result;
            }
            () = drain => {}
        }
        // A pool whose keys arrive during the drain must not turn SERVING again.
        readiness.iter().for_each(|t| t.abort());
        health.set_all(ServingStatus::NotServing).await;
        self.drain(started).await
    }

    /// Every service behind the server's layers and HTTP/2 settings.
    fn router(
        &self,
        health: tonic_health::pb::health_server::HealthServer<
            impl tonic_health::pb::health_server::Health,
        >,
    ) -> Router<Layers> {
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let service =
            proto::token_validator_server::TokenValidatorServer::from_arc(self.service.clone())
                .max_decoding_message_size(self.config.max_request_bytes);
        let ext_authz =
            envoy_types::ext_authz::v3::pb::AuthorizationServer::from_arc(self.ext_authz.clone())
                .max_decoding_message_size(self.config.max_request_bytes);
        let mut builder = Server::builder();
        if self.config.max_connection_age_secs > 0 {
            builder = builder
                .max_connection_age(Duration::from_secs(self.config.max_connection_age_secs))
                .max_connection_age_grace(Duration::from_secs(self.config.shutdown_grace_secs));
        }
        builder
            .layer(CountUnreadAnswers)
            .layer(OversizeIsInvalidArgument)
            .tcp_nodelay(true)
            .http2_keepalive_interval(Some(Duration::from_secs(
                self.config.http2_keepalive_interval_secs,
            )))
            .http2_keepalive_timeout(Some(Duration::from_secs(
                self.config.http2_keepalive_timeout_secs,
            )))
            .max_concurrent_streams(self.config.max_concurrent_streams)
            .add_service(health)
            .add_service(
                reflection()
                    .build_v1()
                    .expect("the embedded descriptor sets are valid"),
            )
            .add_service(
                reflection()
                    .build_v1alpha()
                    .expect("the embedded descriptor sets are valid"),
            )
            .add_service(service)
            .add_service(ext_authz)
    }

    /// Starts accepting on `listener` (TCP, TCP with TLS, or Unix) and serving.
    fn start(&self, router: Router<Layers>, listener: Listener) -> Started {
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let stopped = async {
            let _ = stop_rx.await;
        };
        let limits = self.connection_limits();
        let mut background = Vec::new();
        let serving: Pin<Box<dyn Future<Output = _> + Send>> = match (listener, &self.tls) {
            (Listener::Tcp(listener), Some(tls)) => {
                let source = tls.clone();
                let (incoming, accept) = accept::spawn(listener, limits, move |tcp| {
                    super::tls::handshake(source.clone(), tcp)
                });
                background.extend([accept, tls.spawn_reloader()]);
                Box::pin(router.serve_with_incoming_shutdown(coalesced(incoming), stopped))
            }
            (Listener::Tcp(listener), None) => {
                let (incoming, accept) = accept::spawn(listener, limits, |tcp: TcpStream| {
                    let _ = tcp.set_nodelay(true);
                    std::future::ready(Some(tcp))
                });
                background.push(accept);
                Box::pin(router.serve_with_incoming_shutdown(coalesced(incoming), stopped))
            }
            (Listener::Unix(listener, _), _) => {
                let (incoming, accept) =
                    accept::spawn(listener, limits, |unix| std::future::ready(Some(unix)));
                background.push(accept);
                Box::pin(router.serve_with_incoming_shutdown(coalesced(incoming), stopped))
            }
        };
        Started {
            serving,
            stop,
            background,
        }
    }

    /// Health already says NOT_SERVING: keep serving for `shutdown_delay_ms`
    /// while callers notice, then stop accepting and give in-flight calls
    /// `shutdown_grace_secs`.
    async fn drain(&self, mut started: Started) -> Result<(), tonic::transport::Error> {
        let delay = Duration::from_millis(self.config.shutdown_delay_ms);
        tracing::info!(
            delay_ms = self.config.shutdown_delay_ms,
            grace_secs = self.config.shutdown_grace_secs,
            "shutting down: NOT_SERVING, then draining in-flight calls"
        );
        if !delay.is_zero()
            && let Ok(result) = tokio::time::timeout(delay, &mut started.serving).await
        {
            return result;
        }
        let _ = started.stop.send(());
        // Stop accepting: new connections are refused at once, not queued.
        started.background.iter().for_each(|t| t.abort());
        let grace = Duration::from_secs(self.config.shutdown_grace_secs);
        match tokio::time::timeout(grace, started.serving).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!("shutdown grace period elapsed with calls still in flight");
                Ok(())
            }
        }
    }
}
