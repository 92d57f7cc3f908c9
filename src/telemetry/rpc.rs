//! The instruments of gRPC calls: `rpc.server.duration`, the calls in flight
//! (`rpc.server.active_requests`) and their timer. The server describes its
//! RPCs ([`RpcNames`]); telemetry knows none by name, so adding an RPC touches
//! only the gRPC layer.

use std::sync::{
    Arc,
    atomic::{AtomicI64, AtomicU64, Ordering::Relaxed},
};

use opentelemetry::{KeyValue, metrics::Meter};

use super::metrics::Metrics;

/// The RPCs a server reports, as the server names them.
#[derive(Debug, Clone, Copy)]
pub struct RpcNames {
    /// (gRPC service, method), e.g. (`tokenvalidator.v1.TokenValidator`,
    /// `ValidateToken`); each gets its own pre-bound series and in-flight count.
    pub methods: &'static [(&'static str, &'static str)],
}

impl RpcNames {
    /// The slot of `method`; `None` for any other (not counted as active, its
    /// series stay unbound).
    pub(super) fn slot(&self, method: &str) -> Option<usize> {
        self.methods.iter().position(|(_, m)| *m == method)
    }

    /// The service `method` belongs to.
    fn service(&self, slot: Option<usize>) -> &'static str {
        slot.map_or("", |slot| self.methods[slot].0)
    }
}

/// Counts updated on every call, kept in atomics and read by observable
/// instruments when metrics are collected. Updating an OpenTelemetry
/// instrument costs an attribute-set lookup and a lock; an atomic add costs a
/// few nanoseconds. Exported under the same names and types as before.
pub(super) struct PerCallCounts {
    /// `rpc.server.active_requests`, one slot per RPC (see [`RpcNames::slot`]).
    pub active: Box<[AtomicI64]>,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
}

/// The counts behind [`PerCallCounts`] and the observable instruments that export them.
pub(super) fn per_call_instruments(meter: &Meter, rpcs: RpcNames) -> Arc<PerCallCounts> {
    let counts = Arc::new(PerCallCounts {
        active: rpcs.methods.iter().map(|_| AtomicI64::new(0)).collect(),
        cache_hits: AtomicU64::new(0),
        cache_misses: AtomicU64::new(0),
    });
    let weak = Arc::downgrade(&counts);
    let _ = meter
        .i64_observable_up_down_counter("rpc.server.active_requests")
        .with_description("gRPC calls in flight, by rpc.method")
        .with_callback(move |gauge| {
            if let Some(counts) = weak.upgrade() {
                for (slot, (_, method)) in rpcs.methods.iter().enumerate() {
                    gauge.observe(
                        counts.active[slot].load(Relaxed),
                        &[KeyValue::new("rpc.method", *method)],
                    );
                }
            }
        })
        .build();
    let counter =
        |name: &'static str, description: &'static str, read: fn(&PerCallCounts) -> u64| {
            let weak = Arc::downgrade(&counts);
            let _ = meter
                .u64_observable_counter(name)
                .with_description(description)
                .with_callback(move |counter| {
                    if let Some(counts) = weak.upgrade() {
                        counter.observe(read(&counts), &[]);
                    }
                })
                .build();
        };
    counter(
        "token_validator.token_cache.hits",
        "Verified-token cache hits",
        |c| c.cache_hits.load(Relaxed),
    );
    counter(
        "token_validator.token_cache.misses",
        "Verified-token cache misses",
        |c| c.cache_misses.load(Relaxed),
    );
    counts
}

impl Metrics {
    /// A gRPC call started; returns a guard that records its end.
    pub fn rpc_started(self: &Arc<Self>, method: &'static str) -> RpcTimer {
        let slot = self.rpcs.slot(method);
        if let Some(slot) = slot {
            self.per_call.active[slot].fetch_add(1, Relaxed);
        }
        RpcTimer {
            metrics: self.clone(),
            method,
            slot,
            started: std::time::Instant::now(),
        }
    }
}

/// Records a gRPC call's duration and status when finished.
pub struct RpcTimer {
    metrics: Arc<Metrics>,
    method: &'static str,
    slot: Option<usize>,
    started: std::time::Instant,
}

impl RpcTimer {
    /// When the call started (its deadline counts from here).
    pub fn started(&self) -> std::time::Instant {
        self.started
    }

    /// `code` is the gRPC status code number (0 = OK).
    pub fn finish(self, code: i32) {
        let elapsed = self.started.elapsed().as_secs_f64();
        let labels = || {
            [
                KeyValue::new("rpc.system", "grpc"),
                KeyValue::new("rpc.service", self.metrics.rpcs.service(self.slot)),
                KeyValue::new("rpc.method", self.method),
                KeyValue::new("rpc.grpc.status_code", i64::from(code)),
            ]
        };
        let rpc_duration = &self.metrics.rpc_duration;
        match self.slot {
            Some(slot) if code == 0 => self.metrics.bound.rpc_ok_duration[slot]
                .get_or_init(|| rpc_duration.bind(&labels()))
                .record(elapsed),
            _ => rpc_duration.record(elapsed, &labels()),
        }
        if let Some(slot) = self.slot {
            self.metrics.per_call.active[slot].fetch_sub(1, Relaxed);
        }
    }
}
