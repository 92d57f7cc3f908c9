//! The real binary as a child process, always killed when the test ends.

use std::{
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

pub const BIN: &str = env!("CARGO_BIN_EXE_token-validator");

/// Kills the child when dropped, whatever happened.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Process {
    /// `serve --config FILE` with stderr (the logs) written to `log`.
    pub fn serve(config: &Path, log: &Path, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap());
        for (key, value) in env {
            command.env(key, value);
        }
        Process(command.spawn().unwrap())
    }

    pub fn pid(&self) -> String {
        self.0.id().to_string()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        assert!(
            Command::new("kill")
                .args(["-TERM", &self.pid()])
                .status()
                .unwrap()
                .success()
        );
    }

    /// Waits (bounded) for the exit status.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.0.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `serve` config for one pool whose keys (and GetUser) are at `jwks`.
pub fn serve_config(port: u16, metrics_port: u16, jwks: &super::JwksServer, extra: &str) -> String {
    format!(
        "listen: 127.0.0.1:{port}\n\
         pools:\n  - name: main\n    region: {region}\n    user_pool_id: {pool}\n    client_ids: [{client}]\n    jwks_url: {url}\n\
         userinfo:\n  cognito_endpoint: http://{addr}/\n  timeout_ms: 5000\n\
         metrics:\n  listen: 127.0.0.1:{metrics_port}\n{extra}",
        region = super::REGION,
        pool = super::POOL_ID,
        client = super::CLIENT_ID,
        url = jwks.url(),
        addr = jwks.addr,
    )
}

/// Polls the gRPC health service of `url` until SERVING (bounded).
pub async fn wait_serving(url: &str) -> bool {
    super::eventually(|| async {
        let Ok(channel) = token_validator::grpc::client::connect(url, Duration::from_secs(1)).await
        else {
            return false;
        };
        token_validator::grpc::client::health(channel, "")
            .await
            .ok()
            == Some(1)
    })
    .await
}

/// A `serve` process for one pool at `jwks`, SERVING, with its logs in a file.
pub struct Served {
    pub process: Process,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub metrics_port: u16,
    /// The process's stderr (its logs).
    pub log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// Writes the config (`extra` YAML appended), starts `serve` with `env`, and
/// waits (bounded) for SERVING.
pub async fn serve(jwks: &super::JwksServer, extra: &str, env: &[(&str, &str)]) -> Served {
    let (port, metrics_port) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, serve_config(port, metrics_port, jwks, extra)).unwrap();
    let log = dir.path().join("stderr.log");
    let process = Process::serve(&config, &log, env);
    let url = format!("http://127.0.0.1:{port}");
    assert!(
        wait_serving(&url).await,
        "the service never reported SERVING"
    );
    Served {
        process,
        url,
        metrics_port,
        log,
        _dir: dir,
    }
}
