//! netmesh sessions, sans-IO: net-mesh 0.23's Noise handshake and key schedule, a
//! [`Session`] owning both directions of a peer link, flow control and reliable streams.
//!
//! No sockets, threads or clock of its own: datagrams in, datagrams out, time passed in
//! (as quinn-proto and boringtun's `Tunn` do). `netmesh-udp` drives it over real sockets.
//!
//! # Driving a session
//!
//! An owner (an endpoint) does five things with a [`Session`]:
//!
//! 1. create it: [`Session::connect`] (initiator: send the msg1 it returns) or
//!    [`Session::accept`] (responder, from a received msg1: send the msg2 it returns);
//! 2. send events from any number of threads with [`Session::send`] or
//!    [`Session::send_batch`] (or their `_events` forms, which take slices of your own
//!    buffers), and put each returned datagram on the wire; on
//!    [`SendError::Blocked`] wait until [`Session::credit_generation`] moves;
//! 3. hand every datagram from the peer to [`Session::handle_datagram`], or the
//!    datagrams of one receive call to one [`Session::receive_batch`] (what is per
//!    session is then done once per batch), and act on the [`Received`] each returns
//!    (events of a fire-and-forget stream, or a [`Delivery`] of in-order packets of a
//!    reliable stream to drain);
//! 4. after each `handle_datagram` and `handle_timeout`, send everything
//!    [`Session::poll_transmit`] returns and drain [`Session::poll_delivery`];
//! 5. call [`Session::handle_timeout`] at [`Session::poll_timeout`], and read
//!    [`Session::poll_event`] (established, timed out, peer silent, losses, re-keys).
//!
//! # What the peer is
//!
//! A net-mesh 0.23 node gets events and heartbeats only. Right after establishment
//! each netmesh side sends heartbeats marked with [`NETMESH_HELLO_SUBPROTOCOL`]; a
//! session that hears one knows its peer is netmesh and from then on uses counter
//! credit (CREDIT), acknowledgements (ACK, NACK, SKIP) and re-keys with it. A peer that
//! sends an unmarked heartbeat, or nothing marked within
//! [`SessionConfig::peer_detect_grace`], is taken for net-mesh. See `PROTOCOL.md` in
//! this crate for the control messages and the decisions behind them.
//!
//! # Thread safety and nonces
//!
//! Every method takes `&self`. Senders share the TX pool's counter (leases of 16 per
//! thread), so no (key, counter) pair is ever sealed twice; counter credit keeps every
//! counter a netmesh receiver sees inside its 1024-counter replay window. A re-key
//! replaces the TX pool with one under the new key, counters from 0; the old pool is
//! dropped, never reset.
//!
//! `reliable` (per-stream reorder and retransmit state) and `sim` (a seeded simulated
//! link for tests) are public building blocks the session is made of.

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
    Blocked, Delivery, Event, IncomingDatagram, PeerKind, ReceiveBatch, Received, RecvError, Role,
    SendError, Sent, Session, SessionConfig, SessionState, SessionStats, ACK_SUBPROTOCOL,
    CONTROL_STREAM, CREDIT_SUBPROTOCOL, GRANT_SUBPROTOCOL, MAX_CREDIT_WINDOW,
    NETMESH_HELLO_SUBPROTOCOL, SKIP_SUBPROTOCOL,
};
