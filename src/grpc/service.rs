//! The `tokenvalidator.v1.TokenValidator` service: a thin adapter from proto
//! requests to the validator and the user-info service, with each call's span
//! (continuing the caller's `traceparent`), metrics and audit event.

use std::{
    future::Future,
    net::SocketAddr,
    sync::Arc,
    task::Poll,
    time::{Duration, Instant},
};

use tonic::{Request, Response, Status};
use tracing::{Instrument, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::{convert, limits::Admission, proto};
use crate::{
    config::ServerConfig,
    revocation::{Revocation, RevocationError},
    telemetry::{audit::AuditLog, metrics::Metrics, parent_context},
    userinfo::{UserInfoError, UserInfoService},
    validate::{
        Outcome, Policy, Reason, Rejection, ValidationError, Validator, VerifiedToken, hash_prefix,
        strip_bearer,
    },
};

/// Implements the generated `TokenValidator` trait.
pub struct TokenValidatorService {
    validator: Arc<Validator>,
    userinfo: Arc<UserInfoService>,
    revocation: Arc<Revocation>,
    metrics: Arc<Metrics>,
    audit: Arc<AuditLog>,
    admission: Admission,
    timeout: Duration,
}

/// The span of one RPC; fields are filled in as the answer becomes known.
fn rpc_span<T>(method: &'static str, request: &Request<T>) -> tracing::Span {
    let service = match method {
        "Check" => super::EXT_AUTHZ_SERVICE_NAME,
        _ => super::SERVICE_NAME,
    };
    let span = tracing::debug_span!(
        "rpc",
        otel.name = format!("{service}/{method}"),
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = Empty,
        pool = Empty,
        reason = Empty,
        token_use = Empty,
        cache_hit = Empty,
        token.hash = Empty,
        enduser.id = Empty,
    );
    if !span.is_disabled() {
        let _ = span.set_parent(parent_context(request.metadata().as_ref()));
    }
    span
}

impl TokenValidatorService {
    pub fn new(
        validator: Arc<Validator>,
        userinfo: Arc<UserInfoService>,
        revocation: Arc<Revocation>,
        metrics: Arc<Metrics>,
        audit: Arc<AuditLog>,
        config: &ServerConfig,
    ) -> Self {
        Self {
            validator,
            userinfo,
            revocation,
            metrics,
            audit,
            admission: Admission::new(config.max_concurrent_requests, config.rate_limit_per_caller),
            timeout: Duration::from_millis(config.request_timeout_ms),
        }
    }

    /// The token of a proxied request (ext_authz `Check`, forward-auth) checked
    /// under `policy`, observed like any call: metrics, audit, span fields.
    pub(crate) async fn check(
        &self,
        rpc: &'static str,
        token: &str,
        policy: &Policy,
        check_revocation: bool,
        peer: Option<SocketAddr>,
    ) -> Result<Arc<VerifiedToken>, ValidationError> {
        let started = Instant::now();
        let outcome = self.validator.validate(token, policy).await;
        let outcome = self
            .revocation_checked(outcome, token, check_revocation)
            .await;
        self.observe(rpc, &outcome, started, peer, &tracing::Span::current());
        outcome.result
    }

    /// A verified token checked online too, where its pool says so (always,
    /// or on request and `requested`): revoked → `REASON_REVOKED`; Cognito
    /// unreachable under `on_error: deny` → unavailable.
    async fn revocation_checked(
        &self,
        mut outcome: Outcome,
        raw: &str,
        requested: bool,
    ) -> Outcome {
        let Ok(verified) = &outcome.result else {
            return outcome;
        };
        if !self.revocation.applies(verified.pool, requested) {
            return outcome;
        }
        match self
            .revocation
            .check(verified, strip_bearer(raw), outcome.hash)
            .await
        {
            Ok(()) => {}
            Err(RevocationError::Revoked(message)) => {
                outcome.result = Err(ValidationError::Rejected(
                    Rejection::new(Reason::Revoked, message).about(verified),
                ));
            }
            Err(RevocationError::Unavailable(message)) => {
                outcome.result = Err(ValidationError::RevocationUnavailable {
                    pool: verified.pool,
                    message,
                });
            }
        }
        outcome
    }

    /// Admission for a call that has no gRPC request (forward-auth): counted
    /// against `server.max_concurrent_requests`; never rate-limited per
    /// caller, since its caller is the proxy of every user.
    pub(crate) fn admit_proxied(&self) -> Option<super::limits::Permit<'_>> {
        self.admission.admit_counted().ok()
    }

    /// `server.request_timeout_ms`.
    pub(crate) fn request_timeout(&self) -> Duration {
        self.timeout
    }

    /// What every call goes through: metrics, its span, admission control and
    /// the per-call timeout around `body`.
    pub(crate) async fn handle<T, R, F>(
        &self,
        method: &'static str,
        request: Request<T>,
        body: impl FnOnce(T, Option<SocketAddr>) -> F,
    ) -> Result<Response<R>, Status>
    where
        F: std::future::Future<Output = Result<Response<R>, Status>>,
    {
        let timer = self.metrics.rpc_started(method);
        let span = rpc_span(method, &request);
        let result = match self.admission.admit(&request) {
            Err(status) => Err(status),
            Ok(_permit) => {
                let peer = request.remote_addr();
                let mut call =
                    std::pin::pin!(body(request.into_inner(), peer).instrument(span.clone()));
                // Most calls (cache hits, rejections, full checks) finish in their first
                // poll; only one that waits (a key refetch, a GetUser call) needs a timer.
                match std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await {
                    Poll::Ready(result) => result,
                    Poll::Pending => {
                        let deadline = timer.started() + self.timeout;
                        match tokio::time::timeout_at(deadline.into(), call).await {
                            Ok(result) => result,
                            Err(_) => Err(Status::deadline_exceeded(format!(
                                "the call took longer than server.request_timeout_ms ({} ms)",
                                self.timeout.as_millis()
                            ))),
                        }
                    }
                }
            }
        };
        let code = match &result {
            Ok(_) => 0,
            Err(status) => status.code() as i32,
        };
        span.record("rpc.grpc.status_code", code);
        timer.finish(code);
        result
    }

    fn pool_name(&self, pool: usize) -> &str {
        self.validator.key_store().pool_name(pool)
    }

    /// Metrics, audit, logs and span fields for one validated token. Never the token itself.
    fn observe(
        &self,
        rpc: &'static str,
        outcome: &Outcome,
        started: Instant,
        peer: Option<SocketAddr>,
        span: &tracing::Span,
    ) {
        self.metrics
            .record_validation(rpc, outcome, started.elapsed());
        match &outcome.result {
            Ok(_) => {}
            Err(ValidationError::Rejected(rejection)) => self.audit.rejected(
                rpc,
                rejection,
                rejection.pool.map(|p| self.pool_name(p)),
                &outcome.hash,
                peer,
            ),
            Err(error) => tracing::warn!(
                rpc,
                token = %hash_prefix(&outcome.hash),
                peer = ?peer,
                "cannot validate: {error}"
            ),
        }
        if span.is_disabled() {
            // No trace export: skip the formatting below on the hot path.
            return;
        }
        span.record("token.hash", hash_prefix(&outcome.hash).as_str());
        span.record("cache_hit", outcome.cache_hit);
        match &outcome.result {
            Ok(verified) => {
                span.record("pool", self.pool_name(verified.pool));
                span.record("token_use", verified.token_use.as_str());
                span.record("enduser.id", verified.claims.sub.as_deref().unwrap_or(""));
            }
            Err(ValidationError::Rejected(rejection)) => {
                span.record("reason", rejection.reason.as_str());
                if let Some(pool) = rejection.pool {
                    span.record("pool", self.pool_name(pool));
                }
            }
            Err(_) => {}
        }
    }
}

#[tonic::async_trait]
impl proto::token_validator_server::TokenValidator for TokenValidatorService {
    async fn validate_token(
        &self,
        request: Request<proto::ValidateTokenRequest>,
    ) -> Result<Response<proto::ValidateTokenResponse>, Status> {
        self.handle("ValidateToken", request, |request, peer| async move {
            let policy = Policy {
                token_use: convert::token_use(request.expected_token_use)?,
                required_scopes: request.required_scopes,
                required_groups: request.required_groups,
            };
            let started = Instant::now();
            let outcome = self.validator.validate(&request.token, &policy).await;
            let outcome = self
                .revocation_checked(outcome, &request.token, request.check_revocation)
                .await;
            self.observe(
                "ValidateToken",
                &outcome,
                started,
                peer,
                &tracing::Span::current(),
            );
            match outcome.result {
                Ok(verified) => Ok(Response::new(proto::ValidateTokenResponse {
                    valid: true,
                    reason: proto::Reason::Unspecified as i32,
                    message: "valid".into(),
                    claims: Some(convert::claims(verified)),
                })),
                Err(ValidationError::Rejected(rejection)) => {
                    Ok(Response::new(proto::ValidateTokenResponse {
                        valid: false,
                        reason: convert::reason(rejection.reason) as i32,
                        message: rejection.message.into_owned(),
                        claims: None,
                    }))
                }
                Err(error) => Err(convert::validation_status(&error, |p| self.pool_name(p))),
            }
        })
        .await
    }

    async fn get_user_info(
        &self,
        request: Request<proto::GetUserInfoRequest>,
    ) -> Result<Response<proto::GetUserInfoResponse>, Status> {
        self.handle("GetUserInfo", request, |request, peer| async move {
            // Validate once, here; the profile lookup takes the verified token.
            let started = Instant::now();
            let outcome = self
                .validator
                .validate(&request.token, &Policy::default())
                .await;
            // Only `always` pools: GetUserInfo has no per-request switch.
            let outcome = self
                .revocation_checked(outcome, &request.token, false)
                .await;
            self.observe(
                "GetUserInfo",
                &outcome,
                started,
                peer,
                &tracing::Span::current(),
            );
            let verified = match &outcome.result {
                Ok(verified) => verified,
                Err(error) => return Err(convert::validation_status(error, |p| self.pool_name(p))),
            };
            let access_token = strip_bearer(&request.token);
            match self
                .userinfo
                .profile(verified, access_token, outcome.hash)
                .await
            {
                Ok(profile) => Ok(Response::new(convert::user_info(profile))),
                Err(error) => {
                    if let UserInfoError::NotAuthorized(message) = &error {
                        // The sign-in's ID tokens are refused from now on too.
                        self.revocation.note_refused_access_token(verified, message);
                    }
                    self.audit
                        .get_user_failed(&outcome.hash, peer, &error.to_string());
                    Err(convert::user_info_status(&error))
                }
            }
        })
        .await
    }
}
