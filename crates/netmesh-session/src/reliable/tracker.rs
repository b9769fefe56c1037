//! Receive accounting of a fire-and-forget stream: what arrived, what is missing.

/// What [`StreamTracker::on_packet`] made of a sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackOutcome {
    /// Newest so far; any sequences skipped over were counted lost.
    New,
    /// Older than the newest, filling a gap that had been counted lost (reordering).
    Late,
    /// Already received: the caller should not deliver it again.
    Duplicate,
    /// Older than the tracked window: whether it was received before is no longer
    /// known, so it stays counted lost and the caller should drop it (delivering it
    /// might deliver something twice).
    TooOld,
    /// `u64::MAX`, which no stream uses (so that the next sequence always fits).
    Unusable,
}

/// Counters of a [`StreamTracker`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackerStats {
    /// Distinct sequences received ([`TrackOutcome::New`] and [`TrackOutcome::Late`]).
    pub received: u64,
    /// Sequences below the newest received that have not arrived. A late arrival
    /// inside the window takes its sequence back out.
    pub lost: u64,
    /// Arrivals that filled a counted gap.
    pub late: u64,
    /// [`TrackOutcome::Duplicate`] arrivals.
    pub duplicates: u64,
    /// [`TrackOutcome::TooOld`] arrivals.
    pub too_old: u64,
    /// [`TrackOutcome::Unusable`] arrivals.
    pub unusable: u64,
}

/// Receive accounting for one fire-and-forget stream, whose sequences start at 0:
/// counts what arrived and the gaps (losses), tolerating reordering within the last
/// [`WINDOW`](Self::WINDOW) sequences, in fixed memory (a 1024-bit sliding bitmap, the
/// depth of the packet layer's replay window), never counting a sequence twice.
///
/// # Examples
///
/// ```
/// use netmesh_session::reliable::{StreamTracker, TrackOutcome};
///
/// let mut t = StreamTracker::new();
/// assert_eq!(t.on_packet(0), TrackOutcome::New);
/// assert_eq!(t.on_packet(3), TrackOutcome::New);
/// assert_eq!(t.stats().lost, 2);
/// assert_eq!(t.on_packet(1), TrackOutcome::Late);
/// assert_eq!(t.on_packet(1), TrackOutcome::Duplicate);
/// assert_eq!((t.stats().received, t.stats().lost), (3, 1));
/// ```
#[derive(Debug, Clone)]
pub struct StreamTracker {
    /// One past the newest sequence received (0 before any).
    next: u64,
    /// Bit `s mod WINDOW` set: sequence `s` of `next - WINDOW..next` was received.
    bits: [u64; Self::WORDS],
    stats: TrackerStats,
}

impl Default for StreamTracker {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamTracker {
    const WORDS: usize = 16;
    /// Sequences below the newest that a late arrival may still fill.
    pub const WINDOW: u64 = 64 * Self::WORDS as u64;

    /// A tracker expecting sequence 0 first.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            next: 0,
            bits: [0; Self::WORDS],
            stats: TrackerStats {
                received: 0,
                lost: 0,
                late: 0,
                duplicates: 0,
                too_old: 0,
                unusable: 0,
            },
        }
    }

    /// The counters.
    #[must_use]
    pub fn stats(&self) -> TrackerStats {
        self.stats
    }

    /// One past the newest sequence received.
    #[must_use]
    pub fn next(&self) -> u64 {
        self.next
    }

    // The window index is `seq mod WINDOW`, below 1024: no truncation.
    #[allow(clippy::cast_possible_truncation)]
    fn position(seq: u64) -> (usize, u64) {
        let bit = seq % Self::WINDOW;
        ((bit / 64) as usize, 1 << (bit % 64))
    }

    fn is_set(&self, seq: u64) -> bool {
        let (word, mask) = Self::position(seq);
        self.bits.get(word).is_some_and(|w| w & mask != 0)
    }

    fn set(&mut self, seq: u64, on: bool) {
        let (word, mask) = Self::position(seq);
        if let Some(w) = self.bits.get_mut(word) {
            if on {
                *w |= mask;
            } else {
                *w &= !mask;
            }
        }
    }

    /// Records the authenticated packets of sequences `first..end` and returns how many
    /// of them were duplicates: the same as calling [`on_packet`](Self::on_packet) for
    /// each in turn, in a few word operations when the run is all new (the common case:
    /// a receive batch of one stream in order).
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_session::reliable::StreamTracker;
    ///
    /// let mut t = StreamTracker::new();
    /// assert_eq!(t.on_packets(0..100), 0);
    /// assert_eq!(t.on_packets(150..200), 0);
    /// assert_eq!(t.on_packets(90..160), 20); // 90..100 and 150..160 came before
    /// let stats = t.stats();
    /// assert_eq!((stats.received, stats.lost, stats.duplicates), (200, 0, 20));
    /// ```
    pub fn on_packets(&mut self, run: std::ops::Range<u64>) -> u64 {
        let (first, end) = (run.start, run.end);
        if first < self.next || end <= first {
            return run
                .map(|s| u64::from(self.on_packet(s) == TrackOutcome::Duplicate))
                .sum();
        }
        let skipped = first - self.next;
        let count = end - first;
        if skipped + count >= Self::WINDOW {
            // Everything in the window is cleared, and what is left is this run's.
            self.bits = [0; Self::WORDS];
            self.set_range(first.max(end - Self::WINDOW), end);
        } else {
            self.clear_range(self.next, first);
            self.set_range(first, end);
        }
        self.stats.lost = self.stats.lost.saturating_add(skipped);
        self.stats.received += count;
        self.next = end;
        0
    }

    /// Sets the bits of `lo..hi`, at most [`WINDOW`](Self::WINDOW) sequences.
    fn set_range(&mut self, lo: u64, hi: u64) {
        self.for_words(lo, hi, |w, mask| *w |= mask);
    }

    /// Clears the bits of `lo..hi`, at most [`WINDOW`](Self::WINDOW) sequences.
    fn clear_range(&mut self, lo: u64, hi: u64) {
        self.for_words(lo, hi, |w, mask| *w &= !mask);
    }

    /// Applies `f` to each word of the bitmap covering `lo..hi` with the mask of the
    /// range's bits in it: a word at a time, wrapping around the window.
    fn for_words(&mut self, mut lo: u64, hi: u64, f: impl Fn(&mut u64, u64)) {
        while lo < hi {
            let (word, _) = Self::position(lo);
            let bit = lo % 64;
            let take = (64 - bit).min(hi - lo);
            let mask = if take == 64 {
                u64::MAX
            } else {
                ((1u64 << take) - 1) << bit
            };
            if let Some(w) = self.bits.get_mut(word) {
                f(w, mask);
            }
            lo += take;
        }
    }

    /// Records an authenticated packet of sequence `seq` and says what it was.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_session::reliable::{StreamTracker, TrackOutcome};
    ///
    /// let mut t = StreamTracker::new();
    /// assert_eq!(t.on_packet(5000), TrackOutcome::New);
    /// assert_eq!(t.stats().lost, 5000);
    /// assert_eq!(t.on_packet(4000), TrackOutcome::Late);
    /// assert_eq!(t.on_packet(3000), TrackOutcome::TooOld);
    /// assert_eq!(t.on_packet(u64::MAX), TrackOutcome::Unusable);
    /// assert_eq!(t.stats().lost, 4999);
    /// ```
    pub fn on_packet(&mut self, seq: u64) -> TrackOutcome {
        if seq == u64::MAX {
            self.stats.unusable += 1;
            return TrackOutcome::Unusable;
        }
        if seq >= self.next {
            let skipped = seq - self.next;
            if skipped >= Self::WINDOW {
                self.bits = [0; Self::WORDS];
            } else {
                // Clear the slots of the sequences skipped over (they held sequences
                // a window older); `seq`'s own slot is set below.
                for s in self.next..seq {
                    self.set(s, false);
                }
            }
            self.set(seq, true);
            self.stats.lost = self.stats.lost.saturating_add(skipped);
            self.stats.received += 1;
            self.next = seq + 1;
            return TrackOutcome::New;
        }
        if self.next - seq > Self::WINDOW {
            self.stats.too_old += 1;
            return TrackOutcome::TooOld;
        }
        if self.is_set(seq) {
            self.stats.duplicates += 1;
            return TrackOutcome::Duplicate;
        }
        self.set(seq, true);
        self.stats.received += 1;
        self.stats.late += 1;
        self.stats.lost = self.stats.lost.saturating_sub(1);
        TrackOutcome::Late
    }
}
