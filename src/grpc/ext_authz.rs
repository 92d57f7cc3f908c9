//! Envoy's external authorization API (`envoy.service.auth.v3.Authorization/Check`)
//! on the gRPC port, for Envoy's `ext_authz` filter and Istio's CUSTOM
//! authorization policies: same port, TLS/mTLS, limits, metrics, traces and
//! audit as ValidateToken.
//!
//! An allowed request gets the identity headers (overwriting any copy the
//! client sent) and every other identity header name removed, so no client
//! can pass one of its own upstream. A refusal is a `DeniedHttpResponse`
//! (401/403 with an RFC 6750 challenge and a JSON body); when no answer can
//! be had, a 503 (fail closed whatever Envoy's `failure_mode_allow` says).

use std::sync::Arc;

use envoy_types::{
    ext_authz::v3::{
        CheckResponseExt, DeniedHttpResponseBuilder, OkHttpResponseBuilder,
        pb::{Authorization, CheckRequest, CheckResponse, HeaderAppendAction, HttpStatusCode},
    },
    pb::envoy::service::auth::v3::attribute_context::HttpRequest,
};
use tonic::{Request, Response, Status};

use super::TokenValidatorService;
use crate::gateway::{Gateway, ProxiedRequest, Verdict};

/// Implements Envoy's `Authorization` service.
pub struct ExtAuthzService {
    service: Arc<TokenValidatorService>,
    gateway: Arc<Gateway>,
}

impl ExtAuthzService {
    pub fn new(service: Arc<TokenValidatorService>, gateway: Arc<Gateway>) -> Self {
        Self { service, gateway }
    }

    fn response(&self, verdict: Verdict) -> CheckResponse {
        match verdict {
            Verdict::Allow(identity) => {
                let mut ok = OkHttpResponseBuilder::new();
                for name in self.gateway.identity_headers().names() {
                    if !identity.iter().any(|(set, _)| set == name) {
                        ok.remove_header(name);
                    }
                }
                for (name, value) in identity {
                    ok.add_header(
                        name,
                        value,
                        Some(HeaderAppendAction::OverwriteIfExistsOrAdd),
                        false,
                    );
                }
                let mut response = CheckResponse::with_status(Status::ok(""));
                response.set_http_response(ok);
                response
            }
            Verdict::Deny(denial) => {
                let (status, code) = match denial.status {
                    403 => (HttpStatusCode::Forbidden, Status::permission_denied("")),
                    _ => (HttpStatusCode::Unauthorized, Status::unauthenticated("")),
                };
                let mut denied = DeniedHttpResponseBuilder::new();
                denied
                    .set_http_status(status)
                    .add_header("www-authenticate", denial.challenge, None, false)
                    .add_header("content-type", "application/json", None, false)
                    .add_header("cache-control", "no-store", None, false)
                    .set_body(denial.body);
                let mut response = CheckResponse::with_status(code);
                response.set_http_response(denied);
                response
            }
            Verdict::Unavailable(message) => {
                let mut denied = DeniedHttpResponseBuilder::new();
                denied
                    .set_http_status(HttpStatusCode::ServiceUnavailable)
                    .add_header("retry-after", "1", None, false)
                    .add_header("content-type", "application/json", None, false)
                    .set_body(
                        serde_json::json!({"error": "temporarily_unavailable", "message": message})
                            .to_string(),
                    );
                let mut response = CheckResponse::with_status(Status::unavailable(""));
                response.set_http_response(denied);
                response
            }
        }
    }
}

#[tonic::async_trait]
impl Authorization for ExtAuthzService {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        self.service
            .handle("Check", request, |request, peer| async move {
                let attributes = request.attributes.unwrap_or_default();
                let http = attributes.request.and_then(|r| r.http).unwrap_or_default();
                let proxied = proxied_request(&http);
                let service = &self.service;
                let verdict = self
                    .gateway
                    .decide(
                        &proxied,
                        Some(&attributes.context_extensions),
                        |token, policy, revocation| async move {
                            service
                                .check("Check", token, &policy, revocation, peer)
                                .await
                        },
                    )
                    .await;
                Ok(Response::new(self.response(verdict)))
            })
            .await
    }
}

/// The request Envoy describes (its header keys are lower case).
fn proxied_request(http: &HttpRequest) -> ProxiedRequest<'_> {
    ProxiedRequest {
        host: Some(http.host.as_str()).filter(|h| !h.is_empty()),
        path: if http.path.is_empty() {
            "/"
        } else {
            &http.path
        },
        method: &http.method,
        authorization: http.headers.get("authorization").map(String::as_str),
    }
}

#[cfg(test)]
mod tests {
    use crate::{gateway::reason_name, validate::Reason};

    #[test]
    fn the_gateways_reason_names_are_the_protos() {
        for reason in Reason::ALL {
            assert_eq!(
                reason_name(reason),
                super::super::convert::reason(reason).as_str_name()
            );
        }
    }
}
