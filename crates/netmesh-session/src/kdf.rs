//! net-mesh 0.23's key schedule: session id and per-direction keys from the Noise
//! handshake hash.

use blake2::digest::{KeyInit, Mac};
use blake2::Blake2sMac256;
use zeroize::{Zeroize, Zeroizing};

use crate::keys::{SessionKeys, KEY_LEN};

/// The extract step's fixed input.
const KDF_LABEL: &[u8] = b"net-kdf-v1";
/// Info of the initiator-to-responder key.
const INITIATOR_TX: &[u8] = b"initiator-tx";
/// Info of the responder-to-initiator key.
const INITIATOR_RX: &[u8] = b"initiator-rx";

/// `BLAKE2s-MAC-256(key, data)` into a buffer wiped on drop.
fn mac(key: &[u8; KEY_LEN], data: &[u8]) -> Zeroizing<[u8; KEY_LEN]> {
    let mut state = <Blake2sMac256 as KeyInit>::new(key.into());
    Mac::update(&mut state, data);
    let mut tag = state.finalize().into_bytes();
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    out.copy_from_slice(&tag);
    tag.zeroize();
    out
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
}
