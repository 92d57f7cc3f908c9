//! The claims phase: a [`GenuineToken`]'s time, `token_use` and app client,
//! checked against its pool's rules. Rejections here may name the subject:
//! the claims are the issuer's own.

use super::{
    Audience, Reason, Rejection, TokenClaims, ValidationError, Validator, VerifiedToken,
    signature::GenuineToken, token::printable,
};
use crate::config::TokenUse;

impl Validator {
    /// Turns genuine claims into a verified token, or rejects them.
    pub(super) fn check_claims(
        &self,
        genuine: GenuineToken,
        now: i64,
    ) -> Result<VerifiedToken, ValidationError> {
        let claims = &genuine.claims;
        let token_use_claim = match claims.token_use.as_deref() {
            Some("id") => Some(TokenUse::Id),
            Some("access") => Some(TokenUse::Access),
            _ => None,
        };
        let reject = |reason, message: String| {
            ValidationError::Rejected(
                Rejection::new(reason, message)
                    .in_pool(genuine.pool)
                    .with_kid(&genuine.kid)
                    .verified(claims.sub.as_deref(), token_use_claim),
            )
        };
        if let Err(rejection) = self.check_time(claims, now) {
            return Err(reject(rejection.reason, rejection.message.into_owned()));
        }
        let token_use = match (token_use_claim, claims.token_use.as_deref()) {
            (Some(token_use), _) => token_use,
            (None, Some(other)) => {
                return Err(reject(
                    Reason::WrongTokenUse,
                    format!("token_use {} is not id or access", printable(other)),
                ));
            }
            (None, None) => {
                return Err(reject(Reason::WrongTokenUse, "token_use is missing".into()));
            }
        };
        let rules = &self.pools[genuine.pool];
        if !rules.token_use.contains(&token_use) {
            return Err(reject(
                Reason::WrongTokenUse,
                format!(
                    "{} tokens are not accepted from this pool",
                    token_use.as_str()
                ),
            ));
        }
        let client_id = client_of(token_use, claims).map_err(|m| reject(Reason::WrongClient, m))?;
        if !rules.allow_any_client && !rules.client_ids.contains(&client_id) {
            return Err(reject(
                Reason::WrongClient,
                format!(
                    "app client {} is not accepted for this pool",
                    printable(&client_id)
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
            pool: genuine.pool,
            kid: genuine.kid,
            key_fingerprint: genuine.key_fingerprint,
            key_epoch: genuine.key_epoch,
            token_use,
            client_id,
            scopes,
            claims: genuine.claims,
            payload_json: genuine.payload_json,
        })
    }

    /// `exp` must be in the future (within the leeway); `nbf` and `iat` may be
    /// in the future by at most the clock skew.
    pub(super) fn check_time(&self, claims: &TokenClaims, now: i64) -> Result<(), Rejection> {
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

/// The app client a token was issued to: `aud` (exactly one) of an ID token,
/// `client_id` of an access token; the message says what is wrong.
fn client_of(token_use: TokenUse, claims: &TokenClaims) -> Result<String, String> {
    match (token_use, &claims.aud, &claims.client_id) {
        (TokenUse::Id, Some(Audience::One(aud)), _) => Ok(aud.clone()),
        (TokenUse::Id, Some(Audience::Many(auds)), _) if auds.len() == 1 => Ok(auds[0].clone()),
        (TokenUse::Id, Some(Audience::Many(_)), _) => {
            Err("aud must name exactly one app client".into())
        }
        (TokenUse::Access, _, Some(client_id)) => Ok(client_id.clone()),
        (TokenUse::Id, _, _) => Err("aud is missing".into()),
        (TokenUse::Access, _, _) => Err("client_id is missing".into()),
    }
}
