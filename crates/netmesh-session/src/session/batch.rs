//! [`ReceiveBatch`]: the receive path for datagrams that arrive together (one
//! `recvmmsg` or GRO read). What is per session rather than per packet — the key
//! generations, the clock, the credit watermark, the fire-and-forget stream counts — is
//! done once per batch.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::Guard;

use netmesh_pool::OpenedPacket;
use netmesh_wire::{NetHeader, HEADER_SIZE, TAG_SIZE};

use super::gen::{RxGen, RxKeys, Which};
use super::streams::{lock, RxStream};
use super::{Inner, Received, RecvError, CONTROL_STREAM};
use crate::IncomingDatagram;

/// Consecutive fire-and-forget packets of one stream, counted on it together.
#[derive(Clone, Copy)]
struct StreamRun {
    stream_id: u64,
    first: u64,
    end: u64,
    events: u64,
    bytes: u64,
}

/// What a fire-and-forget packet adds to its stream's counts.
#[derive(Clone, Copy)]
struct Plain {
    stream_id: u64,
    sequence: u64,
    events: u64,
    bytes: u64,
}

impl Plain {
    fn of(packet: &OpenedPacket) -> Self {
        let header = packet.header();
        Self {
            stream_id: header.stream_id,
            sequence: header.sequence,
            events: u64::from(header.event_count),
            bytes: (HEADER_SIZE + packet.payload().len() + TAG_SIZE) as u64,
        }
    }
}

/// A run of consecutive counters of one key generation, admitted to its credit
/// watermark together.
#[derive(Clone, Copy)]
struct Run {
    which: Which,
    lo: u64,
    hi: u64,
}

/// Datagrams received together, handled one by one with what is per session done once
/// per batch (from [`Session::receive_batch`](crate::Session::receive_batch)).
///
/// [`handle`](Self::handle) answers each datagram at once, exactly as
/// [`Session::handle_datagram`](crate::Session::handle_datagram) would. Until the batch
/// is dropped, some bookkeeping waits in it: the credit watermark learns the batch's
/// counters, and fire-and-forget streams count its packets (and their gaps as losses),
/// when the batch ends, so statistics and CREDIT lag by at most one batch. Keep a batch
/// to one receive call's datagrams.
///
/// A fire-and-forget packet is sealed once and the replay window opens each counter
/// once, so the batch delivers it before its stream has counted it; a stream sequence
/// seen twice under two counters (only a misbehaving peer does that) is counted as
/// a duplicate. Packets of reliable streams, control packets and anything from a
/// net-mesh peer are handled in full at once.
///
/// # Examples
///
/// ```
/// # use std::sync::Arc;
/// # use std::time::Instant;
/// # use bytes::Bytes;
/// # use netmesh_session::{Prologue, Psk, Received, Responder, Session, SessionConfig, StaticKeypair};
/// # use netmesh_wire::PacketFlags;
/// # let now = Instant::now();
/// # let server_key = StaticKeypair::generate()?;
/// # let psk = Psk::new([7; 32]);
/// # let responder = Arc::new(Responder::new(&server_key, &psk));
/// # let (client, msg1) = Session::connect(
/// #     SessionConfig::default(), &server_key.public_key(), &psk, &Prologue::Empty, now)?;
/// # let (server, msg2) = Session::accept(
/// #     SessionConfig::default(), responder, &msg1, &Prologue::Empty, now)?;
/// # client.handle_datagram(msg2, now)?;
/// let datagrams: Vec<Bytes> = (0..3)
///     .map(|i| client.send(1, &[Bytes::from(vec![i; 8])], PacketFlags::NONE))
///     .map(|sent| sent.map(|s| s.datagram.expect("within credit")))
///     .collect::<Result<_, _>>()?;
///
/// let mut batch = server.receive_batch(now);
/// let mut events = 0;
/// for datagram in datagrams {
///     if let Received::Packet(packet) = batch.handle(datagram)? {
///         events += packet.event_count();
///     }
/// }
/// drop(batch); // the streams count the batch's packets
/// assert_eq!((events, server.stats().events_received), (3, 3));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ReceiveBatch<'s> {
    inner: &'s Inner,
    now: Instant,
    now_nanos: u64,
    /// The RX generations and the version of `Inner::rx` they were loaded at (a guard:
    /// no reference count to move per batch).
    keys: Option<(u64, Guard<Option<Arc<RxKeys>>>)>,
    run: Option<Run>,
    stream_run: Option<StreamRun>,
    /// A datagram of the batch authenticated.
    heard: bool,
}

impl<'s> ReceiveBatch<'s> {
    pub(super) fn new(inner: &'s Inner, now: Instant) -> Self {
        let now_nanos = inner.note_now(now);
        Self {
            inner,
            now,
            now_nanos,
            keys: None,
            run: None,
            stream_run: None,
            heard: false,
        }
    }

    /// Opens one datagram of the batch and says what it was, as
    /// [`Session::handle_datagram`](crate::Session::handle_datagram) does.
    ///
    /// # Errors
    ///
    /// One [`RecvError`] per way to be wrong. A refused datagram changes no state (only
    /// the statistics count it).
    #[inline]
    pub fn handle(&mut self, datagram: impl IncomingDatagram) -> Result<Received<'s>, RecvError> {
        match self.receive(datagram) {
            Ok(received) => Ok(received),
            Err(error) => Err(self.inner.rejected(error)),
        }
    }

    #[inline]
    fn receive<D: IncomingDatagram>(&mut self, datagram: D) -> Result<Received<'s>, RecvError> {
        let inner = self.inner;
        if let Some(answered) = inner.preflight(datagram.as_bytes(), self.now)? {
            return Ok(answered);
        }
        let version = inner.rx.version();
        if self.keys.as_ref().is_none_or(|(v, _)| *v != version) {
            self.reload(version);
        }
        let Some(keys) = self.keys.as_ref().and_then(|(_, keys)| keys.as_deref()) else {
            return Err(RecvError::NotEstablished);
        };
        let session_id = NetHeader::peek_session_id(datagram.as_bytes()).unwrap_or(0);
        let (gen, which) = keys.select(session_id);
        let packet = match datagram.open_with(&gen.opener) {
            Ok(packet) => packet,
            Err(error) => return Err(RecvError::from_open(error)),
        };

        // Authenticated from here on. The header's fields are copied out first, so that
        // the packet moves once, into the result, and the bookkeeping after it works on
        // scalars.
        self.heard = true;
        let header = packet.header();
        let counter = header.nonce_counter();
        let flags = header.flags;
        let plain_data = !flags.is_heartbeat()
            && !flags.is_nack()
            && !flags.is_reliable()
            && header.stream_id != CONTROL_STREAM;
        if which == Which::Pending || !plain_data {
            let pending = (which == Which::Pending).then(|| Arc::clone(gen));
            return self.receive_other(packet, pending, which, counter, plain_data);
        }
        let plain = Plain::of(&packet);
        let received = Received::Packet(packet);
        if !inner.peer_is_net_mesh() {
            self.admit(which, counter);
        }
        self.count_plain(plain);
        Ok(received)
    }

    /// The rest of [`receive`](Self::receive): a packet under the pending keys (which
    /// switches both directions to them), control and reliable packets.
    #[inline(never)]
    fn receive_other(
        &mut self,
        packet: OpenedPacket,
        pending: Option<Arc<RxGen>>,
        which: Which,
        counter: u64,
        plain_data: bool,
    ) -> Result<Received<'s>, RecvError> {
        let inner = self.inner;
        if let Some(gen) = pending {
            // Both directions switch keys now; later packets see the new version.
            self.flush_run();
            inner.promote_pending(self.now);
            if !inner.peer_is_net_mesh() {
                inner.admit_counters(&gen, counter, counter + 1, self.now);
            }
        } else if !inner.peer_is_net_mesh() {
            self.admit(which, counter);
        }
        if !plain_data {
            return inner.dispatch(packet, self.now);
        }
        self.count_plain(Plain::of(&packet));
        Ok(Received::Packet(packet))
    }

    /// Counts a fire-and-forget packet on its stream's run, or flushes the run and
    /// starts another.
    #[inline]
    fn count_plain(&mut self, plain: Plain) {
        if let Some(run) = &mut self.stream_run {
            if run.stream_id == plain.stream_id && run.end == plain.sequence {
                run.end += 1;
                run.events += plain.events;
                run.bytes += plain.bytes;
                return;
            }
        }
        self.flush_stream_run();
        self.stream_run = Some(StreamRun {
            stream_id: plain.stream_id,
            first: plain.sequence,
            end: plain.sequence.saturating_add(1),
            events: plain.events,
            bytes: plain.bytes,
        });
    }

    #[cold]
    fn reload(&mut self, version: u64) {
        // The pending run names a generation of the keys it was counted under.
        self.flush_run();
        self.keys = Some((version, self.inner.rx.load()));
    }

    /// Extends the run of consecutive counters, or admits it and starts another.
    #[inline]
    fn admit(&mut self, which: Which, counter: u64) {
        if let Some(run) = &mut self.run {
            if run.which == which && run.hi == counter {
                run.hi += 1;
                return;
            }
            self.flush_run();
        }
        self.run = Some(Run {
            which,
            lo: counter,
            hi: counter.saturating_add(1),
        });
    }

    fn flush_run(&mut self) {
        let Some(run) = self.run.take() else {
            return;
        };
        let Some(keys) = self.keys.as_ref().and_then(|(_, keys)| keys.as_deref()) else {
            return;
        };
        let gen: &RxGen = match run.which {
            Which::Current => &keys.current,
            Which::Previous => keys.previous.as_deref().unwrap_or(&keys.current),
            Which::Pending => keys.pending.as_deref().unwrap_or(&keys.current),
        };
        self.inner.admit_counters(gen, run.lo, run.hi, self.now);
    }

    /// Counts the run of fire-and-forget packets on its stream (under one lock).
    fn flush_stream_run(&mut self) {
        let Some(run) = self.stream_run.take() else {
            return;
        };
        let inner = self.inner;
        let packets = run.end - run.first;
        let Some(stream) = inner.rx_streams.get_or_insert(run.stream_id, RxStream::new) else {
            inner.count_untracked(packets, run.events, run.bytes);
            return;
        };
        let mut ff = lock(&stream.tracker);
        ff.traffic.packets_of(packets, run.events, run.bytes);
        // Delivered already, whatever the tracker says.
        ff.traffic.events_delivered += run.events;
        let duplicates = ff.tracker.on_packets(run.first..run.end);
        drop(ff);
        if duplicates > 0 {
            inner
                .counters
                .duplicates
                .fetch_add(duplicates, Ordering::Relaxed);
        }
    }
}

impl Drop for ReceiveBatch<'_> {
    fn drop(&mut self) {
        self.flush_run();
        self.flush_stream_run();
        if self.heard {
            let inner = self.inner;
            if inner.last_heard.load(Ordering::Relaxed) < self.now_nanos {
                inner.last_heard.store(self.now_nanos, Ordering::Relaxed);
            }
            if inner.idle_reported.load(Ordering::Relaxed) {
                inner.idle_reported.store(false, Ordering::Relaxed);
            }
        }
    }
}

impl std::fmt::Debug for ReceiveBatch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiveBatch")
            .field(
                "pending_packets",
                &self.stream_run.map_or(0, |r| r.end - r.first),
            )
            .finish_non_exhaustive()
    }
}
