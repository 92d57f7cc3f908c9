//! The `gateway` section: what a proxy's "may this request pass?" question
//! (Envoy/Istio ext_authz on the gRPC port, HTTP forward-auth for nginx,
//! Traefik and Caddy on `gateway.http_listen`) is checked against.

use std::net::SocketAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::TokenUse;

/// Gateway integrations.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// HTTP forward-auth listener (`GET /auth`, any method), HOST:PORT; off when unset.
    /// Envoy ext_authz needs no setting: it is served on the gRPC port.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>", example = &"127.0.0.1:8081")]
    pub http_listen: Option<SocketAddr>,
    /// Forward-auth connections open at once.
    pub max_connections: usize,
    /// A forward-auth connection silent this long is closed; a request's
    /// headers must arrive within it too.
    pub idle_timeout_secs: u64,
    /// Names of the identity headers added to an allowed request.
    pub headers: IdentityHeaderNames,
    /// Policies by request, first match wins.
    pub routes: Vec<GatewayRoute>,
    /// The policy of a request no route matches: by default a valid token, nothing more.
    pub default: GatewayPolicy,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            http_listen: None,
            max_connections: 1024,
            idle_timeout_secs: 60,
            headers: IdentityHeaderNames::default(),
            routes: Vec::new(),
            default: GatewayPolicy::default(),
        }
    }
}

/// One route: which requests it matches, and what they need.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayRoute {
    /// The request's host, compared without case and without its port; unset: any host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"app.example.com")]
    pub host: Option<String>,
    /// The path must start with this (compared before any `?`).
    #[serde(default = "root_path")]
    #[schemars(regex(pattern = r"^/"))]
    pub path_prefix: String,
    /// HTTP methods matched (upper case); empty: any.
    #[serde(default)]
    #[schemars(example = ["GET", "POST"])]
    pub methods: Vec<String>,
    /// No token needed: the request passes without identity headers.
    #[serde(default)]
    pub anonymous: bool,
    /// The token kind required; unset: either.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"access")]
    pub token_use: Option<TokenUse>,
    /// Scopes the token must all carry.
    #[serde(default)]
    #[schemars(example = ["api/read"])]
    pub required_scopes: Vec<String>,
    /// Groups of which the user must be in at least one.
    #[serde(default)]
    #[schemars(example = ["admin"])]
    pub required_groups: Vec<String>,
    /// Ask Cognito whether the token was revoked, where its pool allows it
    /// (`pools[].revocation.check: on_request`).
    #[serde(default)]
    pub check_revocation: bool,
}

fn root_path() -> String {
    "/".into()
}

/// What a request that matched no route needs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayPolicy {
    /// No token needed (open by default: think twice).
    pub anonymous: bool,
    /// The token kind required; unset: either.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"id")]
    pub token_use: Option<TokenUse>,
    /// Scopes the token must all carry.
    pub required_scopes: Vec<String>,
    /// Groups of which the user must be in at least one.
    pub required_groups: Vec<String>,
    /// Ask Cognito whether the token was revoked, where its pool allows it.
    pub check_revocation: bool,
}

/// The identity headers an allowed request carries upstream. The proxy
/// removes any copy a client sent (ext_authz: the service asks Envoy to;
/// forward-auth: the proxy's configuration must, see examples/gateway/).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityHeaderNames {
    /// The user's `sub`.
    pub sub: String,
    /// `cognito:username` (ID tokens) or `username` (access tokens).
    pub username: String,
    /// `cognito:groups`, comma-joined.
    pub groups: String,
    /// The access token's scopes, comma-joined.
    pub scopes: String,
    /// The app client (`aud` of ID tokens, `client_id` of access tokens).
    pub client_id: String,
    /// `id` or `access`.
    pub token_use: String,
}

impl Default for IdentityHeaderNames {
    fn default() -> Self {
        Self {
            sub: "x-auth-sub".into(),
            username: "x-auth-username".into(),
            groups: "x-auth-groups".into(),
            scopes: "x-auth-scopes".into(),
            client_id: "x-auth-client-id".into(),
            token_use: "x-auth-token-use".into(),
        }
    }
}

impl IdentityHeaderNames {
    /// (key, header name) of every identity header.
    pub fn all(&self) -> [(&'static str, &str); 6] {
        [
            ("sub", &self.sub),
            ("username", &self.username),
            ("groups", &self.groups),
            ("scopes", &self.scopes),
            ("client_id", &self.client_id),
            ("token_use", &self.token_use),
        ]
    }
}
