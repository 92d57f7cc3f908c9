//! The gauges read from live state when metrics are collected: the token
//! cache's size, and each pool's keys, readiness and key age. Weak
//! references: a gauge never keeps the service alive.

use std::sync::{Arc, Weak};

use opentelemetry::{
    KeyValue,
    metrics::{Meter, MeterProvider as _},
};

use super::Metrics;
use crate::{
    jwks::KeyStore,
    validate::{TokenCache, Validator},
};

impl Metrics {
    /// Registers the gauges read from live state (cache size, keys, key age).
    pub fn observe(&self, validator: &Arc<Validator>) {
        let meter = self.provider.meter("token-validator");
        let keys: Weak<KeyStore> = Arc::downgrade(validator.key_store());
        let cache = |name, unit, description, read: fn(&TokenCache) -> u64| {
            cache_gauge(
                &meter,
                Arc::downgrade(validator),
                name,
                unit,
                description,
                read,
            )
        };
        cache(
            "token_validator.token_cache.entries",
            "",
            "Verified tokens cached",
            TokenCache::entry_count,
        );
        cache(
            "token_validator.token_cache.weighted_size",
            "By",
            "Summed weight of cached verified tokens",
            TokenCache::weighted_size,
        );
        let per_pool = |name, description, read: fn(&KeyStore, usize) -> u64| {
            pool_gauge(
                &meter,
                keys.clone(),
                self.pools.clone(),
                name,
                description,
                read,
            )
        };
        per_pool(
            "token_validator.jwks.keys",
            "Usable keys per pool",
            |keys, pool| keys.key_count(pool) as u64,
        );
        per_pool(
            "token_validator.pool.ready",
            "1 once the pool has keys, else 0 (its tokens answer UNAVAILABLE)",
            |keys, pool| u64::from(keys.pool_has_keys(pool)),
        );
        let pools = self.pools.clone();
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

/// A gauge of the verified-token cache (none while the cache is off).
fn cache_gauge(
    meter: &Meter,
    validator: Weak<Validator>,
    name: &'static str,
    unit: &'static str,
    description: &'static str,
    read: fn(&TokenCache) -> u64,
) {
    let _ = meter
        .u64_observable_gauge(name)
        .with_unit(unit)
        .with_description(description)
        .with_callback(move |gauge| {
            if let Some(value) = validator.upgrade().and_then(|v| v.cache().map(read)) {
                gauge.observe(value, &[]);
            }
        })
        .build();
}

/// A gauge with one value per pool, labelled by the pool's name.
fn pool_gauge(
    meter: &Meter,
    keys: Weak<KeyStore>,
    pools: Vec<KeyValue>,
    name: &'static str,
    description: &'static str,
    read: fn(&KeyStore, usize) -> u64,
) {
    let _ = meter
        .u64_observable_gauge(name)
        .with_description(description)
        .with_callback(move |gauge| {
            if let Some(keys) = keys.upgrade() {
                for (i, pool) in pools.iter().enumerate() {
                    gauge.observe(read(&keys, i), std::slice::from_ref(pool));
                }
            }
        })
        .build();
}
