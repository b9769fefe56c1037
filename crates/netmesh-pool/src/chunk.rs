//! [`Chunk`]: the memory a builder carves its packets from.
//!
//! A packet is written in place — header, frames, then the AEAD over the frames, then the
//! tag — so its bytes must be a `&mut [u8]` before anything is written. `BytesMut` only
//! lets safe code lengthen a buffer by writing every new byte (`resize`, which zeroes
//! what is written again right after, or `extend_from_slice`, which updates the length
//! at every write). Measured on a 1 x 64 B build, zeroing cost 2.5% of the bare seal
//! (`docs/BENCHMARKS.md`). So a chunk is zeroed once, when it is allocated, and its
//! length is then set directly: the one `unsafe` block of this crate.
#![allow(unsafe_code)]

use bytes::BytesMut;
use netmesh_wire::MAX_PACKET_SIZE;

/// Size of a chunk: one maximal packet.
const CHUNK_SIZE: usize = MAX_PACKET_SIZE;

/// One allocation that packets are carved from, front to back.
///
/// Invariant: every byte of the allocation behind `buf` is initialized, and `buf`'s length
/// is its capacity: the untaken rest of the chunk. It holds because chunks are only made
/// by [`Chunk::zeroed`], and `BytesMut` never swaps the allocation behind a handle for
/// another unless asked to allocate, which [`Chunk::restart`] never does (`try_reclaim`
/// only moves the handle within its own allocation).
pub(crate) struct Chunk {
    buf: BytesMut,
}

impl Chunk {
    /// A fresh chunk of [`CHUNK_SIZE`] bytes.
    pub(crate) fn new() -> Self {
        Self::zeroed(CHUNK_SIZE)
    }

    fn zeroed(len: usize) -> Self {
        Self {
            buf: BytesMut::zeroed(len),
        }
    }

    /// The first `total` bytes of the chunk, to write a packet into before
    /// [`cut`](Self::cut) hands it out. Its bytes are whatever earlier packets left
    /// there: the caller must overwrite every one of them.
    ///
    /// Once the chunk's tail is too short for the packet: if every packet cut from it has
    /// been dropped, the chunk starts over from its beginning, so callers that drop their
    /// packets cause no allocation; if packets are still held (a send queue), a new chunk
    /// is allocated, so held packets pin only the chunks they came from.
    #[inline]
    pub(crate) fn space(&mut self, total: usize) -> &mut [u8] {
        if self.buf.len() < total {
            self.restart(total);
        }
        &mut self.buf[..total]
    }

    /// Cuts the first `total` bytes off the chunk, as a buffer of their own; `total` is
    /// at most what the last [`space`](Self::space) was given.
    ///
    /// Cutting after the packet is written, not before, moves the reference count's
    /// atomic increment from before the seal to after it, which measured faster
    /// (docs/BENCHMARKS.md, "fifth session").
    #[inline]
    pub(crate) fn cut(&mut self, total: usize) -> BytesMut {
        self.buf.split_to(total)
    }

    /// Makes room for `total` bytes at the front of the chunk: its start again, if every
    /// packet cut from it has been dropped, else a new chunk.
    #[cold]
    #[inline(never)]
    fn restart(&mut self, total: usize) {
        self.buf.clear();
        // Never allocates: it succeeds when every packet cut from the chunk has been
        // dropped.
        if !self.buf.try_reclaim(total) {
            *self = Self::zeroed(CHUNK_SIZE.max(total));
            return;
        }
        let capacity = self.buf.capacity();
        // SAFETY: the bytes up to the capacity are within the allocation, and initialized
        // by the type's invariant.
        unsafe { self.buf.set_len(capacity) };
    }

    /// Bytes left in the chunk before it has to start over or be replaced.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Chunk {
        fn take(&mut self, total: usize) -> BytesMut {
            self.space(total);
            self.cut(total)
        }
    }

    #[test]
    fn take_gives_exact_lengths_and_restarts_when_packets_are_dropped() {
        let mut chunk = Chunk::new();
        let first = chunk.take(5000);
        assert_eq!(first.len(), 5000);
        assert_eq!(chunk.capacity(), CHUNK_SIZE - 5000);
        let start = first.as_ptr();
        drop(first);
        // The tail is too short, and nothing is held: back to the start.
        let again = chunk.take(5000);
        assert_eq!(again.as_ptr(), start, "a dropped packet's bytes are reused");
    }

    #[test]
    fn held_packets_make_the_next_take_use_a_new_chunk() {
        let mut chunk = Chunk::new();
        let held: Vec<_> = (0..4).map(|_| chunk.take(3000)).collect();
        let starts: Vec<_> = held.iter().map(|p| p.as_ptr() as usize).collect();
        assert_eq!(starts[1] - starts[0], 3000, "two packets fit one chunk");
        assert_ne!(starts[2], starts[1] + 3000, "the third needs a new chunk");
        assert!(held.iter().all(|p| p.len() == 3000));
    }

    #[test]
    fn every_byte_handed_out_is_initialized_even_in_a_larger_than_chunk_take() {
        let mut chunk = Chunk::new();
        // A fresh chunk: zeroes. Read every byte so Valgrind/Miri would flag uninit memory.
        assert!(chunk.take(CHUNK_SIZE).iter().all(|&b| b == 0));
        let mut big = chunk.take(CHUNK_SIZE + 1);
        assert!(big.iter().all(|&b| b == 0));
        big.fill(7);
        drop(big);
        // Reused: the old bytes, still initialized.
        assert!(chunk.take(CHUNK_SIZE + 1).iter().all(|&b| b == 7));
    }
}
