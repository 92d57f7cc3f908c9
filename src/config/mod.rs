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
//!    `COGNITO_CLIENT_IDS` (comma-separated), and optionally
//!    `COGNITO_REVOCATION_CHECK` (`never`, `on_request`, `always`), which
//!    defines the pool when the file lists none.

mod checks;
mod gateway;
mod load_error;
mod ranges;
mod revocation;
mod schema;
mod sections;
mod types;

use std::path::Path;

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Yaml},
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use gateway::{GatewayConfig, GatewayPolicy, GatewayRoute, IdentityHeaderNames};
pub use revocation::{RevocationCheck, RevocationConfig, RevocationOnError};
pub use schema::{chart_schema, json_schema};
pub use sections::*;
pub use types::{ListenAddr, SigningAlgorithm};

/// A configuration problem: one line naming the key as written in YAML and
/// what is wrong with it. It has no `source`, so no error report prints the
/// same problem twice.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `key` is empty for the top level (an unknown section).
    #[error("config: {key}{}{problem}", if key.is_empty() { "" } else { ": " })]
    Invalid { key: String, problem: String },
}

fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        problem: problem.into(),
    }
}

/// Environment variables that set config keys: `TOKEN_VALIDATOR__JWKS__REFRESH_INTERVAL_SECS`.
pub const ENV_PREFIX: &str = "TOKEN_VALIDATOR__";

/// A configured pool: its position in `pools`. Every layer (key store,
/// validator, metrics) names a pool by it; its name is only a label.
pub type PoolId = usize;

/// The whole configuration of the service.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[schemars(title = "token-validator configuration")]
pub struct Config {
    /// gRPC listen address: `HOST:PORT`, or `unix:///path/to.sock`.
    pub listen: ListenAddr,
    /// The trusted Cognito user pools.
    pub pools: Vec<PoolConfig>,
    pub userinfo: UserInfoConfig,
    pub jwks: JwksConfig,
    pub validation: ValidationConfig,
    pub token_cache: TokenCacheConfig,
    pub server: ServerConfig,
    pub metrics: MetricsConfig,
    pub audit: AuditConfig,
    /// Proxies asking "may this request pass?": Envoy ext_authz, HTTP forward-auth.
    pub gateway: GatewayConfig,
    /// TLS (and optionally mTLS) on the gRPC port; absent: plaintext.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: ListenAddr::Tcp(([0, 0, 0, 0], 50051).into()),
            pools: Vec::new(),
            userinfo: UserInfoConfig::default(),
            jwks: JwksConfig::default(),
            validation: ValidationConfig::default(),
            token_cache: TokenCacheConfig::default(),
            server: ServerConfig::default(),
            metrics: MetricsConfig::default(),
            audit: AuditConfig::default(),
            gateway: GatewayConfig::default(),
            tls: None,
        }
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
        let mut config = Self::read(file)?;
        config.apply_one_pool_env(var)?;
        config.validate()?;
        Ok(config)
    }

    /// Defaults, the optional YAML file and the `TOKEN_VALIDATOR__*`
    /// environment, not yet validated: `dev` adds its own pool first.
    pub fn read(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(invalid(
                    "--config",
                    format!("{} is not a readable file", path.display()),
                ));
            }
            figment = figment.merge(Yaml::file_exact(path));
        }
        figment = figment.merge(Env::prefixed(ENV_PREFIX).split("__"));
        let mut config: Config = figment.extract().map_err(load_error::one_line)?;
        config.userinfo.apply_aliases(&config.jwks);
        Ok(config)
    }

    /// The effective configuration as YAML: every value, defaults included,
    /// in the file's own syntax (what `check-config --print` writes). It
    /// holds no secret: TLS material is named by path only.
    pub fn to_yaml(&self) -> String {
        serde_norway::to_string(self).unwrap_or_else(|e| format!("# cannot print: {e}\n"))
    }

    /// The effective configuration as one JSON line, for the start-up log.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("\"cannot print: {e}\""))
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
        let check = match var("COGNITO_REVOCATION_CHECK").as_deref().map(str::trim) {
            None | Some("") | Some("never") => RevocationCheck::Never,
            Some("on_request") => RevocationCheck::OnRequest,
            Some("always") => RevocationCheck::Always,
            Some(other) => {
                return Err(invalid(
                    "COGNITO_REVOCATION_CHECK",
                    format!(
                        "{:?} is not never, on_request or always",
                        crate::text::bounded(other, 32)
                    ),
                ));
            }
        };
        self.pools.push(PoolConfig {
            client_ids,
            revocation: RevocationConfig {
                check,
                ..RevocationConfig::default()
            },
            ..PoolConfig::new(
                var("COGNITO_POOL_NAME").unwrap_or_else(|| "default".into()),
                region,
                user_pool_id,
            )
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{checks::is_user_pool_id, *};
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
        assert_eq!(config.listen.to_string(), "0.0.0.0:50051");
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
        assert_eq!(config.validation.algorithms, vec![SigningAlgorithm::Rs256]);
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
        assert_eq!(config.pools[0].revocation.check, RevocationCheck::Never);
        let with_check = |value: &'static str| {
            let mut env = env.clone();
            env.insert("COGNITO_REVOCATION_CHECK", value);
            Config::load_from(None, move |k| env.get(k).map(|v| v.to_string()))
        };
        assert_eq!(
            with_check("on_request").unwrap().pools[0].revocation.check,
            RevocationCheck::OnRequest
        );
        let err = with_check("sometimes").unwrap_err().to_string();
        assert!(err.contains("COGNITO_REVOCATION_CHECK"), "{err}");
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
    }

    #[test]
    fn leeway_and_clock_skew_are_bounded_at_load() {
        let config = load_yaml(ONE_POOL, &[]).unwrap();
        assert_eq!(config.validation.leeway_secs, 0);
        assert_eq!(config.validation.max_clock_skew_secs, 60);
        for key in ["leeway_secs", "max_clock_skew_secs"] {
            for value in ["301", "315360000", "9223372036854775808"] {
                let yaml = format!("{ONE_POOL}validation:\n  {key}: {value}\n");
                let err = load_yaml(&yaml, &[]).unwrap_err().to_string();
                assert!(err.contains(&format!("validation.{key}")), "{err}");
            }
            load_yaml(&format!("{ONE_POOL}validation:\n  {key}: 300\n"), &[]).unwrap();
        }
    }

    #[test]
    fn a_pools_revocation_keys_are_checked_and_named() {
        let config = load_yaml(ONE_POOL, &[]).unwrap();
        assert_eq!(config.pools[0].revocation.check, RevocationCheck::Never);
        assert_eq!(config.pools[0].revocation.cache_ttl_secs, 30);
        let yaml = format!("{ONE_POOL}    revocation:\n      cache_ttl_secs: 99999\n");
        let err = load_yaml(&yaml, &[]).unwrap_err().to_string();
        assert!(
            err.starts_with("config: pools[0].revocation.cache_ttl_secs: 99999 is out of range"),
            "{err}"
        );
        let yaml = format!("{ONE_POOL}    revocation:\n      check: alway\n");
        let err = load_yaml(&yaml, &[]).unwrap_err().to_string();
        assert!(err.contains("(did you mean \"always\"?)"), "{err}");
        let yaml =
            format!("{ONE_POOL}    revocation:\n      check: on_request\n      on_error: allow\n");
        let ok = load_yaml(&yaml, &[]).unwrap();
        assert_eq!(ok.pools[0].revocation.on_error, RevocationOnError::Allow);
        let yaml =
            format!("{ONE_POOL}    revocation:\n      endpoint: http://moto.internal:5000/\n");
        let err = load_yaml(&yaml, &[]).unwrap_err().to_string();
        assert!(
            err.starts_with("config: pools[0].revocation.endpoint: "),
            "{err}"
        );
        assert!(err.contains("userinfo.allow_insecure_http"), "{err}");
        let yaml = format!("{ONE_POOL}    revocation:\n      endpoint: http://127.0.0.1:5000/\n");
        load_yaml(&yaml, &[]).unwrap();
    }

    #[test]
    fn env_pool_and_file_pools_do_not_mix_silently() {
        let err = load_yaml(ONE_POOL, &[("COGNITO_USER_POOL_ID", "us-east-1_Q")]).unwrap_err();
        assert!(err.to_string().contains("COGNITO_USER_POOL_ID"), "{err}");
    }
}
