//! Receive batches: each datagram answered at once, the fire-and-forget accounting and
//! the credit watermark brought up to date when the batch ends, and the same outcome as
//! handling the datagrams one by one.

// Test harness: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use bytes::Bytes;
use netmesh_pool::PacketBuilder;
use netmesh_session::{Received, RecvError, Role, Session, SessionConfig, SessionKeys};
use netmesh_wire::PacketFlags;

const A: [u8; 32] = [1; 32];
const B: [u8; 32] = [2; 32];
const ID: u64 = 0x0bad_cafe_f00d_0001;

/// A session whose peer seals with `B` through `peer` (counters 0, 1, 2, ...).
fn receiver(now: Instant) -> (Session, PacketBuilder) {
    let session = Session::from_keys(
        SessionConfig::default(),
        SessionKeys::from_parts(ID, A, B),
        Role::Responder,
        now,
    );
    (session, PacketBuilder::with_origin(&B, ID, 0))
}

fn packet(peer: &mut PacketBuilder, stream: u64, sequence: u64, events: usize) -> Bytes {
    let events: Vec<Bytes> = (0..events)
        .map(|i| Bytes::from(vec![u8::try_from(i).unwrap(); 16]))
        .collect();
    peer.build(stream, sequence, &events, PacketFlags::NONE)
}

#[test]
fn a_batch_counts_its_streams_and_their_gaps_when_it_ends() {
    let now = Instant::now();
    let (session, mut peer) = receiver(now);
    // Stream 1: sequences 0..10 without 3 and 7; stream 2 interleaved: 0, 1, then 5.
    let mut datagrams = Vec::new();
    for sequence in (0..10).filter(|s| *s != 3 && *s != 7) {
        datagrams.push(packet(&mut peer, 1, sequence, 2));
        if sequence == 4 {
            datagrams.push(packet(&mut peer, 2, 0, 1));
            datagrams.push(packet(&mut peer, 2, 1, 1));
        }
    }
    datagrams.push(packet(&mut peer, 2, 5, 1));

    let mut batch = session.receive_batch(now);
    let mut delivered = 0;
    for datagram in datagrams {
        match batch.handle(datagram).unwrap() {
            Received::Packet(p) => delivered += p.event_count(),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(delivered, 8 * 2 + 3);
    // A stream's run of packets is counted when another stream's packet or the end of
    // the batch follows it: the last one (stream 2, sequence 5) is still pending.
    assert_eq!(session.stats().events_received, 18);
    drop(batch);
    let stats = session.stats();
    assert_eq!(stats.packets_received, 11);
    assert_eq!((stats.events_received, stats.events_delivered), (19, 19));
    // 3 and 7 on stream 1; 2, 3 and 4 on stream 2.
    assert_eq!(stats.lost_packets, 5);
    assert_eq!(stats.duplicates, 0);
}

#[test]
fn batches_and_single_datagrams_give_the_same_results_and_statistics() {
    let now = Instant::now();
    let (batched, mut peer) = receiver(now);
    let (single, _) = receiver(now);
    let mut datagrams: Vec<Bytes> = (0..200)
        .map(|i| {
            packet(
                &mut peer,
                i % 3,
                i / 3 + u64::from(i % 7 == 0),
                1 + (i % 4) as usize,
            )
        })
        .collect();
    // Garbage, a replay and a truncation among them.
    datagrams.insert(50, Bytes::from_static(&[0u8; 100]));
    datagrams.insert(80, datagrams[79].clone());
    datagrams.insert(120, datagrams[119].slice(..40));

    let outcome = |r: Result<Received<'_>, RecvError>| match r {
        Ok(Received::Packet(p)) => Ok(p.events().map(|e| e.len()).sum::<usize>()),
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e.to_string()),
    };
    let one_by_one: Vec<_> = datagrams
        .iter()
        .map(|d| outcome(single.handle_datagram(d.clone(), now)))
        .collect();
    let mut in_batches = Vec::new();
    for chunk in datagrams.chunks(17) {
        let mut batch = batched.receive_batch(now);
        in_batches.extend(chunk.iter().map(|d| outcome(batch.handle(d.clone()))));
    }
    assert_eq!(in_batches, one_by_one);
    assert_eq!(one_by_one.iter().filter(|r| r.is_err()).count(), 3);
    assert_eq!(batched.stats(), single.stats());
    assert!(batched.stats().lost_packets > 0);
}

#[test]
fn a_sequence_sealed_twice_is_delivered_and_counted_as_a_duplicate() {
    // Only a misbehaving peer seals one fire-and-forget sequence under two counters
    // (the replay window refuses a datagram sent twice): it is delivered, and counted.
    let now = Instant::now();
    let (session, mut peer) = receiver(now);
    let first = packet(&mut peer, 1, 0, 1);
    let again = packet(&mut peer, 1, 0, 1);
    let mut batch = session.receive_batch(now);
    assert!(matches!(
        batch.handle(first.clone()),
        Ok(Received::Packet(_))
    ));
    assert!(matches!(batch.handle(again), Ok(Received::Packet(_))));
    assert!(matches!(batch.handle(first), Err(RecvError::Replayed(_))));
    drop(batch);
    let stats = session.stats();
    assert_eq!((stats.duplicates, stats.rejected_replay), (1, 1));
    assert_eq!(stats.packets_received, 2);
}
