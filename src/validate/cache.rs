//! The verified-token cache: a token seen before skips parsing and signature
//! verification. Keyed by the SHA-256 of the token bytes (the token itself is
//! never stored), bounded by total weight, and each entry expires at
//! min(the token's `exp`, `max_ttl`). A hit is still checked against the clock.

use std::{
    hash::{BuildHasherDefault, Hasher},
    sync::Arc,
    time::{Duration, Instant},
};

use super::verified::VerifiedToken;
use crate::config::TokenCacheConfig;

/// SHA-256 of a token: the cache key and, hex-prefixed, the token's name in logs.
pub type TokenHash = [u8; 32];

pub fn token_hash(token: &str) -> TokenHash {
    crate::rate::sha256(token.as_bytes())
}

/// How long something derived from a token may be kept: `cap`, and never past
/// the token's `exp` (zero once it has passed). Every cache of this service
/// that holds a token's answers uses this one rule.
pub fn ttl_until_exp(cap: Duration, exp: i64, now: i64) -> Duration {
    let until_exp = u64::try_from(exp.saturating_sub(now)).unwrap_or(0);
    Duration::from_secs(until_exp).min(cap)
}

/// The first 12 hex characters of the hash: enough to correlate log lines, useless to an attacker.
pub fn hash_prefix(hash: &TokenHash) -> String {
    hex::encode(&hash[..6])
}

/// A value with its own time to live, for moka's per-entry expiry.
#[derive(Clone)]
pub struct Expiring<V> {
    pub value: V,
    pub ttl: Duration,
}

/// Gives each entry the TTL it carries.
pub struct PerEntryTtl;

impl<K, V> moka::Expiry<K, Expiring<V>> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &K,
        value: &Expiring<V>,
        _now: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Hashes a [`TokenHash`] by folding its bytes (a rotate and an xor per 8).
/// The key is already a SHA-256 digest, uniform and not choosable by a caller,
/// so running SipHash over it again (moka's default, ~1% of a cache hit's CPU)
/// buys nothing.
#[derive(Default)]
pub struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        // `[u8; 32]` hashes as its length, then its bytes: fold in whatever comes.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = self.0.rotate_left(5) ^ n as u64;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Cache of verified tokens.
pub struct TokenCache {
    entries: moka::sync::Cache<
        TokenHash,
        Expiring<Arc<VerifiedToken>>,
        BuildHasherDefault<DigestHasher>,
    >,
    max_ttl: Duration,
}

impl TokenCache {
    pub fn new(config: &TokenCacheConfig) -> Self {
        let entries = moka::sync::Cache::builder()
            .max_capacity(config.max_weight_bytes)
            .weigher(|_key, entry: &Expiring<Arc<VerifiedToken>>| entry.value.weight())
            .expire_after(PerEntryTtl)
            .build_with_hasher(BuildHasherDefault::default());
        Self {
            entries,
            max_ttl: Duration::from_secs(config.max_ttl_secs),
        }
    }

    pub fn get(&self, hash: &TokenHash) -> Option<Arc<VerifiedToken>> {
        self.entries.get(hash).map(|entry| entry.value)
    }

    /// Caches a verified token until min(exp, max_ttl); `now` is unix seconds.
    pub fn insert(&self, hash: TokenHash, token: Arc<VerifiedToken>, now: i64) {
        let ttl = ttl_until_exp(self.max_ttl, token.expires_at(), now);
        if ttl.is_zero() {
            return;
        }
        self.entries.insert(hash, Expiring { value: token, ttl });
    }

    /// Entries now cached (runs moka's pending bookkeeping first: for tests and
    /// gauges, not for the hot path).
    pub fn entry_count(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }

    /// Summed weight, as of the last bookkeeping (call after [`TokenCache::entry_count`]).
    pub fn weighted_size(&self) -> u64 {
        self.entries.weighted_size()
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn digest_hasher_spreads_distinct_token_hashes() {
        let build = BuildHasherDefault::<DigestHasher>::default();
        let hashes: std::collections::HashSet<u64> = (0..10_000)
            .map(|i| build.hash_one(token_hash(&format!("token-{i}"))))
            .collect();
        assert_eq!(hashes.len(), 10_000);
        // moka shards and sketches by the low and high bits: both must vary.
        let low: std::collections::HashSet<u64> = hashes.iter().map(|h| h & 0xff).collect();
        let high: std::collections::HashSet<u64> = hashes.iter().map(|h| h >> 56).collect();
        assert_eq!((low.len(), high.len()), (256, 256));
    }
}
