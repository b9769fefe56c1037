//! The counter nonce of WIRE.md.

use crate::NONCE_SIZE;

/// The 4-byte nonce prefix of a session: the little-endian bytes of
/// `(session_id as u32) ^ ((session_id >> 32) as u32)`.
///
/// Both halves of the id contribute, so two sessions whose ids differ only in the high
/// half still get different prefixes.
///
/// # Examples
///
/// ```
/// use netmesh_cipher::session_prefix_from_id;
///
/// assert_eq!(session_prefix_from_id(0x0000_0001_0000_0003), [2, 0, 0, 0]);
/// assert_eq!(session_prefix_from_id(0), [0; 4]);
/// ```
#[inline]
#[must_use]
pub const fn session_prefix_from_id(session_id: u64) -> [u8; 4] {
    // The casts keep the low half by design: the high half is folded in by the XOR.
    #[allow(clippy::cast_possible_truncation)]
    let folded = (session_id as u32) ^ ((session_id >> 32) as u32);
    folded.to_le_bytes()
}

/// The nonce for one counter: `session_id_prefix ‖ counter.to_le_bytes()`, the layout of
/// `netmesh_wire::compose_nonce`.
///
/// # Examples
///
/// ```
/// use netmesh_cipher::{nonce_for, session_prefix_from_id};
///
/// let nonce = nonce_for(session_prefix_from_id(7), 0x0102);
/// assert_eq!(nonce, [7, 0, 0, 0, 0x02, 0x01, 0, 0, 0, 0, 0, 0]);
/// ```
#[inline]
#[must_use]
pub const fn nonce_for(session_id_prefix: [u8; 4], counter: u64) -> [u8; NONCE_SIZE] {
    netmesh_wire::compose_nonce(session_id_prefix, counter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_folds_both_halves() {
        assert_eq!(
            session_prefix_from_id(0x8e91_9ecd_46ce_bcc7),
            (0x46ce_bcc7u32 ^ 0x8e91_9ecd).to_le_bytes()
        );
        assert_ne!(
            session_prefix_from_id(0x0000_0001_0000_0000),
            session_prefix_from_id(0)
        );
    }
}
