//! The hash functions of the handshake, all on BLAKE2s: the Noise `HASH`, `HMAC` and
//! `HKDF` (Noise spec rev. 34, section 4.3), and net-mesh 0.23's key schedule (session id
//! and per-direction keys from the Noise handshake hash, with keyed BLAKE2s).
//!
//! BLAKE2s (RFC 7693) is implemented here rather than taken from the `blake2` crate:
//! blake2 0.10 cannot wipe its state, and every hash in the handshake is keyed by or
//! absorbs a secret (the chaining key, the PSK-bound handshake hash, DH outputs). Our
//! state, block buffer, HMAC pads and every intermediate key are wiped when dropped.

use zeroize::{Zeroize, Zeroizing};

use crate::keys::{SessionKeys, KEY_LEN};

/// The extract step's fixed input.
const KDF_LABEL: &[u8] = b"net-kdf-v1";
/// Info of the initiator-to-responder key.
const INITIATOR_TX: &[u8] = b"initiator-tx";
/// Info of the responder-to-initiator key.
const INITIATOR_RX: &[u8] = b"initiator-rx";

/// BLAKE2s's block size, also HMAC's `BLOCKLEN` for it.
const BLOCK_LEN: usize = 64;

const IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

const SIGMA: [[usize; 16]; 10] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
    [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
    [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
    [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
    [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
    [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
    [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
    [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
    [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0],
];

/// BLAKE2s-256, unkeyed or keyed with 32 bytes; wiped on drop.
struct Blake2s {
    h: [u32; 8],
    buf: [u8; BLOCK_LEN],
    buf_len: usize,
    /// Bytes compressed so far.
    t: u64,
}

impl Blake2s {
    fn with_key_len(key_len: u32) -> Self {
        let mut h = IV;
        // Parameter block: digest length 32, key length, fanout 1, depth 1.
        h[0] ^= 0x0101_0000 ^ (key_len << 8) ^ 32;
        Self {
            h,
            buf: [0; BLOCK_LEN],
            buf_len: 0,
            t: 0,
        }
    }

    fn new() -> Self {
        Self::with_key_len(0)
    }

    /// Keyed BLAKE2s (RFC 7693 section 2.5): the key, zero-padded, is the first block.
    fn new_keyed(key: &[u8; KEY_LEN]) -> Self {
        #[allow(clippy::cast_possible_truncation)] // 32
        let mut state = Self::with_key_len(KEY_LEN as u32);
        state.buf[..KEY_LEN].copy_from_slice(key);
        state.buf_len = BLOCK_LEN;
        state
    }

    fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            // The last block is compressed differently, so a full buffer waits until
            // more data shows it is not the last.
            if self.buf_len == BLOCK_LEN {
                self.t += BLOCK_LEN as u64;
                self.compress(false);
                self.buf_len = 0;
            }
            let take = data.len().min(BLOCK_LEN - self.buf_len);
            self.buf[self.buf_len..self.buf_len + take].copy_from_slice(&data[..take]);
            self.buf_len += take;
            data = &data[take..];
        }
    }

    fn finalize(mut self) -> Zeroizing<[u8; KEY_LEN]> {
        self.t += self.buf_len as u64;
        self.buf[self.buf_len..].fill(0);
        self.compress(true);
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        for (chunk, word) in out.chunks_exact_mut(4).zip(self.h) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        out
    }

    fn compress(&mut self, last: bool) {
        let mut m = [0u32; 16];
        for (word, bytes) in m.iter_mut().zip(self.buf.chunks_exact(4)) {
            *word = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        let mut v = [0u32; 16];
        v[..8].copy_from_slice(&self.h);
        v[8..].copy_from_slice(&IV);
        #[allow(clippy::cast_possible_truncation)] // the counter's low and high words
        {
            v[12] ^= self.t as u32;
            v[13] ^= (self.t >> 32) as u32;
        }
        if last {
            v[14] = !v[14];
        }
        for s in &SIGMA {
            g(&mut v, [0, 4, 8, 12], m[s[0]], m[s[1]]);
            g(&mut v, [1, 5, 9, 13], m[s[2]], m[s[3]]);
            g(&mut v, [2, 6, 10, 14], m[s[4]], m[s[5]]);
            g(&mut v, [3, 7, 11, 15], m[s[6]], m[s[7]]);
            g(&mut v, [0, 5, 10, 15], m[s[8]], m[s[9]]);
            g(&mut v, [1, 6, 11, 12], m[s[10]], m[s[11]]);
            g(&mut v, [2, 7, 8, 13], m[s[12]], m[s[13]]);
            g(&mut v, [3, 4, 9, 14], m[s[14]], m[s[15]]);
        }
        for (i, h) in self.h.iter_mut().enumerate() {
            *h ^= v[i] ^ v[i + 8];
        }
        m.zeroize();
        v.zeroize();
    }
}

/// BLAKE2s's mixing function on four words of the working vector.
fn g(v: &mut [u32; 16], [a, b, c, d]: [usize; 4], x: u32, y: u32) {
    v[a] = v[a].wrapping_add(v[b]).wrapping_add(x);
    v[d] = (v[d] ^ v[a]).rotate_right(16);
    v[c] = v[c].wrapping_add(v[d]);
    v[b] = (v[b] ^ v[c]).rotate_right(12);
    v[a] = v[a].wrapping_add(v[b]).wrapping_add(y);
    v[d] = (v[d] ^ v[a]).rotate_right(8);
    v[c] = v[c].wrapping_add(v[d]);
    v[b] = (v[b] ^ v[c]).rotate_right(7);
}

impl Drop for Blake2s {
    fn drop(&mut self) {
        self.h.zeroize();
        self.buf.zeroize();
    }
}

/// Noise `HASH`: BLAKE2s-256 of the concatenated parts.
pub(crate) fn hash(parts: &[&[u8]]) -> Zeroizing<[u8; KEY_LEN]> {
    let mut state = Blake2s::new();
    for part in parts {
        state.update(part);
    }
    state.finalize()
}

/// Noise `HMAC-HASH(key, parts...)` with a 32-byte key (RFC 2104, 64-byte blocks).
pub(crate) fn hmac(key: &[u8; KEY_LEN], parts: &[&[u8]]) -> Zeroizing<[u8; KEY_LEN]> {
    const IPAD: u8 = 0x36;
    const OPAD: u8 = 0x5c;
    let mut pad = Zeroizing::new([IPAD; BLOCK_LEN]);
    for (p, k) in pad.iter_mut().zip(key) {
        *p ^= k;
    }
    let mut inner = Blake2s::new();
    inner.update(&pad[..]);
    for part in parts {
        inner.update(part);
    }
    let inner = inner.finalize();
    // key ^ ipad becomes key ^ opad in place, so no second unwiped pad exists.
    for p in pad.iter_mut() {
        *p ^= IPAD ^ OPAD;
    }
    let mut outer = Blake2s::new();
    outer.update(&pad[..]);
    outer.update(&inner[..]);
    outer.finalize()
}

/// Noise `HKDF(chaining_key, ikm, N)` for N = 2 or 3: `temp_key = HMAC(ck, ikm)`,
/// `out1 = HMAC(temp_key, 0x01)`, `out_i = HMAC(temp_key, out_{i-1} ‖ i)`.
pub(crate) fn hkdf<const N: usize>(
    chaining_key: &[u8; KEY_LEN],
    ikm: &[u8],
) -> [Zeroizing<[u8; KEY_LEN]>; N] {
    let temp_key = hmac(chaining_key, &[ikm]);
    let mut outputs: [Zeroizing<[u8; KEY_LEN]>; N] =
        std::array::from_fn(|_| Zeroizing::new([0; KEY_LEN]));
    let mut counter = 1u8;
    for i in 0..N {
        let next = match i.checked_sub(1) {
            None => hmac(&temp_key, &[&[counter]]),
            Some(previous) => hmac(&temp_key, &[&outputs[previous][..], &[counter]]),
        };
        outputs[i] = next;
        counter = counter.wrapping_add(1);
    }
    outputs
}

/// `BLAKE2s-MAC-256(key, data)`: keyed BLAKE2s, as net-mesh's schedule uses it (not HMAC).
fn mac(key: &[u8; KEY_LEN], data: &[u8]) -> Zeroizing<[u8; KEY_LEN]> {
    let mut state = Blake2s::new_keyed(key);
    state.update(data);
    state.finalize()
}

/// `derive(h, info)`: `prk = MAC(h, "net-kdf-v1")`, `okm = MAC(prk, info)`.
pub(crate) fn derive(h: &[u8; KEY_LEN], info: &[u8]) -> Zeroizing<[u8; KEY_LEN]> {
    let prk = mac(h, KDF_LABEL);
    mac(&prk, info)
}

/// The session keys of one side from the final handshake hash `h`.
pub(crate) fn session_keys(h: &[u8; KEY_LEN], initiator: bool) -> SessionKeys {
    let session_id = u64::from_le_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
    let to_responder = derive(h, INITIATOR_TX);
    let to_initiator = derive(h, INITIATOR_RX);
    if initiator {
        SessionKeys::from_zeroizing(session_id, to_responder, to_initiator)
    } else {
        SessionKeys::from_zeroizing(session_id, to_initiator, to_responder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_is_keyed_blake2s_256() {
        // RFC 7693 keyed BLAKE2s-256 with key 00..1f over the empty message
        // (the reference implementation's keyed test vector blake2s-kat.txt, entry 0).
        let key: [u8; 32] = std::array::from_fn(|i| u8::try_from(i).unwrap());
        let expected = "48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49";
        let got: String = mac(&key, b"").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn sides_are_swapped_and_session_id_is_le_prefix() {
        let h: [u8; 32] = std::array::from_fn(|i| u8::try_from(i * 7).unwrap());
        let a = session_keys(&h, true);
        let b = session_keys(&h, false);
        assert_eq!(a.session_id(), 0x312a_231c_150e_0700);
        assert_eq!(a.session_id(), b.session_id());
        assert_eq!(a.tx_key(), b.rx_key());
        assert_eq!(a.rx_key(), b.tx_key());
        assert_ne!(a.tx_key(), a.rx_key());
        assert_eq!(*a.tx_key(), *derive(&h, b"initiator-tx"));
    }

    /// Deterministic test bytes.
    fn bytes(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| u8::try_from((i * 131 + usize::from(seed) * 7 + 3) % 251).unwrap())
            .collect()
    }

    fn reference_hash(data: &[u8]) -> [u8; 32] {
        use blake2::{Blake2s256, Digest};
        Blake2s256::digest(data).into()
    }

    #[test]
    fn hash_and_keyed_mac_match_the_blake2_crate_across_block_boundaries() {
        use blake2::digest::{KeyInit, Mac};
        for len in (0..=200).chain([255, 256, 257, 1000]) {
            let data = bytes(len, 1);
            assert_eq!(
                *hash(&[&data]),
                reference_hash(&data),
                "hash of {len} bytes"
            );
            // Split in two parts at every position of the first blocks.
            let cut = len / 3;
            assert_eq!(*hash(&[&data[..cut], &data[cut..]]), reference_hash(&data));
            let key: [u8; 32] = bytes(32, 9).try_into().unwrap();
            let mut reference = <blake2::Blake2sMac256 as KeyInit>::new(&key.into());
            reference.update(&data);
            let expected: [u8; 32] = reference.finalize().into_bytes().into();
            assert_eq!(*mac(&key, &data), expected, "keyed mac of {len} bytes");
        }
    }

    #[test]
    fn hash_matches_rfc7693_abc() {
        // RFC 7693 appendix B: BLAKE2s-256("abc").
        let expected = "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982";
        let got: String = hash(&[b"abc"]).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn hmac_and_hkdf_follow_rfc2104_and_the_noise_spec() {
        let key: [u8; 32] = bytes(32, 5).try_into().unwrap();
        let hmac_ref = |key: &[u8; 32], data: &[u8]| -> [u8; 32] {
            let mut ipad = [0x36u8; 64];
            let mut opad = [0x5cu8; 64];
            for i in 0..32 {
                ipad[i] ^= key[i];
                opad[i] ^= key[i];
            }
            let inner = reference_hash(&[&ipad[..], data].concat());
            reference_hash(&[&opad[..], &inner[..]].concat())
        };
        for len in [0, 1, 32, 63, 64, 65, 200] {
            let data = bytes(len, 2);
            assert_eq!(*hmac(&key, &[&data]), hmac_ref(&key, &data));
        }
        let ikm = bytes(32, 3);
        let temp = hmac_ref(&key, &ikm);
        let out1 = hmac_ref(&temp, &[1]);
        let out2 = hmac_ref(&temp, &[&out1[..], &[2]].concat());
        let out3 = hmac_ref(&temp, &[&out2[..], &[3]].concat());
        let [a, b] = hkdf::<2>(&key, &ikm);
        assert_eq!((*a, *b), (out1, out2));
        let [a, b, c] = hkdf::<3>(&key, &ikm);
        assert_eq!((*a, *b, *c), (out1, out2, out3));
        // Empty input keying material, as Noise's MixKey of nothing would use.
        let [a, _] = hkdf::<2>(&key, &[]);
        assert_eq!(*a, hmac_ref(&hmac_ref(&key, &[]), &[1]));
    }
}
