//! The plain-HTTP side port: `GET /metrics` (Prometheus text), `GET /healthz`
//! (liveness: the process answers) and `GET /readyz` (every required pool has
//! keys; `?verbose` lists each pool), for platforms that probe over HTTP (ECS
//! target groups, load balancers).

use std::{future::Future, sync::Arc};

use std::fmt::Write as _;

use axum::{
    Router,
    extract::{RawQuery, State},
    http::StatusCode,
    response::IntoResponse,
    routing::get,
};
use tokio::net::TcpListener;

use super::metrics::Metrics;
use crate::jwks::KeyStore;

#[derive(Clone)]
struct PortState {
    metrics: Arc<Metrics>,
    keys: Arc<KeyStore>,
}

/// Serves the side port on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    keys: Arc<KeyStore>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = Router::new()
        .route("/metrics", get(scrape))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(PortState { metrics, keys });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn scrape(State(state): State<PortState>) -> axum::response::Response {
    match state.metrics.prometheus_text() {
        Some(text) => (
            [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
            text,
        )
            .into_response(),
        None => (StatusCode::INTERNAL_SERVER_ERROR, "metrics unavailable\n").into_response(),
    }
}

async fn ready(State(state): State<PortState>, RawQuery(query): RawQuery) -> (StatusCode, String) {
    let (status, mut text) = if state.keys.is_ready() {
        (StatusCode::OK, String::from("ready\n"))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            String::from("not ready: a required pool has no keys yet\n"),
        )
    };
    let verbose = query.as_deref().is_some_and(|q| {
        q.split('&')
            .any(|p| p == "verbose" || p.starts_with("verbose="))
    });
    if verbose {
        for pool in state.keys.pool_statuses() {
            let _ = write!(
                text,
                "pool {}: {}, {}, keys {}, key age {}",
                pool.name,
                if pool.keys > 0 {
                    "ready"
                } else {
                    "missing keys"
                },
                if pool.required {
                    "required"
                } else {
                    "optional"
                },
                pool.keys,
                pool.key_age
                    .map_or_else(|| "never".into(), |age| format!("{}s", age.as_secs())),
            );
            if let Some(error) = &pool.last_error {
                let _ = write!(text, ", last fetch failed: {error}");
            }
            text.push('\n');
        }
    }
    (status, text)
}
