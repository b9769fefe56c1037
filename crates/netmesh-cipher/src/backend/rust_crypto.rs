//! The pure-Rust backend: RustCrypto's `chacha20poly1305`.

use core::fmt;

use chacha20poly1305::aead::generic_array::GenericArray;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;

use super::too_large;
use crate::{Backend, CipherError, KEY_SIZE, NONCE_SIZE, TAG_SIZE};

/// ChaCha20-Poly1305 from RustCrypto's `chacha20poly1305` crate (feature `rust-crypto`):
/// pure Rust, and the [`DefaultBackend`](crate::DefaultBackend) when the `ring` feature is
/// off.
///
/// Key hygiene: `ChaCha20Poly1305` zeroizes its key copy in its own `Drop`, and the
/// per-call ChaCha20 state (which contains the key) zeroizes itself too. Opening verifies
/// the tag before decrypting, so a failed open leaves the ciphertext untouched.
pub struct RustCryptoBackend {
    aead: ChaCha20Poly1305,
}

impl Backend for RustCryptoBackend {
    const NAME: &'static str = "rust_crypto";

    #[inline]
    fn new(key: &[u8; KEY_SIZE]) -> Self {
        Self {
            aead: ChaCha20Poly1305::new(GenericArray::from_slice(key)),
        }
    }

    #[inline]
    fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_SIZE],
        aad: &[u8],
        data: &mut [u8],
    ) -> Result<[u8; TAG_SIZE], CipherError> {
        let len = data.len();
        self.aead
            .encrypt_in_place_detached(GenericArray::from_slice(nonce), aad, data)
            .map(Into::into)
            .map_err(|_| too_large(len))
    }

    #[inline]
    fn open_in_place(
        &self,
        nonce: &[u8; NONCE_SIZE],
        aad: &[u8],
        data: &mut [u8],
        tag: &[u8; TAG_SIZE],
    ) -> Result<(), CipherError> {
        self.aead
            .decrypt_in_place_detached(
                GenericArray::from_slice(nonce),
                aad,
                data,
                GenericArray::from_slice(tag),
            )
            .map_err(|_| CipherError::AuthFailed)
    }
}

impl fmt::Debug for RustCryptoBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RustCryptoBackend").finish_non_exhaustive()
    }
}

// The key copy inside must be wiped by the type itself, since this wrapper adds no Drop.
const _: fn() = || {
    fn wipes_itself<T: zeroize::ZeroizeOnDrop>() {}
    wipes_itself::<ChaCha20Poly1305>();
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_open_leaves_the_ciphertext() {
        let backend = RustCryptoBackend::new(&[3; KEY_SIZE]);
        let mut data = *b"some plaintext";
        let tag = backend
            .seal_in_place(&[0; NONCE_SIZE], b"", &mut data)
            .unwrap();
        let ciphertext = data;
        let mut bad_tag = tag;
        bad_tag[0] ^= 1;
        assert_eq!(
            backend.open_in_place(&[0; NONCE_SIZE], b"", &mut data, &bad_tag),
            Err(CipherError::AuthFailed)
        );
        assert_eq!(data, ciphertext);
    }
}
