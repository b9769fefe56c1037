//! Heap allocations per packet of a session in steady state, counted by a global
//! allocator (on this thread only): the fire-and-forget send and receive path allocates
//! nothing, a reliable stream at most once per packet, whether datagrams come as `Bytes`
//! or as `BytesMut` cut off one receive buffer. Control traffic (CREDIT, ACK) and timers
//! run inside the measured loop.

// Test harness: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
mod support;

use netmesh_pool::OpenedPacket;
use netmesh_session::{PeerKind, Received, Session, SessionConfig};
use netmesh_testkit::alloc::{counting, reset, totals, CountingAllocator};
use netmesh_wire::PacketFlags;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// A datagram as a receive buffer that nobody else holds (what a socket read gives the
/// endpoint). Made outside the counted sections: the copy stands for the kernel's.
fn received(datagram: &[u8]) -> Bytes {
    // Cut from a receive buffer (reference-counted storage, as an endpoint's are), not
    // a Vec-backed `Bytes`, whose first slice would allocate its shared header.
    let mut buffer = BytesMut::with_capacity(datagram.len());
    buffer.extend_from_slice(datagram);
    buffer.split().freeze()
}

/// How datagrams reach the sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// An unshared `Bytes` per datagram, made outside the counted sections.
    Bytes,
    /// A `BytesMut` cut with `split_to` off the receiving side's one receive buffer, as
    /// a receive loop does; the loop's own buffer handling is counted too.
    SplitOff,
}

/// Room for many datagrams: the buffer is refilled in place once they are dropped.
const RECEIVE_BUFFER: usize = 64 * 1024;

/// `datagram` written into `buffer` after what is there and cut off (as a socket read
/// into a receive buffer, then `split_to`). Once every datagram cut off earlier is
/// dropped, `reserve` reuses the buffer's memory: no allocation in steady state.
fn split_off(buffer: &mut BytesMut, datagram: &[u8]) -> BytesMut {
    buffer.reserve(datagram.len());
    buffer.extend_from_slice(datagram);
    buffer.split_to(datagram.len())
}

struct Link {
    client: Session,
    server: Session,
    now: Instant,
    delivered: u64,
    form: Form,
    client_buffer: BytesMut,
    server_buffer: BytesMut,
}

impl Link {
    fn new(form: Form) -> Self {
        let now = Instant::now();
        let (client, server) =
            support::established(SessionConfig::default(), SessionConfig::default(), now);
        Self {
            client,
            server,
            now,
            delivered: 0,
            form,
            client_buffer: BytesMut::with_capacity(RECEIVE_BUFFER),
            server_buffer: BytesMut::with_capacity(RECEIVE_BUFFER),
        }
    }

    fn deliver(&mut self, datagram: &[u8]) {
        let count = |received: Result<Received<'_>, _>| match received {
            Ok(Received::Packet(p)) => p.events().count() as u64,
            Ok(Received::Delivered(d)) => d.map(|p| p.events().count() as u64).sum(),
            Ok(_) => 0,
            Err(e) => panic!("{e}"),
        };
        let delivered = match self.form {
            Form::Bytes => {
                let datagram = received(datagram);
                counting(|| count(self.server.handle_datagram(datagram, self.now)))
            }
            Form::SplitOff => counting(|| {
                let datagram = split_off(&mut self.server_buffer, datagram);
                count(self.server.handle_datagram(datagram, self.now))
            }),
        };
        self.delivered += delivered;
    }

    /// A datagram from the server to the client (control traffic).
    fn deliver_to_client(&mut self, datagram: &[u8]) {
        match self.form {
            Form::Bytes => {
                let datagram = received(datagram);
                counting(|| {
                    let _ = self.client.handle_datagram(datagram, self.now);
                });
            }
            Form::SplitOff => counting(|| {
                let datagram = split_off(&mut self.client_buffer, datagram);
                let _ = self.client.handle_datagram(datagram, self.now);
            }),
        }
    }

    /// Control both ways and timers.
    fn pump(&mut self) {
        counting(|| {
            for s in [&self.client, &self.server] {
                if s.poll_timeout().is_some_and(|t| t <= self.now) {
                    s.handle_timeout(self.now);
                }
            }
        });
        while let Some(d) = counting(|| self.server.poll_transmit()) {
            self.deliver_to_client(&d);
        }
        while let Some(d) = counting(|| self.client.poll_transmit()) {
            self.deliver(&d);
        }
    }

    /// Hands `datagram` to the server cut off its receive buffer (counted), checks the
    /// fire-and-forget packet it opens with `check`, then moves time on and pumps.
    fn receive_checked(&mut self, datagram: &[u8], check: impl FnOnce(&OpenedPacket)) {
        let (server, split, now) = (&self.server, &mut self.server_buffer, self.now);
        counting(
            || match server.handle_datagram(split_off(split, datagram), now) {
                Ok(Received::Packet(p)) => check(&p),
                other => panic!("{other:?}"),
            },
        );
        self.now += Duration::from_micros(2);
        self.pump();
    }

    fn send(&mut self, event: &[Bytes], flags: PacketFlags) {
        let sent = counting(|| self.client.send(1, event, flags).unwrap());
        if let Some(d) = sent.datagram {
            self.deliver(&d);
        }
        self.now += Duration::from_micros(2);
        self.pump();
    }
}

fn per_packet(flags: PacketFlags, form: Form) -> (u64, u64, u64) {
    let mut link = Link::new(form);
    link.pump();
    assert_eq!(link.client.peer_kind(), PeerKind::Netmesh);
    let event = [Bytes::from(vec![7u8; 64])];
    for _ in 0..20_000 {
        link.send(&event, flags);
    }
    let packets = 20_000;
    let before = link.delivered;
    reset();
    for _ in 0..packets {
        link.send(&event, flags);
    }
    let (allocations, bytes) = totals();
    assert_eq!(link.delivered - before, packets, "every packet delivered");
    let stats = link.server.stats();
    assert!(stats.control_sent > 0, "control traffic ran in the loop");
    (allocations, bytes, packets)
}

#[test]
fn fire_and_forget_send_and_receive_allocate_nothing_in_steady_state() {
    let (allocations, bytes, packets) = per_packet(PacketFlags::NONE, Form::Bytes);
    assert_eq!(
        allocations, 0,
        "{allocations} allocations ({bytes} bytes) for {packets} packets"
    );
}

#[test]
fn reliable_send_and_receive_allocate_at_most_once_per_packet() {
    let (allocations, bytes, packets) = per_packet(PacketFlags::RELIABLE, Form::Bytes);
    assert!(
        allocations <= packets,
        "{allocations} allocations ({bytes} bytes) for {packets} packets"
    );
    eprintln!("reliable: {allocations} allocations for {packets} packets");
}

/// A `BytesMut` cut off a receive buffer is opened where it lies: no copy, so the whole
/// receive loop (buffer refill and `split_to` included) allocates nothing.
#[test]
fn fire_and_forget_bytes_mut_split_off_one_receive_buffer_allocates_nothing() {
    let (allocations, bytes, packets) = per_packet(PacketFlags::NONE, Form::SplitOff);
    assert_eq!(
        allocations, 0,
        "{allocations} allocations ({bytes} bytes) for {packets} packets"
    );
}

#[test]
fn reliable_bytes_mut_split_off_one_receive_buffer_allocates_at_most_once_per_packet() {
    let (allocations, bytes, packets) = per_packet(PacketFlags::RELIABLE, Form::SplitOff);
    assert!(
        allocations <= packets,
        "{allocations} allocations ({bytes} bytes) for {packets} packets"
    );
    eprintln!("reliable, split off: {allocations} allocations for {packets} packets");
}

/// Receive batches of 64 `BytesMut`s cut off one receive buffer (an endpoint's
/// `recvmmsg`): nothing allocated per packet or per batch, CREDIT included.
#[test]
fn fire_and_forget_receive_batches_allocate_nothing() {
    let mut link = Link::new(Form::SplitOff);
    link.pump();
    let event = [Bytes::from(vec![7u8; 64])];
    let mut sealed: Vec<Bytes> = Vec::with_capacity(64);
    let batch = |link: &mut Link, sealed: &mut Vec<Bytes>| {
        sealed.clear();
        for _ in 0..64 {
            let sent = link.client.send(1, &event, PacketFlags::NONE).unwrap();
            sealed.push(sent.datagram.expect("within credit"));
        }
        let server = &link.server;
        let buffer = &mut link.server_buffer;
        let now = link.now;
        let events = counting(|| {
            let mut batch = server.receive_batch(now);
            let mut events = 0;
            for d in sealed.iter() {
                match batch.handle(split_off(buffer, d)) {
                    Ok(Received::Packet(p)) => events += p.events().count(),
                    other => panic!("{other:?}"),
                }
            }
            events
        });
        assert_eq!(events, 64);
        link.now += Duration::from_micros(100);
        link.pump();
    };
    for _ in 0..300 {
        batch(&mut link, &mut sealed);
    }
    let before = link.server.stats();
    reset();
    for _ in 0..300 {
        batch(&mut link, &mut sealed);
    }
    let (allocations, bytes) = totals();
    let after = link.server.stats();
    assert_eq!(after.events_received - before.events_received, 300 * 64);
    assert!(after.control_sent > before.control_sent, "CREDIT went out");
    assert_eq!(
        allocations, 0,
        "{allocations} allocations ({bytes} bytes) for 300 batches of 64"
    );
}

/// Runs `send` for 5 000 packets to warm up, then for 5 000 counted: no allocation.
fn assert_5000_packets_allocate_nothing(link: &mut Link, mut send: impl FnMut(&mut Link)) {
    for _ in 0..5_000 {
        send(link);
    }
    reset();
    for _ in 0..5_000 {
        send(link);
    }
    let (allocations, bytes) = totals();
    assert_eq!(
        allocations, 0,
        "{allocations} allocations ({bytes} bytes) for 5000 packets"
    );
}

/// Events given as slices of the caller's buffer (`send_events`): nothing allocated
/// per packet on a fire-and-forget stream, and the receiver gets the same bytes.
#[test]
fn fire_and_forget_send_events_from_a_buffer_allocate_nothing() {
    let mut link = Link::new(Form::SplitOff);
    link.pump();
    let buffer: Vec<u8> = (0..=255).collect();
    let events: Vec<&[u8]> = buffer.chunks(64).collect();
    let send = |link: &mut Link| {
        let sent = counting(|| {
            link.client
                .send_events(1, &events, PacketFlags::NONE)
                .unwrap()
        });
        let datagram = sent.datagram.expect("within credit");
        link.receive_checked(&datagram, |p| {
            assert!(p.event_slices().eq(events.iter().copied()));
        });
    };
    assert_5000_packets_allocate_nothing(&mut link, send);
}

/// Events written in place (`send_with`): nothing allocated per packet on a
/// fire-and-forget stream either, and the receiver gets what `fill` wrote.
#[test]
fn fire_and_forget_send_with_allocates_nothing() {
    let mut link = Link::new(Form::SplitOff);
    link.pump();
    let mut next = 0u64;
    let send = |link: &mut Link| {
        let first = next;
        let sent = counting(|| {
            link.client
                .send_with(1, 4, 64, PacketFlags::NONE, |i, event| {
                    event.fill(0);
                    event[..8].copy_from_slice(&(first + i as u64).to_le_bytes());
                })
                .unwrap()
        });
        next += 4;
        let datagram = sent.datagram.expect("within credit");
        link.receive_checked(&datagram, |p| {
            for (i, event) in p.event_slices().enumerate() {
                assert_eq!(event.len(), 64);
                assert_eq!(event[..8], (first + i as u64).to_le_bytes());
            }
        });
    };
    assert_5000_packets_allocate_nothing(&mut link, send);
}

/// Sessions retired elsewhere in the process (each drop tells every thread's cache of
/// key generations to sweep) cost a sender nothing: its cached generation and the
/// builder it keeps beside it stay.
#[test]
fn sessions_dropped_elsewhere_cost_a_sender_no_allocation() {
    let mut link = Link::new(Form::Bytes);
    link.pump();
    let event = [Bytes::from(vec![7u8; 64])];
    let now = link.now;
    let mut others: Vec<_> = (0..100)
        .map(|_| support::established(SessionConfig::default(), SessionConfig::default(), now))
        .collect();
    // As long as `per_packet` warms up: past the peer-kind exchange.
    for _ in 0..20_000 {
        link.send(&event, PacketFlags::NONE);
    }
    reset();
    for round in 0..10_000 {
        if round % 100 == 0 {
            drop(others.pop());
        }
        link.send(&event, PacketFlags::NONE);
    }
    let (allocations, bytes) = totals();
    assert!(others.is_empty());
    assert_eq!(allocations, 0, "{allocations} allocations ({bytes} bytes)");
}
