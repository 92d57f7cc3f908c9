//! Token → verified claims or a typed rejection.
//!
//! Checks run cheapest first, as careful verifiers do: structure → header
//! (alg allowlist, kid) → issuer allowlist → key → signature → time →
//! token_use and app client → the request's policy. Nothing here does I/O
//! except asking the key store for a key.

mod cache;
mod claims;
mod policy;
mod rejection;
mod signature;
mod token;
mod verified;

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

pub use cache::{
    Expiring, PerEntryTtl, TokenCache, TokenHash, hash_prefix, token_hash, ttl_until_exp,
};
pub use policy::Policy;
pub use rejection::{Reason, Rejection};
pub use token::{Audience, TokenClaims};
pub use verified::VerifiedToken;

use crate::{
    config::{PoolConfig, PoolId, TokenCacheConfig, TokenUse, ValidationConfig},
    jwks::{KeyStore, SigningAlgorithm},
};

/// Longest `kid` looked up; Cognito's are 44 characters.
pub const MAX_KID_BYTES: usize = 256;

/// Why no verdict could be given: the caller's request is unusable, or the
/// service is not able to check this token right now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("the token is empty")]
    EmptyToken,
    #[error("the token is {len} bytes; the limit is {max}")]
    TooLarge { len: usize, max: usize },
    #[error("no signing keys have been loaded yet for pool {name:?}")]
    KeysUnavailable { pool: PoolId, name: String },
    /// The token is genuine, but whether it was revoked could not be asked
    /// (Cognito unreachable or over the pool's call cap) and the pool denies then.
    #[error("{message}")]
    RevocationUnavailable { pool: PoolId, message: String },
    #[error(transparent)]
    Rejected(#[from] Rejection),
}

/// The result of validating one token for one request.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// SHA-256 of the token, for the log prefix and caches downstream.
    pub hash: TokenHash,
    /// Whether the verified-token cache answered.
    pub cache_hit: bool,
    pub result: Result<Arc<VerifiedToken>, ValidationError>,
}

/// What validation needs to know about one configured pool.
struct PoolRules {
    client_ids: HashSet<String>,
    allow_any_client: bool,
    token_use: Vec<TokenUse>,
}

/// Validates tokens against the configured pools.
pub struct Validator {
    pools: Vec<PoolRules>,
    by_issuer: HashMap<String, usize>,
    keys: Arc<KeyStore>,
    cache: Option<TokenCache>,
    algorithms: Vec<SigningAlgorithm>,
    /// Seconds past `exp` still accepted.
    leeway: i64,
    /// Seconds `iat` and `nbf` may be in the future.
    skew: i64,
    max_token_bytes: usize,
}

/// Removes a leading `Bearer ` (any case) and surrounding whitespace.
pub fn strip_bearer(token: &str) -> &str {
    let token = token.trim();
    if token.eq_ignore_ascii_case("bearer") {
        return "";
    }
    match token.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("bearer ") => token[7..].trim_start(),
        _ => token,
    }
}

/// Seconds since the Unix epoch, the unit of `exp`, `iat` and `nbf`.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Validator {
    pub fn new(
        pools: &[PoolConfig],
        validation: &ValidationConfig,
        token_cache: &TokenCacheConfig,
        keys: Arc<KeyStore>,
    ) -> Self {
        let by_issuer = pools
            .iter()
            .enumerate()
            .map(|(i, p)| (p.issuer(), i))
            .collect();
        let pools = pools
            .iter()
            .map(|p| PoolRules {
                client_ids: p.client_ids.iter().cloned().collect(),
                allow_any_client: p.allow_any_client,
                token_use: p.token_use.clone(),
            })
            .collect();

        Self {
            pools,
            by_issuer,
            keys,
            cache: token_cache.enabled.then(|| TokenCache::new(token_cache)),
            algorithms: validation.algorithms.clone(),
            // Both bounded by MAX_SKEW_SECS at load.
            leeway: validation.leeway_secs as i64,
            skew: validation.max_clock_skew_secs as i64,
            max_token_bytes: validation.max_token_bytes,
        }
    }

    pub fn key_store(&self) -> &Arc<KeyStore> {
        &self.keys
    }

    pub fn cache(&self) -> Option<&TokenCache> {
        self.cache.as_ref()
    }

    /// Validates `raw` (optionally `Bearer `-prefixed) and applies `policy`.
    pub async fn validate(&self, raw: &str, policy: &Policy) -> Outcome {
        let token = strip_bearer(raw);
        let hash = token_hash(token);
        let (cache_hit, result) = self.answer(token, &hash, policy).await;
        Outcome {
            hash,
            cache_hit,
            result,
        }
    }

    /// The verdict for one token, and whether the cache gave it.
    async fn answer(
        &self,
        token: &str,
        hash: &TokenHash,
        policy: &Policy,
    ) -> (bool, Result<Arc<VerifiedToken>, ValidationError>) {
        if token.is_empty() {
            return (false, Err(ValidationError::EmptyToken));
        }
        if token.len() > self.max_token_bytes {
            let max = self.max_token_bytes;
            return (
                false,
                Err(ValidationError::TooLarge {
                    len: token.len(),
                    max,
                }),
            );
        }
        let now = unix_now();
        let cached = self
            .cache
            .as_ref()
            .and_then(|c| c.get(hash))
            .filter(|cached| {
                self.keys.still_published(
                    cached.pool,
                    &cached.kid,
                    cached.key_fingerprint,
                    cached.key_epoch,
                )
            });
        let (cache_hit, verified) = match cached {
            Some(cached) => match self.check_time(&cached.claims, now) {
                Ok(()) => (true, cached),
                Err(rejection) => return (true, Err(rejection.about(&cached).into())),
            },
            None => match self.verify(token, now).await {
                Ok(verified) => {
                    let verified = Arc::new(verified);
                    if let Some(cache) = &self.cache {
                        cache.insert(*hash, verified.clone(), now);
                    }
                    (false, verified)
                }
                Err(error) => return (false, Err(error)),
            },
        };
        let result = policy
            .check(&verified)
            .map_err(|r| ValidationError::Rejected(r.about(&verified)))
            .map(|()| verified);
        (cache_hit, result)
    }

    /// The full check of a token not in the cache, up to (not including) the
    /// request policy: the signature phase, then the claims phase.
    async fn verify(&self, token: &str, now: i64) -> Result<VerifiedToken, ValidationError> {
        let genuine = self.verify_signature(token).await?;
        self.check_claims(genuine, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_prefix_is_stripped_in_any_case() {
        assert_eq!(strip_bearer("Bearer abc"), "abc");
        assert_eq!(strip_bearer("  bearer   abc "), "abc");
        assert_eq!(strip_bearer("abc"), "abc");
        assert_eq!(strip_bearer("Bearer "), "");
        assert_eq!(strip_bearer("bearer"), "");
        assert_eq!(strip_bearer("Bearerx.y.z"), "Bearerx.y.z");
    }

    #[test]
    fn hash_prefix_is_twelve_hex_chars() {
        let prefix = hash_prefix(&token_hash("x.y.z"));
        assert_eq!(prefix.len(), 12);
        assert!(prefix.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
