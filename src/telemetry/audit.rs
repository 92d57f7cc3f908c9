//! The audit log: one event per rejected token, failed Cognito lookup or
//! refused mTLS client, under the tracing target `token_validator::audit` so
//! operators can route it separately. Every audit event goes through
//! [`AuditLog`]: one token bucket bounds the rate, so a flood of bad tokens,
//! revoked tokens or refused certificates cannot flood the logs; what it drops
//! is counted (metric) and reported with the next event written.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use super::metrics::Metrics;
use crate::{
    rate::TokenBucket,
    validate::{Rejection, TokenHash, hash_prefix},
};

/// A rate-limited writer of audit events.
pub struct AuditLog {
    bucket: TokenBucket,
    suppressed: AtomicU64,
    metrics: Arc<Metrics>,
}

impl AuditLog {
    /// At most `per_sec` events a second, with bursts of the same size.
    pub fn new(per_sec: u32, metrics: Arc<Metrics>) -> Self {
        Self {
            bucket: TokenBucket::new(per_sec),
            suppressed: AtomicU64::new(0),
            metrics,
        }
    }

    /// Whether an event may be written now; if so, how many were dropped
    /// since the last one written.
    fn admit_event(&self) -> Option<u64> {
        if self.bucket.try_take() {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            self.metrics.record_audit_suppressed();
            None
        }
    }

    /// Records a rejection: `pool` is the configured pool's name when known.
    pub fn rejected(
        &self,
        rpc: &'static str,
        rejection: &Rejection,
        pool: Option<&str>,
        hash: &TokenHash,
        peer: Option<SocketAddr>,
    ) {
        let Some(suppressed) = self.admit_event() else {
            return;
        };
        tracing::info!(
            target: "token_validator::audit",
            event = "token_rejected",
            rpc,
            reason = rejection.reason.as_str(),
            pool,
            kid = rejection.kid.as_deref(),
            sub = rejection.sub.as_deref(),
            peer = peer.map(|p| p.to_string()),
            token = %hash_prefix(hash),
            suppressed_before = suppressed,
            "token rejected: {}",
            rejection.message
        );
    }

    /// Records a GetUser call Cognito refused or could not answer; `text` is
    /// Cognito's, cut and without line breaks so it cannot forge a log line.
    pub fn get_user_failed(&self, hash: &TokenHash, peer: Option<SocketAddr>, text: &str) {
        let Some(suppressed) = self.admit_event() else {
            return;
        };
        tracing::info!(
            target: "token_validator::audit",
            event = "get_user_failed",
            token = %hash_prefix(hash),
            peer = peer.map(|p| p.to_string()),
            suppressed_before = suppressed,
            "{}",
            crate::text::bounded(text, 300)
        );
    }

    /// Records an mTLS client refused for its names (each cut: they come from
    /// the client's certificate).
    pub fn client_refused(&self, names: &[String]) {
        let Some(suppressed) = self.admit_event() else {
            return;
        };
        let names: Vec<String> = names
            .iter()
            .take(8)
            .map(|n| crate::text::bounded(n, 128))
            .collect();
        tracing::info!(
            target: "token_validator::audit",
            event = "client_refused",
            names = ?names,
            suppressed_before = suppressed,
            "mTLS client name not allowed"
        );
    }
}
