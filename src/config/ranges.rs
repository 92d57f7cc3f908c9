//! The range of every numeric key, checked at load. A value that passes the
//! types but is absurd (a refresh every 1,268 years, a keepalive that
//! overflows the clock) would otherwise fail much later, inside a library:
//! a panic at start or on every connection. Here it is one line naming the key.

use super::{Config, ConfigError, invalid};

const SEC_DAY: u64 = 86_400;
const MIB: u64 = 1024 * 1024;

impl Config {
    /// Every numeric key as (key, value, min, max), in the order of README's
    /// table. Left unformatted: one key a line reads as the table it is.
    #[rustfmt::skip]
    pub(super) fn numeric_keys(&self) -> Vec<(String, u64, u64, u64)> {
        let (j, v, c, s) = (
            &self.jwks,
            &self.validation,
            &self.token_cache,
            &self.server,
        );
        let (u, m, a, g) = (&self.userinfo, &self.metrics, &self.audit, &self.gateway);
        let mut keys = vec![
            ("userinfo.cache_ttl_secs", u.cache_ttl_secs, 0, SEC_DAY),
            ("userinfo.cache_max_entries", u.cache_max_entries, 0, 10_000_000),
            ("userinfo.timeout_ms", u.timeout_ms, 1, 60_000),
            ("jwks.refresh_interval_secs", j.refresh_interval_secs, 1, SEC_DAY),
            ("jwks.unknown_kid_cooldown_secs", j.unknown_kid_cooldown_secs, 0, 3600),
            ("jwks.connect_timeout_ms", j.connect_timeout_ms, 1, 60_000),
            ("jwks.fetch_timeout_ms", j.fetch_timeout_ms, 1, 120_000),
            ("jwks.max_response_bytes", j.max_response_bytes as u64, 1024, 64 * MIB),
            ("jwks.retry_backoff_min_ms", j.retry_backoff_min_ms, 1, 3_600_000),
            ("jwks.retry_backoff_max_ms", j.retry_backoff_max_ms, 1, 3_600_000),
            ("jwks.unknown_kid_memory", j.unknown_kid_memory, 0, 10_000_000),
            ("jwks.max_refetch_waiters", j.max_refetch_waiters as u64, 1, 65_536),
            // After jwks.*: it defaults to jwks.connect_timeout_ms, which is named first.
            ("userinfo.connect_timeout_ms", u.connect_timeout_ms(), 1, 60_000),
            ("validation.leeway_secs", v.leeway_secs, 0, super::MAX_SKEW_SECS),
            ("validation.max_clock_skew_secs", v.max_clock_skew_secs, 0, super::MAX_SKEW_SECS),
            ("validation.max_token_bytes", v.max_token_bytes as u64, 1, MIB),
            ("token_cache.max_ttl_secs", c.max_ttl_secs, 0, 7 * SEC_DAY),
            ("token_cache.max_weight_bytes", c.max_weight_bytes, 0, 64 * 1024 * MIB),
            ("server.shutdown_delay_ms", s.shutdown_delay_ms, 0, 600_000),
            ("server.shutdown_grace_secs", s.shutdown_grace_secs, 0, 3600),
            ("server.max_request_bytes", s.max_request_bytes as u64, 1, 16 * MIB),
            ("server.max_concurrent_requests", s.max_concurrent_requests as u64, 1, 1_000_000),
            ("server.request_timeout_ms", s.request_timeout_ms, 1, 600_000),
            ("server.max_concurrent_streams", u64::from(s.max_concurrent_streams), 1, 65_536),
            ("server.rate_limit_per_caller", u64::from(s.rate_limit_per_caller), 0, 10_000_000),
            ("server.http2_keepalive_interval_secs", s.http2_keepalive_interval_secs, 1, SEC_DAY),
            ("server.http2_keepalive_timeout_secs", s.http2_keepalive_timeout_secs, 1, 3600),
            ("server.max_connection_age_secs", s.max_connection_age_secs, 0, 30 * SEC_DAY),
            ("server.max_connections", s.max_connections as u64, 1, 1 << 20),
            ("server.preface_timeout_secs", s.preface_timeout_secs, 1, 3600),
            ("server.stall_timeout_secs", s.stall_timeout_secs, 1, 3600),
            ("server.max_unread_answers", s.max_unread_answers as u64, 1, 1 << 24),
            ("metrics.max_connections", m.max_connections as u64, 1, 1 << 16),
            ("metrics.idle_timeout_secs", m.idle_timeout_secs, 1, 3600),
            ("audit.max_events_per_sec", u64::from(a.max_events_per_sec), 1, 1_000_000),
            ("gateway.max_connections", g.max_connections as u64, 1, 1 << 20),
            ("gateway.idle_timeout_secs", g.idle_timeout_secs, 1, 3600),
        ];
        if let Some(tls) = &self.tls {
            keys.push(("tls.reload_interval_secs", tls.reload_interval_secs, 1, SEC_DAY));
        }
        let mut keys: Vec<_> = keys.into_iter().map(|(k, v, min, max)| (k.to_string(), v, min, max)).collect();
        for (i, pool) in self.pools.iter().enumerate() {
            let r = &pool.revocation;
            keys.push((format!("pools[{i}].revocation.cache_ttl_secs"), r.cache_ttl_secs, 0, 3600));
            keys.push((format!("pools[{i}].revocation.max_lookups_per_sec"), u64::from(r.max_lookups_per_sec), 1, 100_000));
        }
        keys
    }

    /// Refuses any numeric key outside its range, naming it.
    pub(super) fn check_ranges(&self) -> Result<(), ConfigError> {
        for (key, value, min, max) in self.numeric_keys() {
            if !(min..=max).contains(&value) {
                return Err(invalid(
                    key,
                    format!("{value} is out of range ({min}..={max})"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const ONE_POOL: &str = "pools:\n  - name: main\n    region: us-east-1\n    user_pool_id: us-east-1_AbCdEf123\n    client_ids: [abc]\n";

    fn load(yaml: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, yaml).unwrap();
        let env: HashMap<String, String> = HashMap::new();
        Config::load_from(Some(&path), |k| env.get(k).cloned())
    }

    #[test]
    fn every_numeric_key_refuses_an_absurd_value_naming_the_key() {
        let defaults = load(ONE_POOL).unwrap();
        for (key, _, min, max) in defaults.numeric_keys() {
            let key = key.as_str();
            if key.starts_with("pools[") {
                continue; // a pool's keys: in config::tests
            }
            let (section, name) = key.split_once('.').unwrap();
            for bad in [max as u128 + 1, u64::MAX as u128]
                .into_iter()
                .chain((min > 0).then(|| min as u128 - 1))
            {
                let yaml = format!("{ONE_POOL}{section}:\n  {name}: {bad}\n");
                match load(&yaml) {
                    Ok(_) => panic!("{key}: {bad} was accepted"),
                    Err(error) => assert!(error.to_string().contains(key), "{key}: {error}"),
                }
            }
            for good in [min, max] {
                let yaml = format!("{ONE_POOL}{section}:\n  {name}: {good}\n");
                // In range alone is not always enough (backoff min <= max): no panic, and
                // any refusal names a key of the same section.
                if let Err(error) = load(&yaml) {
                    assert!(
                        error.to_string().contains(section),
                        "{key} = {good}: {error}"
                    );
                }
            }
        }
    }
}
