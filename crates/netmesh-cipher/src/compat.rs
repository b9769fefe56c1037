//! net-mesh 0.23's names for the [`PacketCipher`] methods that netmesh calls `seal` and
//! `open`, kept so that code moving over compiles.

use bytes::BytesMut;

use crate::{Backend, CipherError, PacketCipher};

impl<B: Backend> PacketCipher<B> {
    /// net-mesh 0.23's name for [`seal_in_place`](Self::seal_in_place).
    ///
    /// # Errors
    ///
    /// Those of [`seal_in_place`](Self::seal_in_place).
    ///
    /// # Examples
    ///
    /// ```
    /// #![allow(deprecated)]
    /// use bytes::BytesMut;
    /// use netmesh_cipher::PacketCipher;
    ///
    /// let cipher: PacketCipher = PacketCipher::new(&[3; 32], 4);
    /// let mut buf = BytesMut::from(&b"event"[..]);
    /// let counter = cipher.encrypt_in_place(b"aad", &mut buf)?;
    /// cipher.decrypt_in_place(counter, b"aad", &mut buf)?;
    /// assert_eq!(&buf[..], b"event");
    /// # Ok::<(), netmesh_cipher::CipherError>(())
    /// ```
    ///
    /// Without the `allow`, the name warns (here made an error):
    ///
    /// ```compile_fail
    /// #![deny(deprecated)]
    /// let cipher: netmesh_cipher::PacketCipher = netmesh_cipher::PacketCipher::new(&[3; 32], 4);
    /// let _ = cipher.encrypt_in_place(b"", &mut bytes::BytesMut::new());
    /// ```
    #[deprecated(note = "renamed to `seal_in_place` (seal = encrypt and tag)")]
    #[inline]
    pub fn encrypt_in_place(&self, aad: &[u8], buf: &mut BytesMut) -> Result<u64, CipherError> {
        self.seal_in_place(aad, buf)
    }

    /// net-mesh 0.23's name for [`open_in_place`](Self::open_in_place).
    ///
    /// # Errors
    ///
    /// Those of [`open_in_place`](Self::open_in_place).
    ///
    /// # Examples
    ///
    /// ```
    /// #![allow(deprecated)]
    /// use bytes::BytesMut;
    /// use netmesh_cipher::{CipherError, PacketCipher};
    ///
    /// let cipher: PacketCipher = PacketCipher::new(&[3; 32], 4);
    /// let mut buf = BytesMut::from(&b"event"[..]);
    /// let counter = cipher.seal_in_place(b"aad", &mut buf)?;
    /// assert_eq!(
    ///     cipher.decrypt_in_place(counter, b"other", &mut buf.clone()),
    ///     Err(CipherError::AuthFailed)
    /// );
    /// cipher.decrypt_in_place(counter, b"aad", &mut buf)?;
    /// assert_eq!(&buf[..], b"event");
    /// # Ok::<(), CipherError>(())
    /// ```
    #[deprecated(note = "renamed to `open_in_place` (open = verify and decrypt)")]
    #[inline]
    pub fn decrypt_in_place(
        &self,
        counter: u64,
        aad: &[u8],
        buf: &mut BytesMut,
    ) -> Result<(), CipherError> {
        self.open_in_place(counter, aad, buf)
    }
}

#[cfg(test)]
mod tests {
    #![allow(deprecated)]

    use bytes::BytesMut;

    use crate::PacketCipher;

    #[test]
    fn reference_names_produce_the_bytes_of_the_new_ones() {
        let old: PacketCipher = PacketCipher::new(&[7; 32], 9);
        let new: PacketCipher = PacketCipher::new(&[7; 32], 9);
        let mut by_old = BytesMut::from(&b"same bytes"[..]);
        let mut by_new = by_old.clone();
        let counter = old.encrypt_in_place(b"h", &mut by_old).unwrap();
        assert_eq!(new.seal_in_place(b"h", &mut by_new).unwrap(), counter);
        assert_eq!(by_old, by_new);
        new.decrypt_in_place(counter, b"h", &mut by_new).unwrap();
        old.open_in_place(counter, b"h", &mut by_old).unwrap();
        assert_eq!(
            (&by_old[..], &by_new[..]),
            (&b"same bytes"[..], &b"same bytes"[..])
        );
    }
}
