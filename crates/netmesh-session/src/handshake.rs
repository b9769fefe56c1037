//! net-mesh 0.23's handshake: Noise_NKpsk0_25519_ChaChaPoly_BLAKE2s, one message each
//! way inside a HANDSHAKE packet, then net-mesh's key schedule.

/// Bytes of each Noise message (msg1 and msg2): 116-byte datagrams with the header.
pub const HANDSHAKE_MESSAGE_LEN: usize = 48;

/// Why a handshake message was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {}

/// The initiator's side of a handshake in progress.
#[derive(Debug)]
pub struct Initiator {}

/// The responder's side: answers msg1 with msg2.
#[derive(Debug)]
pub struct Responder {}
