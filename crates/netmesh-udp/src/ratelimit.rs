//! Per-source token buckets for handshake initiations, in a table of bounded size.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// One source's bucket: `tokens` as of `updated`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Admits at most `rate` events a second per source address (with a burst of `rate`),
/// remembering at most `capacity` sources.
///
/// When the table is full, sources whose buckets have refilled (idle for a second or
/// more) are forgotten, which loses nothing: a full bucket is what a new source gets.
/// If none has refilled, the table is being flooded from more sources than it holds and
/// a new source is refused until one has: memory stays bounded and the sources already
/// known are not pushed out by a flood of new ones.
///
/// A second bucket holds all sources together to `total_rate` a second, so that a flood
/// from many addresses (each within its own limit) cannot take the receive thread's time
/// with Diffie-Hellman work either.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate: f64,
    capacity: usize,
    buckets: HashMap<SocketAddr, Bucket>,
    last_prune: Option<Instant>,
    total_rate: f64,
    total: Option<Bucket>,
}

/// How often a full table is swept at most.
const PRUNE_INTERVAL: Duration = Duration::from_millis(100);

impl RateLimiter {
    /// `rate` per second per source (0: refuse everything), `total_rate` per second in
    /// all, at most `capacity` sources.
    pub(crate) fn new(rate: u32, total_rate: u32, capacity: usize) -> Self {
        Self {
            rate: f64::from(rate),
            capacity: capacity.max(1),
            buckets: HashMap::with_capacity(capacity.clamp(1, 1024)),
            last_prune: None,
            total_rate: f64::from(total_rate),
            total: None,
        }
    }

    /// Takes one token from the bucket of all sources.
    fn allow_total(&mut self, now: Instant) -> bool {
        let rate = self.total_rate;
        let total = self.total.get_or_insert(Bucket {
            tokens: rate,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(total.updated).as_secs_f64();
        total.tokens = (total.tokens + elapsed * rate).min(rate);
        total.updated = now;
        if total.tokens >= 1.0 {
            total.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Takes one token for `source` at `now`; `false` when its bucket is empty or the
    /// table is full of sources that are still active.
    pub(crate) fn allow(&mut self, source: SocketAddr, now: Instant) -> bool {
        if self.rate <= 0.0 {
            return false;
        }
        if !self.buckets.contains_key(&source) && self.buckets.len() >= self.capacity {
            self.prune(now);
            if self.buckets.len() >= self.capacity {
                return false;
            }
        }
        let rate = self.rate;
        let bucket = self.buckets.entry(source).or_insert(Bucket {
            tokens: rate,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
        bucket.updated = now;
        if bucket.tokens < 1.0 {
            return false;
        }
        // The source's token is taken only if the total allows it too.
        if !self.allow_total(now) {
            return false;
        }
        if let Some(bucket) = self.buckets.get_mut(&source) {
            bucket.tokens -= 1.0;
        }
        true
    }

    /// Sources remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.buckets.len()
    }

    fn prune(&mut self, now: Instant) {
        if self
            .last_prune
            .is_some_and(|last| now.saturating_duration_since(last) < PRUNE_INTERVAL)
        {
            return;
        }
        self.last_prune = Some(now);
        let rate = self.rate;
        self.buckets.retain(|_, bucket| {
            let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
            bucket.tokens + elapsed * rate < rate
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn five_a_second_per_source() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(5, 1000, 16);
        let allowed = (0..100).filter(|_| limiter.allow(addr(1), start)).count();
        assert_eq!(allowed, 5);
        // Another source has its own bucket.
        assert!(limiter.allow(addr(2), start));
        // 200 ms later one more token.
        let later = start + Duration::from_millis(200);
        assert!(limiter.allow(addr(1), later));
        assert!(!limiter.allow(addr(1), later));
        // Over ten seconds at most 5 a second plus the burst.
        let allowed = (0..10_000)
            .filter(|i| limiter.allow(addr(1), later + Duration::from_millis(*i)))
            .count();
        assert!((49..=51).contains(&allowed), "{allowed}");
    }

    #[test]
    fn the_table_stays_bounded_and_forgets_idle_sources() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(5, 1000, 4);
        for port in 0..4 {
            assert!(limiter.allow(addr(port), start));
        }
        // Full of active sources: a fifth is refused, the table does not grow.
        assert!(!limiter.allow(addr(99), start));
        assert_eq!(limiter.len(), 4);
        // A second later the old buckets have refilled and are forgotten.
        let later = start + Duration::from_secs(1);
        assert!(limiter.allow(addr(99), later));
        assert_eq!(limiter.len(), 1);
    }

    #[test]
    fn all_sources_together_are_held_to_the_total_rate() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(5, 20, 4096);
        // 1000 sources, one initiation each, at once: the burst of 20 passes.
        let allowed = (0..1000).filter(|p| limiter.allow(addr(*p), start)).count();
        assert_eq!(allowed, 20);
        // A second later, 20 more.
        let later = start + Duration::from_secs(1);
        let allowed = (1000..2000)
            .filter(|p| limiter.allow(addr(*p), later))
            .count();
        assert_eq!(allowed, 20);
        // A refused source kept its own tokens.
        assert!(limiter.allow(addr(1500), later + Duration::from_secs(1)));
    }

    #[test]
    fn rate_zero_refuses_everything() {
        let mut limiter = RateLimiter::new(0, 1000, 4);
        assert!(!limiter.allow(addr(1), Instant::now()));
    }
}
