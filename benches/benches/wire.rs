//! Wire-format costs: the header (serialize, parse, associated data) and the event
//! frames (write, strict decode fully iterated) for 1, 10, 50 and 100 events of 64 B.
//!
//! Frame throughput counts event bytes (`events x 64`), like the other groups.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use netmesh_benches::{Shape, SESSION};
use netmesh_wire::{aad_from_bytes, FrameCodec, NetHeader, PacketFlags};

/// Event counts per packet for the frame groups.
const COUNTS: [usize; 4] = [1, 10, 50, 100];

/// A data header as a builder makes it, every routing field set.
fn header() -> NetHeader {
    let mut nonce = [0; 12];
    nonce[4..].copy_from_slice(&42u64.to_le_bytes());
    NetHeader::new(SESSION, 7, 1_000, nonce, 6_800, 100, PacketFlags::RELIABLE)
        .with_origin(0x0123_4567_89ab_cdef)
        .with_channel_hash(0xbeef)
        .with_subprotocol(0x0400)
}

fn header_ops(c: &mut Criterion) {
    let mut group = c.benchmark_group("wire/header");
    let header = header();
    let bytes = header.to_bytes();
    group.bench_function("to_bytes", |b| b.iter(|| black_box(&header).to_bytes()));
    group.bench_function("write_to", |b| {
        let mut out = [0; netmesh_wire::HEADER_SIZE];
        b.iter(|| black_box(&header).write_to(black_box(&mut out)));
    });
    group.bench_function("parse", |b| {
        b.iter(|| NetHeader::parse(black_box(&bytes[..])))
    });
    group.bench_function("aad", |b| b.iter(|| black_box(&header).aad()));
    group.bench_function("aad_from_bytes", |b| {
        b.iter(|| aad_from_bytes(black_box(&bytes)))
    });
    group.finish();
}

fn frame_ops(c: &mut Criterion) {
    let mut write = c.benchmark_group("wire/write_events");
    for events in COUNTS {
        let shape = Shape { events, size: 64 };
        let input = shape.make();
        let mut buf = BytesMut::with_capacity(shape.payload_len());
        write.throughput(Throughput::Bytes(shape.event_bytes()));
        write.bench_with_input(
            BenchmarkId::from_parameter(shape.label()),
            &input,
            |b, input| {
                b.iter(|| {
                    buf.clear();
                    FrameCodec::write_events(black_box(input), &mut buf)
                });
            },
        );
    }
    write.finish();

    let mut decode = c.benchmark_group("wire/decode_strict");
    for events in COUNTS {
        let shape = Shape { events, size: 64 };
        let mut buf = BytesMut::with_capacity(shape.payload_len());
        FrameCodec::write_events(&shape.make(), &mut buf);
        let payload = buf.freeze();
        decode.throughput(Throughput::Bytes(shape.event_bytes()));
        decode.bench_with_input(
            BenchmarkId::from_parameter(shape.label()),
            &payload,
            |b, p| {
                b.iter(|| {
                    let frames = FrameCodec::decode_strict(black_box(p).clone(), events)
                        .expect("the payload was framed above");
                    frames.for_each(|event| {
                        black_box(event);
                    });
                });
            },
        );
    }
    decode.finish();
}

criterion_group!(benches, header_ops, frame_ops);
criterion_main!(benches);
