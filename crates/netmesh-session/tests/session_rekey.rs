//! Re-keying: with a threshold of 5000 counters, a netmesh initiator re-keys again and
//! again while events keep flowing; counters restart at 0 under each new key only, and
//! no (session id, counter) pair is ever sealed twice, in either direction.

// Test harness: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use netmesh_session::sim::{LinkConfig, SimLink, VirtualClock};
mod support;

use netmesh_session::{Event, Received, SendError, SessionConfig};
use netmesh_wire::{NetHeader, PacketFlags};

const THRESHOLD: u64 = 5000;
const PACKETS: u64 = 32_000;

/// Every sealed datagram's (session id, counter), per direction: a repeat is a nonce
/// reused.
#[derive(Default)]
struct Nonces {
    seen: HashSet<(u64, u64)>,
    /// Per session id: the lowest and highest counter seen.
    range: HashMap<u64, (u64, u64)>,
}

impl Nonces {
    fn record(&mut self, datagram: &[u8]) {
        let header = NetHeader::parse(datagram).unwrap();
        if header.flags.is_handshake() {
            return;
        }
        let key = (header.session_id, header.nonce_counter());
        assert!(self.seen.insert(key), "nonce sealed twice: {key:?}");
        let r = self.range.entry(key.0).or_insert((key.1, key.1));
        r.0 = r.0.min(key.1);
        r.1 = r.1.max(key.1);
    }
}

fn send(link: &mut SimLink, nonces: &mut Nonces, now: std::time::Instant, d: Bytes) {
    nonces.record(&d);
    link.send(now, d);
}

#[test]
#[allow(clippy::too_many_lines)]
fn rekeys_every_5000_counters_and_never_reuses_a_nonce() {
    let config = SessionConfig {
        rekey_after: THRESHOLD,
        ..SessionConfig::default()
    };
    let link_config = LinkConfig {
        loss: 0.01,
        reorder: 0.02,
        ..LinkConfig::default()
    };
    let mut forward = SimLink::new(link_config, 11);
    let mut back = SimLink::new(link_config, 12);
    let (mut c2s, mut s2c) = (Nonces::default(), Nonces::default());
    let mut clock = VirtualClock::new();
    let now = clock.now();
    let (client, server) = support::established(config.clone(), config, now);
    let first_id = client.session_id().unwrap();

    let mut next_event = [0u64; 2];
    let mut reliable_next = 0u64;
    let mut ff_received = 0u64;
    let mut sent = 0u64;
    let mut steps = 0u64;
    while sent < PACKETS || reliable_next < next_event[0] {
        steps += 1;
        assert!(
            steps < 5_000_000,
            "stalled at {sent} sent, {reliable_next} delivered"
        );
        let now = clock.now();
        // A few packets per step, alternating a reliable and a fire-and-forget stream.
        for _ in 0..4 {
            if sent >= PACKETS {
                break;
            }
            let stream = sent % 2;
            let index = next_event[stream as usize];
            let event = Bytes::copy_from_slice(&index.to_le_bytes());
            let flags = if stream == 0 {
                PacketFlags::RELIABLE
            } else {
                PacketFlags::NONE
            };
            match client.send(stream, &[event], flags) {
                Ok(s) => {
                    next_event[stream as usize] += 1;
                    sent += 1;
                    if let Some(d) = s.datagram {
                        send(&mut forward, &mut c2s, now, d);
                    }
                }
                Err(SendError::Blocked(_)) => break,
                Err(e) => panic!("{e}"),
            }
        }
        // One receive batch per step: re-key handshakes and packets under the new keys
        // arrive inside batches.
        let mut batch = server.receive_batch(now);
        while let Some(d) = forward.recv(now) {
            let Ok(received) = batch.handle(d) else {
                continue;
            };
            let packets: Vec<_> = match received {
                Received::Packet(p) => vec![p],
                Received::Delivered(d) => d.collect(),
                _ => vec![],
            };
            for p in packets {
                let index = u64::from_le_bytes(p.events().next().unwrap()[..].try_into().unwrap());
                if p.header().stream_id == 0 {
                    assert_eq!(index, reliable_next, "reliable order");
                    reliable_next += 1;
                } else {
                    ff_received += 1;
                }
            }
        }
        drop(batch);
        while let Some(d) = back.recv(now) {
            let _ = client.handle_datagram(d, now);
        }
        for s in [&client, &server] {
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now);
            }
        }
        while let Some(d) = client.poll_transmit() {
            send(&mut forward, &mut c2s, now, d);
        }
        while let Some(d) = server.poll_transmit() {
            send(&mut back, &mut s2c, now, d);
        }
        clock.advance(Duration::from_micros(20));
    }

    let rekeys: Vec<u64> = std::iter::from_fn(|| client.poll_event())
        .filter_map(|e| match e {
            Event::Rekeyed { session_id } => Some(session_id),
            _ => None,
        })
        .collect();
    let server_rekeys: Vec<u64> = std::iter::from_fn(|| server.poll_event())
        .filter_map(|e| match e {
            Event::Rekeyed { session_id } => Some(session_id),
            _ => None,
        })
        .collect();
    let stats = client.stats();
    eprintln!(
        "{} re-keys; client {stats:?}; server {:?}; per session id (min, max counter) {:?}",
        rekeys.len(),
        server.stats(),
        c2s.range
    );
    assert!(rekeys.len() >= 5, "{} re-keys", rekeys.len());
    assert_eq!(
        rekeys, server_rekeys,
        "both sides switched to the same keys, in order"
    );
    let distinct: HashSet<u64> = rekeys.iter().copied().chain([first_id]).collect();
    assert_eq!(
        distinct.len(),
        rekeys.len() + 1,
        "every re-key has a new session id"
    );
    // Counters restart at 0 under each key, and no key is used far past the threshold.
    for (id, (low, high)) in &c2s.range {
        assert!(
            distinct.contains(id),
            "a packet under an unknown session id"
        );
        assert!(*low < 64, "session {id:#x}: first counter {low}");
        assert!(
            *high < THRESHOLD + 2000,
            "session {id:#x} sealed up to {high}"
        );
    }
    assert_eq!(
        reliable_next, next_event[0],
        "every reliable event, in order"
    );
    assert!(ff_received > 0);
    assert_eq!(stats.rekeys, rekeys.len() as u64);
}
