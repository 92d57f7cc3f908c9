//! The plain-HTTP side port: `GET /metrics` (Prometheus text), `GET /healthz`
//! (liveness: the process answers) and `GET /readyz` (every required pool has
//! keys; `?verbose` lists each pool), for platforms that probe over HTTP (ECS
//! target groups, load balancers).
//!
//! The port is bounded like the gRPC port ([`crate::net`]): at most
//! `metrics.max_connections` at once, a request's headers within
//! `metrics.idle_timeout_secs`, a connection silent that long closed, and
//! none kept past [`CONNECTION_LIFETIME`], so a slow client can hold a
//! slot only briefly and probes keep answering under a flood.

use std::{future::Future, sync::Arc, time::Duration};

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
use crate::{
    config::MetricsConfig,
    jwks::KeyStore,
    net::http1::{self, Http1Port},
};

/// The longest a side-port connection lives; scrapers and probes reconnect.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

#[derive(Clone)]
struct PortState {
    metrics: Arc<Metrics>,
    keys: Arc<KeyStore>,
}

/// Serves the side port on `listener` until `shutdown`; connections still
/// open then are dropped (their requests take microseconds).
pub async fn serve(
    listener: TcpListener,
    config: &MetricsConfig,
    metrics: Arc<Metrics>,
    keys: Arc<KeyStore>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let port = Http1Port {
        name: "metrics",
        max_connections: config.max_connections,
        idle: Duration::from_secs(config.idle_timeout_secs),
        lifetime: CONNECTION_LIFETIME,
        // Scrapes and probes take microseconds; nothing to wait for.
        drain: Duration::ZERO,
    };
    let router = Router::new()
        .route("/metrics", get(scrape))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(PortState {
            metrics: metrics.clone(),
            keys,
        });
    http1::serve(listener, port, router, metrics, shutdown).await
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
