//! The receiving side of a reliable stream: reorder buffer, in-order delivery, NACK/ACK.

use std::fmt;
use std::time::{Duration, Instant};

use netmesh_wire::NackPayload;

use super::ring::SeqRing;

/// Settings of a [`ReliableReceiver`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use netmesh_session::reliable::ReceiverConfig;
///
/// let config = ReceiverConfig { capacity: 256, ..ReceiverConfig::default() };
/// assert_eq!(config.nack_interval, Duration::from_millis(5));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverConfig {
    /// The reorder window: sequences from the oldest not yet delivered (nor given up)
    /// on that may be held. Packets further ahead are dropped and counted; the
    /// sender's retransmission brings them back once the window has moved. 0 is taken
    /// as 1.
    pub capacity: usize,
    /// Least time between two NACKs of the stream while a gap persists.
    pub nack_interval: Duration,
    /// Least time between two ACKs of the stream.
    pub ack_interval: Duration,
}

impl ReceiverConfig {
    /// Default reorder window, in packets.
    pub const DEFAULT_CAPACITY: usize = 4096;
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        Self {
            capacity: Self::DEFAULT_CAPACITY,
            nack_interval: Duration::from_millis(5),
            ack_interval: Duration::from_millis(5),
        }
    }
}

/// What [`ReliableReceiver::on_packet`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It was the next expected sequence: it (and any buffered packets it unblocked)
    /// can now be taken with [`ReliableReceiver::pop_ready`].
    InOrder,
    /// It arrived ahead of a gap and is held until the gap is filled or skipped.
    Buffered,
    /// Its sequence was already received, delivered, or given up as lost: dropped.
    Duplicate,
    /// Its sequence is beyond the reorder window (or is `u64::MAX`, which no stream
    /// uses so that the next expected sequence always fits a `u64`): dropped. The
    /// sender retransmits it when the receiver NACKs it later.
    BeyondWindow,
}

/// Counters of a [`ReliableReceiver`]; each packet is counted once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiverStats {
    /// Packets accepted into the buffer ([`Outcome::InOrder`] or [`Outcome::Buffered`]).
    pub accepted: u64,
    /// Packets handed out by [`ReliableReceiver::pop_ready`].
    pub delivered: u64,
    /// Packets dropped as [`Outcome::Duplicate`].
    pub duplicates: u64,
    /// Packets dropped as [`Outcome::BeyondWindow`].
    pub beyond_window: u64,
    /// Sequences never received that the sender gave up on ([`ReliableReceiver::skip_to`]).
    pub lost: u64,
}

/// Receiver state of one reliable stream, holding packets of type `P` until they can be
/// delivered in sequence order.
///
/// Sans-IO: the caller feeds it authenticated packets with [`on_packet`](Self::on_packet),
/// takes deliverable ones with [`pop_ready`](Self::pop_ready), and asks
/// [`poll_nack`](Self::poll_nack) / [`poll_ack`](Self::poll_ack) what to tell the
/// sender. Sequences start at 0. The reorder buffer is a ring indexed by sequence, grown
/// on demand up to the configured capacity and then reused: steady state allocates
/// nothing per packet.
///
/// # Examples
///
/// ```
/// use netmesh_session::reliable::{Outcome, ReceiverConfig, ReliableReceiver};
///
/// let mut rx = ReliableReceiver::new(ReceiverConfig::default());
/// assert_eq!(rx.on_packet(1, "b"), Outcome::Buffered);
/// assert_eq!(rx.pop_ready(), None);
/// assert_eq!(rx.nack().map(|n| n.next_expected), Some(0));
/// assert_eq!(rx.on_packet(0, "a"), Outcome::InOrder);
/// assert_eq!(rx.on_packet(0, "a"), Outcome::Duplicate);
/// assert_eq!(rx.pop_ready(), Some((0, "a")));
/// assert_eq!(rx.pop_ready(), Some((1, "b")));
/// assert_eq!(rx.ack(), 2);
/// ```
pub struct ReliableReceiver<P> {
    ring: SeqRing<Option<P>>,
    capacity: u64,
    /// The window's base and the ring's: the oldest held packet, or `next_expected`
    /// when no packet below it is held.
    next_deliver: u64,
    /// First sequence not received (and not given up); `>= next_deliver`.
    next_expected: u64,
    /// Packets in the ring.
    stored: usize,
    /// Packets in the ring below `next_expected`: what `pop_ready` returns now.
    ready: usize,
    /// Highest sequence heard of (accepted or beyond the window): gaps exist below it.
    highest_seen: Option<u64>,
    stats: ReceiverStats,
    nack_interval: Duration,
    ack_interval: Duration,
    reorder_delay: Duration,
    /// When `poll_nack` first saw the current gap (at the current `next_expected`).
    gap_since: Option<Instant>,
    last_nack: Option<Instant>,
    last_ack: Option<Instant>,
    /// Progress (or a duplicate, which suggests a lost ACK) not yet acknowledged.
    ack_pending: bool,
}

impl<P> ReliableReceiver<P> {
    /// A receiver expecting sequence 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_session::reliable::{ReceiverConfig, ReliableReceiver};
    ///
    /// let rx: ReliableReceiver<u8> = ReliableReceiver::new(ReceiverConfig::default());
    /// assert_eq!(rx.next_expected(), 0);
    /// ```
    #[must_use]
    pub fn new(config: ReceiverConfig) -> Self {
        let capacity = config.capacity.max(1);
        Self {
            ring: SeqRing::new(capacity),
            capacity: capacity as u64,
            next_deliver: 0,
            next_expected: 0,
            stored: 0,
            ready: 0,
            highest_seen: None,
            stats: ReceiverStats::default(),
            nack_interval: config.nack_interval,
            ack_interval: config.ack_interval,
            reorder_delay: Duration::ZERO,
            gap_since: None,
            last_nack: None,
            last_ack: None,
            ack_pending: false,
        }
    }

    /// First sequence not yet received (every sequence below it was received or given up).
    #[must_use]
    pub fn next_expected(&self) -> u64 {
        self.next_expected
    }

    /// Packets held: received but not yet taken by [`pop_ready`](Self::pop_ready).
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.stored
    }

    /// Sets how long a gap must persist before it is NACKed (initially zero: NACK at
    /// once). Reordering shorter than this then costs no retransmission; loss recovery
    /// starts this much later. The gap's clock starts at the first
    /// [`poll_nack`](Self::poll_nack) that sees it and restarts whenever
    /// [`next_expected`](Self::next_expected) moves.
    pub fn set_reorder_delay(&mut self, delay: Duration) {
        self.reorder_delay = delay;
    }

    /// Packets deliverable now: how many [`pop_ready`](Self::pop_ready) will return.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_session::reliable::{ReceiverConfig, ReliableReceiver};
    ///
    /// let mut rx = ReliableReceiver::new(ReceiverConfig::default());
    /// rx.on_packet(1, ());
    /// assert_eq!((rx.ready(), rx.buffered()), (0, 1));
    /// rx.on_packet(0, ());
    /// assert_eq!(rx.ready(), 2);
    /// ```
    #[must_use]
    pub fn ready(&self) -> usize {
        self.ready
    }

    /// The counters.
    #[must_use]
    pub fn stats(&self) -> ReceiverStats {
        self.stats
    }

    /// Whether the ring holds a packet for `seq`, which must be `>= next_deliver`.
    fn held(&self, seq: u64) -> bool {
        let offset = seq.wrapping_sub(self.next_deliver);
        self.ring.covers(offset) && self.ring.get(seq).is_some_and(Option::is_some)
    }

    /// Takes in an authenticated packet of sequence `seq`.
    ///
    /// Never panics, whatever the sequence. A dropped packet ([`Outcome::Duplicate`],
    /// [`Outcome::BeyondWindow`]) is counted and changes nothing else, except that a
    /// duplicate makes the next [`poll_ack`](Self::poll_ack) answer (the sender resent
    /// it, so it probably missed an ACK) and a packet beyond the window counts as
    /// evidence of a gap for [`nack`](Self::nack).
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_session::reliable::{Outcome, ReceiverConfig, ReliableReceiver};
    ///
    /// let mut rx = ReliableReceiver::new(ReceiverConfig { capacity: 4, ..Default::default() });
    /// assert_eq!(rx.on_packet(3, ()), Outcome::Buffered);
    /// assert_eq!(rx.on_packet(4, ()), Outcome::BeyondWindow);
    /// assert_eq!(rx.on_packet(u64::MAX, ()), Outcome::BeyondWindow);
    /// assert_eq!(rx.stats().beyond_window, 2);
    /// ```
    pub fn on_packet(&mut self, seq: u64, packet: P) -> Outcome {
        if seq < self.next_expected {
            self.stats.duplicates += 1;
            self.ack_pending = true;
            return Outcome::Duplicate;
        }
        let offset = seq - self.next_deliver;
        if seq == u64::MAX || offset >= self.capacity || !self.ring.cover(self.next_deliver, offset)
        {
            self.stats.beyond_window += 1;
            if seq != u64::MAX {
                self.note_seen(seq);
            }
            return Outcome::BeyondWindow;
        }
        let Some(slot) = self.ring.get_mut(seq) else {
            // `cover` succeeded, so the ring is not empty: unreachable, but dropping
            // beats panicking.
            self.stats.beyond_window += 1;
            return Outcome::BeyondWindow;
        };
        if slot.is_some() {
            self.stats.duplicates += 1;
            self.ack_pending = true;
            return Outcome::Duplicate;
        }
        *slot = Some(packet);
        self.stored += 1;
        self.stats.accepted += 1;
        self.note_seen(seq);
        if seq == self.next_expected {
            self.advance();
            Outcome::InOrder
        } else {
            Outcome::Buffered
        }
    }

    fn note_seen(&mut self, seq: u64) {
        self.highest_seen = Some(self.highest_seen.map_or(seq, |h| h.max(seq)));
    }

    /// Moves `next_expected` past every held packet that directly follows it.
    fn advance(&mut self) {
        let before = self.next_expected;
        while self.next_expected != u64::MAX && self.held(self.next_expected) {
            self.next_expected += 1;
            self.ready += 1;
        }
        if self.next_expected != before {
            self.ack_pending = true;
            self.gap_since = None;
        }
    }

    /// The next packet in sequence order, if it has arrived. Sequences given up by
    /// [`skip_to`](Self::skip_to) are passed over, so the sequence numbers returned rise
    /// strictly but may have gaps (each counted in [`ReceiverStats::lost`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_session::reliable::{ReceiverConfig, ReliableReceiver};
    ///
    /// let mut rx = ReliableReceiver::new(ReceiverConfig::default());
    /// rx.on_packet(2, 'c');
    /// assert_eq!(rx.skip_to(2), 2);
    /// assert_eq!(rx.pop_ready(), Some((2, 'c')));
    /// assert_eq!(rx.pop_ready(), None);
    /// ```
    pub fn pop_ready(&mut self) -> Option<(u64, P)> {
        if self.next_deliver >= self.next_expected {
            return None;
        }
        // `settle` left `next_deliver` on a held packet.
        let seq = self.next_deliver;
        let packet = self.ring.get_mut(seq).and_then(Option::take)?;
        // Both count this packet: never below 1 here.
        self.stored = self.stored.saturating_sub(1);
        self.ready = self.ready.saturating_sub(1);
        self.stats.delivered += 1;
        self.next_deliver += 1;
        self.settle();
        Some((seq, packet))
    }

    /// Moves `next_deliver` (the window's base) over given-up holes, to the oldest
    /// held packet or to `next_expected`, whichever is lower. Steps at most the ring's
    /// length: held packets lie within it.
    fn settle(&mut self) {
        while self.next_deliver < self.next_expected {
            if self.stored == 0 {
                self.next_deliver = self.next_expected;
                return;
            }
            if self.held(self.next_deliver) {
                return;
            }
            self.next_deliver += 1;
        }
    }

    /// The sender no longer holds sequences below `first_available` (it sent SKIP):
    /// stop waiting for them. Returns how many of them were never received; those are
    /// added to [`ReceiverStats::lost`]. Packets already received below
    /// `first_available` are still delivered, in order. A `first_available` at or
    /// below [`next_expected`](Self::next_expected) changes nothing and returns 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_session::reliable::{ReceiverConfig, ReliableReceiver};
    ///
    /// let mut rx = ReliableReceiver::new(ReceiverConfig::default());
    /// rx.on_packet(1, 'b');
    /// rx.on_packet(5, 'f');
    /// assert_eq!(rx.skip_to(4), 3, "0, 2 and 3 are lost");
    /// assert_eq!(rx.next_expected(), 4);
    /// assert_eq!(rx.pop_ready(), Some((1, 'b')));
    /// assert_eq!(rx.pop_ready(), None, "4 is still awaited");
    /// assert_eq!(rx.skip_to(u64::MAX), u64::MAX - 5);
    /// assert_eq!(rx.pop_ready(), Some((5, 'f')));
    /// ```
    pub fn skip_to(&mut self, first_available: u64) -> u64 {
        if first_available <= self.next_expected {
            return 0;
        }
        // Held packets lie within the ring; beyond it every sequence is missing.
        let ring_end = self.next_deliver.saturating_add(self.ring.len() as u64);
        let scan_end = first_available.min(ring_end);
        let held = (self.next_expected..scan_end)
            .filter(|&seq| self.held(seq))
            .count() as u64;
        let lost = first_available - self.next_expected - held;
        self.ready += usize::try_from(held).unwrap_or(usize::MAX);
        self.stats.lost = self.stats.lost.saturating_add(lost);
        self.next_expected = first_available;
        self.ack_pending = true;
        self.gap_since = None;
        self.advance();
        self.settle();
        lost
    }

    /// Gives up every gap below the highest sequence heard of (for a peer that will not
    /// retransmit): like [`skip_to`](Self::skip_to) just past it, so that everything
    /// received becomes deliverable and only sequences known to be missing are counted
    /// lost. Returns how many were.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_session::reliable::{ReceiverConfig, ReliableReceiver};
    ///
    /// let mut rx = ReliableReceiver::new(ReceiverConfig::default());
    /// rx.on_packet(2, 'c');
    /// rx.on_packet(4, 'e');
    /// assert_eq!(rx.highest_seen(), Some(4));
    /// assert_eq!(rx.skip_gaps(), 3);
    /// assert_eq!(rx.ready(), 2);
    /// assert_eq!(rx.next_expected(), 5);
    /// ```
    pub fn skip_gaps(&mut self) -> u64 {
        match self.highest_seen {
            // `highest_seen` is never u64::MAX (that sequence is refused unseen).
            Some(highest) => self.skip_to(highest.saturating_add(1)),
            None => 0,
        }
    }

    /// The highest sequence heard of: accepted, or dropped beyond the window.
    #[must_use]
    pub fn highest_seen(&self) -> Option<u64> {
        self.highest_seen
    }

    /// The cumulative acknowledgement: every sequence below it was received or given up.
    #[must_use]
    pub fn ack(&self) -> u64 {
        self.next_expected
    }

    /// The gaps to report, or `None` when nothing is known to be missing (no packet
    /// above [`next_expected`](Self::next_expected) has been heard of). Bit `i` of the
    /// bitmap is set when `next_expected + 1 + i` is missing and at most the highest
    /// sequence heard of (later sequences may simply not have been sent yet).
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_session::reliable::{ReceiverConfig, ReliableReceiver};
    ///
    /// let mut rx = ReliableReceiver::new(ReceiverConfig::default());
    /// assert!(rx.nack().is_none());
    /// rx.on_packet(0, ());
    /// rx.on_packet(2, ());
    /// rx.on_packet(5, ());
    /// let nack = rx.nack().unwrap();
    /// assert_eq!(nack.missing_sequences().collect::<Vec<_>>(), [1, 3, 4]);
    /// ```
    #[must_use]
    pub fn nack(&self) -> Option<NackPayload> {
        let highest = self.highest_seen?;
        if highest <= self.next_expected {
            return None;
        }
        let mut missing_bitmap = 0u64;
        for bit in 0..64 {
            let Some(seq) = self.next_expected.checked_add(1 + bit) else {
                break;
            };
            if seq > highest {
                break;
            }
            if !self.held(seq) {
                missing_bitmap |= 1 << bit;
            }
        }
        Some(NackPayload {
            next_expected: self.next_expected,
            missing_bitmap,
        })
    }

    /// Whether a NACK should be sent now: a gap exists, has persisted for the reorder
    /// delay, and no NACK was sent within the NACK interval.
    #[must_use]
    pub fn nack_due(&self, now: Instant) -> bool {
        let aged = self.reorder_delay.is_zero()
            || self
                .gap_since
                .is_some_and(|t| now.saturating_duration_since(t) >= self.reorder_delay);
        self.has_gap() && aged && due(self.last_nack, self.nack_interval, now)
    }

    fn has_gap(&self) -> bool {
        self.highest_seen.is_some_and(|h| h > self.next_expected)
    }

    /// The NACK to send now, if one is due ([`nack_due`](Self::nack_due)); records
    /// that it was sent. A NACK carries the cumulative acknowledgement too, so it also
    /// satisfies a pending ACK.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use netmesh_session::reliable::{ReceiverConfig, ReliableReceiver};
    ///
    /// let mut rx = ReliableReceiver::new(ReceiverConfig::default());
    /// let t0 = Instant::now();
    /// rx.on_packet(1, ());
    /// assert!(rx.poll_nack(t0).is_some());
    /// assert!(rx.poll_nack(t0 + Duration::from_millis(1)).is_none(), "paced");
    /// assert!(rx.poll_nack(t0 + Duration::from_millis(5)).is_some());
    ///
    /// let mut patient = ReliableReceiver::new(ReceiverConfig::default());
    /// patient.set_reorder_delay(Duration::from_millis(2));
    /// patient.on_packet(1, ());
    /// assert!(patient.poll_nack(t0).is_none(), "may be reordering");
    /// assert_eq!(patient.poll_timeout(), Some(t0 + Duration::from_millis(2)));
    /// assert!(patient.poll_nack(t0 + Duration::from_millis(2)).is_some());
    /// ```
    pub fn poll_nack(&mut self, now: Instant) -> Option<NackPayload> {
        if self.gap_since.is_none() && self.has_gap() {
            self.gap_since = Some(now);
        }
        if !self.nack_due(now) {
            return None;
        }
        let nack = self.nack()?;
        self.last_nack = Some(now);
        self.last_ack = Some(now);
        self.ack_pending = false;
        Some(nack)
    }

    /// The cumulative ACK to send now, if the stream progressed (or saw a duplicate)
    /// since the last one and the ACK interval has passed; records that it was sent.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use netmesh_session::reliable::{ReceiverConfig, ReliableReceiver};
    ///
    /// let mut rx = ReliableReceiver::new(ReceiverConfig::default());
    /// let t0 = Instant::now();
    /// assert_eq!(rx.poll_ack(t0), None);
    /// rx.on_packet(0, ());
    /// assert_eq!(rx.poll_ack(t0), Some(1));
    /// rx.on_packet(1, ());
    /// assert_eq!(rx.poll_ack(t0), None, "paced");
    /// assert_eq!(rx.poll_ack(t0 + Duration::from_millis(5)), Some(2));
    /// ```
    pub fn poll_ack(&mut self, now: Instant) -> Option<u64> {
        if !self.ack_pending || !due(self.last_ack, self.ack_interval, now) {
            return None;
        }
        self.ack_pending = false;
        self.last_ack = Some(now);
        Some(self.next_expected)
    }

    /// When [`poll_nack`](Self::poll_nack) or [`poll_ack`](Self::poll_ack) next has
    /// something to send, for the caller's timer. `None`: nothing is waiting on time
    /// (either nothing is due, or something is due now and was never sent, which the
    /// caller's polling right after [`on_packet`](Self::on_packet) handles).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let nack = if self.has_gap() {
            let paced = self
                .last_nack
                .and_then(|t| t.checked_add(self.nack_interval));
            let aged = if self.reorder_delay.is_zero() {
                None
            } else {
                self.gap_since
                    .and_then(|t| t.checked_add(self.reorder_delay))
            };
            match (paced, aged) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            }
        } else {
            None
        };
        let ack = self
            .ack_pending
            .then(|| self.last_ack.and_then(|t| t.checked_add(self.ack_interval)))
            .flatten();
        match (nack, ack) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Whether an action last taken at `last` may be taken again at `now`.
pub(super) fn due(last: Option<Instant>, interval: Duration, now: Instant) -> bool {
    last.is_none_or(|last| now.saturating_duration_since(last) >= interval)
}

impl<P> fmt::Debug for ReliableReceiver<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReliableReceiver")
            .field("next_deliver", &self.next_deliver)
            .field("next_expected", &self.next_expected)
            .field("buffered", &self.stored)
            .field("ready", &self.ready)
            .field("capacity", &self.capacity)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}
