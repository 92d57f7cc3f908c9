//! The service's OpenTelemetry instruments, exported as Prometheus text on the
//! metrics port and, when OTLP is configured, pushed over OTLP.
//!
//! Label sets are bounded: a pool is its configured name (never a raw `iss`),
//! reasons are the fixed enum names, and no `kid` or token value is ever a label.
//! Names follow OpenTelemetry semantic conventions where one exists
//! (`rpc.server.duration`, `rpc.server.active_requests`) and carry the
//! `token_validator.` prefix otherwise.

use std::{
    sync::{Arc, OnceLock, atomic::Ordering::Relaxed},
    time::Duration,
};

use opentelemetry::{
    KeyValue, StringValue, Value,
    metrics::{BoundCounter, BoundHistogram, Counter, Histogram, Meter, MeterProvider as _},
};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};

use super::rpc::{PerCallCounts, RpcNames, per_call_instruments};

mod gauges;
mod jwks;
mod revocation;

use jwks::JwksInstruments;

use crate::{
    config::{PoolConfig, PoolId, TokenUse},
    net::ConnectionObserver,
    userinfo::UserInfoObserver,
    validate::{Outcome, ValidationError},
};

/// Latency buckets in seconds: fine below a millisecond (cache hits take
/// microseconds), coarse up to the GetUser timeout.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_075, 0.000_1, 0.000_25, 0.000_5, 0.000_75, 0.001, 0.002_5,
    0.005, 0.007_5, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Every instrument, with label values prepared once.
pub struct Metrics {
    provider: SdkMeterProvider,
    registry: Option<prometheus::Registry>,
    pools: Vec<KeyValue>,
    validations: Counter<u64>,
    validation_duration: Histogram<f64>,
    pub(super) rpc_duration: Histogram<f64>,
    pub(super) per_call: Arc<PerCallCounts>,
    pub(super) bound: BoundSeries,
    pub(super) rpcs: RpcNames,
    jwks: JwksInstruments,
    revocation: revocation::RevocationInstruments,
    get_user_lookups: Counter<u64>,
    get_user_duration: Histogram<f64>,
    get_user_cache_hits: Counter<u64>,
    audit_suppressed: Counter<u64>,
    accept_errors: Counter<u64>,
    connections_closed: Counter<u64>,
    answers_refused: Counter<u64>,
}

/// The series every answered call records, each bound to its label set on
/// first use. A bound record skips the attribute-set lookup (hashing the
/// labels under a read lock), measured at ~3% of a cache hit's CPU. Binding on
/// first use, not up front, keeps `/metrics` listing a series only once it has
/// data, as unbound instruments do. Other label sets (rejections, errors)
/// stay unbound: they are bounded too, but many.
pub(super) struct BoundSeries {
    /// `token_validator.validation.duration`, by [RPC slot][cache hit].
    validation_duration: Box<[[OnceLock<BoundHistogram<f64>>; 2]]>,
    /// `rpc.server.duration` of calls answered OK, by RPC slot.
    pub(super) rpc_ok_duration: Box<[OnceLock<BoundHistogram<f64>>]>,
    /// `token_validator.validations` of valid tokens, by [pool][ID, access].
    valid: Vec<[OnceLock<BoundCounter<u64>>; 2]>,
}

fn shared(value: &str) -> Value {
    Value::String(StringValue::from(Arc::<str>::from(value)))
}

impl Metrics {
    /// Builds the meter provider: a Prometheus registry when the metrics port is
    /// on, an OTLP periodic reader when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
    /// The instruments for the `pools` and the server's `rpcs`; `prometheus`:
    /// whether the metrics port serves them (`metrics.enabled`).
    pub fn new(
        pools: &[PoolConfig],
        prometheus: bool,
        rpcs: RpcNames,
    ) -> anyhow::Result<Arc<Self>> {
        let mut builder = SdkMeterProvider::builder().with_resource(super::resource());
        let registry = if prometheus {
            let registry = prometheus::Registry::new();
            builder = builder.with_reader(
                opentelemetry_prometheus::exporter()
                    .with_registry(registry.clone())
                    .build()?,
            );
            Some(registry)
        } else {
            None
        };
        if super::otlp_enabled() {
            let exporter = opentelemetry_otlp::MetricExporter::builder().build()?;
            builder = builder.with_reader(PeriodicReader::builder(exporter).build());
        }
        let provider = builder.build();
        let meter = provider.meter("token-validator");
        let metrics = Self::with_meter(pools, rpcs, provider.clone(), registry, &meter);
        metrics.start_counters_at_zero();
        Ok(Arc::new(metrics))
    }

    /// Creates every counter series a pool or listener can have, at 0, so a
    /// `rate()` alert or a dashboard panel reads 0 from the start instead of
    /// "no data" until the first event.
    fn start_counters_at_zero(&self) {
        let kv = |key: &'static str, value: &'static str| KeyValue::new(key, value);
        for pool in &self.pools {
            for result in ["ok", "http_error", "timeout", "invalid"] {
                self.jwks
                    .fetches
                    .add(0, &[pool.clone(), kv("result", result)]);
            }
            for counter in [
                &self.jwks.unknown_kid_refetches,
                &self.jwks.unknown_kid_suppressed,
                &self.jwks.rotations,
            ] {
                counter.add(0, std::slice::from_ref(pool));
            }
            for token_use in [TokenUse::Id, TokenUse::Access] {
                self.validations.add(
                    0,
                    &[
                        kv("result", "valid"),
                        kv("reason", "none"),
                        kv("token_use", token_use.as_str()),
                        pool.clone(),
                    ],
                );
            }
        }
        for result in ["ok", "not_authorized", "error"] {
            self.get_user_lookups.add(0, &[kv("result", result)]);
        }
        self.get_user_cache_hits.add(0, &[]);
        self.revocation.start_at_zero();
        self.audit_suppressed.add(0, &[]);
        self.answers_refused.add(0, &[]);
        for listener in ["grpc", "metrics", "gateway"] {
            self.accept_errors.add(0, &[kv("listener", listener)]);
        }
        for (listener, reason) in [
            ("grpc", "preface_timeout"),
            ("grpc", "stalled"),
            ("metrics", "preface_timeout"),
            ("metrics", "idle_timeout"),
            ("metrics", "lifetime"),
            ("gateway", "preface_timeout"),
            ("gateway", "idle_timeout"),
            ("gateway", "lifetime"),
        ] {
            self.connections_closed
                .add(0, &[kv("listener", listener), kv("reason", reason)]);
        }
    }

    fn with_meter(
        pools: &[PoolConfig],
        rpcs: RpcNames,
        provider: SdkMeterProvider,
        registry: Option<prometheus::Registry>,
        meter: &Meter,
    ) -> Self {
        let latency = |name: &'static str, description: &'static str| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(description)
                .with_boundaries(LATENCY_BUCKETS.to_vec())
                .build()
        };
        let counter = |name: &'static str, description: &'static str| {
            meter
                .u64_counter(name)
                .with_description(description)
                .build()
        };
        Self {
            pools: pools
                .iter()
                .map(|p| KeyValue::new("pool", shared(&p.name)))
                .collect(),
            validations: counter(
                "token_validator.validations",
                "Tokens checked, by result (valid/invalid/error), reason, token_use and pool",
            ),
            validation_duration: latency(
                "token_validator.validation.duration",
                "Time to answer one token, by rpc and cache (hit/miss)",
            ),
            rpc_duration: latency(
                "rpc.server.duration",
                "gRPC calls served, by rpc.method and rpc.grpc.status_code",
            ),
            per_call: per_call_instruments(meter, rpcs),
            rpcs,
            bound: BoundSeries {
                validation_duration: rpcs.methods.iter().map(|_| Default::default()).collect(),
                rpc_ok_duration: rpcs.methods.iter().map(|_| OnceLock::new()).collect(),
                valid: pools.iter().map(|_| Default::default()).collect(),
            },
            jwks: JwksInstruments::new(&counter, &latency),
            revocation: revocation::RevocationInstruments::new(&counter, &latency),
            get_user_lookups: counter(
                "token_validator.get_user.lookups",
                "Cognito GetUser calls, by result (ok/not_authorized/error)",
            ),
            get_user_duration: latency(
                "token_validator.get_user.duration",
                "Cognito GetUser call time",
            ),
            get_user_cache_hits: counter(
                "token_validator.get_user.cache_hits",
                "GetUserInfo answers served from the GetUser cache",
            ),
            audit_suppressed: counter(
                "token_validator.audit.suppressed",
                "Audit events dropped by the rate limit",
            ),
            accept_errors: counter(
                "token_validator.accept_errors",
                "Failed accepts (e.g. out of file descriptors), by listener (grpc/metrics)",
            ),
            connections_closed: counter(
                "token_validator.connections.closed",
                "Connections closed by a bound, by listener and reason (preface_timeout/idle_timeout/lifetime/stalled)",
            ),
            answers_refused: counter(
                "token_validator.answers_refused",
                "Calls refused at once because their connection leaves its answers unread",
            ),
            provider,
            registry,
        }
    }

    /// The Prometheus text exposition of every instrument.
    pub fn prometheus_text(&self) -> Option<String> {
        use prometheus::Encoder;
        let registry = self.registry.as_ref()?;
        let mut buffer = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&registry.gather(), &mut buffer)
            .ok()?;
        String::from_utf8(buffer).ok()
    }

    fn pool(&self, pool: Option<PoolId>) -> KeyValue {
        pool.and_then(|p| self.pools.get(p).cloned())
            .unwrap_or_else(|| KeyValue::new("pool", "unknown"))
    }

    /// One answered token: the validations counter, cache counters and latency.
    pub fn record_validation(&self, rpc: &'static str, outcome: &Outcome, elapsed: Duration) {
        let (result, reason, token_use, pool) = match &outcome.result {
            Ok(token) => ("valid", "none", Some(token.token_use), Some(token.pool)),
            Err(ValidationError::Rejected(r)) => {
                ("invalid", r.reason.as_str(), r.token_use, r.pool)
            }
            Err(ValidationError::KeysUnavailable { pool, .. }) => {
                ("error", "keys_unavailable", None, Some(*pool))
            }
            Err(ValidationError::RevocationUnavailable { pool, .. }) => {
                ("error", "revocation_unavailable", None, Some(*pool))
            }
            Err(ValidationError::EmptyToken) => ("error", "empty_token", None, None),
            Err(ValidationError::TooLarge { .. }) => ("error", "too_large", None, None),
        };
        let labels = || {
            [
                KeyValue::new("result", result),
                KeyValue::new("reason", reason),
                KeyValue::new("token_use", token_use.map_or("unknown", TokenUse::as_str)),
                self.pool(pool),
            ]
        };
        let valid_series = match (&outcome.result, token_use, pool) {
            (Ok(_), Some(token_use), Some(pool)) => self
                .bound
                .valid
                .get(pool)
                .map(|slots| &slots[usize::from(token_use == TokenUse::Access)]),
            _ => None,
        };
        match valid_series {
            Some(series) => series
                .get_or_init(|| self.validations.bind(&labels()))
                .add(1),
            None => self.validations.add(1, &labels()),
        }
        let cache = if outcome.cache_hit { "hit" } else { "miss" };
        if !matches!(
            outcome.result,
            Err(ValidationError::EmptyToken | ValidationError::TooLarge { .. })
        ) {
            if outcome.cache_hit {
                self.per_call.cache_hits.fetch_add(1, Relaxed);
            } else {
                self.per_call.cache_misses.fetch_add(1, Relaxed);
            }
        }
        let labels = [KeyValue::new("rpc", rpc), KeyValue::new("cache", cache)];
        match self.rpcs.slot(rpc) {
            Some(slot) => self.bound.validation_duration[slot][usize::from(outcome.cache_hit)]
                .get_or_init(|| self.validation_duration.bind(&labels))
                .record(elapsed.as_secs_f64()),
            None => self
                .validation_duration
                .record(elapsed.as_secs_f64(), &labels),
        }
    }

    /// One Cognito GetUser call (`cache_hit` calls made none).
    pub fn record_get_user(
        &self,
        result: &'static str,
        elapsed: Option<Duration>,
        cache_hit: bool,
    ) {
        if cache_hit {
            self.get_user_cache_hits.add(1, &[]);
            return;
        }
        self.get_user_lookups
            .add(1, &[KeyValue::new("result", result)]);
        if let Some(elapsed) = elapsed {
            self.get_user_duration.record(elapsed.as_secs_f64(), &[]);
        }
    }

    pub fn record_audit_suppressed(&self) {
        self.audit_suppressed.add(1, &[]);
    }
}

impl UserInfoObserver for Metrics {
    fn get_user(&self, result: &'static str, elapsed: Option<Duration>, cache_hit: bool) {
        self.record_get_user(result, elapsed, cache_hit);
    }
}

impl ConnectionObserver for Metrics {
    fn accept_failed(&self, listener: &'static str) {
        self.accept_errors
            .add(1, &[KeyValue::new("listener", listener)]);
    }

    fn closed_by_bound(&self, listener: &'static str, reason: &'static str) {
        self.connections_closed.add(
            1,
            &[
                KeyValue::new("listener", listener),
                KeyValue::new("reason", reason),
            ],
        );
    }

    fn answer_refused(&self) {
        self.answers_refused.add(1, &[]);
    }
}

impl Drop for Metrics {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
    }
}
