//! Two sessions over the deterministic simulated link (seeded loss, duplication,
//! reordering and delay, virtual clock): a real handshake, then events on 4 reliable and
//! 4 fire-and-forget streams. Reliable streams must deliver every event exactly once and
//! in order; fire-and-forget streams must deliver nothing twice, and the receiver's loss
//! count must equal what the link dropped.
//!
//! `cargo test -p netmesh-session --test session_sim` runs 100 000 events; the
//! 1 000 000-event run is `#[ignore]`d here and runs in CI in release:
//! `cargo test --release -p netmesh-session --test session_sim -- --ignored`.

// Test harness: a failed unwrap is a failed test; stream ids are below 8.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use netmesh_session::sim::{LinkConfig, SimLink, VirtualClock};
use netmesh_session::{
    Event, PeerKind, Prologue, Psk, Received, Responder, SendError, Session, SessionConfig,
    StaticKeypair,
};
use netmesh_wire::{NetHeader, PacketFlags};

const STREAMS: u64 = 8;
/// Streams below this are reliable; the others fire-and-forget.
const RELIABLE_STREAMS: u64 = 4;
const EVENTS_PER_PACKET: u64 = 8;
const EVENT_SIZE: usize = 24;

fn event(stream: u64, index: u64) -> Bytes {
    let mut b = BytesMut::zeroed(EVENT_SIZE);
    write_event(&mut b, stream, index);
    b.freeze()
}

fn write_event(out: &mut [u8], stream: u64, index: u64) {
    let words = [stream, index, stream.wrapping_mul(31).wrapping_add(index)];
    for (slot, word) in out.chunks_exact_mut(8).zip(words) {
        slot.copy_from_slice(&word.to_le_bytes());
    }
}

fn parse_event(e: &[u8]) -> (u64, u64) {
    let w = |i: usize| u64::from_le_bytes(e[i * 8..i * 8 + 8].try_into().unwrap());
    assert_eq!(e.len(), EVENT_SIZE, "event length");
    assert_eq!(
        w(2),
        w(0).wrapping_mul(31).wrapping_add(w(1)),
        "event content"
    );
    (w(0), w(1))
}

/// A side's link into the other: remembers which fire-and-forget data packets it dropped.
struct Wire {
    link: SimLink,
    /// Per stream: sequences of fire-and-forget data packets the link dropped.
    dropped_ff: Vec<Vec<u64>>,
}

impl Wire {
    fn new(config: LinkConfig, seed: u64) -> Self {
        Self {
            link: SimLink::new(config, seed),
            dropped_ff: vec![Vec::new(); STREAMS as usize],
        }
    }

    fn send(&mut self, now: Instant, datagram: Bytes) {
        let before = self.link.stats().dropped;
        let header = NetHeader::parse(&datagram).ok();
        self.link.send(now, datagram);
        if self.link.stats().dropped > before {
            if let Some(h) = header {
                let data =
                    !h.flags.is_heartbeat() && !h.flags.is_handshake() && h.stream_id < STREAMS;
                if data && !h.flags.is_reliable() {
                    self.dropped_ff[h.stream_id as usize].push(h.sequence);
                }
            }
        }
    }
}

#[derive(Default)]
struct Receiver {
    /// Reliable: the next index expected per stream.
    next: Vec<u64>,
    /// Fire-and-forget: indices seen, per stream.
    seen: Vec<Vec<bool>>,
    /// Fire-and-forget: highest sequence delivered per stream.
    highest_seq: Vec<Option<u64>>,
    delivered: u64,
}

impl Receiver {
    fn new(per_stream: u64) -> Self {
        Self {
            next: vec![0; STREAMS as usize],
            seen: (0..STREAMS)
                .map(|_| vec![false; per_stream as usize])
                .collect(),
            highest_seq: vec![None; STREAMS as usize],
            delivered: 0,
        }
    }

    fn packet(&mut self, header: &NetHeader, events: impl Iterator<Item = Bytes>) {
        let stream = header.stream_id;
        for e in events {
            let (s, i) = parse_event(&e);
            assert_eq!(s, stream, "event filed on the wrong stream");
            self.delivered += 1;
            if stream < RELIABLE_STREAMS {
                assert_eq!(i, self.next[s as usize], "reliable stream {s} out of order");
                self.next[s as usize] += 1;
            } else {
                let seen = &mut self.seen[s as usize][i as usize];
                assert!(!*seen, "fire-and-forget event {s}/{i} delivered twice");
                *seen = true;
            }
        }
        if stream >= RELIABLE_STREAMS {
            let h = &mut self.highest_seq[stream as usize];
            *h = Some(h.map_or(header.sequence, |x| x.max(header.sequence)));
        }
    }

    fn take(&mut self, received: Received<'_>) {
        match received {
            Received::Packet(p) => self.packet(p.header(), p.events()),
            Received::Delivered(delivery) => {
                for p in delivery {
                    self.packet(p.header(), p.events());
                }
            }
            _ => {}
        }
    }
}

struct Run {
    events: u64,
    link: LinkConfig,
    seed: u64,
}

fn pump(session: &Session, wire: &mut Wire, now: Instant) {
    while let Some(d) = session.poll_transmit() {
        wire.send(now, d);
    }
}

#[allow(clippy::too_many_lines)]
fn run(r: &Run) {
    let per_stream = r.events / STREAMS;
    let mut clock = VirtualClock::new();
    let config = SessionConfig::default();
    let server_key = StaticKeypair::generate().unwrap();
    let psk = Psk::new([9; 32]);
    let responder = Arc::new(Responder::new(&server_key, &psk));
    let mut forward = Wire::new(r.link, r.seed);
    let mut back = Wire::new(r.link, r.seed ^ 0x5eed);

    // Handshake over the lossy link: retries until both are established.
    let now = clock.now();
    let (client, msg1) = Session::connect(
        config.clone(),
        &server_key.public_key(),
        &psk,
        &Prologue::Empty,
        now,
    )
    .unwrap();
    forward.send(now, msg1);
    let mut server: Option<Session> = None;
    let mut rx = Receiver::new(per_stream);
    let mut next_index = vec![0u64; STREAMS as usize];
    let mut stream_cursor = 0u64;
    let mut sent_events = 0u64;
    let total = per_stream * STREAMS;
    let deadline = clock.now() + Duration::from_secs(3600);
    let mut rejected = 0u64;
    let mut batch_size = 1;

    loop {
        let now = clock.now();
        assert!(
            now < deadline,
            "no progress: {} of {total} delivered",
            rx.delivered
        );
        // Client -> server: what arrived at this instant goes through receive batches
        // of 1 to 32 datagrams, as an endpoint's receive calls would hand them over.
        let arrived: Vec<Bytes> = std::iter::from_fn(|| forward.link.recv(now)).collect();
        let mut arrived = arrived.into_iter();
        while server.is_none() {
            let Some(d) = arrived.next() else { break };
            if let Ok((s, msg2)) = Session::accept(
                config.clone(),
                Arc::clone(&responder),
                &d,
                &Prologue::Empty,
                now,
            ) {
                back.send(now, msg2);
                server = Some(s);
            }
        }
        if let Some(s) = &server {
            let mut batch = s.receive_batch(now);
            let mut in_batch = 0;
            for d in arrived {
                match batch.handle(d) {
                    Ok(received) => rx.take(received),
                    Err(_) => rejected += 1,
                }
                while let Some(delivery) = s.poll_delivery() {
                    rx.take(Received::Delivered(delivery));
                }
                in_batch += 1;
                if in_batch >= batch_size {
                    batch = s.receive_batch(now);
                    in_batch = 0;
                    batch_size = batch_size % 32 + 1;
                }
            }
        }
        // Server -> client.
        while let Some(d) = back.link.recv(now) {
            let _ = client.handle_datagram(d, now);
        }
        // The client sends while credit allows.
        let mut blocked = false;
        if client.is_established() {
            while sent_events < total {
                let stream = stream_cursor % STREAMS;
                if next_index[stream as usize] >= per_stream {
                    stream_cursor += 1;
                    continue;
                }
                let first = next_index[stream as usize];
                let n = EVENTS_PER_PACKET.min(per_stream - first);
                let flags = if stream < RELIABLE_STREAMS {
                    PacketFlags::RELIABLE
                } else {
                    PacketFlags::NONE
                };
                // Odd streams (reliable and not) have their events written in place.
                let sent = if stream % 2 == 1 {
                    let count = usize::try_from(n).unwrap();
                    client.send_with(stream, count, EVENT_SIZE, flags, |k, out| {
                        write_event(out, stream, first + k as u64);
                    })
                } else {
                    let events: Vec<Bytes> = (first..first + n).map(|i| event(stream, i)).collect();
                    client.send(stream, &events, flags)
                };
                match sent {
                    Ok(sent) => {
                        next_index[stream as usize] += n;
                        sent_events += n;
                        stream_cursor += 1;
                        if let Some(d) = sent.datagram {
                            forward.send(now, d);
                        }
                    }
                    Err(SendError::Blocked(_)) => {
                        blocked = true;
                        break;
                    }
                    Err(e) => panic!("send failed: {e}"),
                }
            }
        }
        // Timers.
        for s in std::iter::once(&client).chain(server.iter()) {
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now);
            }
        }
        pump(&client, &mut forward, now);
        if let Some(s) = &server {
            pump(s, &mut back, now);
            while let Some(delivery) = s.poll_delivery() {
                rx.take(Received::Delivered(delivery));
            }
        }
        // Done: everything sent, reliable streams complete, links drained.
        let reliable_done = (0..RELIABLE_STREAMS).all(|s| rx.next[s as usize] == per_stream);
        if sent_events == total && reliable_done && forward.link.in_flight() == 0 {
            break;
        }
        // Advance: a small step while sending, else to the next thing that happens.
        let mut next = [
            forward.link.next_delivery_time(),
            back.link.next_delivery_time(),
            client.poll_timeout(),
            server.as_ref().and_then(Session::poll_timeout),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(now + Duration::from_millis(1));
        if sent_events < total && !blocked && client.is_established() {
            next = next.min(now + Duration::from_micros(50));
        }
        clock.advance_to(next.max(now + Duration::from_micros(1)));
    }

    let server = server.unwrap();
    let stats = server.stats();
    let client_stats = client.stats();
    assert_eq!(client.peer_kind(), PeerKind::Netmesh);
    assert_eq!(server.peer_kind(), PeerKind::Netmesh);
    // Reliable: every event once, in order (checked as delivered).
    for s in 0..RELIABLE_STREAMS {
        assert_eq!(
            rx.next[s as usize], per_stream,
            "reliable stream {s} incomplete"
        );
    }
    // Fire-and-forget: nothing twice (checked as delivered); every loss counted: the
    // receiver's count equals the packets the link dropped below the highest delivered
    // sequence of each stream.
    let mut expected_lost = 0u64;
    let mut ff_delivered = 0u64;
    for s in RELIABLE_STREAMS..STREAMS {
        let highest = rx.highest_seq[s as usize];
        expected_lost += forward.dropped_ff[s as usize]
            .iter()
            .filter(|&&seq| highest.is_some_and(|h| seq < h))
            .count() as u64;
        ff_delivered += rx.seen[s as usize].iter().filter(|&&b| b).count() as u64;
    }
    assert_eq!(
        stats.lost_packets, expected_lost,
        "fire-and-forget losses counted"
    );
    assert!(
        expected_lost > 0,
        "the link dropped fire-and-forget packets"
    );
    let lost_events = forward
        .dropped_ff
        .iter()
        .map(|d| d.len() as u64)
        .sum::<u64>()
        * EVENTS_PER_PACKET;
    assert!(ff_delivered + lost_events >= per_stream * (STREAMS - RELIABLE_STREAMS));
    assert_eq!(stats.lost_reliable, 0);
    assert!(client_stats.retransmits > 0);
    let no_events: Vec<Event> = std::iter::from_fn(|| client.poll_event())
        .filter(|e| matches!(e, Event::StreamLoss { .. }))
        .collect();
    assert!(no_events.is_empty(), "{no_events:?}");
    eprintln!(
        "{} events ({} reliable, {} fire-and-forget delivered) in {:?} virtual; link forward {:?}; \
         client {client_stats:?}; server {stats:?}; rejected {rejected}",
        rx.delivered,
        per_stream * RELIABLE_STREAMS,
        ff_delivered,
        clock.elapsed(),
        forward.link.stats(),
    );
}

fn lossy() -> LinkConfig {
    LinkConfig {
        loss: 0.02,
        duplication: 0.01,
        reorder: 0.05,
        ..LinkConfig::default()
    }
}

#[test]
fn hundred_thousand_events_over_a_lossy_link() {
    run(&Run {
        events: 100_000,
        link: lossy(),
        seed: 1,
    });
}

#[test]
#[ignore = "1M events: run in release (.ci/run does)"]
fn million_events_over_a_lossy_link() {
    run(&Run {
        events: 1_000_000,
        link: lossy(),
        seed: 2,
    });
}

#[test]
fn a_harsh_link_still_delivers_reliable_streams_exactly_once_in_order() {
    for seed in [3, 4] {
        run(&Run {
            events: 4_000,
            link: LinkConfig {
                loss: 0.10,
                duplication: 0.05,
                reorder: 0.20,
                ..LinkConfig::default()
            },
            seed,
        });
    }
}
