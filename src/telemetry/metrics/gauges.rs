//! The gauges read from live state when metrics are collected: the token
//! cache's size, and each pool's keys, readiness and key age. Weak
//! references: a gauge never keeps the service alive.

use std::sync::{Arc, Weak};

use opentelemetry::metrics::MeterProvider as _;

use super::Metrics;
use crate::{jwks::KeyStore, validate::Validator};

impl Metrics {
    /// Registers the gauges read from live state (cache size, keys, key age).
    /// Weak references: the gauges never keep the service alive.
    pub fn observe(&self, validator: &Arc<Validator>) {
        let meter = self.provider.meter("token-validator");
        let pools = self.pools.clone();
        let keys: Weak<KeyStore> = Arc::downgrade(validator.key_store());
        let weak_validator = Arc::downgrade(validator);
        let _ = meter
            .u64_observable_gauge("token_validator.token_cache.entries")
            .with_description("Verified tokens cached")
            .with_callback({
                let validator = weak_validator.clone();
                move |gauge| {
                    if let Some(cache) = validator
                        .upgrade()
                        .and_then(|v| v.cache().map(|c| c.entry_count()))
                    {
                        gauge.observe(cache, &[]);
                    }
                }
            })
            .build();
        let _ = meter
            .u64_observable_gauge("token_validator.token_cache.weighted_size")
            .with_unit("By")
            .with_description("Summed weight of cached verified tokens")
            .with_callback(move |gauge| {
                if let Some(size) = weak_validator
                    .upgrade()
                    .and_then(|v| v.cache().map(|c| c.weighted_size()))
                {
                    gauge.observe(size, &[]);
                }
            })
            .build();
        let _ = meter
            .u64_observable_gauge("token_validator.jwks.keys")
            .with_description("Usable keys per pool")
            .with_callback({
                let keys = keys.clone();
                let pools = pools.clone();
                move |gauge| {
                    if let Some(keys) = keys.upgrade() {
                        for (i, pool) in pools.iter().enumerate() {
                            gauge.observe(keys.key_count(i) as u64, std::slice::from_ref(pool));
                        }
                    }
                }
            })
            .build();
        let _ = meter
            .u64_observable_gauge("token_validator.pool.ready")
            .with_description("1 once the pool has keys, else 0 (its tokens answer UNAVAILABLE)")
            .with_callback({
                let keys = keys.clone();
                let pools = pools.clone();
                move |gauge| {
                    if let Some(keys) = keys.upgrade() {
                        for (i, pool) in pools.iter().enumerate() {
                            let ready = u64::from(keys.pool_has_keys(i));
                            gauge.observe(ready, std::slice::from_ref(pool));
                        }
                    }
                }
            })
            .build();
        let _ = meter
            .f64_observable_gauge("token_validator.jwks.key_age")
            .with_unit("s")
            .with_description("Seconds since the last successful JWKS fetch, per pool")
            .with_callback(move |gauge| {
                if let Some(keys) = keys.upgrade() {
                    for (i, pool) in pools.iter().enumerate() {
                        if let Some(age) = keys.key_age(i) {
                            gauge.observe(age.as_secs_f64(), std::slice::from_ref(pool));
                        }
                    }
                }
            })
            .build();
    }
}
