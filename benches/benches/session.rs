//! Sessions: `Session::send` and `Session::handle_datagram` per packet, beside the bare
//! pool build (`ThreadLocalPool::get` + `build`) and the bare `PacketOpener::open` of
//! the same shapes, in one group. `cargo bench -p netmesh-benches --bench session`.
//!
//! The sending session's peer is taken for net-mesh (no counter credit to wait for, the
//! same code path with an unbounded limit); the receiving session's peer is netmesh, so
//! its receive path does everything it does in production: opener, credit watermark,
//! stream accounting, and a CREDIT every quarter window (sealed inside the timing).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use netmesh_benches::{received, session_pair, Shape, KEY, SESSION};
use netmesh_pool::{PacketOpener, ThreadLocalPool};
use netmesh_session::PeerKind;
use netmesh_wire::PacketFlags;

const SHAPES: [Shape; 2] = [Shape::ALL[0], Shape::ALL[4]];

fn session(c: &mut Criterion) {
    let mut group = c.benchmark_group("session");
    for shape in SHAPES {
        let events = shape.make();
        group.throughput(Throughput::Bytes(shape.event_bytes()));

        // Send.
        let pool = ThreadLocalPool::new(64, &KEY, SESSION);
        let mut sequence = 0u64;
        group.bench_function(BenchmarkId::new("pool_build", shape.label()), |b| {
            b.iter(|| {
                sequence += 1;
                black_box(
                    pool.get()
                        .build(1, sequence, black_box(&events), PacketFlags::NONE),
                )
            });
        });
        let now = Instant::now();
        let (sender, _) = session_pair(now);
        sender.handle_timeout(now + Duration::from_secs(1));
        assert_eq!(sender.peer_kind(), PeerKind::NetMesh);
        while sender.poll_transmit().is_some() {}
        group.bench_function(BenchmarkId::new("session_send", shape.label()), |b| {
            b.iter(|| black_box(sender.send(1, black_box(&events), PacketFlags::NONE)));
        });

        // Receive.
        let opener = PacketOpener::new(&KEY, SESSION);
        let source = ThreadLocalPool::new(8, &KEY, SESSION);
        let mut sequence = 0u64;
        group.bench_function(BenchmarkId::new("pool_open", shape.label()), |b| {
            b.iter_batched(
                || {
                    sequence += 1;
                    received(&source.get().build(1, sequence, &events, PacketFlags::NONE))
                },
                |datagram| black_box(opener.open(black_box(datagram))).map(|p| p.event_count()),
                BatchSize::SmallInput,
            );
        });
        let (sender, receiver) = session_pair(now);
        // The receiver learns its peer is netmesh from the sender's marked heartbeat;
        // the sender stops waiting for credit.
        while let Some(d) = sender.poll_transmit() {
            let _ = receiver.handle_datagram(d, now);
        }
        assert_eq!(receiver.peer_kind(), PeerKind::Netmesh);
        sender.handle_timeout(now + Duration::from_secs(1));
        group.bench_function(BenchmarkId::new("session_receive", shape.label()), |b| {
            b.iter_batched(
                || {
                    while receiver.poll_transmit().is_some() {}
                    let sent = sender.send(1, &events, PacketFlags::NONE).expect("sends");
                    received(&sent.datagram.expect("no credit limit"))
                },
                |datagram| {
                    let received = receiver.handle_datagram(black_box(datagram), now);
                    black_box(received.is_ok())
                },
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
        .measurement_time(Duration::from_secs(3));
    targets = session
}
criterion_main!(benches);
