//! A session in its handshake refuses every wrong handshake datagram with a typed error
//! and no state change; established sessions refuse wrong datagrams the same way.

// Test harness: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use netmesh_session::{
    Event, PeerKind, Prologue, Psk, Received, RecvError, Responder, SendError, Session,
    SessionConfig, SessionState, StaticKeypair,
};
use netmesh_wire::PacketFlags;

struct Pair {
    client: Session,
    server: Session,
    msg1: Bytes,
    msg2: Bytes,
}

fn setup(prologue: &Prologue) -> (Session, Bytes, Arc<Responder>, StaticKeypair) {
    let key = StaticKeypair::generate().unwrap();
    let psk = Psk::new([3; 32]);
    let responder = Arc::new(Responder::new(&key, &psk));
    let (client, msg1) = Session::connect(
        SessionConfig::default(),
        &key.public_key(),
        &psk,
        prologue,
        Instant::now(),
    )
    .unwrap();
    (client, msg1, responder, key)
}

fn pair() -> Pair {
    let (client, msg1, responder, _) = setup(&Prologue::Empty);
    let (server, msg2) = Session::accept(
        SessionConfig::default(),
        responder,
        &msg1,
        &Prologue::Empty,
        Instant::now(),
    )
    .unwrap();
    client
        .handle_datagram(msg2.clone(), Instant::now())
        .unwrap();
    Pair {
        client,
        server,
        msg1,
        msg2,
    }
}

/// Every way to spoil a datagram: each byte flipped, each truncation, extensions.
fn spoiled(datagram: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for i in 0..datagram.len() {
        for mask in [0x01, 0x80, 0xff] {
            let mut d = datagram.to_vec();
            d[i] ^= mask;
            out.push(d);
        }
    }
    for len in 0..datagram.len() {
        out.push(datagram[..len].to_vec());
    }
    for extra in [1, 16] {
        let mut d = datagram.to_vec();
        d.extend(std::iter::repeat_n(0u8, extra));
        out.push(d);
    }
    out
}

#[test]
fn handshaking_initiator_refuses_every_spoiled_msg2_and_stays_unchanged() {
    for prologue in [
        Prologue::Empty,
        Prologue::Mesh {
            initiator_id: 7,
            responder_id: 9,
        },
    ] {
        let (client, msg1, responder, _) = setup(&prologue);
        let (server, msg2) = Session::accept(
            SessionConfig::default(),
            responder,
            &msg1,
            &prologue,
            Instant::now(),
        )
        .unwrap();
        let now = Instant::now();
        let timeout = client.poll_timeout();
        let mut refused = 0u64;
        for bad in spoiled(&msg2) {
            let error = client.handle_datagram(Bytes::from(bad), now).unwrap_err();
            assert!(
                matches!(
                    error,
                    RecvError::Handshake(_)
                        | RecvError::NotNetmesh(_)
                        | RecvError::NotEstablished
                        | RecvError::Malformed(_)
                ),
                "{error:?}"
            );
            refused += 1;
            assert_eq!(client.state(), SessionState::Handshaking);
            assert_eq!(client.session_id(), None);
            assert_eq!(client.poll_event(), None);
            assert_eq!(client.poll_timeout(), timeout);
            assert_eq!(
                client.send(1, &[], PacketFlags::NONE),
                Err(SendError::NotEstablished)
            );
        }
        let stats = client.stats();
        let counted = stats.rejected_handshake
            + stats.rejected_not_netmesh
            + stats.rejected_state
            + stats.rejected_malformed;
        assert_eq!(counted, refused);
        // The untouched msg2 still completes the handshake: nothing was consumed.
        assert!(matches!(
            client.handle_datagram(msg2, now),
            Ok(Received::Handshake)
        ));
        assert_eq!(client.session_id(), server.session_id());
        assert_eq!(
            client.poll_event(),
            Some(Event::Established {
                session_id: server.session_id().unwrap()
            })
        );
    }
}

#[test]
fn responder_refuses_every_spoiled_msg1_and_creates_nothing() {
    let (_, msg1, responder, _) = setup(&Prologue::Empty);
    for bad in spoiled(&msg1) {
        assert!(Session::accept(
            SessionConfig::default(),
            Arc::clone(&responder),
            &bad,
            &Prologue::Empty,
            Instant::now(),
        )
        .is_err());
    }
    // A wrong prologue is refused too.
    assert!(Session::accept(
        SessionConfig::default(),
        responder,
        &msg1,
        &Prologue::Mesh {
            initiator_id: 1,
            responder_id: 2
        },
        Instant::now(),
    )
    .is_err());
}

#[test]
fn established_responder_answers_a_duplicate_msg1_with_the_same_msg2_and_refuses_others() {
    let p = pair();
    let now = Instant::now();
    while p.server.poll_transmit().is_some() {}
    assert!(matches!(
        p.server.handle_datagram(p.msg1.clone(), now),
        Ok(Received::Handshake)
    ));
    let resent: Vec<Bytes> = std::iter::from_fn(|| p.server.poll_transmit()).collect();
    assert_eq!(resent[0], p.msg2, "the same msg2 again");
    let id = p.server.session_id();
    for bad in spoiled(&p.msg1) {
        assert!(p.server.handle_datagram(Bytes::from(bad), now).is_err());
        assert_eq!(p.server.session_id(), id);
    }
    // A new msg1 (a restarted peer) is not this session's business.
    let (_, other_msg1, _, _) = setup(&Prologue::Empty);
    assert_eq!(
        p.server.handle_datagram(other_msg1, now).unwrap_err(),
        RecvError::NewHandshake
    );
    // msg2 again at the established initiator: refused, nothing changes.
    assert!(p.client.handle_datagram(p.msg2.clone(), now).is_err());
    assert_eq!(p.client.session_id(), id);
}

#[test]
fn initiator_retries_the_same_msg1_then_times_out() {
    let start = Instant::now();
    let (client, msg1, _, _) = setup(&Prologue::Empty);
    let mut now = start;
    let mut retries = 0;
    while client.state() == SessionState::Handshaking {
        now = client.poll_timeout().unwrap();
        client.handle_timeout(now);
        while let Some(d) = client.poll_transmit() {
            assert_eq!(d, msg1, "retries send the same msg1");
            retries += 1;
        }
    }
    assert_eq!(client.state(), SessionState::Closed);
    assert_eq!(client.poll_event(), Some(Event::HandshakeTimedOut));
    let config = SessionConfig::default();
    assert!(now - start >= config.handshake_timeout);
    assert!(
        retries >= 15,
        "{retries} retries in {:?} every 250 ms",
        now - start
    );
    assert_eq!(
        client.send(0, &[], PacketFlags::NONE),
        Err(SendError::Closed)
    );
}

#[test]
fn bad_datagrams_are_refused_by_kind_and_change_nothing() {
    let p = pair();
    let now = Instant::now();
    // Marker heartbeats both ways: each learns the other is netmesh.
    while let Some(d) = p.server.poll_transmit() {
        p.client.handle_datagram(d, now).unwrap();
    }
    while let Some(d) = p.client.poll_transmit() {
        p.server.handle_datagram(d, now).unwrap();
    }
    assert_eq!(p.client.peer_kind(), PeerKind::Netmesh);
    assert_eq!(p.server.peer_kind(), PeerKind::Netmesh);

    let event = [Bytes::from_static(b"payload")];
    let packet = p
        .client
        .send(3, &event, PacketFlags::NONE)
        .unwrap()
        .datagram
        .unwrap();
    // A MeshNode's 72-byte pingwave: ignored, counted.
    assert!(matches!(
        p.server.handle_datagram(Bytes::from(vec![1u8; 72]), now),
        Ok(Received::Ignored)
    ));
    // Not netmesh at all.
    assert!(matches!(
        p.server.handle_datagram(Bytes::from(vec![1u8; 40]), now),
        Err(RecvError::NotNetmesh(_))
    ));
    // Forged: one ciphertext byte flipped.
    let mut forged = BytesMut::from(&packet[..]);
    forged[70] ^= 1;
    assert_eq!(
        p.server.handle_datagram(forged, now).unwrap_err(),
        RecvError::AuthFailed
    );
    // Wrong length.
    let mut long = BytesMut::from(&packet[..]);
    long.extend_from_slice(&[0]);
    assert!(matches!(
        p.server.handle_datagram(long, now),
        Err(RecvError::Malformed(_))
    ));
    // Another session's id.
    let mut other = BytesMut::from(&packet[..]);
    other[24] ^= 1;
    assert!(matches!(
        p.server.handle_datagram(other, now),
        Err(RecvError::WrongSession(_))
    ));
    // None of those changed anything: the real packet opens, once.
    assert!(matches!(
        p.server.handle_datagram(packet.clone(), now),
        Ok(Received::Packet(_))
    ));
    assert!(matches!(
        p.server.handle_datagram(packet, now),
        Err(RecvError::Replayed(_))
    ));
    let s = p.server.stats();
    assert_eq!(
        (
            s.ignored,
            s.rejected_not_netmesh,
            s.rejected_auth,
            s.rejected_malformed,
            s.rejected_wrong_session,
            s.rejected_replay
        ),
        (1, 1, 1, 1, 1, 1)
    );
    assert_eq!(s.events_delivered, 1);
}

#[test]
fn a_peer_without_the_marker_is_taken_for_net_mesh_after_the_grace() {
    let p = pair();
    let start = Instant::now();
    // Nothing from the client reaches the server: after the grace it is net-mesh.
    let later = start + SessionConfig::default().peer_detect_grace + Duration::from_millis(1);
    p.server.handle_timeout(later);
    assert_eq!(p.server.peer_kind(), PeerKind::NetMesh);
    // No credit applies any more: the server sends as much as it likes.
    for i in 0..1000u64 {
        let sent = p
            .server
            .send(i % 4, &[Bytes::from_static(b"x")], PacketFlags::NONE)
            .unwrap();
        assert!(sent.datagram.is_some());
    }
}

#[test]
fn an_unmarked_heartbeat_means_net_mesh_and_credit_blocks_an_unknown_peer() {
    let p = pair();
    // Before the peer is known, an implicit credit of 128 counters applies.
    let mut sent = 0;
    loop {
        match p
            .client
            .send(0, &[Bytes::from_static(b"x")], PacketFlags::NONE)
        {
            Ok(s) if s.datagram.is_some() => sent += 1,
            Ok(_) => {}
            Err(SendError::Blocked(_)) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!((100..=128).contains(&sent), "{sent}");
    assert!(!p.client.can_send(0));
    let generation = p.client.credit_generation();
    // The server's first marked heartbeat makes the client netmesh-aware; credit
    // then comes from the server's CREDIT.
    let now = Instant::now();
    while let Some(d) = p.server.poll_transmit() {
        p.client.handle_datagram(d, now).unwrap();
    }
    assert_eq!(p.client.peer_kind(), PeerKind::Netmesh);
    assert_ne!(p.client.credit_generation(), generation);
}
