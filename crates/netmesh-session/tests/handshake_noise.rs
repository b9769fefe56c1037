//! The crate's own NKpsk0 implementation against snow 0.10 (the Noise library net-mesh
//! 0.23 uses), byte for byte: with the same fixed ephemerals both write the same msg1 and
//! msg2 and reach the same handshake hash, hence the same session id and keys; with
//! random ephemerals each side completes a handshake with the other library's opposite
//! side. Random static keys, PSKs and both prologue conventions.

#![allow(clippy::unwrap_used)]

use blake2::digest::{KeyInit, Mac};
use blake2::Blake2sMac256;
use netmesh_session::{
    Initiator, Prologue, Psk, Responder, SessionKeys, StaticKeypair, HANDSHAKE_MESSAGE_LEN,
    NOISE_PROTOCOL,
};
use netmesh_wire::HEADER_SIZE;
use proptest::prelude::*;

/// SESSION.md's key schedule from a handshake hash, computed with the blake2 crate:
/// (session id, initiator tx, initiator rx).
fn schedule(h: &[u8]) -> (u64, [u8; 32], [u8; 32]) {
    let mac = |key: &[u8], data: &[u8]| -> [u8; 32] {
        let mut m = <Blake2sMac256 as KeyInit>::new_from_slice(key).unwrap();
        m.update(data);
        m.finalize().into_bytes().into()
    };
    let prk = mac(h, b"net-kdf-v1");
    (
        u64::from_le_bytes(h[..8].try_into().unwrap()),
        mac(&prk, b"initiator-tx"),
        mac(&prk, b"initiator-rx"),
    )
}

/// A snow handshake side: the initiator knows `server_public`, the responder holds
/// `server_secret`; `ephemeral` fixes the ephemeral key, `None` draws one.
enum Side<'a> {
    Initiator { server_public: &'a [u8; 32] },
    Responder { server_secret: &'a [u8; 32] },
}

fn snow_state(
    side: &Side<'_>,
    psk: &[u8; 32],
    prologue: &[u8],
    ephemeral: Option<&[u8; 32]>,
) -> snow::HandshakeState {
    let builder = snow::Builder::new(NOISE_PROTOCOL.parse().unwrap())
        .psk(0, psk)
        .unwrap()
        .prologue(prologue)
        .unwrap();
    let builder = match side {
        Side::Initiator { server_public } => builder.remote_public_key(*server_public),
        Side::Responder { server_secret } => builder.local_private_key(*server_secret),
    }
    .unwrap();
    let builder = match ephemeral {
        Some(e) => builder.fixed_ephemeral_key_for_testing_only(e),
        None => builder,
    };
    match side {
        Side::Initiator { .. } => builder.build_initiator(),
        Side::Responder { .. } => builder.build_responder(),
    }
    .unwrap()
}

fn snow_initiator(
    server_public: &[u8; 32],
    psk: &[u8; 32],
    prologue: &[u8],
    ephemeral: Option<&[u8; 32]>,
) -> snow::HandshakeState {
    snow_state(&Side::Initiator { server_public }, psk, prologue, ephemeral)
}

fn snow_responder(
    server_secret: &[u8; 32],
    psk: &[u8; 32],
    prologue: &[u8],
    ephemeral: Option<&[u8; 32]>,
) -> snow::HandshakeState {
    snow_state(&Side::Responder { server_secret }, psk, prologue, ephemeral)
}

fn write(state: &mut snow::HandshakeState) -> Vec<u8> {
    let mut message = vec![0u8; 128];
    let n = state.write_message(&[], &mut message).unwrap();
    message.truncate(n);
    message
}

fn read(state: &mut snow::HandshakeState, message: &[u8]) {
    let mut payload = [0u8; 128];
    assert_eq!(state.read_message(message, &mut payload).unwrap(), 0);
}

/// A handshake datagram around a Noise message, as net-mesh frames it.
fn datagram(message: &[u8]) -> Vec<u8> {
    let mut d = vec![0u8; HEADER_SIZE];
    d[..4].copy_from_slice(&[0x45, 0x4e, 1, 0x10]);
    d[64..66].copy_from_slice(&u16::try_from(message.len()).unwrap().to_le_bytes());
    d.extend_from_slice(message);
    d
}

fn assert_keys(keys: &SessionKeys, expected: (u64, [u8; 32], [u8; 32]), initiator: bool) {
    let (session_id, i_tx, i_rx) = expected;
    assert_eq!(keys.session_id(), session_id);
    let (tx, rx) = if initiator {
        (i_tx, i_rx)
    } else {
        (i_rx, i_tx)
    };
    assert_eq!(keys.tx_key(), &tx);
    assert_eq!(keys.rx_key(), &rx);
}

fn prologue_of(mesh: Option<(u64, u64)>) -> Prologue {
    match mesh {
        None => Prologue::Empty,
        Some((initiator_id, responder_id)) => Prologue::Mesh {
            initiator_id,
            responder_id,
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Fixed ephemerals: both libraries write the same bytes and reach the same hash.
    #[test]
    fn same_messages_hash_and_keys_as_snow(
        server_secret in any::<[u8; 32]>(),
        psk in any::<[u8; 32]>(),
        e_i in any::<[u8; 32]>(),
        e_r in any::<[u8; 32]>(),
        mesh in proptest::option::of(any::<(u64, u64)>()),
    ) {
        let prologue = prologue_of(mesh);
        let server = StaticKeypair::from_secret(&server_secret);
        let public = *server.public_key().as_bytes();
        let bytes = prologue.bytes();

        let mut snow_i = snow_initiator(&public, &psk, &bytes, Some(&e_i));
        let mut snow_r = snow_responder(&server_secret, &psk, &bytes, Some(&e_r));
        let msg1 = write(&mut snow_i);
        read(&mut snow_r, &msg1);
        let msg2 = write(&mut snow_r);
        read(&mut snow_i, &msg2);
        prop_assert_eq!(msg1.len(), HANDSHAKE_MESSAGE_LEN);
        prop_assert_eq!(snow_i.get_handshake_hash(), snow_r.get_handshake_hash());
        let expected = schedule(snow_i.get_handshake_hash());

        let psk = Psk::new(psk);
        let mut ours_i = Initiator::new_with_ephemeral_for_testing_only(
            &server.public_key(), &psk, &prologue, &e_i,
        ).unwrap();
        prop_assert_eq!(&ours_i.msg1_datagram()[HEADER_SIZE..], &msg1[..]);
        let (server_keys, datagram2) = Responder::new(&server, &psk)
            .respond_with_ephemeral_for_testing_only(ours_i.msg1_datagram(), &prologue, &e_r)
            .unwrap();
        prop_assert_eq!(&datagram2[HEADER_SIZE..], &msg2[..]);
        let client_keys = ours_i.read_msg2(&datagram2).unwrap();
        assert_keys(&client_keys, expected, true);
        assert_keys(&server_keys, expected, false);
    }

    /// Random ephemerals: our initiator with snow's responder, snow's initiator with
    /// our responder.
    #[test]
    fn each_side_completes_with_snow_as_the_other(
        server_secret in any::<[u8; 32]>(),
        psk in any::<[u8; 32]>(),
        mesh in proptest::option::of(any::<(u64, u64)>()),
    ) {
        let prologue = prologue_of(mesh);
        let server = StaticKeypair::from_secret(&server_secret);
        let public = *server.public_key().as_bytes();
        let bytes = prologue.bytes();
        let our_psk = Psk::new(psk);

        let mut ours_i = Initiator::new(&server.public_key(), &our_psk, &prologue).unwrap();
        let mut snow_r = snow_responder(&server_secret, &psk, &bytes, None);
        read(&mut snow_r, &ours_i.msg1_datagram()[HEADER_SIZE..]);
        let msg2 = write(&mut snow_r);
        let keys = ours_i.read_msg2(&datagram(&msg2)).unwrap();
        assert_keys(&keys, schedule(snow_r.get_handshake_hash()), true);

        let mut snow_i = snow_initiator(&public, &psk, &bytes, None);
        let msg1 = write(&mut snow_i);
        let (keys, datagram2) = Responder::new(&server, &our_psk)
            .respond(&datagram(&msg1), &prologue)
            .unwrap();
        read(&mut snow_i, &datagram2[HEADER_SIZE..]);
        assert_keys(&keys, schedule(snow_i.get_handshake_hash()), false);
    }
}

/// net-mesh's key schedule takes the handshake hash `h`, and Noise's MixKey never feeds
/// `h`: it absorbs only the protocol name, prologue, responder public key, the PSK (via
/// MixKeyAndHash) and the bytes on the wire. So the session keys follow from the PSK and
/// a recorded handshake, with no private key at all (a property of the wire protocol,
/// kept for compatibility; docs/SECURITY.md).
#[test]
fn session_keys_follow_from_the_psk_and_the_public_handshake_alone() {
    use blake2::{Blake2s256, Digest};
    let hash = |parts: &[&[u8]]| -> [u8; 32] {
        let mut state = Blake2s256::new();
        for part in parts {
            state.update(part);
        }
        state.finalize().into()
    };
    let hmac = |key: &[u8; 32], parts: &[&[u8]]| -> [u8; 32] {
        let (mut ipad, mut opad) = ([0x36u8; 64], [0x5cu8; 64]);
        for i in 0..32 {
            ipad[i] ^= key[i];
            opad[i] ^= key[i];
        }
        let inner = hash(&[&[&ipad[..]], parts].concat());
        hash(&[&opad[..], &inner[..]])
    };
    for mesh in [None, Some((7, 9))] {
        let prologue = prologue_of(mesh);
        let server = StaticKeypair::generate().unwrap();
        let psk_bytes = [0x6b; 32];
        let psk = Psk::new(psk_bytes);
        let mut initiator = Initiator::new(&server.public_key(), &psk, &prologue).unwrap();
        let (server_keys, datagram2) = Responder::new(&server, &psk)
            .respond(initiator.msg1_datagram(), &prologue)
            .unwrap();
        let client_keys = initiator.read_msg2(&datagram2).unwrap();

        // What an observer who knows the PSK sees: the public key and both messages.
        let msg1 = &initiator.msg1_datagram()[HEADER_SIZE..];
        let msg2 = &datagram2[HEADER_SIZE..];
        let ck = hash(&[NOISE_PROTOCOL.as_bytes()]);
        let mut h = hash(&[&ck, &prologue.bytes()]);
        h = hash(&[&h, server.public_key().as_bytes()]);
        let temp_key = hmac(&ck, &[&psk_bytes]);
        let out1 = hmac(&temp_key, &[&[1]]);
        let temp_h = hmac(&temp_key, &[&out1, &[2]]);
        for part in [
            &temp_h[..],
            &msg1[..32],
            &msg1[32..],
            &msg2[..32],
            &msg2[32..],
        ] {
            h = hash(&[&h, part]);
        }
        assert_keys(&client_keys, schedule(&h), true);
        assert_keys(&server_keys, schedule(&h), false);
    }
}
