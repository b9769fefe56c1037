//! ring and RustCrypto must produce identical bytes, open each other's output, and refuse
//! any single flipped bit.
#![cfg(all(feature = "ring", feature = "rust-crypto"))]

use netmesh_cipher::{
    CipherError, PacketCipher, RingBackend, RustCryptoBackend, TxCounter, MAX_COUNTER,
};
use proptest::prelude::*;

/// Payload sizes: mostly small (the common case), some anywhere up to the largest payload.
fn payload_len() -> impl Strategy<Value = usize> {
    prop_oneof![3 => 0usize..=300, 1 => 0usize..=8108, 1 => Just(8108)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn backends_agree_and_open_each_other(
        key in any::<[u8; 32]>(),
        session_id in any::<u64>(),
        counter in 0..=MAX_COUNTER,
        aad in proptest::collection::vec(any::<u8>(), 0..64),
        len in payload_len(),
        fill in any::<u8>(),
        flip_seed in any::<u64>(),
    ) {
        let plaintext: Vec<u8> = (0..len).map(|i| fill.wrapping_add(i.to_le_bytes()[0])).collect();
        let ring = PacketCipher::<RingBackend>::with_counter(
            &key, session_id, TxCounter::starting_at(counter));
        let rust = PacketCipher::<RustCryptoBackend>::with_counter(
            &key, session_id, TxCounter::starting_at(counter));

        let mut by_ring = plaintext.clone();
        let mut by_rust = plaintext.clone();
        let (ring_counter, ring_tag) = ring.seal_in_place_detached(&aad, &mut by_ring).unwrap();
        let (rust_counter, rust_tag) = rust.seal_in_place_detached(&aad, &mut by_rust).unwrap();
        prop_assert_eq!(ring_counter, counter);
        prop_assert_eq!(rust_counter, counter);
        prop_assert_eq!(&by_ring, &by_rust);
        prop_assert_eq!(ring_tag, rust_tag);

        let mut opened = by_ring.clone();
        rust.open_in_place_detached(counter, &aad, &mut opened, &ring_tag).unwrap();
        prop_assert_eq!(&opened, &plaintext);
        let mut opened = by_rust.clone();
        ring.open_in_place_detached(counter, &aad, &mut opened, &rust_tag).unwrap();
        prop_assert_eq!(&opened, &plaintext);

        // Flip one bit somewhere in ciphertext ‖ tag ‖ aad.
        let total_bits = (by_ring.len() + ring_tag.len() + aad.len()) * 8;
        let bit = usize::try_from(flip_seed % total_bits as u64).unwrap();
        let (byte, mask) = (bit / 8, 1u8 << (bit % 8));
        let mut ciphertext = by_ring.clone();
        let mut tag = ring_tag;
        let mut bad_aad = aad.clone();
        if byte < ciphertext.len() {
            ciphertext[byte] ^= mask;
        } else if byte < ciphertext.len() + tag.len() {
            tag[byte - ciphertext.len()] ^= mask;
        } else {
            bad_aad[byte - ciphertext.len() - tag.len()] ^= mask;
        }
        let mut attempt = ciphertext.clone();
        prop_assert_eq!(
            ring.open_in_place_detached(counter, &bad_aad, &mut attempt, &tag),
            Err(CipherError::AuthFailed)
        );
        prop_assert!(attempt.is_empty() || attempt != plaintext);
        let mut attempt = ciphertext.clone();
        prop_assert_eq!(
            rust.open_in_place_detached(counter, &bad_aad, &mut attempt, &tag),
            Err(CipherError::AuthFailed)
        );
        prop_assert_eq!(&attempt, &ciphertext);

        let mut sealed = ciphertext;
        sealed.extend_from_slice(&tag);
        prop_assert_eq!(ring.verify(counter, &bad_aad, &sealed), Err(CipherError::AuthFailed));
        prop_assert_eq!(rust.verify(counter, &bad_aad, &sealed), Err(CipherError::AuthFailed));
    }
}
