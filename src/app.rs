//! Wiring: config → key store → validator → user info → gRPC server. Used by
//! `serve`, `dev` and the integration tests, so all three run the same service.

use std::{future::Future, sync::Arc};

use tokio::task::JoinHandle;

use crate::{
    config::Config,
    grpc::{GrpcServer, Listener},
    jwks::{KeyStore, LogObserver},
    userinfo::UserInfoService,
    validate::Validator,
};

/// The parts of a running service.
#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub keys: Arc<KeyStore>,
    pub validator: Arc<Validator>,
    pub userinfo: Arc<UserInfoService>,
}

impl App {
    /// Builds the service from a configuration, validating it first (no I/O yet).
    pub fn new(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        let keys = KeyStore::new(&config, Arc::new(LogObserver))?;
        let validator = Arc::new(Validator::new(&config, keys.clone()));
        let userinfo = Arc::new(UserInfoService::new(&config, validator.clone())?);
        Ok(Self {
            config: Arc::new(config),
            keys,
            validator,
            userinfo,
        })
    }

    /// Starts key fetching, then serves gRPC on `listener` until `shutdown`.
    pub async fn serve(
        self,
        listener: Listener,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let refresh = self.keys.spawn_refresh_tasks();
        let server = GrpcServer::new(self.validator, self.userinfo, self.config.server.clone());
        let result = server.serve(listener, shutdown).await;
        for task in refresh {
            task.abort();
        }
        Ok(result?)
    }

    /// Binds `config.listen` and serves in a background task (tests, `dev`).
    pub async fn spawn(config: Config) -> anyhow::Result<RunningService> {
        let listener = Listener::bind(&config.listen_addr()).await?;
        let addr = listener.local_addr();
        let app = App::new(config)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.clone().serve(listener, async {
            let _ = stopped.await;
        }));
        Ok(RunningService {
            addr,
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
