//! The signature phase: structure, header, issuer allowlist, key, signature.
//! What comes out is a [`GenuineToken`]: from here on the claims are the
//! issuer's own, which the type says instead of a comment.

use tracing::Instrument;

use super::{
    MAX_KID_BYTES, Reason, Rejection, TokenClaims, ValidationError, Validator,
    token::{self, printable},
};
use crate::jwks::{KeyFingerprint, KeyLookup};

/// A token whose signature verified with a key of a configured pool: its
/// claims are genuine, not yet checked (time, client, token_use).
pub(super) struct GenuineToken {
    pub pool: crate::config::PoolId,
    pub kid: String,
    pub key_fingerprint: KeyFingerprint,
    /// The pool's key-removal epoch read before the key was looked up.
    pub key_epoch: u64,
    pub claims: TokenClaims,
    pub payload_json: String,
}

impl Validator {
    /// Checks everything up to and including the signature, cheapest first.
    pub(super) async fn verify_signature(
        &self,
        token: &str,
    ) -> Result<GenuineToken, ValidationError> {
        let parsed = token::parse(token, &self.algorithms)?;
        let Some(&pool) = self.by_issuer.get(parsed.claims.iss.as_str()) else {
            return Err(Rejection::new(
                Reason::UnknownIssuer,
                format!(
                    "issuer {} is not a configured user pool",
                    printable(&parsed.claims.iss)
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
                    format!("kid {} is not in the pool's key set", printable(kid)),
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
                    printable(key.kid()),
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
        Ok(GenuineToken {
            pool,
            kid: parsed.kid,
            key_fingerprint: key.fingerprint(),
            key_epoch,
            claims: parsed.claims,
            payload_json: parsed.payload_json,
        })
    }
}
