//! Blast radius: one pool's JWKS outage must not take the other pools down.
//! The real binary (`serve`) with two pools, the JWKS servers on loopback.

mod common;

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use common::{
    CLIENT_ID, JwksServer, REGION, eventually, id_claims,
    process::{Process, free_port},
};
use serde_json::Value;
use token_validator::{
    dev::SigningKey,
    grpc::{client, health::pool_service_name, proto},
};

const POOL_BROKEN: &str = "us-east-1_BrokenPool2";
const SERVING: i32 = 1;
const NOT_SERVING: i32 = 2;

fn broken_issuer() -> String {
    format!("https://cognito-idp.{REGION}.amazonaws.com/{POOL_BROKEN}")
}

/// A running `serve` with pools `good` and `broken`.
struct TwoPools {
    _process: Process,
    url: String,
    metrics_port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl TwoPools {
    /// `broken_required`: None leaves the key out (the default), Some(b) writes it.
    fn start(good: &JwksServer, broken_jwks: &str, broken_required: Option<bool>) -> Self {
        let (port, metrics_port) = (free_port(), free_port());
        let required = broken_required.map_or_else(String::new, |r| format!("    required: {r}\n"));
        let config = format!(
            "listen: 127.0.0.1:{port}\n\
             pools:\n\
             \x20 - name: good\n    region: {REGION}\n    user_pool_id: {good_pool}\n    client_ids: [{CLIENT_ID}]\n    jwks_url: {good_url}\n\
             \x20 - name: broken\n    region: {REGION}\n    user_pool_id: {POOL_BROKEN}\n    client_ids: [{CLIENT_ID}]\n    jwks_url: {broken_jwks}\n{required}\
             jwks:\n  retry_backoff_min_ms: 50\n  retry_backoff_max_ms: 200\n  fetch_timeout_ms: 30000\n  connect_timeout_ms: 30000\n\
             userinfo:\n  cognito_lookup: false\n\
             metrics:\n  listen: 127.0.0.1:{metrics_port}\n",
            good_pool = common::POOL_ID,
            good_url = good.url(),
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, config).unwrap();
        let log = dir.path().join("stderr.log");
        let process = Process::serve(&path, &log, &[]);
        Self {
            _process: process,
            url: format!("http://127.0.0.1:{port}"),
            metrics_port,
            log,
            _dir: dir,
        }
    }

    /// The health of `service`, or None while the server does not answer.
    async fn health(&self, service: &str) -> Option<i32> {
        let channel = client::connect(&self.url, Duration::from_secs(1))
            .await
            .ok()?;
        client::health(channel, service).await.ok()
    }

    async fn readyz(&self, query: &str) -> Option<(u16, String)> {
        let url = format!("http://127.0.0.1:{}/readyz{query}", self.metrics_port);
        let response = reqwest::get(url).await.ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.ok()?))
    }

    async fn metrics(&self) -> String {
        let url = format!("http://127.0.0.1:{}/metrics", self.metrics_port);
        reqwest::get(url).await.unwrap().text().await.unwrap()
    }

    /// ValidateToken's answer: Ok(response) or Err(status).
    async fn validate(&self, token: &str) -> Result<proto::ValidateTokenResponse, tonic::Status> {
        let channel = client::connect(&self.url, Duration::from_secs(2))
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let mut client = proto::token_validator_client::TokenValidatorClient::new(channel);
        client
            .validate_token(common::request(token))
            .await
            .map(|r| r.into_inner())
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn token_for(key: &SigningKey, issuer: String) -> String {
    let mut claims = id_claims();
    claims["iss"] = Value::String(issuer);
    key.sign_claims(&claims)
}

fn gauge(text: &str, pool: &str) -> Option<f64> {
    text.lines()
        .filter(|l| {
            l.starts_with("token_validator_pool_ready{") && l.contains(&format!("pool=\"{pool}\""))
        })
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_optional_pool_that_is_down_leaves_the_service_ready_and_recovers_without_restart() {
    let good_key = SigningKey::generate("good-key").unwrap();
    let broken_key = SigningKey::generate("broken-key").unwrap();
    let good = JwksServer::start(&[&good_key]).await;
    // The broken pool's JWKS address: nothing listens there until it "comes up".
    let broken_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let broken_url = format!("http://{broken_addr}/jwks.json");
    let service = TwoPools::start(&good, &broken_url, Some(false));

    assert!(
        eventually(|| async { service.health("").await == Some(SERVING) }).await,
        "the service never reported SERVING with an optional pool down; log:\n{}",
        service.log_text()
    );
    let (status, _) = service.readyz("").await.unwrap();
    assert_eq!(status, 200, "/readyz with only an optional pool down");
    assert_eq!(
        service.health(&pool_service_name("good")).await,
        Some(SERVING)
    );
    assert_eq!(
        service.health(&pool_service_name("broken")).await,
        Some(NOT_SERVING)
    );

    let good_token = token_for(&good_key, common::issuer());
    let answer = service.validate(&good_token).await.unwrap();
    assert!(answer.valid, "good pool's token: {answer:?}");
    let broken_token = token_for(&broken_key, broken_issuer());
    let status = service.validate(&broken_token).await.unwrap_err();
    assert_eq!(
        status.code(),
        tonic::Code::Unavailable,
        "a token of a pool without keys cannot be answered"
    );
    let info = tonic_types::StatusExt::get_details_error_info(&status).expect("an ErrorInfo");
    assert_eq!(info.reason, "KEYS_UNAVAILABLE");
    assert_eq!(
        info.metadata.get("pool").map(String::as_str),
        Some("broken")
    );

    let (_, verbose) = service.readyz("?verbose").await.unwrap();
    assert!(verbose.contains("pool good: ready, required"), "{verbose}");
    assert!(
        verbose.contains("pool broken: missing keys, optional, keys 0, key age never"),
        "{verbose}"
    );
    assert!(verbose.contains("last fetch failed"), "{verbose}");
    let metrics = service.metrics().await;
    assert_eq!(gauge(&metrics, "good"), Some(1.0), "{metrics}");
    assert_eq!(gauge(&metrics, "broken"), Some(0.0), "{metrics}");
    let log = service.log_text();
    assert!(
        log.contains("pool has no keys yet") && log.contains("broken"),
        "the log names the pool missing keys: {log}"
    );

    // The endpoint comes up: the pool gets its keys without a restart.
    let _broken = JwksServer::start_on(broken_addr, &[&broken_key]).await;
    assert!(
        eventually(|| async {
            service.health(&pool_service_name("broken")).await == Some(SERVING)
        })
        .await,
        "the broken pool never turned SERVING once its JWKS came up"
    );
    let answer = service.validate(&broken_token).await.unwrap();
    assert!(
        answer.valid,
        "broken pool's token after recovery: {answer:?}"
    );
    assert_eq!(gauge(&service.metrics().await, "broken"), Some(1.0));
    let (_, verbose) = service.readyz("?verbose").await.unwrap();
    assert!(
        verbose.contains("pool broken: ready, optional, keys 1"),
        "{verbose}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_pool_that_is_down_keeps_the_service_unready_as_before() {
    let good_key = SigningKey::generate("good-key").unwrap();
    let broken_key = SigningKey::generate("broken-key").unwrap();
    let good = JwksServer::start(&[&good_key]).await;
    let broken_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    // `required` left out: the default is required.
    let service = TwoPools::start(&good, &format!("http://{broken_addr}/jwks.json"), None);

    assert!(
        eventually(|| async { service.health(&pool_service_name("good")).await == Some(SERVING) })
            .await,
        "the good pool never turned SERVING"
    );
    assert_eq!(service.health("").await, Some(NOT_SERVING));
    let (status, body) = service.readyz("").await.unwrap();
    assert_eq!(status, 503, "{body}");
    let answer = service
        .validate(&token_for(&good_key, common::issuer()))
        .await
        .unwrap();
    assert!(
        answer.valid,
        "good tokens are answered while unready: {answer:?}"
    );

    let _broken = JwksServer::start_on(broken_addr, &[&broken_key]).await;
    assert!(
        eventually(|| async { service.health("").await == Some(SERVING) }).await,
        "the service never became ready once the required pool had keys"
    );
    assert_eq!(service.readyz("").await.unwrap().0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_whose_jwks_hangs_does_not_delay_the_other_pool() {
    let good_key = SigningKey::generate("good-key").unwrap();
    let good = JwksServer::start(&[&good_key]).await;
    // Accepts connections and never answers; counts the ones it holds.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hang_addr = hang.local_addr().unwrap();
    let held = Arc::new(AtomicUsize::new(0));
    let hang_task = tokio::spawn({
        let held = held.clone();
        async move {
            let mut sockets = Vec::new();
            while let Ok((socket, _)) = hang.accept().await {
                held.fetch_add(1, Ordering::SeqCst);
                sockets.push(socket);
            }
        }
    });
    let service = TwoPools::start(&good, &format!("http://{hang_addr}/jwks.json"), Some(false));

    assert!(
        eventually(|| async { service.health("").await == Some(SERVING) }).await,
        "the service never became ready"
    );
    let answer = service
        .validate(&token_for(&good_key, common::issuer()))
        .await
        .unwrap();
    assert!(answer.valid, "{answer:?}");
    // The hanging fetch is still in flight (30 s fetch timeout): the good pool
    // did not wait for it.
    assert!(
        held.load(Ordering::SeqCst) >= 1,
        "the hanging JWKS was never asked"
    );
    assert_eq!(
        service.health(&pool_service_name("broken")).await,
        Some(NOT_SERVING)
    );
    let (_, verbose) = service.readyz("?verbose").await.unwrap();
    assert!(
        verbose.contains("pool broken: missing keys") && !verbose.contains("last fetch failed"),
        "the hanging fetch has not failed yet: {verbose}"
    );
    hang_task.abort();
}
