//! The sections of the configuration file, each with its defaults.

use std::net::SocketAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SigningAlgorithm;

/// One trusted user pool.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
// A pool names its app clients unless it says `allow_any_client: true`.
#[schemars(extend(
    "if" = { "not": { "required": ["allow_any_client"], "properties": { "allow_any_client": { "const": true } } } },
    "then" = { "required": ["client_ids"], "properties": { "client_ids": { "minItems": 1 } } }
))]
pub struct PoolConfig {
    /// Label used in metrics and logs; unique.
    #[schemars(length(min = 1))]
    pub name: String,
    /// AWS region of the pool, e.g. us-east-1.
    #[schemars(regex(pattern = r"^[a-z0-9]+(-[a-z0-9]+)+$"), length(max = 32))]
    pub region: String,
    /// Cognito user pool id, REGION_ID, e.g. us-east-1_AbCdEf123.
    #[schemars(regex(pattern = r"^[\w-]+_[0-9A-Za-z]+$"), length(max = 55))]
    pub user_pool_id: String,
    /// App clients whose tokens are accepted (`aud` of ID tokens, `client_id` of access tokens).
    #[serde(default)]
    pub client_ids: Vec<String>,
    /// Token kinds accepted from this pool.
    #[serde(default = "default_token_use")]
    #[schemars(length(min = 1))]
    pub token_use: Vec<TokenUse>,
    /// Overrides the issuer (emulators, the `issuer-cognito-idp` host); compared
    /// exactly with the token's `iss`, so no trailing slash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Overrides the JWKS URL (default `{issuer}/.well-known/jwks.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// Accept tokens of every app client of the pool; must be said explicitly.
    #[serde(default)]
    pub allow_any_client: bool,
    /// Whether readiness waits for this pool's keys. An optional pool (tenants,
    /// staging, a pool just added) never makes the service unready: its tokens
    /// answer UNAVAILABLE until its keys arrive, while every other pool serves.
    #[serde(default = "default_required")]
    pub required: bool,
    /// The online revocation check (off by default).
    #[serde(default)]
    pub revocation: super::RevocationConfig,
}

fn default_required() -> bool {
    true
}

impl PoolConfig {
    /// A pool with the documented defaults: no app client listed (so it needs
    /// `client_ids` or `allow_any_client` before it validates), both token
    /// kinds, the standard Cognito issuer and JWKS URL, required for readiness.
    pub fn new(
        name: impl Into<String>,
        region: impl Into<String>,
        user_pool_id: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            region: region.into(),
            user_pool_id: user_pool_id.into(),
            client_ids: Vec::new(),
            token_use: default_token_use(),
            issuer: None,
            jwks_url: None,
            allow_any_client: false,
            required: default_required(),
            revocation: super::RevocationConfig::default(),
        }
    }

    /// The exact `iss` value this pool's tokens carry.
    pub fn issuer(&self) -> String {
        match &self.issuer {
            Some(issuer) => issuer.clone(),
            None => format!(
                "https://cognito-idp.{}.amazonaws.com/{}",
                self.region, self.user_pool_id
            ),
        }
    }

    /// Where this pool's public keys are published.
    pub fn jwks_url(&self) -> String {
        match &self.jwks_url {
            Some(url) => url.clone(),
            None => format!("{}/.well-known/jwks.json", self.issuer()),
        }
    }
}

pub(super) fn default_token_use() -> Vec<TokenUse> {
    vec![TokenUse::Id, TokenUse::Access]
}

/// The two kinds of Cognito token this service validates.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenUse {
    Id,
    Access,
}

impl TokenUse {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenUse::Id => "id",
            TokenUse::Access => "access",
        }
    }
}

/// How GetUserInfo finds a profile for access tokens.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct UserInfoConfig {
    /// Call Cognito's GetUser for access tokens.
    pub cognito_lookup: bool,
    /// GetUser endpoint; `{region}` is replaced by the token's pool region.
    pub cognito_endpoint: String,
    /// How long a GetUser answer is reused (never past the token's `exp`).
    pub cache_ttl_secs: u64,
    /// Upper bound on cached GetUser answers.
    pub cache_max_entries: u64,
    /// Timeout of one GetUser call.
    pub timeout_ms: u64,
    /// Connect timeout of a GetUser call; unset: `jwks.connect_timeout_ms`
    /// (its former key, still honoured as an alias).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_timeout_ms: Option<u64>,
    /// Allow an `http://` GetUser endpoint off loopback (never in production);
    /// unset: `jwks.allow_insecure_http` (its former key, still honoured as an alias).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_insecure_http: Option<bool>,
}

impl Default for UserInfoConfig {
    fn default() -> Self {
        Self {
            cognito_lookup: true,
            cognito_endpoint: "https://cognito-idp.{region}.amazonaws.com/".into(),
            cache_ttl_secs: 60,
            cache_max_entries: 100_000,
            timeout_ms: 3_000,
            connect_timeout_ms: None,
            allow_insecure_http: None,
        }
    }
}

impl UserInfoConfig {
    pub fn endpoint_for(&self, region: &str) -> String {
        self.cognito_endpoint.replace("{region}", region)
    }

    /// The connect timeout of a GetUser call (the alias already applied at load).
    pub fn connect_timeout_ms(&self) -> u64 {
        self.connect_timeout_ms
            .unwrap_or(JwksConfig::default().connect_timeout_ms)
    }

    /// Whether an `http://` GetUser endpoint may be used off loopback.
    pub fn allow_insecure_http(&self) -> bool {
        self.allow_insecure_http.unwrap_or(false)
    }

    /// The former `jwks.*` keys that also governed GetUser, as aliases of the
    /// `userinfo.*` ones: they apply where the new key is not set.
    pub(super) fn apply_aliases(&mut self, jwks: &JwksConfig) {
        self.connect_timeout_ms
            .get_or_insert(jwks.connect_timeout_ms);
        self.allow_insecure_http
            .get_or_insert(jwks.allow_insecure_http);
    }
}

/// Fetching and refreshing the pools' key sets.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct JwksConfig {
    /// Background refresh period (jittered by up to 10%).
    pub refresh_interval_secs: u64,
    /// After an unknown-`kid` refetch, further misses answer UNKNOWN_KEY without a fetch for this long.
    pub unknown_kid_cooldown_secs: u64,
    /// Connect timeout of one fetch (also GetUser's, unless `userinfo.connect_timeout_ms` is set).
    pub connect_timeout_ms: u64,
    /// Total timeout of one fetch.
    pub fetch_timeout_ms: u64,
    /// Largest JWKS body accepted.
    pub max_response_bytes: usize,
    /// Allow `http://` JWKS URLs on non-loopback hosts (never in production); also
    /// GetUser's, unless `userinfo.allow_insecure_http` is set.
    pub allow_insecure_http: bool,
    /// First retry delay after a failed fetch; doubles up to `retry_backoff_max_ms`.
    pub retry_backoff_min_ms: u64,
    pub retry_backoff_max_ms: u64,
    /// How many unknown `kid`s are remembered per process, so repeats cost no fetch.
    pub unknown_kid_memory: u64,
    /// Requests of one pool that may wait for an unknown-kid refetch at once;
    /// the rest answer UNKNOWN_KEY at once, so a flood of unknown kids while the
    /// JWKS endpoint hangs cannot hold every admission slot.
    pub max_refetch_waiters: usize,
}

impl Default for JwksConfig {
    fn default() -> Self {
        Self {
            refresh_interval_secs: 300,
            unknown_kid_cooldown_secs: 30,
            connect_timeout_ms: 2_000,
            fetch_timeout_ms: 5_000,
            max_response_bytes: 1024 * 1024,
            allow_insecure_http: false,
            retry_backoff_min_ms: 500,
            retry_backoff_max_ms: 30_000,
            unknown_kid_memory: 10_000,
            max_refetch_waiters: 32,
        }
    }
}

/// Token-level checks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ValidationConfig {
    /// Accepted `alg` values. Only RSA algorithms may be listed; `none` and HS* never are.
    #[schemars(length(min = 1))]
    pub algorithms: Vec<SigningAlgorithm>,
    /// Seconds a token is still accepted after its `exp` (at most 300).
    pub leeway_secs: u64,
    /// How far in the future `iat` and `nbf` may be (at most 300): Cognito's
    /// clock is not ours, and `iat` is whole seconds, so a token used within its
    /// first second is otherwise refused whenever our clock is a little behind.
    pub max_clock_skew_secs: u64,
    /// Tokens longer than this are refused with INVALID_ARGUMENT.
    pub max_token_bytes: usize,
}

/// Upper bound of `validation.leeway_secs` and `validation.max_clock_skew_secs`:
/// past a few minutes a "skew" is a policy of accepting expired tokens.
pub const MAX_SKEW_SECS: u64 = 300;

impl Default for ValidationConfig {
    fn default() -> Self {
        Self {
            algorithms: vec![SigningAlgorithm::Rs256],
            leeway_secs: 0,
            max_clock_skew_secs: 60,
            max_token_bytes: 16 * 1024,
        }
    }
}

/// The cache of verified tokens.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TokenCacheConfig {
    pub enabled: bool,
    /// An entry lives at most this long (and never past the token's `exp`).
    pub max_ttl_secs: u64,
    /// Bound on the summed size of cached entries.
    pub max_weight_bytes: u64,
}

impl Default for TokenCacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_ttl_secs: 3600,
            max_weight_bytes: 64 * 1024 * 1024,
        }
    }
}

/// gRPC server behaviour.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// After SIGTERM, health reports NOT_SERVING while calls are still served for
    /// this long, so load balancers and clients move away before the drain starts.
    pub shutdown_delay_ms: u64,
    /// After the delay, in-flight calls get this long to finish before the process exits.
    pub shutdown_grace_secs: u64,
    /// Largest gRPC request message accepted.
    pub max_request_bytes: usize,
    /// ValidateToken/GetUserInfo calls in flight at once; beyond, RESOURCE_EXHAUSTED at once (no queue).
    pub max_concurrent_requests: usize,
    /// A call running longer than this is cancelled (DEADLINE_EXCEEDED-like `CANCELLED`).
    pub request_timeout_ms: u64,
    /// HTTP/2 streams one connection may have open. Each stream in flight
    /// costs ~1 KB, so `max_connections × max_concurrent_streams` bounds what a
    /// burst (or an attack) can take: 1,024 × 32 stays under 100 MiB.
    pub max_concurrent_streams: u32,
    /// Optional per-caller limit (by mTLS client certificate, else by peer IP), requests/s; 0 = off.
    pub rate_limit_per_caller: u32,
    /// HTTP/2 PING sent after this much silence; a peer that does not answer
    /// within `http2_keepalive_timeout_secs` is disconnected.
    pub http2_keepalive_interval_secs: u64,
    pub http2_keepalive_timeout_secs: u64,
    /// Close connections older than this (after a grace for calls in flight), so
    /// long-lived HTTP/2 clients spread over new replicas; 0 = never.
    pub max_connection_age_secs: u64,
    /// Connections open at once; at the cap, new ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// A connection that sends nothing (no TLS ClientHello, no HTTP/2 preface)
    /// for this long after it was accepted is closed.
    pub preface_timeout_secs: u64,
    /// A connection with answers waiting that the peer does not read (a zero
    /// flow-control window, a socket nobody reads) is closed after this long
    /// without one of them delivered.
    pub stall_timeout_secs: u64,
    /// Answers written but not yet read by their peers, summed over every
    /// connection. Past it, a call on a connection that already has unread
    /// answers is refused at once (RESOURCE_EXHAUSTED); a connection whose
    /// peer reads is always answered.
    pub max_unread_answers: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            shutdown_delay_ms: 0,
            shutdown_grace_secs: 20,
            max_request_bytes: 64 * 1024,
            max_concurrent_requests: 1024,
            request_timeout_ms: 10_000,
            max_concurrent_streams: 32,
            rate_limit_per_caller: 0,
            http2_keepalive_interval_secs: 30,
            http2_keepalive_timeout_secs: 10,
            max_connection_age_secs: 0,
            max_connections: 1024,
            preface_timeout_secs: 10,
            stall_timeout_secs: 10,
            max_unread_answers: 1024,
        }
    }
}

/// The HTTP port for Prometheus scrapes and HTTP health probes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `GET /metrics`, `/healthz` and `/readyz`.
    pub enabled: bool,
    /// The side port's address, HOST:PORT.
    #[schemars(with = "String")]
    pub listen: SocketAddr,
    /// Connections open at once on this port (scrapers and probes need few).
    pub max_connections: usize,
    /// A connection that sends nothing for this long is closed; a request's
    /// headers must arrive within it too.
    pub idle_timeout_secs: u64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([0, 0, 0, 0], 9090)),
            max_connections: 64,
            idle_timeout_secs: 10,
        }
    }
}

/// The audit log of rejected tokens (target `token_validator::audit`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Rejection events written per second at most (bursts up to this many);
    /// the rest are counted and the count is reported with the next event.
    pub max_events_per_sec: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            max_events_per_sec: 100,
        }
    }
}

/// TLS for the gRPC port. Files are re-read when they change (polled) and on SIGHUP;
/// established connections keep their session.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain of the server.
    pub cert_file: std::path::PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: std::path::PathBuf,
    /// PEM CA bundle: when set, clients must present a certificate chaining to it (mTLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca_file: Option<std::path::PathBuf>,
    /// With mTLS: only these client identities (a DNS or URI SAN, or the subject CN) may call.
    #[serde(default)]
    pub allowed_client_names: Vec<String>,
    /// How often the files are checked for changes.
    #[serde(default = "default_tls_reload")]
    pub reload_interval_secs: u64,
}

fn default_tls_reload() -> u64 {
    10
}
