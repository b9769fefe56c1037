//! Counter credit, the receiver's half: which nonce counters have arrived, and the
//! watermark below which every counter arrived or was given up.

use std::time::{Duration, Instant};

use netmesh_cipher::REPLAY_WINDOW_SIZE;

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
    fn far_ahead_counter_skips() {
        let now = Instant::now();
        let mut w = Watermark::new();
        w.admit(5000, now);
        assert_eq!(w.below(), 5000 - 1023);
        assert!(w.expire_gap(now + Duration::from_secs(1), Duration::from_millis(1)));
        assert_eq!(w.below(), 5001);
    }
}
