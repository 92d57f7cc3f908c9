//! The `tokenvalidator.v1.TokenValidator` service: a thin adapter from proto
//! requests to the validator and the user-info service.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{convert, proto};
use crate::{
    userinfo::UserInfoService,
    validate::{Outcome, Policy, ValidationError, Validator, hash_prefix},
};

/// Implements the generated `TokenValidator` trait.
pub struct TokenValidatorService {
    validator: Arc<Validator>,
    userinfo: Arc<UserInfoService>,
}

impl TokenValidatorService {
    pub fn new(validator: Arc<Validator>, userinfo: Arc<UserInfoService>) -> Self {
        Self {
            validator,
            userinfo,
        }
    }

    /// Logs a rejection with the token's hash prefix, never the token.
    fn log_outcome(
        &self,
        rpc: &'static str,
        outcome: &Outcome,
        peer: Option<std::net::SocketAddr>,
    ) {
        let token = hash_prefix(&outcome.hash);
        match &outcome.result {
            Ok(verified) => tracing::debug!(
                rpc,
                token = %token,
                pool = self.validator.key_store().pool_name(verified.pool),
                cache_hit = outcome.cache_hit,
                "token valid"
            ),
            Err(ValidationError::Rejected(rejection)) => tracing::info!(
                target: "token_validator::audit",
                rpc,
                token = %token,
                reason = rejection.reason.as_str(),
                pool = rejection.pool.map(|p| self.validator.key_store().pool_name(p)),
                peer = ?peer,
                "token rejected: {}",
                rejection.message
            ),
            Err(error) => {
                tracing::warn!(rpc, token = %token, peer = ?peer, "cannot validate: {error}")
            }
        }
    }
}

#[tonic::async_trait]
impl proto::token_validator_server::TokenValidator for TokenValidatorService {
    async fn validate_token(
        &self,
        request: Request<proto::ValidateTokenRequest>,
    ) -> Result<Response<proto::ValidateTokenResponse>, Status> {
        let peer = request.remote_addr();
        let request = request.into_inner();
        let policy = Policy {
            token_use: convert::token_use(request.expected_token_use)?,
            required_scopes: request.required_scopes,
            required_groups: request.required_groups,
        };
        let outcome = self.validator.validate(&request.token, &policy).await;
        self.log_outcome("ValidateToken", &outcome, peer);
        match outcome.result {
            Ok(verified) => Ok(Response::new(proto::ValidateTokenResponse {
                valid: true,
                reason: proto::Reason::Unspecified as i32,
                message: "valid".into(),
                claims: Some(convert::claims(&verified)),
            })),
            Err(ValidationError::Rejected(rejection)) => {
                Ok(Response::new(proto::ValidateTokenResponse {
                    valid: false,
                    reason: convert::reason(rejection.reason) as i32,
                    message: rejection.message.into_owned(),
                    claims: None,
                }))
            }
            Err(error) => Err(convert::validation_status(&error)),
        }
    }

    async fn get_user_info(
        &self,
        request: Request<proto::GetUserInfoRequest>,
    ) -> Result<Response<proto::GetUserInfoResponse>, Status> {
        let peer = request.remote_addr();
        let request = request.into_inner();
        let (outcome, result) = self.userinfo.user_info(&request.token).await;
        self.log_outcome("GetUserInfo", &outcome, peer);
        match result {
            Ok(profile) => Ok(Response::new(convert::user_info(profile))),
            Err(error) => {
                if matches!(
                    error,
                    crate::userinfo::UserInfoError::NotAuthorized(_)
                        | crate::userinfo::UserInfoError::Lookup(_)
                ) {
                    tracing::info!(
                        target: "token_validator::audit",
                        rpc = "GetUserInfo",
                        token = %hash_prefix(&outcome.hash),
                        "GetUser lookup failed: {error}"
                    );
                }
                Err(convert::user_info_status(&error))
            }
        }
    }
}
