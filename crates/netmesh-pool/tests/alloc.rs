//! Heap allocations per packet, counted by a global allocator that counts only on the
//! thread that asked it to (the test harness runs tests on several threads).

// Test data: counters, indices and sizes here are small by construction.
#![allow(clippy::cast_possible_truncation)]

use bytes::{Bytes, BytesMut};
use netmesh_pool::{Datagram, PacketOpener, PacketPool, ThreadLocalPool};
use netmesh_testkit::alloc::{count, CountingAllocator};
use netmesh_wire::PacketFlags;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

const KEY: [u8; 32] = [0x33; 32];
const SESSION: u64 = 0xabcdef;

fn shapes() -> Vec<Vec<Bytes>> {
    vec![
        vec![Bytes::from(vec![1; 64])],
        vec![Bytes::from(vec![2; 64]); 10],
        vec![Bytes::from(vec![3; 64]); 50],
        vec![Bytes::from(vec![4; 1024])],
        vec![Bytes::from(vec![5; 8000])],
    ]
}

#[test]
fn counting_allocator_sees_allocations() {
    let (allocations, bytes, _) = count(|| std::hint::black_box(vec![0u8; 100]));
    assert_eq!((allocations, bytes), (1, 100));
}

#[test]
fn packet_pool_builds_allocate_nothing_in_steady_state() {
    let pool = PacketPool::new(4, &KEY, SESSION);
    let shapes = shapes();
    for events in &shapes {
        drop(pool.get().build(1, 0, events, PacketFlags::NONE));
    }
    let (allocations, _, built) = count(|| {
        let mut built = 0usize;
        for sequence in 0..10_000u64 {
            let events = &shapes[sequence as usize % shapes.len()];
            let mut builder = pool.get();
            built += builder.build(1, sequence, events, PacketFlags::NONE).len();
            if sequence % 100 == 0 {
                built += builder.build_heartbeat().len();
            }
        }
        built
    });
    assert!(built > 10_000 * 84);
    assert_eq!(allocations, 0, "allocations over 10k PacketPool builds");
}

#[test]
fn thread_local_pool_builds_allocate_nothing_in_steady_state() {
    let pool = ThreadLocalPool::new(4, &KEY, SESSION);
    let shapes = shapes();
    for events in &shapes {
        drop(pool.get().build(1, 0, events, PacketFlags::NONE));
    }
    let (allocations, _, _) = count(|| {
        for sequence in 0..10_000u64 {
            let events = &shapes[sequence as usize % shapes.len()];
            let mut builder = pool.get();
            builder.set_channel_hash(sequence as u16);
            drop(builder.build_subprotocol(1, sequence, events, PacketFlags::NONE, 9));
        }
    });
    assert_eq!(
        allocations, 0,
        "allocations over 10k ThreadLocalPool builds"
    );
}

#[test]
fn acquire_and_release_allocate_nothing_when_warm() {
    let pool = ThreadLocalPool::new(4, &KEY, SESSION);
    pool.release(pool.acquire());
    let (allocations, _, _) = count(|| {
        for _ in 0..10_000 {
            let builder = pool.acquire();
            pool.release(builder);
        }
    });
    assert_eq!(allocations, 0);
}

#[test]
fn held_packets_pin_about_their_own_size() {
    let pool = ThreadLocalPool::new(4, &KEY, SESSION);
    let event = [Bytes::from(vec![9; 64])];
    let (_, bytes, held) = count(|| {
        let mut builder = pool.get();
        (0..1000u64)
            .map(|s| builder.build(0, s, &event, PacketFlags::NONE))
            .collect::<Vec<_>>()
    });
    let own: usize = held.iter().map(Bytes::len).sum();
    let vec_itself = 1000 * size_of::<Bytes>() * 2;
    assert!(
        bytes as usize <= own + own / 10 + 2 * 8192 + vec_itself,
        "1000 held packets of {} bytes allocated {bytes} bytes",
        own / 1000
    );
}

fn unshared_promotable(packet: &Bytes) -> Bytes {
    Bytes::copy_from_slice(packet)
}

fn unshared_from_receive_buffer(packet: &Bytes) -> Bytes {
    let mut buffer = BytesMut::with_capacity(packet.len() + 64);
    buffer.extend_from_slice(packet);
    buffer.split().freeze()
}

#[test]
fn open_of_an_unshared_datagram_allocates_nothing() {
    let pool = PacketPool::new(4, &KEY, SESSION);
    let opener = PacketOpener::new(&KEY, SESSION);
    let shapes = shapes();
    let mut sequence = 0u64;
    for make in [unshared_promotable, unshared_from_receive_buffer] {
        let datagrams: Vec<Bytes> = (0..2_000)
            .map(|_| {
                sequence += 1;
                let packet = pool.get().build(
                    1,
                    sequence,
                    &shapes[sequence as usize % 5],
                    PacketFlags::NONE,
                );
                make(&packet)
            })
            .collect();
        let (allocations, _, events) = count(|| {
            datagrams
                .into_iter()
                .map(|d| opener.open(d).expect("opens").event_count())
                .sum::<usize>()
        });
        assert!(events > 2_000);
        assert_eq!(allocations, 0, "allocations over 2k opens");
    }
}

#[test]
fn open_and_iterate_events_from_a_receive_buffer_allocates_nothing() {
    let pool = PacketPool::new(4, &KEY, SESSION);
    let opener = PacketOpener::new(&KEY, SESSION);
    let events = vec![Bytes::from(vec![7; 64]); 10];
    let datagrams: Vec<Bytes> = (0..2_000u64)
        .map(|s| unshared_from_receive_buffer(&pool.get().build(1, s, &events, PacketFlags::NONE)))
        .collect();
    let (allocations, _, bytes) = count(|| {
        datagrams
            .into_iter()
            .map(|d| {
                opener
                    .open(d)
                    .expect("opens")
                    .events()
                    .map(|e| e.len())
                    .sum::<usize>()
            })
            .sum::<usize>()
    });
    assert_eq!(bytes, 2_000 * 640);
    assert_eq!(allocations, 0);
}

/// Datagrams of every shape, sealed by one pool with consecutive counters from `first`.
fn datagrams(pool: &PacketPool, first: u64, count: u64) -> Vec<Bytes> {
    let shapes = shapes();
    (first..first + count)
        .map(|s| {
            let events = &shapes[s as usize % shapes.len()];
            pool.get().build(1, s, events, PacketFlags::NONE)
        })
        .collect()
}

/// Events and event bytes in [`datagrams`]`(_, _, 1_000)`: 200 of each shape.
const EVENTS_OF_1K: (usize, usize) = (
    200 * (1 + 10 + 50 + 1 + 1),
    200 * (64 + 640 + 3200 + 1024 + 8000),
);

/// Adds the events whose lengths are `lens` to `seen` (events, bytes).
fn tally(seen: &mut (usize, usize), lens: impl Iterator<Item = usize>) {
    for len in lens {
        seen.0 += 1;
        seen.1 += len;
    }
}

/// One receive buffer that the socket filled with every datagram, back to back.
fn receive_buffer(datagrams: &[Bytes]) -> BytesMut {
    let mut received = BytesMut::with_capacity(datagrams.iter().map(Bytes::len).sum());
    for datagram in datagrams {
        received.extend_from_slice(datagram);
    }
    received
}

#[test]
fn a_receive_loop_opening_bytes_mut_allocates_nothing_per_datagram() {
    let pool = PacketPool::new(4, &KEY, SESSION);
    let opener = PacketOpener::new(&KEY, SESSION);
    let datagrams = datagrams(&pool, 0, 1_000);
    let total: usize = datagrams.iter().map(Bytes::len).sum();
    let mut received = receive_buffer(&datagrams);
    let start = received.as_ptr() as usize;
    let (allocations, _, seen) = count(|| {
        let mut seen = (0, 0);
        for datagram in &datagrams {
            let opened = opener
                .open(received.split_to(datagram.len()))
                .expect("opens");
            // Decrypted where it lay: the payload is inside the receive buffer.
            let at = opened.payload().as_ptr() as usize;
            assert!(at >= start && at < start + total);
            tally(&mut seen, opened.events().map(|event| event.len()));
        }
        seen
    });
    assert_eq!(seen, EVENTS_OF_1K);
    // The only allocation is the receive buffer's own, once: the first `split_to` turns
    // its `Vec` into a shared buffer. Nothing per datagram.
    assert_eq!(
        allocations, 1,
        "allocations over 1k datagrams from one buffer"
    );
}

#[test]
fn a_receive_loop_opening_split_datagrams_allocates_nothing_per_datagram() {
    let pool = PacketPool::new(4, &KEY, SESSION);
    let opener = PacketOpener::new(&KEY, SESSION);
    let datagrams = datagrams(&pool, 0, 1_000);
    let mut received = receive_buffer(&datagrams);
    let (allocations, _, seen) = count(|| {
        let mut seen = (0, 0);
        for datagram in &datagrams {
            let split = netmesh_pool::SplitDatagram::new(received.split_to(datagram.len()));
            let opened = opener.open(split).expect("opens");
            tally(&mut seen, opened.events().map(|event| event.len()));
        }
        seen
    });
    assert_eq!(seen, EVENTS_OF_1K);
    // As for plain `BytesMut`: the receive buffer's first split, nothing per datagram.
    assert_eq!(allocations, 1, "allocations over 1k split datagrams");
}

#[test]
fn open_in_place_over_receive_slots_allocates_nothing() {
    const SLOT: usize = 8192;
    let pool = PacketPool::new(4, &KEY, SESSION);
    let opener = PacketOpener::new(&KEY, SESSION);
    let datagrams = datagrams(&pool, 0, 1_000);
    // A flat array of fixed slots, as recvmmsg fills them, and each datagram's length.
    let mut slots = vec![0u8; SLOT * datagrams.len()];
    for (slot, datagram) in slots.chunks_exact_mut(SLOT).zip(&datagrams) {
        slot[..datagram.len()].copy_from_slice(datagram);
    }
    let lens: Vec<usize> = datagrams.iter().map(Bytes::len).collect();
    let (allocations, _, seen) = count(|| {
        let mut seen = (0, 0);
        for (slot, &len) in slots.chunks_exact_mut(SLOT).zip(&lens) {
            let opened = opener.open_in_place(&mut slot[..len]).expect("opens");
            tally(&mut seen, opened.events().map(<[u8]>::len));
        }
        seen
    });
    assert_eq!(seen, EVENTS_OF_1K);
    assert_eq!(allocations, 0, "allocations over 1k opens in place");
}

/// Opens each of `datagrams` with a fresh opener and returns the allocations that the
/// opens (and, with `slice_events`, iterating their events) made, and the events.
fn opens_counted<D: Datagram>(datagrams: Vec<D>, slice_events: bool) -> (u64, usize) {
    let opener = PacketOpener::new(&KEY, SESSION);
    let (allocations, _, events) = count(|| {
        datagrams
            .into_iter()
            .map(|d| {
                let opened = opener.open(d).expect("opens");
                if slice_events {
                    opened.events().count()
                } else {
                    opened.event_count()
                }
            })
            .sum::<usize>()
    });
    (allocations, events)
}

#[test]
fn a_bytes_mut_holding_exactly_its_datagram_allocates_nothing() {
    let pool = PacketPool::new(4, &KEY, SESSION);
    let owned = datagrams(&pool, 0, 1_000)
        .iter()
        .map(|d| BytesMut::from(&d[..]))
        .collect();
    assert_eq!(opens_counted::<BytesMut>(owned, false), (0, EVENTS_OF_1K.0));
}

#[test]
fn a_shared_datagram_costs_one_copy() {
    let pool = PacketPool::new(4, &KEY, SESSION);
    let held = datagrams(&pool, 0, 1_000);
    // One allocation each: the copy, which is then decrypted in place and frozen
    // without a second one (its plaintext ends where its buffer ends).
    assert_eq!(opens_counted(held.clone(), false), (1_000, EVENTS_OF_1K.0));
    drop(held);
}

#[test]
fn a_unique_vec_backed_bytes_allocates_only_when_its_events_are_sliced() {
    let pool = PacketPool::new(4, &KEY, SESSION);
    let sealed = datagrams(&pool, 0, 1_000);
    let own = || sealed.iter().map(unshared_promotable).collect::<Vec<_>>();
    // `Bytes` backed by a `Vec` becomes shared on its first clone: one allocation when
    // `events()` first slices the payload. Cutting datagrams from a receive buffer, or
    // opening them in place, avoids it.
    assert_eq!(opens_counted(own(), false), (0, EVENTS_OF_1K.0));
    assert_eq!(opens_counted(own(), true), (1_000, EVENTS_OF_1K.0));
}

#[test]
fn a_bytes_mut_with_spare_capacity_allocates_once_in_freeze() {
    let pool = PacketPool::new(4, &KEY, SESSION);
    let roomy = datagrams(&pool, 0, 1_000)
        .iter()
        .map(|d| {
            let mut buffer = BytesMut::with_capacity(d.len() + 100);
            buffer.extend_from_slice(d);
            buffer
        })
        .collect();
    // `freeze` shares the `Vec` (its length is not its capacity); slicing is then free.
    assert_eq!(
        opens_counted::<BytesMut>(roomy, true),
        (1_000, EVENTS_OF_1K.0)
    );
}
