//! The revocation check's instruments, fed through [`RevocationObserver`].

use std::time::Duration;

use opentelemetry::{
    KeyValue,
    metrics::{Counter, Histogram},
};

use super::Metrics;
use crate::revocation::RevocationObserver;

/// Revocation lookups to Cognito, cache hits and `on_error: allow` fallbacks.
pub(super) struct RevocationInstruments {
    pub lookups: Counter<u64>,
    pub lookup_duration: Histogram<f64>,
    pub cache_hits: Counter<u64>,
    pub fallbacks: Counter<u64>,
}

impl RevocationInstruments {
    pub fn new(
        counter: &dyn Fn(&'static str, &'static str) -> Counter<u64>,
        latency: &dyn Fn(&'static str, &'static str) -> Histogram<f64>,
    ) -> Self {
        Self {
            lookups: counter(
                "token_validator.revocation.lookups",
                "Revocation lookups sent to Cognito, by kind (get_user/admin_get_user) and result (active/revoked/error/throttled)",
            ),
            lookup_duration: latency(
                "token_validator.revocation.lookup.duration",
                "Time of one revocation lookup, by kind",
            ),
            cache_hits: counter(
                "token_validator.revocation.cache_hits",
                "Revocation answers reused, by source (answer: a cached answer; origin_jti: a sign-in whose access token was revoked)",
            ),
            fallbacks: counter(
                "token_validator.revocation.fallbacks",
                "Tokens let through on their offline answer because Cognito could not be asked (on_error: allow)",
            ),
        }
    }

    /// Every series at 0, so alerts see the counters before the first event.
    pub fn start_at_zero(&self) {
        for kind in ["get_user", "admin_get_user"] {
            for result in ["active", "revoked", "error", "throttled"] {
                self.lookups.add(
                    0,
                    &[KeyValue::new("kind", kind), KeyValue::new("result", result)],
                );
            }
        }
        for source in ["answer", "origin_jti"] {
            self.cache_hits.add(0, &[KeyValue::new("source", source)]);
        }
        self.fallbacks.add(0, &[]);
    }
}

impl RevocationObserver for Metrics {
    fn revocation_lookup(
        &self,
        kind: &'static str,
        result: &'static str,
        elapsed: Option<Duration>,
    ) {
        let revocation = &self.revocation;
        revocation.lookups.add(
            1,
            &[KeyValue::new("kind", kind), KeyValue::new("result", result)],
        );
        if let Some(elapsed) = elapsed {
            revocation
                .lookup_duration
                .record(elapsed.as_secs_f64(), &[KeyValue::new("kind", kind)]);
        }
    }

    fn revocation_cache_hit(&self, origin_jti: bool) {
        let source = if origin_jti { "origin_jti" } else { "answer" };
        self.revocation
            .cache_hits
            .add(1, &[KeyValue::new("source", source)]);
    }

    fn revocation_fallback(&self) {
        self.revocation.fallbacks.add(1, &[]);
    }
}
