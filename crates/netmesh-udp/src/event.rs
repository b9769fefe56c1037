//! What an [`Endpoint`](crate::Endpoint) tells its application: [`Event`]s.

use std::fmt;
use std::net::SocketAddr;

use netmesh_pool::OpenedPacket;
use netmesh_wire::{FrameCodec, NetHeader, OwnedEvents};

use crate::Peer;

/// An endpoint's name for one peer session: unique over the endpoint's life (a peer
/// that handshakes again gets a new id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u64);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peer#{}", self.0)
    }
}

/// Something that happened on an endpoint, in the order its receive and timer threads
/// saw it. Read with [`Endpoint::recv_event`](crate::Endpoint::recv_event).
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A session was established: a handshake this endpoint accepted, or one it
    /// initiated with [`Endpoint::connect`](crate::Endpoint::connect). The handle sends
    /// to the peer.
    Connected(Peer),
    /// One data packet's events from a peer (in order per reliable stream).
    Delivery(Delivery),
    /// Nothing authenticated arrived from the peer for the idle timeout: the endpoint
    /// closed the session and forgot the peer (its handle's sends now fail).
    Silent {
        /// The peer.
        peer: PeerId,
        /// Its address.
        addr: SocketAddr,
    },
    /// The session ended for another reason: closed by the application, or replaced
    /// by a new handshake from the same address (a restarted peer).
    Closed {
        /// The peer.
        peer: PeerId,
        /// Its address.
        addr: SocketAddr,
    },
    /// Anything else the session reported: lost reliable sequences
    /// ([`StreamLoss`](netmesh_session::Event::StreamLoss)), unconfirmed delivery to a
    /// net-mesh node, the peer's kind, re-keys, grant stalls.
    Session {
        /// The peer.
        peer: PeerId,
        /// What the session said.
        event: netmesh_session::Event,
    },
}

/// One authenticated data packet from a peer: its header and events, zero copy (the
/// events are slices of the receive buffer the packet was decrypted in).
#[derive(Clone)]
pub struct Delivery {
    pub(crate) peer: PeerId,
    pub(crate) addr: SocketAddr,
    pub(crate) packet: OpenedPacket,
}

impl Delivery {
    /// The peer that sent it.
    #[must_use]
    pub fn peer(&self) -> PeerId {
        self.peer
    }

    /// The address it came from.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The stream it belongs to.
    #[must_use]
    pub fn stream_id(&self) -> u64 {
        self.packet.header().stream_id
    }

    /// Its sequence number on the stream.
    #[must_use]
    pub fn sequence(&self) -> u64 {
        self.packet.header().sequence
    }

    /// Its header.
    #[must_use]
    pub fn header(&self) -> &NetHeader {
        self.packet.header()
    }

    /// How many events it carries.
    #[must_use]
    pub fn event_count(&self) -> usize {
        self.packet.event_count()
    }

    /// Its events, each a zero-copy `Bytes` slice.
    pub fn events(&self) -> OwnedEvents {
        self.packet.events()
    }

    /// Its events, borrowed: no reference count per event, so the cheapest way to read
    /// them where they need not outlive the delivery.
    pub fn event_slices(&self) -> impl Iterator<Item = &[u8]> + '_ {
        // The frames were validated when the packet was opened; `flatten` only drops
        // the error item a walk over unvalidated bytes could yield.
        FrameCodec::iter(self.packet.payload()).flatten()
    }

    /// The opened packet itself.
    #[must_use]
    pub fn packet(&self) -> &OpenedPacket {
        &self.packet
    }

    /// Takes the opened packet out.
    #[must_use]
    pub fn into_packet(self) -> OpenedPacket {
        self.packet
    }
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("peer", &self.peer)
            .field("addr", &self.addr)
            .field("stream_id", &self.stream_id())
            .field("sequence", &self.sequence())
            .field("events", &self.event_count())
            .finish()
    }
}
