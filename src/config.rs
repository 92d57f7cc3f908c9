//! Typed configuration: one struct tree, defaults in one place, loaded from an
//! optional YAML file plus environment overrides, and validated once before any
//! port is bound, so a bad value fails fast with a message naming the key.
//!
//! Sources, later ones winning:
//! 1. the defaults below;
//! 2. the YAML file given to `serve --config`;
//! 3. `TOKEN_VALIDATOR__<SECTION>__<KEY>` environment variables (two underscores
//!    after the prefix, so client-side variables such as `TOKEN_VALIDATOR_ADDR`
//!    never collide), e.g. `TOKEN_VALIDATOR__JWKS__REFRESH_INTERVAL_SECS=60`;
//! 4. the one-pool shortcut `COGNITO_REGION`, `COGNITO_USER_POOL_ID`,
//!    `COGNITO_CLIENT_IDS` (comma-separated), which defines the pool when the
//!    file lists none.

use std::{collections::HashSet, net::SocketAddr, path::Path, time::Duration};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Yaml},
};
use serde::{Deserialize, Serialize};

/// A configuration problem, naming the key and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config: {key}: {problem}")]
    Invalid { key: String, problem: String },
    #[error("config: {0}")]
    Load(#[from] Box<figment::Error>),
}

fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        problem: problem.into(),
    }
}

/// The whole configuration of the service.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// gRPC listen address: `HOST:PORT`, or `unix:///path/to.sock`.
    pub listen: String,
    /// The trusted Cognito user pools.
    pub pools: Vec<PoolConfig>,
    pub userinfo: UserInfoConfig,
    pub jwks: JwksConfig,
    pub validation: ValidationConfig,
    pub token_cache: TokenCacheConfig,
    pub server: ServerConfig,
    pub metrics: MetricsConfig,
    pub audit: AuditConfig,
    /// TLS (and optionally mTLS) on the gRPC port; absent: plaintext.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:50051".into(),
            pools: Vec::new(),
            userinfo: UserInfoConfig::default(),
            jwks: JwksConfig::default(),
            validation: ValidationConfig::default(),
            token_cache: TokenCacheConfig::default(),
            server: ServerConfig::default(),
            metrics: MetricsConfig::default(),
            audit: AuditConfig::default(),
            tls: None,
        }
    }
}

/// One trusted user pool.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Label used in metrics and logs.
    pub name: String,
    pub region: String,
    pub user_pool_id: String,
    /// App clients whose tokens are accepted (`aud` of ID tokens, `client_id` of access tokens).
    #[serde(default)]
    pub client_ids: Vec<String>,
    /// Token kinds accepted from this pool.
    #[serde(default = "default_token_use")]
    pub token_use: Vec<TokenUse>,
    /// Overrides the issuer (emulators, the `issuer-cognito-idp` host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Overrides the JWKS URL (default `{issuer}/.well-known/jwks.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// Accept tokens of every app client of the pool; must be said explicitly.
    #[serde(default)]
    pub allow_any_client: bool,
}

impl PoolConfig {
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

fn default_token_use() -> Vec<TokenUse> {
    vec![TokenUse::Id, TokenUse::Access]
}

/// The two kinds of Cognito token this service validates.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
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
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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
}

impl Default for UserInfoConfig {
    fn default() -> Self {
        Self {
            cognito_lookup: true,
            cognito_endpoint: "https://cognito-idp.{region}.amazonaws.com/".into(),
            cache_ttl_secs: 60,
            cache_max_entries: 100_000,
            timeout_ms: 3_000,
        }
    }
}

impl UserInfoConfig {
    pub fn endpoint_for(&self, region: &str) -> String {
        self.cognito_endpoint.replace("{region}", region)
    }
}

/// Fetching and refreshing the pools' key sets.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct JwksConfig {
    /// Background refresh period (jittered by up to 10%).
    pub refresh_interval_secs: u64,
    /// After an unknown-`kid` refetch, further misses answer UNKNOWN_KEY without a fetch for this long.
    pub unknown_kid_cooldown_secs: u64,
    pub connect_timeout_ms: u64,
    /// Total timeout of one fetch.
    pub fetch_timeout_ms: u64,
    /// Largest JWKS body accepted.
    pub max_response_bytes: usize,
    /// Allow `http://` JWKS and GetUser URLs on non-loopback hosts (never in production).
    pub allow_insecure_http: bool,
    /// First retry delay after a failed fetch; doubles up to `retry_backoff_max_ms`.
    pub retry_backoff_min_ms: u64,
    pub retry_backoff_max_ms: u64,
    /// How many unknown `kid`s are remembered per process, so repeats cost no fetch.
    pub unknown_kid_memory: u64,
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
        }
    }
}

/// Token-level checks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ValidationConfig {
    /// Accepted `alg` values. Only RSA algorithms may be listed; `none` and HS* never are.
    pub algorithms: Vec<String>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway_secs: u64,
    /// Tokens longer than this are refused with INVALID_ARGUMENT.
    pub max_token_bytes: usize,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        Self {
            algorithms: vec!["RS256".into()],
            leeway_secs: 0,
            max_token_bytes: 16 * 1024,
        }
    }
}

/// The cache of verified tokens.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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
    /// HTTP/2 streams one connection may have open.
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
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            shutdown_delay_ms: 0,
            shutdown_grace_secs: 20,
            max_request_bytes: 64 * 1024,
            max_concurrent_requests: 1024,
            request_timeout_ms: 10_000,
            max_concurrent_streams: 256,
            rate_limit_per_caller: 0,
            http2_keepalive_interval_secs: 30,
            http2_keepalive_timeout_secs: 10,
            max_connection_age_secs: 0,
        }
    }
}

/// The HTTP port for Prometheus scrapes and HTTP health probes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `GET /metrics`, `/healthz` and `/readyz`.
    pub enabled: bool,
    pub listen: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: "0.0.0.0:9090".into(),
        }
    }
}

/// The audit log of rejected tokens (target `token_validator::audit`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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

/// Where the gRPC server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    Tcp(SocketAddr),
    Unix(std::path::PathBuf),
}

impl ListenAddr {
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        if let Some(path) = value.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(invalid("listen", "unix:// needs a socket path"));
            }
            return Ok(ListenAddr::Unix(path.into()));
        }
        value.parse().map(ListenAddr::Tcp).map_err(|_| {
            invalid(
                "listen",
                format!("{value:?} is not HOST:PORT (e.g. 0.0.0.0:50051) or unix:///path"),
            )
        })
    }
}

impl Config {
    /// Loads defaults, the optional YAML file and the environment, then validates.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, |name| std::env::var(name).ok())
    }

    /// Like [`Config::load`], with the one-pool variables read through `var`
    /// (tests pass a map instead of mutating the process environment).
    pub fn load_from(
        file: Option<&Path>,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(invalid(
                    "--config",
                    format!("file {} does not exist", path.display()),
                ));
            }
            figment = figment.merge(Yaml::file_exact(path));
        }
        figment = figment.merge(Env::prefixed("TOKEN_VALIDATOR__").split("__"));
        let mut config: Config = figment.extract().map_err(Box::new)?;
        config.apply_one_pool_env(var)?;
        config.validate()?;
        Ok(config)
    }

    fn apply_one_pool_env(
        &mut self,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let Some(user_pool_id) = var("COGNITO_USER_POOL_ID").filter(|v| !v.is_empty()) else {
            return Ok(());
        };
        if !self.pools.is_empty() {
            return Err(invalid(
                "COGNITO_USER_POOL_ID",
                "is set but the config file already lists pools; use one or the other",
            ));
        }
        let region = match var("COGNITO_REGION").filter(|v| !v.is_empty()) {
            Some(region) => region,
            None => user_pool_id
                .split_once('_')
                .map(|(region, _)| region.to_string())
                .unwrap_or_default(),
        };
        let client_ids = var("COGNITO_CLIENT_IDS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        self.pools.push(PoolConfig {
            name: var("COGNITO_POOL_NAME").unwrap_or_else(|| "default".into()),
            region,
            user_pool_id,
            client_ids,
            token_use: default_token_use(),
            issuer: None,
            jwks_url: None,
            allow_any_client: false,
        });
        Ok(())
    }

    /// Checks every value that could make the service misbehave later.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ListenAddr::parse(&self.listen)?;
        if self.pools.is_empty() {
            return Err(invalid(
                "pools",
                "no user pool configured: list pools in the config file or set COGNITO_USER_POOL_ID, \
                 COGNITO_REGION and COGNITO_CLIENT_IDS (or run `token-validator dev` for a local issuer)",
            ));
        }
        let mut names = HashSet::new();
        let mut issuers = HashSet::new();
        for (i, pool) in self.pools.iter().enumerate() {
            let key = |field: &str| format!("pools[{i}].{field}");
            if pool.name.trim().is_empty() {
                return Err(invalid(key("name"), "must not be empty"));
            }
            if !names.insert(pool.name.as_str()) {
                return Err(invalid(
                    key("name"),
                    format!("{:?} is used by two pools", pool.name),
                ));
            }
            if !is_region(&pool.region) {
                return Err(invalid(
                    key("region"),
                    format!(
                        "{:?} is not an AWS region name (e.g. us-east-1)",
                        pool.region
                    ),
                ));
            }
            if !is_user_pool_id(&pool.user_pool_id) {
                return Err(invalid(
                    key("user_pool_id"),
                    format!(
                        "{:?} is not a Cognito user pool id (REGION_ID, e.g. us-east-1_AbCdEf123)",
                        pool.user_pool_id
                    ),
                ));
            }
            if pool.client_ids.is_empty() && !pool.allow_any_client {
                return Err(invalid(
                    key("client_ids"),
                    "is empty: list the app client ids to accept, or set allow_any_client: true",
                ));
            }
            if pool.client_ids.iter().any(|c| c.trim().is_empty()) {
                return Err(invalid(key("client_ids"), "contains an empty client id"));
            }
            if pool.token_use.is_empty() {
                return Err(invalid(
                    key("token_use"),
                    "must list at least one of id, access",
                ));
            }
            let issuer = pool.issuer();
            self.check_url(&key("issuer"), &issuer)?;
            if issuer.ends_with('/') {
                return Err(invalid(
                    key("issuer"),
                    "must not end with '/': it is compared exactly with the token's iss",
                ));
            }
            if !issuers.insert(issuer.clone()) {
                return Err(invalid(
                    key("issuer"),
                    format!("{issuer} is the issuer of two pools"),
                ));
            }
            self.check_url(&key("jwks_url"), &pool.jwks_url())?;
            if self.userinfo.cognito_lookup {
                self.check_url(
                    "userinfo.cognito_endpoint",
                    &self.userinfo.endpoint_for(&pool.region),
                )?;
            }
        }
        if self.validation.algorithms.is_empty() {
            return Err(invalid(
                "validation.algorithms",
                "must list at least one algorithm",
            ));
        }
        for alg in &self.validation.algorithms {
            if !matches!(alg.as_str(), "RS256" | "RS384" | "RS512") {
                return Err(invalid(
                    "validation.algorithms",
                    format!(
                        "{alg:?} is not allowed: only RS256, RS384 and RS512 (Cognito signs with RS256)"
                    ),
                ));
            }
        }
        if self.validation.max_token_bytes == 0 {
            return Err(invalid("validation.max_token_bytes", "must be > 0"));
        }
        if self.jwks.refresh_interval_secs == 0 {
            return Err(invalid("jwks.refresh_interval_secs", "must be > 0"));
        }
        if self.jwks.fetch_timeout_ms == 0 || self.jwks.connect_timeout_ms == 0 {
            return Err(invalid("jwks.fetch_timeout_ms", "timeouts must be > 0"));
        }
        if self.jwks.retry_backoff_min_ms == 0
            || self.jwks.retry_backoff_min_ms > self.jwks.retry_backoff_max_ms
        {
            return Err(invalid(
                "jwks.retry_backoff_min_ms",
                "must be > 0 and <= jwks.retry_backoff_max_ms",
            ));
        }
        if self.jwks.max_response_bytes < 1024 {
            return Err(invalid("jwks.max_response_bytes", "must be at least 1024"));
        }
        if self.metrics.enabled {
            self.metrics.listen.parse::<SocketAddr>().map_err(|_| {
                invalid(
                    "metrics.listen",
                    format!(
                        "{:?} is not HOST:PORT (e.g. 0.0.0.0:9090)",
                        self.metrics.listen
                    ),
                )
            })?;
        }
        if let Some(tls) = &self.tls {
            for (key, path) in [
                ("tls.cert_file", Some(&tls.cert_file)),
                ("tls.key_file", Some(&tls.key_file)),
                ("tls.client_ca_file", tls.client_ca_file.as_ref()),
            ] {
                if let Some(path) = path
                    && !path.is_file()
                {
                    return Err(invalid(
                        key,
                        format!("{} is not a readable file", path.display()),
                    ));
                }
            }
            if !tls.allowed_client_names.is_empty() && tls.client_ca_file.is_none() {
                return Err(invalid(
                    "tls.allowed_client_names",
                    "needs tls.client_ca_file (client names are only known with mTLS)",
                ));
            }
            if tls.reload_interval_secs == 0 {
                return Err(invalid("tls.reload_interval_secs", "must be > 0"));
            }
        }
        if self.server.http2_keepalive_interval_secs == 0
            || self.server.http2_keepalive_timeout_secs == 0
        {
            return Err(invalid(
                "server.http2_keepalive_interval_secs",
                "keepalive interval and timeout must be > 0",
            ));
        }
        if self.server.max_concurrent_requests == 0
            || self.server.request_timeout_ms == 0
            || self.server.max_concurrent_streams == 0
        {
            return Err(invalid(
                "server",
                "max_concurrent_requests, request_timeout_ms and max_concurrent_streams must be > 0",
            ));
        }
        if self.audit.max_events_per_sec == 0 {
            return Err(invalid("audit.max_events_per_sec", "must be > 0"));
        }
        if self.userinfo.timeout_ms == 0 {
            return Err(invalid("userinfo.timeout_ms", "must be > 0"));
        }
        Ok(())
    }

    fn check_url(&self, key: &str, url: &str) -> Result<(), ConfigError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| invalid(key, format!("{url:?} is not a URL: {e}")))?;
        match parsed.scheme() {
            "https" => Ok(()),
            "http" if self.jwks.allow_insecure_http || is_loopback_host(&parsed) => Ok(()),
            "http" => Err(invalid(
                key,
                format!(
                    "{url} uses http on a non-loopback host; use https or set jwks.allow_insecure_http: true"
                ),
            )),
            other => Err(invalid(
                key,
                format!("{url}: scheme {other:?} is not http(s)"),
            )),
        }
    }

    pub fn listen_addr(&self) -> ListenAddr {
        ListenAddr::parse(&self.listen).expect("validated at load")
    }

    pub fn refresh_interval(&self) -> Duration {
        Duration::from_secs(self.jwks.refresh_interval_secs)
    }
}

fn is_loopback_host(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// AWS region names: lowercase letters, digits and dashes, e.g. `us-east-1`, `us-gov-west-1`.
fn is_region(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 32
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && value.contains('-')
}

/// AWS's pattern for user pool ids, `[\w-]+_[0-9a-zA-Z]+`, at most 55 characters.
fn is_user_pool_id(value: &str) -> bool {
    let Some((region, id)) = value.rsplit_once('_') else {
        return false;
    };
    value.len() <= 55
        && !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load_yaml(yaml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, yaml).unwrap();
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load_from(Some(&path), |k| env.get(k).cloned())
    }

    const ONE_POOL: &str = "pools:\n  - name: main\n    region: us-east-1\n    user_pool_id: us-east-1_AbCdEf123\n    client_ids: [abc]\n";

    #[test]
    fn a_minimal_file_gets_the_documented_defaults() {
        let config = load_yaml(ONE_POOL, &[]).unwrap();
        assert_eq!(config.listen, "0.0.0.0:50051");
        let pool = &config.pools[0];
        assert_eq!(
            pool.issuer(),
            "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123"
        );
        assert_eq!(
            pool.jwks_url(),
            "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123/.well-known/jwks.json"
        );
        assert_eq!(pool.token_use, vec![TokenUse::Id, TokenUse::Access]);
        assert_eq!(config.validation.algorithms, vec!["RS256"]);
        assert_eq!(config.token_cache.max_weight_bytes, 64 * 1024 * 1024);
    }

    #[test]
    fn the_one_pool_case_needs_only_environment_variables() {
        let env: HashMap<&str, &str> = [
            ("COGNITO_REGION", "eu-west-1"),
            ("COGNITO_USER_POOL_ID", "eu-west-1_Xyz"),
            ("COGNITO_CLIENT_IDS", "one, two"),
        ]
        .into();
        let config = Config::load_from(None, |k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(config.pools.len(), 1);
        assert_eq!(config.pools[0].client_ids, vec!["one", "two"]);
        assert_eq!(
            config.pools[0].issuer(),
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Xyz"
        );
    }

    #[test]
    fn user_pool_ids_of_any_length_are_accepted_and_bad_ones_named() {
        assert!(is_user_pool_id("us-east-1_AbCdEf123"));
        assert!(is_user_pool_id("ap-southeast-2_a"));
        assert!(is_user_pool_id("local_7bd8f3c1"));
        assert!(!is_user_pool_id("us-east-1"));
        assert!(!is_user_pool_id("us-east-1_Ab/../x"));
        let err = load_yaml(&ONE_POOL.replace("us-east-1_AbCdEf123", "nope"), &[]).unwrap_err();
        assert!(err.to_string().contains("pools[0].user_pool_id"), "{err}");
    }

    #[test]
    fn a_pool_without_client_ids_must_opt_in_to_any_client() {
        let yaml = ONE_POOL.replace("    client_ids: [abc]\n", "");
        let err = load_yaml(&yaml, &[]).unwrap_err();
        assert!(err.to_string().contains("pools[0].client_ids"), "{err}");
        let ok = load_yaml(&format!("{yaml}    allow_any_client: true\n"), &[]).unwrap();
        assert!(ok.pools[0].allow_any_client);
    }

    #[test]
    fn symmetric_and_none_algorithms_cannot_be_configured() {
        for alg in ["HS256", "none", "ES256"] {
            let yaml = format!("{ONE_POOL}validation:\n  algorithms: [{alg}]\n");
            let err = load_yaml(&yaml, &[]).unwrap_err();
            assert!(err.to_string().contains("validation.algorithms"), "{err}");
        }
    }

    #[test]
    fn plain_http_is_refused_off_loopback() {
        let yaml = format!("{ONE_POOL}    jwks_url: http://keys.example.com/jwks.json\n");
        let err = load_yaml(&yaml, &[]).unwrap_err();
        assert!(err.to_string().contains("pools[0].jwks_url"), "{err}");
        let yaml = format!("{ONE_POOL}    jwks_url: http://127.0.0.1:8080/jwks.json\n");
        load_yaml(&yaml, &[]).unwrap();
    }

    #[test]
    fn unknown_keys_and_bad_listen_addresses_are_named() {
        let err = load_yaml(&format!("{ONE_POOL}lisen: x\n"), &[]).unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
        let err = load_yaml(&format!("listen: nope\n{ONE_POOL}"), &[]).unwrap_err();
        assert!(err.to_string().contains("listen"), "{err}");
        assert_eq!(
            ListenAddr::parse("unix:///tmp/tv.sock").unwrap(),
            ListenAddr::Unix("/tmp/tv.sock".into())
        );
    }

    #[test]
    fn env_pool_and_file_pools_do_not_mix_silently() {
        let err = load_yaml(ONE_POOL, &[("COGNITO_USER_POOL_ID", "us-east-1_Q")]).unwrap_err();
        assert!(err.to_string().contains("COGNITO_USER_POOL_ID"), "{err}");
    }
}
