//! Send-side behaviour: well-formed packets, caps, nonce uniqueness, key separation.

// Test data: counters, indices and sizes here are small by construction.
#![allow(clippy::cast_possible_truncation)]

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use netmesh_cipher::PacketCipher;
use netmesh_pool::{
    shared_local_pool, BuildError, PacketBuilder, PacketOpener, PacketPool, ThreadLocalPool,
};
use netmesh_wire::{
    aad_from_bytes, FrameCodec, NetHeader, PacketFlags, HEADER_SIZE, MAX_EVENTS_PER_PACKET,
    MAX_PAYLOAD_SIZE, TAG_SIZE,
};
use proptest::prelude::*;

const KEY: [u8; 32] = [0x5a; 32];
const SESSION: u64 = 0x1122_3344_5566_7788;

fn counter_of(packet: &[u8]) -> u64 {
    NetHeader::parse(packet)
        .expect("built packets parse")
        .nonce_counter()
}

/// Checks a packet with the cipher crate alone: length, tag, strict frames.
fn check_packet(packet: &Bytes, key: &[u8; 32], session: u64, events: &[Bytes]) -> NetHeader {
    let header = NetHeader::parse(packet).expect("header parses");
    header.validate().expect("header is valid");
    assert_eq!(
        packet.len(),
        HEADER_SIZE + usize::from(header.payload_len) + TAG_SIZE
    );
    let header_bytes: [u8; HEADER_SIZE] =
        packet[..HEADER_SIZE].try_into().expect("68 header bytes");
    let cipher: PacketCipher = PacketCipher::new(key, session);
    let plaintext = cipher
        .open_bytes(
            counter_of(packet),
            &aad_from_bytes(&header_bytes),
            packet.slice(HEADER_SIZE..),
        )
        .expect("packet decrypts");
    let decoded: Vec<Bytes> = FrameCodec::decode_strict(plaintext, usize::from(header.event_count))
        .expect("frames decode strictly")
        .collect();
    assert_eq!(decoded, events);
    header
}

fn events_strategy() -> impl Strategy<Value = Vec<Bytes>> {
    prop_oneof![
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..40),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..2000), 0..4),
    ]
    .prop_map(|events| events.into_iter().map(Bytes::from).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_packet_is_well_formed(
        events in events_strategy(),
        stream in any::<u64>(),
        sequence in any::<u64>(),
        flags in any::<u8>(),
        channel in any::<u16>(),
        subprotocol in any::<u16>(),
        origin in any::<u64>(),
    ) {
        let pool = PacketPool::with_origin(2, &KEY, SESSION, origin);
        let mut builder = pool.get();
        builder.set_channel_hash(channel);
        let packet = builder.build_subprotocol(stream, sequence, &events, PacketFlags::from_bits(flags), subprotocol);
        let header = check_packet(&packet, &KEY, SESSION, &events);
        prop_assert_eq!(header.stream_id, stream);
        prop_assert_eq!(header.sequence, sequence);
        prop_assert_eq!(header.channel_hash, channel);
        prop_assert_eq!(header.subprotocol_id, subprotocol);
        prop_assert_eq!(header.origin_hash, origin);
        prop_assert_eq!(header.flags.bits(), flags);
        prop_assert_eq!(usize::from(header.event_count), events.len());
    }

    #[test]
    fn batches_carry_every_event_in_order(
        sizes in prop::collection::vec(0usize..3000, 0..60),
        first_sequence in any::<u64>(),
    ) {
        let events: Vec<Bytes> = sizes.iter().enumerate().map(|(i, &n)| Bytes::from(vec![i as u8; n])).collect();
        let pool = ThreadLocalPool::new(2, &KEY, SESSION);
        let mut guard = pool.get();
        let packets: Vec<Bytes> = guard
            .build_batch(4, first_sequence, &events, PacketFlags::RELIABLE)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let opener = PacketOpener::new(&KEY, SESSION);
        let mut received = Vec::new();
        for (i, packet) in packets.iter().enumerate() {
            let opened = opener.open(packet.clone()).unwrap();
            prop_assert_eq!(opened.header().sequence, first_sequence.wrapping_add(i as u64));
            prop_assert!(opened.event_count() > 0);
            received.extend(opened.events());
        }
        prop_assert_eq!(received, events);
    }
}

#[test]
fn builds_at_each_cap_boundary() {
    let pool = PacketPool::new(1, &KEY, SESSION);
    let mut b = pool.get();

    let max_events = vec![Bytes::new(); MAX_EVENTS_PER_PACKET];
    let packet = b.try_build(0, 0, &max_events, PacketFlags::NONE).unwrap();
    check_packet(&packet, &KEY, SESSION, &max_events);

    let one_more = vec![Bytes::new(); MAX_EVENTS_PER_PACKET + 1];
    assert_eq!(
        b.try_build(0, 0, &one_more, PacketFlags::NONE),
        Err(BuildError::TooManyEvents {
            count: 2028,
            max: 2027
        })
    );

    let max_payload = [Bytes::from(vec![7; MAX_PAYLOAD_SIZE - 4])];
    let packet = b.try_build(0, 0, &max_payload, PacketFlags::NONE).unwrap();
    assert_eq!(packet.len(), 8192);
    check_packet(&packet, &KEY, SESSION, &max_payload);

    let over = [Bytes::from(vec![7; MAX_PAYLOAD_SIZE - 3])];
    assert_eq!(
        b.try_build_subprotocol(0, 0, &over, PacketFlags::NONE, 3),
        Err(BuildError::PayloadTooLarge {
            len: 8109,
            max: 8108
        })
    );
    let many_small = vec![Bytes::from_static(b"abcd"); MAX_PAYLOAD_SIZE / 8 + 1];
    assert_eq!(
        b.try_build(0, 0, &many_small, PacketFlags::NONE),
        Err(BuildError::PayloadTooLarge {
            len: 8112,
            max: 8108
        })
    );
    // A u16 wrap would have declared 1 event: the cap is checked before any cast.
    let wrapping = vec![Bytes::new(); 65_537];
    assert!(matches!(
        b.try_build(0, 0, &wrapping, PacketFlags::NONE),
        Err(BuildError::TooManyEvents { count: 65_537, .. })
    ));
}

#[test]
fn framed_events_build_the_same_packet_and_malformed_frames_use_no_nonce() {
    let events = vec![
        Bytes::from_static(b"first"),
        Bytes::new(),
        Bytes::from(vec![9; 300]),
    ];
    let mut frames = vec![0; FrameCodec::frames_size(&events)];
    FrameCodec::write_frames_into(&events, &mut frames);
    let pool = PacketPool::new(1, &KEY, SESSION);
    let mut b = pool.get();
    let framed = b
        .try_build_framed(7, 42, &frames, 3, PacketFlags::RELIABLE, 5)
        .unwrap();
    let header = check_packet(&framed, &KEY, SESSION, &events);
    assert_eq!((header.stream_id, header.sequence), (7, 42));
    assert_eq!(header.subprotocol_id, 5);
    // Byte for byte what try_build_subprotocol makes under the next counter, but for
    // the counter in the nonce and what it encrypts.
    let built = b
        .try_build_subprotocol(7, 42, &events, PacketFlags::RELIABLE, 5)
        .unwrap();
    assert_eq!(framed.len(), built.len());
    assert_eq!(counter_of(&built), counter_of(&framed) + 1);

    // Refused before any nonce is used: too few, too many, cut off.
    for (frames, count) in [
        (&frames[..], 2),
        (&frames[..], 4),
        (&frames[..frames.len() - 1], 3),
    ] {
        assert!(matches!(
            b.try_build_framed(7, 43, frames, count, PacketFlags::NONE, 0),
            Err(BuildError::MalformedFrames(_))
        ));
    }
    let next = b
        .try_build_framed(7, 43, &frames, 3, PacketFlags::NONE, 0)
        .unwrap();
    assert_eq!(counter_of(&next), counter_of(&built) + 1);
    assert!(matches!(
        b.try_build_framed(0, 0, &[0; MAX_PAYLOAD_SIZE + 1], 1, PacketFlags::NONE, 0),
        Err(BuildError::PayloadTooLarge {
            len: 8109,
            max: 8108
        })
    ));
    assert!(matches!(
        b.try_build_framed(0, 0, &[], MAX_EVENTS_PER_PACKET + 1, PacketFlags::NONE, 0),
        Err(BuildError::TooManyEvents {
            count: 2028,
            max: 2027
        })
    ));
}

#[test]
fn events_written_in_place_build_the_same_packet_and_refusals_use_no_nonce() {
    let events: Vec<Bytes> = (0..5u8).map(|i| Bytes::from(vec![i; 40])).collect();
    // Two pools, two counters from 0: the same counter, so the same bytes.
    let (a, b) = (
        PacketPool::new(1, &KEY, SESSION),
        PacketPool::new(1, &KEY, SESSION),
    );
    let mut order = Vec::new();
    let with = a
        .get()
        .try_build_with(7, 42, 5, 40, PacketFlags::RELIABLE, 5, |i, event| {
            order.push(i);
            event.copy_from_slice(&events[i]);
        })
        .unwrap();
    let built = b
        .get()
        .try_build_subprotocol(7, 42, &events, PacketFlags::RELIABLE, 5)
        .unwrap();
    assert_eq!(with, built);
    assert_eq!(order, [0, 1, 2, 3, 4]);
    check_packet(&with, &KEY, SESSION, &events);

    let mut builder = a.get();
    let mut called = false;
    let mut refuse = |count, event_len| {
        builder.try_build_with(0, 0, count, event_len, PacketFlags::NONE, 0, |_, _| {
            called = true;
        })
    };
    assert!(matches!(
        refuse(MAX_EVENTS_PER_PACKET + 1, 0),
        Err(BuildError::TooManyEvents {
            count: 2028,
            max: 2027
        })
    ));
    assert!(matches!(
        refuse(1, MAX_PAYLOAD_SIZE - 3),
        Err(BuildError::PayloadTooLarge {
            len: 8109,
            max: 8108
        })
    ));
    assert!(matches!(
        refuse(2, usize::MAX),
        Err(BuildError::PayloadTooLarge {
            len: usize::MAX,
            ..
        })
    ));
    // No events: their length does not matter.
    let empty = refuse(0, usize::MAX).unwrap();
    assert!(!called);
    assert_eq!(counter_of(&empty), counter_of(&with) + 1);
    check_packet(&empty, &KEY, SESSION, &[]);
}

#[test]
#[should_panic(expected = "MAX_EVENTS_PER_PACKET (2027)")]
fn build_panics_naming_the_event_cap() {
    let pool = PacketPool::new(1, &KEY, SESSION);
    let _ = pool
        .get()
        .build(0, 0, &vec![Bytes::new(); 2028], PacketFlags::NONE);
}

#[test]
#[should_panic(expected = "MAX_PAYLOAD_SIZE (8108)")]
fn build_subprotocol_panics_naming_the_payload_cap() {
    let pool = ThreadLocalPool::new(1, &KEY, SESSION);
    let _ = pool
        .get()
        .build_subprotocol(0, 0, &[Bytes::from(vec![0; 8105])], PacketFlags::NONE, 1);
}

#[test]
#[should_panic(expected = "MAX_PAYLOAD_SIZE (8108)")]
fn build_handshake_panics_naming_the_payload_cap() {
    let pool = PacketPool::new(1, &KEY, SESSION);
    let _ = pool.get().build_handshake(&[0; 8109]);
}

#[test]
fn exactly_max_payload_handshake_builds() {
    let pool = PacketPool::new(1, &KEY, SESSION);
    assert_eq!(pool.get().build_handshake(&[1; 8108]).len(), 68 + 8108);
}

#[test]
fn batch_refuses_an_event_too_large_for_any_packet_before_building() {
    let pool = PacketPool::new(1, &KEY, SESSION);
    let mut b = pool.get();
    let events = [Bytes::from_static(b"ok"), Bytes::from(vec![0; 8105])];
    assert_eq!(
        b.build_batch(0, 0, &events, PacketFlags::NONE).err(),
        Some(BuildError::EventTooLarge {
            index: 1,
            len: 8105,
            max: 8104
        })
    );
    // No nonce was used: the next packet carries counter 0.
    assert_eq!(counter_of(&b.build(0, 0, &[], PacketFlags::NONE)), 0);
}

#[test]
fn would_fit_and_max_events_agree_with_try_build() {
    let pool = PacketPool::new(1, &KEY, SESSION);
    let mut b = pool.get();
    for size in [0usize, 1, 60, 64, 1000, 8104] {
        let n = b.max_events_for_size(size);
        let events = vec![Bytes::from(vec![0; size]); n];
        assert!(b.would_fit(&events));
        assert!(b.try_build(0, 0, &events, PacketFlags::NONE).is_ok());
        let one_more = vec![Bytes::from(vec![0; size]); n + 1];
        assert!(!b.would_fit(&one_more));
        assert!(b.try_build(0, 0, &one_more, PacketFlags::NONE).is_err());
    }
}

/// No counter is used twice, and each thread's counters only increase (a thread takes
/// them from its own leases of the shared counter, in order).
fn assert_unique_counters(per_thread: Vec<Vec<u64>>, expected: usize) {
    let mut seen = HashSet::with_capacity(expected);
    for counters in per_thread {
        assert!(counters.windows(2).all(|pair| pair[0] < pair[1]));
        for counter in counters {
            assert!(seen.insert(counter), "counter {counter} used twice");
        }
    }
    assert_eq!(seen.len(), expected);
}

#[test]
fn packet_pool_never_reuses_a_nonce_across_threads() {
    for threads in [2usize, 4, 8] {
        let pool = Arc::new(PacketPool::new(4, &KEY, SESSION));
        let per_thread = (0..threads)
            .map(|t| {
                let pool = Arc::clone(&pool);
                std::thread::spawn(move || {
                    (0..20_000u64)
                        .map(|s| counter_of(&pool.get().build(t as u64, s, &[], PacketFlags::NONE)))
                        .collect::<Vec<_>>()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        assert_unique_counters(per_thread, threads * 20_000);
    }
}

#[test]
fn shared_local_pool_never_reuses_a_nonce_across_threads() {
    for threads in [2usize, 4, 8] {
        let pool = shared_local_pool(4, &KEY, SESSION);
        let per_thread = (0..threads)
            .map(|t| {
                let pool = Arc::clone(&pool);
                std::thread::spawn(move || {
                    (0..20_000u64)
                        .map(|s| {
                            let packet = if s % 7 == 0 {
                                pool.get().build_heartbeat()
                            } else {
                                pool.get().build(
                                    t as u64,
                                    s,
                                    &[Bytes::from_static(b"x")],
                                    PacketFlags::NONE,
                                )
                            };
                            counter_of(&packet)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        assert_unique_counters(per_thread, threads * 20_000);
    }
}

#[test]
fn set_key_never_hands_out_an_old_builder() {
    let old_key = [1; 32];
    let new_key = [2; 32];
    let mut pool = PacketPool::new(4, &old_key, 10);
    let packets: Vec<_> = (0..8)
        .map(|s| pool.get().build(0, s, &[], PacketFlags::NONE))
        .collect();
    assert_eq!(counter_of(&packets[7]), 7);

    pool.set_key(&new_key, 11);
    let opener = PacketOpener::new(&new_key, 11);
    let old_opener = PacketOpener::new(&old_key, 11);
    let guards: Vec<_> = (0..10).map(|_| pool.get()).collect();
    for (s, mut guard) in guards.into_iter().enumerate() {
        assert_eq!(guard.session_id(), 11);
        let packet = guard.build(
            0,
            s as u64,
            &[Bytes::from_static(b"new")],
            PacketFlags::NONE,
        );
        assert_eq!(
            counter_of(&packet),
            s as u64,
            "the new key starts a new counter"
        );
        assert!(old_opener.open(packet.clone()).is_err());
        opener.open(packet).expect("built under the new key");
    }
}

#[test]
fn two_thread_local_pools_on_one_thread_keep_their_keys() {
    let (key_a, key_b) = ([0xa; 32], [0xb; 32]);
    let a = ThreadLocalPool::new(4, &key_a, SESSION);
    let b = ThreadLocalPool::new(4, &key_b, SESSION);
    let (open_a, open_b) = (
        PacketOpener::new(&key_a, SESSION),
        PacketOpener::new(&key_b, SESSION),
    );
    for s in 0..200u64 {
        let (pool, mine, other_key) = if s % 2 == 0 {
            (&a, &open_a, key_b)
        } else {
            (&b, &open_b, key_a)
        };
        // Mix guards and explicit acquire/release, and release a builder to the wrong pool.
        let packet = if s % 3 == 0 {
            let mut builder = pool.acquire();
            let packet = builder.build(0, s, &[Bytes::from_static(b"e")], PacketFlags::NONE);
            let wrong = if s % 2 == 0 { &b } else { &a };
            wrong.release(builder);
            packet
        } else {
            pool.get()
                .build(0, s, &[Bytes::from_static(b"e")], PacketFlags::NONE)
        };
        // A fresh opener, so its replay window cannot answer before the tag check does.
        let other = PacketOpener::new(&other_key, SESSION);
        assert_eq!(
            other.open(packet.clone()),
            Err(netmesh_pool::OpenError::AuthFailed)
        );
        mine.open(packet).expect("opens under its own pool's key");
    }
}

#[test]
fn standalone_builder_with_origin_stamps_it() {
    let mut builder = PacketBuilder::with_origin(&KEY, SESSION, 0xdead_beef);
    let events = [Bytes::from_static(b"e")];
    let header = check_packet(
        &builder.build(1, 2, &events, PacketFlags::FIN),
        &KEY,
        SESSION,
        &events,
    );
    assert_eq!(header.origin_hash, 0xdead_beef);
    assert_eq!(header.flags, PacketFlags::FIN);
}

#[test]
fn set_key_leaves_the_pool_empty_as_the_reference_does() {
    let mut pool = PacketPool::new(3, &[1; 32], 1);
    assert_eq!(pool.available(), 3);
    pool.set_key(&[2; 32], 2);
    assert_eq!(pool.available(), 0);
    assert_eq!(pool.capacity(), 3);
    let guards: Vec<_> = (0..2).map(|_| pool.get()).collect();
    drop(guards);
    assert_eq!(pool.available(), 2);
}
