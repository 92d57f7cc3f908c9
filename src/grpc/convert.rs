//! Domain types → proto messages and gRPC statuses, in one place.

use std::sync::Arc;

use tonic::Status;

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
    }
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
/// is off, or did not keep it) is taken apart without copying its strings.
pub fn claims(token: Arc<VerifiedToken>) -> proto::Claims {
    match Arc::try_unwrap(token) {
        Ok(owned) => {
            let c = owned.claims;
            proto::Claims {
                username: c.cognito_username.or(c.username).unwrap_or_default(),
                sub: c.sub.unwrap_or_default(),
                issuer: c.iss,
                token_use: owned.token_use.as_str().to_string(),
                client_id: owned.client_id,
                groups: c.groups.unwrap_or_default(),
                scopes: owned.scopes,
                expires_at: c.exp,
                issued_at: c.iat.unwrap_or_default(),
                auth_time: c.auth_time.unwrap_or_default(),
                jti: c.jti.unwrap_or_default(),
                origin_jti: c.origin_jti.unwrap_or_default(),
                email: c.email.unwrap_or_default(),
                json: owned.payload_json,
            }
        }
        Err(shared) => {
            let c = &shared.claims;
            proto::Claims {
                sub: c.sub.clone().unwrap_or_default(),
                issuer: c.iss.clone(),
                token_use: shared.token_use.as_str().to_string(),
                client_id: shared.client_id.clone(),
                username: shared.username().to_string(),
                groups: shared.groups().to_vec(),
                scopes: shared.scopes.clone(),
                expires_at: c.exp,
                issued_at: c.iat.unwrap_or_default(),
                auth_time: c.auth_time.unwrap_or_default(),
                jti: c.jti.clone().unwrap_or_default(),
                origin_jti: c.origin_jti.clone().unwrap_or_default(),
                email: c.email.clone().unwrap_or_default(),
                json: shared.payload_json.clone(),
            }
        }
    }
}

/// Errors that mean "cannot answer" (not "token bad") for ValidateToken.
pub fn validation_status(error: &ValidationError) -> Status {
    match error {
        ValidationError::EmptyToken | ValidationError::TooLarge { .. } => {
            Status::invalid_argument(error.to_string())
        }
        ValidationError::KeysUnavailable { .. } => Status::unavailable(error.to_string()),
        ValidationError::Rejected(rejection) => Status::unauthenticated(format!(
            "{}: {}",
            reason(rejection.reason).as_str_name(),
            rejection.message
        )),
    }
}

pub fn user_info_status(error: &UserInfoError) -> Status {
    match error {
        UserInfoError::Validation(error) => validation_status(error),
        UserInfoError::NotAuthorized(message) => Status::unauthenticated(message.clone()),
        UserInfoError::Lookup(message) => {
            Status::unavailable(format!("Cognito GetUser failed: {message}"))
        }
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
