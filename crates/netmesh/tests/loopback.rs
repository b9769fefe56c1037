//! Events over real UDP sockets on 127.0.0.1 through the facade's public API, and the
//! loopback example's own logic at a small scale.

use std::net::{Ipv4Addr, UdpSocket};
use std::thread;
use std::time::Duration;

use netmesh::bytes::BytesMut;
use netmesh::prelude::*;
use netmesh::MAX_PACKET_SIZE;

// The example itself, compiled into this test so that its core runs here without a copy.
#[allow(dead_code)] // its `main` and help text are not used by the tests
#[path = "../examples/loopback.rs"]
mod loopback;

const KEY: [u8; 32] = [0x5a; 32];
const SESSION: u64 = 0x1005_bac0_0000_0001;
const EVENTS_PER_STREAM: u64 = 500;
const EVENTS_PER_PACKET: usize = 25;

fn event(stream: u64, index: u64) -> Bytes {
    Bytes::from(format!("stream {stream} event {index}"))
}

#[test]
fn events_cross_udp_from_two_threads_sharing_a_pool() {
    let receiver = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    receiver
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let destination = receiver.local_addr().unwrap();
    let pool = shared_local_pool(4, &KEY, SESSION);

    // 2 x 20 packets of about 800 bytes (some 2 KiB each of kernel memory): well within
    // the default socket receive buffer, so nothing is dropped without flow control.
    let senders: Vec<_> = (1..=2)
        .map(|stream| {
            let pool = pool.clone();
            thread::spawn(move || {
                let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
                let events: Vec<Bytes> = (0..EVENTS_PER_STREAM).map(|i| event(stream, i)).collect();
                for (chunk, sequence) in events.chunks(EVENTS_PER_PACKET).zip(0..) {
                    let packet = pool
                        .get()
                        .build(stream, sequence, chunk, PacketFlags::RELIABLE);
                    socket.send_to(&packet, destination).unwrap();
                }
            })
        })
        .collect();

    let opener = PacketOpener::new(&KEY, SESSION);
    let mut next_event = [0; 2];
    let mut next_sequence = [0; 2];
    let packets = 2 * EVENTS_PER_STREAM / u64::try_from(EVENTS_PER_PACKET).unwrap();
    for _ in 0..packets {
        let mut buf = BytesMut::zeroed(MAX_PACKET_SIZE);
        let len = receiver.recv(&mut buf).unwrap();
        buf.truncate(len);
        let packet = opener.open(buf.freeze()).unwrap();
        let header = packet.header();
        let stream = header.stream_id;
        let slot = usize::try_from(stream - 1).unwrap();
        assert_eq!(
            header.sequence, next_sequence[slot],
            "stream {stream} out of order"
        );
        next_sequence[slot] += 1;
        assert_eq!(packet.event_count(), EVENTS_PER_PACKET);
        for received in packet.events() {
            assert_eq!(received, event(stream, next_event[slot]));
            next_event[slot] += 1;
        }
    }
    for sender in senders {
        sender.join().unwrap();
    }
    assert_eq!(next_event, [EVENTS_PER_STREAM; 2]);
}

#[test]
fn tampered_datagram_is_rejected_and_the_next_still_opens() {
    let pool = PacketPool::new(2, &KEY, SESSION);
    let opener = PacketOpener::new(&KEY, SESSION);
    let first = pool.get().build(1, 0, &[event(1, 0)], PacketFlags::NONE);
    let second = pool.get().build(1, 1, &[event(1, 1)], PacketFlags::NONE);

    let mut tampered = BytesMut::from(&first[..]);
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert_eq!(
        opener.open(tampered.freeze()).unwrap_err(),
        OpenError::AuthFailed
    );
    let opened = opener.open(second).unwrap();
    assert_eq!(opened.events().collect::<Vec<_>>(), [event(1, 1)]);
    // The untouched original still opens: a failed tag changed nothing.
    assert!(opener.open(first).is_ok());
}

fn run_example(events: u64, event_size: usize, senders: usize, window: u64) -> loopback::Summary {
    let config = loopback::Config {
        events,
        event_size,
        senders,
        window,
    };
    let summary = loopback::run(&config, false)
        .unwrap_or_else(|error| panic!("loopback run {config:?} failed: {error}"));
    assert!(summary.is_clean(), "{summary}");
    assert_eq!(summary.sent.events, events);
    assert_eq!(summary.received.events, events);
    summary
}

#[test]
fn loopback_example_delivers_every_event_from_two_senders() {
    let summary = run_example(20_000, 100, 2, 8);
    assert_eq!(summary.received.packets, summary.sent.packets);
}

#[test]
fn loopback_example_handles_empty_tiny_and_largest_events() {
    run_example(5_000, 0, 1, 4);
    run_example(5_000, 7, 3, 8);
    run_example(200, 8104, 2, 8);
}

#[test]
fn loopback_example_with_a_window_of_one() {
    run_example(3_000, 64, 4, 1);
}

#[test]
fn loopback_options_parse_and_refuse_bad_values() {
    let parse = |args: &[&str]| loopback::Config::parse(args.iter().map(|a| a.to_string()));

    let config = parse(&["--events", "1_000", "--event-size=0", "--senders", "3"])
        .unwrap()
        .unwrap();
    assert_eq!(
        (config.events, config.event_size, config.senders),
        (1000, 0, 3)
    );
    assert!(parse(&["--help"]).unwrap().is_none());

    for (args, message) in [
        (&["--frobnicate"][..], "unknown option"),
        (&["--events"][..], "needs a value"),
        (&["--events", "many"][..], "whole number"),
        (&["--events", "-5"][..], "whole number"),
        (&["--events", "0"][..], "between"),
        (&["--event-size", "8105"][..], "between"),
        (&["--senders", "0"][..], "between"),
        (&["--window", "5000"][..], "between"),
        (&["stray"][..], "unknown option"),
    ] {
        let error = parse(args).unwrap_err();
        assert!(error.contains(message), "{args:?}: {error}");
    }
}
