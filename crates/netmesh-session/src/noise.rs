//! `Noise_NKpsk0_25519_ChaChaPoly_BLAKE2s` with empty payloads, and nothing else: the one
//! pattern net-mesh 0.23 uses, written out per the Noise spec (revision 34) so that every
//! secret it holds is ours to wipe.
//!
//! ```text
//! NKpsk0:
//!   <- s
//!   ...
//!   -> psk, e, es
//!   <- e, ee
//! ```
//!
//! The symmetric state (`h`, `ck`, `k`, `n`), ephemeral secrets, DH outputs and HKDF
//! outputs live in buffers wiped on drop; the HASH/HMAC/HKDF underneath (crate::kdf)
//! wipe their own state. The AEAD is RustCrypto's `chacha20poly1305`, whose cipher
//! object wipes its key on drop.

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce, Tag};
use curve25519_dalek::montgomery::MontgomeryPoint;
use zeroize::{Zeroize, Zeroizing};

use super::{HandshakeError, HANDSHAKE_MESSAGE_LEN, NOISE_PROTOCOL};
use crate::kdf;
use crate::keys::{x25519_base, KEY_LEN};

// The per-message Poly1305 key is wiped only with poly1305's `zeroize` feature (which
// gives its state a Drop impl); chacha20poly1305 does not turn it on, Cargo.toml does.
const _: () = assert!(core::mem::needs_drop::<poly1305::Poly1305>());

/// Bytes of a ChaCha20-Poly1305 tag: the whole ciphertext of an empty payload.
const TAG_LEN: usize = 16;

/// A Noise message of this pattern: an ephemeral public key, then the encrypted empty
/// payload (its tag alone).
type Message = [u8; HANDSHAKE_MESSAGE_LEN];

/// X25519 of our secret with the peer's public key, in a buffer wiped on drop.
fn dh(secret: &[u8; KEY_LEN], public: &[u8; KEY_LEN]) -> Zeroizing<[u8; KEY_LEN]> {
    let mut shared = MontgomeryPoint(*public).mul_clamped(*secret);
    let out = Zeroizing::new(shared.to_bytes());
    shared.zeroize();
    out
}

/// Noise's SymmetricState with its CipherState (`k`, `n`) folded in. In NKpsk0 the
/// first token is `psk`, so `k` is set before the first encryption and never empty.
#[derive(Clone)]
struct SymmetricState {
    h: Zeroizing<[u8; KEY_LEN]>,
    ck: Zeroizing<[u8; KEY_LEN]>,
    k: Zeroizing<[u8; KEY_LEN]>,
    n: u64,
}

impl SymmetricState {
    /// `Initialize`, the prologue and the `<- s` pre-message.
    fn new(prologue: &[u8], responder_static: &[u8; KEY_LEN]) -> Self {
        // The name is longer than HASHLEN, so h = HASH(name) (spec 5.2).
        let h = kdf::hash(&[NOISE_PROTOCOL.as_bytes()]);
        let mut state = Self {
            ck: h.clone(),
            h,
            k: Zeroizing::new([0; KEY_LEN]),
            n: 0,
        };
        state.mix_hash(prologue);
        state.mix_hash(responder_static);
        state
    }

    fn mix_hash(&mut self, data: &[u8]) {
        let next = kdf::hash(&[&self.h[..], data]);
        self.h.copy_from_slice(&next[..]);
    }

    fn mix_key(&mut self, ikm: &[u8]) {
        let [ck, k] = kdf::hkdf::<2>(&self.ck, ikm);
        self.ck = ck;
        self.k = k;
        self.n = 0;
    }

    /// `MixKeyAndHash`, for the `psk` token.
    fn mix_key_and_hash(&mut self, ikm: &[u8; KEY_LEN]) {
        let [ck, temp_h, k] = kdf::hkdf::<3>(&self.ck, ikm);
        self.ck = ck;
        self.mix_hash(&temp_h[..]);
        self.k = k;
        self.n = 0;
    }

    /// The `e` token: the ephemeral public key goes into h and, in a PSK handshake, into
    /// the key as well.
    fn mix_ephemeral(&mut self, public: &[u8; KEY_LEN]) {
        self.mix_hash(public);
        self.mix_key(public);
    }

    /// ChaChaPoly's nonce: 32 zero bits, then the little-endian counter.
    fn nonce(&self) -> Nonce {
        let mut nonce = Nonce::default();
        nonce[4..].copy_from_slice(&self.n.to_le_bytes());
        nonce
    }

    /// `EncryptAndHash` of the empty payload: its ciphertext is the tag alone.
    fn encrypt_and_hash_empty(&mut self) -> Result<[u8; TAG_LEN], HandshakeError> {
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.k[..]));
        let tag = cipher
            .encrypt_in_place_detached(&self.nonce(), &self.h[..], &mut [])
            .map_err(|_| HandshakeError::Internal { step: "encrypt" })?;
        let tag: [u8; TAG_LEN] = tag.into();
        self.n += 1;
        self.mix_hash(&tag);
        Ok(tag)
    }

    /// `DecryptAndHash` of a ciphertext that must be the tag of an empty payload.
    fn decrypt_and_hash_empty(&mut self, tag: &[u8; TAG_LEN]) -> Result<(), HandshakeError> {
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.k[..]));
        cipher
            .decrypt_in_place_detached(&self.nonce(), &self.h[..], &mut [], Tag::from_slice(tag))
            .map_err(|_| HandshakeError::AuthFailed)?;
        self.n += 1;
        self.mix_hash(tag);
        Ok(())
    }
}

/// The peer's ephemeral public key and payload tag of a message.
fn split(message: &Message) -> ([u8; KEY_LEN], [u8; TAG_LEN]) {
    let mut public = [0u8; KEY_LEN];
    let mut tag = [0u8; TAG_LEN];
    public.copy_from_slice(&message[..KEY_LEN]);
    tag.copy_from_slice(&message[KEY_LEN..]);
    (public, tag)
}

fn join(public: &[u8; KEY_LEN], tag: &[u8; TAG_LEN]) -> Message {
    let mut message = [0u8; HANDSHAKE_MESSAGE_LEN];
    message[..KEY_LEN].copy_from_slice(public);
    message[KEY_LEN..].copy_from_slice(tag);
    message
}

/// The initiator once msg1 is written: all it needs to read any number of candidate
/// msg2s, each on a copy, so a refused one changes nothing.
#[derive(Clone)]
pub(super) struct InitiatorState {
    state: SymmetricState,
    ephemeral: Zeroizing<[u8; KEY_LEN]>,
}

impl InitiatorState {
    /// Writes msg1 (`psk, e, es`, empty payload) to the responder with static key
    /// `responder`.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::Internal`] if the AEAD refuses to seal (it does not for an
    /// empty payload).
    pub(super) fn write_msg1(
        responder: &[u8; KEY_LEN],
        psk: &[u8; KEY_LEN],
        prologue: &[u8],
        ephemeral: Zeroizing<[u8; KEY_LEN]>,
    ) -> Result<(Self, Message), HandshakeError> {
        let mut state = SymmetricState::new(prologue, responder);
        state.mix_key_and_hash(psk);
        let public = x25519_base(&ephemeral);
        state.mix_ephemeral(&public);
        state.mix_key(&dh(&ephemeral, responder)[..]);
        let tag = state.encrypt_and_hash_empty()?;
        Ok((Self { state, ephemeral }, join(&public, &tag)))
    }

    /// Reads msg2 (`e, ee`, empty payload) and returns the final handshake hash. `self`
    /// is left as it was.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::AuthFailed`] if the payload tag does not verify.
    pub(super) fn read_msg2(
        &self,
        msg2: &Message,
    ) -> Result<Zeroizing<[u8; KEY_LEN]>, HandshakeError> {
        let mut state = self.state.clone();
        let (peer, tag) = split(msg2);
        state.mix_ephemeral(&peer);
        state.mix_key(&dh(&self.ephemeral, &peer)[..]);
        state.decrypt_and_hash_empty(&tag)?;
        Ok(state.h.clone())
    }
}

/// The responder's side: reads msg1 with its static keypair, writes msg2 with a fresh
/// ephemeral, and returns the final handshake hash and msg2.
///
/// # Errors
///
/// [`HandshakeError::AuthFailed`] if msg1's payload tag does not verify (a different
/// PSK, prologue or static key).
pub(super) fn respond(
    static_secret: &[u8; KEY_LEN],
    static_public: &[u8; KEY_LEN],
    psk: &[u8; KEY_LEN],
    prologue: &[u8],
    msg1: &Message,
    ephemeral: &[u8; KEY_LEN],
) -> Result<(Zeroizing<[u8; KEY_LEN]>, Message), HandshakeError> {
    let mut state = SymmetricState::new(prologue, static_public);
    state.mix_key_and_hash(psk);
    let (peer, tag) = split(msg1);
    state.mix_ephemeral(&peer);
    state.mix_key(&dh(static_secret, &peer)[..]);
    state.decrypt_and_hash_empty(&tag)?;

    let public = x25519_base(ephemeral);
    state.mix_ephemeral(&public);
    state.mix_key(&dh(ephemeral, &peer)[..]);
    let tag = state.encrypt_and_hash_empty()?;
    Ok((state.h.clone(), join(&public, &tag)))
}
