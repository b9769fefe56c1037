//! The receive path from several threads at once: datagrams of 4 reliable streams
//! dealt round-robin to 2 receiving threads still come out exactly once and in order per
//! stream (a `Delivery` holds its stream's lock while it is drained).

// Test harness: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::sync::mpsc::{channel, Receiver as Inbox, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use netmesh_session::{PeerKind, Received, Role, SendError, Session, SessionConfig, SessionKeys};
use netmesh_wire::PacketFlags;

const STREAMS: u64 = 4;
const PER_STREAM: u64 = 5_000;

type Log = Arc<Vec<Mutex<Vec<u64>>>>;

fn record(log: &Log, received: Received<'_>) {
    if let Received::Delivered(delivery) = received {
        let stream = delivery.stream_id() as usize;
        // Recorded while the delivery (and so the stream's lock) is held.
        let mut entries = log[stream].lock().unwrap();
        for packet in delivery {
            for event in packet.events() {
                entries.push(u64::from_le_bytes(event[..].try_into().unwrap()));
            }
        }
    }
}

fn receiver_thread(
    server: Arc<Session>,
    inbox: Inbox<Bytes>,
    control: Sender<Bytes>,
    log: Log,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        while let Ok(d) = inbox.recv() {
            let now = Instant::now();
            if let Ok(received) = server.handle_datagram(d, now) {
                record(&log, received);
            }
            while let Some(delivery) = server.poll_delivery() {
                record(&log, Received::Delivered(delivery));
            }
            while let Some(c) = server.poll_transmit() {
                let _ = control.send(c);
            }
        }
    })
}

#[test]
fn two_receiving_threads_deliver_each_stream_once_and_in_order() {
    let now = Instant::now();
    let client = Session::from_keys(
        SessionConfig::default(),
        SessionKeys::from_parts(7, [1; 32], [2; 32]),
        Role::Initiator,
        now,
    );
    let server = Arc::new(Session::from_keys(
        SessionConfig::default(),
        SessionKeys::from_parts(7, [2; 32], [1; 32]),
        Role::Responder,
        now,
    ));
    let log: Log = Arc::new((0..STREAMS).map(|_| Mutex::new(Vec::new())).collect());
    let (control_tx, control_rx) = channel();
    let (to_a, inbox_a) = channel();
    let (to_b, inbox_b) = channel();
    let a = receiver_thread(
        Arc::clone(&server),
        inbox_a,
        control_tx.clone(),
        Arc::clone(&log),
    );
    let b = receiver_thread(Arc::clone(&server), inbox_b, control_tx, Arc::clone(&log));
    let lanes = [to_a, to_b];
    let mut lane = 0usize;
    let mut deal = |d: Bytes| {
        let _ = lanes[lane % 2].send(d);
        lane += 1;
    };

    // Markers first, so both sides know they talk to netmesh.
    while let Some(d) = client.poll_transmit() {
        deal(d);
    }
    let mut next = [0u64; STREAMS as usize];
    let deadline = Instant::now() + Duration::from_secs(60);
    let total = STREAMS * PER_STREAM;
    loop {
        while let Ok(c) = control_rx.try_recv() {
            let _ = client.handle_datagram(c, Instant::now());
        }
        let now = Instant::now();
        if client.poll_timeout().is_some_and(|t| t <= now) {
            client.handle_timeout(now);
        }
        while let Some(d) = client.poll_transmit() {
            deal(d);
        }
        let delivered: u64 = log.iter().map(|l| l.lock().unwrap().len() as u64).sum();
        if delivered == total {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{delivered} of {total} delivered"
        );
        let sent: u64 = next.iter().sum();
        if sent == total {
            thread::sleep(Duration::from_millis(1));
            continue;
        }
        let stream = sent % STREAMS;
        let index = next[stream as usize];
        let event = [Bytes::copy_from_slice(&index.to_le_bytes())];
        match client.send(stream, &event, PacketFlags::RELIABLE) {
            Ok(s) => {
                next[stream as usize] += 1;
                if let Some(d) = s.datagram {
                    deal(d);
                }
            }
            Err(SendError::Blocked(_)) => thread::sleep(Duration::from_micros(100)),
            Err(e) => panic!("{e}"),
        }
    }
    drop(lanes);
    a.join().unwrap();
    b.join().unwrap();
    assert_eq!(server.peer_kind(), PeerKind::Netmesh);
    for (stream, entries) in log.iter().enumerate() {
        let entries = entries.lock().unwrap();
        assert!(
            entries.iter().copied().eq(0..PER_STREAM),
            "stream {stream}: not exactly 0..{PER_STREAM} in order"
        );
    }
    // The two lanes reorder, so NACKs bring retransmissions of packets that were only
    // late: those arrive as duplicates and are dropped, never delivered.
    let stats = server.stats();
    eprintln!(
        "duplicates dropped {}, out of order {}",
        stats.duplicates, stats.out_of_order
    );
}
