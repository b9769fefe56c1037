//! The same user shape (`ThreadLocalPool::get`, build one 1 x 64 B packet, drop the guard
//! and the packet) compiled three ways into one binary, each over ring's bare seal of the
//! same bytes, interleaved as in `--bench interleaved` (median of 301 rounds of 2000):
//!
//! - `direct`: the loop calls `get().build(..)` itself;
//! - `returned`: the loop calls a never-inlined function that gets, builds and returns
//!   the packet;
//! - `dropped`: the loop calls a never-inlined function that gets, builds and drops it.
//!
//! The library code is the same in all three; only the caller's machine code differs.
//! The spread of the three ratios is how much of the bench's ratio is the caller's code
//! generation rather than the library (docs/BENCHMARKS.md, "fifth session").
//!
//! `cargo run --release -p netmesh-benches --example user_shape_codegen`

// A measuring harness: a failed unwrap is a bug here; counts are small.
#![allow(clippy::unwrap_used, clippy::cast_precision_loss)]
use bytes::Bytes;
use netmesh_benches::{
    bare_ring_key, bare_ring_seal, median, time_block, Shape, BLOCK, KEY, ROUNDS, SESSION,
};
use netmesh_pool::ThreadLocalPool;
use netmesh_wire::PacketFlags;
use std::hint::black_box;

#[inline(never)]
fn get_build_return(pool: &ThreadLocalPool, events: &[Bytes], sequence: u64) -> Bytes {
    pool.get().build(1, sequence, events, PacketFlags::NONE)
}

#[inline(never)]
fn get_build_drop(pool: &ThreadLocalPool, events: &[Bytes], sequence: u64) {
    let packet = pool.get().build(1, sequence, events, PacketFlags::NONE);
    drop(black_box(packet));
}

fn main() {
    let bare = bare_ring_key();
    let pool = ThreadLocalPool::new(8, &KEY, SESSION);
    let events = Shape::ALL[0].make();
    let mut buf = vec![0u8; Shape::ALL[0].payload_len()];
    let mut counter = 0u64;
    let mut ratios = [Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..ROUNDS {
        let seal = time_block(|_| {
            counter += 1;
            black_box(bare_ring_seal(&bare, counter, black_box(&mut buf)));
        });
        let direct = time_block(|s| {
            let packet = pool
                .get()
                .build(1, s, black_box(&events), PacketFlags::NONE);
            drop(black_box(packet));
        });
        let returned =
            time_block(|s| drop(black_box(get_build_return(&pool, black_box(&events), s))));
        let dropped = time_block(|s| get_build_drop(&pool, black_box(&events), s));
        for (ratios, time) in ratios.iter_mut().zip([direct, returned, dropped]) {
            ratios.push(time / seal);
        }
    }
    let [direct, returned, dropped] = ratios.map(median);
    println!(
        "get + build 1x64B + drop / bare ring seal (median of {ROUNDS} rounds of {BLOCK}): \
         direct {direct:.3}, returned {returned:.3}, dropped {dropped:.3}"
    );
}
