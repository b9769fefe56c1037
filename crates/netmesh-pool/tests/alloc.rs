//! Heap allocations per packet, counted by a global allocator that counts only on the
//! thread that asked it to (the test harness runs tests on several threads).

// Test data: counters, indices and sizes here are small by construction.
#![allow(clippy::cast_possible_truncation)]

use bytes::{Bytes, BytesMut};
use netmesh_pool::{PacketOpener, PacketPool, ThreadLocalPool};
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
