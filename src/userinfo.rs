//! Verified token → user profile.
//!
//! ID tokens carry the profile in their claims, so no network call is made.
//! Access tokens carry almost none; when `userinfo.cognito_lookup` is on, the
//! profile comes from Cognito's GetUser API (called with the access token
//! itself, no AWS credentials), cached briefly and never past the token's `exp`.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use serde::Deserialize;

use tracing::Instrument;

use crate::{
    config::{PoolConfig, TokenUse, UserInfoConfig},
    outbound::{self, BodyError},
    validate::{Expiring, PerEntryTtl, TokenHash, VerifiedToken, ttl_until_exp, unix_now},
};

/// Largest GetUser answer read: a user's attributes are a few KiB at most.
const MAX_GET_USER_BYTES: usize = 256 * 1024;

/// Events the profile lookup reports (metrics hang off these), so this layer
/// knows nothing of telemetry, as [`crate::jwks::KeyStoreObserver`] does for keys.
pub trait UserInfoObserver: Send + Sync {
    /// A GetUser call ended (`result`: `ok`, `not_authorized`, `error`) after
    /// `elapsed`, or (`cache_hit`) its cached answer was used.
    fn get_user(&self, result: &'static str, elapsed: Option<Duration>, cache_hit: bool);
}

/// Where a profile came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileSource {
    TokenClaims,
    Cognito,
}

/// Who the user is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserProfile {
    pub sub: String,
    pub username: String,
    pub preferred_username: String,
    pub email: String,
    pub email_verified: bool,
    pub phone_number: String,
    pub phone_number_verified: bool,
    pub name: String,
    pub given_name: String,
    pub family_name: String,
    pub groups: Vec<String>,
    /// Every other user attribute, `custom:*` included.
    pub attributes: BTreeMap<String, String>,
    pub source: Option<ProfileSource>,
}

/// Why a verified token got no profile.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UserInfoError {
    /// Cognito refused the access token (revoked, signed out, user deleted).
    #[error("Cognito refused the access token: {0}")]
    NotAuthorized(String),
    /// Cognito could not be asked.
    #[error("Cognito GetUser failed: {0}")]
    Lookup(String),
}

/// Claims that describe the token, not the user: never reported as attributes.
const TOKEN_CLAIMS: &[&str] = &[
    "iss",
    "aud",
    "exp",
    "iat",
    "nbf",
    "auth_time",
    "token_use",
    "jti",
    "origin_jti",
    "event_id",
    "at_hash",
    "nonce",
    "client_id",
    "scope",
    "version",
    "username",
    "cognito:username",
    "cognito:groups",
    "cognito:roles",
    "cognito:preferred_role",
];

/// Answers GetUserInfo for tokens the validator already verified.
pub struct UserInfoService {
    http: reqwest::Client,
    lookup: bool,
    endpoints: Vec<String>,
    cache_ttl: Duration,
    cache: moka::future::Cache<TokenHash, Expiring<Arc<UserProfile>>>,
    observer: Arc<dyn UserInfoObserver>,
}

impl UserInfoService {
    pub fn new(
        pools: &[PoolConfig],
        config: &UserInfoConfig,
        observer: Arc<dyn UserInfoObserver>,
    ) -> Result<Self, reqwest::Error> {
        let http = outbound::client(
            Duration::from_millis(config.connect_timeout_ms()),
            Duration::from_millis(config.timeout_ms),
        )?;
        Ok(Self {
            http,
            lookup: config.cognito_lookup,
            endpoints: pools
                .iter()
                .map(|p| config.endpoint_for(&p.region))
                .collect(),
            cache_ttl: Duration::from_secs(config.cache_ttl_secs),
            cache: moka::future::Cache::builder()
                .max_capacity(config.cache_max_entries)
                .expire_after(PerEntryTtl)
                .build(),
            observer,
        })
    }

    /// The profile of a verified token: from its claims, or for an access
    /// token (with the lookup on) from Cognito's GetUser, called with
    /// `access_token` (the token as sent, without `Bearer `) and cached by `hash`.
    pub async fn profile(
        &self,
        token: &VerifiedToken,
        access_token: &str,
        hash: TokenHash,
    ) -> Result<UserProfile, UserInfoError> {
        match token.token_use {
            TokenUse::Id => Ok(profile_from_claims(token)),
            TokenUse::Access if !self.lookup => Ok(profile_from_claims(token)),
            TokenUse::Access => self
                .cognito_profile(hash, access_token, token)
                .await
                .map(|p| (*p).clone()),
        }
    }

    /// Asks GetUser now, whatever is cached (the revocation check: the
    /// answer must be fresh), and caches a profile it gets, so GetUserInfo
    /// on the same token then costs no call.
    pub async fn lookup_fresh(
        &self,
        token: &VerifiedToken,
        access_token: &str,
        hash: TokenHash,
    ) -> Result<Arc<UserProfile>, UserInfoError> {
        let entry = self.observed_get_user(access_token, token).await?;
        let profile = entry.value.clone();
        self.cache.insert(hash, entry).await;
        Ok(profile)
    }

    /// One GetUser call, reported to the observer, as a cache entry that
    /// lives `cache_ttl_secs` but never past the token's `exp` (a zero TTL,
    /// for a token about to expire, expires it at once).
    async fn observed_get_user(
        &self,
        access_token: &str,
        token: &VerifiedToken,
    ) -> Result<Expiring<Arc<UserProfile>>, UserInfoError> {
        let started = std::time::Instant::now();
        let result = self
            .get_user(access_token, token)
            .instrument(tracing::debug_span!("cognito.get_user"))
            .await;
        self.observer
            .get_user(outcome_of(&result), Some(started.elapsed()), false);
        let ttl = ttl_until_exp(self.cache_ttl, token.expires_at(), unix_now());
        result.map(|profile| Expiring {
            value: Arc::new(profile),
            ttl,
        })
    }

    async fn cognito_profile(
        &self,
        hash: TokenHash,
        access_token: &str,
        token: &VerifiedToken,
    ) -> Result<Arc<UserProfile>, UserInfoError> {
        if let Some(hit) = self.cache.get(&hash).await {
            self.observer.get_user("ok", None, true);
            return Ok(hit.value);
        }
        // try_get_with: concurrent first lookups of one token share one GetUser
        // call; failures are not cached.
        let entry = self
            .cache
            .try_get_with(hash, self.observed_get_user(access_token, token))
            .await
            .map_err(|error: Arc<UserInfoError>| (*error).clone())?;
        Ok(entry.value)
    }

    /// Calls Cognito's GetUser with the access token.
    async fn get_user(
        &self,
        access_token: &str,
        token: &VerifiedToken,
    ) -> Result<UserProfile, UserInfoError> {
        let response = self
            .http
            .post(&self.endpoints[token.pool])
            .header("X-Amz-Target", "AWSCognitoIdentityProviderService.GetUser")
            .header(reqwest::header::CONTENT_TYPE, "application/x-amz-json-1.1")
            .json(&serde_json::json!({ "AccessToken": access_token }))
            .send()
            .await
            .map_err(|e| UserInfoError::Lookup(outbound::error_text(&e)))?;
        let status = response.status();
        let body = outbound::read_bounded(response, MAX_GET_USER_BYTES)
            .await
            .map_err(|error| {
                UserInfoError::Lookup(match error {
                    BodyError::TooLarge => {
                        format!("answer larger than {MAX_GET_USER_BYTES} bytes")
                    }
                    BodyError::Transport(e) => outbound::error_text(&e),
                })
            })?;
        if !status.is_success() {
            return Err(refusal(status, &body));
        }
        let user: GetUserResponse = serde_json::from_slice(&body)
            .map_err(|e| UserInfoError::Lookup(format!("unexpected GetUser answer: {e}")))?;
        Ok(cognito_profile(user, token))
    }
}

/// The `result` label of a GetUser call.
fn outcome_of<T>(result: &Result<T, UserInfoError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(UserInfoError::NotAuthorized(_)) => "not_authorized",
        Err(UserInfoError::Lookup(_)) => "error",
    }
}

/// GetUser's answer, as much as the profile needs.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetUserResponse {
    username: String,
    #[serde(default)]
    user_attributes: Vec<Attribute>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Attribute {
    name: String,
    #[serde(default)]
    value: String,
}

/// What a non-2xx GetUser answer means: Cognito refusing the token (revoked,
/// signed out, user gone) or Cognito failing.
fn refusal(status: reqwest::StatusCode, body: &[u8]) -> UserInfoError {
    #[derive(Deserialize, Default)]
    struct AwsError {
        #[serde(rename = "__type", default)]
        kind: String,
        #[serde(default, alias = "Message")]
        message: String,
    }
    let error: AwsError = serde_json::from_slice(body).unwrap_or_default();
    // "__type" may be "NotAuthorizedException" or "prefix#NotAuthorizedException".
    let kind = error.kind.rsplit('#').next().unwrap_or("");
    match kind {
        "NotAuthorizedException" | "UserNotFoundException" => {
            UserInfoError::NotAuthorized(format!("{kind}: {}", error.message))
        }
        _ => UserInfoError::Lookup(format!("HTTP {} {kind}", status.as_u16())),
    }
}

/// The profile GetUser describes, with the token's groups (GetUser has none).
fn cognito_profile(user: GetUserResponse, token: &VerifiedToken) -> UserProfile {
    let mut profile = UserProfile {
        username: user.username,
        groups: token.groups().to_vec(),
        source: Some(ProfileSource::Cognito),
        ..UserProfile::default()
    };
    for attribute in user.user_attributes {
        set_attribute(&mut profile, attribute.name, attribute.value);
    }
    if profile.sub.is_empty() {
        profile.sub = token.claims.sub.clone().unwrap_or_default();
    }
    profile
}

/// The profile an ID token (or, with the lookup off, an access token) carries.
pub fn profile_from_claims(token: &VerifiedToken) -> UserProfile {
    let mut profile = UserProfile {
        username: token.username().to_string(),
        groups: token.groups().to_vec(),
        source: Some(ProfileSource::TokenClaims),
        ..UserProfile::default()
    };
    let claims: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&token.payload_json).unwrap_or_default();
    for (name, value) in claims {
        if TOKEN_CLAIMS.contains(&name.as_str()) {
            continue;
        }
        let value = match value {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        set_attribute(&mut profile, name, value);
    }
    profile
}

fn set_attribute(profile: &mut UserProfile, name: String, value: String) {
    let flag = |v: &str| v.eq_ignore_ascii_case("true");
    match name.as_str() {
        "sub" => profile.sub = value,
        "preferred_username" => profile.preferred_username = value,
        "email" => profile.email = value,
        "email_verified" => profile.email_verified = flag(&value),
        "phone_number" => profile.phone_number = value,
        "phone_number_verified" => profile.phone_number_verified = flag(&value),
        "name" => profile.name = value,
        "given_name" => profile.given_name = value,
        "family_name" => profile.family_name = value,
        _ => {
            profile.attributes.insert(name, value);
        }
    }
}
