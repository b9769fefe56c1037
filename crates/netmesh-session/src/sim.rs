//! A deterministic simulated link, for tests: one direction carrying datagrams with
//! seeded loss, duplication, reordering and delay, on a virtual clock. No sockets,
//! no threads, no wall-clock time: the same seed and the same calls give the same
//! deliveries.
//!
//! Public (but hidden from the docs) so that integration tests and the session tests
//! can share it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// SplitMix64: a tiny, well-mixed, seedable PRNG (not for cryptography).
///
/// # Examples
///
/// ```
/// use netmesh_session::sim::SplitMix64;
///
/// let (mut a, mut b) = (SplitMix64::new(7), SplitMix64::new(7));
/// assert_eq!(a.next_u64(), b.next_u64());
/// assert!(a.next_f64() < 1.0);
/// assert!(a.below(10) < 10);
/// ```
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        // The top 53 bits fill an f64 mantissa exactly.
        #[allow(clippy::cast_precision_loss)]
        let x = (self.next_u64() >> 11) as f64;
        x / (1u64 << 53) as f64
    }

    /// `true` with probability `p` (clamped to `[0, 1]`).
    pub fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }

    /// Uniform in `0..n` (0 when `n` is 0); slightly biased for huge `n`, which tests
    /// do not care about.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

/// A virtual clock: a fixed base instant plus elapsed virtual time.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use netmesh_session::sim::VirtualClock;
///
/// let mut clock = VirtualClock::new();
/// let t0 = clock.now();
/// clock.advance(Duration::from_millis(3));
/// assert_eq!(clock.now() - t0, Duration::from_millis(3));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct VirtualClock {
    base: Instant,
    elapsed: Duration,
}

impl Default for VirtualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl VirtualClock {
    /// A clock at virtual time 0 (based on the real `Instant::now()`, which only
    /// anchors it: nothing depends on its value).
    #[must_use]
    pub fn new() -> Self {
        Self {
            base: Instant::now(),
            elapsed: Duration::ZERO,
        }
    }

    /// The current virtual instant.
    #[must_use]
    pub fn now(&self) -> Instant {
        self.base + self.elapsed
    }

    /// Virtual time since the start.
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// Moves time forward by `by`.
    pub fn advance(&mut self, by: Duration) {
        self.elapsed += by;
    }

    /// Moves time forward to `to` (never backwards).
    pub fn advance_to(&mut self, to: Instant) {
        let target = to.saturating_duration_since(self.base);
        self.elapsed = self.elapsed.max(target);
    }
}

/// How a [`SimLink`] mistreats datagrams. Probabilities are per datagram sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkConfig {
    /// Probability a datagram is dropped.
    pub loss: f64,
    /// Probability a (not dropped) datagram is delivered twice.
    pub duplication: f64,
    /// Probability a delivered copy is held back by up to `reorder_delay` extra, so
    /// that later datagrams overtake it.
    pub reorder: f64,
    /// Largest extra delay of a reordered copy (uniform in `(0, reorder_delay]`).
    pub reorder_delay: Duration,
    /// Delay of every datagram.
    pub delay: Duration,
    /// Datagrams in flight at most (a socket buffer): more are dropped and counted as
    /// overflow. `None`: unbounded.
    pub queue_limit: Option<usize>,
}

impl Default for LinkConfig {
    /// A perfect link with 1 ms delay.
    fn default() -> Self {
        Self {
            loss: 0.0,
            duplication: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(2),
            delay: Duration::from_millis(1),
            queue_limit: None,
        }
    }
}

/// What a [`SimLink`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Datagrams given to [`SimLink::send`].
    pub sent: u64,
    /// Dropped by chance.
    pub dropped: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Copies held back to be overtaken.
    pub reordered: u64,
    /// Copies dropped because `queue_limit` datagrams were in flight.
    pub overflowed: u64,
    /// Copies handed out by [`SimLink::recv`].
    pub delivered: u64,
}

#[derive(Debug)]
struct InFlight {
    at: Instant,
    /// Sending order, so that equal times deliver first-sent first (determinism).
    order: u64,
    datagram: Bytes,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}

impl Eq for InFlight {}

impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

/// One direction of a simulated link.
///
/// # Examples
///
/// ```
/// use bytes::Bytes;
/// use netmesh_session::sim::{LinkConfig, SimLink, VirtualClock};
///
/// let mut clock = VirtualClock::new();
/// let mut link = SimLink::new(LinkConfig::default(), 42);
/// link.send(clock.now(), Bytes::from_static(b"hi"));
/// assert_eq!(link.recv(clock.now()), None, "still in flight");
/// clock.advance_to(link.next_delivery_time().unwrap());
/// assert_eq!(link.recv(clock.now()), Some(Bytes::from_static(b"hi")));
/// ```
#[derive(Debug)]
pub struct SimLink {
    config: LinkConfig,
    rng: SplitMix64,
    queue: BinaryHeap<Reverse<InFlight>>,
    order: u64,
    stats: LinkStats,
}

impl SimLink {
    /// A link behaving as `config`, its chances drawn from `seed`.
    #[must_use]
    pub fn new(config: LinkConfig, seed: u64) -> Self {
        Self {
            config,
            rng: SplitMix64::new(seed),
            queue: BinaryHeap::new(),
            order: 0,
            stats: LinkStats::default(),
        }
    }

    /// What the link did so far.
    #[must_use]
    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    /// Datagrams in flight.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// Sends `datagram` at `now`.
    pub fn send(&mut self, now: Instant, datagram: Bytes) {
        self.stats.sent += 1;
        if self.rng.chance(self.config.loss) {
            self.stats.dropped += 1;
            return;
        }
        let copies = if self.rng.chance(self.config.duplication) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut at = now + self.config.delay;
            if self.rng.chance(self.config.reorder) {
                self.stats.reordered += 1;
                let max = u64::try_from(self.config.reorder_delay.as_nanos()).unwrap_or(u64::MAX);
                at += Duration::from_nanos(1 + self.rng.below(max));
            }
            if self
                .config
                .queue_limit
                .is_some_and(|limit| self.queue.len() >= limit)
            {
                self.stats.overflowed += 1;
                continue;
            }
            self.order += 1;
            self.queue.push(Reverse(InFlight {
                at,
                order: self.order,
                datagram: datagram.clone(),
            }));
        }
    }

    /// The next datagram due at or before `now`, in delivery order.
    pub fn recv(&mut self, now: Instant) -> Option<Bytes> {
        if self.queue.peek()?.0.at > now {
            return None;
        }
        let Reverse(in_flight) = self.queue.pop()?;
        self.stats.delivered += 1;
        Some(in_flight.datagram)
    }

    /// When the next datagram becomes deliverable.
    #[must_use]
    pub fn next_delivery_time(&self) -> Option<Instant> {
        self.queue.peek().map(|f| f.0.at)
    }
}

#[cfg(test)]
mod tests {
    use super::{LinkConfig, SimLink, SplitMix64, VirtualClock};
    use bytes::Bytes;
    use std::time::Duration;

    fn run(seed: u64) -> (Vec<(Duration, Bytes)>, super::LinkStats) {
        let config = LinkConfig {
            loss: 0.1,
            duplication: 0.1,
            reorder: 0.2,
            ..LinkConfig::default()
        };
        let mut link = SimLink::new(config, seed);
        let mut clock = VirtualClock::new();
        let mut out = Vec::new();
        for i in 0u32..2000 {
            link.send(clock.now(), Bytes::copy_from_slice(&i.to_le_bytes()));
            clock.advance(Duration::from_micros(100));
            while let Some(d) = link.recv(clock.now()) {
                out.push((clock.elapsed(), d));
            }
        }
        while let Some(t) = link.next_delivery_time() {
            clock.advance_to(t);
            while let Some(d) = link.recv(clock.now()) {
                out.push((clock.elapsed(), d));
            }
        }
        (out, link.stats())
    }

    #[test]
    fn same_seed_same_run_other_seed_other_run() {
        let (a, stats_a) = run(1);
        let (b, stats_b) = run(1);
        assert_eq!(a, b);
        assert_eq!(stats_a, stats_b);
        let (c, _) = run(2);
        assert_ne!(a, c);
    }

    #[test]
    fn counters_add_up_and_rates_are_near_the_config() {
        let (out, s) = run(3);
        assert_eq!(s.sent, 2000);
        assert_eq!(s.delivered, out.len() as u64);
        assert_eq!(
            s.delivered,
            s.sent - s.dropped + s.duplicated - s.overflowed
        );
        assert!((150..250).contains(&s.dropped), "{s:?}");
        assert!((130..230).contains(&s.duplicated), "{s:?}");
        assert!((300..500).contains(&s.reordered), "{s:?}");
        // Reordering really reorders.
        let order: Vec<u32> = out
            .iter()
            .map(|(_, d)| u32::from_le_bytes(d[..].try_into().unwrap()))
            .collect();
        assert!(order.windows(2).any(|w| w[0] > w[1]));
    }

    #[test]
    fn queue_limit_drops_and_counts() {
        let config = LinkConfig {
            queue_limit: Some(3),
            ..LinkConfig::default()
        };
        let mut link = SimLink::new(config, 0);
        let clock = VirtualClock::new();
        for _ in 0..5 {
            link.send(clock.now(), Bytes::new());
        }
        assert_eq!(link.in_flight(), 3);
        assert_eq!(link.stats().overflowed, 2);
    }

    #[test]
    fn splitmix_known_first_output() {
        // SplitMix64 seeded with 0 starts 0xe220a8397b1dcdaf (published reference value).
        assert_eq!(SplitMix64::new(0).next_u64(), 0xe220_a839_7b1d_cdaf);
    }
}
