//! The receive path: handshake datagrams, opening, and what each packet means.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use netmesh_pool::{OpenError, OpenedPacket};
use netmesh_wire::{NackPayload, NetHeader, WireError, HEADER_SIZE, MAGIC, TAG_SIZE};

use super::control::{words, Credit};
use super::gen::{RxGen, RxKeys, TxGen};
use super::streams::{lock, ReliableRx, RxStream};
use super::{
    Delivery, Event, Inner, PeerKind, Received, RecvError, ACK_SUBPROTOCOL, CLOSED, CONTROL_STREAM,
    CREDIT_SUBPROTOCOL, ESTABLISHED, GRANT_SUBPROTOCOL, HANDSHAKING, NETMESH_HELLO_SUBPROTOCOL,
    PEER_NETMESH, PEER_NET_MESH, PEER_UNKNOWN, SKIP_SUBPROTOCOL,
};
use crate::reliable::{Outcome, ReceiverConfig, ReliableReceiver, TrackOutcome};
use crate::{HandshakeError, Role};

/// The datagrams a net-mesh `MeshNode` sends besides its packets (pingwaves): this
/// long, and not starting with the packet magic.
const MESH_AUX_LEN: usize = 72;

/// Header byte 3 (flags) bit of a handshake packet.
const HANDSHAKE_FLAG: u8 = 0x10;

impl Inner {
    /// Counts a refused datagram by kind; returns the error.
    #[cold]
    pub(super) fn rejected(&self, error: RecvError) -> RecvError {
        let c = &self.counters;
        let counter = match error {
            RecvError::NotNetmesh(_) => &c.rejected_not_netmesh,
            RecvError::Malformed(_) | RecvError::MalformedControl { .. } => &c.rejected_malformed,
            RecvError::WrongSession(_) => &c.rejected_wrong_session,
            RecvError::AuthFailed => &c.rejected_auth,
            RecvError::Replayed(_) => &c.rejected_replay,
            RecvError::Handshake(_) | RecvError::UnexpectedHandshake | RecvError::NewHandshake => {
                &c.rejected_handshake
            }
            RecvError::NotEstablished | RecvError::Closed => &c.rejected_state,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        error
    }

    /// Everything about a datagram that needs no key: `Ok(Some(_))` when it was not a
    /// data packet (answered here), `Ok(None)` when it is to be opened.
    #[inline]
    pub(super) fn preflight(
        &self,
        bytes: &[u8],
        now: Instant,
    ) -> Result<Option<Received<'_>>, RecvError> {
        // The common case, a data packet of an established session, in a few compares.
        let magic = MAGIC.to_le_bytes();
        if bytes.get(..2) == Some(&magic[..])
            && bytes.get(3).is_some_and(|f| f & HANDSHAKE_FLAG == 0)
            && self.state.load(Ordering::Acquire) == ESTABLISHED
        {
            return Ok(None);
        }
        self.preflight_other(bytes, now)
    }

    #[inline(never)]
    fn preflight_other(
        &self,
        bytes: &[u8],
        now: Instant,
    ) -> Result<Option<Received<'_>>, RecvError> {
        let magic = MAGIC.to_le_bytes();
        let is_packet = bytes.get(..2) == Some(&magic[..]);
        if !is_packet && bytes.len() == MESH_AUX_LEN {
            self.counters.ignored.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(Received::Ignored));
        }
        if is_packet && bytes.get(3).is_some_and(|f| f & HANDSHAKE_FLAG != 0) {
            return self.receive_handshake(bytes, now).map(Some);
        }
        match self.state.load(Ordering::Acquire) {
            HANDSHAKING => {
                // Say what is wrong with garbage before saying it is early.
                NetHeader::parse(bytes).map_err(wire_error)?;
                Err(RecvError::NotEstablished)
            }
            CLOSED => Err(RecvError::Closed),
            _ => Ok(None),
        }
    }

    /// Records a run of counters `lo..hi` for the credit watermark, sending CREDIT when
    /// it moved far.
    pub(super) fn admit_counters(&self, gen: &RxGen, lo: u64, hi: u64, now: Instant) {
        let below = gen.watermark.admit_range(lo, hi, now);
        if !gen.traffic.load(Ordering::Relaxed) {
            gen.traffic.store(true, Ordering::Relaxed);
        }
        // Half a window (PROTOCOL.md): the peer still holds the other half while this
        // CREDIT travels.
        let step = (self.config.credit_window / 2).max(1);
        if below >= gen.credit_sent.load(Ordering::Relaxed) + step {
            self.send_credit(gen, now);
        }
    }

    /// CREDIT for `gen` (netmesh peers only).
    pub(super) fn send_credit(&self, gen: &RxGen, now: Instant) {
        if !self.peer_is_netmesh() {
            return;
        }
        let below = gen.watermark.below();
        gen.credit_sent.fetch_max(below, Ordering::Relaxed);
        gen.credit_sent_at
            .store(self.nanos(now).max(1), Ordering::Relaxed);
        gen.traffic.store(false, Ordering::Relaxed);
        let event = self.control_event(&[below, self.config.credit_window, gen.session_id]);
        self.send_control(CREDIT_SUBPROTOCOL, &[event]);
    }

    pub(super) fn dispatch(
        &self,
        packet: OpenedPacket,
        now: Instant,
    ) -> Result<Received<'_>, RecvError> {
        let header = *packet.header();
        if header.flags.is_heartbeat() {
            let marked = header.subprotocol_id == NETMESH_HELLO_SUBPROTOCOL;
            self.counters
                .heartbeats_received
                .fetch_add(1, Ordering::Relaxed);
            self.on_heartbeat(marked, now);
            return Ok(Received::Heartbeat { marked });
        }
        if header.stream_id == CONTROL_STREAM {
            let kind = match header.subprotocol_id {
                CREDIT_SUBPROTOCOL => Some(Received::Credit),
                ACK_SUBPROTOCOL => Some(Received::Ack),
                SKIP_SUBPROTOCOL => Some(Received::Skip),
                GRANT_SUBPROTOCOL => Some(Received::Grant),
                _ => None,
            };
            if let Some(kind) = kind {
                self.counters
                    .control_received
                    .fetch_add(1, Ordering::Relaxed);
                self.on_control(&header, &packet, now)?;
                return Ok(kind);
            }
        }
        if header.flags.is_nack() && header.subprotocol_id == 0 && !self.peer_is_net_mesh() {
            self.counters
                .control_received
                .fetch_add(1, Ordering::Relaxed);
            self.on_nack(&header, &packet, now)?;
            return Ok(Received::Nack);
        }
        if header.flags.is_reliable() && header.subprotocol_id == 0 && !self.peer_is_net_mesh() {
            return Ok(self.receive_reliable(header.stream_id, header.sequence, packet, now));
        }
        self.receive_unreliable(&header, packet)
    }

    fn receive_unreliable(
        &self,
        header: &NetHeader,
        packet: OpenedPacket,
    ) -> Result<Received<'_>, RecvError> {
        let len = HEADER_SIZE + packet.payload().len() + TAG_SIZE;
        let (stream_id, sequence) = (header.stream_id, header.sequence);
        if self.track_unreliable(stream_id, sequence, header.event_count, len) {
            return Ok(Received::Duplicate {
                stream_id,
                sequence,
            });
        }
        Ok(Received::Packet(packet))
    }

    /// Counts one unreliable packet on its stream; returns whether it was a duplicate.
    fn track_unreliable(&self, stream_id: u64, sequence: u64, events: u16, len: usize) -> bool {
        let Some(stream) = self.rx_streams.get_or_insert(stream_id, RxStream::new) else {
            self.count_untracked(1, u64::from(events), len as u64);
            return false;
        };
        let mut ff = lock(&stream.tracker);
        ff.traffic.packet(events, len);
        if ff.tracker.on_packet(sequence) == TrackOutcome::Duplicate {
            self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        ff.traffic.events_delivered += u64::from(events);
        false
    }

    /// Counts packets delivered on a stream beyond `max_streams`, which has no
    /// per-stream accounting.
    pub(super) fn count_untracked(&self, packets: u64, events: u64, bytes: u64) {
        let c = &self.counters;
        c.packets_received.fetch_add(packets, Ordering::Relaxed);
        c.events_received.fetch_add(events, Ordering::Relaxed);
        c.bytes_received.fetch_add(bytes, Ordering::Relaxed);
        c.events_delivered.fetch_add(events, Ordering::Relaxed);
    }

    fn reliable_rx<'a>(&self, stream: &'a RxStream) -> &'a Mutex<ReliableRx> {
        stream.reliable.get_or_init(|| {
            let mut receiver = ReliableReceiver::new(ReceiverConfig {
                capacity: self.config.reorder_buffer,
                nack_interval: self.config.nack_interval,
                ack_interval: self.config.ack_interval,
            });
            receiver.set_reorder_delay(self.config.nack_delay);
            Mutex::new(ReliableRx::new(receiver))
        })
    }

    fn receive_reliable(
        &self,
        stream_id: u64,
        sequence: u64,
        packet: OpenedPacket,
        now: Instant,
    ) -> Received<'_> {
        let Some(stream) = self.rx_streams.get_or_insert(stream_id, RxStream::new) else {
            // No room for another stream: dropped (a netmesh sender retransmits).
            self.counters
                .reorder_overflow
                .fetch_add(1, Ordering::Relaxed);
            return Received::Duplicate {
                stream_id,
                sequence,
            };
        };
        let mut rx = lock(self.reliable_rx(stream));
        let len = HEADER_SIZE + packet.payload().len() + TAG_SIZE;
        rx.traffic.packet(packet.header().event_count, len);
        let outcome = rx.on_packet(sequence, packet);
        self.count_outcome(outcome);
        self.acknowledge(stream_id, &mut rx, now);
        if outcome == Outcome::Duplicate {
            return Received::Duplicate {
                stream_id,
                sequence,
            };
        }
        Received::Delivered(Delivery::new(stream_id, rx, &self.deliveries_pending))
    }

    fn count_outcome(&self, outcome: Outcome) {
        let counter = match outcome {
            Outcome::Duplicate => &self.counters.duplicates,
            Outcome::Buffered => &self.counters.out_of_order,
            Outcome::BeyondWindow => &self.counters.reorder_overflow,
            Outcome::InOrder => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// NACK and ACK of a reliable stream, when due (netmesh peers only).
    pub(super) fn acknowledge(&self, stream_id: u64, rx: &mut ReliableRx, now: Instant) {
        if !self.peer_is_netmesh() {
            return;
        }
        if let Some(nack) = rx.receiver_mut().poll_nack(now) {
            self.send_nack(stream_id, nack);
        }
        if let Some(next_expected) = rx.receiver_mut().poll_ack(now) {
            let event = self.control_event(&[stream_id, next_expected]);
            self.send_control(ACK_SUBPROTOCOL, &[event]);
        }
    }

    fn on_heartbeat(&self, marked: bool, now: Instant) {
        if marked {
            self.set_peer_kind(PEER_NETMESH, now);
            // A blocked sender probes with heartbeats: answer with credit soon.
            if let Some(keys) = self.rx.load().as_ref() {
                keys.current.traffic.store(true, Ordering::Relaxed);
            }
        } else if self.peer_kind.load(Ordering::Acquire) == PEER_UNKNOWN {
            self.set_peer_kind(PEER_NET_MESH, now);
        }
    }

    /// Records what the peer is; acts on a change.
    pub(super) fn set_peer_kind(&self, kind: u8, now: Instant) {
        let before = self.peer_kind.swap(kind, Ordering::AcqRel);
        if before == kind {
            return;
        }
        let tx = self.tx.load_full();
        let pending = lock(&self.handshake).pending_tx.clone();
        if kind == PEER_NET_MESH {
            // No counter credit with net-mesh; what reliable streams buffered is
            // delivered as it stands.
            for gen in tx.iter().chain(pending.iter()) {
                gen.limit.store(u64::MAX, Ordering::Release);
            }
            self.flush_reliable_rx();
            self.push_event(Event::PeerKind(PeerKind::NetMesh));
        } else {
            if before == PEER_NET_MESH {
                // Credit applies again from the peer's next CREDIT.
                for gen in tx.iter().chain(pending.iter()) {
                    gen.limit.store(0, Ordering::Release);
                }
            }
            self.push_event(Event::PeerKind(PeerKind::Netmesh));
            // Let the peer know at once that we are netmesh too, and credit it.
            self.send_heartbeat(true);
            if let Some(keys) = self.rx.load().as_ref() {
                self.send_credit(&keys.current, now);
            }
        }
        self.bump_credit();
    }

    /// Gives up every gap of every reliable receive stream, making what they hold
    /// deliverable (the peer turned out not to retransmit).
    fn flush_reliable_rx(&self) {
        self.rx_streams.for_each(|_, stream| {
            if let Some(rx) = stream.reliable.get() {
                let mut rx = lock(rx);
                rx.receiver_mut().skip_gaps();
                if rx.ready() > 0 {
                    self.deliveries_pending.store(true, Ordering::Release);
                }
            }
        });
    }

    fn on_control(
        &self,
        header: &NetHeader,
        packet: &OpenedPacket,
        now: Instant,
    ) -> Result<(), RecvError> {
        let malformed = RecvError::MalformedControl {
            subprotocol: header.subprotocol_id,
        };
        for event in packet.events() {
            match header.subprotocol_id {
                CREDIT_SUBPROTOCOL => {
                    let credit = Credit::parse(&event).ok_or(malformed)?;
                    self.on_credit(credit);
                }
                ACK_SUBPROTOCOL => {
                    let [stream_id, next_expected] = words::<2>(&event).ok_or(malformed)?;
                    self.on_ack(stream_id, next_expected, now);
                }
                SKIP_SUBPROTOCOL => {
                    let [stream_id, first] = words::<2>(&event).ok_or(malformed)?;
                    self.on_skip(stream_id, first);
                }
                _ => {
                    let [stream_id, consumed] = words::<2>(&event).ok_or(malformed)?;
                    self.on_grant(stream_id, consumed, now);
                }
            }
        }
        Ok(())
    }

    fn on_credit(&self, credit: Credit) {
        let Some(tx) = self.tx.load_full() else {
            return;
        };
        if credit.session_id.is_some_and(|id| id != tx.session_id) {
            // About another key generation's counters.
            return;
        }
        if self.peer_is_net_mesh() {
            return;
        }
        let window = credit.window.min(super::MAX_CREDIT_WINDOW);
        if tx.raise_limit(credit.watermark.saturating_add(window)) {
            self.bump_credit();
        }
    }

    fn on_ack(&self, stream_id: u64, next_expected: u64, now: Instant) {
        let Some(stream) = self.tx_streams.get(stream_id) else {
            return;
        };
        let Some(buffer) = stream.reliable.get() else {
            return;
        };
        let mut buffer = lock(buffer);
        if let Ok(freed) = buffer.ack(next_expected, now) {
            if freed > 0 {
                stream
                    .ack_progress_at
                    .store(self.nanos(now).max(1), Ordering::Relaxed);
                drop(buffer);
                self.bump_credit();
            }
        }
    }

    fn on_skip(&self, stream_id: u64, first_available: u64) {
        let Some(stream) = self.rx_streams.get_or_insert(stream_id, RxStream::new) else {
            return;
        };
        let mut rx = lock(self.reliable_rx(stream));
        let first_sequence = rx.receiver().next_expected();
        let lost = rx.skip_to(first_available);
        let ready = rx.ready() > 0;
        drop(rx);
        if lost > 0 {
            self.counters
                .lost_reliable
                .fetch_add(lost, Ordering::Relaxed);
            self.push_event(Event::StreamLoss {
                stream_id,
                first_sequence,
                count: lost,
            });
        }
        if ready {
            self.deliveries_pending.store(true, Ordering::Release);
        }
    }

    fn on_grant(&self, stream_id: u64, consumed: u64, now: Instant) {
        let Some(stream) = self.tx_streams.get(stream_id) else {
            // Grants for streams we never sent on (or a net-mesh control stream).
            self.grants_seen.store(true, Ordering::Relaxed);
            return;
        };
        self.grants_seen.store(true, Ordering::Relaxed);
        let before = stream.window_consumed.fetch_max(consumed, Ordering::AcqRel);
        if consumed > before {
            stream
                .window_progress_at
                .store(self.nanos(now).max(1), Ordering::Relaxed);
            stream.window_blocked.store(false, Ordering::Relaxed);
            self.bump_credit();
        }
    }

    fn on_nack(
        &self,
        header: &NetHeader,
        packet: &OpenedPacket,
        now: Instant,
    ) -> Result<(), RecvError> {
        let malformed = RecvError::MalformedControl {
            subprotocol: header.subprotocol_id,
        };
        let stream_id = header.stream_id;
        for event in packet.events() {
            let nack = NackPayload::from_bytes(&event).ok_or(malformed)?;
            let Some(stream) = self.tx_streams.get(stream_id) else {
                continue;
            };
            let Some(buffer) = stream.reliable.get() else {
                continue;
            };
            let mut buffer = lock(buffer);
            let acked_before = buffer.acked();
            let Ok(mut resend) = buffer.on_nack(&nack, now) else {
                continue;
            };
            for (sequence, events) in resend.by_ref() {
                self.retransmit(stream_id, sequence, events);
            }
            let skip = resend.skip_to();
            drop(resend);
            if buffer.acked() > acked_before {
                stream
                    .ack_progress_at
                    .store(self.nanos(now).max(1), Ordering::Relaxed);
                self.bump_credit();
            }
            drop(buffer);
            if let Some(first_available) = skip {
                // A NACKed sequence was given up: tell the receiver to move on (the
                // loss was reported when it was given up).
                self.send_skip(stream_id, first_available);
            }
        }
        Ok(())
    }

    /// Tells the receiver to move on to `first_available` (it counts and reports what
    /// it never got).
    pub(super) fn send_skip(&self, stream_id: u64, first_available: u64) {
        let event = self.control_event(&[stream_id, first_available]);
        self.send_control(SKIP_SUBPROTOCOL, &[event]);
    }

    /// Reports sequences `from..to` of `stream_id` given up by this sender.
    pub(super) fn report_loss(&self, stream_id: u64, from: u64, to: u64) {
        let count = to.saturating_sub(from);
        if count > 0 {
            self.counters
                .lost_reliable
                .fetch_add(count, Ordering::Relaxed);
            self.push_event(Event::StreamLoss {
                stream_id,
                first_sequence: from,
                count,
            });
        }
    }

    pub(super) fn poll_delivery(&self) -> Option<Delivery<'_>> {
        if !self.deliveries_pending.swap(false, Ordering::AcqRel) {
            return None;
        }
        let mut found = None;
        self.rx_streams.for_each(|id, stream| {
            if found.is_none() && stream.reliable.get().is_some_and(|rx| lock(rx).ready() > 0) {
                found = Some(id);
            }
        });
        let id = found?;
        // More streams may be ready: look again next call.
        self.deliveries_pending.store(true, Ordering::Release);
        let rx = lock(self.rx_streams.get(id)?.reliable.get()?);
        Some(Delivery::new(id, rx, &self.deliveries_pending))
    }

    pub(super) fn poll_transmit(&self) -> Option<Bytes> {
        if self.state.load(Ordering::Acquire) == CLOSED {
            return None;
        }
        let mut outbox = lock(&self.outbox);
        if let Some(datagram) = outbox.ready.pop_front() {
            return Some(datagram);
        }
        if outbox.deferred.is_empty() {
            return None;
        }
        let tx = self.tx.load_full()?;
        let limit = tx.limit.load(Ordering::Acquire);
        let window = netmesh_cipher::REPLAY_WINDOW_SIZE;
        let mut index = 0;
        while index < outbox.deferred.len() {
            let (session_id, counter, _) = outbox.deferred[index];
            let stale = session_id != tx.session_id || counter.saturating_add(window) <= limit;
            if stale {
                outbox.deferred.remove(index);
                self.counters.stale_dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if counter < limit {
                return outbox.deferred.remove(index).map(|(_, _, packet)| packet);
            }
            index += 1;
        }
        None
    }

    // ---- handshake datagrams --------------------------------------------------------

    fn receive_handshake(&self, datagram: &[u8], now: Instant) -> Result<Received<'_>, RecvError> {
        match (self.role, self.state.load(Ordering::Acquire)) {
            (_, CLOSED) => Err(RecvError::Closed),
            (Role::Initiator, _) => self.initiator_msg2(datagram, now),
            (Role::Responder, _) => self.responder_msg1(datagram, now),
        }
    }

    fn initiator_msg2(&self, datagram: &[u8], now: Instant) -> Result<Received<'_>, RecvError> {
        let mut hs = lock(&self.handshake);
        let Some(initiator) = hs.initiator.as_mut() else {
            return Err(RecvError::UnexpectedHandshake);
        };
        let keys = initiator
            .read_msg2(datagram)
            .map_err(RecvError::Handshake)?;
        let rekey = hs.finish();
        drop(hs);
        if !rekey {
            self.establish(&keys, now);
            return Ok(Received::Handshake);
        }
        // Re-key complete: seal under the new key from now on; keep the old RX key for
        // packets in flight.
        let tx = Arc::new(TxGen::new(&keys, &self.config, self.initial_limit()));
        let rx = RxGen::new(&keys);
        self.install_rx(rx, false);
        self.tx.store(Some(tx));
        self.rekeyed(keys.session_id());
        Ok(Received::Handshake)
    }

    fn responder_msg1(&self, datagram: &[u8], now: Instant) -> Result<Received<'_>, RecvError> {
        let mut hs = lock(&self.handshake);
        if hs.last_msg1.as_deref() == Some(datagram) {
            // The initiator did not get msg2: the same answer again.
            let msg2 = hs.last_msg2.clone();
            drop(hs);
            if let Some(msg2) = msg2 {
                self.counters
                    .handshake_resent
                    .fetch_add(1, Ordering::Relaxed);
                self.queue(msg2);
            }
            // It is established: make sure it hears our marker.
            self.send_heartbeat(true);
            return Ok(Received::Handshake);
        }
        let header = NetHeader::parse(datagram)
            .map_err(|e| RecvError::Handshake(HandshakeError::MalformedHeader(e)))?;
        let current = self.tx.load().as_ref().map(|tx| tx.session_id);
        if header.session_id == 0
            || Some(header.session_id) != current
            || self.state.load(Ordering::Acquire) != ESTABLISHED
        {
            return Err(RecvError::NewHandshake);
        }
        // A re-key of this session: Noise sees the message with the marker zeroed.
        let Some((responder, prologue)) = hs.responder.clone() else {
            return Err(RecvError::UnexpectedHandshake);
        };
        let mut unmarked = [0u8; crate::HANDSHAKE_DATAGRAM_LEN];
        if datagram.len() != unmarked.len() {
            return Err(RecvError::Handshake(HandshakeError::WrongLength {
                expected: unmarked.len(),
                actual: datagram.len(),
            }));
        }
        unmarked.copy_from_slice(datagram);
        unmarked[24..32].fill(0);
        let (keys, msg2) = responder
            .respond(&unmarked, &prologue)
            .map_err(RecvError::Handshake)?;
        hs.last_msg1 = Some(Bytes::copy_from_slice(datagram));
        hs.last_msg2 = Some(msg2.clone());
        hs.pending_tx = Some(Arc::new(TxGen::new(
            &keys,
            &self.config,
            self.initial_limit(),
        )));
        drop(hs);
        self.install_rx(RxGen::new(&keys), true);
        self.queue(msg2);
        let _ = now;
        Ok(Received::Handshake)
    }

    /// Installs a new RX generation: as current (the old current kept as previous), or
    /// as pending (a responder's re-key not yet used by the initiator).
    fn install_rx(&self, gen: Arc<RxGen>, pending: bool) {
        let Some(keys) = self.rx.load_full() else {
            return;
        };
        let next = if pending {
            RxKeys {
                current: Arc::clone(&keys.current),
                previous: keys.previous.clone(),
                pending: Some(gen),
                retired_gap_skips: keys.retired_gap_skips,
            }
        } else {
            let retired = keys.previous.as_ref().map_or(0, |g| g.watermark.skipped());
            RxKeys {
                current: gen,
                previous: Some(Arc::clone(&keys.current)),
                pending: None,
                retired_gap_skips: keys.retired_gap_skips + retired,
            }
        };
        self.rx.store(Some(Arc::new(next)));
    }

    /// The initiator used the pending re-key: switch both directions to it.
    pub(super) fn promote_pending(&self, _now: Instant) {
        let Some(tx) = lock(&self.handshake).pending_tx.take() else {
            return;
        };
        let Some(keys) = self.rx.load_full() else {
            return;
        };
        let Some(pending) = keys.pending.clone() else {
            return;
        };
        let session_id = tx.session_id;
        self.install_rx(pending, false);
        self.tx.store(Some(tx));
        self.rekeyed(session_id);
    }

    fn rekeyed(&self, session_id: u64) {
        // Deferred packets of the old key are dropped by poll_transmit; reliable ones
        // are recovered by NACK.
        self.counters.rekeys.fetch_add(1, Ordering::Relaxed);
        self.push_event(Event::Rekeyed { session_id });
        self.send_heartbeat(true);
        self.bump_credit();
    }
}

/// A header error as the kind of refusal it is.
fn wire_error(error: WireError) -> RecvError {
    match error {
        WireError::TooShort { .. } | WireError::BadMagic { .. } => RecvError::NotNetmesh(error),
        other => RecvError::Malformed(OpenError::MalformedHeader(other)),
    }
}

const _: () = assert!(HEADER_SIZE >= 32);
