//! Errors of the endpoint: binding ([`BindError`]), connecting ([`ConnectError`]) and
//! sending ([`SendError`]).

use std::io;
use std::net::SocketAddr;

use netmesh_session::HandshakeError;

/// Why [`Endpoint::bind`](crate::Endpoint::bind) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// A socket could not be created, configured or bound.
    #[error("cannot bind {addr}: {source}")]
    Socket {
        /// The address asked for.
        addr: SocketAddr,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// A thread could not be started.
    #[error("cannot start the endpoint's {what} thread: {source}")]
    Thread {
        /// Which thread.
        what: &'static str,
        /// What the system said.
        #[source]
        source: io::Error,
    },
}

/// Why [`Endpoint::connect`](crate::Endpoint::connect) did not give an established
/// session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The handshake could not be started (the Noise state could not be built).
    #[error("cannot start the handshake: {0}")]
    Handshake(#[source] HandshakeError),
    /// No valid msg2 arrived in time (the session's handshake timeout, or the timeout
    /// given to `connect`, whichever came first).
    #[error("handshake with {0} timed out")]
    TimedOut(SocketAddr),
    /// A handshake with this address is already in progress from another call.
    #[error("a handshake with {0} is already in progress")]
    InProgress(SocketAddr),
    /// msg1 could not be sent.
    #[error("cannot send the handshake to {addr}: {source}")]
    Io {
        /// The peer's address.
        addr: SocketAddr,
        /// What the system said.
        #[source]
        source: io::Error,
    },
}

/// Why [`Peer::send`](crate::Peer::send) did not hand every event to the kernel.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The session refused (not established, closed, reserved stream, events too large,
    /// counter used up). `sent` events were sent before.
    #[error("session refused after {sent} events: {source}")]
    Session {
        /// Events of the call that were sent before the refusal.
        sent: usize,
        /// The session's reason.
        #[source]
        source: netmesh_session::SendError,
    },
    /// Flow control held the rest back longer than the timeout (the receiver grants no
    /// credit, or its ACKs do not come). `sent` events were sent before.
    #[error("flow control: no credit within the timeout after {sent} events")]
    TimedOut {
        /// Events of the call that were sent before the wait.
        sent: usize,
    },
    /// The peer was dropped (silent, closed, replaced) or the endpoint closed.
    #[error("the peer's session is closed")]
    PeerClosed,
    /// The kernel refused a datagram. The session counted its packets as sent (a
    /// reliable stream recovers them by NACK); `sent` events were handed over before.
    #[error("UDP send failed after {sent} events: {source}")]
    Io {
        /// Events of the call handed to the kernel before the failure.
        sent: usize,
        /// What the system said.
        #[source]
        source: io::Error,
    },
}
