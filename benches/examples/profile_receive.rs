//! A long loop of one receive path, for `perf record`: `bare` (PacketOpener::open),
//! `sess` (Session::handle_datagram) or `batch` (Session::receive_batch, 64 per batch),
//! over blocks of N (default 2000) 1x64 B datagrams cut off one buffer, R rounds
//! (default 1000). Prints ns per packet of the timed part (the sealing is not timed).
//!
//! `cargo build --release -p netmesh-benches --example profile_receive &&
//! perf record target/release/examples/profile_receive batch`

// A profiling harness: a failed unwrap is a bug here; counts are small.
#![allow(
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss
)]
use bytes::Bytes;
use netmesh_benches::{session_pair, split_off_one_buffer, Shape, KEY, SESSION};
use netmesh_pool::{PacketOpener, ThreadLocalPool};
use netmesh_wire::PacketFlags;
use std::hint::black_box;
use std::time::{Duration, Instant};

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let events = Shape::ALL[0].make();
    let now = Instant::now();
    let (sender, receiver) = session_pair(now);
    while let Some(d) = sender.poll_transmit() {
        let _ = receiver.handle_datagram(d, now);
    }
    let mut clock = now + Duration::from_secs(1);
    sender.handle_timeout(clock);
    while let Some(d) = sender.poll_transmit() {
        let _ = receiver.handle_datagram(d, clock);
    }
    let source = ThreadLocalPool::new(8, &KEY, SESSION);
    let opener = PacketOpener::new(&KEY, SESSION);
    let mut total = Duration::ZERO;
    let rounds: u64 = std::env::var("R")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    for round in 0..rounds {
        let ds: Vec<Bytes> = if mode == "bare" {
            (0..n)
                .map(|i| {
                    source
                        .get()
                        .build(1, round * n as u64 + i as u64, &events, PacketFlags::NONE)
                })
                .collect()
        } else {
            (0..n)
                .map(|_| {
                    sender
                        .send(1, &events, PacketFlags::NONE)
                        .unwrap()
                        .datagram
                        .unwrap()
                })
                .collect()
        };
        let ds = split_off_one_buffer(&ds);
        clock += Duration::from_millis(25);
        receiver.handle_timeout(clock);
        while receiver.poll_transmit().is_some() {}
        let t = Instant::now();
        if mode == "bare" {
            for d in ds {
                black_box(opener.open(d).map(|p| p.event_count())).ok();
            }
        } else if mode == "batch" {
            let mut it = ds.into_iter().peekable();
            while it.peek().is_some() {
                let mut b = receiver.receive_batch(clock);
                for d in it.by_ref().take(64) {
                    black_box(b.handle(d).is_ok());
                }
            }
        } else {
            for d in ds {
                black_box(receiver.handle_datagram(d, clock).is_ok());
            }
        }
        total += t.elapsed();
        while receiver.poll_transmit().is_some() {}
    }
    println!(
        "{mode}: {:.1} ns/packet",
        total.as_nanos() as f64 / (rounds as usize * n) as f64
    );
}
