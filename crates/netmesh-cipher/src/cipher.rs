//! The packet cipher: a backend, a session prefix and a transmit counter.

use core::fmt;

use bytes::{Bytes, BytesMut};
use zeroize::Zeroize;

use crate::{
    nonce_for, session_prefix_from_id, Backend, CipherError, DefaultBackend, TxCounter, KEY_SIZE,
    MAX_VERIFY_LEN, TAG_SIZE,
};

/// Scratch size for verifying small inputs (heartbeats, short packets) without touching
/// a full [`MAX_VERIFY_LEN`] stack buffer.
const SMALL_VERIFY_LEN: usize = 256;

/// ChaCha20-Poly1305 with the counter nonces of WIRE.md:
/// `nonce = session_prefix_from_id(session_id) ‖ counter.to_le_bytes()`.
///
/// Vocabulary: to *seal* is to encrypt and tag, to *open* is to verify the tag and
/// decrypt. `seal_in_place`/`open_in_place` keep the tag after the data in one buffer;
/// the `_detached` forms pass it separately; [`open_bytes`](Self::open_bytes) opens a
/// [`Bytes`]; [`verify`](Self::verify) checks a tag and keeps no plaintext.
///
/// Sealing takes the next value of the cipher's [`TxCounter`], so a cipher never
/// encrypts twice under one nonce; ciphers of one key that may encrypt must share one
/// counter ([`with_counter`](Self::with_counter)). Opening takes the counter from the
/// packet and does no replay check: pair it with a [`ReplayWindow`](crate::ReplayWindow).
///
/// `PacketCipher` is deliberately not `Clone` (a clone with its own counter would reuse
/// nonces). It is `Send + Sync`, and its `Debug` shows the backend, session id and next
/// counter, never the key.
///
/// `B` defaults to [`DefaultBackend`]. In a `let` without a type the compiler does not
/// apply that default, so write `let c: PacketCipher = PacketCipher::new(..)` or
/// `PacketCipher::<DefaultBackend>::new(..)`.
///
/// # Examples
///
/// ```
/// use netmesh_cipher::{DefaultBackend, PacketCipher, TxCounter};
///
/// let key = [9u8; 32];
/// let counter = TxCounter::new();
/// let a: PacketCipher = PacketCipher::with_counter(&key, 1, counter.clone());
/// let b = PacketCipher::<DefaultBackend>::with_counter(&key, 1, counter);
///
/// let mut first = *b"one";
/// let mut second = *b"two";
/// let (n1, tag1) = a.seal_in_place_detached(b"aad", &mut first)?;
/// let (n2, _) = b.seal_in_place_detached(b"aad", &mut second)?;
/// assert_eq!((n1, n2), (0, 1));
///
/// b.open_in_place_detached(n1, b"aad", &mut first, &tag1)?;
/// assert_eq!(&first, b"one");
/// # Ok::<(), netmesh_cipher::CipherError>(())
/// ```
pub struct PacketCipher<B: Backend = DefaultBackend> {
    backend: B,
    prefix: [u8; 4],
    session_id: u64,
    counter: TxCounter,
}

impl<B: Backend> PacketCipher<B> {
    /// A cipher for `key` and `session_id` with its own transmit counter starting at 0.
    #[must_use]
    pub fn new(key: &[u8; KEY_SIZE], session_id: u64) -> Self {
        Self::with_counter(key, session_id, TxCounter::new())
    }

    /// A cipher that takes its transmit counters from `counter`, shared with every other
    /// holder of a clone of it.
    #[must_use]
    pub fn with_counter(key: &[u8; KEY_SIZE], session_id: u64, counter: TxCounter) -> Self {
        Self {
            backend: B::new(key),
            prefix: session_prefix_from_id(session_id),
            session_id,
            counter,
        }
    }

    /// The transmit counter this cipher seals with.
    #[must_use]
    pub fn counter(&self) -> &TxCounter {
        &self.counter
    }

    /// The session id given at construction.
    #[must_use]
    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    /// The 4-byte nonce prefix, [`session_prefix_from_id`] of the session id.
    #[must_use]
    pub fn session_prefix(&self) -> [u8; 4] {
        self.prefix
    }

    /// Takes the next counter, encrypts `data` in place and returns the counter and the
    /// tag. This is the send hot path: no allocation and no copy beyond the AEAD's own.
    ///
    /// # Errors
    ///
    /// [`CipherError::CounterExhausted`] when the counter is used up (nothing is
    /// encrypted); [`CipherError::BufferTooLarge`] when `data` is beyond the AEAD's limit
    /// (the counter taken is then skipped, never reused).
    // Always inlined: called, its result travels through memory and its frame is set up
    // around an AEAD call of ~200 ns; measured 1-2% of a 1 x 64 B packet build.
    #[inline(always)]
    pub fn seal_in_place_detached(
        &self,
        aad: &[u8],
        data: &mut [u8],
    ) -> Result<(u64, [u8; TAG_SIZE]), CipherError> {
        let counter = self.counter.take()?;
        self.seal_under(counter, aad, data)
    }

    /// [`seal_in_place_detached`](Self::seal_in_place_detached) with a counter taken
    /// alone ([`TxCounter::take_single`]), not from this thread's lease: for packets a
    /// thread seals rarely.
    ///
    /// # Errors
    ///
    /// As [`seal_in_place_detached`](Self::seal_in_place_detached).
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_cipher::PacketCipher;
    ///
    /// let cipher: PacketCipher = PacketCipher::new(&[9; 32], 7);
    /// let mut data = *b"ping";
    /// let (counter, _tag) = cipher.seal_in_place_detached_single(b"aad", &mut data)?;
    /// assert_eq!(counter, 0);
    /// # Ok::<(), netmesh_cipher::CipherError>(())
    /// ```
    pub fn seal_in_place_detached_single(
        &self,
        aad: &[u8],
        data: &mut [u8],
    ) -> Result<(u64, [u8; TAG_SIZE]), CipherError> {
        let counter = self.counter.take_single()?;
        self.seal_under(counter, aad, data)
    }

    /// Seals `data` under `counter`, which the caller took from this cipher's counter.
    #[inline(always)]
    fn seal_under(
        &self,
        counter: u64,
        aad: &[u8],
        data: &mut [u8],
    ) -> Result<(u64, [u8; TAG_SIZE]), CipherError> {
        let tag = self
            .backend
            .seal_in_place(&nonce_for(self.prefix, counter), aad, data)?;
        Ok((counter, tag))
    }

    /// Seals `buf` in place: encrypts it, appends the tag and returns the counter used.
    ///
    /// # Errors
    ///
    /// As [`seal_in_place_detached`](Self::seal_in_place_detached); `buf` is unchanged
    /// on error.
    #[inline]
    pub fn seal_in_place(&self, aad: &[u8], buf: &mut BytesMut) -> Result<u64, CipherError> {
        let (counter, tag) = self.seal_in_place_detached(aad, buf)?;
        buf.extend_from_slice(&tag);
        Ok(counter)
    }

    /// Verifies `tag` (in constant time, inside the backend) over `aad` and the
    /// ciphertext in `data`, then decrypts `data` in place. The receive hot path.
    ///
    /// # Errors
    ///
    /// [`CipherError::AuthFailed`]. `data` then holds no plaintext: the ciphertext with
    /// RustCrypto (which verifies before decrypting), zeroes with ring (which decrypts
    /// and verifies in one pass, then wipes on failure).
    #[inline]
    pub fn open_in_place_detached(
        &self,
        counter: u64,
        aad: &[u8],
        data: &mut [u8],
        tag: &[u8; TAG_SIZE],
    ) -> Result<(), CipherError> {
        self.backend
            .open_in_place(&nonce_for(self.prefix, counter), aad, data, tag)
    }

    /// Opens `buf` = ciphertext ‖ tag in place: verifies the tag, decrypts, and truncates
    /// `buf` to the plaintext.
    ///
    /// # Errors
    ///
    /// [`CipherError::AuthFailed`] when `buf` is shorter than a tag or the tag does not
    /// verify; `buf` keeps its length and holds no plaintext.
    #[inline]
    pub fn open_in_place(
        &self,
        counter: u64,
        aad: &[u8],
        buf: &mut BytesMut,
    ) -> Result<(), CipherError> {
        let Some(plaintext_len) = buf.len().checked_sub(TAG_SIZE) else {
            return Err(CipherError::AuthFailed);
        };
        let (data, tag_bytes) = buf.split_at_mut(plaintext_len);
        let mut tag = [0; TAG_SIZE];
        tag.copy_from_slice(tag_bytes);
        self.open_in_place_detached(counter, aad, data, &tag)?;
        buf.truncate(plaintext_len);
        Ok(())
    }

    /// Opens `data` = ciphertext ‖ tag and returns the plaintext. Works in place, with
    /// no allocation, when `data` is the only handle to its buffer; copies otherwise.
    ///
    /// # Errors
    ///
    /// [`CipherError::AuthFailed`] when `data` is shorter than a tag or the tag does not
    /// verify.
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use netmesh_cipher::{CipherError, PacketCipher};
    ///
    /// let cipher: PacketCipher = PacketCipher::new(&[1; 32], 2);
    /// let mut buf = BytesMut::from(&b"event"[..]);
    /// let counter = cipher.seal_in_place(b"aad", &mut buf)?;
    /// let sealed = buf.freeze();
    ///
    /// assert_eq!(cipher.open_bytes(counter, b"aad", sealed.clone())?, &b"event"[..]);
    /// assert_eq!(
    ///     cipher.open_bytes(counter, b"other aad", sealed),
    ///     Err(CipherError::AuthFailed)
    /// );
    /// # Ok::<(), CipherError>(())
    /// ```
    pub fn open_bytes(&self, counter: u64, aad: &[u8], data: Bytes) -> Result<Bytes, CipherError> {
        let mut buf = match data.try_into_mut() {
            Ok(unique) => unique,
            Err(shared) => BytesMut::from(&shared[..]),
        };
        self.open_in_place(counter, aad, &mut buf)?;
        Ok(buf.freeze())
    }

    /// Checks the tag of `ciphertext_and_tag` without keeping any plaintext and without
    /// allocating: the ciphertext is decrypted into a stack scratch that is zeroized
    /// before returning.
    ///
    /// # Errors
    ///
    /// [`CipherError::AuthFailed`] when the input is shorter than a tag or the tag does
    /// not verify; [`CipherError::BufferTooLarge`] when the ciphertext is longer than
    /// [`MAX_VERIFY_LEN`].
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use netmesh_cipher::{CipherError, PacketCipher};
    ///
    /// let cipher: PacketCipher = PacketCipher::new(&[1; 32], 2);
    /// let mut heartbeat = BytesMut::new();
    /// let counter = cipher.seal_in_place(b"header", &mut heartbeat)?;
    /// cipher.verify(counter, b"header", &heartbeat)?;
    /// assert_eq!(cipher.verify(counter + 1, b"header", &heartbeat), Err(CipherError::AuthFailed));
    /// # Ok::<(), CipherError>(())
    /// ```
    pub fn verify(
        &self,
        counter: u64,
        aad: &[u8],
        ciphertext_and_tag: &[u8],
    ) -> Result<(), CipherError> {
        let Some(len) = ciphertext_and_tag.len().checked_sub(TAG_SIZE) else {
            return Err(CipherError::AuthFailed);
        };
        if len > MAX_VERIFY_LEN {
            return Err(CipherError::BufferTooLarge {
                len,
                max: MAX_VERIFY_LEN,
            });
        }
        let (ciphertext, tag_bytes) = ciphertext_and_tag.split_at(len);
        let mut tag = [0; TAG_SIZE];
        tag.copy_from_slice(tag_bytes);
        if len <= SMALL_VERIFY_LEN {
            self.verify_with::<SMALL_VERIFY_LEN>(counter, aad, ciphertext, &tag)
        } else {
            self.verify_with::<MAX_VERIFY_LEN>(counter, aad, ciphertext, &tag)
        }
    }

    fn verify_with<const N: usize>(
        &self,
        counter: u64,
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8; TAG_SIZE],
    ) -> Result<(), CipherError> {
        let mut scratch = [0u8; N];
        let work = &mut scratch[..ciphertext.len()];
        work.copy_from_slice(ciphertext);
        let result = self.open_in_place_detached(counter, aad, work, tag);
        work.zeroize();
        result
    }
}

impl<B: Backend> fmt::Debug for PacketCipher<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacketCipher")
            .field("backend", &B::NAME)
            .field("session_id", &format_args!("{:#018x}", self.session_id))
            .field("next_counter", &self.counter.peek())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MAX_COUNTER;

    const KEY: [u8; KEY_SIZE] = [
        0xc0, 0xff, 0xee, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc,
        0xdd, 0xee, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d,
        0x0e, 0x0f,
    ];

    macro_rules! cipher_tests {
        ($name:ident, $backend:ty) => {
            mod $name {
                use super::*;

                type Cipher = PacketCipher<$backend>;

                #[test]
                fn roundtrip_through_every_api() {
                    let cipher = Cipher::new(&KEY, 0xdead_beef_0000_0001);
                    let mut buf = BytesMut::from(&b"plaintext"[..]);
                    let counter = cipher.seal_in_place(b"aad", &mut buf).unwrap();
                    assert_eq!(counter, 0);
                    assert_eq!(buf.len(), 9 + TAG_SIZE);
                    cipher.verify(counter, b"aad", &buf).unwrap();
                    let sealed = buf.clone().freeze();
                    cipher.open_in_place(counter, b"aad", &mut buf).unwrap();
                    assert_eq!(&buf[..], b"plaintext");
                    let opened = cipher.open_bytes(counter, b"aad", sealed).unwrap();
                    assert_eq!(&opened[..], b"plaintext");
                }

                #[test]
                fn open_bytes_is_in_place_when_unshared() {
                    let cipher = Cipher::new(&KEY, 5);
                    let mut buf = BytesMut::with_capacity(64);
                    buf.extend_from_slice(b"in place please");
                    let counter = cipher.seal_in_place(b"", &mut buf).unwrap();
                    let sealed = buf.freeze();
                    let address = sealed.as_ptr();
                    let opened = cipher.open_bytes(counter, b"", sealed).unwrap();
                    assert_eq!(opened.as_ptr(), address);
                    assert_eq!(&opened[..], b"in place please");
                }

                #[test]
                fn open_bytes_copies_when_shared_and_leaves_the_original() {
                    let cipher = Cipher::new(&KEY, 5);
                    let mut buf = BytesMut::from(&b"shared"[..]);
                    let counter = cipher.seal_in_place(b"", &mut buf).unwrap();
                    let sealed = buf.freeze();
                    let other = sealed.clone();
                    let opened = cipher.open_bytes(counter, b"", sealed).unwrap();
                    assert_eq!(&opened[..], b"shared");
                    assert_ne!(&other[..6], b"shared");
                    assert_eq!(other.len(), 6 + TAG_SIZE);
                }

                #[test]
                fn short_or_tampered_input_fails_without_detail() {
                    let cipher = Cipher::new(&KEY, 5);
                    let mut short = BytesMut::from(&[0u8; TAG_SIZE - 1][..]);
                    assert_eq!(
                        cipher.open_in_place(0, b"", &mut short),
                        Err(CipherError::AuthFailed)
                    );
                    assert_eq!(cipher.verify(0, b"", &[0; 3]), Err(CipherError::AuthFailed));
                    let mut buf = BytesMut::from(&b"secret words"[..]);
                    let counter = cipher.seal_in_place(b"", &mut buf).unwrap();
                    buf[0] ^= 0x80;
                    assert_eq!(
                        cipher.open_in_place(counter, b"", &mut buf),
                        Err(CipherError::AuthFailed)
                    );
                    assert_eq!(buf.len(), 12 + TAG_SIZE);
                    assert_ne!(&buf[..12], b"secret words");
                }

                #[test]
                fn verify_handles_both_scratch_sizes_and_refuses_oversize() {
                    let cipher = Cipher::new(&KEY, 5);
                    for len in [0, SMALL_VERIFY_LEN, SMALL_VERIFY_LEN + 1, MAX_VERIFY_LEN] {
                        let mut buf = BytesMut::zeroed(len);
                        let counter = cipher.seal_in_place(b"h", &mut buf).unwrap();
                        assert_eq!(cipher.verify(counter, b"h", &buf), Ok(()), "{len}");
                        let last = buf.len() - 1;
                        buf[last] ^= 1;
                        assert_eq!(
                            cipher.verify(counter, b"h", &buf),
                            Err(CipherError::AuthFailed),
                            "{len}"
                        );
                    }
                    let big = vec![0u8; MAX_VERIFY_LEN + 1 + TAG_SIZE];
                    assert_eq!(
                        cipher.verify(0, b"", &big),
                        Err(CipherError::BufferTooLarge {
                            len: MAX_VERIFY_LEN + 1,
                            max: MAX_VERIFY_LEN
                        })
                    );
                }

                #[test]
                fn exhaustion_encrypts_the_last_three_then_fails_forever() {
                    let cipher =
                        Cipher::with_counter(&KEY, 1, TxCounter::starting_at(MAX_COUNTER - 2));
                    for expected in [MAX_COUNTER - 2, MAX_COUNTER - 1, MAX_COUNTER] {
                        let mut data = [1u8; 4];
                        let (counter, _) = cipher.seal_in_place_detached(b"", &mut data).unwrap();
                        assert_eq!(counter, expected);
                    }
                    for _ in 0..5 {
                        let mut data = *b"untouched";
                        assert_eq!(
                            cipher.seal_in_place_detached(b"", &mut data),
                            Err(CipherError::CounterExhausted)
                        );
                        assert_eq!(&data, b"untouched");
                        let mut buf = BytesMut::from(&b"also"[..]);
                        assert_eq!(
                            cipher.seal_in_place(b"", &mut buf),
                            Err(CipherError::CounterExhausted)
                        );
                        assert_eq!(&buf[..], b"also");
                        assert_eq!(cipher.counter().peek(), u64::MAX);
                    }
                }

                #[test]
                fn debug_never_shows_the_key() {
                    let cipher = Cipher::new(&KEY, 0x0123_4567_89ab_cdef);
                    let shown = format!("{cipher:?} {cipher:#?}");
                    assert!(shown.contains("0x0123456789abcdef"), "{shown}");
                    assert!(shown.contains(<$backend as Backend>::NAME), "{shown}");
                    let key_hex: String = KEY.iter().map(|b| format!("{b:02x}")).collect();
                    assert!(!shown.contains(&key_hex[..8]), "{shown}");
                    assert!(!shown.contains("192, 255"), "{shown}");
                }

                #[test]
                fn accessors() {
                    let counter = TxCounter::starting_at(10);
                    let cipher = Cipher::with_counter(&KEY, 0x0000_0001_0000_0003, counter.clone());
                    assert_eq!(cipher.session_id(), 0x0000_0001_0000_0003);
                    assert_eq!(cipher.session_prefix(), [2, 0, 0, 0]);
                    assert!(cipher.counter().shares_with(&counter));
                }

                // A compile-time check: this module does not build if the cipher is not
                // `Send + Sync`.
                const _: fn() = || {
                    fn send_sync<T: Send + Sync>() {}
                    send_sync::<Cipher>();
                };
            }
        };
    }

    #[cfg(feature = "ring")]
    cipher_tests!(ring, crate::RingBackend);
    #[cfg(feature = "rust-crypto")]
    cipher_tests!(rust_crypto, crate::RustCryptoBackend);
    #[cfg(feature = "openssl")]
    cipher_tests!(openssl, crate::OpenSslBackend);
}
