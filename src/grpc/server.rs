//! Server assembly, read top to bottom: listener → limits → health →
//! reflection → TokenValidator → serve until shutdown, then drain.
//!
//! Health (see [`super::health`]) reports NOT_SERVING until every required
//! pool has keys, and again as soon as shutdown starts, so load balancers stop
//! sending before in-flight calls end.

use std::{future::Future, path::PathBuf, sync::Arc, time::Duration};

use tokio::net::{TcpListener, TcpStream, UnixListener};
use tonic::transport::Server;
use tonic_health::ServingStatus;

use super::{
    health::Health, limits::OversizeIsInvalidArgument, proto, service::TokenValidatorService,
    tls::TlsSource, transport::coalesced, unread::CountUnreadAnswers,
};
use crate::{
    config::{ListenAddr, ServerConfig},
    net::{ConnectionLimits, Deadlines, accept},
    telemetry::{audit::AuditLog, metrics::Metrics},
    userinfo::UserInfoService,
    validate::Validator,
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

/// The gRPC server with everything it serves.
pub struct GrpcServer {
    validator: Arc<Validator>,
    userinfo: Arc<UserInfoService>,
    metrics: Arc<Metrics>,
    audit: Arc<AuditLog>,
    tls: Option<Arc<TlsSource>>,
    config: ServerConfig,
}

impl GrpcServer {
    pub fn new(
        validator: Arc<Validator>,
        userinfo: Arc<UserInfoService>,
        metrics: Arc<Metrics>,
        audit: Arc<AuditLog>,
        tls: Option<Arc<TlsSource>>,
        config: ServerConfig,
    ) -> Self {
        Self {
            validator,
            userinfo,
            metrics,
            audit,
            tls,
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
            self.metrics.clone(),
        )
    }

    /// Serves on `listener` until `shutdown` resolves, then stops accepting, lets
    /// in-flight calls finish for up to `shutdown_grace_secs`, and returns.
    pub async fn serve(
        self,
        listener: Listener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), tonic::transport::Error> {
        let (health, health_service) = Health::new(self.validator.key_store().clone()).await;
        let readiness = health.spawn_watchers();
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .expect("the embedded descriptor sets are valid");
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()
            .expect("the embedded descriptor sets are valid");
        let service =
            proto::token_validator_server::TokenValidatorServer::new(TokenValidatorService::new(
                self.validator.clone(),
                self.userinfo.clone(),
                self.metrics.clone(),
                self.audit.clone(),
                &self.config,
            ))
            .max_decoding_message_size(self.config.max_request_bytes);
        let mut builder = Server::builder();
        if self.config.max_connection_age_secs > 0 {
            builder = builder
                .max_connection_age(Duration::from_secs(self.config.max_connection_age_secs))
                .max_connection_age_grace(Duration::from_secs(self.config.shutdown_grace_secs));
        }
        let router = builder
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
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(service);

        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let stopped = async {
            let _ = stop_rx.await;
        };
        let limits = self.connection_limits();
        let mut background = Vec::new();
        let mut serving: std::pin::Pin<
            Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>,
        > = match (listener, &self.tls) {
            (Listener::Tcp(listener), Some(tls)) => {
                let source = tls.clone();
                let (incoming, accept) = accept::spawn(listener, limits, move |tcp| {
                    super::tls::handshake(source.clone(), tcp)
                });
                background.push(accept);
                background.push(tls.spawn_reloader());
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
        tokio::select! {
            result = &mut serving => {
                background.iter().chain(&readiness).for_each(|t| t.abort());
                return result;
            }
            () = shutdown => {}
        }
        // A pool whose keys arrive during the drain must not turn SERVING again.
        readiness.iter().for_each(|t| t.abort());
        health.set_all(ServingStatus::NotServing).await;
        let delay = Duration::from_millis(self.config.shutdown_delay_ms);
        tracing::info!(
            delay_ms = self.config.shutdown_delay_ms,
            grace_secs = self.config.shutdown_grace_secs,
            "shutting down: NOT_SERVING, then draining in-flight calls"
        );
        if !delay.is_zero() {
            // Keep serving normally while callers notice NOT_SERVING.
            if let Ok(result) = tokio::time::timeout(delay, &mut serving).await {
                return result;
            }
        }
        let _ = stop_tx.send(());
        // Stop accepting: new connections are refused at once, not queued.
        background.iter().for_each(|t| t.abort());
        match tokio::time::timeout(
            Duration::from_secs(self.config.shutdown_grace_secs),
            serving,
        )
        .await
        {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!("shutdown grace period elapsed with calls still in flight");
                Ok(())
            }
        }
    }
}
