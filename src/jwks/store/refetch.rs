//! The unknown-`kid` refetch: single-flight per pool, rate-limited by the
//! cooldown, with a bounded number of waiters (see the parent module's docs).

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use tokio::sync::watch;
use tracing::Instrument;

use super::{KeyLookup, KeyStore};
use crate::config::PoolId;

/// A pool's refetch: idle since it last finished, or in flight.
pub(super) enum RefetchState {
    Idle { last_finished: Option<Instant> },
    InFlight(watch::Receiver<bool>),
}

/// Whether an unknown kid was checked against a refetched key set.
enum Refetch {
    Done,
    /// Within the cooldown, or too many waiters: answer at once.
    Suppressed,
}

/// A place among the refetch waiters, given back when the wait ends or is cancelled.
struct WaiterSlot<'a>(&'a AtomicUsize);

impl<'a> WaiterSlot<'a> {
    fn take(waiters: &'a AtomicUsize, max: usize) -> Option<Self> {
        if waiters.fetch_add(1, Ordering::AcqRel) >= max {
            waiters.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Self(waiters))
    }
}

impl Drop for WaiterSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl KeyStore {
    /// Looks `kid` up in `pool`'s keys, refetching once (single-flight, rate-limited) on a miss.
    pub async fn key(self: &Arc<Self>, pool: PoolId, kid: &str) -> KeyLookup {
        let Some(installed) = self.sets.get(&pool) else {
            return KeyLookup::NoKeysYet;
        };
        if let Some(key) = installed.set.get(kid) {
            return KeyLookup::Found(key.clone());
        }
        let memory_key = (pool, kid.to_owned());
        let remembered = self.unknown_kids.get(&memory_key) == Some(installed.generation);
        if let Refetch::Suppressed = self.refetch_for_unknown_kid(pool, remembered).await {
            // Answer at once. Not remembered either, so a flood of random kids
            // costs no cache writes; the cooldown alone bounds fetches.
            self.observer.unknown_kid_suppressed(pool);
            return KeyLookup::Unknown;
        }
        match self.sets.get(&pool) {
            Some(now) => match now.set.get(kid) {
                Some(key) => KeyLookup::Found(key.clone()),
                None => {
                    // Checked against a fresh key set: remembered until the set changes.
                    self.unknown_kids.insert(memory_key, now.generation);
                    KeyLookup::Unknown
                }
            },
            None => KeyLookup::NoKeysYet,
        }
    }

    /// Joins the pool's in-flight refetch or starts one. Suppressed within the
    /// cooldown, when `remembered` (the kid was already missing from a fresh set)
    /// and a refetch is in flight, or when `max_refetch_waiters` already wait.
    async fn refetch_for_unknown_kid(self: &Arc<Self>, pool: PoolId, remembered: bool) -> Refetch {
        let entry = &self.pools[pool];
        let Some(_slot) = WaiterSlot::take(&entry.refetch_waiters, self.max_refetch_waiters) else {
            return Refetch::Suppressed;
        };
        let mut finished = {
            let mut state = entry.refetch.lock().expect("not poisoned");
            match &*state {
                RefetchState::InFlight(_) if remembered => return Refetch::Suppressed,
                RefetchState::InFlight(finished) => finished.clone(),
                RefetchState::Idle {
                    last_finished: Some(at),
                } if at.elapsed() < self.cooldown => return Refetch::Suppressed,
                RefetchState::Idle { .. } => {
                    let (tx, rx) = watch::channel(false);
                    *state = RefetchState::InFlight(rx.clone());
                    self.observer.unknown_kid_refetch(pool);
                    // Its own task, so a caller that goes away does not cancel the fetch;
                    // its span stays a child of the request that triggered it.
                    let store = self.clone();
                    tokio::spawn(
                        async move {
                            if let Err(error) = store.fetch_and_install(pool).await {
                                store.log_fetch_failure(pool, &error, None);
                            }
                            *store.pools[pool].refetch.lock().expect("not poisoned") =
                                RefetchState::Idle {
                                    last_finished: Some(Instant::now()),
                                };
                            let _ = tx.send(true);
                        }
                        .in_current_span(),
                    );
                    rx
                }
            }
        };
        // The fetcher's own timeouts bound this wait.
        let _ = finished.wait_for(|done| *done).await;
        Refetch::Done
    }
}
