//! The tool's one place that talks to `netmesh-udp`: binding an endpoint, connecting,
//! reading what arrives, sending, knowing when sending has settled, and the counters for
//! the `--json` line.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use netmesh_session::{
    Event as SessionEvent, PeerKind, Prologue, Psk, PublicKey, Responder, StaticKeypair,
};
use netmesh_udp::{
    Accept, ConnectError, Endpoint, EndpointConfig, Event, EventHandler, Peer, PeerId,
};
use netmesh_wire::AsEvent;
use serde_json::json;

use crate::report::Report;
use crate::Failure;

/// How a receiver names the sender of events.
pub(crate) type PeerKey = PeerId;

/// What to bind and how to handshake.
pub(crate) struct NodeConfig {
    pub(crate) bind: SocketAddr,
    /// This side's static keypair: present on a responder (`listen`), which accepts
    /// handshakes; absent on an initiator (`send`), which only connects.
    pub(crate) keypair: Option<StaticKeypair>,
    pub(crate) psk: Psk,
    /// The mesh prologue's `(initiator_id, responder_id)`; `None`: the empty prologue.
    pub(crate) mesh: Option<(u64, u64)>,
    /// Where what arrives goes: `None` queues it for [`Node::next`]; a handler takes it
    /// on the endpoint's receive (and timer) threads instead, which spares a thread
    /// handoff per packet and lets receive buffers be reused at once. A handler must be
    /// quick and must not send (see [`EndpointConfig::on_event`]).
    pub(crate) handler: Option<Handler>,
}

/// Takes what a node reports, on the node's own threads.
pub(crate) type Handler = Arc<dyn Fn(Incoming) + Send + Sync>;

/// What a node reports, as the commands need it.
pub(crate) enum Incoming {
    /// A peer's session was established (a handshake this node accepted).
    Connected(PeerHandle),
    /// One packet's events from a peer.
    Delivery {
        peer: PeerKey,
        reliable: bool,
        events: netmesh_udp::Delivery,
    },
    /// Reliable sequences of a peer given up for good (counted in packets).
    Lost { count: u64 },
    /// Anything else (silence, closes, peer kinds, re-keys).
    Other,
}

/// Sends to one peer; cheap to clone across threads.
#[derive(Clone, Debug)]
pub(crate) struct PeerHandle {
    peer: Peer,
    send_timeout: Duration,
}

/// How long a session must neither send a new packet nor retransmit one for its sending
/// to count as settled: six of the session's tail-loss probe intervals (50 ms). While a
/// reliable packet is unacknowledged, the session re-sends the oldest and newest at that
/// interval (towards a netmesh peer), so this long without a retransmission means every
/// packet was acknowledged.
const QUIET: Duration = Duration::from_millis(300);

impl PeerHandle {
    /// Sends `events` on `stream`, waiting for flow control as long as the send timeout.
    pub(crate) fn send<E: AsEvent>(
        &self,
        stream: u64,
        events: &[E],
        reliable: bool,
    ) -> Result<(), Failure> {
        self.peer
            .send_events_timeout(stream, events, reliable, self.send_timeout)
            .map_err(|error| Failure::Error(format!("sending to {}: {error}", self.peer.addr())))
    }

    /// Sends `count` events of `size` bytes on `stream`, each written in place by
    /// `fill(index, event)`, waiting for flow control as long as the send timeout.
    pub(crate) fn send_with(
        &self,
        stream: u64,
        (count, size): (usize, usize),
        reliable: bool,
        fill: impl FnMut(usize, &mut [u8]),
    ) -> Result<(), Failure> {
        self.peer
            .send_with(stream, count, size, reliable, fill)
            .map_err(|error| Failure::Error(format!("sending to {}: {error}", self.peer.addr())))
    }

    /// Waits until sending has settled: no packet sent or retransmitted for [`QUIET`]
    /// (reliable streams: everything acknowledged; fire-and-forget: flow control quiet).
    /// False when `timeout` passed first, the session closed, or `stop` was raised.
    ///
    /// netmesh-session does not expose its count of unacknowledged packets, so this
    /// judges from its counters (see [`QUIET`] for why that is sound); a reliable packet
    /// given up is counted by [`packets_lost`](Self::packets_lost).
    pub(crate) fn wait_settled(&self, stop: &AtomicBool, timeout: Duration) -> bool {
        let signature = |peer: &Peer| {
            let stats = peer.stats();
            (stats.retransmits, stats.packets_sent, stats.lost_reliable)
        };
        let deadline = Instant::now() + timeout;
        let mut last = signature(&self.peer);
        let mut changed = Instant::now();
        loop {
            thread::sleep(Duration::from_millis(10));
            let now = Instant::now();
            let current = signature(&self.peer);
            if current != last {
                last = current;
                changed = now;
            }
            if now >= changed + QUIET {
                return true;
            }
            if now >= deadline || stop.load(Ordering::Relaxed) || !self.peer.is_established() {
                return false;
            }
        }
    }

    /// Waits up to `limit` until the peer has answered something it was sent (a grant or
    /// credit arrived) or its kind is known.
    pub(crate) fn wait_answer(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline
            && self.peer.stats().control_received == 0
            && self.peer.kind() == PeerKind::Unknown
        {
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// Whether the peer has sent any control message (credit, ACK, grant).
    pub(crate) fn has_answered(&self) -> bool {
        self.peer.stats().control_received > 0
    }

    /// Events sent so far (first transmissions).
    pub(crate) fn events_sent(&self) -> u64 {
        self.peer.stats().events_sent
    }

    /// Reliable packets the session gave up on.
    pub(crate) fn packets_lost(&self) -> u64 {
        self.peer.stats().lost_reliable
    }

    /// Whether the peer is net-mesh (which acknowledges nothing).
    pub(crate) fn is_net_mesh(&self) -> bool {
        self.peer.kind() == PeerKind::NetMesh
    }
}

/// An endpoint's event as the commands need it.
fn incoming(event: Event, send_timeout: Duration) -> Incoming {
    match event {
        Event::Connected(peer) => Incoming::Connected(PeerHandle { peer, send_timeout }),
        Event::Delivery(delivery) => Incoming::Delivery {
            peer: delivery.peer(),
            reliable: delivery.header().flags.is_reliable(),
            events: delivery,
        },
        Event::Session {
            event: SessionEvent::StreamLoss { count, .. },
            ..
        } => Incoming::Lost { count },
        _ => Incoming::Other,
    }
}

/// One endpoint and how it handshakes.
pub(crate) struct Node {
    endpoint: Endpoint,
    psk: Psk,
    prologue: Prologue,
    send_timeout: Duration,
}

impl Node {
    /// Binds an endpoint; with a keypair it accepts handshakes.
    pub(crate) fn bind(config: NodeConfig) -> Result<Self, Failure> {
        let prologue = match config.mesh {
            Some((initiator_id, responder_id)) => Prologue::Mesh {
                initiator_id,
                responder_id,
            },
            None => Prologue::Empty,
        };
        let accept = config.keypair.as_ref().map(|keypair| Accept {
            responder: Arc::new(Responder::new(keypair, &config.psk)),
            prologue,
        });
        let mut endpoint_config = EndpointConfig {
            accept,
            // Deliveries queued for the command's thread: room for bursts while it checks.
            event_queue: 4096,
            ..EndpointConfig::new(config.bind)
        };
        let send_timeout = endpoint_config.send_timeout;
        endpoint_config.on_event = config
            .handler
            .map(|handler| EventHandler::new(move |event| handler(incoming(event, send_timeout))));
        let endpoint = Endpoint::bind(endpoint_config)?;
        Ok(Self {
            endpoint,
            psk: config.psk,
            prologue,
            send_timeout,
        })
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.endpoint.local_addr()
    }

    /// Handshakes with the responder at `to`.
    pub(crate) fn connect(
        &self,
        to: SocketAddr,
        key: PublicKey,
        timeout: Duration,
    ) -> Result<PeerHandle, Failure> {
        let peer = self
            .endpoint
            .connect(to, &key, &self.psk, &self.prologue, timeout)
            .map_err(|error| match error {
                ConnectError::TimedOut(_) => Failure::Error(format!(
                    "{error}: no valid answer (is a listener there, with this --peer-key, \
                     --psk and prologue?)"
                )),
                other => Failure::Error(format!("handshake with {to} failed: {other}")),
            })?;
        Ok(PeerHandle {
            peer,
            send_timeout: self.send_timeout,
        })
    }

    /// The next thing that happened, waiting up to `wait` (nothing ever, when the node
    /// was bound with a [`Handler`]).
    pub(crate) fn next(&self, wait: Duration) -> Option<Incoming> {
        let event = self.endpoint.recv_event(wait)?;
        Some(incoming(event, self.send_timeout))
    }

    /// Adds the endpoint's counters to `report`: `rejected` and the details.
    pub(crate) fn add_stats(&self, report: &mut Report) {
        let stats = self.endpoint.stats();
        let rejected = stats.rejected;
        report.rejected += rejected.total();
        report.extra(
            "rejected_by_kind",
            json!({
                "not_netmesh": rejected.not_netmesh,
                "malformed": rejected.malformed,
                "wrong_session": rejected.wrong_session,
                "auth_failed": rejected.auth_failed,
                "replayed": rejected.replayed,
                "handshake_refused": rejected.handshake_refused,
                "rate_limited": rejected.rate_limited,
                "peer_limit": rejected.peer_limit,
                "unknown_peer": rejected.unknown_peer,
                "wrong_state": rejected.wrong_state,
            }),
        );
        let traffic = stats.traffic;
        let sessions = stats.sessions;
        report.extra("datagrams_in", traffic.datagrams_in);
        report.extra("datagrams_out", traffic.datagrams_out);
        report.extra("recv_calls", traffic.recv_calls);
        report.extra("send_calls", traffic.send_calls);
        report.extra("handshakes_accepted", traffic.handshakes_accepted);
        report.extra("handshakes_failed", traffic.handshakes_failed);
        report.extra("packets_sent", sessions.packets_sent);
        report.extra("packets_received", sessions.packets_received);
        report.extra("retransmits", sessions.retransmits);
        report.extra("control_sent", sessions.control_sent);
        report.extra("control_received", sessions.control_received);
        report.extra("reliable_duplicates_dropped", sessions.duplicates);
        report.extra("reliable_reordered_buffered", sessions.out_of_order);
        report.extra("fire_and_forget_packets_lost", sessions.lost_packets);
        report.extra("reliable_packets_lost", sessions.lost_reliable);
        report.extra("flow_control_waits", sessions.blocked);
        report.extra("ignored", sessions.ignored);
        report.extra("gso", stats.gso());
        report.extra("gro", stats.gro());
        if let Some(socket) = stats.sockets.first() {
            report.extra("recv_buffer_granted", socket.recv_buffer_granted as u64);
            report.extra("send_buffer_granted", socket.send_buffer_granted as u64);
        }
    }
}
