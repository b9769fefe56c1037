//! Receive side: opening packets, beside the bare ring open of the same bytes in the same
//! group. Each iteration opens a fresh, unshared datagram (counters only move forward).

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use netmesh_benches::{bare_ring_key, bare_ring_seal, ring_nonce, Shape, AAD, KEY, SESSION};
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

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = open
}
criterion_main!(benches);
