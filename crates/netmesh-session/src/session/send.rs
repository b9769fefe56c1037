//! The send path: event packets within credit and windows, control packets,
//! retransmissions, heartbeats, and the start of a re-key.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use bytes::Bytes;
use netmesh_pool::{BuildError, PacketBuilder};
use netmesh_wire::{
    AsEvent, FrameCodec, NetHeader, PacketFlags, HEADER_SIZE, MAX_EVENTS_PER_PACKET,
    MAX_PAYLOAD_SIZE, TAG_SIZE,
};

use super::gen::TxGen;
use super::streams::{lock, TxStream};
use super::{
    Blocked, Event, Inner, SendError, Sent, CONTROL_STREAM, ESTABLISHED, GRANT_WINDOW, HANDSHAKING,
    NETMESH_HELLO_SUBPROTOCOL, QUEUE_LIMIT,
};
use crate::reliable::{HeldEvents, RetransmitBuffer, RetransmitConfig};

/// The nonce counter of a packet this session built (`u64::MAX` if it were too short).
fn counter_of(packet: &[u8]) -> u64 {
    NetHeader::peek_nonce_counter(packet).unwrap_or(u64::MAX)
}

fn build_error(error: BuildError) -> SendError {
    match error {
        BuildError::CounterExhausted => SendError::CounterExhausted,
        other => SendError::Build(other),
    }
}

/// The events of one packet: given as slices, or made in place by the caller.
trait Source {
    /// How many events.
    fn count(&self) -> usize;
    /// Builds the packet from them.
    fn build(
        &mut self,
        builder: &mut PacketBuilder,
        stream_id: u64,
        sequence: u64,
        flags: PacketFlags,
    ) -> Result<Bytes, BuildError>;
    /// Keeps their frames in a reliable stream's buffer as packet `sequence`.
    fn hold(
        &mut self,
        buffer: &mut RetransmitBuffer,
        sequence: u64,
        now: Instant,
    ) -> Result<(), crate::reliable::RetransmitError>;
}

impl<E: AsEvent> Source for &[E] {
    #[inline]
    fn count(&self) -> usize {
        self.len()
    }

    #[inline]
    fn build(
        &mut self,
        builder: &mut PacketBuilder,
        stream_id: u64,
        sequence: u64,
        flags: PacketFlags,
    ) -> Result<Bytes, BuildError> {
        builder.try_build_events(stream_id, sequence, self, flags, 0)
    }

    fn hold(
        &mut self,
        buffer: &mut RetransmitBuffer,
        sequence: u64,
        now: Instant,
    ) -> Result<(), crate::reliable::RetransmitError> {
        buffer.push_events(sequence, self, now)
    }
}

/// `count` events of `event_len` bytes, each written in place by `fill(index, event)`.
struct Made<F> {
    count: usize,
    event_len: usize,
    fill: F,
}

impl<F: FnMut(usize, &mut [u8])> Source for Made<F> {
    #[inline]
    fn count(&self) -> usize {
        self.count
    }

    #[inline]
    fn build(
        &mut self,
        builder: &mut PacketBuilder,
        stream_id: u64,
        sequence: u64,
        flags: PacketFlags,
    ) -> Result<Bytes, BuildError> {
        let fill = &mut self.fill;
        builder.try_build_with(
            stream_id,
            sequence,
            self.count,
            self.event_len,
            flags,
            0,
            |i, event| fill(i, event),
        )
    }

    fn hold(
        &mut self,
        buffer: &mut RetransmitBuffer,
        sequence: u64,
        now: Instant,
    ) -> Result<(), crate::reliable::RetransmitError> {
        let fill = &mut self.fill;
        buffer.push_with(
            sequence,
            self.count,
            self.event_len,
            |i, event| fill(i, event),
            now,
        )
    }
}

/// Checks that `count` events whose frames take `frames_len()` bytes fit one packet,
/// before any sequence or counter is used; returns the packet's length on the wire.
fn check_frames(count: usize, frames_len: impl FnOnce() -> usize) -> Result<usize, SendError> {
    if count > MAX_EVENTS_PER_PACKET {
        return Err(SendError::Build(BuildError::TooManyEvents {
            count,
            max: MAX_EVENTS_PER_PACKET,
        }));
    }
    let len = frames_len();
    if len > MAX_PAYLOAD_SIZE {
        return Err(SendError::Build(BuildError::PayloadTooLarge {
            len,
            max: MAX_PAYLOAD_SIZE,
        }));
    }
    Ok(HEADER_SIZE + len + TAG_SIZE)
}

/// [`check_frames`] for `events`.
fn check_fits<E: AsRef<[u8]>>(events: &[E]) -> Result<usize, SendError> {
    check_frames(events.len(), || FrameCodec::frames_size(events))
}

/// [`check_frames`] for `count` events of `event_len` bytes.
fn check_made(count: usize, event_len: usize) -> Result<usize, SendError> {
    // Too many bytes to count is too many for a packet.
    check_frames(count, || {
        FrameCodec::uniform_frames_size(count, event_len).unwrap_or(usize::MAX)
    })
}

impl Inner {
    /// Whether the session may send.
    #[inline]
    fn check_sending(&self) -> Result<(), SendError> {
        match self.state.load(Ordering::Acquire) {
            ESTABLISHED => Ok(()),
            HANDSHAKING => Err(SendError::NotEstablished),
            _ => Err(SendError::Closed),
        }
    }

    fn tx_stream(&self, stream_id: u64) -> Result<&TxStream, SendError> {
        if stream_id == CONTROL_STREAM {
            return Err(SendError::ReservedStream);
        }
        self.tx_streams
            .get_or_insert(stream_id, TxStream::new)
            .ok_or(SendError::TooManyStreams)
    }

    fn blocked(&self, tx: &TxGen, why: Blocked) -> SendError {
        if why == Blocked::Credit {
            let now = self.now.load(Ordering::Relaxed).max(1);
            let _ = tx
                .blocked_since
                .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        }
        self.counters.blocked.fetch_add(1, Ordering::Relaxed);
        SendError::Blocked(why)
    }

    pub(super) fn send<E: AsEvent>(
        &self,
        stream_id: u64,
        events: &[E],
        flags: PacketFlags,
    ) -> Result<Sent, SendError> {
        let len = check_fits(events)?;
        self.send_source(stream_id, events, flags, len)
    }

    pub(super) fn send_with(
        &self,
        stream_id: u64,
        (count, event_len): (usize, usize),
        flags: PacketFlags,
        fill: impl FnMut(usize, &mut [u8]),
    ) -> Result<Sent, SendError> {
        let len = check_made(count, event_len)?;
        let made = Made {
            count,
            event_len,
            fill,
        };
        self.send_source(stream_id, made, flags, len)
    }

    /// Sends one packet of `events`, `len` bytes on the wire.
    #[inline]
    fn send_source(
        &self,
        stream_id: u64,
        events: impl Source,
        flags: PacketFlags,
        len: usize,
    ) -> Result<Sent, SendError> {
        self.check_sending()?;
        let stream = self.tx_stream(stream_id)?;
        self.tx.with_local(|tx| {
            let (tx, builder) = tx.ok_or(SendError::NotEstablished)?;
            if tx.is_blocked() {
                return Err(self.blocked(tx, Blocked::Credit));
            }
            let builder = builder.get_or_insert_with(|| tx.pool.acquire());
            self.send_one(tx, stream, stream_id, events, flags, len, builder)
        })
    }

    pub(super) fn send_batch<E: AsEvent>(
        &self,
        stream_id: u64,
        events: &[E],
        flags: PacketFlags,
        out: &mut impl Extend<Sent>,
    ) -> Result<usize, SendError> {
        self.check_sending()?;
        let stream = self.tx_stream(stream_id)?;
        PacketBuilder::check_events(events).map_err(SendError::Build)?;
        self.tx.with_local(|tx| {
            let (tx, builder) = tx.ok_or(SendError::NotEstablished)?;
            let builder = builder.get_or_insert_with(|| tx.pool.acquire());
            self.send_batch_with(tx, builder, stream, stream_id, events, flags, out)
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn send_batch_with<E: AsEvent>(
        &self,
        tx: &TxGen,
        builder: &mut PacketBuilder,
        stream: &TxStream,
        stream_id: u64,
        events: &[E],
        flags: PacketFlags,
        out: &mut impl Extend<Sent>,
    ) -> Result<usize, SendError> {
        let mut taken = 0;
        for batch in netmesh_wire::batches_of(events) {
            let Ok(batch) = batch else { break };
            let result = if tx.is_blocked() {
                Err(self.blocked(tx, Blocked::Credit))
            } else {
                check_fits(batch).and_then(|len| {
                    self.send_one(tx, stream, stream_id, batch, flags, len, builder)
                })
            };
            match result {
                Ok(sent) => {
                    let deferred = sent.datagram.is_none();
                    out.extend(std::iter::once(sent));
                    taken += batch.len();
                    if deferred {
                        break;
                    }
                }
                Err(error) if taken == 0 => return Err(error),
                Err(_) => break,
            }
        }
        Ok(taken)
    }

    pub(super) fn can_send(&self, stream_id: u64) -> bool {
        if self.check_sending().is_err() || self.tx.with(|tx| tx.is_none_or(TxGen::is_blocked)) {
            return false;
        }
        let Some(stream) = self.tx_streams.get(stream_id) else {
            return stream_id != CONTROL_STREAM;
        };
        if let Some(buffer) = stream.reliable.get() {
            if lock(buffer).is_full() && !self.peer_is_net_mesh() {
                return false;
            }
        }
        self.window_open(stream, HEADER_SIZE + TAG_SIZE)
    }

    /// Whether the stream's byte window (net-mesh grants) has room for `len` more bytes.
    fn window_open(&self, stream: &TxStream, len: usize) -> bool {
        if !self.grants_seen.load(Ordering::Relaxed) {
            return true;
        }
        let sent = stream.window_sent.load(Ordering::Relaxed);
        let consumed = stream.window_consumed.load(Ordering::Relaxed);
        let len = u64::try_from(len).unwrap_or(u64::MAX);
        sent.saturating_add(len) <= consumed.saturating_add(GRANT_WINDOW)
    }

    /// Builds and records one packet whose events fit (`len` bytes on the wire).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn send_one(
        &self,
        tx: &TxGen,
        stream: &TxStream,
        stream_id: u64,
        mut events: impl Source,
        flags: PacketFlags,
        len: usize,
        builder: &mut PacketBuilder,
    ) -> Result<Sent, SendError> {
        if self.grants_seen.load(Ordering::Relaxed) {
            if !self.window_open(stream, len) {
                stream.window_blocked.store(true, Ordering::Relaxed);
                let now = self.now.load(Ordering::Relaxed).max(1);
                let _ = stream.window_progress_at.compare_exchange(
                    0,
                    now,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                return Err(self.blocked(tx, Blocked::StreamWindow));
            }
            stream
                .window_sent
                .fetch_add(u64::try_from(len).unwrap_or(u64::MAX), Ordering::Relaxed);
        }
        let count = events.count();
        let (packet, sequence) = if flags.is_reliable() {
            self.build_reliable(tx, stream, stream_id, &mut events, flags, builder)?
        } else {
            let sequence = stream.next_seq.fetch_add(1, Ordering::Relaxed);
            let packet = events
                .build(builder, stream_id, sequence, flags)
                .map_err(build_error)?;
            (packet, sequence)
        };
        // Statistics only: a load and a store, not a read-modify-write (8 ns a packet at
        // 1 x 64 B). Exact while a stream is sent from one thread at a time; threads
        // racing on one stream may undercount (SessionStats says so).
        let add = |counter: &AtomicU64, n: usize| {
            counter.store(
                counter.load(Ordering::Relaxed) + n as u64,
                Ordering::Relaxed,
            );
        };
        add(&stream.events, count);
        add(&stream.bytes, packet.len());
        Ok(self.release(tx, packet, sequence))
    }

    /// A reliable packet: its sequence from the stream's retransmit buffer, a copy of
    /// its events kept there until acknowledged.
    fn build_reliable(
        &self,
        tx: &TxGen,
        stream: &TxStream,
        stream_id: u64,
        events: &mut impl Source,
        flags: PacketFlags,
        builder: &mut PacketBuilder,
    ) -> Result<(Bytes, u64), SendError> {
        let buffer = stream
            .reliable
            .get_or_init(|| Mutex::new(RetransmitBuffer::new(self.retransmit_config())));
        let mut buffer = lock(buffer);
        let net_mesh = self.peer_is_net_mesh();
        if buffer.is_full() {
            if !net_mesh {
                return Err(self.blocked(tx, Blocked::RetransmitBuffer));
            }
            // A net-mesh peer never acknowledges: keep only the newest packets (useful
            // only if the peer later turns out to be netmesh).
            let oldest = buffer.first_unacked();
            buffer.discard_before(oldest + 1);
        }
        if net_mesh && !stream.unconfirmed_reported.swap(true, Ordering::Relaxed) {
            self.push_event(Event::DeliveryUnconfirmed { stream_id });
        }
        let sequence = buffer.next_seq();
        let now = self.now();
        let was_empty = buffer.is_empty();
        // The events are framed once, into the buffer, and the packet is built from
        // those frames with one copy.
        // Room was checked above and the sequence is the buffer's next: a refusal here
        // would be a sequence at its end, u64::MAX.
        let pushed = events.hold(&mut buffer, sequence, now).is_ok();
        let Some(held) = buffer.get(sequence).filter(|_| pushed) else {
            return Err(self.blocked(tx, Blocked::RetransmitBuffer));
        };
        let built =
            builder.try_build_framed(stream_id, sequence, held.frames(), held.len(), flags, 0);
        let packet = match built {
            Ok(packet) => packet,
            Err(error) => {
                buffer.retract_last();
                return Err(build_error(error));
            }
        };
        if was_empty {
            stream
                .ack_progress_at
                .store(self.nanos(now).max(1), Ordering::Relaxed);
        }
        Ok((packet, sequence))
    }

    pub(super) fn retransmit_config(&self) -> RetransmitConfig {
        RetransmitConfig {
            capacity: self.config.retransmit_buffer,
            retransmit_interval: self.config.nack_interval * 2,
            probe_timeout: self.config.tail_loss_timeout,
            ..RetransmitConfig::default()
        }
    }

    /// Hands a sealed data packet out, or defers it when its counter is beyond the
    /// credit; starts a re-key at the threshold.
    #[inline]
    fn release(&self, tx: &TxGen, packet: Bytes, sequence: u64) -> Sent {
        let counter = counter_of(&packet);
        tx.sealed(counter);
        if counter >= self.config.rekey_after {
            self.rekey_threshold(tx);
        }
        let limit = tx.limit.load(Ordering::Acquire);
        if counter < limit {
            return Sent {
                counter,
                sequence,
                datagram: Some(packet),
            };
        }
        // Another thread took counters first: keep the packet until credit covers it
        // (this thread is blocked until the limit passes its lease).
        self.counters.deferred.fetch_add(1, Ordering::Relaxed);
        let mut outbox = lock(&self.outbox);
        if outbox.deferred.len() < QUEUE_LIMIT {
            outbox.deferred.push_back((tx.session_id, counter, packet));
        } else {
            self.counters.stale_dropped.fetch_add(1, Ordering::Relaxed);
        }
        Sent {
            counter,
            sequence,
            datagram: None,
        }
    }

    /// A retransmission (or any data packet built off the send calls): queued now, or
    /// deferred beyond the credit.
    pub(super) fn queue_data(&self, tx: &TxGen, packet: Bytes) {
        let counter = counter_of(&packet);
        let limit = tx.limit.load(Ordering::Acquire);
        let mut outbox = lock(&self.outbox);
        if counter < limit {
            if outbox.ready.len() < QUEUE_LIMIT {
                outbox.ready.push_back(packet);
            }
        } else if outbox.deferred.len() < QUEUE_LIMIT {
            outbox.deferred.push_back((tx.session_id, counter, packet));
        }
    }

    /// Seals a control packet on the control stream (never gated by credit).
    // Out of line: the build it wraps is inlined wherever it is called, and control
    // packets are rare beside the receive path that sends them.
    #[inline(never)]
    pub(super) fn send_control(&self, subprotocol: u16, events: &[Bytes]) {
        let Some(tx) = self.tx.load_full() else {
            return;
        };
        // Control packets are sealed by timer and receive threads, a few at a time: a
        // counter each, not a lease whose unused rest the peer's watermark would wait on.
        let built = tx.pool.get().single_counter().try_build_subprotocol(
            CONTROL_STREAM,
            0,
            events,
            PacketFlags::NONE,
            subprotocol,
        );
        if let Ok(packet) = built {
            self.counters.control_sent.fetch_add(1, Ordering::Relaxed);
            self.queue(packet);
        }
    }

    /// A NACK of reliable stream `stream_id`.
    #[inline(never)]
    pub(super) fn send_nack(&self, stream_id: u64, nack: netmesh_wire::NackPayload) {
        let Some(tx) = self.tx.load_full() else {
            return;
        };
        let payload = self.control_event(&[nack.next_expected, nack.missing_bitmap]);
        let built =
            tx.pool
                .get()
                .single_counter()
                .try_build(stream_id, 0, &[payload], PacketFlags::NACK);
        if let Ok(packet) = built {
            self.counters.control_sent.fetch_add(1, Ordering::Relaxed);
            self.queue(packet);
        }
    }

    /// A heartbeat, `marked` with the netmesh capability marker.
    pub(super) fn send_heartbeat(&self, marked: bool) {
        let Some(tx) = self.tx.load_full() else {
            return;
        };
        let mut builder = tx.pool.get();
        builder.single_counter();
        let built = if marked {
            builder.try_build_subprotocol(
                0,
                0,
                &[],
                PacketFlags::HEARTBEAT,
                NETMESH_HELLO_SUBPROTOCOL,
            )
        } else {
            builder.try_build_heartbeat()
        };
        drop(builder);
        if let Ok(packet) = built {
            self.counters
                .heartbeats_sent
                .fetch_add(1, Ordering::Relaxed);
            self.queue(packet);
        }
    }

    /// Re-seals `events` of reliable `stream_id` at `sequence` under the current key.
    pub(super) fn retransmit(&self, stream_id: u64, sequence: u64, events: HeldEvents<'_>) {
        let Some(tx) = self.tx.load_full() else {
            return;
        };
        let built = tx.pool.get().single_counter().try_build_framed(
            stream_id,
            sequence,
            events.frames(),
            events.len(),
            PacketFlags::RELIABLE,
            0,
        );
        if let Ok(packet) = built {
            self.counters.retransmits.fetch_add(1, Ordering::Relaxed);
            self.queue_data(&tx, packet);
        }
    }

    /// The TX counter reached the re-key threshold on `tx`.
    #[cold]
    fn rekey_threshold(&self, tx: &TxGen) {
        if tx.rekey_due.swap(true, Ordering::AcqRel) {
            return;
        }
        let can_rekey = self.role == super::Role::Initiator
            && self.peer_is_netmesh()
            && lock(&self.handshake).peer.is_some();
        if can_rekey {
            self.start_rekey(self.now());
        } else {
            self.push_event(Event::NeedsRekey);
        }
    }

    /// Starts a re-key handshake: msg1 marked with the current session id in its header
    /// (netmesh peers only; the responder zeroes it before Noise sees the message).
    pub(super) fn start_rekey(&self, now: Instant) {
        let Some(session_id) = self.tx.load().as_ref().map(|tx| tx.session_id) else {
            return;
        };
        let mut hs = lock(&self.handshake);
        let Some((peer, psk, prologue)) = hs.peer.clone() else {
            return;
        };
        let Ok(initiator) = crate::Initiator::new(&peer, &psk, &prologue) else {
            drop(hs);
            self.push_event(Event::NeedsRekey);
            return;
        };
        let mut msg1 = initiator.msg1_datagram().to_vec();
        if let Some(field) = msg1.get_mut(24..32) {
            field.copy_from_slice(&session_id.to_le_bytes());
        }
        let msg1 = Bytes::from(msg1);
        hs.initiator = Some(initiator);
        hs.msg1 = Some(msg1.clone());
        hs.rekey = true;
        hs.retry_at = Some(now + self.config.handshake_retry);
        hs.deadline = Some(now + self.config.handshake_timeout);
        drop(hs);
        self.queue(msg1);
    }
}
