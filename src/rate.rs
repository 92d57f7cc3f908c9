//! A token bucket: at most `rate` events a second, in bursts of up to `rate`.
//! Used wherever an input from the network must not drive unbounded work or
//! output (the per-caller limit, the audit log). Time comes from tokio's
//! clock, so tests advance it (paused time) instead of sleeping.

use std::sync::Mutex;

use tokio::time::Instant;

/// One bucket, full at creation.
pub struct TokenBucket {
    rate: f64,
    /// Tokens left, as of the instant next to them.
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    /// `per_sec` events a second (at least one).
    pub fn new(per_sec: u32) -> Self {
        let rate = f64::from(per_sec.max(1));
        Self {
            rate,
            state: Mutex::new((rate, Instant::now())),
        }
    }

    /// Takes a token if one is left.
    pub fn try_take(&self) -> bool {
        let mut state = self.state.lock().expect("not poisoned");
        let now = Instant::now();
        let (tokens, last) = *state;
        let tokens = (tokens + now.duration_since(last).as_secs_f64() * self.rate).min(self.rate);
        let taken = tokens >= 1.0;
        *state = (if taken { tokens - 1.0 } else { tokens }, now);
        taken
    }
}

/// SHA-256 of `data`: caller identities and token names are kept as digests,
/// never as what the network sent.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::TokenBucket;

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_rate_then_rate_per_second() {
        let bucket = TokenBucket::new(5);
        assert_eq!((0..10).filter(|_| bucket.try_take()).count(), 5);
        tokio::time::advance(Duration::from_millis(400)).await;
        assert_eq!((0..10).filter(|_| bucket.try_take()).count(), 2);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(
            (0..10).filter(|_| bucket.try_take()).count(),
            5,
            "never more than a burst"
        );
    }
}
