//! Ratios measured by interleaving, for a shared and noisy host.
//!
//! Criterion runs each benchmark for seconds before the next, so on a host whose speed
//! drifts by 10-20% from one minute to the next, the ratio of two criterion results
//! drifts too. Here the compared loops run in alternating blocks of 2000 packets, a ratio
//! is taken per round, and the median of 301 rounds is printed: both sides see the same
//! machine. `cargo bench -p netmesh-benches --bench interleaved`.

use std::hint::black_box;

use bytes::BytesMut;
use netmesh_benches::{
    bare_ring_key, bare_ring_seal, build_on_threads, median, seal_on_threads, time_block, Shape,
    BLOCK, KEY, ROUNDS, SESSION,
};
use netmesh_pool::{shared_local_pool, PacketPool, ThreadLocalPool};
use netmesh_wire::{PacketFlags, HEADER_SIZE, TAG_SIZE};

fn main() {
    // `cargo bench` passes `--bench`; the only filter is `NETMESH_BENCH=user`, which runs
    // the user-shape ratio alone.
    user_ratio();
    if std::env::var("NETMESH_BENCH").is_ok_and(|only| only == "user") {
        return;
    }
    build_ratios();
    held_ratios();
    thread_scaling();
}

/// One packet the way a user sends it: get a builder from a `ThreadLocalPool`, build one
/// 64-byte event, drop the guard and the packet; over ring's bare seal of the same bytes.
fn user_ratio() {
    let bare = bare_ring_key();
    let local = ThreadLocalPool::new(8, &KEY, SESSION);
    let shape = Shape::ALL[0];
    let events = shape.make();
    let mut buf = vec![0u8; shape.payload_len()];
    let mut counter = 0u64;
    let mut ratios = Vec::with_capacity(ROUNDS);
    let (mut build_parts, mut get_parts) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let seal = time_block(|_| {
            counter += 1;
            black_box(bare_ring_seal(&bare, counter, black_box(&mut buf)));
        });
        let user = time_block(|s| {
            let packet = local
                .get()
                .build(1, s, black_box(&events), PacketFlags::NONE);
            drop(black_box(packet));
        });
        ratios.push(user / seal);
        // Its two parts: a held builder's build with the packet dropped, and a bare get
        // with the guard dropped.
        let mut held = local.get();
        let build = time_block(|s| {
            let packet = held.build(1, s, black_box(&events), PacketFlags::NONE);
            drop(black_box(packet));
        });
        drop(held);
        let get = time_block(|_| drop(black_box(local.get())));
        build_parts.push(build / seal);
        get_parts.push(get / seal);
    }
    println!(
        "ThreadLocalPool get + build 1x64B + drop guard and packet / bare ring seal \
         (median of {ROUNDS} interleaved rounds): {:.3}",
        median(ratios)
    );
    println!(
        "  parts: held builder build + drop packet {:.3}, get + drop guard {:.3}",
        median(build_parts),
        median(get_parts)
    );
}

/// Held-builder build / bare seal per shape, and the floor: the bare seal plus the least
/// any zero-copy `Bytes` hand-out costs (carve, freeze, drop).
fn build_ratios() {
    let bare = bare_ring_key();
    let pool = PacketPool::new(8, &KEY, SESSION);
    let local = ThreadLocalPool::new(8, &KEY, SESSION);
    println!("build / bare ring seal, held builder (median of {ROUNDS} interleaved rounds)");
    for shape in Shape::ALL {
        let events = shape.make();
        let payload = shape.payload_len();
        let total = HEADER_SIZE + payload + TAG_SIZE;
        let mut buf = vec![0u8; payload];
        let mut chunk = BytesMut::zeroed(8192);
        let mut pooled = pool.get();
        let mut cached = local.get();
        let mut counter = 0u64;
        let (mut bare_ns, mut floor, mut packet_pool, mut thread_local) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let seal = time_block(|_| {
                counter += 1;
                black_box(bare_ring_seal(&bare, counter, black_box(&mut buf)));
            });
            // As the builder's chunk does: sealed in place at the chunk's front, then cut
            // off and frozen; the chunk starts over once every packet is dropped.
            let carve = time_block(|_| {
                counter += 1;
                if chunk.len() < total {
                    chunk.clear();
                    assert!(chunk.try_reclaim(total), "every packet was dropped");
                    chunk.resize(chunk.capacity(), 0);
                }
                let tag = bare_ring_seal(&bare, counter, &mut chunk[HEADER_SIZE..total - TAG_SIZE]);
                chunk[total - TAG_SIZE..total].copy_from_slice(&tag);
                black_box(chunk.split_to(total).freeze());
            });
            let a = time_block(|s| {
                black_box(pooled.build(1, s, black_box(&events), PacketFlags::NONE));
            });
            let b = time_block(|s| {
                black_box(cached.build(1, s, black_box(&events), PacketFlags::NONE));
            });
            bare_ns.push(seal * 1e9 / BLOCK as f64);
            floor.push(carve / seal);
            packet_pool.push(a / seal);
            thread_local.push(b / seal);
        }
        println!(
            "  {:>8}: bare {:7.1} ns   floor {:.3}   PacketPool {:.3}   ThreadLocalPool {:.3}",
            shape.label(),
            median(bare_ns),
            median(floor),
            median(packet_pool),
            median(thread_local)
        );
    }
}

/// Build / bare seal while the caller holds the last 64 packets (a send queue): packets
/// then cannot reuse their chunk, so new chunks are allocated as old ones fill.
fn held_ratios() {
    const QUEUE: usize = 64;
    let bare = bare_ring_key();
    let pool = PacketPool::new(8, &KEY, SESSION);
    println!("build / bare ring seal, last {QUEUE} packets held (median of {ROUNDS} rounds)");
    for shape in [Shape::ALL[0], Shape::ALL[4]] {
        let events = shape.make();
        let mut buf = vec![0u8; shape.payload_len()];
        let mut builder = pool.get();
        let mut queue = std::collections::VecDeque::with_capacity(QUEUE + 1);
        let mut counter = 0u64;
        let mut ratios = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let seal = time_block(|_| {
                counter += 1;
                black_box(bare_ring_seal(&bare, counter, black_box(&mut buf)));
            });
            let held = time_block(|s| {
                queue.push_back(builder.build(1, s, black_box(&events), PacketFlags::NONE));
                if queue.len() > QUEUE {
                    drop(queue.pop_front());
                }
            });
            ratios.push(held / seal);
        }
        println!("  {:>8}: PacketPool {:.3}", shape.label(), median(ratios));
    }
}

/// Packets/s on 2 threads over 1 thread, 1 x 64 B, one SharedLocalPool; the bare seal
/// (nothing shared) beside it.
fn thread_scaling() {
    const PACKETS: u64 = 100_000;
    let pool = shared_local_pool(16, &KEY, SESSION);
    let events = Shape::ALL[0].make();
    let build = |threads| build_on_threads(&pool, &events, threads, PACKETS / threads);
    let seal = |threads| seal_on_threads(threads, PACKETS / threads);
    let (mut ours, mut bare) = (Vec::new(), Vec::new());
    for _ in 0..101 {
        ours.push(build(1).as_secs_f64() / build(2).as_secs_f64());
        bare.push(seal(1).as_secs_f64() / seal(2).as_secs_f64());
    }
    println!(
        "2 threads / 1 thread, 1 x 64 B (median of 101 interleaved rounds): \
         SharedLocalPool {:.2}x   bare ring seal {:.2}x",
        median(ours),
        median(bare)
    );
}
