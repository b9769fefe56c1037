//! Stream window grants (net-mesh's flow control) honoured with a stall timeout, the
//! re-key request where a session cannot re-key, and a reliable packet given up: SKIP
//! and reported loss on both sides, the rest delivered in order.

// Test harness: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use netmesh_pool::PacketBuilder;
use netmesh_session::{
    Blocked, Event, PeerKind, Received, Role, SendError, Session, SessionConfig, SessionKeys,
    CONTROL_STREAM, GRANT_SUBPROTOCOL,
};
use netmesh_wire::PacketFlags;

const A: [u8; 32] = [1; 32];
const B: [u8; 32] = [2; 32];
const ID: u64 = 0x1234_5678_9abc_def0;

fn grant(builder: &mut PacketBuilder, stream: u64, consumed: u64) -> Bytes {
    let mut event = stream.to_le_bytes().to_vec();
    event.extend_from_slice(&consumed.to_le_bytes());
    builder.build_subprotocol(
        CONTROL_STREAM,
        0,
        &[Bytes::from(event)],
        PacketFlags::NONE,
        GRANT_SUBPROTOCOL,
    )
}

/// A session holding keys `tx`/`rx` for session `ID`, in `role`.
fn session(tx: [u8; 32], rx: [u8; 32], role: Role, now: Instant) -> Session {
    Session::from_keys(
        SessionConfig::default(),
        SessionKeys::from_parts(ID, tx, rx),
        role,
        now,
    )
}

#[test]
fn grants_are_honoured_once_seen_and_a_stall_reopens_the_window() {
    let start = Instant::now();
    let client = session(A, B, Role::Initiator, start);
    // The peer (a MeshNode, say) seals with B; it never marks its heartbeats.
    let mut peer = PacketBuilder::with_origin(&B, ID, 0);
    let now = start + Duration::from_secs(1);
    client.handle_timeout(now);
    assert_eq!(client.peer_kind(), PeerKind::NetMesh);
    let event = [Bytes::from(vec![0u8; 1000])];
    // No grant yet: nothing limits the stream.
    for _ in 0..100 {
        client.send(1, &event, PacketFlags::NONE).unwrap();
    }
    // The first grant: from now on, 65 536 bytes beyond what the peer consumed.
    assert!(matches!(
        client.handle_datagram(grant(&mut peer, 1, 0), now),
        Ok(Received::Grant)
    ));
    let mut sent = 0;
    let blocked = loop {
        match client.send(1, &event, PacketFlags::NONE) {
            Ok(_) => sent += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(blocked, SendError::Blocked(Blocked::StreamWindow));
    assert_eq!(
        sent,
        65_536 / 1088,
        "1088-byte datagrams in a 65 536-byte window"
    );
    assert!(client.can_send(2), "windows are per stream");
    client.send(2, &event, PacketFlags::NONE).unwrap();
    // A grant moves the window.
    let generation = client.credit_generation();
    client
        .handle_datagram(grant(&mut peer, 1, 10 * 1088), now)
        .unwrap();
    assert_ne!(client.credit_generation(), generation);
    for _ in 0..10 {
        client.send(1, &event, PacketFlags::NONE).unwrap();
    }
    assert!(client.send(1, &event, PacketFlags::NONE).is_err());
    // No grant progress for the stall timeout: the window reopens, reported.
    let later = now + SessionConfig::default().grant_stall_timeout;
    assert!(client.poll_timeout().unwrap() <= later);
    client.handle_timeout(later);
    assert!(std::iter::from_fn(|| client.poll_event())
        .any(|e| e == Event::GrantStalled { stream_id: 1 }));
    assert_eq!(client.stats().grant_stalls, 1);
    client.send(1, &event, PacketFlags::NONE).unwrap();
}

#[test]
fn a_session_that_cannot_rekey_asks_for_it_once() {
    let now = Instant::now();
    let config = SessionConfig {
        rekey_after: 10,
        ..SessionConfig::default()
    };
    let session = Session::from_keys(
        config,
        SessionKeys::from_parts(ID, A, B),
        Role::Initiator,
        now,
    );
    session.handle_timeout(now + Duration::from_secs(1));
    for _ in 0..30 {
        session
            .send(0, &[Bytes::from_static(b"x")], PacketFlags::NONE)
            .unwrap();
    }
    let asks = std::iter::from_fn(|| session.poll_event())
        .filter(|e| *e == Event::NeedsRekey)
        .count();
    assert_eq!(asks, 1);
}

#[test]
fn a_reliable_packet_given_up_is_skipped_and_reported_on_both_sides() {
    let start = Instant::now();
    let config = SessionConfig {
        retransmit_give_up: Duration::from_millis(300),
        ..SessionConfig::default()
    };
    let client = Session::from_keys(
        config.clone(),
        SessionKeys::from_parts(ID, A, B),
        Role::Initiator,
        start,
    );
    let server = Session::from_keys(
        config,
        SessionKeys::from_parts(ID, B, A),
        Role::Responder,
        start,
    );
    let mut now = start;
    let exchange = |now: Instant, delivered: &mut Vec<u64>| {
        let mut take = |r: Received<'_>| {
            if let Received::Delivered(d) = r {
                for p in d {
                    delivered.push(p.header().sequence);
                }
            }
        };
        for _ in 0..4 {
            while let Some(d) = client.poll_transmit() {
                // The link never carries sequence 0 of stream 7.
                let h = netmesh_wire::NetHeader::parse(&d).unwrap();
                if h.stream_id == 7 && h.sequence == 0 && h.flags.is_reliable() {
                    continue;
                }
                if let Ok(r) = server.handle_datagram(d, now) {
                    take(r);
                }
            }
            while let Some(d) = server.poll_delivery() {
                take(Received::Delivered(d));
            }
            while let Some(d) = server.poll_transmit() {
                let _ = client.handle_datagram(d, now);
            }
        }
    };
    let mut delivered = Vec::new();
    exchange(now, &mut delivered);
    assert_eq!(client.peer_kind(), PeerKind::Netmesh);
    for i in 0..5u64 {
        let sent = client
            .send(
                7,
                &[Bytes::copy_from_slice(&i.to_le_bytes())],
                PacketFlags::RELIABLE,
            )
            .unwrap();
        let d = sent.datagram.unwrap();
        if i > 0 {
            if let Ok(r) = server.handle_datagram(d, now) {
                assert!(matches!(r, Received::Delivered(ref d) if d.ready() == 0));
            }
        }
    }
    // NACKs and retransmissions of 0 go on (the link eats them) until the give-up.
    let until = start + Duration::from_secs(2);
    while now < until {
        now += Duration::from_millis(5);
        for s in [&client, &server] {
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now);
            }
        }
        exchange(now, &mut delivered);
    }
    assert_eq!(delivered, [1, 2, 3, 4], "the rest, in order, once");
    let loss = Event::StreamLoss {
        stream_id: 7,
        first_sequence: 0,
        count: 1,
    };
    assert!(std::iter::from_fn(|| client.poll_event()).any(|e| e == loss));
    assert!(std::iter::from_fn(|| server.poll_event()).any(|e| e == loss));
    assert_eq!(server.stats().lost_reliable, 1);
    assert!(client.stats().retransmits > 0);
}

#[test]
fn reliable_packets_held_for_an_unknown_peer_are_delivered_once_it_is_net_mesh() {
    let start = Instant::now();
    let server = session(B, A, Role::Responder, start);
    // A net-mesh peer's reliable stream, sequence 0 lost.
    let mut peer = PacketBuilder::with_origin(&A, ID, 0);
    for sequence in [1u64, 2] {
        let packet = peer.build(
            3,
            sequence,
            &[Bytes::copy_from_slice(&sequence.to_le_bytes())],
            PacketFlags::RELIABLE,
        );
        let received = server.handle_datagram(packet, start).unwrap();
        assert!(matches!(received, Received::Delivered(ref d) if d.ready() == 0));
    }
    assert!(server.poll_delivery().is_none());
    // No marker within the grace: net-mesh, which never retransmits; what was held
    // is delivered, in order, and later packets go straight through.
    server.handle_timeout(start + Duration::from_secs(1));
    assert_eq!(server.peer_kind(), PeerKind::NetMesh);
    let delivered: Vec<u64> = server
        .poll_delivery()
        .unwrap()
        .map(|p| p.header().sequence)
        .collect();
    assert_eq!(delivered, [1, 2]);
    let packet = peer.build(3, 3, &[Bytes::from_static(b"x")], PacketFlags::RELIABLE);
    assert!(matches!(
        server.handle_datagram(packet, start),
        Ok(Received::Packet(_))
    ));
}

#[test]
fn a_silent_peer_is_reported_once_per_silence() {
    let start = Instant::now();
    let session = session(A, B, Role::Initiator, start);
    let idle = SessionConfig::default().idle_timeout;
    let mut now = start;
    while now < start + idle * 3 {
        now = session
            .poll_timeout()
            .unwrap()
            .max(now + Duration::from_millis(1));
        session.handle_timeout(now);
    }
    let silent: Vec<Event> = std::iter::from_fn(|| session.poll_event())
        .filter(|e| matches!(e, Event::PeerSilent { .. }))
        .collect();
    assert_eq!(silent.len(), 1, "{silent:?}");
    // Heartbeats went out all along.
    assert!(session.stats().heartbeats_sent >= 40);
    // Hearing from the peer ends the silence; the next one is reported again.
    let mut peer = PacketBuilder::with_origin(&B, ID, 0);
    session
        .handle_datagram(peer.build_heartbeat(), now)
        .unwrap();
    let later = now + idle;
    session.handle_timeout(later);
    assert!(
        std::iter::from_fn(|| session.poll_event()).any(|e| matches!(e, Event::PeerSilent { .. }))
    );
}

/// A batch with an event no packet can carry is refused before anything is built: no
/// sequence or nonce used, the same error the pool's batch build gives.
#[test]
fn a_batch_with_an_event_too_large_for_any_packet_builds_nothing() {
    let now = Instant::now();
    let a = session(A, B, Role::Initiator, now);
    let events = [
        Bytes::from_static(b"fits"),
        Bytes::from(vec![0; netmesh_wire::MAX_EVENT_SIZE + 1]),
    ];
    let mut out = Vec::new();
    assert_eq!(
        a.send_batch(1, &events, PacketFlags::NONE, &mut out),
        Err(SendError::Build(netmesh_pool::BuildError::EventTooLarge {
            index: 1,
            len: netmesh_wire::MAX_EVENT_SIZE + 1,
            max: netmesh_wire::MAX_EVENT_SIZE,
        }))
    );
    assert!(out.is_empty());
    // The next send starts at sequence 0.
    let sent = a.send(1, &events[..1], PacketFlags::NONE).unwrap();
    assert_eq!(sent.sequence, 0);
}

/// `send_with` refuses events that do not fit one packet before its `fill` runs or a
/// sequence is used, with the builder's errors; a packet that fits follows on
/// sequence 0.
#[test]
fn send_with_refuses_what_does_not_fit_before_anything_is_used() {
    let now = Instant::now();
    let a = session(A, B, Role::Initiator, now);
    let b = session(B, A, Role::Responder, now);
    let mut called = false;
    for (count, event_len) in [(2028, 0), (1, 8105), (2, usize::MAX)] {
        let refused = a.send_with(1, count, event_len, PacketFlags::RELIABLE, |_, _| {
            called = true;
        });
        assert!(
            matches!(refused, Err(SendError::Build(_))),
            "{count} x {event_len}: {refused:?}"
        );
    }
    assert!(!called);
    assert_eq!(
        a.send_with(CONTROL_STREAM, 1, 1, PacketFlags::NONE, |_, _| called =
            true)
            .err(),
        Some(SendError::ReservedStream)
    );
    assert!(!called);
    let sent = a
        .send_with(1, 2, 3, PacketFlags::RELIABLE, |i, e| {
            e.fill(u8::try_from(i).unwrap() + 1)
        })
        .unwrap();
    assert_eq!(sent.sequence, 0);
    let events: Vec<Bytes> = match b.handle_datagram(sent.datagram.unwrap(), now).unwrap() {
        Received::Delivered(delivery) => delivery
            .flat_map(|p| p.events().collect::<Vec<_>>())
            .collect(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        events,
        [Bytes::from_static(&[1; 3]), Bytes::from_static(&[2; 3])]
    );
}
