//! HTTP forward-auth on `gateway.http_listen`: nginx `auth_request`,
//! ingress-nginx `auth-url`, Traefik `ForwardAuth` and Caddy `forward_auth`
//! send each request's headers to `/auth` (any method) and pass the request
//! on a 2xx, copying the identity headers of the answer.
//!
//! The original method and URI come from `X-Forwarded-Method` /
//! `X-Forwarded-Uri` (Traefik, Caddy), `X-Original-Method` /
//! `X-Original-URI` (the nginx convention) or `X-Original-URL`
//! (ingress-nginx), the host from `X-Forwarded-Host` or `Host`. A proxy sets
//! the headers of its own convention, but passes the client's copies of the
//! others: so when two conventions disagree the request is refused (400), or
//! a client could pick the rule it meets by sending the convention its proxy
//! does not overwrite. Answers: 200 with the identity headers, 401 or 403
//! with an RFC 6750 challenge and a JSON body, 400 for conflicting headers,
//! 503 when no answer can be had (fail closed: the proxy refuses the request).

use std::{future::Future, sync::Arc, time::Duration};

use axum::{
    Extension, Router,
    body::Body,
    extract::State,
    http::{HeaderMap, HeaderValue, Method, StatusCode},
    response::Response,
    routing::any,
};
use tokio::net::TcpListener;

use super::{Gateway, ProxiedRequest, Verdict};
use crate::{
    config::GatewayConfig,
    grpc::TokenValidatorService,
    net::{
        ConnectionObserver,
        http1::{self, Http1Port, Peer},
    },
};

/// The longest a forward-auth connection lives; proxies reconnect.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);

/// Longest original URI or method read from the proxy's headers; hyper
/// already bounds the whole header block.
const MAX_URI_BYTES: usize = 8 * 1024;

#[derive(Clone)]
struct PortState {
    gateway: Arc<Gateway>,
    service: Arc<TokenValidatorService>,
}

/// Serves forward-auth on `listener` until `shutdown`; requests in flight
/// then get `drain` to finish.
pub async fn serve(
    listener: TcpListener,
    config: &GatewayConfig,
    drain: Duration,
    gateway: Arc<Gateway>,
    service: Arc<TokenValidatorService>,
    observer: Arc<dyn ConnectionObserver>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let port = Http1Port {
        name: "gateway",
        max_connections: config.max_connections,
        idle: Duration::from_secs(config.idle_timeout_secs),
        lifetime: CONNECTION_LIFETIME,
        drain,
    };
    let router = Router::new()
        .route("/auth", any(auth))
        .with_state(PortState { gateway, service });
    http1::serve(listener, port, router, observer, shutdown).await
}

async fn auth(
    State(state): State<PortState>,
    Extension(Peer(peer)): Extension<Peer>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .filter(|value| value.len() <= MAX_URI_BYTES)
    };
    let original_url_path = header("x-original-url").map(path_of_url);
    let path = match one_of(&[
        header("x-forwarded-uri"),
        header("x-original-uri"),
        original_url_path,
    ]) {
        Ok(path) => path.unwrap_or("/"),
        Err(()) => {
            return answer(&conflict(
                "X-Forwarded-Uri, X-Original-URI and X-Original-URL",
            ));
        }
    };
    let method = match one_of(&[header("x-forwarded-method"), header("x-original-method")]) {
        Ok(forwarded) => forwarded.unwrap_or(method.as_str()),
        Err(()) => return answer(&conflict("X-Forwarded-Method and X-Original-Method")),
    };
    let request = ProxiedRequest {
        host: header("x-forwarded-host").or_else(|| header("host")),
        path,
        method,
        authorization: header("authorization"),
    };
    let Some(_permit) = state.service.admit_proxied() else {
        return answer(&Verdict::Unavailable(
            "server busy (server.max_concurrent_requests)".into(),
        ));
    };
    let service = &state.service;
    let decided = tokio::time::timeout(
        service.request_timeout(),
        state
            .gateway
            .decide(&request, None, |token, policy, revocation| async move {
                service
                    .check("ForwardAuth", token, &policy, revocation, peer)
                    .await
            }),
    )
    .await;
    let verdict = decided.unwrap_or_else(|_| {
        Verdict::Unavailable("the check took longer than server.request_timeout_ms".into())
    });
    answer(&verdict)
}

/// The one value the given headers agree on (`None` if none is present), or
/// `Err` when two of them differ.
fn one_of<'a>(values: &[Option<&'a str>]) -> Result<Option<&'a str>, ()> {
    let mut present = values.iter().flatten();
    let first = present.next().copied();
    match first {
        Some(first) if present.all(|other| *other == first) => Ok(Some(first)),
        Some(_) => Err(()),
        None => Ok(None),
    }
}

/// The path (and query) of an absolute URL; a bare path as it is.
fn path_of_url(url: &str) -> &str {
    match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |slash| &rest[slash..]),
        None => url,
    }
}

fn conflict(headers: &str) -> Verdict {
    Verdict::Deny(super::Denial {
        status: 400,
        challenge: format!("Bearer realm=\"{}\", error=\"invalid_request\"", super::REALM),
        body: serde_json::json!({
            "error": "invalid_request",
            "message": format!("{headers} disagree: the proxy must set its own and drop the client's"),
        })
        .to_string(),
    })
}

/// The verdict as the HTTP answer proxies expect.
fn answer(verdict: &Verdict) -> Response {
    let mut response = Response::new(Body::empty());
    let headers = response.headers_mut();
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    match verdict {
        Verdict::Allow(identity) => {
            for (name, value) in identity {
                if let (Ok(name), Ok(value)) = (
                    axum::http::HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(value),
                ) {
                    headers.insert(name, value);
                }
            }
        }
        Verdict::Deny(denial) => {
            *response.status_mut() =
                StatusCode::from_u16(denial.status).unwrap_or(StatusCode::UNAUTHORIZED);
            if let Ok(challenge) = HeaderValue::from_str(&denial.challenge) {
                response.headers_mut().insert("www-authenticate", challenge);
            }
            response
                .headers_mut()
                .insert("content-type", HeaderValue::from_static("application/json"));
            *response.body_mut() = Body::from(denial.body.clone());
        }
        Verdict::Unavailable(message) => {
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            let headers = response.headers_mut();
            headers.insert("retry-after", HeaderValue::from_static("1"));
            headers.insert("content-type", HeaderValue::from_static("application/json"));
            *response.body_mut() = Body::from(
                serde_json::json!({"error": "temporarily_unavailable", "message": message})
                    .to_string(),
            );
        }
    }
    response
}
