//! The AEAD behind a [`PacketCipher`](crate::PacketCipher).

#[cfg(feature = "openssl")]
mod openssl;
#[cfg(feature = "ring")]
mod ring;
#[cfg(feature = "rust-crypto")]
mod rust_crypto;

#[cfg(feature = "openssl")]
pub use self::openssl::{OpenSslBackend, OPENSSL_MIN_LEN};
#[cfg(feature = "ring")]
pub use self::ring::RingBackend;
#[cfg(feature = "rust-crypto")]
pub use self::rust_crypto::RustCryptoBackend;

#[cfg(not(any(feature = "ring", feature = "rust-crypto")))]
compile_error!(
    "netmesh-cipher needs an AEAD backend: enable the `ring` feature (the default) or \
     `rust-crypto`"
);
use crate::{CipherError, KEY_SIZE, NONCE_SIZE, TAG_SIZE};

/// A ChaCha20-Poly1305 implementation (RFC 8439) holding one key.
///
/// Every implementation must produce the same bytes as every other for the same key,
/// nonce, associated data and plaintext. Implementations own their key state and must
/// wipe it when dropped.
///
/// # Examples
///
/// ```
/// use netmesh_cipher::{Backend, DefaultBackend};
///
/// let backend = DefaultBackend::new(&[1; 32]);
/// let mut data = *b"payload";
/// let tag = backend.seal_in_place(&[0; 12], b"aad", &mut data)?;
/// assert_ne!(&data, b"payload");
/// backend.open_in_place(&[0; 12], b"aad", &mut data, &tag)?;
/// assert_eq!(&data, b"payload");
/// # Ok::<(), netmesh_cipher::CipherError>(())
/// ```
pub trait Backend: Send + Sync + 'static {
    /// A short name for logs and benchmarks, e.g. `"ring"`.
    const NAME: &'static str;

    /// Builds the AEAD for `key`.
    fn new(key: &[u8; KEY_SIZE]) -> Self
    where
        Self: Sized;

    /// Encrypts `data` in place and returns the tag over `aad` and the ciphertext.
    ///
    /// # Errors
    ///
    /// [`CipherError::BufferTooLarge`] when `data` is longer than the AEAD allows
    /// (274 877 906 880 bytes).
    fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_SIZE],
        aad: &[u8],
        data: &mut [u8],
    ) -> Result<[u8; TAG_SIZE], CipherError>;

    /// Verifies `tag` over `aad` and the ciphertext in `data` (in constant time) and, if
    /// it matches, decrypts `data` in place.
    ///
    /// # Errors
    ///
    /// [`CipherError::AuthFailed`] when the tag does not verify. `data` then holds no
    /// plaintext: implementations either verify before decrypting (leaving the
    /// ciphertext) or overwrite what they decrypted.
    fn open_in_place(
        &self,
        nonce: &[u8; NONCE_SIZE],
        aad: &[u8],
        data: &mut [u8],
        tag: &[u8; TAG_SIZE],
    ) -> Result<(), CipherError>;
}

/// The backend [`PacketCipher`](crate::PacketCipher) uses when none is named:
/// [`OpenSslBackend`] when the `openssl` feature is enabled, otherwise `RingBackend`
/// (feature `ring`, on by default), otherwise `RustCryptoBackend` (feature `rust-crypto`).
#[cfg(feature = "openssl")]
pub type DefaultBackend = OpenSslBackend;

/// The backend [`PacketCipher`](crate::PacketCipher) uses when none is named:
/// `OpenSslBackend` when the `openssl` feature is enabled, otherwise [`RingBackend`]
/// (feature `ring`, on by default), otherwise `RustCryptoBackend` (feature `rust-crypto`).
#[cfg(all(not(feature = "openssl"), feature = "ring"))]
pub type DefaultBackend = RingBackend;

/// The backend [`PacketCipher`](crate::PacketCipher) uses when none is named:
/// `OpenSslBackend` (feature `openssl`) or `RingBackend` (feature `ring`, on by default)
/// when enabled, otherwise [`RustCryptoBackend`].
#[cfg(all(not(feature = "ring"), feature = "rust-crypto"))]
pub type DefaultBackend = RustCryptoBackend;

/// The largest input either AEAD accepts: 2^32 - 1 blocks of 64 bytes (RFC 8439 §2.8).
const AEAD_MAX_LEN: u64 = 274_877_906_880;

/// The error for an input the AEAD refuses; on targets where `usize` cannot hold the
/// limit no input can reach it, so `max` saturates.
fn too_large(len: usize) -> CipherError {
    CipherError::BufferTooLarge {
        len,
        max: usize::try_from(AEAD_MAX_LEN).unwrap_or(usize::MAX),
    }
}
