//! Receive-side ratios measured by interleaving, for a shared and noisy host (see
//! `interleaved.rs` for why). Per shape these alternate batch by batch: the bare ring
//! open; a receive loop (`split_to` off one buffer, then `open` of the `BytesMut`);
//! `open` of `BytesMut`s split off before the clock starts; `open_in_place` on each slot
//! of one buffer; and, for comparison, `open` of a unique `Bytes` per datagram (made
//! before the clock starts; its drop, which frees it, is timed). A round is 32 batches of
//! each, a ratio is taken per round, and the median of the rounds is printed.
//! `cargo bench -p netmesh-benches --bench receive [-- <shape label>]`.

use std::time::Duration;

use netmesh_benches::{median, ReceiveBatch, Shape, RECEIVE_BATCH, ROUNDS};

/// Batches of each kind per round.
const BATCHES: usize = 32;

fn main() {
    // `cargo bench` passes `--bench`; any other argument keeps only the shapes whose
    // label contains it (`-- 1x64B`).
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    println!(
        "open / bare ring open, {RECEIVE_BATCH} datagrams per batch in one buffer \
         (median of {ROUNDS} interleaved rounds of {BATCHES} batches)"
    );
    for shape in Shape::ALL {
        if !filter.is_empty() && !filter.iter().any(|f| shape.label().contains(f.as_str())) {
            continue;
        }
        let mut batch = ReceiveBatch::new(shape);
        let (mut bare_ns, mut receive_loop, mut split, mut in_place, mut unique) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let [mut bare, mut looped, mut cut, mut slots, mut own] = [Duration::ZERO; 5];
            for _ in 0..BATCHES {
                bare += batch.bare_open();
                looped += batch.receive_loop();
                cut += batch.open_split();
                slots += batch.in_place();
                own += batch.open_unique();
            }
            let bare = bare.as_secs_f64();
            bare_ns.push(bare * 1e9 / (BATCHES * RECEIVE_BATCH) as f64);
            receive_loop.push(looped.as_secs_f64() / bare);
            split.push(cut.as_secs_f64() / bare);
            in_place.push(slots.as_secs_f64() / bare);
            unique.push(own.as_secs_f64() / bare);
        }
        println!(
            "  {:>8}: bare {:7.1} ns   receive loop {:.3}   open of split BytesMut {:.3}   \
             open_in_place {:.3}   open of unique Bytes {:.3}",
            shape.label(),
            median(bare_ns),
            median(receive_loop),
            median(split),
            median(in_place),
            median(unique)
        );
    }
}
