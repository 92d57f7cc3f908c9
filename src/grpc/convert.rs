//! Domain types → proto messages and gRPC statuses, in one place.

use std::sync::Arc;

use tonic::Status;
use tonic_types::{ErrorDetails, StatusExt};

use super::proto;
use crate::{
    config::TokenUse,
    userinfo::{ProfileSource, UserInfoError, UserProfile},
    validate::{Reason, ValidationError, VerifiedToken},
};

pub fn reason(reason: Reason) -> proto::Reason {
    match reason {
        Reason::Malformed => proto::Reason::Malformed,
        Reason::UnsupportedAlgorithm => proto::Reason::UnsupportedAlgorithm,
        Reason::UnknownIssuer => proto::Reason::UnknownIssuer,
        Reason::UnknownKey => proto::Reason::UnknownKey,
        Reason::BadSignature => proto::Reason::BadSignature,
        Reason::Expired => proto::Reason::Expired,
        Reason::NotYetValid => proto::Reason::NotYetValid,
        Reason::WrongClient => proto::Reason::WrongClient,
        Reason::WrongTokenUse => proto::Reason::WrongTokenUse,
        Reason::MissingScope => proto::Reason::MissingScope,
        Reason::MissingGroup => proto::Reason::MissingGroup,
        Reason::Revoked => proto::Reason::Revoked,
    }
}

/// The `google.rpc.ErrorInfo` domain of every status about a token.
pub const ERROR_DOMAIN: &str = "tokenvalidator.v1";

/// A status about a token, with a `google.rpc.ErrorInfo` detail so callers
/// branch on `reason` (a `Reason` name, or one of the names below for "cannot
/// answer") instead of parsing the message. `metadata`: `pool`, `kid` when known.
pub(super) fn token_status(
    code: tonic::Code,
    message: String,
    reason: &str,
    metadata: impl IntoIterator<Item = (&'static str, String)>,
) -> Status {
    let metadata: std::collections::HashMap<String, String> = metadata
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect();
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata),
    )
}

pub fn token_use(value: i32) -> Result<Option<TokenUse>, Status> {
    match proto::TokenUse::try_from(value) {
        Ok(proto::TokenUse::Unspecified) => Ok(None),
        Ok(proto::TokenUse::Id) => Ok(Some(TokenUse::Id)),
        Ok(proto::TokenUse::Access) => Ok(Some(TokenUse::Access)),
        Err(_) => Err(Status::invalid_argument(format!(
            "expected_token_use {value} is not a TokenUse value"
        ))),
    }
}

/// The response's claims. A token nobody else holds (the verified-token cache
/// is off, or did not keep it) is taken apart without copying its strings;
/// a shared one is copied once.
pub fn claims(token: Arc<VerifiedToken>) -> proto::Claims {
    let token = Arc::unwrap_or_clone(token);
    let c = token.claims;
    proto::Claims {
        username: c.cognito_username.or(c.username).unwrap_or_default(),
        sub: c.sub.unwrap_or_default(),
        issuer: c.iss,
        token_use: token.token_use.as_str().to_string(),
        client_id: token.client_id,
        groups: c.groups.unwrap_or_default(),
        scopes: token.scopes,
        expires_at: c.exp,
        issued_at: c.iat.unwrap_or_default(),
        auth_time: c.auth_time.unwrap_or_default(),
        jti: c.jti.unwrap_or_default(),
        origin_jti: c.origin_jti.unwrap_or_default(),
        email: c.email.unwrap_or_default(),
        json: token.payload_json,
    }
}

/// The status of a token that got no verdict (ValidateToken) or no profile
/// (GetUserInfo). `pool_name` names a pool by its index. ErrorInfo reasons:
/// `TOKEN_EMPTY`, `TOKEN_TOO_LARGE` (INVALID_ARGUMENT), `KEYS_UNAVAILABLE`
/// (UNAVAILABLE), and for a rejected token (GetUserInfo's UNAUTHENTICATED)
/// the `Reason` name, e.g. `REASON_EXPIRED`.
pub fn validation_status<'a>(
    error: &ValidationError,
    pool_name: impl Fn(usize) -> &'a str,
) -> Status {
    let message = error.to_string();
    match error {
        ValidationError::EmptyToken => {
            token_status(tonic::Code::InvalidArgument, message, "TOKEN_EMPTY", [])
        }
        ValidationError::TooLarge { .. } => {
            token_status(tonic::Code::InvalidArgument, message, "TOKEN_TOO_LARGE", [])
        }
        ValidationError::KeysUnavailable { name, .. } => token_status(
            tonic::Code::Unavailable,
            message,
            "KEYS_UNAVAILABLE",
            [("pool", name.clone())],
        ),
        ValidationError::RevocationUnavailable { pool, .. } => token_status(
            tonic::Code::Unavailable,
            message,
            "COGNITO_UNAVAILABLE",
            [("pool", pool_name(*pool).to_string())],
        ),
        ValidationError::Rejected(rejection) => {
            let name = reason(rejection.reason).as_str_name();
            let pool = rejection.pool.map(|p| ("pool", pool_name(p).to_string()));
            let kid = rejection.kid.clone().map(|kid| ("kid", kid));
            token_status(
                tonic::Code::Unauthenticated,
                // The reason first in the text too, for callers that predate the detail.
                format!("{name}: {}", rejection.message),
                name,
                pool.into_iter().chain(kid),
            )
        }
    }
}

/// GetUserInfo's status when a verified token got no profile:
/// `REASON_REVOKED` (UNAUTHENTICATED) when Cognito refuses the access token,
/// `COGNITO_UNAVAILABLE` (UNAVAILABLE) when Cognito cannot be asked.
pub fn user_info_status(error: &UserInfoError) -> Status {
    match error {
        UserInfoError::NotAuthorized(message) => {
            let name = proto::Reason::Revoked.as_str_name();
            token_status(
                tonic::Code::Unauthenticated,
                format!("{name}: {}", crate::text::bounded(message, 200)),
                name,
                [],
            )
        }
        UserInfoError::Lookup(message) => token_status(
            tonic::Code::Unavailable,
            format!(
                "Cognito GetUser failed: {}",
                crate::text::bounded(message, 200)
            ),
            "COGNITO_UNAVAILABLE",
            [],
        ),
    }
}

pub fn user_info(profile: UserProfile) -> proto::GetUserInfoResponse {
    proto::GetUserInfoResponse {
        sub: profile.sub,
        username: profile.username,
        preferred_username: profile.preferred_username,
        email: profile.email,
        email_verified: profile.email_verified,
        phone_number: profile.phone_number,
        phone_number_verified: profile.phone_number_verified,
        name: profile.name,
        given_name: profile.given_name,
        family_name: profile.family_name,
        groups: profile.groups,
        attributes: profile.attributes.into_iter().collect(),
        source: match profile.source {
            None => proto::UserInfoSource::Unspecified,
            Some(ProfileSource::TokenClaims) => proto::UserInfoSource::TokenClaims,
            Some(ProfileSource::Cognito) => proto::UserInfoSource::Cognito,
        } as i32,
    }
}
