//! Receive-side behaviour: every tampering refused, replays refused, concurrency, fuzz.

// Test data: counters, indices and sizes here are small by construction.
#![allow(clippy::cast_possible_truncation)]

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use netmesh_cipher::TxCounter;
use netmesh_pool::{OpenError, PacketBuilder, PacketOpener, PacketPool};
use netmesh_wire::{PacketFlags, WireError};

const KEY: [u8; 32] = [0x42; 32];
const SESSION: u64 = 0x0bad_cafe_dead_beef;

fn packet_at(counter: u64, events: &[Bytes]) -> Bytes {
    let mut builder =
        PacketBuilder::with_shared_counter(&KEY, SESSION, 7, TxCounter::starting_at(counter));
    builder.build(3, counter, events, PacketFlags::RELIABLE)
}

fn sample_events() -> Vec<Bytes> {
    vec![
        Bytes::from_static(b"first event"),
        Bytes::from(vec![0xee; 64]),
    ]
}

fn flipped(packet: &Bytes, index: usize, mask: u8) -> Bytes {
    let mut bytes = packet.to_vec();
    bytes[index] ^= mask;
    Bytes::from(bytes)
}

#[test]
fn every_single_byte_change_is_refused_except_hop_count() {
    for packet in [packet_at(5, &sample_events()), packet_at(6, &[])] {
        let opener = PacketOpener::new(&KEY, SESSION);
        for index in 0..packet.len() {
            for mask in [0x01, 0x80, 0xff] {
                if index == 6 {
                    // hop_count: opening it would succeed and use up the counter.
                    continue;
                }
                let result = opener.open(flipped(&packet, index, mask));
                assert!(result.is_err(), "byte {index} ^ {mask:#04x} was accepted");
            }
        }
        // Refusals changed nothing: the untouched packet still opens.
        opener
            .open(packet.clone())
            .expect("the original still opens");
    }
}

#[test]
fn hop_count_is_not_authenticated_by_design() {
    let packet = packet_at(0, &sample_events());
    let opener = PacketOpener::new(&KEY, SESSION);
    let opened = opener
        .open(flipped(&packet, 6, 0x05))
        .expect("forwarders may change hop_count");
    assert_eq!(opened.header().hop_count, 5);
    assert_eq!(opened.events().collect::<Vec<_>>(), sample_events());
}

#[test]
fn a_changed_nonce_prefix_is_refused_before_any_crypto() {
    // The receiver derives the prefix from its own session id, so a sender can never
    // choose it; a prefix that differs from the derived one is refused by name.
    let packet = packet_at(0, &sample_events());
    let opener = PacketOpener::new(&KEY, SESSION);
    for index in 12..16 {
        assert!(matches!(
            opener.open(flipped(&packet, index, 0x10)),
            Err(OpenError::WrongNoncePrefix { .. })
        ));
    }
    assert_eq!(opener.highest_counter(), None);
}

#[test]
fn each_check_has_its_own_error() {
    let packet = packet_at(0, &sample_events());
    let opener = PacketOpener::new(&KEY, SESSION);
    assert_eq!(
        opener.open(packet.slice(..10)),
        Err(OpenError::MalformedHeader(WireError::TooShort {
            len: 10,
            need: 68
        }))
    );
    assert!(matches!(
        opener.open(flipped(&packet, 0, 1)),
        Err(OpenError::MalformedHeader(WireError::BadMagic { .. }))
    ));
    assert!(matches!(
        opener.open(flipped(&packet, 2, 2)),
        Err(OpenError::MalformedHeader(WireError::BadVersion { .. }))
    ));
    assert_eq!(
        opener.open(packet.slice(..packet.len() - 1)),
        Err(OpenError::WrongLength {
            expected: packet.len(),
            actual: packet.len() - 1
        })
    );
    assert!(matches!(
        opener.open(flipped(&packet, 24, 1)),
        Err(OpenError::WrongSession { .. })
    ));
    assert_eq!(
        opener.open(flipped(&packet, 90, 1)),
        Err(OpenError::AuthFailed)
    );
    assert_eq!(
        PacketOpener::new(&[0; 32], SESSION).open(packet.clone()),
        Err(OpenError::AuthFailed)
    );
    opener.open(packet.clone()).unwrap();
    assert_eq!(opener.open(packet), Err(OpenError::Replayed { counter: 0 }));
    assert_eq!(
        opener.open(
            PacketPool::new(1, &KEY, SESSION)
                .get()
                .build_handshake(b"hi")
        ),
        Err(OpenError::Handshake)
    );
}

#[test]
fn authenticated_but_malformed_frames_are_refused() {
    // A sender that declares more events than it framed: only a key holder can do this.
    use netmesh_cipher::PacketCipher;
    use netmesh_wire::{NetHeader, NONCE_SIZE};
    let cipher: PacketCipher = PacketCipher::new(&KEY, SESSION);
    let mut payload = bytes::BytesMut::new();
    netmesh_wire::FrameCodec::write_events(&[Bytes::from_static(b"only one")], &mut payload);
    let header = NetHeader::new(
        SESSION,
        1,
        1,
        [0; NONCE_SIZE],
        u16::try_from(payload.len()).unwrap(),
        2,
        PacketFlags::NONE,
    );
    let aad = header.aad();
    let counter = cipher.seal_in_place(&aad, &mut payload).unwrap();
    let mut header_bytes = header.to_bytes();
    header_bytes[12..16].copy_from_slice(&cipher.session_prefix());
    header_bytes[16..24].copy_from_slice(&counter.to_le_bytes());
    let mut datagram = header_bytes.to_vec();
    datagram.extend_from_slice(&payload);
    let opener = PacketOpener::new(&KEY, SESSION);
    assert!(matches!(
        opener.open(Bytes::from(datagram)),
        Err(OpenError::MalformedFrames(WireError::TooFewFrames {
            declared: 2,
            found: 1
        }))
    ));
}

#[test]
fn truncation_and_extension_at_every_length_are_refused() {
    let packet = packet_at(0, &sample_events());
    let opener = PacketOpener::new(&KEY, SESSION);
    for len in 0..packet.len() {
        assert!(
            opener.open(packet.slice(..len)).is_err(),
            "truncated to {len} accepted"
        );
    }
    for extra in 1..=64 {
        let mut longer = packet.to_vec();
        longer.extend(std::iter::repeat_n(0u8, extra));
        assert!(matches!(
            opener.open(Bytes::from(longer)),
            Err(OpenError::WrongLength { .. })
        ));
    }
    opener.open(packet).expect("the original still opens");
}

#[test]
fn shared_datagrams_are_copied_and_still_open() {
    let packet = packet_at(0, &sample_events());
    let keep = packet.clone();
    let opened = PacketOpener::new(&KEY, SESSION).open(packet).unwrap();
    assert_eq!(opened.events().collect::<Vec<_>>(), sample_events());
    // The caller's copy is untouched ciphertext.
    assert_eq!(keep, packet_at(0, &sample_events()));
}

#[test]
fn each_packet_opens_once_and_reordering_within_the_window_is_accepted() {
    let opener = PacketOpener::new(&KEY, SESSION);
    let mut order: Vec<u64> = (0..3000).collect();
    // Reverse blocks of 500: every packet arrives out of order but within the window.
    for block in order.chunks_mut(500) {
        block.reverse();
    }
    for &counter in &order {
        let packet = packet_at(counter, &[Bytes::from_static(b"x")]);
        opener
            .open(packet.clone())
            .unwrap_or_else(|e| panic!("counter {counter}: {e}"));
        assert_eq!(opener.open(packet), Err(OpenError::Replayed { counter }));
    }
}

#[test]
fn window_edges_behave_as_specified() {
    let opener = PacketOpener::new(&KEY, SESSION);
    // Before anything is accepted the window sits at 0: a first counter past 1024 is refused.
    assert!(matches!(
        opener.open(packet_at(1025, &[])),
        Err(OpenError::TooFarAhead { counter: 1025, .. })
    ));
    opener.open(packet_at(1024, &[])).unwrap();
    opener.open(packet_at(2000, &[])).unwrap();
    assert!(matches!(
        opener.open(packet_at(2000 - 1024, &[])),
        Err(OpenError::TooOld {
            counter: 976,
            highest: 2000
        })
    ));
    opener
        .open(packet_at(2000 - 1023, &[]))
        .expect("just inside the window");
    // No sender can seal under counter u64::MAX; a datagram claiming it is refused by name.
    let mut reserved = packet_at(2001, &[]).to_vec();
    reserved[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(
        opener.open(Bytes::from(reserved)),
        Err(OpenError::CounterReserved { counter: u64::MAX })
    );
    assert!(matches!(
        opener.open(packet_at(2000 + 1026, &[])),
        Err(OpenError::TooFarAhead { .. })
    ));
    opener
        .open(packet_at(2000 + 1025, &[]))
        .expect("exactly 1024 ahead of highest + 1");
}

#[test]
fn threads_sharing_an_opener_accept_each_counter_once() {
    let pool = PacketPool::new(2, &KEY, SESSION);
    let packets: Vec<Bytes> = (0..600u64)
        .map(|s| {
            pool.get().build(
                1,
                s,
                &[Bytes::from(s.to_le_bytes().to_vec())],
                PacketFlags::NONE,
            )
        })
        .collect();
    // Every packet three times, interleaved so copies race each other.
    let stream: Arc<Vec<Bytes>> = Arc::new((0..3).flat_map(|_| packets.iter().cloned()).collect());
    for threads in [2usize, 4] {
        let opener = Arc::new(PacketOpener::new(&KEY, SESSION));
        let accepted: Vec<u64> = (0..threads)
            .map(|t| {
                let (opener, stream) = (Arc::clone(&opener), Arc::clone(&stream));
                std::thread::spawn(move || {
                    let mut mine = Vec::new();
                    for (i, datagram) in stream.iter().enumerate() {
                        if i % threads == t || (i + 1) % threads == t {
                            if let Ok(opened) = opener.open(datagram.clone()) {
                                mine.push(opened.header().sequence);
                            }
                        }
                    }
                    mine
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let distinct: HashSet<u64> = accepted.iter().copied().collect();
        assert_eq!(
            accepted.len(),
            distinct.len(),
            "a counter was accepted twice"
        );
        assert_eq!(distinct.len(), packets.len(), "a packet was never accepted");
    }
}

/// xorshift64*: a seeded generator, so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }

    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }
}

fn mutate(rng: &mut Rng, original: &[u8]) -> Vec<u8> {
    let mut bytes = original.to_vec();
    for _ in 0..=rng.below(3) {
        match rng.below(7) {
            0 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes[i] ^= 1 << rng.below(8);
            }
            1 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes[i] = rng.byte();
            }
            2 => bytes.truncate(rng.below(bytes.len() + 1)),
            3 => bytes.extend((0..rng.below(40)).map(|_| rng.byte())),
            4 if bytes.len() >= 68 => {
                // Make the declared length agree with a changed size, to reach the AEAD.
                let len = u16::try_from(bytes.len().saturating_sub(84)).unwrap_or(u16::MAX);
                bytes[64..66].copy_from_slice(&len.to_le_bytes());
            }
            5 if bytes.len() >= 68 => {
                let count = u16::from(rng.byte() % 64);
                bytes[66..68].copy_from_slice(&count.to_le_bytes());
            }
            _ => {
                let i = rng.below(bytes.len() + 1);
                bytes.insert(i, rng.byte());
            }
        }
    }
    bytes
}

/// Whether `datagram` is `original` with at most hop_count (byte 6) changed.
fn same_but_hop_count(original: &[u8], datagram: &[u8]) -> bool {
    original.len() == datagram.len()
        && original
            .iter()
            .zip(datagram)
            .enumerate()
            .all(|(i, (a, b))| i == 6 || a == b)
}

#[test]
fn fuzz_200k_datagrams_no_panic_no_forgery() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let pool = PacketPool::new(2, &KEY, SESSION);
    let shapes: Vec<Vec<Bytes>> = vec![
        vec![],
        vec![Bytes::from_static(b"a")],
        sample_events(),
        vec![Bytes::from(vec![1; 300]); 3],
    ];
    let originals: Vec<Bytes> = (0..64u8)
        .map(|s| {
            let flags = PacketFlags::from_bits(s).without(PacketFlags::HANDSHAKE);
            pool.get().build(
                u64::from(s % 3),
                u64::from(s),
                &shapes[usize::from(s) % shapes.len()],
                flags,
            )
        })
        .collect();
    let opener = PacketOpener::new(&KEY, SESSION);
    let (mut reached_aead, mut unchanged) = (0, 0);
    let total = 200_000;
    for round in 0..total {
        let datagram: Vec<u8> = match round % 4 {
            0 => (0..rng.below(200)).map(|_| rng.byte()).collect(),
            1 => {
                // A valid header in front of noise.
                let mut header = originals[rng.below(originals.len())][..68].to_vec();
                header.extend((0..rng.below(120)).map(|_| rng.byte()));
                header
            }
            _ => {
                let which = rng.below(originals.len());
                let mutated = mutate(&mut rng, &originals[which]);
                if same_but_hop_count(&originals[which], &mutated) {
                    // Not a forgery: opening it would only use up the original's counter.
                    unchanged += 1;
                    continue;
                }
                mutated
            }
        };
        match opener.open(Bytes::from(datagram.clone())) {
            Ok(_) => panic!(
                "forgery accepted at round {round}: {}",
                hex::encode(&datagram)
            ),
            Err(OpenError::AuthFailed) => reached_aead += 1,
            Err(_) => {}
        }
    }
    // The mutations must get past the header checks often enough to test the tag.
    assert!(
        reached_aead > total / 10,
        "only {reached_aead} datagrams reached the AEAD"
    );
    assert!(unchanged < total / 4);
    // Nothing refused moved the window: every original opens, once.
    for original in &originals {
        opener.open(original.clone()).expect("an original opens");
        assert!(matches!(
            opener.open(original.clone()),
            Err(OpenError::Replayed { .. })
        ));
    }
}

/// What an entry point made of a datagram: header and events, or the error.
type Outcome = Result<(netmesh_wire::NetHeader, Vec<Vec<u8>>), OpenError>;

/// `datagram` through each entry point, each with its own opener: `open_in_place` on a
/// slot, `open` of an unshared `Bytes`, `open` of a `BytesMut`, `open` of a `Bytes`
/// someone else also holds (copied first).
fn through_each(openers: &[PacketOpener; 4], datagram: &[u8]) -> [Outcome; 4] {
    let mut slot = datagram.to_vec();
    let held = Bytes::copy_from_slice(datagram);
    let keep = held.clone();
    let outcomes = [
        openers[0]
            .open_in_place(&mut slot)
            .map(|o| (*o.header(), o.events().map(<[u8]>::to_vec).collect())),
        openers[1]
            .open(Bytes::copy_from_slice(datagram))
            .map(|o| (*o.header(), o.events().map(|e| e.to_vec()).collect())),
        openers[2]
            .open(bytes::BytesMut::from(datagram))
            .map(|o| (*o.header(), o.events().map(|e| e.to_vec()).collect())),
        openers[3]
            .open(held)
            .map(|o| (*o.header(), o.events().map(|e| e.to_vec()).collect())),
    ];
    assert_eq!(keep, datagram, "a shared datagram was written to");
    outcomes
}

fn four_openers() -> [PacketOpener; 4] {
    std::array::from_fn(|_| PacketOpener::new(&KEY, SESSION))
}

/// The same outcome from every entry point; returns it.
fn agreed(openers: &[PacketOpener; 4], datagram: &[u8]) -> Outcome {
    let [first, rest @ ..] = through_each(openers, datagram);
    for (i, other) in rest.iter().enumerate() {
        assert_eq!(
            &first,
            other,
            "entry point {} disagrees with open_in_place",
            i + 1
        );
    }
    first
}

#[test]
fn entry_points_agree_on_every_single_byte_change() {
    let events = sample_events();
    let packet = packet_at(5, &events);
    let mut refused = std::collections::BTreeMap::<String, usize>::new();
    for index in 0..packet.len() {
        // hop_count changes open (and use up the counter): fresh openers for each.
        let mut openers = four_openers();
        for value in 0..=255u8 {
            if value == packet[index] {
                continue;
            }
            if index == 6 {
                openers = four_openers();
            }
            let mut datagram = packet.to_vec();
            datagram[index] = value;
            match agreed(&openers, &datagram) {
                Ok((header, opened)) => {
                    assert_eq!(index, 6, "byte {index} = {value:#04x} was accepted");
                    assert_eq!(header.hop_count, value);
                    assert_eq!(opened, events);
                }
                Err(error) => {
                    let name = format!("{error:?}");
                    let name = name.split([' ', '(', '{']).next().unwrap_or_default();
                    *refused.entry(name.to_owned()).or_default() += 1;
                }
            }
        }
        // Nothing refused moved any window: the original opens everywhere.
        if index != 6 {
            assert!(agreed(&openers, &packet).is_ok(), "after byte {index}");
        }
    }
    // The changes reached every kind of check, not just the first.
    for name in [
        "MalformedHeader",
        "WrongLength",
        "WrongSession",
        "WrongNoncePrefix",
        "AuthFailed",
        "TooFarAhead",
        "Handshake",
    ] {
        assert!(
            refused.contains_key(name),
            "no change refused as {name}: {refused:?}"
        );
    }
}

#[test]
fn entry_points_agree_on_truncations_and_garbage() {
    let packet = packet_at(0, &sample_events());
    let openers = four_openers();
    for len in 0..packet.len() {
        assert!(agreed(&openers, &packet[..len]).is_err());
    }
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    for _ in 0..2_000 {
        let mutated = mutate(&mut rng, &packet);
        if !same_but_hop_count(&packet, &mutated) {
            assert!(agreed(&openers, &mutated).is_err());
        }
    }
}

#[test]
fn a_packet_opened_through_one_entry_point_is_a_replay_through_the_others() {
    let opener = PacketOpener::new(&KEY, SESSION);
    let events = sample_events();
    for counter in 0..12u64 {
        let packet = packet_at(counter, &events);
        let mut slot = packet.to_vec();
        let replay = Err(OpenError::Replayed { counter });
        // Entry point `counter % 4` opens it first; then every entry point sees a replay.
        let first = match counter % 4 {
            0 => opener.open_in_place(&mut slot).map(|o| o.event_count()),
            1 => opener
                .open(Bytes::copy_from_slice(&packet))
                .map(|o| o.event_count()),
            2 => opener
                .open(bytes::BytesMut::from(&packet[..]))
                .map(|o| o.event_count()),
            _ => opener.open(packet.clone()).map(|o| o.event_count()),
        };
        assert_eq!(first, Ok(2));
        let mut again = packet.to_vec();
        assert_eq!(opener.open_in_place(&mut again).map(|_| ()), replay);
        assert_eq!(
            again, packet,
            "a replay is refused before the slot is touched"
        );
        assert_eq!(
            opener.open(Bytes::copy_from_slice(&packet)).map(|_| ()),
            replay
        );
        assert_eq!(
            opener.open(bytes::BytesMut::from(&packet[..])).map(|_| ()),
            replay
        );
        assert_eq!(opener.open(packet.clone()).map(|_| ()), replay);
    }
}

/// A packet, and a receive buffer holding it and then another datagram.
fn packet_then_more() -> (Bytes, bytes::BytesMut) {
    let packet = packet_at(0, &sample_events());
    let mut received = bytes::BytesMut::with_capacity(4096);
    received.extend_from_slice(&packet);
    received.extend_from_slice(b"the next datagram");
    (packet, received)
}

#[test]
fn a_bytes_mut_is_decrypted_where_it_lies_and_a_shared_bytes_is_left_alone() {
    let (packet, mut received) = packet_then_more();
    let start = received.as_ptr() as usize;
    let opener = PacketOpener::new(&KEY, SESSION);
    let opened = opener.open(received.split_to(packet.len())).unwrap();
    assert_eq!(opened.payload().as_ptr() as usize, start + 68 + 16);
    assert_eq!(opened.events().collect::<Vec<_>>(), sample_events());
    assert_eq!(&received[..], b"the next datagram");
}

#[test]
fn a_split_datagram_is_opened_where_it_lies_with_the_tag_cut_off() {
    let (packet, mut received) = packet_then_more();
    let start = received.as_ptr() as usize;
    let opener = PacketOpener::new(&KEY, SESSION);
    let split = netmesh_pool::SplitDatagram::new(received.split_to(packet.len()));
    let opened = opener.open(split).unwrap();
    // Not moved: the payload starts right after the header.
    assert_eq!(opened.payload().as_ptr() as usize, start + 68);
    assert_eq!(opened.payload().len(), packet.len() - 68 - 16);
    assert_eq!(opened.events().collect::<Vec<_>>(), sample_events());
    assert_eq!(&received[..], b"the next datagram");

    // A buffer of its own (never split) opens the same way, and a replay or a forgery
    // is refused as in any other form.
    let other = packet_at(1, &sample_events());
    let own = netmesh_pool::SplitDatagram::new(bytes::BytesMut::from(&other[..]));
    let opened = opener.open(own.clone()).unwrap();
    assert_eq!(opened.events().collect::<Vec<_>>(), sample_events());
    assert!(matches!(opener.open(own), Err(OpenError::Replayed { .. })));
    let mut forged = bytes::BytesMut::from(&packet_at(2, &sample_events())[..]);
    forged[70] ^= 1;
    assert_eq!(
        opener
            .open(netmesh_pool::SplitDatagram::new(forged))
            .map(|_| ()),
        Err(OpenError::AuthFailed)
    );
}

#[test]
fn open_in_place_leaves_no_plaintext_of_a_refused_packet() {
    // Authenticated, then refused for its frames: the slot's payload is wiped.
    use netmesh_cipher::PacketCipher;
    use netmesh_wire::{NetHeader, NONCE_SIZE};
    let cipher: PacketCipher = PacketCipher::new(&KEY, SESSION);
    let mut payload = bytes::BytesMut::new();
    netmesh_wire::FrameCodec::write_events(&[Bytes::from_static(b"secret")], &mut payload);
    let len = payload.len();
    let header = NetHeader::new(
        SESSION,
        1,
        1,
        [0; NONCE_SIZE],
        len as u16,
        3,
        PacketFlags::NONE,
    );
    let counter = cipher.seal_in_place(&header.aad(), &mut payload).unwrap();
    let mut datagram = header.to_bytes().to_vec();
    datagram[12..16].copy_from_slice(&cipher.session_prefix());
    datagram[16..24].copy_from_slice(&counter.to_le_bytes());
    datagram.extend_from_slice(&payload);
    let opener = PacketOpener::new(&KEY, SESSION);
    let mut slot = datagram.clone();
    assert!(matches!(
        opener.open_in_place(&mut slot),
        Err(OpenError::MalformedFrames(WireError::TooFewFrames {
            declared: 3,
            found: 1
        }))
    ));
    assert_eq!(slot[..68], datagram[..68]);
    assert!(
        slot[68..68 + len].iter().all(|&b| b == 0),
        "plaintext left behind"
    );
    // A failed tag: the payload holds zeroes (ring) or the ciphertext (RustCrypto).
    let mut forged = datagram.clone();
    forged[16..24].copy_from_slice(&(counter + 1).to_le_bytes());
    let mut slot = forged.clone();
    assert_eq!(opener.open_in_place(&mut slot), Err(OpenError::AuthFailed));
    let body = &slot[68..68 + len];
    assert!(body.iter().all(|&b| b == 0) || body == &forged[68..68 + len]);
}
