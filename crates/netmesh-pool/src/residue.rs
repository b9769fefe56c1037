//! Scrubbing key residue (`netmesh_cipher::scrub_stack`, whose module says why): the
//! pools' key-bearing constructors scrub the dead stack below them before returning, and
//! the pools keep their queue, whose cache-line padding is large, boxed once on scrubbed
//! stack rather than moving it with the pool.

use crossbeam_queue::ArrayQueue;

use crate::PacketBuilder;

pub(crate) use netmesh_cipher::scrub_stack;

/// A queue built in a freshly scrubbed frame and moved to the heap once.
pub(crate) fn boxed_queue(capacity: usize) -> Box<ArrayQueue<PacketBuilder>> {
    netmesh_cipher::boxed_on_scrubbed_stack(|| ArrayQueue::new(capacity))
}
