//! netmesh and net-mesh 0.23 (the reference) building the same packets, each as a ratio
//! to the bare ring seal of the same payload length, in one run on one machine.
//!
//! `cargo bench --manifest-path tools/differential/Cargo.toml`
//!
//! As in `benches/benches/interleaved.rs`, the loops alternate in blocks of 2 000 packets
//! and each ratio is the median of 301 rounds, so every side sees the same machine.
//! net-mesh 0.23 seals with RustCrypto's `chacha20poly1305`; netmesh with ring (its
//! default backend). Both are measured against the same bare ring seal.

use std::hint::black_box;

use net::adapter::net as reference;
use netmesh_benches::{
    bare_ring_key, bare_ring_seal, median, time_block, Shape, KEY, ROUNDS, SESSION,
};
use netmesh_pool::{PacketPool, ThreadLocalPool};
use netmesh_wire::PacketFlags;

fn main() {
    let bare = bare_ring_key();
    let ours = PacketPool::new(8, &KEY, SESSION);
    let ours_local = ThreadLocalPool::new(8, &KEY, SESSION);
    let theirs = reference::PacketPool::new(8, &KEY, SESSION);
    let theirs_local = reference::ThreadLocalPool::new(8, &KEY, SESSION);
    println!("build / bare ring seal, held builder (median of {ROUNDS} interleaved rounds)");
    for shape in Shape::ALL {
        let events = shape.make();
        let mut buf = vec![0u8; shape.payload_len()];
        let (mut a, mut b, mut c, mut d) = (
            ours.get(),
            ours_local.get(),
            theirs.get(),
            theirs_local.get(),
        );
        let mut counter = 0;
        let mut ratios = [(); 4].map(|()| Vec::with_capacity(ROUNDS));
        for _ in 0..ROUNDS {
            let seal = time_block(|_| {
                counter += 1;
                black_box(bare_ring_seal(&bare, counter, black_box(&mut buf)));
            });
            let times = [
                time_block(|s| {
                    drop(black_box(a.build(
                        1,
                        s,
                        black_box(&events),
                        PacketFlags::NONE,
                    )))
                }),
                time_block(|s| {
                    drop(black_box(b.build(
                        1,
                        s,
                        black_box(&events),
                        PacketFlags::NONE,
                    )))
                }),
                time_block(|s| {
                    drop(black_box(c.build(
                        1,
                        s,
                        black_box(&events),
                        reference::PacketFlags::NONE,
                    )));
                }),
                time_block(|s| {
                    drop(black_box(d.build(
                        1,
                        s,
                        black_box(&events),
                        reference::PacketFlags::NONE,
                    )));
                }),
            ];
            for (ratio, time) in ratios.iter_mut().zip(times) {
                ratio.push(time / seal);
            }
        }
        let [a, b, c, d] = ratios.map(median);
        println!(
            "  {:>8}: netmesh PacketPool {a:.3}  ThreadLocalPool {b:.3}   \
             net-mesh 0.23 PacketPool {c:.3}  ThreadLocalPool {d:.3}",
            shape.label()
        );
    }
}
