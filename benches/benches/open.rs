//! Receive side: opening packets, beside the bare ring open of the same bytes in the same
//! group.
//!
//! - `open`: each iteration opens a fresh, unshared `Bytes` (counters only move forward).
//! - `receive`: datagrams back to back in one buffer, opened in batches of
//!   [`RECEIVE_BATCH`]: the bare ring open of each slot, a receive loop (`split_to`, then
//!   `open` of the `BytesMut`), `open` of `BytesMut`s split off before the clock starts,
//!   and `open_in_place` on each slot. The ratios recorded in docs/BENCHMARKS.md come
//!   from `--bench receive`, which interleaves the same four.

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use netmesh_benches::{
    bare_ring_key, bare_ring_seal, ring_nonce, ReceiveBatch, Shape, AAD, KEY, RECEIVE_BATCH,
    SESSION,
};
use netmesh_pool::{PacketOpener, PacketPool};
use netmesh_wire::PacketFlags;
use ring::aead::Aad;

fn open(c: &mut Criterion) {
    let mut group = c.benchmark_group("open");
    let bare = bare_ring_key();
    for shape in Shape::ALL {
        let events = shape.make();
        group.throughput(Throughput::Bytes(shape.event_bytes()));

        let mut sealed = vec![0x11u8; shape.payload_len()];
        let tag = bare_ring_seal(&bare, 7, &mut sealed);
        sealed.extend_from_slice(&tag);
        group.bench_function(BenchmarkId::new("bare_ring_open", shape.label()), |b| {
            b.iter_batched(
                || sealed.clone(),
                |mut buf| {
                    let plain = bare
                        .open_in_place(ring_nonce(7), Aad::from(&AAD), &mut buf)
                        .map(|p| p.len());
                    black_box(plain).ok();
                    buf
                },
                BatchSize::SmallInput,
            );
        });

        let pool = PacketPool::new(2, &KEY, SESSION);
        let opener = PacketOpener::new(&KEY, SESSION);
        let mut sequence = 0u64;
        group.bench_function(BenchmarkId::new("packet_opener", shape.label()), |b| {
            b.iter_batched(
                || {
                    sequence += 1;
                    let packet = pool.get().build(1, sequence, &events, PacketFlags::NONE);
                    Bytes::copy_from_slice(&packet)
                },
                |datagram| opener.open(black_box(datagram)),
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

/// Time for `iters` datagrams, opened one batch at a time by `batch`.
fn batched(iters: u64, mut batch: impl FnMut() -> Duration) -> Duration {
    let per_batch = RECEIVE_BATCH as u64;
    let batches = iters.div_ceil(per_batch);
    let total: Duration = (0..batches).map(|_| batch()).sum();
    total.mul_f64(iters as f64 / (batches * per_batch) as f64)
}

fn receive(c: &mut Criterion) {
    let mut group = c.benchmark_group("receive");
    for shape in Shape::ALL {
        group.throughput(Throughput::Bytes(shape.event_bytes()));
        let mut batch = ReceiveBatch::new(shape);
        group.bench_function(BenchmarkId::new("bare_ring_open", shape.label()), |b| {
            b.iter_custom(|iters| batched(iters, || batch.bare_open()));
        });
        group.bench_function(BenchmarkId::new("receive_loop", shape.label()), |b| {
            b.iter_custom(|iters| batched(iters, || batch.receive_loop()));
        });
        group.bench_function(BenchmarkId::new("open_split", shape.label()), |b| {
            b.iter_custom(|iters| batched(iters, || batch.open_split()));
        });
        group.bench_function(BenchmarkId::new("open_in_place", shape.label()), |b| {
            b.iter_custom(|iters| batched(iters, || batch.in_place()));
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = open, receive
}
criterion_main!(benches);
