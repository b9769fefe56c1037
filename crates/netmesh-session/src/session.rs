//! A session: both directions of one peer link, sans-IO.

mod config;
mod error;
mod event;
mod received;
mod stats;
mod streams;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use netmesh_wire::PacketFlags;

pub use config::{SessionConfig, MAX_CREDIT_WINDOW};
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
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {}

impl Session {
    /// Starts a handshake as initiator towards the responder whose static key is `peer`.
    /// Returns the session (in [`SessionState::Handshaking`]) and msg1, the datagram to
    /// send. The same msg1 is re-sent through [`poll_transmit`](Self::poll_transmit) every
    /// [`handshake_retry`](SessionConfig::handshake_retry) until msg2 arrives or
    /// [`handshake_timeout`](SessionConfig::handshake_timeout) passes.
    ///
    /// # Errors
    ///
    /// [`HandshakeError`] when the Noise state cannot be built.
    pub fn connect(
        config: SessionConfig,
        peer: &PublicKey,
        psk: &Psk,
        prologue: &Prologue,
        now: Instant,
    ) -> Result<(Self, Bytes), HandshakeError> {
        let _ = (config, peer, psk, prologue, now);
        todo!()
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
        let _ = (config, responder, msg1, prologue, now);
        todo!()
    }

    /// An established session from keys agreed elsewhere (tests, benches). It cannot
    /// re-key by itself (no handshake material): at the threshold it reports
    /// [`Event::NeedsRekey`].
    #[must_use]
    pub fn from_keys(config: SessionConfig, keys: SessionKeys, role: Role, now: Instant) -> Self {
        let _ = (config, keys, role, now);
        todo!()
    }

    /// Where the session is in its life.
    #[must_use]
    pub fn state(&self) -> SessionState {
        todo!()
    }

    /// Whether events may be sent.
    #[must_use]
    pub fn is_established(&self) -> bool {
        self.state() == SessionState::Established
    }

    /// The current session id (the one packets are sealed under), once established.
    #[must_use]
    pub fn session_id(&self) -> Option<u64> {
        todo!()
    }

    /// Which side of the handshake this session was on.
    #[must_use]
    pub fn role(&self) -> Role {
        todo!()
    }

    /// What the session knows about its peer's implementation.
    #[must_use]
    pub fn peer_kind(&self) -> PeerKind {
        todo!()
    }

    /// Builds one data packet of `events` on `stream_id` (flags: `RELIABLE` makes the
    /// stream reliable towards a netmesh peer; other flags are passed through).
    ///
    /// # Errors
    ///
    /// [`SendError::Blocked`] when flow control holds the packet back (nothing was built,
    /// no counter used); [`SendError::NotEstablished`], [`SendError::Closed`],
    /// [`SendError::ReservedStream`], [`SendError::Build`] when the events do not fit one
    /// packet, [`SendError::CounterExhausted`].
    pub fn send(
        &self,
        stream_id: u64,
        events: &[Bytes],
        flags: PacketFlags,
    ) -> Result<Sent, SendError> {
        let _ = (stream_id, events, flags);
        todo!()
    }

    /// Builds as many packets as `events` need (consecutive sequences on `stream_id`),
    /// while flow control allows, pushing each into `out`. Returns how many events were
    /// taken: all of them, or fewer when flow control stopped the batch (send the rest
    /// later).
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send), when not even the first packet could be built;
    /// [`SendError::Build`] with `EventTooLarge` when an event cannot fit any packet.
    pub fn send_batch(
        &self,
        stream_id: u64,
        events: &[Bytes],
        flags: PacketFlags,
        out: &mut impl Extend<Sent>,
    ) -> Result<usize, SendError> {
        let _ = (stream_id, events, flags, out);
        todo!()
    }

    /// Whether a send on `stream_id` would currently pass flow control (a hint: another
    /// thread may take the credit first).
    #[must_use]
    pub fn can_send(&self, stream_id: u64) -> bool {
        let _ = stream_id;
        todo!()
    }

    /// A number that changes whenever something that can unblock a sender happens:
    /// credit or grants arrived, ACKs freed buffer space, the state changed, a timer
    /// reopened a window. A blocked sender remembers it before trying, and waits (e.g.
    /// on a `Condvar` the receiving thread notifies) until it differs.
    #[must_use]
    pub fn credit_generation(&self) -> u64 {
        todo!()
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
        datagram: impl Into<Bytes>,
        now: Instant,
    ) -> Result<Received<'_>, RecvError> {
        let _ = (datagram.into(), now);
        todo!()
    }

    /// The next datagram the session wants sent: handshake retries and replies,
    /// heartbeats, control packets (CREDIT, ACK, NACK, SKIP, grants), retransmissions and
    /// deferred packets. Call until `None` after each
    /// [`handle_datagram`](Self::handle_datagram) and
    /// [`handle_timeout`](Self::handle_timeout).
    #[must_use]
    pub fn poll_transmit(&self) -> Option<Bytes> {
        todo!()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called (`None`: no
    /// timer is armed, e.g. a closed session).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        todo!()
    }

    /// Runs every timer due at `now`: handshake retry and give-up, heartbeats, credit,
    /// gap timeout, ACK/NACK pacing, tail-loss retransmission, stall timeouts, re-key,
    /// idle detection.
    pub fn handle_timeout(&self, now: Instant) {
        let _ = now;
        todo!()
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&self) -> Option<Event> {
        todo!()
    }

    /// A snapshot of the session's counters.
    #[must_use]
    pub fn stats(&self) -> SessionStats {
        todo!()
    }

    /// Closes the session: nothing more is sent or accepted.
    pub fn close(&self) {
        todo!()
    }
}

// The owner shares one session between its sending and receiving threads.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Session>();
};

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let _ = &self.inner;
        f.debug_struct("Session").finish_non_exhaustive()
    }
}
