//! Send side: building packets through the pools, beside the bare ring seal of the same
//! payload length with a 56-byte AAD, in the same group.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use netmesh_benches::{
    bare_ring_key, bare_ring_seal, build_on_threads, seal_on_threads, Shape, KEY, SESSION,
};
use netmesh_pool::{shared_local_pool, PacketBuilder, PacketPool, ThreadLocalPool};
use netmesh_wire::PacketFlags;

fn build(c: &mut Criterion) {
    let mut group = c.benchmark_group("build");
    let bare = bare_ring_key();
    let pool = PacketPool::new(8, &KEY, SESSION);
    let local = ThreadLocalPool::new(8, &KEY, SESSION);
    for shape in Shape::ALL {
        let events = shape.make();
        group.throughput(Throughput::Bytes(shape.event_bytes()));
        let mut buf = vec![0u8; shape.payload_len()];
        let mut counter = 0u64;
        group.bench_function(BenchmarkId::new("bare_ring_seal", shape.label()), |b| {
            b.iter(|| {
                counter += 1;
                black_box(bare_ring_seal(&bare, counter, black_box(&mut buf)))
            });
        });
        let mut sequence = 0u64;
        // Build alone, the builder held as a sender loop holds it.
        let mut held = pool.get();
        group.bench_function(BenchmarkId::new("packet_pool", shape.label()), |b| {
            b.iter(|| {
                sequence += 1;
                black_box(held.build(1, sequence, black_box(&events), PacketFlags::NONE))
            });
        });
        drop(held);
        let mut held = local.get();
        group.bench_function(BenchmarkId::new("thread_local_pool", shape.label()), |b| {
            b.iter(|| {
                sequence += 1;
                black_box(held.build(1, sequence, black_box(&events), PacketFlags::NONE))
            });
        });
        drop(held);
        // Get, build and return per packet.
        group.bench_function(
            BenchmarkId::new("packet_pool_get_build", shape.label()),
            |b| {
                b.iter(|| {
                    sequence += 1;
                    black_box(
                        pool.get()
                            .build(1, sequence, black_box(&events), PacketFlags::NONE),
                    )
                });
            },
        );
        group.bench_function(
            BenchmarkId::new("thread_local_get_build", shape.label()),
            |b| {
                b.iter(|| {
                    sequence += 1;
                    black_box(
                        local
                            .get()
                            .build(1, sequence, black_box(&events), PacketFlags::NONE),
                    )
                });
            },
        );
    }
    group.finish();
}

/// Time per packet of `f` minus `g`, the two run in alternating blocks of 64 so that both
/// see the same machine: on a shared, noisy host the difference of two benchmarks run
/// seconds apart drifts by more than the overhead being measured.
fn interleaved_difference(iters: u64, mut ours: impl FnMut(), mut bare: impl FnMut()) -> Duration {
    const BLOCK: u64 = 64;
    let (mut ours_time, mut bare_time) = (Duration::ZERO, Duration::ZERO);
    let mut done = 0;
    while done < iters {
        let n = (iters - done).min(BLOCK);
        let start = Instant::now();
        for _ in 0..n {
            bare();
        }
        bare_time += start.elapsed();
        let start = Instant::now();
        for _ in 0..n {
            ours();
        }
        ours_time += start.elapsed();
        done += n;
    }
    ours_time.saturating_sub(bare_time)
}

/// The builder's own cost per packet: build minus the bare seal of the same payload,
/// interleaved. The ratio to the bare seal is `1 + overhead / bare` with the bare time
/// from the `build` group.
fn build_overhead(c: &mut Criterion) {
    let mut group = c.benchmark_group("build_overhead");
    let bare = bare_ring_key();
    let pool = PacketPool::new(8, &KEY, SESSION);
    let local = ThreadLocalPool::new(8, &KEY, SESSION);
    for shape in Shape::ALL {
        let events = shape.make();
        let mut buf = vec![0u8; shape.payload_len()];
        let mut counter = 0u64;
        let mut sequence = 0u64;
        let (mut pooled, mut cached) = (pool.get(), local.get());
        let builders: [(&str, &mut PacketBuilder); 2] = [
            ("packet_pool", &mut pooled),
            ("thread_local_pool", &mut cached),
        ];
        for (name, held) in builders {
            group.bench_function(BenchmarkId::new(name, shape.label()), |b| {
                b.iter_custom(|iters| {
                    interleaved_difference(
                        iters,
                        || {
                            sequence += 1;
                            black_box(held.build(
                                1,
                                sequence,
                                black_box(&events),
                                PacketFlags::NONE,
                            ));
                        },
                        || {
                            counter += 1;
                            black_box(bare_ring_seal(&bare, counter, black_box(&mut buf)));
                        },
                    )
                });
            });
        }
    }
    group.finish();
}

fn get_return(c: &mut Criterion) {
    let mut group = c.benchmark_group("pool_get_return");
    let pool = PacketPool::new(8, &KEY, SESSION);
    let local = ThreadLocalPool::new(8, &KEY, SESSION);
    group.bench_function("packet_pool", |b| b.iter(|| drop(black_box(pool.get()))));
    group.bench_function("thread_local_pool", |b| {
        b.iter(|| drop(black_box(local.get())))
    });
    group.bench_function("thread_local_acquire_release", |b| {
        b.iter(|| local.release(black_box(local.acquire())));
    });
    group.finish();
}

/// Packets per second with the same total work spread over 1 or 2 threads.
fn threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("threads_build_1x64B");
    group.throughput(Throughput::Elements(1));
    let pool = shared_local_pool(16, &KEY, SESSION);
    let events = Shape::ALL[0].make();
    for threads in [1u64, 2] {
        group.bench_function(BenchmarkId::new("thread_local_pool", threads), |b| {
            b.iter_custom(|iters| {
                build_on_threads(&pool, &events, threads, iters.div_ceil(threads))
            });
        });
    }
    // The machine's own ceiling: the bare AEAD on 1 and 2 threads, nothing shared.
    for threads in [1u64, 2] {
        group.bench_function(BenchmarkId::new("bare_ring_seal", threads), |b| {
            b.iter_custom(|iters| seal_on_threads(threads, iters.div_ceil(threads)));
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = build, build_overhead, get_return, threads
}
criterion_main!(benches);
