//! Validation of a loaded configuration: every value that could make the
//! service misbehave later is refused here, with the key named.

use std::collections::HashSet;

use super::{Config, ConfigError, invalid};

impl Config {
    /// Checks every value that could make the service misbehave later.
    pub fn validate(&self) -> Result<(), ConfigError> {
        // Ranges first: a number out of range is named by its own key.
        self.check_ranges()?;
        self.check_pools()?;
        self.check_validation()?;
        self.check_jwks()?;
        self.check_tls()?;
        self.check_gateway()?;
        Ok(())
    }

    /// Gateway routes and identity header names: well formed, so every
    /// request meets a policy that means what it says.
    fn check_gateway(&self) -> Result<(), ConfigError> {
        let gateway = &self.gateway;
        let mut names = HashSet::new();
        for (field, name) in gateway.headers.all() {
            let key = format!("gateway.headers.{field}");
            let valid = !name.is_empty()
                && name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                });
            if !valid {
                return Err(invalid(
                    key,
                    format!("{name:?} is not a lowercase header name (letters, digits, - and _)"),
                ));
            }
            if matches!(name, "authorization" | "host" | "cookie" | "content-length") {
                return Err(invalid(key, format!("{name:?} is not an identity header")));
            }
            if !names.insert(name) {
                return Err(invalid(key, format!("{name:?} names two identity headers")));
            }
        }
        for (i, route) in gateway.routes.iter().enumerate() {
            let key = |field: &str| format!("gateway.routes[{i}].{field}");
            if !route.path_prefix.starts_with('/') {
                return Err(invalid(key("path_prefix"), "must start with /"));
            }
            if route.host.as_deref().is_some_and(|h| h.trim().is_empty()) {
                return Err(invalid(
                    key("host"),
                    "must not be empty (leave it out for any host)",
                ));
            }
            if let Some(method) = route
                .methods
                .iter()
                .find(|m| m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()))
            {
                return Err(invalid(
                    key("methods"),
                    format!("{method:?} is not an upper-case HTTP method (e.g. GET)"),
                ));
            }
            let demands = route.token_use.is_some()
                || !route.required_scopes.is_empty()
                || !route.required_groups.is_empty()
                || route.check_revocation;
            if route.anonymous && demands {
                return Err(invalid(
                    key("anonymous"),
                    "an anonymous route needs no token, so it cannot require a token_use, scopes or groups",
                ));
            }
        }
        let default = &gateway.default;
        if default.anonymous
            && (default.token_use.is_some()
                || !default.required_scopes.is_empty()
                || !default.required_groups.is_empty()
                || default.check_revocation)
        {
            return Err(invalid(
                "gateway.default.anonymous",
                "an anonymous default needs no token, so it cannot require a token_use, scopes or groups",
            ));
        }
        Ok(())
    }

    /// The pools: names and issuers unique, ids and URLs well formed.
    fn check_pools(&self) -> Result<(), ConfigError> {
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
            check_pool_fields(pool, &key)?;
            if !names.insert(pool.name.as_str()) {
                return Err(invalid(
                    key("name"),
                    format!("{:?} is used by two pools", pool.name),
                ));
            }
            let issuer = pool.issuer();
            let jwks_http = (self.jwks.allow_insecure_http, "jwks.allow_insecure_http");
            check_url(&key("issuer"), &issuer, jwks_http)?;
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
            check_url(&key("jwks_url"), &pool.jwks_url(), jwks_http)?;
            let cognito_http = (
                self.userinfo.allow_insecure_http(),
                "userinfo.allow_insecure_http",
            );
            if self.userinfo.cognito_lookup {
                check_url(
                    "userinfo.cognito_endpoint",
                    &self.userinfo.endpoint_for(&pool.region),
                    cognito_http,
                )?;
            }
            if let Some(endpoint) = &pool.revocation.endpoint {
                check_url(&key("revocation.endpoint"), endpoint, cognito_http)?;
            }
        }
        Ok(())
    }

    /// Algorithms: at least one (the type admits RSA ones only).
    fn check_validation(&self) -> Result<(), ConfigError> {
        if self.validation.algorithms.is_empty() {
            return Err(invalid(
                "validation.algorithms",
                "must list at least one algorithm",
            ));
        }
        Ok(())
    }

    /// Key fetching: the back-off's bounds in order (each is in range already).
    fn check_jwks(&self) -> Result<(), ConfigError> {
        if self.jwks.retry_backoff_min_ms > self.jwks.retry_backoff_max_ms {
            return Err(invalid(
                "jwks.retry_backoff_min_ms",
                "must be <= jwks.retry_backoff_max_ms",
            ));
        }
        Ok(())
    }

    /// The TLS files exist, and client names come with a client CA.
    fn check_tls(&self) -> Result<(), ConfigError> {
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
        }
        Ok(())
    }
}

/// One pool's own fields: a name, a region, a user pool id, app clients
/// (or `allow_any_client`), at least one token kind.
fn check_pool_fields(
    pool: &super::PoolConfig,
    key: &dyn Fn(&str) -> String,
) -> Result<(), ConfigError> {
    if pool.name.trim().is_empty() {
        return Err(invalid(key("name"), "must not be empty"));
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
    Ok(())
}

/// Whether plain http may be used off loopback, and the key that says so.
type HttpAllowed = (bool, &'static str);

/// `url` is https, or http on loopback (or anywhere when allowed).
fn check_url(
    key: &str,
    url: &str,
    (allow_http, allow_key): HttpAllowed,
) -> Result<(), ConfigError> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| invalid(key, format!("{url:?} is not a URL: {e}")))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if allow_http || is_loopback_host(&parsed) => Ok(()),
        "http" => Err(invalid(
            key,
            format!("{url} uses http on a non-loopback host; use https or set {allow_key}: true"),
        )),
        other => Err(invalid(
            key,
            format!("{url}: scheme {other:?} is not http(s)"),
        )),
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
pub(super) fn is_user_pool_id(value: &str) -> bool {
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
