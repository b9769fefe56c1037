//! ChaCha20-Poly1305 packet cipher for netmesh: counter nonces, a replay window and two
//! interchangeable AEAD backends.
//!
//! Scope: this crate seals and opens payloads given a key, a session id, a counter and
//! associated data. It takes the nonce layout and the sizes from `netmesh-wire` and
//! knows nothing else of the packet header, and does no networking. It never allocates on the seal and open paths.
//!
//! - [`PacketCipher`] seals (encrypts and tags) and opens with the nonce
//!   `session_prefix_from_id(session_id) ‖ counter.to_le_bytes()` (see [`nonce_for`]),
//!   taking each counter from a [`TxCounter`] that several ciphers may share.
//! - [`ReplayWindow`] admits each received counter at most once, within a window of
//!   [`REPLAY_WINDOW_SIZE`] counters.
//! - [`Key`] holds 32 key bytes and wipes them when dropped: the type every netmesh
//!   crate keeps a key in (the pools keep theirs in one, to make builders on demand).
//! - [`Backend`] is the AEAD itself: `RingBackend` (feature `ring`), `OpenSslBackend`
//!   (feature `openssl`) or `RustCryptoBackend` (feature `rust-crypto`).
//!   [`DefaultBackend`] picks one.
//!
//! # Features
//!
//! At least one backend must be enabled.
//!
//! - `ring` (default): the assembly ChaCha20-Poly1305 of `ring`, about nine times faster
//!   than the pure-Rust one for small packets. When enabled it is the [`DefaultBackend`].
//! - `rust-crypto`: RustCrypto's pure-Rust `chacha20poly1305`, compiled only with this
//!   feature; the [`DefaultBackend`] when `ring` is off. Features are additive: with both
//!   on, both backends are available and `ring` is the default.
//! - `openssl`: OpenSSL's ChaCha20-Poly1305 (AVX-512 where the CPU has it) for inputs of
//!   `OPENSSL_MIN_LEN` (2 KiB) and more, ring's below; 1.45-1.5x ring's speed for a full
//!   8 KiB packet on an AVX-512 host. It links the system's libcrypto (OpenSSL 1.1.1 or
//!   3; on Debian `libssl-dev` and `pkg-config`), turns on `ring`, and when enabled is the
//!   [`DefaultBackend`]. The `netmesh` tool enables it.
//!
//! # Examples
//!
//! ```
//! use bytes::BytesMut;
//! use netmesh_cipher::{PacketCipher, ReplayWindow};
//!
//! let key = [7u8; 32];
//! let sender: PacketCipher = PacketCipher::new(&key, 0x1234);
//! let receiver: PacketCipher = PacketCipher::new(&key, 0x1234);
//! let window = ReplayWindow::new();
//!
//! let aad = b"header bytes";
//! let mut buf = BytesMut::from(&b"hello"[..]);
//! let counter = sender.seal_in_place(aad, &mut buf)?;
//!
//! window.check(counter)?;
//! receiver.open_in_place(counter, aad, &mut buf)?;
//! window.commit(counter)?;
//! assert_eq!(&buf[..], b"hello");
//! # Ok::<(), netmesh_cipher::CipherError>(())
//! ```
#![doc(test(attr(deny(warnings))))]

mod backend;
mod cipher;
mod compat;
mod counter;
mod error;
mod key;
mod nonce;
mod replay;
mod residue;
mod sync;

#[cfg(feature = "ring")]
pub use backend::RingBackend;
#[cfg(feature = "rust-crypto")]
pub use backend::RustCryptoBackend;
pub use backend::{Backend, DefaultBackend};
#[cfg(feature = "openssl")]
pub use backend::{OpenSslBackend, OPENSSL_MIN_LEN};
pub use cipher::PacketCipher;
pub use counter::{TxCounter, COUNTER_LEASE};
pub use error::CipherError;
pub use key::Key;
pub use nonce::{nonce_for, session_prefix_from_id};
pub use replay::ReplayWindow;
pub use residue::{boxed_on_scrubbed_stack, scrub_stack};

/// Length of a ChaCha20-Poly1305 key in bytes.
pub const KEY_SIZE: usize = 32;

/// Length of a ChaCha20-Poly1305 nonce in bytes (a 4-byte session prefix and an 8-byte
/// little-endian counter) and of a Poly1305 tag: the wire's sizes, defined in
/// `netmesh-wire`.
pub use netmesh_wire::{NONCE_SIZE, TAG_SIZE};

/// Number of counters the [`ReplayWindow`] remembers: the highest accepted counter and the
/// 1023 below it.
pub const REPLAY_WINDOW_SIZE: u64 = 1024;

/// The last counter a [`TxCounter`] hands out. `u64::MAX` is never sent and every
/// [`ReplayWindow`] refuses it.
pub const MAX_COUNTER: u64 = u64::MAX - 1;

/// Largest ciphertext (tag excluded) that [`PacketCipher::verify`] accepts: the largest
/// netmesh payload, `netmesh_wire::MAX_PAYLOAD_SIZE` (`8192 - 68 - 16`). Verification
/// decrypts into a stack scratch of this size so that it never allocates.
pub const MAX_VERIFY_LEN: usize = netmesh_wire::MAX_PAYLOAD_SIZE;

const _: () = assert!(KEY_SIZE == 32 && NONCE_SIZE == 12 && TAG_SIZE == 16);
