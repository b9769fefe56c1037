//! The sending side of a reliable stream: the bounded retransmit buffer.

use std::time::{Duration, Instant};

use bytes::Bytes;
use netmesh_wire::{AsEvent, FrameCodec, MissingSequences, NackPayload};

use super::ring::SeqRing;
use super::rx::due;

/// Settings of a [`RetransmitBuffer`].
///
/// # Examples
///
/// ```
/// use netmesh_session::reliable::RetransmitConfig;
///
/// let config = RetransmitConfig { capacity: 64, ..RetransmitConfig::default() };
/// assert!(config.probe_timeout > config.retransmit_interval);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetransmitConfig {
    /// Unacknowledged packets held at most; [`RetransmitBuffer::push`] refuses more.
    /// 0 is taken as 1.
    pub capacity: usize,
    /// Least time between two retransmissions of one sequence (an RTO-like interval):
    /// repeated NACKs of the same gap, sent before the first retransmission could
    /// arrive, must not multiply it.
    pub retransmit_interval: Duration,
    /// Time without ACK progress after which [`RetransmitBuffer::poll_probe`] resends
    /// (tail loss: when the last packets are lost, no later packet reveals the gap to
    /// the receiver, so no NACK comes).
    pub probe_timeout: Duration,
    /// Bytes of frames a buffer slot keeps allocated once released. A packet whose
    /// frames are larger allocates when buffered (one allocation, freed when it is
    /// acknowledged); smaller ones keep steady state allocation free, while what an
    /// idle buffer retains stays bounded (capacity × this).
    pub retained_bytes_per_slot: usize,
}

impl RetransmitConfig {
    /// Default capacity, in packets.
    pub const DEFAULT_CAPACITY: usize = 4096;
}

impl Default for RetransmitConfig {
    fn default() -> Self {
        Self {
            capacity: Self::DEFAULT_CAPACITY,
            retransmit_interval: Duration::from_millis(20),
            probe_timeout: Duration::from_millis(50),
            retained_bytes_per_slot: 2048,
        }
    }
}

/// Why a [`RetransmitBuffer`] refused an operation; the buffer is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RetransmitError {
    /// The buffer holds `capacity` unacknowledged packets: the stream must wait for
    /// an ACK (or give up old packets with [`RetransmitBuffer::discard_before`]).
    #[error("retransmit buffer full ({capacity} unacknowledged packets)")]
    Full {
        /// The configured capacity.
        capacity: usize,
    },
    /// Sequences are pushed consecutively; this one is not the next.
    #[error("sequence {got} pushed, {expected} expected")]
    OutOfOrder {
        /// The sequence the buffer expects next.
        expected: u64,
        /// The sequence pushed.
        got: u64,
    },
    /// `u64::MAX` is not a usable sequence (the receiver's next expected sequence
    /// could not follow it).
    #[error("sequence u64::MAX is not usable")]
    SequenceExhausted,
    /// The peer acknowledged (or NACKed from) a sequence beyond anything sent.
    #[error("acknowledgement {acked} beyond the next unsent sequence {next_seq}")]
    AckBeyondSent {
        /// The peer's cumulative acknowledgement.
        acked: u64,
        /// The next sequence this side would send.
        next_seq: u64,
    },
}

/// Counters of a [`RetransmitBuffer`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetransmitStats {
    /// Packets pushed.
    pub pushed: u64,
    /// Packets freed by acknowledgement.
    pub acked: u64,
    /// Packets handed out for retransmission (NACK or probe).
    pub retransmitted: u64,
    /// NACKed sequences held but not resent because one was sent within the
    /// retransmit interval.
    pub paced: u64,
    /// Packets given up unacknowledged ([`RetransmitBuffer::discard_before`]).
    pub discarded: u64,
    /// NACKed sequences no longer held because they were given up.
    pub nacked_lost: u64,
    /// NACKed sequences never sent (a confused or stale peer): ignored.
    pub nacked_unsent: u64,
}

/// One held packet's events, as the frames of its payload (`len (u32 LE) ‖ bytes`
/// each): one buffer per packet, so holding and releasing a packet costs no reference
/// count per event.
#[derive(Debug, Default)]
struct Slot {
    frames: Vec<u8>,
    count: usize,
}

impl Slot {
    fn held(&self) -> HeldEvents<'_> {
        HeldEvents {
            frames: &self.frames,
            count: self.count,
        }
    }
}

/// The events of one packet a [`RetransmitBuffer`] holds, borrowed from it: copies of
/// the events pushed, in order.
///
/// # Examples
///
/// ```
/// use std::time::Instant;
/// use netmesh_session::reliable::{RetransmitBuffer, RetransmitConfig};
///
/// let mut tx = RetransmitBuffer::new(RetransmitConfig::default());
/// tx.push_events(0, &[&b"ab"[..], b"cdef"], Instant::now())?;
/// let held = tx.get(0).unwrap();
/// assert_eq!(held.len(), 2);
/// assert!(held.iter().eq([&b"ab"[..], b"cdef"]));
/// assert_eq!(held.frames(), b"\x02\0\0\0ab\x04\0\0\0cdef");
/// # Ok::<(), netmesh_session::reliable::RetransmitError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldEvents<'a> {
    frames: &'a [u8],
    count: usize,
}

impl<'a> HeldEvents<'a> {
    /// How many events.
    #[must_use]
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the packet held no event.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The events, in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        // Written by `push_events` with the frame codec: every frame is whole.
        FrameCodec::iter(self.frames).map_while(Result::ok)
    }

    /// The events as frames, the layout of a packet's payload.
    #[must_use]
    pub fn frames(&self) -> &'a [u8] {
        self.frames
    }

    /// Copies of the events as `Bytes`.
    #[must_use]
    pub fn to_vec(&self) -> Vec<Bytes> {
        self.iter().map(Bytes::copy_from_slice).collect()
    }
}

/// The sender's copy of every unacknowledged packet of one reliable stream, so that a
/// NACKed packet can be re-sealed under a fresh nonce counter (old sealed bytes are
/// never resent: their counter may already be admitted or outside the replay window).
///
/// Holds a copy of each packet's events, as the frames of its payload, in one buffer per
/// packet. Slots form a ring indexed by sequence, grown on demand up to the capacity; a
/// released slot keeps a small buffer and hands a large one to the spares that later
/// pushes take, so steady state allocates nothing per packet. Sans-IO: time is passed
/// in.
///
/// Sequences start at 0 and are pushed consecutively. Three positions matter:
/// `acked` (every sequence below was confirmed received by the peer),
/// [`first_unacked`](Self::first_unacked) (the oldest held; sequences between `acked`
/// and it were given up, so the peer must be told to skip them, see
/// [`pending_skip`](Self::pending_skip)), and [`next_seq`](Self::next_seq).
///
/// # Examples
///
/// ```
/// use std::time::Instant;
/// use bytes::Bytes;
/// use netmesh_session::reliable::{RetransmitBuffer, RetransmitConfig};
/// use netmesh_wire::NackPayload;
///
/// let now = Instant::now();
/// let mut tx = RetransmitBuffer::new(RetransmitConfig::default());
/// for seq in 0..4 {
///     tx.push(seq, &[Bytes::from_static(b"event")], now)?;
/// }
/// tx.ack(1, now)?;
/// assert_eq!((tx.first_unacked(), tx.len()), (1, 3));
/// let nack = NackPayload { next_expected: 1, missing_bitmap: 0b1 }; // 1 and 2 missing
/// let resend: Vec<u64> = tx.on_nack(&nack, now)?.map(|(seq, _events)| seq).collect();
/// assert_eq!(resend, [1, 2]);
/// # Ok::<(), netmesh_session::reliable::RetransmitError>(())
/// ```
#[derive(Debug)]
pub struct RetransmitBuffer {
    slots: SeqRing<Slot>,
    /// When each slot was last retransmitted; kept apart from the events so that a
    /// resend iterator can lend the events while it updates these.
    last_sent: SeqRing<Option<Instant>>,
    config: RetransmitConfig,
    capacity: u64,
    /// Every sequence below was acknowledged by the peer.
    acked: u64,
    /// Oldest sequence held; `acked <= first_unacked <= next_seq`.
    first_unacked: u64,
    next_seq: u64,
    /// When the probe timer started: the last ACK progress, the push that made the
    /// buffer non-empty, or the last probe.
    probe_armed: Option<Instant>,
    /// When a SKIP was last handed out by `poll_skip`.
    last_skip: Option<Instant>,
    stats: RetransmitStats,
    /// Buffers of released slots larger than the retained size, for the next pushes:
    /// a stream whose acknowledgements keep up then allocates nothing, and the memory
    /// does not pass between the sending and the acknowledging thread's allocator.
    spare: Vec<Vec<u8>>,
}

/// Buffers a [`RetransmitBuffer`] keeps spare at most: 8 MB of full packets, kept only
/// after that many were held at once (acknowledgements arrive in bursts of hundreds of
/// packets; measured, 64 spares still left an allocation and a page fault per packet).
const SPARE_BUFFERS: usize = 1024;

impl RetransmitBuffer {
    /// An empty buffer whose first sequence will be 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_session::reliable::{RetransmitBuffer, RetransmitConfig};
    ///
    /// let tx = RetransmitBuffer::new(RetransmitConfig::default());
    /// assert!(tx.is_empty());
    /// assert_eq!(tx.next_seq(), 0);
    /// ```
    #[must_use]
    pub fn new(config: RetransmitConfig) -> Self {
        let capacity = config.capacity.max(1);
        Self {
            slots: SeqRing::new(capacity),
            last_sent: SeqRing::new(capacity),
            config: RetransmitConfig { capacity, ..config },
            capacity: capacity as u64,
            acked: 0,
            first_unacked: 0,
            next_seq: 0,
            probe_armed: None,
            last_skip: None,
            stats: RetransmitStats::default(),
            spare: Vec::new(),
        }
    }

    /// Packets held (pushed, neither acknowledged nor given up).
    #[must_use]
    pub fn len(&self) -> usize {
        usize::try_from(self.next_seq - self.first_unacked).unwrap_or(usize::MAX)
    }

    /// Whether nothing is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.next_seq == self.first_unacked
    }

    /// Whether [`push`](Self::push) would refuse for lack of room.
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.next_seq - self.first_unacked >= self.capacity
    }

    /// The oldest sequence held (equal to [`next_seq`](Self::next_seq) when empty).
    #[must_use]
    pub fn first_unacked(&self) -> u64 {
        self.first_unacked
    }

    /// The sequence the next [`push`](Self::push) must carry.
    #[must_use]
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The peer's cumulative acknowledgement: every sequence below it was received.
    #[must_use]
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// The counters.
    #[must_use]
    pub fn stats(&self) -> RetransmitStats {
        self.stats
    }

    /// Changes the retransmit interval (e.g. from a measured round-trip time).
    pub fn set_retransmit_interval(&mut self, interval: Duration) {
        self.config.retransmit_interval = interval;
    }

    /// Changes the probe timeout (e.g. from a measured round-trip time).
    pub fn set_probe_timeout(&mut self, timeout: Duration) {
        self.config.probe_timeout = timeout;
    }

    /// The events of held sequence `seq`.
    #[must_use]
    pub fn get(&self, seq: u64) -> Option<HeldEvents<'_>> {
        if seq < self.first_unacked || seq >= self.next_seq {
            return None;
        }
        self.slots.get(seq).map(Slot::held)
    }

    /// Records packet `seq`, just sent with `events`, until it is acknowledged.
    /// `now` is when it was sent (it starts the probe timer of an empty buffer).
    ///
    /// # Errors
    ///
    /// [`RetransmitError::Full`] when `capacity` packets are held,
    /// [`RetransmitError::OutOfOrder`] when `seq` is not [`next_seq`](Self::next_seq),
    /// [`RetransmitError::SequenceExhausted`] for `u64::MAX`. Nothing changes then.
    ///
    /// # Panics
    ///
    /// As [`push_events`](Self::push_events).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// use bytes::Bytes;
    /// use netmesh_session::reliable::{RetransmitBuffer, RetransmitConfig, RetransmitError};
    ///
    /// let now = Instant::now();
    /// let mut tx = RetransmitBuffer::new(RetransmitConfig { capacity: 1, ..Default::default() });
    /// tx.push(0, &[Bytes::from_static(b"a")], now)?;
    /// assert_eq!(tx.push(1, &[], now), Err(RetransmitError::Full { capacity: 1 }));
    /// tx.ack(1, now)?;
    /// assert_eq!(tx.push(5, &[], now), Err(RetransmitError::OutOfOrder { expected: 1, got: 5 }));
    /// # Ok::<(), RetransmitError>(())
    /// ```
    pub fn push(
        &mut self,
        seq: u64,
        events: &[Bytes],
        now: Instant,
    ) -> Result<(), RetransmitError> {
        self.push_events(seq, events, now)
    }

    /// [`push`](Self::push) for any [`AsEvent`]s. The events are copied, all of a
    /// packet's into one buffer as frames: at most one allocation per packet, none
    /// while acknowledgements keep up (a released packet's buffer is reused), and
    /// nothing per event.
    ///
    /// # Errors
    ///
    /// As [`push`](Self::push).
    ///
    /// # Panics
    ///
    /// If an event is longer than `u32::MAX` bytes, which no frame prefix can express
    /// (as [`FrameCodec::write_frames_into`]); no packet carries such an event.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// use bytes::Bytes;
    /// use netmesh_session::reliable::{RetransmitBuffer, RetransmitConfig, RetransmitError};
    ///
    /// let mut tx = RetransmitBuffer::new(RetransmitConfig::default());
    /// let buffer = *b"abcdef";
    /// tx.push_events(0, &[&buffer[..2], &buffer[2..]], Instant::now())?;
    /// assert_eq!(tx.get(0).unwrap().to_vec(), [Bytes::from_static(b"ab"), Bytes::from_static(b"cdef")]);
    /// # Ok::<(), RetransmitError>(())
    /// ```
    pub fn push_events<E: AsEvent>(
        &mut self,
        seq: u64,
        events: &[E],
        now: Instant,
    ) -> Result<(), RetransmitError> {
        let size = FrameCodec::frames_size(events);
        self.push_frames(seq, size, events.len(), now, |frames| {
            FrameCodec::write_frames_into(events, frames);
        })
    }

    /// [`push_events`](Self::push_events) for `count` events of `event_len` bytes each,
    /// written in place by `fill(index, event)` (as
    /// [`FrameCodec::write_frames_with`]): for a sender that makes its events as it sends
    /// them. `fill` runs only if the packet is taken.
    ///
    /// # Errors
    ///
    /// As [`push`](Self::push).
    ///
    /// # Panics
    ///
    /// If there are events and `count * (4 + event_len)` overflows, or `event_len` does
    /// not fit a `u32` length prefix; no packet comes near either.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// use bytes::Bytes;
    /// use netmesh_session::reliable::{RetransmitBuffer, RetransmitConfig, RetransmitError};
    ///
    /// let mut tx = RetransmitBuffer::new(RetransmitConfig::default());
    /// tx.push_with(0, 2, 1, |i, event| event[0] = b'a' + i as u8, Instant::now())?;
    /// assert_eq!(tx.get(0).unwrap().to_vec(), [Bytes::from_static(b"a"), Bytes::from_static(b"b")]);
    /// # Ok::<(), RetransmitError>(())
    /// ```
    pub fn push_with(
        &mut self,
        seq: u64,
        count: usize,
        event_len: usize,
        fill: impl FnMut(usize, &mut [u8]),
        now: Instant,
    ) -> Result<(), RetransmitError> {
        let Some(size) = FrameCodec::uniform_frames_size(count, event_len) else {
            panic!("{count} frames of {event_len}-byte events overflow usize");
        };
        self.push_frames(seq, size, count, now, |frames| {
            FrameCodec::write_frames_with(frames, event_len, fill);
        })
    }

    /// Takes packet `seq`: `count` events whose frames, `size` bytes, `write` puts into
    /// the slot's buffer.
    fn push_frames(
        &mut self,
        seq: u64,
        size: usize,
        count: usize,
        now: Instant,
        write: impl FnOnce(&mut [u8]),
    ) -> Result<(), RetransmitError> {
        if seq != self.next_seq {
            return Err(RetransmitError::OutOfOrder {
                expected: self.next_seq,
                got: seq,
            });
        }
        if seq == u64::MAX {
            return Err(RetransmitError::SequenceExhausted);
        }
        let offset = seq - self.first_unacked;
        let full = RetransmitError::Full {
            capacity: self.config.capacity,
        };
        if offset >= self.capacity
            || !self.slots.cover(self.first_unacked, offset)
            || !self.last_sent.cover(self.first_unacked, offset)
        {
            return Err(full);
        }
        let (Some(slot), Some(last_sent)) = (self.slots.get_mut(seq), self.last_sent.get_mut(seq))
        else {
            return Err(full);
        };
        if slot.frames.capacity() < size {
            if let Some(spare) = self.spare.pop() {
                slot.frames = spare;
            }
        }
        slot.frames.clear();
        slot.frames.resize(size, 0);
        write(&mut slot.frames);
        slot.count = count;
        *last_sent = None;
        if self.is_empty() {
            self.probe_armed = Some(now);
        }
        self.next_seq += 1;
        self.stats.pushed += 1;
        Ok(())
    }

    /// Takes back the last push, for a packet that could not be built after its events
    /// were pushed: the buffer is as before, but for a probe timer that an empty
    /// buffer does not run.
    pub(crate) fn retract_last(&mut self) {
        if self.is_empty() {
            return;
        }
        self.next_seq -= 1;
        self.stats.pushed -= 1;
        self.release(self.next_seq, self.next_seq + 1);
        if self.is_empty() {
            self.probe_armed = None;
        }
    }

    /// Empties the slots of `from..to` (all held); buffers beyond the retained size go
    /// to the spares, or are freed when those are full.
    fn release(&mut self, from: u64, to: u64) {
        let retain = self.config.retained_bytes_per_slot;
        for seq in from..to {
            if let Some(slot) = self.slots.get_mut(seq) {
                slot.count = 0;
                slot.frames.clear();
                if slot.frames.capacity() > retain {
                    let frames = std::mem::take(&mut slot.frames);
                    if self.spare.len() < SPARE_BUFFERS {
                        self.spare.push(frames);
                    }
                }
            }
        }
    }

    /// The peer received every sequence below `next_expected` (an ACK, at `now`): frees
    /// them and, on progress, restarts the probe timer. Returns how many packets were
    /// freed. An acknowledgement older than one already seen changes nothing.
    ///
    /// # Errors
    ///
    /// [`RetransmitError::AckBeyondSent`] when `next_expected` exceeds
    /// [`next_seq`](Self::next_seq); nothing changes then.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// use netmesh_session::reliable::{RetransmitBuffer, RetransmitConfig, RetransmitError};
    ///
    /// let now = Instant::now();
    /// let mut tx = RetransmitBuffer::new(RetransmitConfig::default());
    /// tx.push(0, &[], now)?;
    /// tx.push(1, &[], now)?;
    /// assert_eq!(tx.ack(1, now), Ok(1));
    /// assert_eq!(tx.ack(0, now), Ok(0));
    /// assert_eq!(tx.ack(3, now), Err(RetransmitError::AckBeyondSent { acked: 3, next_seq: 2 }));
    /// # Ok::<(), RetransmitError>(())
    /// ```
    pub fn ack(&mut self, next_expected: u64, now: Instant) -> Result<usize, RetransmitError> {
        if next_expected > self.next_seq {
            return Err(RetransmitError::AckBeyondSent {
                acked: next_expected,
                next_seq: self.next_seq,
            });
        }
        if next_expected <= self.acked {
            return Ok(0);
        }
        self.acked = next_expected;
        let freed_to = next_expected.max(self.first_unacked);
        let freed = freed_to - self.first_unacked;
        self.release(self.first_unacked, freed_to);
        self.first_unacked = freed_to;
        self.stats.acked += freed;
        if freed > 0 {
            // Progress restarts the probe timer.
            self.probe_armed = Some(now);
        }
        Ok(usize::try_from(freed).unwrap_or(usize::MAX))
    }

    /// Gives up every held sequence below `seq` unacknowledged (e.g. to make room in a
    /// full buffer instead of blocking). Returns how many were given up; they are lost
    /// to the peer, which must be told with a SKIP (see
    /// [`pending_skip`](Self::pending_skip)).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// use netmesh_session::reliable::{RetransmitBuffer, RetransmitConfig};
    ///
    /// let now = Instant::now();
    /// let mut tx = RetransmitBuffer::new(RetransmitConfig::default());
    /// for seq in 0..3 {
    ///     tx.push(seq, &[], now)?;
    /// }
    /// assert_eq!(tx.discard_before(2), 2);
    /// assert_eq!(tx.pending_skip(), Some(2));
    /// tx.ack(2, now)?;
    /// assert_eq!(tx.pending_skip(), None);
    /// # Ok::<(), netmesh_session::reliable::RetransmitError>(())
    /// ```
    pub fn discard_before(&mut self, seq: u64) -> u64 {
        let to = seq.min(self.next_seq);
        if to <= self.first_unacked {
            return 0;
        }
        let discarded = to - self.first_unacked;
        self.release(self.first_unacked, to);
        self.first_unacked = to;
        self.stats.discarded += discarded;
        discarded
    }

    /// `Some(first_unacked)` while the peer has not acknowledged past sequences this
    /// side gave up: the SKIP to send (again, until an ACK reaches it).
    #[must_use]
    pub fn pending_skip(&self) -> Option<u64> {
        (self.acked < self.first_unacked).then_some(self.first_unacked)
    }

    /// Handles a NACK at `now`: applies its cumulative acknowledgement
    /// (`next_expected`), then returns the held sequences it names as missing, each
    /// with its events, for re-sealing and sending. A sequence resent within the
    /// retransmit interval is passed over (counted in [`RetransmitStats::paced`]).
    /// Only sequences the iterator yields count as resent, so consume it.
    ///
    /// Sequences the NACK names that were given up are not yielded; the iterator's
    /// [`skip_to`](Resend::skip_to) says then which SKIP to send, and
    /// [`poll_skip`](Self::poll_skip) hands it out at once.
    ///
    /// # Errors
    ///
    /// [`RetransmitError::AckBeyondSent`] when the NACK's `next_expected` exceeds
    /// [`next_seq`](Self::next_seq); nothing changes then.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use netmesh_session::reliable::{RetransmitBuffer, RetransmitConfig};
    /// use netmesh_wire::NackPayload;
    ///
    /// let now = Instant::now();
    /// let mut tx = RetransmitBuffer::new(RetransmitConfig::default());
    /// for seq in 0..10 {
    ///     tx.push(seq, &[], now)?;
    /// }
    /// tx.discard_before(3);
    /// let nack = NackPayload { next_expected: 2, missing_bitmap: 0b101 }; // 2, 3, 5
    /// let mut resend = tx.on_nack(&nack, now)?;
    /// assert_eq!(resend.by_ref().map(|(seq, _)| seq).collect::<Vec<_>>(), [3, 5]);
    /// assert_eq!(resend.skip_to(), Some(3), "2 was given up");
    /// let soon = now + Duration::from_millis(1);
    /// assert_eq!(tx.on_nack(&nack, soon)?.count(), 0, "paced");
    /// # Ok::<(), netmesh_session::reliable::RetransmitError>(())
    /// ```
    pub fn on_nack(
        &mut self,
        nack: &NackPayload,
        now: Instant,
    ) -> Result<Resend<'_>, RetransmitError> {
        self.ack(nack.next_expected, now)?;
        Ok(self.resend(Sequences::Nack(nack.missing_sequences()), now))
    }

    /// The tail-loss probe: when the buffer holds packets and no ACK progress happened
    /// for the probe timeout, resends the oldest held packet (the receiver cannot
    /// deliver past it) and the newest (if the tail was lost, its arrival reveals the
    /// gap to the receiver, which then NACKs everything missing), and restarts the
    /// timer. Yields nothing otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// use netmesh_session::reliable::{RetransmitBuffer, RetransmitConfig};
    ///
    /// let t0 = Instant::now();
    /// let mut tx = RetransmitBuffer::new(RetransmitConfig::default());
    /// for seq in 0..5 {
    ///     tx.push(seq, &[], t0)?;
    /// }
    /// assert_eq!(tx.poll_probe(t0).count(), 0);
    /// let later = tx.probe_deadline().unwrap();
    /// assert_eq!(tx.poll_probe(later).map(|(seq, _)| seq).collect::<Vec<_>>(), [0, 4]);
    /// # Ok::<(), netmesh_session::reliable::RetransmitError>(())
    /// ```
    pub fn poll_probe(&mut self, now: Instant) -> Resend<'_> {
        if self.is_empty() {
            self.probe_armed = None;
            return self.resend(Sequences::Pair([None, None]), now);
        }
        let Some(armed) = self.probe_armed else {
            self.probe_armed = Some(now);
            return self.resend(Sequences::Pair([None, None]), now);
        };
        if now.saturating_duration_since(armed) < self.config.probe_timeout {
            return self.resend(Sequences::Pair([None, None]), now);
        }
        self.probe_armed = Some(now);
        let oldest = self.first_unacked;
        let newest = self.next_seq - 1;
        let pair = [Some(oldest), (newest != oldest).then_some(newest)];
        self.resend(Sequences::Pair(pair), now)
    }

    /// When [`poll_probe`](Self::poll_probe) next resends, for the caller's timer
    /// (`None` when the buffer is empty or the timer is not started).
    #[must_use]
    pub fn probe_deadline(&self) -> Option<Instant> {
        if self.is_empty() {
            return None;
        }
        self.probe_armed?.checked_add(self.config.probe_timeout)
    }

    /// The SKIP to send now, if one is pending ([`pending_skip`](Self::pending_skip))
    /// and none was sent within the retransmit interval (a SKIP can be lost too);
    /// records that it was sent. A NACK naming a given-up sequence makes it due at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use netmesh_session::reliable::{RetransmitBuffer, RetransmitConfig};
    ///
    /// let t0 = Instant::now();
    /// let mut tx = RetransmitBuffer::new(RetransmitConfig::default());
    /// tx.push(0, &[], t0)?;
    /// tx.push(1, &[], t0)?;
    /// assert_eq!(tx.poll_skip(t0), None);
    /// tx.discard_before(1);
    /// assert_eq!(tx.poll_skip(t0), Some(1));
    /// assert_eq!(tx.poll_skip(t0), None, "paced");
    /// assert_eq!(tx.poll_skip(t0 + Duration::from_millis(20)), Some(1));
    /// tx.ack(1, t0)?;
    /// assert_eq!(tx.poll_skip(t0 + Duration::from_millis(40)), None);
    /// # Ok::<(), netmesh_session::reliable::RetransmitError>(())
    /// ```
    pub fn poll_skip(&mut self, now: Instant) -> Option<u64> {
        let first = self.pending_skip()?;
        if !due(self.last_skip, self.config.retransmit_interval, now) {
            return None;
        }
        self.last_skip = Some(now);
        Some(first)
    }

    /// The earliest time [`poll_probe`](Self::poll_probe) or
    /// [`poll_skip`](Self::poll_skip) has something to send, for the caller's timer.
    /// `None`: nothing waits on time, or something is due now.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let skip = self
            .pending_skip()
            .and(self.last_skip)
            .and_then(|t| t.checked_add(self.config.retransmit_interval));
        match (self.probe_deadline(), skip) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn resend(&mut self, sequences: Sequences, now: Instant) -> Resend<'_> {
        Resend {
            sequences,
            first_unacked: self.first_unacked,
            acked: self.acked,
            next_seq: self.next_seq,
            now,
            interval: self.config.retransmit_interval,
            slots: &self.slots,
            last_sent: &mut self.last_sent,
            stats: &mut self.stats,
            last_skip: &mut self.last_skip,
            skip: false,
        }
    }
}

/// Which sequences a [`Resend`] considers.
#[derive(Debug)]
enum Sequences {
    Nack(MissingSequences),
    Pair([Option<u64>; 2]),
}

impl Iterator for Sequences {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        match self {
            Self::Nack(seqs) => seqs.next(),
            Self::Pair(pair) => pair.iter_mut().find_map(Option::take),
        }
    }
}

/// Packets to retransmit, from [`RetransmitBuffer::on_nack`] or
/// [`RetransmitBuffer::poll_probe`]: each item is a sequence and its events, to be
/// re-sealed under a fresh counter with the same sequence and sent. Yielding an item
/// records it as resent now.
#[derive(Debug)]
#[must_use = "only the packets taken from the iterator are recorded as resent"]
pub struct Resend<'a> {
    sequences: Sequences,
    first_unacked: u64,
    acked: u64,
    next_seq: u64,
    now: Instant,
    interval: Duration,
    slots: &'a SeqRing<Slot>,
    last_sent: &'a mut SeqRing<Option<Instant>>,
    stats: &'a mut RetransmitStats,
    last_skip: &'a mut Option<Instant>,
    skip: bool,
}

impl Resend<'_> {
    /// After the iterator is consumed: `Some(first_unacked)` when the NACK asked for
    /// sequences this side gave up, i.e. the SKIP to send so the receiver stops
    /// waiting for them.
    #[must_use]
    pub fn skip_to(&self) -> Option<u64> {
        self.skip.then_some(self.first_unacked)
    }
}

impl<'a> Iterator for Resend<'a> {
    type Item = (u64, HeldEvents<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        for seq in self.sequences.by_ref() {
            if seq < self.acked {
                // Confirmed received (a stale NACK): nothing to do.
                continue;
            }
            if seq < self.first_unacked {
                self.stats.nacked_lost += 1;
                self.skip = true;
                // The peer is still waiting for given-up sequences: the next
                // `poll_skip` answers at once.
                *self.last_skip = None;
                continue;
            }
            if seq >= self.next_seq {
                self.stats.nacked_unsent += 1;
                continue;
            }
            let Some(last_sent) = self.last_sent.get_mut(seq) else {
                continue;
            };
            if !due(*last_sent, self.interval, self.now) {
                self.stats.paced += 1;
                continue;
            }
            let Some(slot) = self.slots.get(seq) else {
                continue;
            };
            *last_sent = Some(self.now);
            self.stats.retransmitted += 1;
            return Some((seq, slot.held()));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use bytes::Bytes;

    use super::{RetransmitBuffer, RetransmitConfig};

    #[test]
    fn no_events_made_in_place_take_no_room_whatever_their_length() {
        // The session's own size check accepts this packet; the buffer must too.
        let mut tx = RetransmitBuffer::new(RetransmitConfig::default());
        tx.push_with(0, 0, usize::MAX, |_, _| unreachable!(), Instant::now())
            .unwrap();
        assert_eq!(tx.get(0).unwrap().len(), 0);
    }

    #[test]
    fn events_are_copied_whatever_their_container() {
        let now = Instant::now();
        let mut tx = RetransmitBuffer::new(RetransmitConfig::default());
        let shared = [Bytes::from(vec![1u8; 40]), Bytes::from(vec![2u8; 3])];
        tx.push_events(0, &shared, now).unwrap();
        assert_eq!(tx.get(0).unwrap().to_vec(), shared);

        let mut buffer = [7u8; 10];
        let slices: Vec<&[u8]> = vec![&buffer[..4], &buffer[4..4], &buffer[4..]];
        tx.push_events(1, &slices, now).unwrap();
        // Copies: the caller's buffer may change at once.
        buffer.fill(0);
        let held = tx.get(1).unwrap();
        assert_eq!(held.len(), 3);
        assert_eq!(held.iter().map(<[u8]>::len).collect::<Vec<_>>(), [4, 0, 6]);
        assert!(held.iter().all(|event| event.iter().all(|&b| b == 7)));
        assert_eq!(held.frames().len(), 3 * 4 + 10);
    }

    #[test]
    fn a_retracted_push_leaves_the_buffer_as_before() {
        let now = Instant::now();
        let mut tx = RetransmitBuffer::new(RetransmitConfig::default());
        tx.retract_last();
        assert_eq!(
            (tx.next_seq(), tx.stats().pushed),
            (0, 0),
            "nothing to take back"
        );
        tx.push_events(0, &[&b"kept"[..]], now).unwrap();
        let armed = tx.probe_deadline();
        tx.push_events(1, &[&b"taken back"[..]], now).unwrap();
        tx.retract_last();
        assert_eq!((tx.next_seq(), tx.len(), tx.stats().pushed), (1, 1, 1));
        assert!(tx.get(1).is_none());
        assert_eq!(tx.probe_deadline(), armed);
        tx.retract_last();
        assert!(tx.is_empty());
        assert_eq!(tx.probe_deadline(), None, "no probe for an empty buffer");
        tx.push_events(0, &[&b"again"[..]], now).unwrap();
        assert!(tx.get(0).unwrap().iter().eq([&b"again"[..]]));
    }

    #[test]
    fn released_slots_keep_at_most_the_retained_bytes() {
        let mut tx = RetransmitBuffer::new(RetransmitConfig {
            retained_bytes_per_slot: 64,
            ..RetransmitConfig::default()
        });
        let now = Instant::now();
        let many = vec![Bytes::from_static(b"e"); 500];
        tx.push(0, &many, now).unwrap();
        tx.push(1, &many[..4], now).unwrap();
        assert!(tx.slots.get(0).unwrap().frames.capacity() >= 500 * 5);
        tx.ack(2, now).unwrap();
        assert_eq!(tx.slots.get(0).unwrap().frames.capacity(), 0);
        assert!(
            tx.slots.get(1).unwrap().frames.capacity() >= 4 * 5,
            "small slots keep theirs"
        );
        assert!(tx.get(0).is_none() && tx.slots.get(1).unwrap().frames.is_empty());
    }
}
