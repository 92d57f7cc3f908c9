//! Shared fixtures for the end-to-end tests: a real HTTP JWKS server (with a
//! Cognito GetUser stand-in), keys generated at test time, token builders, and
//! the real service on 127.0.0.1:0 with a tonic client. Loopback only.
#![allow(dead_code)]

pub mod hostile;
pub mod process;

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use axum::{
    Router,
    extract::State,
    http::StatusCode,
    response::IntoResponse,
    routing::{get, post},
};
use serde_json::{Value, json};
use token_validator::{
    App, Config, RunningService,
    config::PoolConfig,
    dev::SigningKey,
    grpc::proto::{self, token_validator_client::TokenValidatorClient},
};
use tonic::transport::Channel;

pub const REGION: &str = "us-east-1";
pub const POOL_ID: &str = "us-east-1_TestPool1";
pub const CLIENT_ID: &str = "testclient1234567890abcdef";
pub const TIMEOUT: Duration = Duration::from_secs(10);

pub fn issuer() -> String {
    format!("https://cognito-idp.{REGION}.amazonaws.com/{POOL_ID}")
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// How the JWKS endpoint behaves.
#[derive(Clone, Debug)]
pub enum Mode {
    Up,
    /// Answers this status with an HTML body.
    Status(u16),
    /// 200, `application/json`, a body that is not JSON.
    Garbage,
    /// 200 with a body of this many bytes.
    Huge(usize),
    /// 302 to the same path on another host.
    RedirectTo(String),
    /// Alternates between the published keys and `Vec<Value>` on every fetch.
    Flapping(Vec<Value>),
}

struct ServerState {
    keys: Mutex<Vec<Value>>,
    get_user_status: Mutex<u16>,
    get_user_message: Mutex<String>,
    mode: Mutex<Mode>,
    delay: Mutex<Duration>,
    fetches: AtomicUsize,
    get_user_delay: Mutex<Duration>,
    get_user_calls: AtomicUsize,
    /// GetUser calls being answered now, and the most there ever were at once.
    get_user_in_flight: AtomicUsize,
    get_user_most_at_once: AtomicUsize,
}

/// A real HTTP server publishing a JWKS at `/jwks.json` and answering
/// Cognito's GetUser at `POST /` with a fixed user.
#[derive(Clone)]
pub struct JwksServer {
    state: Arc<ServerState>,
    pub addr: SocketAddr,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl JwksServer {
    pub async fn start(keys: &[&SigningKey]) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), keys).await
    }

    pub async fn start_on(addr: SocketAddr, keys: &[&SigningKey]) -> Self {
        let state = Arc::new(ServerState {
            keys: Mutex::new(keys.iter().map(|k| k.jwk()).collect()),
            get_user_status: Mutex::new(200),
            get_user_message: Mutex::new("boom".into()),
            mode: Mutex::new(Mode::Up),
            delay: Mutex::new(Duration::ZERO),
            fetches: AtomicUsize::new(0),
            get_user_delay: Mutex::new(Duration::ZERO),
            get_user_calls: AtomicUsize::new(0),
            get_user_in_flight: AtomicUsize::new(0),
            get_user_most_at_once: AtomicUsize::new(0),
        });
        let router = routes(state.clone());
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            state,
            addr,
            task: Arc::new(task),
        }
    }

    /// Stops listening: connections are refused until [`JwksServer::restart`].
    pub fn stop(&self) {
        self.task.abort();
    }

    pub fn is_stopped(&self) -> bool {
        self.task.is_finished()
    }

    /// Listens again on the same address, with the same state.
    pub async fn restart(&mut self) {
        let router = routes(self.state.clone());
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.task = Arc::new(tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        }));
    }

    pub fn url(&self) -> String {
        format!("http://{}/jwks.json", self.addr)
    }

    pub fn set_keys(&self, keys: &[&SigningKey]) {
        *self.state.keys.lock().unwrap() = keys.iter().map(|k| k.jwk()).collect();
    }

    pub fn set_raw_keys(&self, keys: Vec<Value>) {
        *self.state.keys.lock().unwrap() = keys;
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    pub fn set_delay(&self, delay: Duration) {
        *self.state.delay.lock().unwrap() = delay;
    }

    /// Makes GetUser answer this HTTP status (400: an AWS NotAuthorizedException,
    /// others: an InternalErrorException).
    pub fn set_get_user_status(&self, status: u16) {
        *self.state.get_user_status.lock().unwrap() = status;
    }

    /// The `message` of GetUser's error answers.
    pub fn set_get_user_message(&self, message: &str) {
        *self.state.get_user_message.lock().unwrap() = message.into();
    }

    pub fn set_get_user_delay(&self, delay: Duration) {
        *self.state.get_user_delay.lock().unwrap() = delay;
    }

    pub fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }

    pub fn get_user_calls(&self) -> usize {
        self.state.get_user_calls.load(Ordering::SeqCst)
    }

    /// The most GetUser calls that were being answered at the same time.
    pub fn get_user_most_at_once(&self) -> usize {
        self.state.get_user_most_at_once.load(Ordering::SeqCst)
    }

    /// Waits (bounded) until at least `n` fetches happened.
    pub async fn wait_for_fetches(&self, n: usize) -> bool {
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            if self.fetches() >= n {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }
}

fn routes(state: Arc<ServerState>) -> Router {
    Router::new()
        .route("/jwks.json", get(serve_jwks))
        .route("/", post(serve_get_user))
        .with_state(state)
}

async fn serve_jwks(State(state): State<Arc<ServerState>>) -> axum::response::Response {
    let n = state.fetches.fetch_add(1, Ordering::SeqCst);
    let delay = *state.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mode = state.mode.lock().unwrap().clone();
    let json = |keys: Vec<Value>| {
        (
            // No keep-alive: a stopped server must look down to every client.
            [
                ("content-type", "application/json"),
                ("connection", "close"),
            ],
            json!({ "keys": keys }).to_string(),
        )
            .into_response()
    };
    match mode {
        Mode::Up => json(state.keys.lock().unwrap().clone()),
        Mode::Flapping(other) if n % 2 == 1 => json(other),
        Mode::Flapping(_) => json(state.keys.lock().unwrap().clone()),
        Mode::Status(code) => (
            StatusCode::from_u16(code).unwrap(),
            [("content-type", "text/html"), ("connection", "close")],
            "<html>unavailable</html>",
        )
            .into_response(),
        Mode::Garbage => (
            [
                ("content-type", "application/json"),
                ("connection", "close"),
            ],
            "{\"keys\": [ this is not json",
        )
            .into_response(),
        Mode::Huge(size) => (
            [
                ("content-type", "application/json"),
                ("connection", "close"),
            ],
            format!("{{\"keys\":[],\"pad\":\"{}\"}}", "x".repeat(size)),
        )
            .into_response(),
        Mode::RedirectTo(host) => (
            StatusCode::FOUND,
            [
                ("location", format!("http://{host}/jwks.json")),
                ("connection", "close".to_string()),
            ],
        )
            .into_response(),
    }
}

async fn serve_get_user(State(state): State<Arc<ServerState>>) -> axum::response::Response {
    state.get_user_calls.fetch_add(1, Ordering::SeqCst);
    let now = state.get_user_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.get_user_most_at_once.fetch_max(now, Ordering::SeqCst);
    let delay = *state.get_user_delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    state.get_user_in_flight.fetch_sub(1, Ordering::SeqCst);
    let status = *state.get_user_status.lock().unwrap();
    if status != 200 {
        return (
            StatusCode::from_u16(status).unwrap(),
            [("content-type", "application/x-amz-json-1.1")],
            json!({
                "__type": if status == 400 { "NotAuthorizedException" } else { "InternalErrorException" },
                "message": *state.get_user_message.lock().unwrap(),
            })
            .to_string(),
        )
            .into_response();
    }
    (
        [("content-type", "application/x-amz-json-1.1")],
        json!({"Username": "slow-user", "UserAttributes": [{"Name": "sub", "Value": "s-1"}]})
            .to_string(),
    )
        .into_response()
}

/// The one-pool configuration used by most tests, fetching keys from `jwks_url`.
pub fn config_for(jwks_url: &str) -> Config {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        pools: vec![PoolConfig {
            client_ids: vec![CLIENT_ID.into()],
            jwks_url: Some(jwks_url.into()),
            ..PoolConfig::new("main", REGION, POOL_ID)
        }],
        ..Config::default()
    };
    config.jwks.retry_backoff_min_ms = 50;
    config.jwks.retry_backoff_max_ms = 200;
    config.userinfo.cognito_lookup = false;
    config.metrics.listen = "127.0.0.1:0".parse().unwrap();
    config
}

/// Starts the real service and waits (bounded) for its keys.
pub async fn start_service(config: Config) -> RunningService {
    config.validate().expect("test config is valid");
    let service = App::spawn(config).await.expect("service starts");
    assert!(
        service.wait_ready(TIMEOUT).await,
        "service did not load keys"
    );
    service
}

pub async fn client(service: &RunningService) -> TokenValidatorClient<Channel> {
    TokenValidatorClient::connect(service.url())
        .await
        .expect("connects")
}

/// Claims of a Cognito ID token for the test pool.
pub fn id_claims() -> Value {
    let now = now();
    json!({
        "sub": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "iss": issuer(),
        "aud": CLIENT_ID,
        "token_use": "id",
        "cognito:username": "alice",
        "cognito:groups": ["admin", "users"],
        "email": "alice@example.com",
        "email_verified": true,
        "preferred_username": "Alice",
        "custom:tenant": "acme",
        "auth_time": now,
        "iat": now,
        "exp": now + 3600,
        "jti": format!("jti-{}", rand_suffix()),
        "origin_jti": "origin-1",
    })
}

/// Claims of a Cognito access token for the test pool.
pub fn access_claims() -> Value {
    let now = now();
    json!({
        "sub": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "iss": issuer(),
        "client_id": CLIENT_ID,
        "token_use": "access",
        "scope": "openid email api/read",
        "username": "alice",
        "cognito:groups": ["users"],
        "auth_time": now,
        "iat": now,
        "exp": now + 3600,
        "jti": format!("jti-{}", rand_suffix()),
        "origin_jti": "origin-1",
    })
}

pub fn rand_suffix() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A ValidateToken request with no policy.
pub fn request(token: impl Into<String>) -> proto::ValidateTokenRequest {
    proto::ValidateTokenRequest {
        token: token.into(),
        ..Default::default()
    }
}

pub async fn validate(
    client: &mut TokenValidatorClient<Channel>,
    request: proto::ValidateTokenRequest,
) -> proto::ValidateTokenResponse {
    client
        .validate_token(request)
        .await
        .expect("ValidateToken answers")
        .into_inner()
}

pub fn reason_of(response: &proto::ValidateTokenResponse) -> proto::Reason {
    proto::Reason::try_from(response.reason).unwrap()
}

/// Polls `check` every 20 ms until it is true or TIMEOUT passes.
pub async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// The Prometheus text of a metrics port.
pub async fn scrape_metrics(addr: SocketAddr) -> String {
    let response = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("the metrics port answers");
    assert!(response.status().is_success(), "{}", response.status());
    response.text().await.expect("a text body")
}

/// The summed value of every series of `name` whose labels contain `label` (e.g. `pool="main"`).
pub fn metric_sum(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}
