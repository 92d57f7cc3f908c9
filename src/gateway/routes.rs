//! Which rule a proxied request meets: the first route of `gateway.routes`
//! whose host, path prefix and methods match, else `gateway.default`.
//!
//! Paths are compared after removing dot segments and repeated slashes (with
//! `%2e` read as a dot), the way the app behind the proxy will read them: a
//! request for `/public/../admin` must meet the rule of `/admin`, not that of
//! an anonymous `/public`.

use std::{borrow::Cow, collections::HashMap};

use super::{ProxiedRequest, token_use_named};
use crate::{
    config::{GatewayPolicy, GatewayRoute},
    validate::Policy,
};

/// What a request must bring.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rule {
    /// No token needed.
    pub anonymous: bool,
    /// The token's kind, scopes and groups.
    pub policy: Policy,
    /// Ask Cognito whether the token was revoked (where its pool allows it).
    pub check_revocation: bool,
}

impl Rule {
    pub(super) fn from_policy(policy: &GatewayPolicy) -> Self {
        Self {
            anonymous: policy.anonymous,
            policy: Policy {
                token_use: policy.token_use,
                required_scopes: policy.required_scopes.clone(),
                required_groups: policy.required_groups.clone(),
            },
            check_revocation: policy.check_revocation,
        }
    }

    /// The rule narrowed by a proxy's per-route settings (Envoy's
    /// `context_extensions`): `token_use`, `required_scopes` and
    /// `required_groups` (comma-separated), `check_revocation` (`true`).
    /// Narrowing only ever demands more:
    /// scopes add to the route's, groups keep only those both name, a token
    /// kind must agree with the route's, and any of them ends anonymity.
    pub fn narrowed(mut self, extensions: &HashMap<String, String>) -> Result<Self, String> {
        let list = |key: &str| -> Option<Vec<String>> {
            extensions.get(key).map(|value| {
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(String::from)
                    .collect()
            })
        };
        if let Some(name) = extensions.get("token_use") {
            let Some(token_use) = token_use_named(name) else {
                return Err(format!(
                    "context_extensions token_use {:?} is not id or access",
                    crate::text::bounded(name, 16)
                ));
            };
            if self.policy.token_use.is_some_and(|own| own != token_use) {
                return Err("context_extensions token_use contradicts the route's".into());
            }
            self.policy.token_use = Some(token_use);
            self.anonymous = false;
        }
        if extensions
            .get("check_revocation")
            .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
        {
            self.check_revocation = true;
            self.anonymous = false;
        }
        if let Some(scopes) = list("required_scopes") {
            for scope in scopes {
                if !self.policy.required_scopes.contains(&scope) {
                    self.policy.required_scopes.push(scope);
                }
            }
            self.anonymous = false;
        }
        if let Some(groups) = list("required_groups") {
            self.policy.required_groups = if self.policy.required_groups.is_empty() {
                groups
            } else {
                let both: Vec<String> = groups
                    .into_iter()
                    .filter(|g| self.policy.required_groups.contains(g))
                    .collect();
                if both.is_empty() {
                    return Err(
                        "context_extensions required_groups share none with the route's".into(),
                    );
                }
                both
            };
            self.anonymous = false;
        }
        Ok(self)
    }
}

/// One compiled route.
pub(super) struct Route {
    host: Option<String>,
    path_prefix: String,
    methods: Vec<String>,
    pub(super) rule: Rule,
}

impl Route {
    pub(super) fn new(config: &GatewayRoute) -> Self {
        Self {
            host: config.host.as_deref().map(normal_host),
            path_prefix: config.path_prefix.clone(),
            methods: config.methods.clone(),
            rule: Rule::from_policy(&GatewayPolicy {
                anonymous: config.anonymous,
                token_use: config.token_use,
                required_scopes: config.required_scopes.clone(),
                required_groups: config.required_groups.clone(),
                check_revocation: config.check_revocation,
            }),
        }
    }

    /// Whether `request` (its path already through [`normal_path`]) is this route's.
    pub(super) fn matches(&self, request: &ProxiedRequest<'_>, normal_path: &str) -> bool {
        if let Some(host) = &self.host
            && request.host.map(normal_host).as_deref() != Some(host.as_str())
        {
            return false;
        }
        if !self.methods.is_empty()
            && !self
                .methods
                .iter()
                .any(|m| m.eq_ignore_ascii_case(request.method))
        {
            return false;
        }
        has_prefix(normal_path, &self.path_prefix)
    }
}

/// `Example.COM:443.` → `example.com`.
fn normal_host(host: &str) -> String {
    let host = host.trim();
    let without_port = match host.rsplit_once(':') {
        // An IPv6 literal keeps its brackets and colons.
        Some((name, port)) if !name.ends_with(']') || host.starts_with('[') => {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                name
            } else {
                host
            }
        }
        _ => host,
    };
    without_port.trim_end_matches('.').to_ascii_lowercase()
}

/// `prefix` is `path` itself, or a whole leading run of its segments.
fn has_prefix(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// The path as the app will read it: no query, no dot segments, no empty
/// segments, `%2e` read as `.`. A path that needs none of it is borrowed.
pub(super) fn normal_path(path: &str) -> Cow<'_, str> {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let clean = path.starts_with('/')
        && !path.contains("//")
        && !path.contains("/.")
        && !path.contains('%');
    if clean {
        return Cow::Borrowed(path);
    }
    let mut segments: Vec<String> = Vec::new();
    for segment in path.split('/') {
        let segment = segment.replace("%2e", ".").replace("%2E", ".");
        match segment.as_str() {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            _ => segments.push(segment),
        }
    }
    let trailing = path.ends_with('/') && !segments.is_empty();
    let mut normal = format!("/{}", segments.join("/"));
    if trailing {
        normal.push('/');
    }
    Cow::Owned(normal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TokenUse;

    /// `route.matches` with the path normalised as `Gateway::rule_for` does.
    fn matches(route: &Route, request: &ProxiedRequest<'_>) -> bool {
        route.matches(request, &normal_path(request.path))
    }

    fn route(yaml_like: GatewayRoute) -> Route {
        Route::new(&yaml_like)
    }

    fn plain(path: &str) -> GatewayRoute {
        GatewayRoute {
            host: None,
            path_prefix: path.into(),
            methods: Vec::new(),
            anonymous: false,
            token_use: None,
            required_scopes: Vec::new(),
            required_groups: Vec::new(),
            check_revocation: false,
        }
    }

    fn request<'a>(host: Option<&'a str>, method: &'a str, path: &'a str) -> ProxiedRequest<'a> {
        ProxiedRequest {
            host,
            path,
            method,
            authorization: None,
        }
    }

    #[test]
    fn paths_match_by_whole_segments_after_normalising() {
        let admin = route(plain("/admin"));
        for path in [
            "/admin",
            "/admin/",
            "/admin/users?x=1",
            "//admin",
            "/public/../admin/x",
            "/public/%2e%2e/admin",
        ] {
            assert!(matches(&admin, &request(None, "GET", path)), "{path}");
        }
        for path in ["/administrator", "/", "/public/admin", "/admin%2fx"] {
            assert!(!matches(&admin, &request(None, "GET", path)), "{path}");
        }
        assert!(matches(
            &route(plain("/")),
            &request(None, "GET", "/anything")
        ));
        assert_eq!(normal_path("/a/./b/../../../c//d/"), "/c/d/");
        assert!(matches!(
            normal_path("/admin/users?page=2"),
            Cow::Borrowed("/admin/users")
        ));
    }

    #[test]
    fn hosts_and_methods_narrow_a_route() {
        let mut config = plain("/");
        config.host = Some("API.example.com".into());
        config.methods = vec!["POST".into()];
        let api = route(config);
        assert!(matches(
            &api,
            &request(Some("api.example.com:8443"), "post", "/x")
        ));
        assert!(matches(
            &api,
            &request(Some("api.EXAMPLE.com."), "POST", "/x")
        ));
        assert!(!matches(
            &api,
            &request(Some("api.example.org"), "POST", "/x")
        ));
        assert!(!matches(
            &api,
            &request(Some("api.example.com"), "GET", "/x")
        ));
        assert!(!matches(&api, &request(None, "POST", "/x")));
        assert_eq!(normal_host("[::1]:8080"), "[::1]");
    }

    #[test]
    fn context_extensions_only_ever_demand_more() {
        let mut config = plain("/");
        config.required_groups = vec!["admin".into(), "ops".into()];
        config.required_scopes = vec!["read".into()];
        let rule = route(config).rule;
        let ext = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>()
        };
        let narrowed = rule
            .clone()
            .narrowed(&ext(&[
                ("required_groups", "ops, users"),
                ("required_scopes", "write"),
                ("token_use", "access"),
            ]))
            .unwrap();
        assert_eq!(narrowed.policy.required_groups, vec!["ops"]);
        assert_eq!(narrowed.policy.required_scopes, vec!["read", "write"]);
        assert_eq!(narrowed.policy.token_use, Some(TokenUse::Access));
        assert!(
            rule.clone()
                .narrowed(&ext(&[("required_groups", "users")]))
                .is_err()
        );
        assert!(rule.narrowed(&ext(&[("token_use", "refresh")])).is_err());
        let open = Rule {
            anonymous: true,
            ..Rule::default()
        };
        assert!(
            !open
                .narrowed(&ext(&[("required_groups", "a")]))
                .unwrap()
                .anonymous
        );
    }
}
