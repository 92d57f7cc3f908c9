//! Token → verified claims or a typed rejection.
//!
//! Checks run cheapest first, as careful verifiers do: structure → header
//! (alg allowlist, kid) → issuer allowlist → key → signature → time →
//! token_use and app client → the request's policy. Nothing here does I/O
//! except asking the key store for a key.

mod cache;
mod policy;
mod rejection;
mod token;
mod verified;

use tracing::Instrument;

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

pub use cache::{Expiring, PerEntryTtl, TokenCache, TokenHash, hash_prefix, token_hash};
pub use policy::Policy;
pub use rejection::{Reason, Rejection};
pub use token::{Audience, TokenClaims};
pub use verified::VerifiedToken;

use crate::{
    config::{Config, TokenUse},
    jwks::{KeyLookup, KeyStore, SigningAlgorithm},
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
    KeysUnavailable { pool: usize, name: String },
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
    pub fn new(config: &Config, keys: Arc<KeyStore>) -> Self {
        let pools = config
            .pools
            .iter()
            .map(|p| PoolRules {
                client_ids: p.client_ids.iter().cloned().collect(),
                allow_any_client: p.allow_any_client,
                token_use: p.token_use.clone(),
            })
            .collect();
        let by_issuer = config
            .pools
            .iter()
            .enumerate()
            .map(|(i, p)| (p.issuer(), i))
            .collect();
        let algorithms = config
            .validation
            .algorithms
            .iter()
            .filter_map(|a| SigningAlgorithm::from_name(a))
            .collect();
        Self {
            pools,
            by_issuer,
            keys,
            cache: config
                .token_cache
                .enabled
                .then(|| TokenCache::new(&config.token_cache)),
            algorithms,
            // Both bounded by MAX_SKEW_SECS at load.
            leeway: config.validation.leeway_secs as i64,
            skew: config.validation.max_clock_skew_secs as i64,
            max_token_bytes: config.validation.max_token_bytes,
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

    /// The full check of a token not in the cache, up to (not including) the request policy.
    async fn verify(&self, token: &str, now: i64) -> Result<VerifiedToken, ValidationError> {
        let parsed = token::parse(token, &self.algorithms)?;
        let Some(&pool) = self.by_issuer.get(parsed.claims.iss.as_str()) else {
            return Err(Rejection::new(
                Reason::UnknownIssuer,
                format!(
                    "issuer {} is not a configured user pool",
                    token::printable(&parsed.claims.iss)
                ),
            )
            .into());
        };
        let kid = parsed.kid.as_str();
        let reject = |reason, message: String| {
            ValidationError::Rejected(Rejection::new(reason, message).in_pool(pool).with_kid(kid))
        };
        // Read before the lookup: a key removed after this shows as a changed epoch.
        let key_epoch = self.keys.removal_epoch(pool);
        // No Cognito kid is this long: answer without a lookup (nor a refetch, nor memory).
        let lookup = if kid.len() > MAX_KID_BYTES {
            KeyLookup::Unknown
        } else {
            self.keys
                .key(pool, kid)
                .instrument(tracing::debug_span!("jwks.key_lookup"))
                .await
        };
        let key = match lookup {
            KeyLookup::Found(key) => key,
            KeyLookup::Unknown => {
                return Err(reject(
                    Reason::UnknownKey,
                    format!("kid {} is not in the pool's key set", token::printable(kid)),
                ));
            }
            KeyLookup::NoKeysYet => {
                return Err(ValidationError::KeysUnavailable {
                    pool,
                    name: self.keys.pool_name(pool).to_string(),
                });
            }
        };
        if !key.supports(parsed.alg) {
            return Err(reject(
                Reason::UnsupportedAlgorithm,
                format!(
                    "key {} does not allow {}",
                    token::printable(key.kid()),
                    parsed.alg.name()
                ),
            ));
        }
        let signature_ok = tracing::debug_span!("jwt.verify_signature").in_scope(|| {
            key.verify(
                parsed.alg,
                parsed.signing_input.as_bytes(),
                &parsed.signature,
            )
        });
        if !signature_ok {
            return Err(reject(
                Reason::BadSignature,
                "the signature does not match the pool's key".into(),
            ));
        }
        // From here on the claims are genuine: rejections may name the subject.
        let sub = parsed.claims.sub.as_deref();
        let token_use_claim = match parsed.claims.token_use.as_deref() {
            Some("id") => Some(TokenUse::Id),
            Some("access") => Some(TokenUse::Access),
            _ => None,
        };
        let reject = |reason, message: String| {
            ValidationError::Rejected(
                Rejection::new(reason, message)
                    .in_pool(pool)
                    .with_kid(kid)
                    .verified(sub, token_use_claim),
            )
        };
        if let Err(rejection) = self.check_time(&parsed.claims, now) {
            return Err(reject(rejection.reason, rejection.message.into_owned()));
        }
        let rules = &self.pools[pool];
        let claims = &parsed.claims;
        let token_use = match token_use_claim {
            Some(token_use) => token_use,
            None if claims.token_use.is_some() => {
                let other = claims.token_use.as_deref().unwrap_or_default();
                return Err(reject(
                    Reason::WrongTokenUse,
                    format!("token_use {} is not id or access", token::printable(other)),
                ));
            }
            None => {
                return Err(reject(Reason::WrongTokenUse, "token_use is missing".into()));
            }
        };
        if !rules.token_use.contains(&token_use) {
            return Err(reject(
                Reason::WrongTokenUse,
                format!(
                    "{} tokens are not accepted from this pool",
                    token_use.as_str()
                ),
            ));
        }
        let client_id = match (token_use, &claims.aud, &claims.client_id) {
            (TokenUse::Id, Some(Audience::One(aud)), _) => aud.clone(),
            (TokenUse::Id, Some(Audience::Many(auds)), _) if auds.len() == 1 => auds[0].clone(),
            (TokenUse::Id, Some(Audience::Many(_)), _) => {
                return Err(reject(
                    Reason::WrongClient,
                    "aud must name exactly one app client".into(),
                ));
            }
            (TokenUse::Access, _, Some(client_id)) => client_id.clone(),
            _ => {
                let claim = if token_use == TokenUse::Id {
                    "aud"
                } else {
                    "client_id"
                };
                return Err(reject(Reason::WrongClient, format!("{claim} is missing")));
            }
        };
        if !rules.allow_any_client && !rules.client_ids.contains(&client_id) {
            return Err(reject(
                Reason::WrongClient,
                format!(
                    "app client {} is not accepted for this pool",
                    token::printable(&client_id)
                ),
            ));
        }
        let scopes = claims
            .scope
            .as_deref()
            .unwrap_or("")
            .split_ascii_whitespace()
            .map(String::from)
            .collect();
        Ok(VerifiedToken {
            pool,
            kid: parsed.kid,
            key_fingerprint: key.fingerprint(),
            key_epoch,
            token_use,
            client_id,
            scopes,
            claims: parsed.claims,
            payload_json: parsed.payload_json,
        })
    }

    /// `exp` must be in the future (within the leeway); `nbf` and `iat` may be
    /// in the future by at most the clock skew.
    fn check_time(&self, claims: &TokenClaims, now: i64) -> Result<(), Rejection> {
        if now >= claims.exp.saturating_add(self.leeway) {
            return Err(Rejection::new(Reason::Expired, "the token has expired"));
        }
        if let Some(nbf) = claims.nbf
            && nbf > now.saturating_add(self.skew)
        {
            return Err(Rejection::new(Reason::NotYetValid, "nbf is in the future"));
        }
        if let Some(iat) = claims.iat
            && iat > now.saturating_add(self.skew)
        {
            return Err(Rejection::new(Reason::NotYetValid, "iat is in the future"));
        }
        Ok(())
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
