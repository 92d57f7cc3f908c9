//! The key store's instruments, fed through [`KeyStoreObserver`] so the key
//! store knows nothing of telemetry.

use std::time::Duration;

use opentelemetry::{
    KeyValue,
    metrics::{Counter, Histogram},
};

use super::Metrics;
use crate::{
    config::PoolId,
    jwks::{FetchError, KeySet, KeyStoreObserver},
};

/// JWKS fetches, refetches and rotations, by pool.
pub(super) struct JwksInstruments {
    pub fetches: Counter<u64>,
    pub fetch_duration: Histogram<f64>,
    pub unknown_kid_refetches: Counter<u64>,
    pub unknown_kid_suppressed: Counter<u64>,
    pub rotations: Counter<u64>,
}

impl JwksInstruments {
    pub fn new(
        counter: &dyn Fn(&'static str, &'static str) -> Counter<u64>,
        latency: &dyn Fn(&'static str, &'static str) -> Histogram<f64>,
    ) -> Self {
        Self {
            fetches: counter(
                "token_validator.jwks.fetches",
                "JWKS fetches, by pool and result (ok/http_error/timeout/invalid)",
            ),
            fetch_duration: latency(
                "token_validator.jwks.fetch.duration",
                "JWKS fetch time, by pool",
            ),
            unknown_kid_refetches: counter(
                "token_validator.jwks.unknown_kid_refetches",
                "Refetches triggered by an unknown kid, by pool",
            ),
            unknown_kid_suppressed: counter(
                "token_validator.jwks.unknown_kid_suppressed",
                "Unknown-kid misses answered without a fetch (cooldown or remembered kid), by pool",
            ),
            rotations: counter(
                "token_validator.jwks.rotations",
                "Key sets replaced by one with other kids, by pool",
            ),
        }
    }
}

impl KeyStoreObserver for Metrics {
    fn fetched(&self, pool: PoolId, result: Result<&KeySet, &FetchError>, elapsed: Duration) {
        let pool = self.pool(Some(pool));
        let outcome = match result {
            Ok(_) => "ok",
            Err(error) => error.kind(),
        };
        self.jwks
            .fetches
            .add(1, &[pool.clone(), KeyValue::new("result", outcome)]);
        self.jwks
            .fetch_duration
            .record(elapsed.as_secs_f64(), &[pool]);
    }

    fn rotated(&self, pool: PoolId, _old: &[&str], _new: &[&str]) {
        self.jwks.rotations.add(1, &[self.pool(Some(pool))]);
    }

    fn unknown_kid_refetch(&self, pool: PoolId) {
        self.jwks
            .unknown_kid_refetches
            .add(1, &[self.pool(Some(pool))]);
    }

    fn unknown_kid_suppressed(&self, pool: PoolId) {
        self.jwks
            .unknown_kid_suppressed
            .add(1, &[self.pool(Some(pool))]);
    }
}
