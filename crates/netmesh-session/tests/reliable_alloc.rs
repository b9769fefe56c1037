//! Heap allocations per packet of the reliable-stream structures in steady state,
//! counted by a global allocator that counts only on the thread that asked it to (the
//! test harness runs tests on several threads).

// Test data: counters, indices and sizes here are small by construction.
#![allow(clippy::cast_possible_truncation)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use netmesh_session::reliable::{
    ReceiverConfig, ReliableReceiver, RetransmitBuffer, RetransmitConfig, StreamTracker,
};
use netmesh_testkit::alloc::{count, CountingAllocator};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Events as the caller of a reliable stream would hand them over: slices of a shared
/// buffer (cloning them only increments a reference count).
fn shared_events(n: usize) -> Vec<Bytes> {
    let buffer = Bytes::from(vec![7u8; 64 * n.max(1)]);
    let _ = buffer.clone(); // promotes the Vec-backed buffer to shared, once
    (0..n).map(|i| buffer.slice(i * 64..(i + 1) * 64)).collect()
}

#[test]
fn counting_allocator_sees_allocations() {
    let (allocations, bytes, _) = count(|| std::hint::black_box(vec![0u8; 100]));
    assert_eq!((allocations, bytes), (1, 100));
}

/// A stream's arrivals with reordering (every 16th packet arrives 9 later), duplicates
/// (every 7th twice) and loss (every 500th never arrives and is skipped 20 packets
/// on). The state lives across calls so that measured rounds continue the warm-up.
struct Feeder {
    next: u64,
    now: Instant,
    held_back: Option<u64>,
    skip_at: Option<(u64, u64)>,
    payload: Bytes,
}

impl Feeder {
    /// Feeds `packets` sequences, draining and polling after each as a session would;
    /// returns how many packets were delivered.
    fn drive(&mut self, rx: &mut ReliableReceiver<(u64, Bytes)>, packets: u64) -> u64 {
        let mut delivered = 0;
        for _ in 0..packets {
            let seq = self.next;
            self.next += 1;
            self.now += Duration::from_micros(50);
            if seq % 500 == 499 {
                self.skip_at = Some((seq + 20, seq + 1));
            } else if seq % 16 == 0 && self.held_back.is_none() {
                self.held_back = Some(seq);
            } else {
                rx.on_packet(seq, (seq, self.payload.clone()));
                if seq % 7 == 0 {
                    rx.on_packet(seq, (seq, self.payload.clone()));
                }
            }
            if let Some(late) = self.held_back.filter(|&late| seq >= late + 9) {
                rx.on_packet(late, (late, self.payload.clone()));
                self.held_back = None;
            }
            if let Some((_, first)) = self.skip_at.filter(|&(when, _)| seq >= when) {
                rx.skip_to(first);
                self.skip_at = None;
            }
            while let Some((s, (p, _))) = rx.pop_ready() {
                assert_eq!(s, p);
                delivered += 1;
            }
            std::hint::black_box(rx.poll_nack(self.now));
            std::hint::black_box(rx.poll_ack(self.now));
            std::hint::black_box(rx.poll_timeout());
        }
        delivered
    }
}

#[test]
fn reliable_receiver_allocates_nothing_per_packet_in_steady_state() {
    let mut rx = ReliableReceiver::new(ReceiverConfig::default());
    let mut feeder = Feeder {
        next: 0,
        now: Instant::now(),
        held_back: None,
        skip_at: None,
        payload: shared_events(1).remove(0),
    };
    feeder.drive(&mut rx, 10_000);
    let (allocations, _, delivered) = count(|| feeder.drive(&mut rx, 100_000));
    assert_eq!(allocations, 0, "allocations over 100k reliable receives");
    assert!(delivered > 99_000, "{delivered}");
    let stats = rx.stats();
    // Every 500th of 110k lost; the last one's SKIP is still to come.
    assert_eq!(stats.lost, 219, "{stats:?}");
    assert_eq!(stats.accepted, 110_000 - 220, "{stats:?}");
    assert!(stats.duplicates > 14_000, "{stats:?}");
}

/// Pushes `packets` packets, acknowledging every 8th (up to 20 behind), NACKing a gap
/// every 10th, probing, and every 1000th giving up the oldest; returns how many
/// packets were handed out for retransmission.
fn drive_sender(
    tx: &mut RetransmitBuffer,
    packets: u64,
    events: &[Bytes],
    now: &mut Instant,
) -> u64 {
    let mut resent = 0;
    for _ in 0..packets {
        *now += Duration::from_micros(200);
        let seq = tx.next_seq();
        let n = (seq % events.len() as u64) as usize + 1;
        tx.push(seq, &events[..n], *now)
            .expect("room: acks keep up");
        if seq % 10 == 5 {
            let nack = netmesh_wire::NackPayload {
                next_expected: tx.first_unacked(),
                missing_bitmap: 0b1011,
            };
            resent += tx
                .on_nack(&nack, *now)
                .expect("acks only what was sent")
                .fold(0, |n, (_, ev)| {
                    std::hint::black_box(ev);
                    n + 1
                });
        }
        if seq % 8 == 0 {
            tx.ack(seq.saturating_sub(20), *now).expect("sent");
        }
        if seq % 1000 == 999 {
            tx.discard_before(tx.first_unacked() + 1);
        }
        resent += tx.poll_probe(*now).count() as u64;
        std::hint::black_box(tx.poll_skip(*now));
        std::hint::black_box(tx.poll_timeout());
    }
    resent
}

#[test]
fn retransmit_buffer_allocates_nothing_per_packet_in_steady_state() {
    // Packets of 1-20 events of 64 B: their frames (at most 1360 B) fit the buffer
    // slots' retained 2048 B.
    let mut tx = RetransmitBuffer::new(RetransmitConfig::default());
    let events = shared_events(20);
    let mut now = Instant::now();
    drive_sender(&mut tx, 10_000, &events, &mut now);
    let (allocations, _, resent) = count(|| drive_sender(&mut tx, 100_000, &events, &mut now));
    assert!(resent > 10_000, "{resent}");
    assert_eq!(allocations, 0, "allocations over 100k buffered packets");
}

#[test]
fn full_packets_reuse_released_buffers_and_allocate_only_beyond_the_spares() {
    // A full packet of 64 B events (119 of them, 8092 B of frames) is copied into one
    // buffer; whatever the events' container, nothing is allocated or reference-counted
    // per event. A released buffer serves the next push.
    let mut tx = RetransmitBuffer::new(RetransmitConfig::default());
    let mut now = Instant::now();
    let shared = shared_events(119);
    let vec_backed: Vec<Bytes> = (0..119).map(|i| Bytes::from(vec![i as u8; 64])).collect();
    let buffer = vec![9u8; 119 * 64];
    let slices: Vec<&[u8]> = buffer.chunks(64).collect();
    let push = |tx: &mut RetransmitBuffer, round: u64, now: Instant| {
        let seq = tx.next_seq();
        match round % 3 {
            0 => tx.push(seq, &shared, now),
            1 => tx.push(seq, &vec_backed, now),
            _ => tx.push_events(seq, &slices, now),
        }
        .unwrap();
    };
    // Acknowledged every 4 packets: after the first rounds, released buffers serve
    // every push.
    for round in 0..100 {
        push(&mut tx, round, now);
        if round % 4 == 3 {
            tx.ack(tx.next_seq(), now).unwrap();
        }
    }
    let (allocations, _, _) = count(|| {
        for round in 0..1_000 {
            now += Duration::from_micros(1);
            push(&mut tx, round, now);
            if round % 4 == 3 {
                tx.ack(tx.next_seq(), now).unwrap();
            }
        }
    });
    assert_eq!(allocations, 0);
    // 1000 packets unacknowledged: beyond the spares, one allocation per packet (and
    // the slot ring's growth, a doubling at a time).
    let (allocations, _, _) = count(|| {
        for round in 0..1_000 {
            push(&mut tx, round, now);
        }
    });
    assert!(
        (1_000 - 64..=1_000 + 16).contains(&allocations),
        "{allocations}"
    );
}

#[test]
fn stream_tracker_allocates_nothing() {
    let mut tracker = StreamTracker::new();
    let (allocations, _, _) = count(|| {
        for seq in 0..100_000u64 {
            // Swap neighbours, lose every 100th.
            let s = seq ^ 1;
            if s % 100 != 0 {
                std::hint::black_box(tracker.on_packet(s));
            }
        }
    });
    assert_eq!(allocations, 0);
    assert_eq!(tracker.stats().lost, 1000);
}
