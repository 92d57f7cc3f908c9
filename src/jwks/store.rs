//! The key store: one cached, rotating view of every configured pool's keys.
//!
//! - Parsed key sets live in a moka cache keyed by pool, without time-based
//!   eviction: the last good set stays until a successful fetch replaces it,
//!   so a JWKS outage never empties the store.
//! - A background task per pool fetches at start (retrying with backoff) and
//!   then refreshes every `refresh_interval` (jittered).
//! - An unknown `kid` triggers one refetch per pool, shared by the requests
//!   that missed meanwhile (single-flight), then a cooldown during which misses
//!   answer at once. At most `jwks.max_refetch_waiters` requests wait for a
//!   refetch; the rest answer UNKNOWN_KEY at once, so a flood of unknown kids
//!   against a hanging JWKS endpoint cannot hold every admission slot. Unknown
//!   kids are remembered (bounded) until the key set changes and answer at once
//!   while a refetch is in flight or within the cooldown; after it, a
//!   remembered kid may trigger a refetch again (a kid seen just before it was
//!   published). A flood of random kids costs at most one fetch per cooldown.
//! - A key is its `kid` and its material ([`super::KeyFingerprint`]): new
//!   material under an old `kid` is a rotation, and it unpublishes the old key.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use rand::Rng;
use tokio::sync::watch;
use tracing::Instrument;

use super::{
    fetch::{FetchError, JwksFetcher},
    keyset::{KeyFingerprint, KeySet, VerifyingKey},
};
use crate::config::{JwksConfig, PoolConfig, PoolId};

mod refetch;

use refetch::RefetchState;

/// What the store knows about a `kid` of a pool.
#[derive(Debug)]
pub enum KeyLookup {
    Found(Arc<VerifyingKey>),
    /// The pool's current key set has no such key (after a refetch, or within the cooldown).
    Unknown,
    /// No key set has ever been loaded for the pool: the service cannot answer.
    NoKeysYet,
}

/// A key set with the generation it was installed at.
#[derive(Clone)]
struct Installed {
    set: Arc<KeySet>,
    generation: u64,
}

struct Pool {
    name: String,
    url: String,
    /// Whether the service's readiness waits for this pool's keys.
    required: bool,
    /// False until the pool's first key set is installed; keys are never
    /// dropped afterwards, so it never goes back.
    has_keys: watch::Sender<bool>,
    /// Why the last fetch failed, while it is the latest outcome (for `/readyz?verbose`).
    last_error: Mutex<Option<String>>,
    refetch: Mutex<RefetchState>,
    last_success: Mutex<Option<Instant>>,
    /// Bumped (right after the new set is installed) whenever a key set drops a
    /// key the previous one had (its kid, or its material under that kid): see
    /// [`KeyStore::still_published`].
    removals: AtomicU64,
    /// Requests waiting for an unknown-kid refetch now.
    refetch_waiters: AtomicUsize,
}

/// One pool's state, for operators (`/readyz?verbose`).
#[derive(Debug, Clone)]
pub struct PoolStatus {
    pub name: String,
    pub required: bool,
    /// Usable keys now; 0 until the first successful fetch.
    pub keys: usize,
    /// Time since the last successful fetch.
    pub key_age: Option<Duration>,
    /// Why the latest fetch failed, if it did.
    pub last_error: Option<String>,
}

/// Events the store reports (metrics and logs hang off these).
pub trait KeyStoreObserver: Send + Sync {
    fn fetched(&self, _pool: PoolId, _result: Result<&KeySet, &FetchError>, _elapsed: Duration) {}
    fn rotated(&self, _pool: PoolId, _old: &[&str], _new: &[&str]) {}
    fn unknown_kid_refetch(&self, _pool: PoolId) {}
    fn unknown_kid_suppressed(&self, _pool: PoolId) {}
}

/// Holds every pool's keys and the machinery to keep them fresh.
pub struct KeyStore {
    pools: Vec<Pool>,
    sets: moka::sync::Cache<usize, Installed>,
    unknown_kids: moka::sync::Cache<(usize, String), u64>,
    generation: AtomicU64,
    fetcher: JwksFetcher,
    cooldown: Duration,
    max_refetch_waiters: usize,
    refresh_interval: Duration,
    backoff_min: Duration,
    backoff_max: Duration,
    ready: watch::Sender<bool>,
    observer: Arc<dyn KeyStoreObserver>,
}

impl KeyStore {
    pub fn new(
        pools: &[PoolConfig],
        config: &JwksConfig,
        observer: Arc<dyn KeyStoreObserver>,
    ) -> Result<Arc<Self>, reqwest::Error> {
        let pools = pools
            .iter()
            .map(|p| Pool {
                name: p.name.clone(),
                url: p.jwks_url(),
                required: p.required,
                has_keys: watch::channel(false).0,
                last_error: Mutex::new(None),
                refetch: Mutex::new(RefetchState::Idle {
                    last_finished: None,
                }),
                last_success: Mutex::new(None),
                removals: AtomicU64::new(0),
                refetch_waiters: AtomicUsize::new(0),
            })
            .collect::<Vec<_>>();
        let refresh_interval = Duration::from_secs(config.refresh_interval_secs);
        // With no required pool there is nothing to wait for.
        let ready_at_start = !pools.iter().any(|p| p.required);
        Ok(Arc::new(Self {
            sets: moka::sync::Cache::builder()
                .max_capacity(pools.len() as u64 + 1)
                .build(),
            unknown_kids: moka::sync::Cache::builder()
                .max_capacity(config.unknown_kid_memory)
                .time_to_live(refresh_interval)
                .build(),
            pools,
            generation: AtomicU64::new(0),
            fetcher: JwksFetcher::new(config)?,
            cooldown: Duration::from_secs(config.unknown_kid_cooldown_secs),
            max_refetch_waiters: config.max_refetch_waiters,
            refresh_interval,
            backoff_min: Duration::from_millis(config.retry_backoff_min_ms),
            backoff_max: Duration::from_millis(config.retry_backoff_max_ms),
            ready: watch::channel(ready_at_start).0,
            observer,
        }))
    }

    /// Starts the per-pool fetch-and-refresh tasks on the current runtime.
    pub fn spawn_refresh_tasks(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        (0..self.pools.len())
            .map(|pool| {
                let store = self.clone();
                tokio::spawn(async move { store.refresh_loop(pool).await })
            })
            .collect()
    }

    /// True once every required pool has had keys at least once.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Follows readiness (false → true once every required pool has keys).
    pub fn subscribe_ready(&self) -> watch::Receiver<bool> {
        self.ready.subscribe()
    }

    /// Follows one pool's keys (false → true once its first key set is installed).
    pub fn subscribe_pool(&self, pool: PoolId) -> watch::Receiver<bool> {
        self.pools[pool].has_keys.subscribe()
    }

    /// Whether the pool has keys (required or not).
    pub fn pool_has_keys(&self, pool: PoolId) -> bool {
        *self.pools[pool].has_keys.borrow()
    }

    /// How many pools are configured; pools are numbered `0..pool_count()`.
    pub fn pool_count(&self) -> usize {
        self.pools.len()
    }

    pub fn pool_name(&self, pool: PoolId) -> &str {
        &self.pools[pool].name
    }

    /// Every pool's state, in configuration order.
    pub fn pool_statuses(&self) -> Vec<PoolStatus> {
        (0..self.pools.len())
            .map(|i| PoolStatus {
                name: self.pools[i].name.clone(),
                required: self.pools[i].required,
                keys: self.key_count(i),
                key_age: self.key_age(i),
                last_error: self.pools[i]
                    .last_error
                    .lock()
                    .expect("not poisoned")
                    .clone(),
            })
            .collect()
    }

    /// Number of usable keys of a pool (0 before the first fetch).
    pub fn key_count(&self, pool: PoolId) -> usize {
        self.sets.get(&pool).map_or(0, |i| i.set.len())
    }

    /// Whether the pool's current key set holds `kid` with this material (no fetch).
    pub fn has_key(&self, pool: PoolId, kid: &str, fingerprint: KeyFingerprint) -> bool {
        self.sets
            .get(&pool)
            .is_some_and(|installed| installed.set.holds(kid, fingerprint))
    }

    /// Time since the pool's last successful fetch.
    pub fn key_age(&self, pool: PoolId) -> Option<Duration> {
        let last = *self.pools[pool].last_success.lock().expect("not poisoned");
        last.map(|at| at.elapsed())
    }

    /// The pool's key-removal epoch: read it before looking a key up, keep it
    /// with what that key verified, and pass it to [`KeyStore::still_published`].
    pub fn removal_epoch(&self, pool: PoolId) -> u64 {
        self.pools[pool].removals.load(Ordering::Acquire)
    }

    /// Whether the key (`kid` with this material) is still in the pool's key
    /// set, for a token verified with it when the removal epoch was `epoch`.
    /// While no key has been removed or replaced since, the answer is yes
    /// without a lookup: one atomic load on every cache hit instead of a key-set
    /// lookup (measured at ~2% of a hit's CPU).
    pub fn still_published(
        &self,
        pool: PoolId,
        kid: &str,
        fingerprint: KeyFingerprint,
        epoch: u64,
    ) -> bool {
        self.removal_epoch(pool) == epoch || self.has_key(pool, kid, fingerprint)
    }

    /// Fetches the pool's JWKS and, when usable, replaces its key set.
    pub async fn fetch_and_install(&self, pool: PoolId) -> Result<(), FetchError> {
        let entry = &self.pools[pool];
        let started = Instant::now();
        let result = self
            .fetcher
            .fetch(&entry.url)
            .instrument(tracing::debug_span!("jwks.fetch", pool = %entry.name))
            .await;
        self.observer
            .fetched(pool, result.as_ref(), started.elapsed());
        match result {
            Ok(set) => {
                self.install(pool, set);
                Ok(())
            }
            Err(error) => {
                *entry.last_error.lock().expect("not poisoned") = Some(error.to_string());
                Err(error)
            }
        }
    }

    /// Logs a failed fetch: which pool, why, and what the service does meanwhile.
    fn log_fetch_failure(&self, pool: PoolId, error: &FetchError, retry_in: Option<Duration>) {
        let entry = &self.pools[pool];
        let retry_in_ms = retry_in.map(|d| d.as_millis() as u64);
        if self.pool_has_keys(pool) {
            tracing::warn!(pool = %entry.name, url = %entry.url, %error, kind = error.kind(), retry_in_ms, "JWKS fetch failed; keeping the last good keys");
        } else {
            tracing::warn!(pool = %entry.name, url = %entry.url, %error, kind = error.kind(), retry_in_ms, required = entry.required, "pool has no keys yet: its tokens answer UNAVAILABLE");
        }
    }

    /// Replaces the pool's key set (logging skipped keys and rotations) and
    /// updates readiness. Callers fetched and parsed `set` already.
    ///
    /// Public only for the micro-benchmarks and [`crate::dev::offline_app`]
    /// (fuzzing, property tests), which install keys without HTTP; hidden from
    /// the docs because no service caller should.
    #[doc(hidden)]
    pub fn install(&self, pool: PoolId, set: KeySet) {
        let entry = &self.pools[pool];
        let previous = self.sets.get(&pool);
        // One line per change of what is skipped, however many keys: a JWKS of
        // junk keys must not flood the log at every refresh.
        let skipped = set.skipped_summary();
        if !skipped.is_empty()
            && previous
                .as_ref()
                .is_none_or(|old| old.set.skipped_summary() != skipped)
        {
            tracing::warn!(pool = %entry.name, "JWKS keys skipped: {skipped}");
        }
        // Keys compare by kid *and* material: new material under an old kid is a
        // rotation that removes the old key.
        let removes_a_key = previous
            .as_ref()
            .is_some_and(|old| !old.set.is_subset_of(&set));
        let changed = previous
            .as_ref()
            .is_none_or(|old| removes_a_key || !set.is_subset_of(&old.set));
        let generation = match (&previous, changed) {
            (Some(old), false) => old.generation,
            _ => self.generation.fetch_add(1, Ordering::Relaxed) + 1,
        };
        if changed {
            let new_kids = set.kids();
            match &previous {
                Some(old) => {
                    let old_kids = old.set.kids();
                    let replaced = old.set.replaced_in(&set);
                    tracing::info!(pool = %entry.name, old = ?old_kids, new = ?new_kids, replaced = ?replaced, "JWKS keys rotated");
                    self.observer.rotated(pool, &old_kids, &new_kids);
                }
                None => tracing::info!(pool = %entry.name, kids = ?new_kids, "JWKS keys loaded"),
            }
        }
        self.sets.insert(
            pool,
            Installed {
                set: Arc::new(set),
                generation,
            },
        );
        if removes_a_key {
            // After the install, not before: a check that reads the new epoch
            // then sees the new set, so it cannot cache a removed key under the
            // new epoch. One that read the old epoch is cached under it, and
            // its hits look the key up from now on.
            entry.removals.fetch_add(1, Ordering::AcqRel);
        }
        *entry.last_success.lock().expect("not poisoned") = Some(Instant::now());
        *entry.last_error.lock().expect("not poisoned") = None;
        entry
            .has_keys
            .send_if_modified(|has| !std::mem::replace(has, true));
        if !*self.ready.borrow()
            && self
                .pools
                .iter()
                .all(|p| !p.required || *p.has_keys.borrow())
        {
            self.ready.send_replace(true);
        }
    }

    /// Fetches until the first success (backing off), then refreshes every
    /// interval. Each pool has its own loop and back-off, so a pool whose JWKS
    /// hangs never delays another's keys.
    async fn refresh_loop(self: Arc<Self>, pool: PoolId) {
        let mut backoff = self.backoff_min;
        loop {
            let delay = match self.fetch_and_install(pool).await {
                Ok(()) => {
                    backoff = self.backoff_min;
                    jittered(self.refresh_interval)
                }
                Err(error) => {
                    let delay = jittered(backoff);
                    backoff = (backoff * 2).min(self.backoff_max);
                    self.log_fetch_failure(pool, &error, Some(delay));
                    delay
                }
            };
            tokio::time::sleep(delay).await;
        }
    }
}

/// `base` minus up to 10%, so replicas started together do not fetch in lockstep.
fn jittered(base: Duration) -> Duration {
    let max_jitter = base.as_millis() as u64 / 10;
    if max_jitter == 0 {
        return base;
    }
    base - Duration::from_millis(rand::rng().random_range(0..=max_jitter))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{config::JwksConfig, dev::SigningKey};

    struct Silent;
    impl KeyStoreObserver for Silent {}

    fn set_of(keys: &[&SigningKey]) -> KeySet {
        let jwks = serde_json::json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() });
        KeySet::from_json(jwks.to_string().as_bytes()).unwrap()
    }

    #[tokio::test]
    async fn a_cached_keys_publication_is_rechecked_only_after_a_removal() {
        let pools = [PoolConfig {
            client_ids: vec!["client".into()],
            token_use: vec![crate::config::TokenUse::Id],
            jwks_url: Some("http://127.0.0.1:9/jwks.json".into()),
            ..PoolConfig::new("main", "us-east-1", "us-east-1_test")
        }];
        let store = KeyStore::new(&pools, &JwksConfig::default(), Arc::new(Silent)).unwrap();
        let (a, b) = (
            SigningKey::generate("a").unwrap(),
            SigningKey::generate("b").unwrap(),
        );
        store.install(0, set_of(&[&a]));
        let verified_at = store.removal_epoch(0);
        let (fa, fb) = (fingerprint(&a), fingerprint(&b));
        assert!(store.still_published(0, "a", fa, verified_at));

        // Adding a key removes none: the epoch stays, no lookup needed.
        store.install(0, set_of(&[&a, &b]));
        assert_eq!(store.removal_epoch(0), verified_at);

        // Removing `a` moves the epoch: its tokens are looked up, and fail.
        store.install(0, set_of(&[&b]));
        assert_ne!(store.removal_epoch(0), verified_at);
        assert!(!store.still_published(0, "a", fa, verified_at));
        assert!(store.still_published(0, "b", fb, verified_at));

        // Published again: its tokens pass again (by lookup).
        store.install(0, set_of(&[&a, &b]));
        assert!(store.still_published(0, "a", fa, verified_at));

        // Other material under kid "a": the old key is gone, the epoch moves.
        let epoch = store.removal_epoch(0);
        let a2 = SigningKey::generate("a").unwrap();
        store.install(0, set_of(&[&a2, &b]));
        assert_ne!(store.removal_epoch(0), epoch);
        assert!(!store.still_published(0, "a", fa, epoch));
        assert!(store.still_published(0, "a", fingerprint(&a2), epoch));
    }

    fn fingerprint(key: &SigningKey) -> KeyFingerprint {
        set_of(&[key]).get(key.kid()).unwrap().fingerprint()
    }
}
