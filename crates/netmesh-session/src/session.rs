//! A session: both directions of one peer link, sans-IO.

mod batch;
mod cache;
mod config;
mod control;
mod datagram;
mod error;
mod event;
mod flow;
mod gen;
mod received;
mod recv;
mod send;
mod stats;
mod streams;
mod timers;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use netmesh_wire::{AsEvent, PacketFlags};

use self::cache::Current;
use self::gen::{RxGen, RxKeys, TxGen};
use self::stats::Counters;
use self::streams::{lock, RxStream, StreamTable, TxStream};

pub use batch::ReceiveBatch;
pub use config::{SessionConfig, MAX_CREDIT_WINDOW};
pub use datagram::IncomingDatagram;
pub use error::{Blocked, RecvError, SendError};
pub use event::{Event, PeerKind, SessionState};
pub use received::{Delivery, Received, Sent};
pub use stats::SessionStats;

use crate::{HandshakeError, Prologue, Psk, PublicKey, Responder, SessionKeys};

/// Subprotocol id of the heartbeat that marks a netmesh peer (`"NM"`).
pub const NETMESH_HELLO_SUBPROTOCOL: u16 = 0x4E4D;
/// Subprotocol id of CREDIT control packets (netmesh peers only).
pub const CREDIT_SUBPROTOCOL: u16 = 0x4E01;
/// Subprotocol id of ACK control packets (netmesh peers only).
pub const ACK_SUBPROTOCOL: u16 = 0x4E03;
/// Subprotocol id of SKIP control packets (netmesh peers only).
pub const SKIP_SUBPROTOCOL: u16 = 0x4E04;
/// Subprotocol id of net-mesh's stream window grants.
pub const GRANT_SUBPROTOCOL: u16 = 0x0B00;
/// The stream id that carries control messages.
pub const CONTROL_STREAM: u64 = u64::MAX;

/// Which side of the handshake a session was on; only an initiator re-keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// It sent msg1.
    Initiator,
    /// It answered msg1.
    Responder,
}

/// Both directions of one authenticated peer link, sans-IO.
///
/// A `Session` owns the handshake (initiator or responder), a TX pool sealing under the
/// TX key and an opener under the RX key, counter credit and stream windows, reliable
/// streams and re-keys. It has no socket, thread or clock: the owner passes datagrams in
/// ([`handle_datagram`](Self::handle_datagram)), sends what comes out (the results of
/// the send calls and [`poll_transmit`](Self::poll_transmit)), drives the timers
/// ([`poll_timeout`](Self::poll_timeout), [`handle_timeout`](Self::handle_timeout)) and
/// reads [`poll_event`](Self::poll_event).
///
/// `Send + Sync`: every method takes `&self`; any number of threads may send and
/// receive at once.
///
/// # Examples
///
/// Two sessions agree keys and exchange one event (a real owner moves the datagrams
/// over UDP):
///
/// ```
/// use std::sync::Arc;
/// use std::time::Instant;
/// use bytes::Bytes;
/// use netmesh_session::{Prologue, Psk, Received, Responder, Session, SessionConfig, StaticKeypair};
/// use netmesh_wire::PacketFlags;
///
/// let now = Instant::now();
/// let server_key = StaticKeypair::generate()?;
/// let psk = Psk::new([7; 32]);
/// let responder = Arc::new(Responder::new(&server_key, &psk));
///
/// let (client, msg1) = Session::connect(
///     SessionConfig::default(), &server_key.public_key(), &psk, &Prologue::Empty, now)?;
/// let (server, msg2) = Session::accept(
///     SessionConfig::default(), responder, &msg1, &Prologue::Empty, now)?;
/// client.handle_datagram(msg2, now)?;
/// assert!(client.is_established() && server.is_established());
///
/// let sent = client.send(1, &[Bytes::from_static(b"hello")], PacketFlags::NONE)?;
/// match server.handle_datagram(sent.datagram.expect("within credit"), now)? {
///     Received::Packet(packet) => assert_eq!(packet.events().next().as_deref(), Some(&b"hello"[..])),
///     other => panic!("unexpected {other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Session {
    inner: Inner,
}

/// Lifecycle states, as stored in [`Inner::state`].
const HANDSHAKING: u8 = 0;
const ESTABLISHED: u8 = 1;
const CLOSED: u8 = 2;

/// Peer kinds, as stored in [`Inner::peer_kind`].
const PEER_UNKNOWN: u8 = 0;
const PEER_NETMESH: u8 = 1;
const PEER_NET_MESH: u8 = 2;

/// Bound on queued control datagrams, deferred packets and events: beyond it the oldest
/// events are dropped and datagrams are not queued (counted), so nothing grows without
/// bound whatever the peer does.
const QUEUE_LIMIT: usize = 4096;

/// The counter credit a netmesh sender assumes before its peer's first CREDIT.
const IMPLICIT_WINDOW: u64 = 128;

/// net-mesh's implicit stream window (bytes of whole datagrams) before grants.
const GRANT_WINDOW: u64 = 65_536;

/// The handshake material a session keeps.
#[derive(Default)]
struct Handshake {
    /// Initiator: the handshake in progress (first one or a re-key).
    initiator: Option<crate::Initiator>,
    /// The msg1 datagram being retried.
    msg1: Option<Bytes>,
    retry_at: Option<Instant>,
    deadline: Option<Instant>,
    /// Whether the handshake in progress is a re-key.
    rekey: bool,
    /// Initiator: what a re-key needs.
    peer: Option<(PublicKey, Psk, Prologue)>,
    /// Responder: the responder and prologue, for duplicate msg1 and re-keys.
    responder: Option<(Arc<Responder>, Prologue)>,
    /// Responder: the last msg1 answered and its msg2.
    last_msg1: Option<Bytes>,
    last_msg2: Option<Bytes>,
    /// Responder: the TX generation of a re-key, used once the initiator proves it has
    /// the new keys (its first packet under them).
    pending_tx: Option<Arc<TxGen>>,
}

impl Handshake {
    /// Ends the initiator's handshake in progress; returns whether it was a re-key.
    fn finish(&mut self) -> bool {
        self.initiator = None;
        self.msg1 = None;
        self.retry_at = None;
        self.deadline = None;
        std::mem::take(&mut self.rekey)
    }
}

/// Timer state behind one lock (touched by timers, not per packet).
#[derive(Default)]
struct Timers {
    next_heartbeat: Option<Instant>,
    /// Marked heartbeats go out every `grace / 5` until then.
    markers_until: Option<Instant>,
    next_marker: Option<Instant>,
    grace_deadline: Option<Instant>,
    /// When the last heartbeat probe for credit was sent.
    last_probe: Option<Instant>,
}

/// Queued outgoing datagrams.
#[derive(Default)]
struct Outbox {
    /// Handshake messages, heartbeats, control packets, retransmissions within credit.
    ready: VecDeque<Bytes>,
    /// Packets sealed beyond the credit: `(session id, counter, datagram)`.
    deferred: VecDeque<(u64, u64, Bytes)>,
}

struct Inner {
    config: SessionConfig,
    role: Role,
    /// `Instant`s are stored in atomics as nanoseconds since this one.
    epoch: Instant,
    state: AtomicU8,
    peer_kind: AtomicU8,
    tx: Current<TxGen>,
    rx: Current<RxKeys>,
    handshake: Mutex<Handshake>,
    timers: Mutex<Timers>,
    outbox: Mutex<Outbox>,
    events: Mutex<VecDeque<Event>>,
    tx_streams: StreamTable<TxStream>,
    rx_streams: StreamTable<RxStream>,
    /// Scratch memory for control events: reclaimed once each event is sealed, so
    /// control messages allocate nothing in steady state.
    scratch: Mutex<BytesMut>,
    /// See [`Session::credit_generation`].
    credit_generation: AtomicU64,
    /// The latest `now` seen (nanoseconds since `epoch`).
    now: AtomicU64,
    /// When the peer was last heard (an authenticated packet).
    last_heard: AtomicU64,
    idle_reported: AtomicBool,
    /// The peer has sent a stream window grant: its windows apply.
    grants_seen: AtomicBool,
    /// Some reliable stream has packets ready that no delivery took yet.
    deliveries_pending: AtomicBool,
    counters: Counters,
}

impl Session {
    fn new(config: SessionConfig, role: Role, now: Instant) -> Self {
        let max_streams = config.max_streams;
        let config = SessionConfig {
            credit_window: config.credit_window.clamp(1, MAX_CREDIT_WINDOW),
            pool_size: config.pool_size.max(1),
            ..config
        };
        Self {
            inner: Inner {
                config,
                role,
                epoch: now,
                state: AtomicU8::new(HANDSHAKING),
                peer_kind: AtomicU8::new(PEER_UNKNOWN),
                tx: Current::empty(),
                rx: Current::empty(),
                handshake: Mutex::new(Handshake::default()),
                timers: Mutex::new(Timers::default()),
                outbox: Mutex::new(Outbox {
                    ready: VecDeque::with_capacity(64),
                    deferred: VecDeque::with_capacity(64),
                }),
                events: Mutex::new(VecDeque::with_capacity(16)),
                tx_streams: StreamTable::new(max_streams),
                rx_streams: StreamTable::new(max_streams),
                scratch: Mutex::new(BytesMut::with_capacity(256)),
                credit_generation: AtomicU64::new(0),
                now: AtomicU64::new(0),
                last_heard: AtomicU64::new(0),
                idle_reported: AtomicBool::new(false),
                grants_seen: AtomicBool::new(false),
                deliveries_pending: AtomicBool::new(false),
                counters: Counters::default(),
            },
        }
    }

    /// Starts a handshake as initiator towards the responder whose static key is `peer`.
    /// Returns the session (in [`SessionState::Handshaking`]) and msg1, the datagram to
    /// send. The same msg1 is re-sent through [`poll_transmit`](Self::poll_transmit) every
    /// [`handshake_retry`](SessionConfig::handshake_retry) until msg2 arrives or
    /// [`handshake_timeout`](SessionConfig::handshake_timeout) passes.
    ///
    /// # Errors
    ///
    /// [`HandshakeError`] when the Noise state cannot be built (a small-order `peer`
    /// key, no system randomness).
    pub fn connect(
        config: SessionConfig,
        peer: &PublicKey,
        psk: &Psk,
        prologue: &Prologue,
        now: Instant,
    ) -> Result<(Self, Bytes), HandshakeError> {
        let session = Self::new(config, Role::Initiator, now);
        let initiator = crate::Initiator::new(peer, psk, prologue)?;
        let msg1 = Bytes::copy_from_slice(initiator.msg1_datagram());
        {
            let mut hs = lock(&session.inner.handshake);
            hs.initiator = Some(initiator);
            hs.msg1 = Some(msg1.clone());
            hs.retry_at = Some(now + session.inner.config.handshake_retry);
            hs.deadline = Some(now + session.inner.config.handshake_timeout);
            hs.peer = Some((*peer, psk.clone(), *prologue));
        }
        Ok((session, msg1))
    }

    /// Answers msg1 as responder: an established session and msg2, the datagram to send
    /// back. The session keeps `responder` to answer a duplicate msg1 (same msg2) and the
    /// peer's re-keys.
    ///
    /// # Errors
    ///
    /// [`HandshakeError`] when `msg1` is not a valid msg1 for this responder (nothing is
    /// created).
    pub fn accept(
        config: SessionConfig,
        responder: Arc<Responder>,
        msg1: &[u8],
        prologue: &Prologue,
        now: Instant,
    ) -> Result<(Self, Bytes), HandshakeError> {
        let (keys, msg2) = responder.respond(msg1, prologue)?;
        let session = Self::new(config, Role::Responder, now);
        {
            let mut hs = lock(&session.inner.handshake);
            hs.responder = Some((responder, *prologue));
            hs.last_msg1 = Some(Bytes::copy_from_slice(msg1));
            hs.last_msg2 = Some(msg2.clone());
        }
        session.inner.establish(&keys, now);
        Ok((session, msg2))
    }

    /// An established session from keys agreed elsewhere (tests, benches). It cannot
    /// re-key by itself (no handshake material): at the threshold it reports
    /// [`Event::NeedsRekey`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// use netmesh_session::{Role, Session, SessionConfig, SessionKeys};
    ///
    /// let keys = SessionKeys::from_parts(42, [1; 32], [2; 32]);
    /// let session = Session::from_keys(SessionConfig::default(), keys, Role::Initiator, Instant::now());
    /// assert_eq!(session.session_id(), Some(42));
    /// ```
    #[must_use]
    pub fn from_keys(config: SessionConfig, keys: SessionKeys, role: Role, now: Instant) -> Self {
        let session = Self::new(config, role, now);
        session.inner.establish(&keys, now);
        session
    }

    /// Where the session is in its life.
    #[must_use]
    pub fn state(&self) -> SessionState {
        match self.inner.state.load(Ordering::Acquire) {
            HANDSHAKING => SessionState::Handshaking,
            ESTABLISHED => SessionState::Established,
            _ => SessionState::Closed,
        }
    }

    /// Whether events may be sent.
    #[must_use]
    pub fn is_established(&self) -> bool {
        self.state() == SessionState::Established
    }

    /// The current session id (the one packets are sealed under), once established.
    #[must_use]
    pub fn session_id(&self) -> Option<u64> {
        self.inner.tx.load().as_ref().map(|tx| tx.session_id)
    }

    /// Which side of the handshake this session was on.
    #[must_use]
    pub fn role(&self) -> Role {
        self.inner.role
    }

    /// What the session knows about its peer's implementation.
    #[must_use]
    pub fn peer_kind(&self) -> PeerKind {
        self.inner.peer_kind()
    }

    /// Builds one data packet of `events` on `stream_id` (flags: `RELIABLE` makes the
    /// stream reliable towards a netmesh peer; other flags are passed through).
    ///
    /// # Errors
    ///
    /// [`SendError::Blocked`] when flow control holds the packet back (nothing was built,
    /// no counter used); [`SendError::NotEstablished`], [`SendError::Closed`],
    /// [`SendError::ReservedStream`], [`SendError::TooManyStreams`], [`SendError::Build`]
    /// when the events do not fit one packet, [`SendError::CounterExhausted`].
    pub fn send(
        &self,
        stream_id: u64,
        events: &[Bytes],
        flags: PacketFlags,
    ) -> Result<Sent, SendError> {
        self.inner.send(stream_id, events, flags)
    }

    /// [`send`](Self::send) for events of any byte container ([`AsEvent`]): slices of
    /// the caller's own buffer cost no reference count per event. A reliable stream
    /// keeps a copy of its events until acknowledged (one buffer per packet, reused).
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Instant;
    /// use netmesh_session::{Received, Role, Session, SessionConfig, SessionKeys};
    /// use netmesh_wire::PacketFlags;
    ///
    /// let now = Instant::now();
    /// let a = Session::from_keys(SessionConfig::default(), SessionKeys::from_parts(9, [1; 32], [2; 32]), Role::Initiator, now);
    /// let b = Session::from_keys(SessionConfig::default(), SessionKeys::from_parts(9, [2; 32], [1; 32]), Role::Responder, now);
    /// let buffer = *b"onetwo";
    /// let sent = a.send_events(1, &[&buffer[..3], &buffer[3..]], PacketFlags::NONE)?;
    /// match b.handle_datagram(sent.datagram.expect("within credit"), now)? {
    ///     Received::Packet(p) => assert_eq!(p.event_slices().collect::<Vec<_>>(), [&b"one"[..], &b"two"[..]]),
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_events<E: AsEvent>(
        &self,
        stream_id: u64,
        events: &[E],
        flags: PacketFlags,
    ) -> Result<Sent, SendError> {
        self.inner.send(stream_id, events, flags)
    }

    /// [`send`](Self::send) for one packet of `count` events of `event_len` bytes each,
    /// which `fill(index, event)` writes in place, inside the packet (or, on a reliable
    /// stream, inside the retransmit buffer, from which the packet is then sealed): no
    /// buffer of events to make first and copy. `fill` runs only once flow control has
    /// let the packet through.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send); [`SendError::Build`] when `count` events of `event_len`
    /// bytes do not fit one packet (`count * (4 + event_len)` bytes at most
    /// [`MAX_PAYLOAD_SIZE`](netmesh_wire::MAX_PAYLOAD_SIZE), `count` at most
    /// [`MAX_EVENTS_PER_PACKET`](netmesh_wire::MAX_EVENTS_PER_PACKET)).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Instant;
    /// use netmesh_session::{Received, Role, Session, SessionConfig, SessionKeys};
    /// use netmesh_wire::PacketFlags;
    ///
    /// let now = Instant::now();
    /// let a = Session::from_keys(SessionConfig::default(), SessionKeys::from_parts(9, [1; 32], [2; 32]), Role::Initiator, now);
    /// let b = Session::from_keys(SessionConfig::default(), SessionKeys::from_parts(9, [2; 32], [1; 32]), Role::Responder, now);
    /// let sent = a.send_with(1, 3, 8, PacketFlags::NONE, |i, event| {
    ///     event.copy_from_slice(&(i as u64 + 100).to_le_bytes());
    /// })?;
    /// match b.handle_datagram(sent.datagram.expect("within credit"), now)? {
    ///     Received::Packet(p) => assert_eq!(p.event_count(), 3),
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_with(
        &self,
        stream_id: u64,
        count: usize,
        event_len: usize,
        flags: PacketFlags,
        fill: impl FnMut(usize, &mut [u8]),
    ) -> Result<Sent, SendError> {
        self.inner
            .send_with(stream_id, (count, event_len), flags, fill)
    }

    /// Builds as many packets as `events` need (consecutive sequences on `stream_id`),
    /// while flow control allows, pushing each into `out`. Returns how many events were
    /// taken: all of them, or fewer when flow control stopped the batch (send the rest
    /// later).
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send), when not even the first packet could be built;
    /// [`SendError::Build`] with `EventTooLarge` when an event cannot fit any packet
    /// (then nothing was built).
    pub fn send_batch(
        &self,
        stream_id: u64,
        events: &[Bytes],
        flags: PacketFlags,
        out: &mut impl Extend<Sent>,
    ) -> Result<usize, SendError> {
        self.inner.send_batch(stream_id, events, flags, out)
    }

    /// [`send_batch`](Self::send_batch) for events of any byte container
    /// ([`AsEvent`]; see [`send_events`](Self::send_events)).
    ///
    /// # Errors
    ///
    /// As [`send_batch`](Self::send_batch).
    pub fn send_batch_events<E: AsEvent>(
        &self,
        stream_id: u64,
        events: &[E],
        flags: PacketFlags,
        out: &mut impl Extend<Sent>,
    ) -> Result<usize, SendError> {
        self.inner.send_batch(stream_id, events, flags, out)
    }

    /// Whether a send on `stream_id` would currently pass flow control (a hint: another
    /// thread may take the credit first).
    #[must_use]
    pub fn can_send(&self, stream_id: u64) -> bool {
        self.inner.can_send(stream_id)
    }

    /// A number that changes whenever something that can unblock a sender happens:
    /// credit or grants arrived, ACKs freed buffer space, the state changed, a timer
    /// reopened a window. A blocked sender remembers it before trying, and waits (e.g.
    /// on a `Condvar` the receiving thread notifies) until it differs.
    #[must_use]
    pub fn credit_generation(&self) -> u64 {
        self.inner.credit_generation.load(Ordering::Acquire)
    }

    /// Opens one datagram from the peer and says what it was. `Bytes` and `BytesMut`
    /// are accepted; a buffer nobody else holds is decrypted in place.
    ///
    /// # Errors
    ///
    /// One [`RecvError`] per way to be wrong. A refused datagram changes no state (only
    /// the statistics count it).
    pub fn handle_datagram(
        &self,
        datagram: impl IncomingDatagram,
        now: Instant,
    ) -> Result<Received<'_>, RecvError> {
        ReceiveBatch::new(&self.inner, now).handle(datagram)
    }

    /// Starts a batch of datagrams received together (one `recvmmsg` or GRO read): each
    /// is handled as [`handle_datagram`](Self::handle_datagram) would, with the
    /// bookkeeping that is per session rather than per packet done once for the batch.
    /// See [`ReceiveBatch`].
    #[must_use]
    pub fn receive_batch(&self, now: Instant) -> ReceiveBatch<'_> {
        ReceiveBatch::new(&self.inner, now)
    }

    /// Packets of a reliable stream that became deliverable without a datagram of that
    /// stream arriving (a SKIP moved past a lost packet; a [`Delivery`] was dropped
    /// before it was drained; the peer turned out to be net-mesh). Call after
    /// [`Received::Skip`] and after timers, until `None`.
    #[must_use]
    pub fn poll_delivery(&self) -> Option<Delivery<'_>> {
        self.inner.poll_delivery()
    }

    /// The next datagram the session wants sent: handshake retries and replies,
    /// heartbeats, control packets (CREDIT, ACK, NACK, SKIP, grants), retransmissions and
    /// deferred packets. Call until `None` after each
    /// [`handle_datagram`](Self::handle_datagram) and
    /// [`handle_timeout`](Self::handle_timeout).
    #[must_use]
    pub fn poll_transmit(&self) -> Option<Bytes> {
        self.inner.poll_transmit()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called (`None`: no
    /// timer is armed, e.g. a closed session).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }

    /// Runs every timer due at `now`: handshake retry and give-up, heartbeats, credit,
    /// gap timeout, ACK/NACK pacing, tail-loss retransmission, stall timeouts, re-key,
    /// idle detection.
    pub fn handle_timeout(&self, now: Instant) {
        self.inner.handle_timeout(now);
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&self) -> Option<Event> {
        lock(&self.inner.events).pop_front()
    }

    /// A snapshot of the session's counters.
    #[must_use]
    pub fn stats(&self) -> SessionStats {
        self.inner.stats()
    }

    /// Closes the session: nothing more is sent or accepted.
    pub fn close(&self) {
        self.inner.set_state(CLOSED);
        let mut outbox = lock(&self.inner.outbox);
        outbox.ready.clear();
        outbox.deferred.clear();
    }
}

impl Inner {
    fn nanos(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    fn instant(&self, nanos: u64) -> Instant {
        self.epoch + Duration::from_nanos(nanos)
    }

    /// Records `now` as the latest time seen; returns it in nanoseconds since `epoch`.
    fn note_now(&self, now: Instant) -> u64 {
        let nanos = self.nanos(now);
        // A load first: the datagrams of one batch share `now`, and a read-modify-write
        // per packet would cost a locked instruction each.
        if self.now.load(Ordering::Relaxed) < nanos {
            self.now.fetch_max(nanos, Ordering::Relaxed);
        }
        nanos
    }

    /// The latest time the owner passed in.
    fn now(&self) -> Instant {
        self.instant(self.now.load(Ordering::Relaxed))
    }

    fn set_state(&self, state: u8) {
        self.state.store(state, Ordering::Release);
        self.bump_credit();
    }

    fn peer_kind(&self) -> PeerKind {
        match self.peer_kind.load(Ordering::Acquire) {
            PEER_NETMESH => PeerKind::Netmesh,
            PEER_NET_MESH => PeerKind::NetMesh,
            _ => PeerKind::Unknown,
        }
    }

    /// Whether the peer is known to be netmesh (control messages may go to it).
    fn peer_is_netmesh(&self) -> bool {
        self.peer_kind.load(Ordering::Acquire) == PEER_NETMESH
    }

    /// Whether the peer is known to be net-mesh (no credit, no acknowledgements).
    fn peer_is_net_mesh(&self) -> bool {
        self.peer_kind.load(Ordering::Acquire) == PEER_NET_MESH
    }

    /// Wakes blocked senders.
    fn bump_credit(&self) {
        self.credit_generation.fetch_add(1, Ordering::AcqRel);
    }

    fn push_event(&self, event: Event) {
        let mut events = lock(&self.events);
        if events.len() >= QUEUE_LIMIT {
            events.pop_front();
        }
        events.push_back(event);
    }

    fn queue(&self, datagram: Bytes) {
        let mut outbox = lock(&self.outbox);
        if outbox.ready.len() < QUEUE_LIMIT {
            outbox.ready.push_back(datagram);
        }
    }

    /// A control event of little-endian words, cut from reusable scratch memory.
    fn control_event(&self, words: &[u64]) -> Bytes {
        let mut scratch = lock(&self.scratch);
        scratch.reserve(words.len() * 8);
        for word in words {
            scratch.put_u64_le(*word);
        }
        scratch.split().freeze()
    }

    /// Installs the first keys: TX pool, RX opener, timers, the capability marker.
    fn establish(&self, keys: &SessionKeys, now: Instant) {
        self.note_now(now);
        let tx = Arc::new(TxGen::new(keys, &self.config, self.initial_limit()));
        let rx = RxGen::new(keys);
        self.tx.store(Some(tx));
        self.rx.store(Some(Arc::new(RxKeys::new(rx))));
        self.last_heard.store(self.nanos(now), Ordering::Relaxed);
        {
            let mut timers = lock(&self.timers);
            let grace = self.config.peer_detect_grace;
            timers.next_heartbeat = Some(now + self.config.heartbeat_interval);
            timers.markers_until = Some(now + grace * 2);
            timers.next_marker = Some(now + grace / 5);
            timers.grace_deadline = Some(now + grace);
        }
        self.set_state(ESTABLISHED);
        self.push_event(Event::Established {
            session_id: keys.session_id(),
        });
        self.send_heartbeat(true);
    }

    /// The counter limit of a new TX generation.
    fn initial_limit(&self) -> u64 {
        if self.peer_is_net_mesh() {
            u64::MAX
        } else {
            IMPLICIT_WINDOW
        }
    }

    fn stats(&self) -> SessionStats {
        let mut stats = self.counters.snapshot();
        self.tx_streams.for_each(|_, stream| {
            stats.packets_sent += stream.packets_sent();
            stats.events_sent += stream.events.load(Ordering::Relaxed);
            stats.bytes_sent += stream.bytes.load(Ordering::Relaxed);
        });
        self.rx_streams.for_each(|_, stream| {
            let mut add = |t: streams::RxTraffic| {
                stats.packets_received += t.packets;
                stats.events_received += t.events;
                stats.bytes_received += t.bytes;
                stats.events_delivered += t.events_delivered;
            };
            let ff = lock(&stream.tracker);
            stats.lost_packets += ff.tracker.stats().lost;
            add(ff.traffic);
            drop(ff);
            if let Some(rx) = stream.reliable.get() {
                add(lock(rx).traffic);
            }
        });
        if let Some(rx) = self.rx.load().as_ref() {
            stats.gap_skips += rx.gap_skips();
        }
        stats
    }
}

// The owner shares one session between its sending and receiving threads.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Session>();
};

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("role", &self.inner.role)
            .field("state", &self.state())
            .field("session_id", &self.session_id())
            .field("peer_kind", &self.peer_kind())
            .finish_non_exhaustive()
    }
}
