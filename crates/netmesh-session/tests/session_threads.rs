//! Flow control under 4 sender threads sharing one session, with an in-memory link to a
//! slower receiving session: no packet is ever refused by the receiver's replay window
//! as too old or too far ahead, and every event arrives.

// Test harness: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use netmesh_pool::OpenError;
mod support;

use netmesh_session::{Blocked, PeerKind, Received, RecvError, SendError, SessionConfig};
use netmesh_wire::PacketFlags;

const THREADS: u64 = 4;
const PACKETS_PER_THREAD: u64 = 10_000;
const EVENTS_PER_PACKET: usize = 4;

#[test]
#[allow(clippy::too_many_lines)]
fn four_sender_threads_never_leave_the_replay_window() {
    let now = Instant::now();
    let server_config = SessionConfig {
        credit_window: 128,
        ..SessionConfig::default()
    };
    let (client, server) = support::established(SessionConfig::default(), server_config, now);
    let client = Arc::new(client);
    let server = Arc::new(server);

    let (to_server, server_inbox) = channel::<Bytes>();
    let (to_client, client_inbox) = channel::<Bytes>();
    let wake = Arc::new((Mutex::new(()), Condvar::new()));
    let done = Arc::new(AtomicBool::new(false));
    let out_of_window = Arc::new(AtomicU64::new(0));
    let delivered = Arc::new(AtomicU64::new(0));

    // The receiver: opens everything, a little slower than the senders.
    let receiver = {
        let server = Arc::clone(&server);
        let to_client = to_client.clone();
        let done = Arc::clone(&done);
        let out_of_window = Arc::clone(&out_of_window);
        let delivered = Arc::clone(&delivered);
        thread::spawn(move || {
            let mut count = 0u64;
            while !done.load(Ordering::Acquire) {
                match server_inbox.recv_timeout(Duration::from_millis(1)) {
                    Ok(d) => {
                        count += 1;
                        if count % 256 == 0 {
                            thread::sleep(Duration::from_micros(200));
                        }
                        match server.handle_datagram(d, Instant::now()) {
                            Ok(Received::Packet(p)) => {
                                delivered.fetch_add(p.events().count() as u64, Ordering::Relaxed);
                            }
                            Ok(_) => {}
                            Err(RecvError::Replayed(
                                OpenError::TooOld { .. } | OpenError::TooFarAhead { .. },
                            )) => {
                                out_of_window.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => panic!("receiver refused a datagram: {e}"),
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                let now = Instant::now();
                if server.poll_timeout().is_some_and(|t| t <= now) {
                    server.handle_timeout(now);
                }
                while let Some(d) = server.poll_transmit() {
                    let _ = to_client.send(d);
                }
            }
        })
    };

    // The client's receive and timer thread: credit in, control and deferred out.
    let pump = {
        let client = Arc::clone(&client);
        let to_server = to_server.clone();
        let wake = Arc::clone(&wake);
        let done = Arc::clone(&done);
        thread::spawn(move || {
            while !done.load(Ordering::Acquire) {
                if let Ok(d) = client_inbox.recv_timeout(Duration::from_millis(1)) {
                    let _ = client.handle_datagram(d, Instant::now());
                }
                let now = Instant::now();
                if client.poll_timeout().is_some_and(|t| t <= now) {
                    client.handle_timeout(now);
                }
                while let Some(d) = client.poll_transmit() {
                    let _ = to_server.send(d);
                }
                let _guard = wake.0.lock().unwrap();
                wake.1.notify_all();
            }
        })
    };

    let senders: Vec<_> = (0..THREADS)
        .map(|stream| {
            let client = Arc::clone(&client);
            let to_server = to_server.clone();
            let wake = Arc::clone(&wake);
            thread::spawn(move || {
                let mut blocked = 0u64;
                for i in 0..PACKETS_PER_THREAD {
                    let events: Vec<Bytes> = (0..EVENTS_PER_PACKET)
                        .map(|k| Bytes::from(format!("{stream}:{i}:{k}")))
                        .collect();
                    loop {
                        let generation = client.credit_generation();
                        match client.send(stream, &events, PacketFlags::NONE) {
                            Ok(sent) => {
                                if let Some(d) = sent.datagram {
                                    to_server.send(d).unwrap();
                                }
                                break;
                            }
                            Err(SendError::Blocked(Blocked::Credit)) => {
                                blocked += 1;
                                let guard = wake.0.lock().unwrap();
                                if client.credit_generation() == generation {
                                    let _ = wake.1.wait_timeout(guard, Duration::from_millis(2));
                                }
                            }
                            Err(e) => panic!("send failed: {e}"),
                        }
                    }
                }
                blocked
            })
        })
        .collect();
    let blocked: u64 = senders.into_iter().map(|t| t.join().unwrap()).sum();

    let expected = THREADS * PACKETS_PER_THREAD * EVENTS_PER_PACKET as u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while delivered.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    done.store(true, Ordering::Release);
    receiver.join().unwrap();
    pump.join().unwrap();

    let client_stats = client.stats();
    let server_stats = server.stats();
    eprintln!("blocked {blocked} times; client {client_stats:?}; server {server_stats:?}");
    assert_eq!(client.peer_kind(), PeerKind::Netmesh);
    assert_eq!(
        out_of_window.load(Ordering::Relaxed),
        0,
        "packets outside the replay window"
    );
    assert_eq!(server_stats.rejected_replay, 0);
    assert_eq!(
        delivered.load(Ordering::Relaxed),
        expected,
        "every event arrived"
    );
    assert!(
        blocked > 0,
        "flow control never held a sender back: the test proves nothing"
    );
}
