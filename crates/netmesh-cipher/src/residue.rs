//! Key residue on the stack: the dead frames that key setup leaves behind.
//!
//! Key setup (ours and the AEAD backends') leaves key bytes in stack frames that have
//! returned. A value built later in that stack region and then moved to the heap carries
//! those bytes in its padding, where no `Drop` wipes them. So key-bearing constructors
//! scrub the dead stack below them before returning, and values with large padding (the
//! cache-padded queues) are built in a freshly scrubbed frame and moved to the heap once.

use zeroize::Zeroize;

/// Bytes of dead stack below the caller to overwrite: far more than the frames of key
/// setup use.
const SCRUB_BYTES: usize = 8 * 1024;

/// Overwrites the 8 KiB of stack just below the caller's frame, where the frames of the
/// calls it has just made lived. Costs a few microseconds; for constructors that have just
/// handled key bytes.
///
/// # Examples
///
/// ```
/// let cipher: netmesh_cipher::PacketCipher = netmesh_cipher::PacketCipher::new(&[7; 32], 1);
/// netmesh_cipher::scrub_stack(); // the key setup's dead frames are zeroes now
/// # drop(cipher);
/// ```
#[inline(never)]
pub fn scrub_stack() {
    let mut dead = [0xa5_u8; SCRUB_BYTES];
    // Volatile writes: the compiler may not drop them as dead stores.
    dead.zeroize();
    std::hint::black_box(&dead);
}

/// `make()`'s value, built in a frame on freshly scrubbed stack and moved to the heap
/// once, so that its padding holds zeroes rather than whatever the stack held (key
/// residue included).
///
/// # Examples
///
/// ```
/// let table = netmesh_cipher::boxed_on_scrubbed_stack(|| [0_u64; 64]);
/// assert_eq!(table.len(), 64);
/// ```
#[inline(never)]
pub fn boxed_on_scrubbed_stack<T>(make: impl FnOnce() -> T) -> Box<T> {
    scrub_stack();
    // A separate frame: it occupies the stack just scrubbed, so the value's temporary
    // (and its padding) starts out zeroed. A temporary in this frame would not be.
    box_in_own_frame(make)
}

#[inline(never)]
fn box_in_own_frame<T>(make: impl FnOnce() -> T) -> Box<T> {
    Box::new(make())
}
