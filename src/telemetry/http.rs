//! The plain-HTTP side port: `GET /metrics` (Prometheus text), `GET /healthz`
//! (liveness: the process answers) and `GET /readyz` (every pool has keys),
//! for platforms that probe over HTTP (ECS target groups, load balancers).

use std::{future::Future, sync::Arc};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
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

async fn ready(State(state): State<PortState>) -> (StatusCode, &'static str) {
    if state.keys.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: a pool has no keys yet\n",
        )
    }
}
