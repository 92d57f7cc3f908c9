//! Gateway integrations: a proxy asks "may this request pass?" and the app
//! behind it needs no auth code at all. Envoy and Istio ask over ext_authz
//! (`grpc::ext_authz`, on the gRPC port); nginx, Traefik, Caddy and
//! ingress-nginx over HTTP forward-auth ([`forward_auth`], its own port).
//!
//! Both adapters reduce the question to a [`ProxiedRequest`], find its
//! [`Rule`] (the first matching route of `gateway.routes`, else
//! `gateway.default`), have the token checked under the rule's policy, and
//! turn the outcome into a [`Verdict`] here, once, so the two answer alike.

pub mod forward_auth;
mod identity;
mod routes;

use std::{borrow::Cow, collections::HashMap, future::Future, sync::Arc};

pub use identity::IdentityHeaders;
pub use routes::Rule;

use crate::{
    config::{GatewayConfig, TokenUse},
    validate::{Policy, Reason, ValidationError, VerifiedToken},
};

/// The realm of the `WWW-Authenticate` challenges.
pub const REALM: &str = "token-validator";

/// What the proxy says about the request it holds.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProxiedRequest<'a> {
    /// The request's host (`:authority`), possibly with a port.
    pub host: Option<&'a str>,
    /// The path, possibly with a query.
    pub path: &'a str,
    pub method: &'a str,
    /// The `Authorization` header as sent.
    pub authorization: Option<&'a str>,
}

/// The answer to the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Let the request through with these identity headers (none for an
    /// anonymous route). Every identity header name not listed must be removed.
    Allow(Vec<(String, String)>),
    /// 401 (no valid token) or 403 (a valid token the rule refuses).
    Deny(Denial),
    /// 503: no answer can be given now (keys not loaded, service busy or slow).
    Unavailable(String),
}

/// A refusal as HTTP: status, challenge and a small JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub status: u16,
    /// The `WWW-Authenticate` value (RFC 6750).
    pub challenge: String,
    /// `{"error": …, "reason": "REASON_…", "message": …}`.
    pub body: String,
}

/// The rules, compiled once from `gateway`.
pub struct Gateway {
    routes: Vec<routes::Route>,
    default: Rule,
    headers: Arc<IdentityHeaders>,
}

impl Gateway {
    pub fn new(config: &GatewayConfig) -> Self {
        Self {
            routes: config.routes.iter().map(routes::Route::new).collect(),
            default: Rule::from_policy(&config.default),
            headers: Arc::new(IdentityHeaders::new(&config.headers)),
        }
    }

    /// The rule of `request`: the first route that matches it, else the default.
    pub fn rule_for(&self, request: &ProxiedRequest<'_>) -> &Rule {
        if self.routes.is_empty() {
            return &self.default;
        }
        // Normalised once for every route (the common path allocates nothing).
        let path = routes::normal_path(request.path);
        self.routes
            .iter()
            .find(|route| route.matches(request, &path))
            .map_or(&self.default, |route| &route.rule)
    }

    /// The identity header names, for adapters that must strip client copies.
    pub fn identity_headers(&self) -> &IdentityHeaders {
        &self.headers
    }

    /// The bearer token of `request`, or the 401 a proxy answers without one.
    pub fn bearer<'a>(&self, request: &ProxiedRequest<'a>) -> Result<&'a str, Denial> {
        let Some(value) = request.authorization else {
            return Err(denial(
                401,
                None,
                "missing_token",
                "no bearer token",
                None,
                &[],
            ));
        };
        let mut parts = value.trim().splitn(2, ' ');
        let scheme = parts.next().unwrap_or("");
        let token = parts.next().map(str::trim).unwrap_or("");
        if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
            return Err(denial(
                401,
                Some("invalid_request"),
                "invalid_request",
                "the Authorization header is not `Bearer <token>`",
                None,
                &[],
            ));
        }
        Ok(token)
    }

    /// The whole decision on `request`: its rule (narrowed by `extensions`,
    /// a proxy's per-route settings), then, unless the rule is anonymous, its
    /// bearer token checked by `check` under the rule's policy.
    pub async fn decide<'a, F, Fut>(
        &self,
        request: &ProxiedRequest<'a>,
        extensions: Option<&HashMap<String, String>>,
        check: F,
    ) -> Verdict
    where
        F: FnOnce(&'a str, Policy, bool) -> Fut,
        Fut: Future<Output = Result<Arc<VerifiedToken>, ValidationError>>,
    {
        let rule = self.rule_for(request);
        let rule = match extensions {
            Some(extensions) if !extensions.is_empty() => match rule.clone().narrowed(extensions) {
                Ok(rule) => Cow::Owned(rule),
                // A proxy misconfiguration: refuse (fail closed), and say why.
                Err(problem) => {
                    tracing::warn!(%problem, "gateway: cannot apply the proxy's per-route settings");
                    return Verdict::Deny(denial(
                        403,
                        Some("insufficient_scope"),
                        "forbidden",
                        &problem,
                        None,
                        &[],
                    ));
                }
            },
            _ => Cow::Borrowed(rule),
        };
        if rule.anonymous {
            return Verdict::Allow(Vec::new());
        }
        let token = match self.bearer(request) {
            Ok(token) => token,
            Err(denied) => return Verdict::Deny(denied),
        };
        // A policy without scopes or groups (the default's) clones without allocating.
        let result = check(token, rule.policy.clone(), rule.check_revocation).await;
        self.verdict(&rule, &result)
    }

    /// The verdict on a checked token.
    pub fn verdict(
        &self,
        rule: &Rule,
        result: &Result<Arc<VerifiedToken>, ValidationError>,
    ) -> Verdict {
        match result {
            Ok(token) => Verdict::Allow(self.headers.values(token)),
            Err(ValidationError::Rejected(rejection)) => {
                let (status, error) = match rejection.reason {
                    Reason::MissingScope | Reason::MissingGroup => (403, "insufficient_scope"),
                    _ => (401, "invalid_token"),
                };
                let scopes = match rejection.reason {
                    Reason::MissingScope => rule.policy.required_scopes.as_slice(),
                    _ => &[],
                };
                Verdict::Deny(denial(
                    status,
                    Some(error),
                    if rejection.reason == Reason::MissingGroup {
                        "forbidden"
                    } else {
                        error
                    },
                    &rejection.message,
                    Some(rejection.reason),
                    scopes,
                ))
            }
            Err(error @ (ValidationError::EmptyToken | ValidationError::TooLarge { .. })) => {
                Verdict::Deny(denial(
                    401,
                    Some("invalid_request"),
                    "invalid_request",
                    &error.to_string(),
                    None,
                    &[],
                ))
            }
            Err(
                error @ (ValidationError::KeysUnavailable { .. }
                | ValidationError::RevocationUnavailable { .. }),
            ) => Verdict::Unavailable(error.to_string()),
        }
    }
}

/// `REASON_EXPIRED` for [`Reason::Expired`]: the proto enum's value names,
/// which the Python client and the ValidateToken answers use too.
pub fn reason_name(reason: Reason) -> String {
    format!("REASON_{}", reason.as_str().to_ascii_uppercase())
}

/// A 401/403 with its RFC 6750 challenge and JSON body.
fn denial(
    status: u16,
    challenge_error: Option<&str>,
    error: &str,
    message: &str,
    reason: Option<Reason>,
    scopes: &[String],
) -> Denial {
    let mut challenge = format!("Bearer realm=\"{REALM}\"");
    if let Some(code) = challenge_error {
        challenge.push_str(&format!(
            ", error=\"{code}\", error_description=\"{}\"",
            quoted_safe(message)
        ));
    }
    if !scopes.is_empty() {
        challenge.push_str(&format!(", scope=\"{}\"", quoted_safe(&scopes.join(" "))));
    }
    let mut body = serde_json::json!({ "error": error, "message": message });
    if let Some(reason) = reason {
        body["reason"] = reason_name(reason).into();
    }
    Denial {
        status,
        challenge,
        body: body.to_string(),
    }
}

/// Text safe inside an RFC 6750 quoted string: printable ASCII without `"`
/// and `\` (RFC 6750 §3's `error_description` syntax); anything else is `?`.
fn quoted_safe(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c,
            _ => '?',
        })
        .collect()
}

/// Every token kind named as [`TokenUse`] text, for `context_extensions`.
fn token_use_named(name: &str) -> Option<TokenUse> {
    match name.trim() {
        "id" => Some(TokenUse::Id),
        "access" => Some(TokenUse::Access),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_quoted_string_safe() {
        let denied = denial(
            401,
            Some("invalid_token"),
            "invalid_token",
            "bad \"kid\" \\ é\r\n",
            Some(Reason::UnknownKey),
            &[],
        );
        assert_eq!(
            denied.challenge,
            "Bearer realm=\"token-validator\", error=\"invalid_token\", error_description=\"bad ?kid? ? ???\""
        );
        let body: serde_json::Value = serde_json::from_str(&denied.body).unwrap();
        assert_eq!(body["reason"], "REASON_UNKNOWN_KEY");
    }

    #[test]
    fn a_missing_token_gets_a_bare_challenge_and_a_wrong_scheme_invalid_request() {
        let gateway = Gateway::new(&GatewayConfig::default());
        let request = ProxiedRequest {
            path: "/",
            method: "GET",
            ..Default::default()
        };
        let denied = gateway.bearer(&request).unwrap_err();
        assert_eq!(
            (denied.status, denied.challenge.as_str()),
            (401, "Bearer realm=\"token-validator\"")
        );
        for value in ["Basic abc", "Bearer", "Bearer   "] {
            let denied = gateway
                .bearer(&ProxiedRequest {
                    authorization: Some(value),
                    ..request
                })
                .unwrap_err();
            assert!(denied.challenge.contains("invalid_request"), "{value}");
        }
        let ok = ProxiedRequest {
            authorization: Some("bearer  abc.def.ghi "),
            ..request
        };
        assert_eq!(gateway.bearer(&ok).unwrap(), "abc.def.ghi");
    }
}
