//! Events over real UDP sockets on 127.0.0.1: packets through the facade's public API
//! with plain sockets, and the `endpoint` example (handshake, endpoints, both ways).

use std::net::{Ipv4Addr, UdpSocket};
use std::thread;
use std::time::Duration;

use netmesh::bytes::BytesMut;
use netmesh::prelude::*;
use netmesh::MAX_PACKET_SIZE;

// The example itself, compiled into this test so that it runs here without a copy.
#[path = "../examples/endpoint.rs"]
mod endpoint;

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

#[test]
fn endpoint_example_moves_events_both_ways() {
    let count = 300;
    let heard = endpoint::run(count).unwrap();
    // Reliable stream 0 arrives complete and in order; stream 1 (fire-and-forget) arrives
    // complete here (flow control, loopback), in any order.
    let of_stream = |events: &[(u64, Bytes)], stream: u64| -> Vec<Bytes> {
        events
            .iter()
            .filter(|(s, _)| *s == stream)
            .map(|(_, event)| event.clone())
            .collect()
    };
    let expected = |side: &str, stream: u64| -> Vec<Bytes> {
        (0..count)
            .map(|i| Bytes::from(format!("{side} stream {stream} event {i}")))
            .collect()
    };
    assert_eq!(of_stream(&heard.server, 0), expected("client", 0));
    let mut loose = of_stream(&heard.server, 1);
    loose.sort();
    let mut want = expected("client", 1);
    want.sort();
    assert_eq!(loose, want);
    assert_eq!(of_stream(&heard.client, 0), expected("server", 0));
    assert!(of_stream(&heard.client, 1).is_empty());
}
