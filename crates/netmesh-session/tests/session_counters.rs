//! Packets a session seals on threads that send rarely (timers, receive threads) take
//! their nonce counters one at a time: no lease of 16 is left mostly unused, so the
//! peer's credit watermark never waits on (and gives up) counters nobody will send.

// Test harness: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use netmesh_session::{PeerKind, Role, Session, SessionConfig, SessionKeys};
use netmesh_wire::PacketFlags;

const ID: u64 = 0x5eed_0000_0000_0001;

#[test]
fn heartbeats_from_a_timer_thread_leave_no_counter_gap() {
    let start = Instant::now();
    let config = SessionConfig::default();
    let a = Session::from_keys(
        config.clone(),
        SessionKeys::from_parts(ID, [1; 32], [2; 32]),
        Role::Initiator,
        start,
    );
    let b = Session::from_keys(
        config.clone(),
        SessionKeys::from_parts(ID, [2; 32], [1; 32]),
        Role::Responder,
        start,
    );
    let pump = |now: Instant| {
        for _ in 0..4 {
            while let Some(d) = a.poll_transmit() {
                let _ = b.handle_datagram(d, now);
            }
            while let Some(d) = b.poll_transmit() {
                let _ = a.handle_datagram(d, now);
            }
        }
    };
    pump(start);
    assert_eq!(
        (a.peer_kind(), b.peer_kind()),
        (PeerKind::Netmesh, PeerKind::Netmesh)
    );

    let event = [Bytes::from_static(b"data")];
    let mut now = start;
    for round in 0..20 {
        // Data from this thread up to the end of a lease (leases end at multiples of
        // COUNTER_LEASE; a lease left partly unused for a second is a gap too, but that
        // one is the sender's choice), and timers (heartbeats, credit) from another
        // thread, in turns.
        loop {
            let sent = a.send(1, &event, PacketFlags::NONE).unwrap();
            b.handle_datagram(sent.datagram.expect("within credit"), now)
                .unwrap();
            if (sent.counter + 1) % netmesh_cipher::COUNTER_LEASE == 0 {
                break;
            }
        }
        now += config.heartbeat_interval + Duration::from_millis(round);
        std::thread::scope(|s| {
            s.spawn(|| {
                a.handle_timeout(now);
                b.handle_timeout(now);
            });
        });
        pump(now);
    }
    // Long enough for any gap to be given up.
    now += Duration::from_secs(1);
    b.handle_timeout(now);
    pump(now);
    let stats = b.stats();
    assert!(stats.heartbeats_received >= 20, "{stats:?}");
    assert_eq!(stats.gap_skips, 0, "{stats:?}");
}
