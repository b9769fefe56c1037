//! Scrubbing key residue: the dead stack below key setup, so that no later value carries
//! key bytes to the heap in its padding.
//!
//! Key setup (ours and the AEAD backend's) leaves key bytes in stack frames that have
//! returned. A value built later in that stack region and then moved to the heap carries
//! those bytes in its padding, where no `Drop` wipes them. So key-bearing constructors
//! scrub the dead stack below them before returning, and the pools keep their queue,
//! whose cache-line padding is large, boxed once rather than moving it with the pool.

use crossbeam_queue::ArrayQueue;
use zeroize::Zeroize;

use crate::PacketBuilder;

/// Bytes of dead stack below the caller to overwrite: far more than the frames of key
/// setup use.
const SCRUB_BYTES: usize = 8 * 1024;

/// Overwrites the stack just below the caller's frame, where the frames of the calls it
/// has just made lived. Costs a few microseconds; called only by constructors.
#[inline(never)]
pub(crate) fn scrub_stack() {
    let mut dead = [0xa5_u8; SCRUB_BYTES];
    // Volatile writes: the compiler may not drop them as dead stores.
    dead.zeroize();
    std::hint::black_box(&dead);
}

/// A queue built in a freshly scrubbed frame and moved to the heap once.
#[inline(never)]
pub(crate) fn boxed_queue(capacity: usize) -> Box<ArrayQueue<PacketBuilder>> {
    scrub_stack();
    // A separate frame: it occupies the stack just scrubbed, so the queue's temporary
    // (and its padding) starts out zeroed. A temporary in this frame would not be.
    build_boxed_queue(capacity)
}

#[inline(never)]
fn build_boxed_queue(capacity: usize) -> Box<ArrayQueue<PacketBuilder>> {
    Box::new(ArrayQueue::new(capacity))
}
