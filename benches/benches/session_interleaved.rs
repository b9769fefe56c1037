//! Session send and receive per packet as ratios to the bare pool build and open, by
//! interleaving blocks of 2000 packets (the host's speed drifts; both sides of a ratio
//! see the same minute), median of 101 rounds.
//! `cargo bench -p netmesh-benches --bench session_interleaved`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use netmesh_benches::{
    median, session_pair, split_off_one_buffer, time_block, Shape, BLOCK, KEY, RECEIVE_BATCH,
    SESSION,
};
use netmesh_pool::{PacketOpener, ThreadLocalPool};
use netmesh_session::PeerKind;
use netmesh_wire::PacketFlags;

const ROUNDS: usize = 101;

fn main() {
    println!("session / bare pool, per packet (median of {ROUNDS} interleaved rounds of {BLOCK})");
    // SESSION_SHAPE=64 or 8000 runs one shape only (for profiling).
    let only: Option<usize> = std::env::var("SESSION_SHAPE")
        .ok()
        .and_then(|s| s.parse().ok());
    for shape in [Shape::ALL[0], Shape::ALL[4]] {
        if only.is_some_and(|size| size != shape.size) {
            continue;
        }
        let events = shape.make();
        let now = Instant::now();

        // Send: pool get + build against Session::send (peer taken for net-mesh: no
        // credit to wait for, the same path with an unbounded limit).
        let pool = ThreadLocalPool::new(64, &KEY, SESSION);
        let (sender, _) = session_pair(now);
        sender.handle_timeout(now + Duration::from_secs(1));
        assert_eq!(sender.peer_kind(), PeerKind::NetMesh);
        let mut sequence = 0u64;
        let (mut bare, mut ratios) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let base = time_block(|_| {
                sequence += 1;
                black_box(
                    pool.get()
                        .build(1, sequence, black_box(&events), PacketFlags::NONE),
                );
            });
            let session = time_block(|_| {
                black_box(sender.send(1, black_box(&events), PacketFlags::NONE)).ok();
            });
            while sender.poll_transmit().is_some() {}
            bare.push(base / BLOCK as f64 * 1e9);
            ratios.push(session / base);
        }
        println!(
            "  send    {:>8}: bare {:7.0} ns, session/bare {:.3}",
            shape.label(),
            median(bare),
            median(ratios)
        );

        // Receive: PacketOpener::open against Session::handle_datagram (its peer is
        // netmesh: credit watermark, stream accounting, CREDIT every quarter window).
        // Everything the sender sent reaches the receiver, and the receiver's timers run
        // between blocks at a clock that moves 25 ms a round, as a receive loop's would.
        let opener = PacketOpener::new(&KEY, SESSION);
        let source = ThreadLocalPool::new(8, &KEY, SESSION);
        let (sender, receiver) = session_pair(now);
        while let Some(d) = sender.poll_transmit() {
            let _ = receiver.handle_datagram(d, now);
        }
        assert_eq!(receiver.peer_kind(), PeerKind::Netmesh);
        let mut clock = now + Duration::from_secs(1);
        sender.handle_timeout(clock);
        while let Some(d) = sender.poll_transmit() {
            let _ = receiver.handle_datagram(d, clock);
        }
        let (mut bare, mut ratios, mut batch_ratios) = (Vec::new(), Vec::new(), Vec::new());
        let mut sequence = 0u64;
        for _ in 0..ROUNDS {
            clock += Duration::from_millis(25);
            receiver.handle_timeout(clock);
            while receiver.poll_transmit().is_some() {}
            let plain: Vec<Bytes> = (0..BLOCK)
                .map(|_| {
                    sequence += 1;
                    source.get().build(1, sequence, &events, PacketFlags::NONE)
                })
                .collect();
            let mut plain = split_off_one_buffer(&plain).into_iter();
            let sessioned: Vec<Bytes> = (0..BLOCK)
                .map(|_| {
                    let sent = sender.send(1, &events, PacketFlags::NONE).expect("sends");
                    sent.datagram.expect("no credit limit")
                })
                .collect();
            let mut sessioned = split_off_one_buffer(&sessioned).into_iter();
            let batched: Vec<Bytes> = (0..BLOCK)
                .map(|_| {
                    let sent = sender.send(1, &events, PacketFlags::NONE).expect("sends");
                    sent.datagram.expect("no credit limit")
                })
                .collect();
            let batched = split_off_one_buffer(&batched);
            let base = time_block(|_| {
                let d = plain.next().expect("one per call");
                black_box(opener.open(d).map(|p| p.event_count())).ok();
            });
            let session = time_block(|_| {
                let d = sessioned.next().expect("one per call");
                black_box(receiver.handle_datagram(d, clock).is_ok());
            });
            // An endpoint's receive loop: batches of one recvmmsg's worth.
            let start = Instant::now();
            let mut datagrams = batched.into_iter();
            for _ in 0..BLOCK.div_ceil(RECEIVE_BATCH as u64) {
                let mut batch = receiver.receive_batch(clock);
                for d in datagrams.by_ref().take(RECEIVE_BATCH) {
                    black_box(batch.handle(d).is_ok());
                }
            }
            let in_batches = start.elapsed().as_secs_f64();
            while receiver.poll_transmit().is_some() {}
            bare.push(base / BLOCK as f64 * 1e9);
            ratios.push(session / base);
            batch_ratios.push(in_batches / base);
        }
        println!(
            "  receive {:>8}: bare {:7.0} ns, session/bare {:.3} (handle_datagram), {:.3} (receive_batch of {RECEIVE_BATCH})",
            shape.label(),
            median(bare),
            median(ratios),
            median(batch_ratios)
        );
    }
}
