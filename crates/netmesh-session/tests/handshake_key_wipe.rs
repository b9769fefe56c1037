//! No handshake secret reaches freed heap memory: a global allocator scans every freed
//! block for any 16-byte run of the static secret, the PSK, both ephemeral secrets and
//! the derived session keys while a full handshake is made and everything is dropped.
//! The same scan of snow 0.10's handshake (the implementation this crate replaced) finds
//! its secrets, which shows the scan sees what it looks for.

#![allow(clippy::unwrap_used)]

use std::sync::Mutex;

use netmesh_session::{
    Initiator, Prologue, Psk, Responder, SessionKeys, StaticKeypair, NOISE_PROTOCOL,
};
use netmesh_testkit::alloc::{freed_blocks_with_any_run, key_pattern, KeyScanningAllocator};

/// Distinctive secrets that occur nowhere else in the process.
const STATIC_SECRET: [u8; 32] = key_pattern(0x5eed_0001);
const PSK: [u8; 32] = key_pattern(0x5eed_0002);
const INITIATOR_EPHEMERAL: [u8; 32] = key_pattern(0x5eed_0003);
const RESPONDER_EPHEMERAL: [u8; 32] = key_pattern(0x5eed_0004);

/// What each needle is, for the failure message.
const NAMES: [&str; 6] = [
    "static secret",
    "PSK",
    "initiator ephemeral",
    "responder ephemeral",
    "initiator tx key",
    "initiator rx key",
];

/// The tests run one at a time: their set-up, outside a scan, must not free blocks while
/// another test scans.
static SERIAL: Mutex<()> = Mutex::new(());

#[global_allocator]
static GLOBAL: KeyScanningAllocator = KeyScanningAllocator;

/// Freed blocks holding any 16-byte run (at any offset) of the secrets named in [`NAMES`]
/// while `f` runs, and the names of those found.
fn scan(f: impl FnOnce()) -> (usize, Vec<&'static str>) {
    let scan = freed_blocks_with_any_run(&secrets(), f);
    let names = (0..NAMES.len())
        .filter(|i| scan.found & (1 << i) != 0)
        .map(|i| NAMES[i])
        .collect();
    (scan.hits, names)
}

const PROLOGUE: Prologue = Prologue::Mesh {
    initiator_id: 3,
    responder_id: 4,
};

/// One full handshake of ours with every secret-bearing value on the heap, so that its
/// drop frees a block the scanner reads; a refused msg2 on the way.
fn our_handshake() -> (Box<SessionKeys>, Box<SessionKeys>) {
    let server = Box::new(StaticKeypair::from_secret(&STATIC_SECRET));
    let psk = Box::new(Psk::new(PSK));
    let responder = Box::new(Responder::new(&server, &psk));
    let mut initiator = Box::new(
        Initiator::new_with_ephemeral_for_testing_only(
            &server.public_key(),
            &psk,
            &PROLOGUE,
            &INITIATOR_EPHEMERAL,
        )
        .unwrap(),
    );
    let (server_keys, msg2) = responder
        .respond_with_ephemeral_for_testing_only(
            initiator.msg1_datagram(),
            &PROLOGUE,
            &RESPONDER_EPHEMERAL,
        )
        .unwrap();
    let mut forged = msg2.to_vec();
    forged[100] ^= 1;
    assert!(initiator.read_msg2(&forged).is_err());
    let client_keys = Box::new(initiator.read_msg2(&msg2).unwrap());
    (client_keys, Box::new(server_keys))
}

/// The secrets in the order of [`NAMES`]: the fixed ones and the session keys of the
/// fixed handshake (learned outside a scan).
fn secrets() -> [[u8; 32]; 6] {
    let (client, server) = our_handshake();
    assert_eq!(client.tx_key(), server.rx_key());
    [
        STATIC_SECRET,
        PSK,
        INITIATOR_EPHEMERAL,
        RESPONDER_EPHEMERAL,
        *client.tx_key(),
        *client.rx_key(),
    ]
}

#[test]
fn the_scanner_detects_a_leaked_secret() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // A run of 16 bytes from the middle of the PSK, at an odd offset of the block.
    let mut leak = vec![0u8; 40];
    leak[3..19].copy_from_slice(&PSK[7..23]);
    let (blocks, names) = scan(|| drop(std::hint::black_box(leak)));
    assert_eq!((blocks, names), (1, vec!["PSK"]));
}

#[test]
fn a_full_handshake_leaves_no_secret_in_freed_memory() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (blocks, names) = scan(|| {
        let (client, server) = our_handshake();
        assert_eq!(client.session_id(), server.session_id());
        drop(client);
        drop(server);
    });
    assert_eq!(
        (blocks, names),
        (0, vec![]),
        "freed blocks held handshake secrets"
    );
}

/// snow 0.10 with the same secrets, everything dropped as above: its states are freed
/// with the secrets in them. If this ever fails, snow started wiping its state.
#[test]
fn snow_leaves_its_handshake_secrets_in_freed_memory() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server_public = *StaticKeypair::from_secret(&STATIC_SECRET)
        .public_key()
        .as_bytes();
    let prologue = PROLOGUE.bytes();
    let (blocks, names) = scan(|| {
        let builder = || {
            snow::Builder::new(NOISE_PROTOCOL.parse().unwrap())
                .psk(0, &PSK)
                .unwrap()
                .prologue(&prologue)
                .unwrap()
        };
        let mut initiator = Box::new(
            builder()
                .remote_public_key(&server_public)
                .unwrap()
                .fixed_ephemeral_key_for_testing_only(&INITIATOR_EPHEMERAL)
                .build_initiator()
                .unwrap(),
        );
        let mut responder = Box::new(
            builder()
                .local_private_key(&STATIC_SECRET)
                .unwrap()
                .fixed_ephemeral_key_for_testing_only(&RESPONDER_EPHEMERAL)
                .build_responder()
                .unwrap(),
        );
        let mut msg = [0u8; 64];
        let mut payload = [0u8; 64];
        let n = initiator.write_message(&[], &mut msg).unwrap();
        responder.read_message(&msg[..n], &mut payload).unwrap();
        let n = responder.write_message(&[], &mut msg).unwrap();
        initiator.read_message(&msg[..n], &mut payload).unwrap();
        assert_eq!(
            initiator.get_handshake_hash(),
            responder.get_handshake_hash()
        );
        drop(initiator);
        drop(responder);
    });
    eprintln!("snow 0.10: {blocks} freed blocks held secrets: {names:?}");
    assert!(blocks > 0, "snow's freed state held no secret");
    for secret in [
        "static secret",
        "PSK",
        "initiator ephemeral",
        "responder ephemeral",
    ] {
        assert!(names.contains(&secret), "{secret} not found in {names:?}");
    }
}

/// Handshake sides kept in collections that grow: each reallocation moves them and frees
/// the old block, so a secret stored inline in a side would be left behind.
#[test]
fn handshake_sides_moved_by_a_growing_vector_leave_no_secret_behind() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = StaticKeypair::from_secret(&STATIC_SECRET);
    let psk = Psk::new(PSK);
    let (blocks, names) = scan(|| {
        let mut initiators = Vec::new();
        let mut responders = Vec::new();
        for _ in 0..40 {
            initiators.push(
                Initiator::new_with_ephemeral_for_testing_only(
                    &server.public_key(),
                    &psk,
                    &PROLOGUE,
                    &INITIATOR_EPHEMERAL,
                )
                .unwrap(),
            );
            responders.push(Responder::new(&server, &psk));
        }
        drop(initiators);
        drop(responders);
    });
    assert_eq!(
        (blocks, names),
        (0, vec![]),
        "freed blocks held handshake secrets"
    );
}

/// Session keys kept in a growing collection: each reallocation moves them, so keys held
/// inline would be left in every freed block (they are boxed for that reason).
#[test]
fn session_keys_moved_by_a_growing_vector_leave_no_key_behind() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (client, server) = our_handshake();
    let (tx, rx) = (*client.tx_key(), *client.rx_key());
    let session_id = client.session_id();
    drop((client, server));
    let (blocks, names) = scan(|| {
        let mut all = Vec::new();
        for _ in 0..40 {
            all.push(SessionKeys::from_parts(session_id, tx, rx));
        }
        drop(all);
    });
    assert_eq!(
        (blocks, names),
        (0, vec![]),
        "freed blocks held session keys"
    );
}
