//! netmesh sessions, sans-IO: net-mesh 0.23's Noise handshake and key schedule, a
//! [`Session`] owning both directions of a peer link, flow control and reliable streams.
//!
//! No sockets, threads or clock of its own: datagrams in, datagrams out, time passed in
//! (as quinn-proto and boringtun's `Tunn` do). `netmesh-udp` drives it over real sockets.

#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod handshake;
mod kdf;
mod keys;
mod session;

pub mod reliable;
#[doc(hidden)]
pub mod sim;

pub use handshake::{
    HandshakeError, Initiator, Responder, HANDSHAKE_DATAGRAM_LEN, HANDSHAKE_MESSAGE_LEN,
    NOISE_PROTOCOL,
};
pub use keys::{
    KeyError, Prologue, Psk, PublicKey, SessionKeys, StaticKeypair, KEY_LEN, MESH_PROLOGUE_LABEL,
};
pub use session::{
    Blocked, Delivery, Event, IncomingDatagram, PeerKind, Received, RecvError, Role, SendError,
    Sent, Session, SessionConfig, SessionState, SessionStats, ACK_SUBPROTOCOL, CONTROL_STREAM,
    CREDIT_SUBPROTOCOL, GRANT_SUBPROTOCOL, MAX_CREDIT_WINDOW, NETMESH_HELLO_SUBPROTOCOL,
    SKIP_SUBPROTOCOL,
};
