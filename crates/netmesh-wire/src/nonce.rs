//! The nonce layout of WIRE.md, header bytes 12..24: `prefix (4) ‖ counter (8, LE)`.
//!
//! The one place that layout is written down: the header, the cipher (which derives the
//! prefix from the session id) and the pools all compose and read nonces through these.

use crate::NONCE_SIZE;

/// Bytes of the session prefix at the front of a nonce.
pub const NONCE_PREFIX_SIZE: usize = 4;

const _: () = assert!(NONCE_PREFIX_SIZE + 8 == NONCE_SIZE);

/// The nonce of one packet: `prefix ‖ counter.to_le_bytes()`.
///
/// # Examples
///
/// ```
/// use netmesh_wire::compose_nonce;
///
/// let nonce = compose_nonce([7, 0, 0, 0], 0x0102);
/// assert_eq!(nonce, [7, 0, 0, 0, 0x02, 0x01, 0, 0, 0, 0, 0, 0]);
/// ```
#[inline]
#[must_use]
pub const fn compose_nonce(prefix: [u8; NONCE_PREFIX_SIZE], counter: u64) -> [u8; NONCE_SIZE] {
    let p = prefix;
    let c = counter.to_le_bytes();
    [
        p[0], p[1], p[2], p[3], c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
    ]
}

/// The session prefix of a nonce: its first 4 bytes.
///
/// # Examples
///
/// ```
/// use netmesh_wire::{compose_nonce, nonce_prefix};
///
/// assert_eq!(nonce_prefix(&compose_nonce([1, 2, 3, 4], 99)), [1, 2, 3, 4]);
/// ```
#[inline]
#[must_use]
pub const fn nonce_prefix(nonce: &[u8; NONCE_SIZE]) -> [u8; NONCE_PREFIX_SIZE] {
    [nonce[0], nonce[1], nonce[2], nonce[3]]
}

/// The counter of a nonce: its last 8 bytes, little-endian.
///
/// # Examples
///
/// ```
/// use netmesh_wire::{compose_nonce, nonce_counter};
///
/// assert_eq!(nonce_counter(&compose_nonce([1, 2, 3, 4], 513)), 513);
/// ```
#[inline]
#[must_use]
pub const fn nonce_counter(nonce: &[u8; NONCE_SIZE]) -> u64 {
    let n = nonce;
    u64::from_le_bytes([n[4], n[5], n[6], n[7], n[8], n[9], n[10], n[11]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_then_little_endian_counter() {
        let nonce = compose_nonce([0xaa, 0xbb, 0xcc, 0xdd], 0x1122_3344_5566_7788);
        assert_eq!(
            nonce,
            [0xaa, 0xbb, 0xcc, 0xdd, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]
        );
        assert_eq!(nonce_prefix(&nonce), [0xaa, 0xbb, 0xcc, 0xdd]);
        assert_eq!(nonce_counter(&nonce), 0x1122_3344_5566_7788);
    }
}
