//! `pools[].revocation`: the opt-in online check that sees what no offline
//! verifier can: a user signed out everywhere, a refresh token revoked, a
//! user disabled or deleted. Per pool, because its cost (a Cognito call per
//! token per `cache_ttl_secs`) and its failure mode are the pool's to choose.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The revocation check of one pool.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RevocationConfig {
    /// When tokens of this pool are checked online.
    pub check: RevocationCheck,
    /// How long an answer (active or revoked) is reused, never past the token's `exp`.
    pub cache_ttl_secs: u64,
    /// What a check answers when Cognito cannot be asked.
    pub on_error: RevocationOnError,
    /// Cognito calls per second at most for this pool (its quotas are shared
    /// with the app); past it, a check counts as Cognito being unreachable.
    pub max_lookups_per_sec: u32,
    /// AdminGetUser endpoint (emulators: moto, the dev pool); unset: the AWS
    /// SDK's own, which honours `AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER`.
    /// On loopback, calls are signed with placeholder credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"http://127.0.0.1:5000/")]
    pub endpoint: Option<String>,
}

impl Default for RevocationConfig {
    fn default() -> Self {
        Self {
            check: RevocationCheck::Never,
            cache_ttl_secs: 30,
            on_error: RevocationOnError::Deny,
            max_lookups_per_sec: 50,
            endpoint: None,
        }
    }
}

/// When a pool's tokens are checked online.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RevocationCheck {
    /// Never (today's cost: no Cognito call on ValidateToken).
    Never,
    /// When the request asks (`ValidateTokenRequest.check_revocation`, a gateway route's `check_revocation`).
    OnRequest,
    /// On every validation of this pool's tokens.
    Always,
}

/// What a revocation check answers when Cognito cannot be asked.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RevocationOnError {
    /// The call fails with UNAVAILABLE (callers answer 503).
    Deny,
    /// The offline answer stands (counted in a metric and logged).
    Allow,
}
