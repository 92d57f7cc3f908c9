//! A token that passed every check: its claims, its pool, and when it expires.

use super::token::{Audience, TokenClaims};
use crate::config::TokenUse;

/// The verified content of a token, shared (behind an `Arc`) between the
/// verified-token cache and every request that presents the same token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// Index of the configured pool that issued the token.
    pub pool: crate::config::PoolId,
    /// The `kid` that verified it: a cached token stops validating once its key is unpublished.
    pub kid: String,
    /// The material of the key that verified it: new material published under
    /// the same `kid` unpublishes the old key, and its tokens with it.
    pub key_fingerprint: crate::jwks::KeyFingerprint,
    /// The pool's key-removal epoch read before `kid` was looked up (see
    /// `KeyStore::still_published`).
    pub key_epoch: u64,
    pub token_use: TokenUse,
    /// `aud` of an ID token, `client_id` of an access token.
    pub client_id: String,
    pub scopes: Vec<String>,
    pub claims: TokenClaims,
    /// The whole verified payload as JSON.
    pub payload_json: String,
}

impl VerifiedToken {
    /// `cognito:username` (ID tokens) or `username` (access tokens).
    pub fn username(&self) -> &str {
        self.claims
            .cognito_username
            .as_deref()
            .or(self.claims.username.as_deref())
            .unwrap_or("")
    }

    pub fn groups(&self) -> &[String] {
        self.claims.groups.as_deref().unwrap_or(&[])
    }

    pub fn expires_at(&self) -> i64 {
        self.claims.exp
    }

    /// Approximate heap size, used as the cache weight.
    pub fn weight(&self) -> u32 {
        let strings = [
            Some(&self.claims.iss),
            self.claims.sub.as_ref(),
            self.claims.token_use.as_ref(),
            self.claims.client_id.as_ref(),
            self.claims.cognito_username.as_ref(),
            self.claims.username.as_ref(),
            self.claims.scope.as_ref(),
            self.claims.jti.as_ref(),
            self.claims.origin_jti.as_ref(),
            self.claims.email.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(String::len)
        .sum::<usize>();
        let aud = match &self.claims.aud {
            Some(Audience::One(a)) => a.len(),
            Some(Audience::Many(v)) => v.iter().map(|a| a.len() + 24).sum(),
            None => 0,
        };
        let lists = self
            .groups()
            .iter()
            .chain(&self.scopes)
            .map(|s| s.len() + 24)
            .sum::<usize>();
        let total = std::mem::size_of::<Self>()
            + strings
            + aud
            + lists
            + self.client_id.len()
            + self.kid.len()
            + self.payload_json.len()
            // The cache key, the Arc, allocator headers of the ~20 allocations and
            // moka's own bookkeeping. Calibrated against RSS: 55k cached entries of
            // 1 KiB tokens grew RSS by ~1.9 KiB each while the sum above said ~1.2 KiB.
            + 768;
        u32::try_from(total).unwrap_or(u32::MAX)
    }
}
