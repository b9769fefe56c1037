//! Errors of the send path ([`SendError`]) and the receive path ([`RecvError`]).

use netmesh_pool::{BuildError, OpenError};
use netmesh_wire::WireError;

use crate::HandshakeError;

/// What stands in the way of a send that may succeed later. See
/// [`Session::credit_generation`](crate::Session::credit_generation) for waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Blocked {
    /// The next counter is beyond the netmesh peer's counter credit (watermark +
    /// window): sending it could fall outside the receiver's replay window.
    Credit,
    /// The stream's byte window (net-mesh grants) is used up.
    StreamWindow,
    /// The reliable stream's retransmit buffer is full of unacknowledged packets.
    RetransmitBuffer,
}

/// Why nothing was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The handshake has not completed yet.
    #[error("the session is not established yet")]
    NotEstablished,
    /// The handshake failed or timed out, or the session was closed.
    #[error("the session is closed")]
    Closed,
    /// Out of credit: nothing was built and no counter used; retry once
    /// [`credit_generation`](crate::Session::credit_generation) has moved.
    #[error("flow control: blocked ({0:?})")]
    Blocked(Blocked),
    /// Stream id `u64::MAX` carries control messages (grants, credit) and cannot carry
    /// application events.
    #[error("stream id u64::MAX is reserved for control messages")]
    ReservedStream,
    /// The session already keeps state for `max_streams` streams.
    #[error("too many streams (max_streams reached)")]
    TooManyStreams,
    /// The events do not fit (one packet for `send`, one event per packet for batches).
    #[error("cannot build packet: {0}")]
    Build(#[source] BuildError),
    /// The TX counter reached its end (or the re-key threshold against a peer that
    /// cannot re-key in-session): the session must be replaced by a new handshake.
    #[error("the session's nonce counter is used up: a new handshake is needed")]
    CounterExhausted,
}

/// Why a datagram was refused. No refused datagram changes any state of the session
/// (its statistics aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// Not a netmesh packet at all: too short or wrong magic.
    #[error("not a netmesh packet: {0}")]
    NotNetmesh(#[source] WireError),
    /// A netmesh header that is malformed (version, lengths), or a datagram whose length
    /// does not match its header, or frames that do not match `event_count`.
    #[error("malformed packet: {0}")]
    Malformed(#[source] OpenError),
    /// A packet of another session (or with a nonce prefix that is not this session's).
    #[error("packet of another session: {0}")]
    WrongSession(#[source] OpenError),
    /// The tag did not verify.
    #[error("authentication failed")]
    AuthFailed,
    /// Authentic, but its counter was accepted before or is outside the replay window.
    #[error("replayed or outside the replay window: {0}")]
    Replayed(#[source] OpenError),
    /// A handshake datagram refused by the handshake (wrong length, bad Noise message,
    /// wrong key or PSK, unexpected in this state).
    #[error("handshake refused: {0}")]
    Handshake(#[source] HandshakeError),
    /// A handshake datagram that this session does not expect in its state (a msg2 on
    /// an established session, a msg1 on an initiator).
    #[error("unexpected handshake datagram")]
    UnexpectedHandshake,
    /// A new msg1 from the peer that is not a re-key of this session: the peer restarted,
    /// or it is a net-mesh initiator retrying with a fresh ephemeral key after losing
    /// msg2 (net-mesh retries that way). The owner should answer it with a new
    /// [`Session::accept`](crate::Session::accept) and let the new session replace this
    /// one once it authenticates.
    #[error("a new handshake from the peer (not a re-key of this session)")]
    NewHandshake,
    /// A data packet before the handshake completed.
    #[error("data packet before the session is established")]
    NotEstablished,
    /// An authenticated netmesh control message whose payload is malformed. The packet's
    /// counter was admitted (it authenticated), nothing else changed.
    #[error("malformed control message (subprotocol {subprotocol:#06x})")]
    MalformedControl {
        /// The header's subprotocol id.
        subprotocol: u16,
    },
    /// The session is closed.
    #[error("the session is closed")]
    Closed,
}

impl RecvError {
    /// Sorts an [`OpenError`] into the kind of refusal it is.
    pub(crate) fn from_open(error: OpenError) -> Self {
        match error {
            OpenError::MalformedHeader(
                wire @ (WireError::TooShort { .. } | WireError::BadMagic { .. }),
            ) => Self::NotNetmesh(wire),
            OpenError::WrongSession { .. } | OpenError::WrongNoncePrefix { .. } => {
                Self::WrongSession(error)
            }
            OpenError::AuthFailed => Self::AuthFailed,
            OpenError::Replayed { .. }
            | OpenError::TooOld { .. }
            | OpenError::TooFarAhead { .. } => Self::Replayed(error),
            // The reserved counter (u64::MAX, which no sender uses) lands here with the
            // other malformed packets: no variant is named, so this keeps compiling
            // whatever the pool calls it.
            _ => Self::Malformed(error),
        }
    }
}
