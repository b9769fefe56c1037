//! A key that wipes itself.

use core::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::KEY_SIZE;

/// A 32-byte ChaCha20-Poly1305 key that is wiped (zeroized) when dropped: where netmesh
/// keeps key bytes beyond one call (the pools hold one to make builders on demand).
///
/// It is deliberately not `Clone` (every copy would be one more place to wipe), not
/// `PartialEq` (a non-constant-time comparison of secrets), and its `Debug` prints
/// `Key { .. }` only.
///
/// # Examples
///
/// ```
/// use netmesh_cipher::{Key, PacketCipher};
///
/// let key = Key::new(&[0x42; 32]);
/// let cipher: PacketCipher = PacketCipher::new(key.as_bytes(), 9);
/// assert_eq!(format!("{key:?}"), "Key { .. }");
/// # drop(cipher);
/// ```
pub struct Key([u8; KEY_SIZE]);

impl Key {
    /// Copies `bytes` into a new key. The caller still owns (and should wipe) `bytes`.
    #[must_use]
    pub fn new(bytes: &[u8; KEY_SIZE]) -> Self {
        Self(*bytes)
    }

    /// Takes ownership of `bytes` and wipes the local after copying it in, so no
    /// unwiped copy is left behind by this call.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_cipher::Key;
    ///
    /// let key = Key::from_array([1; 32]);
    /// assert_eq!(key.as_bytes(), &[1; 32]);
    /// ```
    #[must_use]
    pub fn from_array(mut bytes: [u8; KEY_SIZE]) -> Self {
        let key = Self(bytes);
        bytes.zeroize();
        key
    }

    /// The key bytes, for handing to a cipher constructor.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; KEY_SIZE] {
        &self.0
    }
}

impl Zeroize for Key {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

impl Drop for Key {
    // Not inlined, so the wipe stays a distinct call the optimiser cannot fold away.
    #[inline(never)]
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for Key {}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_bytes() {
        let key = Key::new(&[0xab; KEY_SIZE]);
        let shown = format!("{key:?} {key:#?}");
        assert!(!shown.contains("ab"), "{shown}");
        assert!(!shown.contains("171"), "{shown}");
    }

    #[test]
    fn zeroize_clears_the_bytes() {
        let mut key = Key::from_array([0x5a; KEY_SIZE]);
        key.zeroize();
        assert_eq!(key.as_bytes(), &[0; KEY_SIZE]);
    }
}
