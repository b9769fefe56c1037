//! [`Endpoint`]: sockets, receive threads, the timer thread and the peer table.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use netmesh_pool::{OpenedPacket, SplitDatagram};
use netmesh_session::{
    Prologue, Psk, PublicKey, ReceiveBatch, Received, RecvError, Responder, Session, SessionConfig,
    SessionStats, MAX_CREDIT_WINDOW,
};
use netmesh_wire::{NetHeader, PacketFlags, WireError, MAGIC};

use crate::peer::{Peer, PeerInner, Phase};
use crate::queue::EventQueue;
use crate::ratelimit::RateLimiter;
use crate::socket::SendQueue;
use crate::stats::{add, bump, RejectedCounters, TrafficCounters};
use crate::{
    BatchSocket, BindError, ConnectError, Delivery, EndpointStats, Event, PeerId, RecvBatch,
    SocketInfo, SocketOptions,
};

/// How long a receive thread blocks before it looks at the shutdown flag.
const RECV_POLL: Duration = Duration::from_millis(20);
/// The timer thread wakes at least this often: session timers armed by received
/// datagrams (NACK and ACK pacing, credit) are a few milliseconds away.
const TIMER_TICK: Duration = Duration::from_millis(5);
/// Kernel memory one queued full-size datagram costs in the receive buffer (its
/// truesize), for sizing the credit window from the buffer granted.
const QUEUED_DATAGRAM_COST: usize = 12 * 1024;
/// See [`EndpointConfig::session`].
const DEFAULT_GAP_TIMEOUT: Duration = Duration::from_millis(1);
/// Datagrams handed to one GSO-batched send from a thread's queue.
const TX_BATCH: usize = 64;

/// How an endpoint answers handshakes: its responder (static keypair and PSK) and the
/// prologue initiators must use.
#[derive(Debug, Clone)]
pub struct Accept {
    /// The Noise responder (this endpoint's static keypair and the PSK).
    pub responder: Arc<Responder>,
    /// The prologue: [`Prologue::Empty`] (net-mesh's `NetAdapter`), or the mesh one with
    /// the expected initiator id and this node's id.
    pub prologue: Prologue,
}

/// How to run an [`Endpoint`]. `EndpointConfig::new(addr)` gives the documented
/// defaults.
///
/// # Examples
///
/// ```
/// use netmesh_udp::EndpointConfig;
///
/// let config = EndpointConfig { receivers: 2, ..EndpointConfig::new("127.0.0.1:0".parse()?) };
/// assert!(config.accept.is_none());
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Address to bind; port 0 picks a free port ([`Endpoint::local_addr`] tells which).
    pub bind: SocketAddr,
    /// Accept handshakes (`None`: only initiate, refuse every msg1).
    pub accept: Option<Accept>,
    /// Every session's tunables (heartbeats, idle timeout, handshake retry and timeout,
    /// credit, reliable streams). The default is `SessionConfig::default()` with a
    /// `gap_timeout` of 1 ms instead of 20 ms: control packets built on the endpoint's
    /// receive and timer threads take counter leases of their own, whose unused counters
    /// are holes the receiver's watermark must give up on, and waiting 20 ms for each
    /// stalled a fast sender on its credit (measured over 127.0.0.1: 2.0 M 64-byte
    /// events/s with 20 ms, 4.1 M with 1 ms, same run).
    pub session: SessionConfig,
    /// Socket buffers and offloads.
    pub socket: SocketOptions,
    /// Receive threads, each with its own SO_REUSEPORT socket on the same address (the
    /// kernel keeps each peer on one of them). Default 1.
    pub receivers: usize,
    /// Size each session's counter-credit window to the receive buffer granted (at most
    /// `MAX_CREDIT_WINDOW`), instead of `session.credit_window`. Default on.
    pub credit_window_from_buffer: bool,
    /// How long [`Peer::send`] waits for flow-control credit. Default 5 s.
    pub send_timeout: Duration,
    /// Handshake initiations accepted per second per source address (token bucket,
    /// burst of the same size). Default 5, as net-mesh's responder.
    pub handshake_rate: u32,
    /// Handshake initiations accepted per second from all sources together (token
    /// bucket, burst of the same size): bounds the Diffie-Hellman work a flood from many
    /// addresses can cause. Default 1000.
    pub handshake_rate_total: u32,
    /// Source addresses the rate limiter remembers at most. Default 4096.
    pub rate_limit_sources: usize,
    /// Peers with a session at most; further handshakes are refused. Default 4096.
    pub max_peers: usize,
    /// Events queued for the application at most; a receive thread waits when the queue
    /// is full. Default 1024.
    pub event_queue: usize,
    /// Deliver events by calling this on the endpoint's receive and timer threads
    /// instead of queueing them for [`Endpoint::recv_event`] (which then returns
    /// nothing). Saves a thread handoff per packet; the handler must be quick, as it
    /// holds up the receive thread (and so every peer on its socket), and must not wait
    /// on the endpoint: a [`Peer::send`] from it that runs out of credit would wait for
    /// credit only this very thread can deliver (it gives up after `send_timeout`).
    /// Default `None`.
    pub on_event: Option<EventHandler>,
}

/// A function events are handed to, on the endpoint's own threads (see
/// [`EndpointConfig::on_event`]).
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// use netmesh_udp::{Event, EventHandler};
///
/// let events = Arc::new(AtomicU64::new(0));
/// let counter = Arc::clone(&events);
/// let handler = EventHandler::new(move |event| {
///     if let Event::Delivery(delivery) = event {
///         counter.fetch_add(delivery.event_count() as u64, Ordering::Relaxed);
///     }
/// });
/// # let _ = handler;
/// ```
#[derive(Clone)]
pub struct EventHandler(Arc<dyn Fn(Event) + Send + Sync>);

impl EventHandler {
    /// Wraps `handler`.
    pub fn new(handler: impl Fn(Event) + Send + Sync + 'static) -> Self {
        Self(Arc::new(handler))
    }
}

impl std::fmt::Debug for EventHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventHandler(..)")
    }
}

impl EndpointConfig {
    /// The defaults, bound to `bind`, accepting no handshakes.
    #[must_use]
    pub fn new(bind: SocketAddr) -> Self {
        Self {
            bind,
            accept: None,
            session: SessionConfig {
                gap_timeout: DEFAULT_GAP_TIMEOUT,
                ..SessionConfig::default()
            },
            socket: SocketOptions::default(),
            receivers: 1,
            credit_window_from_buffer: true,
            send_timeout: Duration::from_secs(5),
            handshake_rate: 5,
            handshake_rate_total: 1000,
            rate_limit_sources: 4096,
            max_peers: 4096,
            event_queue: 1024,
            on_event: None,
        }
    }
}

/// What every thread of an endpoint shares.
pub(crate) struct Shared {
    pub(crate) sockets: Vec<BatchSocket>,
    accept: Option<Accept>,
    session_config: SessionConfig,
    pub(crate) send_timeout: Duration,
    max_peers: usize,
    peers: RwLock<HashMap<SocketAddr, Arc<PeerInner>>>,
    limiter: Mutex<RateLimiter>,
    queue: EventQueue,
    on_event: Option<EventHandler>,
    pub(crate) traffic: TrafficCounters,
    rejected: RejectedCounters,
    departed: Mutex<SessionStats>,
    next_id: AtomicU64,
    shutdown: AtomicBool,
    timer_lock: Mutex<()>,
    timer_wake: Condvar,
}

/// A netmesh endpoint: UDP sockets, a receive thread per socket, a timer thread, and the
/// sessions of every peer, keyed by address.
///
/// It accepts handshakes (with [`EndpointConfig::accept`]) and initiates them
/// ([`connect`](Self::connect)); each established session is a [`Peer`] handle any
/// number of application threads may send through. Everything that arrives, and what
/// happens to peers, is read with [`recv_event`](Self::recv_event). No async runtime:
/// plain threads, stopped when the endpoint is dropped.
///
/// # Examples
///
/// See the crate documentation.
pub struct Endpoint {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    local_addr: SocketAddr,
}

impl Endpoint {
    /// Binds the sockets and starts the threads.
    ///
    /// # Errors
    ///
    /// [`BindError::Socket`] when a socket cannot be bound or configured,
    /// [`BindError::Thread`] when a thread cannot start.
    pub fn bind(config: EndpointConfig) -> Result<Self, BindError> {
        let receivers = config.receivers.max(1);
        let mut options = config.socket;
        options.reuse_port |= receivers > 1;
        let socket_error = |addr, source| BindError::Socket { addr, source };
        let first =
            BatchSocket::bind(config.bind, options).map_err(|e| socket_error(config.bind, e))?;
        let local_addr = first.local_addr();
        let mut sockets = vec![first];
        for _ in 1..receivers {
            sockets.push(
                BatchSocket::bind(local_addr, options).map_err(|e| socket_error(local_addr, e))?,
            );
        }
        let mut session_config = config.session.clone();
        if config.credit_window_from_buffer {
            let granted = sockets
                .iter()
                .map(|s| s.info().recv_buffer_granted)
                .min()
                .unwrap_or(0);
            let window = granted / QUEUED_DATAGRAM_COST;
            session_config.credit_window = u64::try_from(window)
                .unwrap_or(MAX_CREDIT_WINDOW)
                .clamp(8, MAX_CREDIT_WINDOW);
        }
        let shared = Arc::new(Shared {
            sockets,
            accept: config.accept,
            session_config,
            send_timeout: config.send_timeout,
            max_peers: config.max_peers,
            peers: RwLock::new(HashMap::new()),
            limiter: Mutex::new(RateLimiter::new(
                config.handshake_rate,
                config.handshake_rate_total,
                config.rate_limit_sources,
            )),
            queue: EventQueue::new(config.event_queue),
            on_event: config.on_event,
            traffic: TrafficCounters::default(),
            rejected: RejectedCounters::default(),
            departed: Mutex::new(SessionStats::default()),
            next_id: AtomicU64::new(0),
            shutdown: AtomicBool::new(false),
            timer_lock: Mutex::new(()),
            timer_wake: Condvar::new(),
        });
        let mut endpoint = Self {
            shared: Arc::clone(&shared),
            threads: Vec::new(),
            local_addr,
        };
        for index in 0..shared.sockets.len() {
            let shared = Arc::clone(&shared);
            let handle = thread::Builder::new()
                .name(format!("netmesh-recv-{index}"))
                .spawn(move || receive_loop(&shared, index))
                .map_err(|source| BindError::Thread {
                    what: "receive",
                    source,
                })?;
            endpoint.threads.push(handle);
        }
        let timer_shared = Arc::clone(&shared);
        let handle = thread::Builder::new()
            .name("netmesh-timer".into())
            .spawn(move || timer_loop(&timer_shared))
            .map_err(|source| BindError::Thread {
                what: "timer",
                source,
            })?;
        endpoint.threads.push(handle);
        Ok(endpoint)
    }

    /// The bound address (every socket of the endpoint shares it).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Buffer sizes granted and offloads of each socket.
    #[must_use]
    pub fn socket_info(&self) -> Vec<SocketInfo> {
        self.shared.sockets.iter().map(BatchSocket::info).collect()
    }

    /// The session tunables every session of this endpoint gets (with the credit window
    /// sized to the receive buffer when so configured).
    #[must_use]
    pub fn session_config(&self) -> &SessionConfig {
        &self.shared.session_config
    }

    /// Handshakes with the responder at `addr` whose static public key is `peer_key`, and
    /// waits until the session is established (msg1 is re-sent on the session's
    /// handshake-retry timer) or `timeout` passes. If a session with `addr` is already
    /// established, returns it.
    ///
    /// # Errors
    ///
    /// [`ConnectError::Handshake`] when the handshake cannot start,
    /// [`ConnectError::TimedOut`] when no valid msg2 arrived in time,
    /// [`ConnectError::InProgress`] when another call is handshaking with `addr`,
    /// [`ConnectError::Io`] when msg1 cannot be sent.
    pub fn connect(
        &self,
        addr: SocketAddr,
        peer_key: &PublicKey,
        psk: &Psk,
        prologue: &Prologue,
        timeout: Duration,
    ) -> Result<Peer, ConnectError> {
        let shared = &self.shared;
        let now = Instant::now();
        let (session, msg1) =
            Session::connect(shared.session_config.clone(), peer_key, psk, prologue, now)
                .map_err(ConnectError::Handshake)?;
        let inner = Arc::new(PeerInner::new(
            PeerId(shared.next_id.fetch_add(1, Ordering::Relaxed)),
            addr,
            0,
            session,
            Phase::Handshaking,
        ));
        {
            let mut peers = write(&shared.peers);
            if let Some(existing) = peers.get(&addr) {
                inner.session.close();
                return if existing.phase() == Phase::Established {
                    Ok(Peer::new(Arc::clone(existing), Arc::clone(shared)))
                } else {
                    Err(ConnectError::InProgress(addr))
                };
            }
            peers.insert(addr, Arc::clone(&inner));
        }
        bump(&shared.traffic.handshakes_initiated);
        if let Err(source) = shared.send_now(0, addr, &[msg1]) {
            shared.remove_peer(&inner);
            return Err(ConnectError::Io { addr, source });
        }
        shared.wake_timer();
        let deadline = now + timeout;
        match inner.wait_phase_change(Phase::Handshaking, deadline) {
            Phase::Established => Ok(Peer::new(inner, Arc::clone(shared))),
            _ => {
                shared.remove_peer(&inner);
                Err(ConnectError::TimedOut(addr))
            }
        }
    }

    /// The next event, waiting up to `timeout`; `None` when none came (or the endpoint
    /// is closing, or events go to an [`EndpointConfig::on_event`] handler).
    pub fn recv_event(&self, timeout: Duration) -> Option<Event> {
        self.shared.queue.pop(timeout)
    }

    /// The next event if one is queued.
    pub fn try_recv_event(&self) -> Option<Event> {
        self.shared.queue.pop(Duration::ZERO)
    }

    /// The session with `addr`, if there is one (established or handshaking).
    #[must_use]
    pub fn peer(&self, addr: SocketAddr) -> Option<Peer> {
        read(&self.shared.peers)
            .get(&addr)
            .map(|inner| Peer::new(Arc::clone(inner), Arc::clone(&self.shared)))
    }

    /// Every peer with a session now.
    #[must_use]
    pub fn peers(&self) -> Vec<Peer> {
        read(&self.shared.peers)
            .values()
            .map(|inner| Peer::new(Arc::clone(inner), Arc::clone(&self.shared)))
            .collect()
    }

    /// The endpoint's counters, with every session's summed in.
    #[must_use]
    pub fn stats(&self) -> EndpointStats {
        let shared = &self.shared;
        let mut sessions = *lock(&shared.departed);
        let peers = read(&shared.peers);
        for peer in peers.values() {
            sessions += &peer.session.stats();
        }
        EndpointStats {
            traffic: shared.traffic.snapshot(),
            rejected: shared.rejected.snapshot(),
            sessions,
            peers: peers.len(),
            sockets: self.socket_info(),
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        // A receive thread waiting on a full event queue is released.
        self.shared.queue.close();
        self.shared.wake_timer();
        for handle in self.threads.drain(..) {
            // A panicked thread has nothing left to clean up.
            let _ = handle.join();
        }
        let peers: Vec<_> = write(&self.shared.peers).drain().map(|(_, p)| p).collect();
        for peer in peers {
            peer.set_phase(Phase::Closed);
            peer.session.close();
        }
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("local_addr", &self.local_addr)
            .field("sockets", &self.shared.sockets.len())
            .field("peers", &read(&self.shared.peers).len())
            .finish_non_exhaustive()
    }
}

/// A thread's reusable buffers for sends, so that steady-state sends allocate nothing.
#[derive(Default)]
pub(crate) struct TxScratch {
    pub(crate) packets: Vec<Bytes>,
    pub(crate) gso: Vec<u8>,
    pub(crate) queue: SendQueue,
}

thread_local! {
    pub(crate) static TX: RefCell<TxScratch> = RefCell::new(TxScratch::default());
    /// Events an endpoint thread emitted and has not queued yet.
    static PENDING: RefCell<Vec<Event>> = const { RefCell::new(Vec::new()) };
    /// Packets taken out of a reliable stream's delivery before they are delivered.
    static READY: RefCell<Vec<OpenedPacket>> = const { RefCell::new(Vec::new()) };
}

impl Shared {
    /// Sends `packets` to `addr` from socket `socket`, counting them.
    pub(crate) fn send_now(
        &self,
        socket: usize,
        addr: SocketAddr,
        packets: &[Bytes],
    ) -> std::io::Result<()> {
        TX.with(|tx| {
            let mut tx = tx.borrow_mut();
            self.send_with(socket, addr, packets, &mut tx.gso)
        })
    }

    pub(crate) fn send_with(
        &self,
        socket: usize,
        addr: SocketAddr,
        packets: &[Bytes],
        gso: &mut Vec<u8>,
    ) -> std::io::Result<()> {
        if packets.is_empty() {
            return Ok(());
        }
        let socket = &self.sockets[socket.min(self.sockets.len() - 1)];
        match socket.send(addr, packets, gso, self.send_timeout) {
            Ok(calls) => {
                add(&self.traffic.send_calls, calls as u64);
                add(&self.traffic.datagrams_out, packets.len() as u64);
                let bytes: usize = packets.iter().map(Bytes::len).sum();
                add(&self.traffic.bytes_out, bytes as u64);
                Ok(())
            }
            Err(error) => {
                bump(&self.traffic.send_errors);
                Err(error)
            }
        }
    }

    /// Adds what `queue` sent to the endpoint's counters.
    pub(crate) fn count_sent(&self, queue: &mut SendQueue) {
        let (calls, datagrams, bytes) = queue.take_counts();
        add(&self.traffic.send_calls, calls as u64);
        add(&self.traffic.datagrams_out, datagrams as u64);
        add(&self.traffic.bytes_out, bytes as u64);
    }

    fn wake_timer(&self) {
        let _guard = lock(&self.timer_lock);
        self.timer_wake.notify_all();
    }

    /// Sends what the session wants sent, reports its events, wakes blocked senders.
    fn service(self: &Arc<Self>, peer: &Arc<PeerInner>, tx: &mut TxScratch) {
        tx.packets.clear();
        while let Some(datagram) = peer.session.poll_transmit() {
            tx.packets.push(datagram);
            if tx.packets.len() == TX_BATCH {
                // A failed send of control or handshake packets is recovered by the
                // session's timers; it is counted.
                let _ = self.send_with(peer.socket, peer.addr, &tx.packets, &mut tx.gso);
                tx.packets.clear();
            }
        }
        let _ = self.send_with(peer.socket, peer.addr, &tx.packets, &mut tx.gso);
        tx.packets.clear();
        // Reliable packets that became deliverable without a datagram of their stream
        // (a SKIP, a timer, a net-mesh peer detected).
        while let Some(delivery) = peer.session.poll_delivery() {
            self.deliver_all(peer, delivery);
        }
        while let Some(event) = peer.session.poll_event() {
            self.on_session_event(peer, event);
        }
        peer.notify_if_credit_moved();
    }

    fn on_session_event(self: &Arc<Self>, peer: &Arc<PeerInner>, event: netmesh_session::Event) {
        use netmesh_session::Event as S;
        match event {
            S::Established { .. } => {
                let was = peer.phase();
                peer.set_phase(Phase::Established);
                if was != Phase::Established {
                    self.emit(Event::Connected(Peer::new(
                        Arc::clone(peer),
                        Arc::clone(self),
                    )));
                }
            }
            S::HandshakeTimedOut => {
                bump(&self.traffic.handshakes_failed);
                self.remove_peer(peer);
            }
            S::PeerSilent { .. } => {
                bump(&self.traffic.peers_silent);
                if self.remove_peer(peer) {
                    self.emit(Event::Silent {
                        peer: peer.id,
                        addr: peer.addr,
                    });
                }
            }
            other => self.emit(Event::Session {
                peer: peer.id,
                event: other,
            }),
        }
    }

    fn emit(&self, event: Event) {
        if let Some(handler) = &self.on_event {
            (handler.0)(event);
            return;
        }
        // Queued at the end of this thread's receive batch or timer tick.
        PENDING.with(|pending| pending.borrow_mut().push(event));
    }

    /// Queues what this thread emitted since the last call.
    fn flush_events(&self) {
        PENDING.with(|pending| self.queue.push_all(&mut pending.borrow_mut()));
    }

    /// Forgets `peer` (if it is still the session for its address) and closes its
    /// session; `true` if it was in the table.
    pub(crate) fn remove_peer(&self, peer: &Arc<PeerInner>) -> bool {
        let removed = {
            let mut peers = write(&self.peers);
            match peers.get(&peer.addr) {
                Some(current) if Arc::ptr_eq(current, peer) => {
                    peers.remove(&peer.addr);
                    true
                }
                _ => false,
            }
        };
        if removed {
            *lock(&self.departed) += &peer.session.stats();
        }
        peer.set_phase(Phase::Closed);
        peer.session.close();
        removed
    }

    fn lookup(&self, addr: SocketAddr) -> Option<Arc<PeerInner>> {
        read(&self.peers).get(&addr).cloned()
    }

    /// Delivers the packets of a reliable stream's delivery, taken out first: the
    /// delivery holds the stream's receive lock, which must not be held while an event
    /// handler runs (other threads' timers and receives of that stream would wait).
    fn deliver_all(&self, peer: &PeerInner, delivery: netmesh_session::Delivery<'_>) {
        READY.with(|ready| {
            let mut ready = ready.borrow_mut();
            ready.extend(delivery);
            for packet in ready.drain(..) {
                self.deliver(peer, packet);
            }
        });
    }

    fn deliver(&self, peer: &PeerInner, packet: OpenedPacket) {
        bump(&self.traffic.deliveries);
        add(&self.traffic.events_delivered, packet.event_count() as u64);
        self.emit(Event::Delivery(Delivery {
            peer: peer.id,
            addr: peer.addr,
            packet,
        }));
    }

    fn count_refusal(&self, error: &RecvError) {
        let r = &self.rejected;
        let counter = match error {
            RecvError::NotNetmesh(_) => &r.not_netmesh,
            RecvError::Malformed(_) | RecvError::MalformedControl { .. } => &r.malformed,
            RecvError::WrongSession(_) => &r.wrong_session,
            RecvError::AuthFailed => &r.auth_failed,
            RecvError::Replayed(_) => &r.replayed,
            RecvError::Handshake(_) | RecvError::UnexpectedHandshake | RecvError::NewHandshake => {
                &r.handshake_refused
            }
            _ => &r.wrong_state,
        };
        bump(counter);
    }

    /// Datagrams in a row from one source, drained from `run`.
    fn on_run(
        self: &Arc<Self>,
        socket: usize,
        from: SocketAddr,
        run: &mut Vec<BytesMut>,
        touched: &mut Vec<Arc<PeerInner>>,
        now: Instant,
    ) {
        let mut datagrams = run.drain(..);
        // An unknown source's msg1 may make it a peer: looked up again after each.
        let peer = loop {
            match self.lookup(from) {
                Some(peer) => break peer,
                None => match datagrams.next() {
                    Some(datagram) => self.on_unknown_datagram(socket, from, datagram, now),
                    None => return,
                },
            }
        };
        let mut batch = peer.session.receive_batch(now);
        for datagram in datagrams {
            self.on_peer_datagram(socket, &peer, &mut batch, datagram, now);
        }
        drop(batch);
        if !touched.iter().any(|t| Arc::ptr_eq(t, &peer)) {
            touched.push(peer);
        }
    }

    /// A datagram from a peer with a session (`batch`: its session's receive batch).
    fn on_peer_datagram(
        self: &Arc<Self>,
        socket: usize,
        peer: &Arc<PeerInner>,
        batch: &mut ReceiveBatch<'_>,
        datagram: BytesMut,
        now: Instant,
    ) {
        let is_packet = datagram.get(..2) == Some(&MAGIC.to_le_bytes()[..]);
        let is_handshake = is_packet
            && datagram
                .get(3)
                .is_some_and(|&flags| PacketFlags::from_bits(flags).is_handshake());
        if is_handshake {
            // Every handshake datagram costs Diffie-Hellman work: the per-source limit
            // holds for known peers too.
            if !lock(&self.limiter).allow(peer.addr, now) {
                bump(&self.rejected.rate_limited);
                return;
            }
            // Kept: a new msg1 goes to a new responder session.
            let datagram = datagram.freeze();
            match peer.session.handle_datagram(datagram.clone(), now) {
                Ok(_) => {}
                Err(RecvError::NewHandshake) => {
                    self.propose_replacement(socket, peer, &datagram, now);
                }
                Err(error) => self.count_refusal(&error),
            }
            return;
        }
        // A packet of the session proposed to replace this one: the first that
        // authenticates under it makes the replacement.
        let candidate = is_packet
            .then(|| NetHeader::peek_session_id(&datagram))
            .flatten()
            .and_then(|id| {
                let candidate = lock(&peer.candidate).clone()?;
                (candidate.session.session_id() == Some(id)).then_some(candidate)
            });
        let target = candidate.as_ref().unwrap_or(peer);
        // Cut off the receive buffer: the opener cuts the tag off its end for free.
        let datagram = SplitDatagram::new(datagram);
        let result = match &candidate {
            Some(candidate) => candidate.session.handle_datagram(datagram, now),
            None => batch.handle(datagram),
        };
        match result {
            Ok(received) => {
                if candidate.is_some() {
                    self.replace(peer, target);
                }
                match received {
                    Received::Packet(packet) => self.deliver(target, packet),
                    Received::Delivered(delivery) => self.deliver_all(target, delivery),
                    _ => {}
                }
            }
            Err(error) => self.count_refusal(&error),
        };
    }

    /// Answers a new msg1 from a peer that has a session (a restarted peer, or a net-mesh
    /// initiator retrying with a fresh ephemeral key after losing msg2) with a new
    /// session, which replaces the old one only once a packet authenticates under it: a
    /// replayed old msg1 never ends a live session.
    fn propose_replacement(
        self: &Arc<Self>,
        socket: usize,
        peer: &Arc<PeerInner>,
        msg1: &Bytes,
        now: Instant,
    ) {
        let Some(accept) = &self.accept else {
            bump(&self.rejected.handshake_refused);
            return;
        };
        let Ok((session, msg2)) = Session::accept(
            self.session_config.clone(),
            Arc::clone(&accept.responder),
            msg1,
            &accept.prologue,
            now,
        ) else {
            bump(&self.rejected.handshake_refused);
            return;
        };
        let candidate = Arc::new(PeerInner::new(
            PeerId(self.next_id.fetch_add(1, Ordering::Relaxed)),
            peer.addr,
            socket,
            session,
            Phase::Handshaking,
        ));
        bump(&self.traffic.handshakes_accepted);
        let _ = self.send_now(socket, peer.addr, &[msg2]);
        // Its own first packets (the netmesh marker) go out; its events wait for the
        // replacement.
        let mut packets = Vec::new();
        while let Some(datagram) = candidate.session.poll_transmit() {
            packets.push(datagram);
        }
        let _ = self.send_now(socket, peer.addr, &packets);
        if let Some(previous) = lock(&peer.candidate).replace(candidate) {
            previous.session.close();
        }
    }

    /// `candidate` authenticated a packet: it takes `peer`'s place.
    fn replace(self: &Arc<Self>, peer: &Arc<PeerInner>, candidate: &Arc<PeerInner>) {
        {
            let mut peers = write(&self.peers);
            match peers.get(&peer.addr) {
                Some(current) if Arc::ptr_eq(current, peer) => {
                    peers.insert(peer.addr, Arc::clone(candidate));
                }
                _ => return,
            }
        }
        lock(&peer.candidate).take();
        *lock(&self.departed) += &peer.session.stats();
        peer.set_phase(Phase::Closed);
        peer.session.close();
        self.emit(Event::Closed {
            peer: peer.id,
            addr: peer.addr,
        });
        // Not the thread's TX scratch: an event handler called from here may send.
        self.service(candidate, &mut TxScratch::default());
    }

    /// A datagram from an address with no session.
    fn on_unknown_datagram(
        self: &Arc<Self>,
        socket: usize,
        from: SocketAddr,
        datagram: BytesMut,
        now: Instant,
    ) {
        let header = match NetHeader::parse(&datagram) {
            Ok(header) => header,
            Err(WireError::TooShort { .. } | WireError::BadMagic { .. }) => {
                bump(&self.rejected.not_netmesh);
                return;
            }
            Err(_) => {
                bump(&self.rejected.malformed);
                return;
            }
        };
        if !header.flags.is_handshake() {
            bump(&self.rejected.unknown_peer);
            return;
        }
        if self.accept.is_none() {
            bump(&self.rejected.handshake_refused);
            return;
        }
        if !lock(&self.limiter).allow(from, now) {
            bump(&self.rejected.rate_limited);
            return;
        }
        self.accept_handshake(socket, from, &datagram.freeze(), now);
    }

    fn accept_handshake(
        self: &Arc<Self>,
        socket: usize,
        from: SocketAddr,
        msg1: &Bytes,
        now: Instant,
    ) {
        let Some(accept) = &self.accept else {
            bump(&self.rejected.handshake_refused);
            return;
        };
        if read(&self.peers).len() >= self.max_peers {
            bump(&self.rejected.peer_limit);
            return;
        }
        let (session, msg2) = match Session::accept(
            self.session_config.clone(),
            Arc::clone(&accept.responder),
            msg1,
            &accept.prologue,
            now,
        ) {
            Ok(accepted) => accepted,
            Err(_) => {
                bump(&self.rejected.handshake_refused);
                return;
            }
        };
        let peer = Arc::new(PeerInner::new(
            PeerId(self.next_id.fetch_add(1, Ordering::Relaxed)),
            from,
            socket,
            session,
            Phase::Handshaking,
        ));
        {
            let mut peers = write(&self.peers);
            if peers.contains_key(&from) {
                // Another receive thread accepted this address first.
                bump(&self.rejected.handshake_refused);
                return;
            }
            peers.insert(from, Arc::clone(&peer));
        }
        bump(&self.traffic.handshakes_accepted);
        let _ = self.send_now(socket, from, &[msg2]);
        // Not the thread's TX scratch: an event handler called from here may send.
        self.service(&peer, &mut TxScratch::default());
        self.wake_timer();
    }
}

fn receive_loop(shared: &Arc<Shared>, index: usize) {
    let socket = &shared.sockets[index];
    let mut batch = RecvBatch::new(socket);
    let mut touched: Vec<Arc<PeerInner>> = Vec::with_capacity(64);
    // The datagrams of one source in a row (a GRO read is one source's): handled
    // through one session receive batch.
    let mut run: Vec<BytesMut> = Vec::with_capacity(64);
    let mut tx = TxScratch::default();
    while !shared.shutdown.load(Ordering::Relaxed) {
        match socket.recv(&mut batch, Some(RECV_POLL)) {
            Ok(0) => continue,
            Ok(_) => bump(&shared.traffic.recv_calls),
            // A failed receive (out of memory, a socket error) must not end the thread;
            // the poll timeout paces retries.
            Err(_) => {
                thread::sleep(RECV_POLL);
                continue;
            }
        }
        let now = Instant::now();
        let (mut datagrams, mut bytes) = (0, 0);
        let mut run_from: Option<SocketAddr> = None;
        while let Some((from, datagram)) = batch.next_datagram() {
            datagrams += 1;
            bytes += datagram.len() as u64;
            if run_from != Some(from) {
                if let Some(previous) = run_from.replace(from) {
                    shared.on_run(index, previous, &mut run, &mut touched, now);
                }
            }
            run.push(datagram);
        }
        if let Some(last) = run_from {
            shared.on_run(index, last, &mut run, &mut touched, now);
        }
        add(&shared.traffic.datagrams_in, datagrams);
        add(&shared.traffic.bytes_in, bytes);
        for peer in touched.drain(..) {
            shared.service(&peer, &mut tx);
        }
        shared.flush_events();
    }
}

fn timer_loop(shared: &Arc<Shared>) {
    let mut due: Vec<Arc<PeerInner>> = Vec::new();
    let mut tx = TxScratch::default();
    while !shared.shutdown.load(Ordering::Relaxed) {
        let now = Instant::now();
        let mut next = now + TIMER_TICK;
        {
            let peers = read(&shared.peers);
            for peer in peers.values() {
                match peer.session.poll_timeout() {
                    Some(at) if at <= now => due.push(Arc::clone(peer)),
                    Some(at) => next = next.min(at),
                    None => {}
                }
            }
        }
        for peer in due.drain(..) {
            peer.session.handle_timeout(now);
            shared.service(&peer, &mut tx);
        }
        shared.flush_events();
        let guard = lock(&shared.timer_lock);
        if shared.shutdown.load(Ordering::Relaxed) {
            break;
        }
        let wait = next.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            let _ = shared
                .timer_wake
                .wait_timeout(guard, wait)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Locks, ignoring poisoning: every critical section here leaves its data consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}
