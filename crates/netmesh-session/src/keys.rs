//! Static X25519 keypairs, pre-shared keys, prologues and the session keys a handshake
//! produces.

use std::fmt;

use zeroize::Zeroizing;

/// An X25519 public key (32 bytes). Public, so `Debug` and `Display` print it as hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// A static X25519 keypair. The secret half is wiped on drop and never printed.
pub struct StaticKeypair {
    secret: Zeroizing<[u8; 32]>,
    public: PublicKey,
}

impl StaticKeypair {
    /// The public half.
    #[must_use]
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    #[allow(dead_code)]
    pub(crate) fn secret(&self) -> &[u8; 32] {
        &self.secret
    }
}

impl fmt::Debug for StaticKeypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticKeypair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// A 32-byte pre-shared key (Noise `psk0`). Wiped on drop, never printed.
pub struct Psk(Zeroizing<[u8; 32]>);

impl fmt::Debug for Psk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Psk(..)")
    }
}

/// The Noise prologue both sides bind into the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prologue {
    /// No prologue: net-mesh's point-to-point `NetAdapter`.
    Empty,
    /// net-mesh's `MeshNode`: `"net-handshake-v1" ‖ le64(initiator_id) ‖ le64(responder_id)`.
    Mesh {
        /// The initiator's id as written into the prologue.
        initiator_id: u64,
        /// The responder's id as written into the prologue.
        responder_id: u64,
    },
}

/// What a finished handshake yields: the session id and one key per direction.
/// Wiped on drop; `Debug` prints the session id only.
pub struct SessionKeys {
    session_id: u64,
    tx: Zeroizing<[u8; 32]>,
    rx: Zeroizing<[u8; 32]>,
}

impl SessionKeys {
    /// The session id both sides derived (`le64(h[0..8])`).
    #[must_use]
    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    /// The key this side seals with.
    #[must_use]
    pub fn tx_key(&self) -> &[u8; 32] {
        &self.tx
    }

    /// The key this side opens with.
    #[must_use]
    pub fn rx_key(&self) -> &[u8; 32] {
        &self.rx
    }
}

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionKeys")
            .field("session_id", &format_args!("{:#018x}", self.session_id))
            .finish_non_exhaustive()
    }
}
