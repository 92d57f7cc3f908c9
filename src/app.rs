//! Wiring: config → key store → validator → user info → gRPC server (and the
//! gateway adapters on it and on their own port), with telemetry beside. Used by `serve`, `dev` and the integration tests, so all
//! three run the same service.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use tokio::{net::TcpListener, task::JoinHandle};

use crate::{
    config::Config,
    gateway::Gateway,
    grpc::{
        GrpcServer, Listener, TokenValidatorService, ext_authz::ExtAuthzService, tls::TlsSource,
    },
    jwks::KeyStore,
    revocation::Revocation,
    telemetry::{audit::AuditLog, metrics::Metrics},
    userinfo::UserInfoService,
    validate::Validator,
};

/// The parts of a running service.
#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub keys: Arc<KeyStore>,
    pub validator: Arc<Validator>,
    pub metrics: Arc<Metrics>,
    /// The TokenValidator service, built once here with what it needs.
    service: Arc<TokenValidatorService>,
    gateway: Arc<Gateway>,
    tls: Option<Arc<TlsSource>>,
}

/// The bound sockets of a service.
pub struct Listeners {
    pub grpc: Listener,
    pub metrics: Option<TcpListener>,
    /// The forward-auth port, when `gateway.http_listen` is set.
    pub gateway: Option<TcpListener>,
}

impl App {
    /// Builds the service from a configuration, validating it first (no I/O yet).
    pub fn new(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        // Each component gets its own section (and the pools it serves).
        let pools = &config.pools;
        let metrics = Metrics::new(pools, config.metrics.enabled, crate::grpc::RPC_NAMES)?;
        let keys = KeyStore::new(pools, &config.jwks, metrics.clone())?;
        let validator = Arc::new(Validator::new(
            pools,
            &config.validation,
            &config.token_cache,
            keys.clone(),
        ));
        let userinfo = Arc::new(UserInfoService::new(
            pools,
            &config.userinfo,
            metrics.clone(),
        )?);
        let revocation = Arc::new(Revocation::new(
            pools,
            &config.userinfo,
            userinfo.clone(),
            metrics.clone(),
        ));
        metrics.observe(&validator);
        let audit = Arc::new(AuditLog::new(
            config.audit.max_events_per_sec,
            metrics.clone(),
        ));
        let tls = config
            .tls
            .as_ref()
            .map(|tls| TlsSource::load(tls, audit.clone()))
            .transpose()?;
        let service = Arc::new(TokenValidatorService::new(
            validator.clone(),
            userinfo,
            revocation,
            metrics.clone(),
            audit,
            &config.server,
        ));
        let gateway = Arc::new(Gateway::new(&config.gateway));
        Ok(Self {
            config: Arc::new(config),
            keys,
            validator,
            metrics,
            service,
            gateway,
            tls,
        })
    }

    /// Binds the gRPC address and, when enabled, the metrics port.
    pub async fn bind(&self) -> anyhow::Result<Listeners> {
        let grpc = Listener::bind(&self.config.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", self.config.listen))?;
        let metrics = if self.config.metrics.enabled {
            let addr = &self.config.metrics.listen;
            Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot listen on metrics.listen {addr}: {e}"))?,
            )
        } else {
            None
        };
        let gateway = match self.config.gateway.http_listen {
            Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| {
                anyhow::anyhow!("cannot listen on gateway.http_listen {addr}: {e}")
            })?),
            None => None,
        };
        Ok(Listeners {
            grpc,
            metrics,
            gateway,
        })
    }

    /// Starts key fetching, then serves until `shutdown` and the drain complete.
    pub async fn serve(
        self,
        listeners: Listeners,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let refresh = self.keys.spawn_refresh_tasks();
        // One drain signal for both ports: `shutdown` sets it.
        let (drain, drained) = tokio::sync::watch::channel(false);
        let draining = move || {
            let mut drained = drained.clone();
            async move {
                let _ = drained.wait_for(|drain| *drain).await;
            }
        };
        let side_port = listeners.metrics.map(|listener| {
            let config = self.config.metrics.clone();
            let (metrics, keys) = (self.metrics.clone(), self.keys.clone());
            let drained = draining();
            tokio::spawn(async move {
                crate::telemetry::http::serve(listener, &config, metrics, keys, drained).await
            })
        });
        let forward_auth = listeners.gateway.map(|listener| {
            let config = self.config.gateway.clone();
            // Like the gRPC port: serving through the shutdown delay, then
            // requests in flight get the same grace as gRPC calls.
            let delay = Duration::from_millis(self.config.server.shutdown_delay_ms);
            let drain = Duration::from_secs(self.config.server.shutdown_grace_secs);
            let (gateway, service, observer) = (
                self.gateway.clone(),
                self.service.clone(),
                self.metrics.clone(),
            );
            let signalled = draining();
            let drained = async move {
                signalled.await;
                tokio::time::sleep(delay).await;
            };
            tokio::spawn(async move {
                crate::gateway::forward_auth::serve(
                    listener, &config, drain, gateway, service, observer, drained,
                )
                .await
            })
        });
        let ext_authz = Arc::new(ExtAuthzService::new(
            self.service.clone(),
            self.gateway.clone(),
        ));
        let server = GrpcServer::new(
            self.service,
            ext_authz,
            self.keys.clone(),
            self.tls,
            self.metrics,
            self.config.server.clone(),
        );
        let serving = server.serve(listeners.grpc, draining());
        let signal = async {
            shutdown.await;
            drain.send_replace(true);
            std::future::pending::<()>().await
        };
        let result = tokio::select! {
            result = serving => result,
            () = signal => unreachable!("the signal never completes"),
        };
        // The gRPC server may also have stopped on its own (an error): drain the side port too.
        drain.send_replace(true);
        for port in [side_port, forward_auth].into_iter().flatten() {
            let _ = port.await;
        }
        for task in refresh {
            task.abort();
        }
        Ok(result?)
    }

    /// Binds and serves in a background task (tests, `dev`).
    pub async fn spawn(config: Config) -> anyhow::Result<RunningService> {
        let app = App::new(config)?;
        let listeners = app.bind().await?;
        let addr = listeners.grpc.local_addr();
        let metrics_addr = listeners.metrics.as_ref().and_then(|l| l.local_addr().ok());
        let gateway_addr = listeners.gateway.as_ref().and_then(|l| l.local_addr().ok());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.clone().serve(listeners, async {
            let _ = stopped.await;
        }));
        Ok(RunningService {
            addr,
            metrics_addr,
            gateway_addr,
            app,
            stop: Some(stop),
            task,
        })
    }
}

/// A service serving in a background task.
pub struct RunningService {
    /// `127.0.0.1:PORT` or `unix:///path`.
    pub addr: String,
    /// The bound metrics port, when enabled.
    pub metrics_addr: Option<SocketAddr>,
    /// The bound forward-auth port, when `gateway.http_listen` is set.
    pub gateway_addr: Option<SocketAddr>,
    pub app: App,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningService {
    /// `http://ADDR`, for tonic clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits (bounded) until every pool has keys.
    pub async fn wait_ready(&self, timeout: std::time::Duration) -> bool {
        let mut ready = self.app.keys.subscribe_ready();
        tokio::time::timeout(timeout, ready.wait_for(|r| *r))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Graceful shutdown; returns the server's result.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await?
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        if self.stop.is_some() {
            self.task.abort();
        }
    }
}
