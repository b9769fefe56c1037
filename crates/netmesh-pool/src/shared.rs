//! [`PacketPool`]: builders in one lock-free queue, shared by every thread.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_queue::ArrayQueue;
use netmesh_cipher::TxCounter;
use zeroize::Zeroizing;

use crate::PacketBuilder;

/// Key material a pool keeps to make builders; boxed so moving the pool leaves no copy.
pub(crate) type PoolKey = Box<Zeroizing<[u8; 32]>>;

pub(crate) fn pool_key(key: &[u8; 32]) -> PoolKey {
    Box::new(Zeroizing::new(*key))
}

/// Identifies a pool so builders go back only to the pool that made them.
pub(crate) fn next_pool_id() -> u64 {
    // Ordering: ids need only be unique, which any ordering of fetch_add guarantees.
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A fixed set of [`PacketBuilder`]s in a lock-free queue, all sharing one TX counter.
///
/// [`get`](Self::get) pops a builder (or makes one when the queue is empty) and the
/// returned guard pushes it back when dropped; a builder over capacity is dropped, its
/// key wiped. Any number of threads may share one pool.
///
/// # Examples
///
/// ```
/// use bytes::Bytes;
/// use netmesh_pool::PacketPool;
/// use netmesh_wire::PacketFlags;
///
/// let pool = PacketPool::new(4, &[9; 32], 0x5e55);
/// let packet = pool.get().build(1, 0, &[Bytes::from_static(b"event")], PacketFlags::NONE);
/// assert_eq!(packet.len(), 68 + 9 + 16);
/// assert_eq!(pool.available(), 4);
/// ```
pub struct PacketPool {
    /// Boxed: the queue's cache-line padding must not travel with every move of the pool
    /// (padding carries whatever the stack held, key residue included).
    builders: Box<ArrayQueue<PacketBuilder>>,
    key: PoolKey,
    session_id: u64,
    origin_hash: u64,
    capacity: usize,
    counter: TxCounter,
    pool_id: u64,
}

impl PacketPool {
    /// A pool of `size` builders (at least one) for `key` and `session_id`.
    #[must_use]
    pub fn new(size: usize, key: &[u8; 32], session_id: u64) -> Self {
        Self::with_origin(size, key, session_id, 0)
    }

    /// A pool whose builders stamp `origin_hash` on every data packet.
    #[must_use]
    pub fn with_origin(size: usize, key: &[u8; 32], session_id: u64, origin_hash: u64) -> Self {
        let capacity = size.max(1);
        let mut pool = Self {
            builders: crate::hygiene::boxed_queue(capacity),
            key: pool_key(key),
            session_id,
            origin_hash,
            capacity,
            counter: TxCounter::new(),
            pool_id: next_pool_id(),
        };
        pool.fill();
        crate::hygiene::scrub_stack();
        pool
    }

    fn fill(&mut self) {
        while !self.builders.is_full() {
            let builder = self.make_builder();
            if self.builders.push(builder).is_err() {
                break;
            }
        }
    }

    fn make_builder(&self) -> PacketBuilder {
        PacketBuilder::pooled(
            &self.key,
            self.session_id,
            self.origin_hash,
            self.counter.clone(),
            self.pool_id,
        )
    }

    /// Re-keys the pool: a new key, session and TX counter from 0. Every pooled builder
    /// is dropped (its key wiped) and replaced, so no builder of the old key is ever
    /// handed out again; `&mut self` guarantees none is out on loan.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_pool::PacketPool;
    ///
    /// let mut pool = PacketPool::new(2, &[1; 32], 1);
    /// pool.set_key(&[2; 32], 2);
    /// assert_eq!(pool.session_id(), 2);
    /// assert_eq!(pool.get().session_id(), 2);
    /// ```
    pub fn set_key(&mut self, key: &[u8; 32], session_id: u64) {
        while self.builders.pop().is_some() {}
        self.key = pool_key(key);
        self.session_id = session_id;
        self.counter = TxCounter::new();
        self.pool_id = next_pool_id();
        self.fill();
        crate::hygiene::scrub_stack();
    }

    /// Lends a builder; it returns to the pool when the guard drops.
    #[must_use = "the guard returns the builder as soon as it is dropped"]
    pub fn get(&self) -> PooledBuilder<'_> {
        let builder = self.builders.pop().unwrap_or_else(|| self.make_builder());
        PooledBuilder {
            pool: self,
            builder: Some(builder),
        }
    }

    fn give_back(&self, mut builder: PacketBuilder) {
        if builder.pool_id() != self.pool_id {
            return;
        }
        builder.reset(self.origin_hash);
        // A full queue means this builder was made on demand: drop it, wiping its key.
        let _ = self.builders.push(builder);
    }

    /// How many builders the pool keeps.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many builders are in the queue now.
    #[must_use]
    pub fn available(&self) -> usize {
        self.builders.len()
    }

    /// The session id of every packet the pool builds.
    #[must_use]
    pub fn session_id(&self) -> u64 {
        self.session_id
    }
}

impl fmt::Debug for PacketPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacketPool")
            .field("session_id", &format_args!("{:#018x}", self.session_id))
            .field("capacity", &self.capacity)
            .field("available", &self.builders.len())
            .finish_non_exhaustive()
    }
}

/// A builder lent by a [`PacketPool`]; it dereferences to [`PacketBuilder`] and goes
/// back to the pool when dropped, with its channel hash cleared and origin reset.
#[must_use = "the builder goes back to the pool as soon as the guard is dropped"]
pub struct PooledBuilder<'a> {
    pool: &'a PacketPool,
    builder: Option<PacketBuilder>,
}

crate::builder_guard!(PooledBuilder, give_back);

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use netmesh_wire::{NetHeader, PacketFlags};

    use super::*;

    #[test]
    fn guard_returns_builder_and_clears_channel() {
        let pool = PacketPool::with_origin(1, &[4; 32], 8, 0x0123);
        {
            let mut builder = pool.get();
            builder.set_channel_hash(77);
            assert_eq!(pool.available(), 0);
        }
        assert_eq!(pool.available(), 1);
        let packet = pool.get().build(0, 0, &[], PacketFlags::NONE);
        let header = NetHeader::parse(&packet).unwrap();
        assert_eq!(header.channel_hash, 0);
        assert_eq!(header.origin_hash, 0x0123);
    }

    #[test]
    fn empty_pool_makes_builders_and_drops_the_excess() {
        let pool = PacketPool::new(2, &[4; 32], 8);
        let guards: Vec<_> = (0..5).map(|_| pool.get()).collect();
        assert_eq!(pool.available(), 0);
        drop(guards);
        assert_eq!(pool.available(), 2);
    }

    #[test]
    fn all_builders_share_one_counter() {
        let pool = PacketPool::new(3, &[4; 32], 8);
        let guards: Vec<_> = (0..3).map(|_| pool.get()).collect();
        let mut counters: Vec<u64> = guards
            .into_iter()
            .map(|mut b| {
                let header = NetHeader::parse(&b.build(0, 0, &[Bytes::new()], PacketFlags::NONE));
                let nonce = header.unwrap().nonce;
                u64::from_le_bytes(nonce[4..].try_into().unwrap())
            })
            .collect();
        counters.sort_unstable();
        assert_eq!(counters, [0, 1, 2]);
    }

    #[test]
    fn debug_shows_no_key() {
        let pool = PacketPool::new(1, &[0xcd; 32], 3);
        let text = format!("{pool:?}");
        assert!(text.contains("capacity"));
        assert!(!text.to_lowercase().contains("cdcd"));
        assert!(!text.contains("205"));
    }
}
