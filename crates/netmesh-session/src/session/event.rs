//! What a session tells its owner: [`Event`]s, its [`SessionState`] and its peer's
//! [`PeerKind`].

use std::time::Duration;

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionState {
    /// An initiator waiting for msg2.
    Handshaking,
    /// Keys agreed: events flow both ways.
    Established,
    /// The handshake timed out or the session was closed; it sends nothing more.
    Closed,
}

/// What the session knows about the implementation at the other end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PeerKind {
    /// Not known yet: counter credit applies with an implicit window until the grace
    /// period ends.
    Unknown,
    /// A netmesh peer (it sent a marked heartbeat): counter credit, ACK/NACK, reliable
    /// streams and re-keys.
    Netmesh,
    /// A net-mesh 0.23 node: only events, heartbeats (and grants to a `MeshNode`); no
    /// counter credit, nothing retransmitted.
    NetMesh,
}

/// Something that happened in the session, drained with
/// [`Session::poll_event`](crate::Session::poll_event).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The handshake completed (or a responder session was created): events may flow.
    Established {
        /// The session id both sides derived.
        session_id: u64,
    },
    /// The initiator's handshake got no valid msg2 within the handshake timeout; the
    /// session is closed.
    HandshakeTimedOut,
    /// The peer's kind became known.
    PeerKind(PeerKind),
    /// Nothing authenticated has arrived for the idle timeout. Reported once per silence;
    /// the session stays usable (the owner decides whether to drop it).
    PeerSilent {
        /// How long the peer has been silent.
        silent_for: Duration,
    },
    /// Events of a reliable stream are lost for good: sequences
    /// `first_sequence..first_sequence + count` will never be delivered. Reported on the
    /// sending side (a NACKed packet had left the retransmit buffer) and on the receiving
    /// side (the sender said so with a SKIP).
    StreamLoss {
        /// The stream.
        stream_id: u64,
        /// The first lost sequence.
        first_sequence: u64,
        /// How many consecutive sequences.
        count: u64,
    },
    /// Reliable packets were sent to a peer that does not acknowledge (net-mesh):
    /// their delivery is unconfirmed. Reported once per stream.
    DeliveryUnconfirmed {
        /// The stream.
        stream_id: u64,
    },
    /// A stream's byte window stalled longer than the stall timeout and was reopened.
    GrantStalled {
        /// The stream.
        stream_id: u64,
    },
    /// A re-key completed: the session now seals under new keys, counters from 0.
    Rekeyed {
        /// The new session id.
        session_id: u64,
    },
    /// The TX counter reached the re-key threshold and this session cannot re-key
    /// in-session (it is a responder waiting for its peer, or the peer is net-mesh, which
    /// ignores handshakes once a session exists). The owner should replace the session
    /// with a new handshake before sending fails with
    /// [`SendError::CounterExhausted`](crate::SendError::CounterExhausted).
    NeedsRekey,
}
