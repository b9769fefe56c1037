//! A long loop of one send path, for `perf record`: `bare` (a `ThreadLocalPool` get and
//! build) or `sess` (`Session::send`, the peer taken for net-mesh as in
//! `session_interleaved`), 1x64 B packets, each dropped at once, R rounds (default
//! 2000) of 2000. Prints ns per packet.
//!
//! `cargo build --release -p netmesh-benches --example profile_send &&
//! perf record target/release/examples/profile_send sess`

// A profiling harness: a failed unwrap is a bug here; counts are small.
#![allow(clippy::unwrap_used, clippy::cast_precision_loss)]
use netmesh_benches::{session_pair, Shape, KEY, SESSION};
use netmesh_pool::ThreadLocalPool;
use netmesh_wire::PacketFlags;
use std::hint::black_box;
use std::time::{Duration, Instant};

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let rounds: u64 = std::env::var("R")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let events = Shape::ALL[0].make();
    let now = Instant::now();
    let (sender, _) = session_pair(now);
    sender.handle_timeout(now + Duration::from_secs(1));
    let pool = ThreadLocalPool::new(64, &KEY, SESSION);
    let mut sequence = 0u64;
    let t = Instant::now();
    for _ in 0..rounds {
        for _ in 0..2000 {
            if mode == "bare" {
                sequence += 1;
                black_box(
                    pool.get()
                        .build(1, sequence, black_box(&events), PacketFlags::NONE),
                );
            } else {
                black_box(sender.send(1, black_box(&events), PacketFlags::NONE)).ok();
            }
        }
        while sender.poll_transmit().is_some() {}
    }
    println!(
        "{mode}: {:.1} ns/packet",
        t.elapsed().as_nanos() as f64 / (rounds * 2000) as f64
    );
}
