//! Counter credit, the receiver's half: which nonce counters have arrived, and the
//! watermark below which every counter arrived or was given up.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use netmesh_cipher::REPLAY_WINDOW_SIZE;

use super::streams::lock;

/// Set in [`SharedWatermark`]'s state while its ring records counters above the
/// watermark: then only the holder of the ring's lock moves the watermark.
const SLOW: u64 = 1 << 63;

/// The watermark as the receive path shares it between threads. In the common case (the
/// next counter arrives, nothing recorded above) it moves with one compare-exchange, no
/// lock; anything else goes through the ring under its lock.
///
/// Counters from `2^63 - 1` on are not recorded (no sender gets there: it re-keys at
/// 2^60), so the watermark, and the credit it grants, stays where it was.
#[derive(Debug)]
pub(crate) struct SharedWatermark {
    /// `below`, with [`SLOW`] set exactly while the ring holds counters above it.
    state: AtomicU64,
    ring: Mutex<Watermark>,
}

impl SharedWatermark {
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicU64::new(0),
            ring: Mutex::new(Watermark::new()),
        }
    }

    /// Every counter below this arrived or was given up.
    pub(crate) fn below(&self) -> u64 {
        self.state.load(Ordering::Acquire) & !SLOW
    }

    /// Records an authenticated counter; returns the watermark after it.
    pub(crate) fn admit(&self, counter: u64, now: Instant) -> u64 {
        if counter >= SLOW - 1 {
            return self.below();
        }
        // `SLOW` clear and `below == counter`: nothing is recorded above, so moving the
        // watermark by one is all that `Watermark::admit` would do.
        match self
            .state
            .compare_exchange(counter, counter + 1, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => return counter + 1,
            // Below the watermark (given up): nothing to record.
            Err(state) if state & !SLOW > counter => return state & !SLOW,
            Err(_) => {}
        }
        self.update(|ring| ring.admit(counter, now));
        self.below()
    }

    /// Records the authenticated counters `lo..hi`; returns the watermark after them.
    /// A run that starts at the watermark with nothing recorded above it moves it in
    /// one compare-exchange.
    pub(crate) fn admit_range(&self, lo: u64, hi: u64, now: Instant) -> u64 {
        let in_one_step = hi > lo.saturating_add(1)
            && hi < SLOW - 1
            && self
                .state
                .compare_exchange(lo, hi, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
        if in_one_step {
            return hi;
        }
        let mut below = self.below();
        for counter in lo..hi {
            below = self.admit(counter, now);
        }
        below
    }

    /// Counters given up so far.
    pub(crate) fn skipped(&self) -> u64 {
        lock(&self.ring).skipped()
    }

    /// See [`Watermark::gap_deadline`].
    pub(crate) fn gap_deadline(&self, gap_timeout: Duration) -> Option<Instant> {
        lock(&self.ring).gap_deadline(gap_timeout)
    }

    /// See [`Watermark::expire_gap`].
    pub(crate) fn expire_gap(&self, now: Instant, gap_timeout: Duration) -> bool {
        self.update(|ring| ring.expire_gap(now, gap_timeout))
    }

    /// Runs `f` on the ring under its lock, with `SLOW` set meanwhile (the lock-free
    /// path then fails and waits for the lock).
    fn update<R>(&self, f: impl FnOnce(&mut Watermark) -> R) -> R {
        let mut ring = lock(&self.ring);
        // With `SLOW` clear the ring was empty and the lock-free path may have moved
        // the watermark: take its value. With `SLOW` set it is the ring's own.
        let state = self.state.fetch_or(SLOW, Ordering::AcqRel);
        ring.below = state & !SLOW;
        let result = f(&mut ring);
        let flag = if ring.has_above() { SLOW } else { 0 };
        self.state.store(ring.below | flag, Ordering::Release);
        result
    }
}

const WORDS: usize = 16;
/// Counters tracked above the watermark: the replay window's span.
const SPAN: u64 = 64 * WORDS as u64;
const _: () = assert!(SPAN == REPLAY_WINDOW_SIZE);

/// The receiver's record of counters above its watermark (a 1024-bit ring).
#[derive(Debug)]
pub(crate) struct Watermark {
    /// Every counter below this arrived or was given up.
    below: u64,
    /// Bit `c % SPAN` set: counter `c` (in `below + 1 .. below + SPAN`) arrived.
    bits: [u64; WORDS],
    /// Bits set in `bits` (so "anything above?" needs no scan).
    above: u32,
    /// Since when a counter has been missing below an arrived one.
    gap_since: Option<Instant>,
    /// Counters given up.
    skipped: u64,
}

impl Watermark {
    pub(crate) fn new() -> Self {
        Self {
            below: 0,
            bits: [0; WORDS],
            above: 0,
            gap_since: None,
            skipped: 0,
        }
    }

    #[cfg(test)]
    pub(crate) fn below(&self) -> u64 {
        self.below
    }

    /// Counters given up so far.
    pub(crate) fn skipped(&self) -> u64 {
        self.skipped
    }

    // The ring index is below SPAN (1024): no truncation.
    #[allow(clippy::cast_possible_truncation)]
    fn position(counter: u64) -> (usize, u64) {
        let bit = counter % SPAN;
        ((bit / 64) as usize, 1 << (bit % 64))
    }

    fn is_set(&self, counter: u64) -> bool {
        let (word, mask) = Self::position(counter);
        self.bits[word] & mask != 0
    }

    fn set(&mut self, counter: u64, on: bool) {
        let (word, mask) = Self::position(counter);
        let was = self.bits[word] & mask != 0;
        if on {
            self.bits[word] |= mask;
        } else {
            self.bits[word] &= !mask;
        }
        match (was, on) {
            (false, true) => self.above += 1,
            (true, false) => self.above -= 1,
            _ => {}
        }
    }

    /// Records an authenticated counter.
    pub(crate) fn admit(&mut self, counter: u64, now: Instant) {
        if counter < self.below {
            // Given up as lost, then arrived after all: the watermark has moved on.
            return;
        }
        if counter - self.below >= SPAN {
            // Far ahead (a peer that ignores credit): give up what lies between.
            let new_below = counter - (SPAN - 1);
            self.skip_to(new_below);
        }
        if counter == self.below {
            self.below += 1;
            self.advance();
            self.gap_since = self.has_above().then_some(now);
        } else {
            self.set(counter, true);
            self.gap_since.get_or_insert(now);
        }
    }

    /// Moves `below` over every arrived counter right above it.
    fn advance(&mut self) {
        while self.above != 0 && self.below < u64::MAX && self.is_set(self.below) {
            self.set(self.below, false);
            self.below += 1;
        }
    }

    fn has_above(&self) -> bool {
        self.above != 0
    }

    /// Gives up every counter below `to` (clearing their bits).
    fn skip_to(&mut self, to: u64) {
        if to.saturating_sub(self.below) >= SPAN {
            // Every recorded counter lies below `to`: in one step, not one per counter
            // (a far counter would otherwise hold the receive path for its distance).
            self.skipped += to - self.below - u64::from(self.above);
            self.bits = [0; WORDS];
            self.above = 0;
            self.below = to;
            return;
        }
        while self.below < to {
            if self.is_set(self.below) {
                self.set(self.below, false);
            } else {
                self.skipped += 1;
            }
            self.below += 1;
        }
    }

    /// When the oldest gap will be given up, if there is one.
    pub(crate) fn gap_deadline(&self, gap_timeout: Duration) -> Option<Instant> {
        self.gap_since.map(|since| since + gap_timeout)
    }

    /// Gives up a gap that has waited `gap_timeout`: the missing counters up to the next
    /// arrived one are skipped. Returns whether the watermark moved.
    pub(crate) fn expire_gap(&mut self, now: Instant, gap_timeout: Duration) -> bool {
        let Some(since) = self.gap_since else {
            return false;
        };
        if now.saturating_duration_since(since) < gap_timeout {
            return false;
        }
        let start = self.below;
        while self.below < u64::MAX && !self.is_set(self.below) && self.below - start < SPAN {
            self.skipped += 1;
            self.below += 1;
        }
        self.advance();
        self.gap_since = self.has_above().then_some(now);
        self.below != start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_counters_move_the_watermark() {
        let now = Instant::now();
        let mut w = Watermark::new();
        for c in 0..10 {
            w.admit(c, now);
        }
        assert_eq!(w.below(), 10);
        assert_eq!(w.gap_deadline(Duration::ZERO), None);
    }

    #[test]
    fn a_gap_holds_until_filled_or_expired() {
        let now = Instant::now();
        let timeout = Duration::from_millis(20);
        let mut w = Watermark::new();
        w.admit(0, now);
        w.admit(2, now);
        w.admit(3, now);
        assert_eq!(w.below(), 1);
        assert!(!w.expire_gap(now + Duration::from_millis(5), timeout));
        w.admit(1, now);
        assert_eq!(w.below(), 4);
        w.admit(6, now);
        assert!(w.expire_gap(now + timeout, timeout));
        assert_eq!((w.below(), w.skipped()), (7, 2));
        // A given-up counter arriving late changes nothing.
        w.admit(4, now);
        assert_eq!(w.below(), 7);
    }

    #[test]
    fn shared_watermark_in_order_and_around_gaps() {
        let now = Instant::now();
        let timeout = Duration::from_millis(20);
        let w = SharedWatermark::new();
        for c in 0..10 {
            assert_eq!(w.admit(c, now), c + 1);
        }
        // A gap: 11 and 12 wait in the ring, the lock-free path is off.
        assert_eq!(w.admit(11, now), 10);
        assert_eq!(w.admit(12, now), 10);
        assert!(w.gap_deadline(timeout).is_some());
        assert_eq!(w.admit(10, now), 13);
        assert_eq!(w.gap_deadline(timeout), None);
        // Lock-free again, then a gap given up by the timer.
        assert_eq!(w.admit(13, now), 14);
        assert_eq!(w.admit(16, now), 14);
        assert!(w.expire_gap(now + timeout, timeout));
        assert_eq!((w.below(), w.skipped()), (17, 2));
        // A given-up counter arriving late changes nothing.
        assert_eq!(w.admit(15, now), 17);
        assert_eq!(w.admit(17, now), 18);
        // Counters no sender reaches are not recorded.
        assert_eq!(w.admit(u64::MAX, now), 18);
        assert_eq!(w.admit(SLOW - 1, now), 18);
        assert_eq!(w.admit(18, now), 19);
    }

    #[test]
    fn a_run_of_counters_moves_the_watermark_as_its_counters_one_by_one_would() {
        let now = Instant::now();
        let timeout = Duration::from_millis(20);
        let (run, single) = (SharedWatermark::new(), SharedWatermark::new());
        let admit_each =
            |lo: u64, hi: u64| (lo..hi).fold(single.below(), |_, c| single.admit(c, now));
        // At the watermark with nothing above: one step.
        assert_eq!(run.admit_range(0, 40, now), 40);
        assert_eq!(admit_each(0, 40), 40);
        // Ahead of a gap: recorded above, the watermark waits.
        assert_eq!(run.admit_range(50, 60, now), 40);
        assert_eq!(admit_each(50, 60), 40);
        // Filling the gap releases what waited.
        assert_eq!(run.admit_range(40, 50, now), 60);
        assert_eq!(admit_each(40, 50), 60);
        // Partly below the watermark (given up, then arriving late).
        assert_eq!(run.admit_range(62, 64, now), 60);
        assert!(run.expire_gap(now + timeout, timeout));
        assert_eq!(run.admit_range(55, 70, now), 70);
        // Empty, single and unrecordable runs.
        assert_eq!(run.admit_range(80, 80, now), 70);
        assert_eq!(run.admit_range(70, 71, now), 71);
        assert_eq!(run.admit_range(SLOW - 1, SLOW + 4, now), 71);
        assert_eq!((run.below(), run.skipped()), (71, 2));
        assert_eq!(run.gap_deadline(timeout), None);
    }

    #[test]
    fn shared_watermark_across_threads_ends_at_the_total() {
        // Four threads admit interleaved counters (each its own residue, so the ring
        // and the lock-free path race), kept within one span of each other by a barrier
        // every 512 counters, as credit keeps senders: every counter arrives, so the
        // watermark must end exactly at the total, with nothing given up.
        let now = Instant::now();
        let w = SharedWatermark::new();
        let total = 40_960u64;
        let barrier = std::sync::Barrier::new(4);
        std::thread::scope(|scope| {
            for t in 0..4 {
                let (w, barrier) = (&w, &barrier);
                scope.spawn(move || {
                    for chunk in (0..total).step_by(512) {
                        for c in (chunk + t..chunk + 512).step_by(4) {
                            w.admit(c, now);
                        }
                        barrier.wait();
                    }
                });
            }
        });
        assert_eq!((w.below(), w.skipped()), (total, 0));
        assert_eq!(w.gap_deadline(Duration::ZERO), None);
    }

    #[test]
    fn far_ahead_counter_skips() {
        let now = Instant::now();
        let mut w = Watermark::new();
        w.admit(5000, now);
        assert_eq!(w.below(), 5000 - 1023);
        assert!(w.expire_gap(now + Duration::from_secs(1), Duration::from_millis(1)));
        assert_eq!(w.below(), 5001);
        assert_eq!(w.skipped(), 5000);
    }

    #[test]
    fn a_very_far_counter_is_skipped_to_in_one_step() {
        let now = Instant::now();
        let mut w = Watermark::new();
        w.admit(0, now);
        w.admit(2, now);
        w.admit(1 << 62, now);
        assert_eq!(w.below(), (1 << 62) - (SPAN - 1));
        // Counters 1 and 3 up to the new watermark were given up; 2 had arrived.
        assert_eq!(w.skipped(), (1 << 62) - (SPAN - 1) - 2);
        let shared = SharedWatermark::new();
        assert_eq!(shared.admit(1 << 62, now), (1 << 62) - (SPAN - 1));
    }
}
