//! net-mesh 0.23's handshake: `Noise_NKpsk0_25519_ChaChaPoly_BLAKE2s`, one message each
//! way inside a HANDSHAKE packet, then net-mesh's key schedule.
//!
//! The initiator knows the responder's static public key and both share a PSK. msg1
//! (`psk, e, es` with an empty payload) and msg2 (`e, ee`, empty payload) are 48 bytes
//! each and travel as 116-byte datagrams: a 68-byte header (flags HANDSHAKE, payload_len
//! 48, every other field zero) and the message in the clear.
//!
//! Every check that needs no key runs before any Noise state is touched, and Noise state
//! only ever lives inside one call: the [`Initiator`] keeps what it needs to rebuild its
//! state (its ephemeral secret, the PSK, the prologue), so a refused msg2 leaves it
//! exactly as it was, and the [`Responder`] keeps nothing per msg1.
//!
//! Secrets: our copies (static secret, PSK, ephemeral secret, handshake hash, session
//! keys) live in buffers wiped on drop. snow 0.10 does not wipe its own `HandshakeState`
//! (private keys, PSK, chaining key) when it is dropped, nor does blake2 0.10 wipe a MAC
//! state; keeping each snow state inside one call bounds how long those copies exist,
//! but they are left in freed memory.

use std::fmt;

use bytes::Bytes;
use netmesh_wire::{NetHeader, WireError, HEADER_SIZE};
use snow::params::NoiseParams;
use snow::{Builder, HandshakeState};
use zeroize::Zeroizing;

use crate::kdf;
use crate::keys::{
    is_low_order, random_secret, Prologue, Psk, PublicKey, SessionKeys, StaticKeypair, KEY_LEN,
};

/// Bytes of each Noise message (msg1 and msg2).
pub const HANDSHAKE_MESSAGE_LEN: usize = 48;

/// Bytes of each handshake datagram: the header and one Noise message.
pub const HANDSHAKE_DATAGRAM_LEN: usize = HEADER_SIZE + HANDSHAKE_MESSAGE_LEN;

/// The Noise protocol name, as net-mesh 0.23 uses it.
pub const NOISE_PROTOCOL: &str = "Noise_NKpsk0_25519_ChaChaPoly_BLAKE2s";

/// Room for a message's decrypted payload; ours are empty, snow wants a buffer anyway.
const PAYLOAD_ROOM: usize = 16;

/// Why a handshake could not start or a handshake message was refused. Refusing a
/// message never changes the state of the side that refused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The datagram is not a packet: too short for a header, bad magic or version, or a
    /// declared length over its cap.
    #[error("malformed packet header: {0}")]
    MalformedHeader(#[source] WireError),
    /// A well-formed packet without the HANDSHAKE flag (a data packet or heartbeat).
    #[error("not a handshake packet (flags {flags:#04x})")]
    NotHandshake {
        /// The header's flags.
        flags: u8,
    },
    /// A handshake header byte that must be zero (or, for the flags, exactly HANDSHAKE)
    /// is not.
    #[error("handshake header byte {offset} is {value:#04x}, expected {expected:#04x}")]
    UnexpectedHeaderByte {
        /// Offset of the first such byte in the header.
        offset: usize,
        /// The byte found.
        value: u8,
        /// The byte a handshake header has there.
        expected: u8,
    },
    /// The header declares a message that is not 48 bytes.
    #[error("handshake message declared as {found} bytes, expected 48")]
    WrongMessageLength {
        /// The header's payload_len.
        found: usize,
    },
    /// The datagram is not 116 bytes (header and a 48-byte message).
    #[error("handshake datagram is {actual} bytes, expected {expected}")]
    WrongLength {
        /// [`HANDSHAKE_DATAGRAM_LEN`].
        expected: usize,
        /// The datagram's length.
        actual: usize,
    },
    /// The peer's ephemeral key in the message has small order: a DH with it is zero.
    #[error("the message's ephemeral key has small order")]
    LowOrderEphemeral,
    /// The responder's static key given to [`Initiator::new`] has small order.
    #[error("the responder's public key has small order")]
    LowOrderResponderKey,
    /// The message did not authenticate: a different PSK, prologue or responder key, a
    /// message from another handshake, or corrupted bytes.
    #[error("handshake message failed to authenticate")]
    AuthFailed,
    /// The initiator already completed with a msg2; it takes no other.
    #[error("the handshake is already complete")]
    AlreadyComplete,
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed")]
    RandomUnavailable,
    /// snow refused a step that cannot fail with our fixed parameters and sizes.
    #[error("noise library failure in {step}")]
    Internal {
        /// Which step.
        step: &'static str,
    },
}

/// A fresh ephemeral secret; the generator is the only thing that can fail.
fn fresh_ephemeral() -> Result<Zeroizing<[u8; KEY_LEN]>, HandshakeError> {
    random_secret().map_err(|_| HandshakeError::RandomUnavailable)
}

/// Checks a datagram is a well-formed handshake packet carrying one Noise message and
/// returns the message. Needs no key, changes nothing.
fn handshake_message(datagram: &[u8]) -> Result<&[u8; HANDSHAKE_MESSAGE_LEN], HandshakeError> {
    let header = NetHeader::parse(datagram).map_err(HandshakeError::MalformedHeader)?;
    if !header.flags.is_handshake() {
        return Err(HandshakeError::NotHandshake {
            flags: header.flags.bits(),
        });
    }
    let expected = NetHeader::handshake(header.payload_len).to_bytes();
    if let Some(offset) = (0..HEADER_SIZE).find(|&i| datagram[i] != expected[i]) {
        return Err(HandshakeError::UnexpectedHeaderByte {
            offset,
            value: datagram[offset],
            expected: expected[offset],
        });
    }
    if usize::from(header.payload_len) != HANDSHAKE_MESSAGE_LEN {
        return Err(HandshakeError::WrongMessageLength {
            found: usize::from(header.payload_len),
        });
    }
    let message = datagram[HEADER_SIZE..]
        .try_into()
        .map_err(|_| HandshakeError::WrongLength {
            expected: HANDSHAKE_DATAGRAM_LEN,
            actual: datagram.len(),
        })?;
    Ok(message)
}

/// The Noise message's leading ephemeral key must not have small order.
fn check_ephemeral(message: &[u8; HANDSHAKE_MESSAGE_LEN]) -> Result<(), HandshakeError> {
    let mut ephemeral = [0u8; KEY_LEN];
    ephemeral.copy_from_slice(&message[..KEY_LEN]);
    if is_low_order(&ephemeral) {
        return Err(HandshakeError::LowOrderEphemeral);
    }
    Ok(())
}

/// A handshake datagram around one Noise message.
fn datagram_of(message: &[u8; HANDSHAKE_MESSAGE_LEN]) -> [u8; HANDSHAKE_DATAGRAM_LEN] {
    let mut datagram = [0u8; HANDSHAKE_DATAGRAM_LEN];
    #[allow(clippy::cast_possible_truncation)] // 48
    let header = NetHeader::handshake(HANDSHAKE_MESSAGE_LEN as u16).to_bytes();
    datagram[..HEADER_SIZE].copy_from_slice(&header);
    datagram[HEADER_SIZE..].copy_from_slice(message);
    datagram
}

fn noise_params() -> Result<NoiseParams, HandshakeError> {
    NOISE_PROTOCOL
        .parse()
        .map_err(|_| HandshakeError::Internal {
            step: "protocol name",
        })
}

/// Writes this side's next message (empty payload), which must be 48 bytes.
fn write_message(
    state: &mut HandshakeState,
) -> Result<[u8; HANDSHAKE_MESSAGE_LEN], HandshakeError> {
    let mut message = [0u8; HANDSHAKE_MESSAGE_LEN];
    match state.write_message(&[], &mut message) {
        Ok(HANDSHAKE_MESSAGE_LEN) => Ok(message),
        _ => Err(HandshakeError::Internal {
            step: "write_message",
        }),
    }
}

/// Reads the peer's message; every failure at this point is a failed authentication
/// (lengths and header were checked before).
fn read_message(
    state: &mut HandshakeState,
    message: &[u8; HANDSHAKE_MESSAGE_LEN],
) -> Result<(), HandshakeError> {
    let mut payload = [0u8; PAYLOAD_ROOM];
    match state.read_message(message, &mut payload) {
        Ok(0) => Ok(()),
        Ok(_) => Err(HandshakeError::Internal {
            step: "read_message payload",
        }),
        Err(_) => Err(HandshakeError::AuthFailed),
    }
}

/// The final handshake hash, copied into a buffer wiped on drop.
fn handshake_hash(state: &HandshakeState) -> Result<Zeroizing<[u8; KEY_LEN]>, HandshakeError> {
    if !state.is_handshake_finished() {
        return Err(HandshakeError::Internal {
            step: "handshake not finished",
        });
    }
    let mut h = Zeroizing::new([0u8; KEY_LEN]);
    let hash = state.get_handshake_hash();
    if hash.len() != KEY_LEN {
        return Err(HandshakeError::Internal {
            step: "handshake hash length",
        });
    }
    h.copy_from_slice(hash);
    Ok(h)
}

/// The initiator's side of a handshake: it prepares msg1 at creation, then accepts the
/// first msg2 that authenticates. Any msg2 refused leaves it unchanged.
///
/// # Examples
///
/// ```
/// use netmesh_session::{Initiator, Prologue, Psk, Responder, StaticKeypair};
///
/// let server = StaticKeypair::generate()?;
/// let psk = Psk::new([7; 32]);
/// let prologue = Prologue::Mesh { initiator_id: 1, responder_id: 2 };
///
/// let mut initiator = Initiator::new(&server.public_key(), &psk, &prologue)?;
/// let responder = Responder::new(&server, &psk);
/// let (server_keys, msg2) = responder.respond(initiator.msg1_datagram(), &prologue)?;
/// let client_keys = initiator.read_msg2(&msg2)?;
///
/// assert_eq!(client_keys.session_id(), server_keys.session_id());
/// assert_eq!(client_keys.tx_key(), server_keys.rx_key());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Initiator {
    responder: PublicKey,
    psk: Psk,
    prologue: Vec<u8>,
    ephemeral: Zeroizing<[u8; KEY_LEN]>,
    msg1: [u8; HANDSHAKE_DATAGRAM_LEN],
    complete: bool,
}

impl Initiator {
    /// Starts a handshake with the responder whose static key is `responder`, with a
    /// fresh random ephemeral key, and prepares msg1.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::LowOrderResponderKey`] or
    /// [`HandshakeError::RandomUnavailable`].
    pub fn new(
        responder: &PublicKey,
        psk: &Psk,
        prologue: &Prologue,
    ) -> Result<Self, HandshakeError> {
        Self::with_ephemeral(responder, psk, prologue, fresh_ephemeral()?)
    }

    /// As [`new`](Self::new) with a fixed ephemeral secret, for known-answer tests only:
    /// reusing an ephemeral key across handshakes gives the same session keys again.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    #[doc(hidden)]
    pub fn new_with_ephemeral_for_testing_only(
        responder: &PublicKey,
        psk: &Psk,
        prologue: &Prologue,
        ephemeral: &[u8; KEY_LEN],
    ) -> Result<Self, HandshakeError> {
        Self::with_ephemeral(responder, psk, prologue, Zeroizing::new(*ephemeral))
    }

    fn with_ephemeral(
        responder: &PublicKey,
        psk: &Psk,
        prologue: &Prologue,
        ephemeral: Zeroizing<[u8; KEY_LEN]>,
    ) -> Result<Self, HandshakeError> {
        if is_low_order(&responder.0) {
            return Err(HandshakeError::LowOrderResponderKey);
        }
        let mut initiator = Self {
            responder: *responder,
            psk: psk.clone(),
            prologue: prologue.bytes(),
            ephemeral,
            msg1: [0; HANDSHAKE_DATAGRAM_LEN],
            complete: false,
        };
        let (_, msg1) = initiator.state_after_msg1()?;
        initiator.msg1 = datagram_of(&msg1);
        Ok(initiator)
    }

    /// A fresh Noise state that has written msg1 (the same bytes every time: the
    /// ephemeral key is fixed).
    fn state_after_msg1(
        &self,
    ) -> Result<(HandshakeState, [u8; HANDSHAKE_MESSAGE_LEN]), HandshakeError> {
        let builder = Builder::new(noise_params()?)
            .psk(0, self.psk.bytes())
            .and_then(|b| b.prologue(&self.prologue))
            .and_then(|b| b.remote_public_key(&self.responder.0))
            .map_err(|_| HandshakeError::Internal { step: "builder" })?;
        let mut state = builder
            .fixed_ephemeral_key_for_testing_only(&self.ephemeral[..])
            .build_initiator()
            .map_err(|_| HandshakeError::Internal {
                step: "build_initiator",
            })?;
        let msg1 = write_message(&mut state)?;
        Ok((state, msg1))
    }

    /// The msg1 datagram (116 bytes) to send to the responder, again on a retry.
    #[must_use]
    pub fn msg1_datagram(&self) -> &[u8] {
        &self.msg1
    }

    /// Whether a msg2 has been accepted.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Reads the responder's msg2 datagram and returns the session keys. A datagram that
    /// is refused changes nothing: the genuine msg2 is still accepted afterwards.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::AlreadyComplete`] after a msg2 was accepted; otherwise the
    /// datagram's checks in order: [`MalformedHeader`](HandshakeError::MalformedHeader),
    /// [`NotHandshake`](HandshakeError::NotHandshake),
    /// [`UnexpectedHeaderByte`](HandshakeError::UnexpectedHeaderByte),
    /// [`WrongMessageLength`](HandshakeError::WrongMessageLength),
    /// [`WrongLength`](HandshakeError::WrongLength),
    /// [`LowOrderEphemeral`](HandshakeError::LowOrderEphemeral),
    /// [`AuthFailed`](HandshakeError::AuthFailed).
    pub fn read_msg2(&mut self, datagram: &[u8]) -> Result<SessionKeys, HandshakeError> {
        if self.complete {
            return Err(HandshakeError::AlreadyComplete);
        }
        let message = handshake_message(datagram)?;
        check_ephemeral(message)?;
        let (mut state, _) = self.state_after_msg1()?;
        read_message(&mut state, message)?;
        let h = handshake_hash(&state)?;
        self.complete = true;
        Ok(kdf::session_keys(&h, true))
    }
}

impl fmt::Debug for Initiator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Initiator")
            .field("responder", &self.responder)
            .field("prologue_len", &self.prologue.len())
            .field("complete", &self.complete)
            .finish_non_exhaustive()
    }
}

/// The responder's side: answers each msg1 with msg2 and the session keys. It keeps no
/// state per msg1, so a refused datagram changes nothing; the caller decides whether a
/// peer that already has a session may handshake again.
///
/// # Repeated msg1
///
/// Each answer uses a fresh ephemeral key, so answering the same msg1 twice gives two
/// different sessions, and the initiator keeps whichever msg2 reaches it first. A msg1
/// arrives again when it is duplicated on the way or when the initiator resends it
/// because msg2 was lost (an [`Initiator`] resends the same bytes). The caller should
/// keep, per peer, the msg1 datagram that made the current session and the msg2 it
/// sent: the same msg1 again gets the same msg2 again and leaves the session as it is;
/// a different msg1 that authenticates is a new handshake (net-mesh initiators retry
/// with a fresh ephemeral key) and replaces it.
///
/// # Examples
///
/// ```
/// use netmesh_session::{HandshakeError, Prologue, Psk, Responder, StaticKeypair};
///
/// let responder = Responder::new(&StaticKeypair::generate()?, &Psk::new([1; 32]));
/// assert!(matches!(
///     responder.respond(&[0; 116], &Prologue::Empty),
///     Err(HandshakeError::MalformedHeader(_))
/// ));
/// # Ok::<(), netmesh_session::KeyError>(())
/// ```
#[derive(Clone)]
pub struct Responder {
    keypair: StaticKeypair,
    psk: Psk,
}

impl Responder {
    /// A responder with this static keypair and PSK.
    #[must_use]
    pub fn new(keypair: &StaticKeypair, psk: &Psk) -> Self {
        Self {
            keypair: keypair.clone(),
            psk: psk.clone(),
        }
    }

    /// The static public key initiators must know.
    #[must_use]
    pub fn public_key(&self) -> PublicKey {
        self.keypair.public_key()
    }

    /// Answers a msg1 datagram: the session keys and the msg2 datagram (116 bytes) to
    /// send back. `prologue` must be the one the initiator used.
    ///
    /// # Errors
    ///
    /// The datagram's checks in order: [`MalformedHeader`](HandshakeError::MalformedHeader),
    /// [`NotHandshake`](HandshakeError::NotHandshake),
    /// [`UnexpectedHeaderByte`](HandshakeError::UnexpectedHeaderByte),
    /// [`WrongMessageLength`](HandshakeError::WrongMessageLength),
    /// [`WrongLength`](HandshakeError::WrongLength),
    /// [`LowOrderEphemeral`](HandshakeError::LowOrderEphemeral),
    /// [`AuthFailed`](HandshakeError::AuthFailed) (a different PSK, prologue or
    /// responder key); [`RandomUnavailable`](HandshakeError::RandomUnavailable).
    pub fn respond(
        &self,
        datagram: &[u8],
        prologue: &Prologue,
    ) -> Result<(SessionKeys, Bytes), HandshakeError> {
        let message = handshake_message(datagram)?;
        check_ephemeral(message)?;
        self.respond_checked(message, prologue, &fresh_ephemeral()?)
    }

    /// As [`respond`](Self::respond) with a fixed ephemeral secret, for known-answer
    /// tests only.
    ///
    /// # Errors
    ///
    /// As [`respond`](Self::respond).
    #[doc(hidden)]
    pub fn respond_with_ephemeral_for_testing_only(
        &self,
        datagram: &[u8],
        prologue: &Prologue,
        ephemeral: &[u8; KEY_LEN],
    ) -> Result<(SessionKeys, Bytes), HandshakeError> {
        let message = handshake_message(datagram)?;
        check_ephemeral(message)?;
        self.respond_checked(message, prologue, &Zeroizing::new(*ephemeral))
    }

    fn respond_checked(
        &self,
        msg1: &[u8; HANDSHAKE_MESSAGE_LEN],
        prologue: &Prologue,
        ephemeral: &Zeroizing<[u8; KEY_LEN]>,
    ) -> Result<(SessionKeys, Bytes), HandshakeError> {
        let prologue = prologue.bytes();
        let builder = Builder::new(noise_params()?)
            .psk(0, self.psk.bytes())
            .and_then(|b| b.prologue(&prologue))
            .and_then(|b| b.local_private_key(self.keypair.secret_bytes()))
            .map_err(|_| HandshakeError::Internal { step: "builder" })?;
        let mut state = builder
            .fixed_ephemeral_key_for_testing_only(&ephemeral[..])
            .build_responder()
            .map_err(|_| HandshakeError::Internal {
                step: "build_responder",
            })?;
        read_message(&mut state, msg1)?;
        let msg2 = write_message(&mut state)?;
        let h = handshake_hash(&state)?;
        Ok((
            kdf::session_keys(&h, false),
            Bytes::copy_from_slice(&datagram_of(&msg2)),
        ))
    }
}

impl fmt::Debug for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responder")
            .field("public", &self.keypair.public_key())
            .finish_non_exhaustive()
    }
}
