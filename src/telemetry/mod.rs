//! Telemetry beside the request path: logs (tracing-subscriber), traces
//! (OpenTelemetry via tracing-opentelemetry, exported over OTLP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set), metrics ([`metrics`]), the HTTP
//! port for scrapes and probes ([`http`]) and the rate-limited audit log
//! ([`audit`]).
//!
//! Spans of the request path are at DEBUG level: they cost nothing unless
//! OTLP export is on, in which case only the exporter's layer enables them.

pub mod audit;
pub mod http;
pub mod metrics;
mod propagation;
pub mod rpc;

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
use tracing_subscriber::{EnvFilter, Layer, filter::Targets, fmt, prelude::*};

pub use propagation::parent_context;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// True when the standard OTLP endpoint variables ask for export.
pub fn otlp_enabled() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var(name).is_ok_and(|v| !v.is_empty()))
}

/// The OpenTelemetry resource: `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`
/// as the specification defines them, with `token-validator` as the default name.
pub fn resource() -> Resource {
    let builder = Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.is_empty()) {
        builder.build()
    } else {
        builder.with_service_name("token-validator").build()
    }
}

/// Flushes and stops the trace exporter when dropped.
pub struct TelemetryGuard {
    tracer_provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.tracer_provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("telemetry: flushing traces failed: {error}");
        }
    }
}

/// Installs the global subscriber: logs to stderr (`RUST_LOG`, default `info`;
/// JSON unless stderr is a terminal, or as `format` says) and, with OTLP
/// configured, span export. Must run inside a Tokio runtime (the gRPC exporter).
pub fn init(format: Option<LogFormat>) -> TelemetryGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let format = format.unwrap_or(if std::io::stderr().is_terminal() {
        LogFormat::Pretty
    } else {
        LogFormat::Json
    });
    let logs = match format {
        LogFormat::Json => fmt::layer().json().with_writer(std::io::stderr).boxed(),
        LogFormat::Pretty => fmt::layer().with_writer(std::io::stderr).boxed(),
    }
    .with_filter(filter);

    let mut tracer_provider = None;
    let traces = if otlp_enabled() {
        match opentelemetry_otlp::SpanExporter::builder().build() {
            Ok(exporter) => {
                let provider = SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(resource())
                    .build();
                let tracer = provider.tracer("token-validator");
                tracer_provider = Some(provider);
                Some(
                    tracing_opentelemetry::layer()
                        .with_tracer(tracer)
                        .with_filter(
                            Targets::new()
                                .with_target("token_validator", tracing::Level::DEBUG)
                                .with_default(tracing::Level::INFO),
                        ),
                )
            }
            Err(error) => {
                eprintln!("telemetry: OTLP trace export disabled: {error}");
                None
            }
        }
    } else {
        None
    };
    // A second init (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init();
    TelemetryGuard { tracer_provider }
}
