//! The assembly backend: `ring`'s ChaCha20-Poly1305.
//!
//! `ring::aead::LessSafeKey` offers no way to wipe its key schedule, so this module holds
//! it in a `MaybeUninit` and overwrites its bytes with zeroes on drop. That needs
//! `unsafe`, which the workspace denies everywhere else.
#![allow(unsafe_code)] // The key wipe below: the only unsafe code in the crate.

use core::fmt;
use core::mem::{self, MaybeUninit};

use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, CHACHA20_POLY1305};

use super::too_large;
use crate::{Backend, CipherError, KEY_SIZE, NONCE_SIZE, TAG_SIZE};

// The wipe in `Drop` skips `LessSafeKey`'s destructor. That is sound and complete only
// because it has none: no `Drop` impl and no field that owns heap memory (ring 0.17 holds
// the ChaCha20 key as `[u32; 8]` inline next to a `&'static Algorithm`). If a future ring
// adds drop glue this stops compiling instead of silently leaking.
const _: () = assert!(!mem::needs_drop::<LessSafeKey>());

/// ChaCha20-Poly1305 from `ring` (assembly, the fastest here) and the
/// [`DefaultBackend`](crate::DefaultBackend) whenever the `ring` feature is on.
///
/// Key hygiene: the key schedule is held by value and its bytes are overwritten with
/// zeroes (volatile writes followed by a compiler fence) when the backend is dropped.
/// A failed open leaves zeroes where ring had decrypted, never plaintext.
pub struct RingBackend {
    /// Always initialised between `new` and `drop`; `drop` overwrites it with zeroes,
    /// which is a valid `MaybeUninit` but not a valid `LessSafeKey` (the algorithm
    /// reference becomes null), so nothing may read it afterwards.
    key: MaybeUninit<LessSafeKey>,
}

impl RingBackend {
    #[inline(always)]
    fn key(&self) -> &LessSafeKey {
        // SAFETY: `key` is initialised in `new` and only overwritten in `drop`, after
        // which no `&self` exists.
        unsafe { self.key.assume_init_ref() }
    }
}

impl Backend for RingBackend {
    const NAME: &'static str = "ring";

    fn new(key: &[u8; KEY_SIZE]) -> Self {
        let Ok(unbound) = UnboundKey::new(&CHACHA20_POLY1305, key) else {
            // ring refuses a key only for a wrong length, and the type fixes it at 32.
            unreachable!("ring refused a 32-byte ChaCha20-Poly1305 key")
        };
        Self {
            key: MaybeUninit::new(LessSafeKey::new(unbound)),
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
        let tag = self
            .key()
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(*nonce), Aad::from(aad), data)
            .map_err(|_| too_large(len))?;
        let mut out = [0; TAG_SIZE];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    #[inline]
    fn open_in_place(
        &self,
        nonce: &[u8; NONCE_SIZE],
        aad: &[u8],
        data: &mut [u8],
        tag: &[u8; TAG_SIZE],
    ) -> Result<(), CipherError> {
        // ring decrypts and authenticates in one pass, then zeroes the buffer itself when
        // the tag does not match, so no plaintext survives a failure.
        self.key()
            .open_in_place_separate_tag(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                Tag::from(*tag),
                data,
                0..,
            )
            .map(|_| ())
            .map_err(|_| CipherError::AuthFailed)
    }
}

impl Drop for RingBackend {
    #[inline(never)]
    fn drop(&mut self) {
        let key: *mut MaybeUninit<LessSafeKey> = &mut self.key;
        // SAFETY: `key` comes from `&mut self`, so it is valid, aligned and exclusive for
        // the whole of `size_of::<MaybeUninit<LessSafeKey>>()`. All zeroes is a valid
        // `MaybeUninit<LessSafeKey>`, and `MaybeUninit` has no destructor, so nothing
        // reads the zeroed `LessSafeKey` (which has no drop glue either; asserted above).
        unsafe { zeroize::zeroize_flat_type(key) }
    }
}

impl fmt::Debug for RingBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingBackend").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_open_leaves_no_plaintext() {
        let backend = RingBackend::new(&[3; KEY_SIZE]);
        let mut data = *b"some plaintext";
        let tag = backend
            .seal_in_place(&[0; NONCE_SIZE], b"", &mut data)
            .unwrap();
        let mut bad_tag = tag;
        bad_tag[0] ^= 1;
        assert_eq!(
            backend.open_in_place(&[0; NONCE_SIZE], b"", &mut data, &bad_tag),
            Err(CipherError::AuthFailed)
        );
        assert_ne!(&data, b"some plaintext");
        assert_eq!(data, [0; 14]);
    }
}
