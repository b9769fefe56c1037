//! Known-answer tests, run once per backend: RFC 8439 and the reference implementation's
//! packets (`vectors/reference-packets.json`).
// The shared bodies below run only inside #[test] fns; clippy's allow-unwrap-in-tests does
// not see that through a generic helper, and a failed unwrap is a failed test here.
#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use hex_literal::hex;
use netmesh_cipher::{Backend, CipherError, PacketCipher, TxCounter, TAG_SIZE};
use netmesh_testkit::vectors::{key_hex as key, reference as vectors, u64_hex};

/// RFC 8439 §2.8.2, <https://www.rfc-editor.org/rfc/rfc8439#section-2.8.2>.
mod rfc8439 {
    use super::*;

    pub(crate) const KEY: [u8; 32] =
        hex!("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
    pub(crate) const NONCE: [u8; 12] = hex!("070000004041424344454647");
    pub(crate) const AAD: [u8; 12] = hex!("50515253c0c1c2c3c4c5c6c7");
    pub(crate) const PLAINTEXT: &[u8] = b"Ladies and Gentlemen of the class of '99: If I could \
        offer you only one tip for the future, sunscreen would be it.";
    pub(crate) const CIPHERTEXT: [u8; 114] = hex!(
        "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
        "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
        "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
        "3ff4def08e4b7a9de576d26586cec64b6116"
    );
    pub(crate) const TAG: [u8; 16] = hex!("1ae10b594f09e26a7e902ecbd0600691");
    /// The nonce as this crate builds it: session 7 gives prefix `07000000`, and the
    /// counter is the LE reading of the last 8 nonce bytes.
    pub(crate) const SESSION_ID: u64 = 7;
    pub(crate) const COUNTER: u64 = 0x4746_4544_4342_4140;
}

/// The header fields this layer reads, computed from the bytes (no netmesh-wire here).
struct Parsed {
    aad: [u8; 56],
    counter: u64,
    payload_len: usize,
}

fn parse(packet: &[u8]) -> Parsed {
    let mut aad = [0; 56];
    aad[..6].copy_from_slice(&packet[0..6]);
    aad[6] = 0;
    aad[7..12].copy_from_slice(&packet[7..12]);
    aad[12..].copy_from_slice(&packet[24..68]);
    let counter = u64::from_le_bytes(packet[16..24].try_into().unwrap());
    let payload_len = usize::from(u16::from_le_bytes([packet[64], packet[65]]));
    assert_eq!(packet.len(), 68 + payload_len + TAG_SIZE);
    Parsed {
        aad,
        counter,
        payload_len,
    }
}

fn frames(events: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for event in events {
        let bytes = hex::decode(event).unwrap();
        out.extend_from_slice(&u32::try_from(bytes.len()).unwrap().to_le_bytes());
        out.extend_from_slice(&bytes);
    }
    out
}

fn rfc_backend<B: Backend>() {
    use rfc8439::*;
    let backend = B::new(&KEY);
    let mut data = PLAINTEXT.to_vec();
    let tag = backend.seal_in_place(&NONCE, &AAD, &mut data).unwrap();
    assert_eq!(data, CIPHERTEXT);
    assert_eq!(tag, TAG);
    backend
        .open_in_place(&NONCE, &AAD, &mut data, &TAG)
        .unwrap();
    assert_eq!(data, PLAINTEXT);
}

fn rfc_packet_cipher<B: Backend>() {
    use rfc8439::*;
    let sender = PacketCipher::<B>::with_counter(&KEY, SESSION_ID, TxCounter::starting_at(COUNTER));
    let mut buf = BytesMut::from(PLAINTEXT);
    assert_eq!(sender.seal_in_place(&AAD, &mut buf).unwrap(), COUNTER);
    assert_eq!(&buf[..CIPHERTEXT.len()], CIPHERTEXT);
    assert_eq!(&buf[CIPHERTEXT.len()..], TAG);

    let receiver = PacketCipher::<B>::new(&KEY, SESSION_ID);
    receiver.verify(COUNTER, &AAD, &buf).unwrap();
    let opened = receiver
        .open_bytes(COUNTER, &AAD, buf.clone().freeze())
        .unwrap();
    assert_eq!(opened, PLAINTEXT);
    assert_eq!(
        receiver.verify(COUNTER + 1, &AAD, &buf),
        Err(CipherError::AuthFailed)
    );
}

fn reference_data_packets<B: Backend>() {
    let vectors = vectors();
    assert!(!vectors.data_packets.is_empty());
    for (i, vector) in vectors.data_packets.iter().enumerate() {
        let packet = hex::decode(&vector.packet).unwrap();
        let parsed = parse(&packet);
        assert_eq!(parsed.counter, vector.counter, "packet {i}");
        let key = key(&vector.key);
        let session_id = u64_hex(&vector.session_id);
        let expected = frames(&vector.events);
        assert_eq!(parsed.payload_len, expected.len(), "packet {i}");

        let receiver = PacketCipher::<B>::new(&key, session_id);
        let sealed = Bytes::copy_from_slice(&packet[68..]);
        receiver
            .verify(parsed.counter, &parsed.aad, &sealed)
            .unwrap();
        let plaintext = receiver
            .open_bytes(parsed.counter, &parsed.aad, sealed)
            .unwrap();
        assert_eq!(plaintext, expected, "packet {i}");

        // A fresh sender at that counter reproduces the ciphertext and tag exactly.
        let sender = PacketCipher::<B>::with_counter(
            &key,
            session_id,
            TxCounter::starting_at(vector.counter),
        );
        let mut buf = BytesMut::from(&expected[..]);
        assert_eq!(
            sender.seal_in_place(&parsed.aad, &mut buf).unwrap(),
            vector.counter
        );
        assert_eq!(&buf[..], &packet[68..], "packet {i}");
        assert_eq!(&packet[12..16], sender.session_prefix(), "packet {i}");
    }
}

fn reference_heartbeats<B: Backend>() {
    let vectors = vectors();
    assert!(!vectors.heartbeats.is_empty());
    for (i, vector) in vectors.heartbeats.iter().enumerate() {
        let packet = hex::decode(&vector.packet).unwrap();
        assert_eq!(packet.len(), 84, "heartbeat {i}");
        let parsed = parse(&packet);
        assert_eq!(parsed.counter, vector.counter);
        let key = key(&vector.key);
        let session_id = u64_hex(&vector.session_id);
        let receiver = PacketCipher::<B>::new(&key, session_id);
        receiver
            .verify(parsed.counter, &parsed.aad, &packet[68..])
            .unwrap();
        assert_eq!(
            receiver.verify(parsed.counter + 1, &parsed.aad, &packet[68..]),
            Err(CipherError::AuthFailed)
        );

        let sender = PacketCipher::<B>::with_counter(
            &key,
            session_id,
            TxCounter::starting_at(vector.counter),
        );
        let mut empty = [];
        let (counter, tag) = sender
            .seal_in_place_detached(&parsed.aad, &mut empty)
            .unwrap();
        assert_eq!(counter, vector.counter);
        assert_eq!(&tag[..], &packet[68..], "heartbeat {i}");
    }
}

macro_rules! backend_tests {
    ($name:ident, $backend:ty) => {
        mod $name {
            #[test]
            fn rfc8439_section_2_8_2_backend() {
                super::rfc_backend::<$backend>();
            }

            #[test]
            fn rfc8439_section_2_8_2_through_packet_cipher() {
                super::rfc_packet_cipher::<$backend>();
            }

            #[test]
            fn reference_data_packets_decrypt_and_reencrypt() {
                super::reference_data_packets::<$backend>();
            }

            #[test]
            fn reference_heartbeats_verify_and_reseal() {
                super::reference_heartbeats::<$backend>();
            }
        }
    };
}

#[cfg(feature = "ring")]
backend_tests!(ring, netmesh_cipher::RingBackend);
#[cfg(feature = "rust-crypto")]
backend_tests!(rust_crypto, netmesh_cipher::RustCryptoBackend);
#[cfg(feature = "openssl")]
backend_tests!(openssl, netmesh_cipher::OpenSslBackend);
