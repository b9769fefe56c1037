//! [`PacketPool`]: builders in one lock-free queue, shared by every thread.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_queue::ArrayQueue;
use netmesh_cipher::{Key, TxCounter};

use crate::PacketBuilder;

/// Identifies a pool so builders go back only to the pool that made them.
fn next_pool_id() -> u64 {
    // Ordering: ids need only be unique, which any ordering of fetch_add guarantees.
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// What both pools are made of: a lock-free queue of builders that share one TX counter,
/// and what it takes to make more of them.
pub(crate) struct BuilderQueue {
    /// Boxed: the queue's cache-line padding must not travel with every move of the pool
    /// (padding carries whatever the stack held, key residue included).
    queue: Box<ArrayQueue<PacketBuilder>>,
    /// Boxed so moving the pool leaves no copy of the key.
    key: Box<Key>,
    pub(crate) session_id: u64,
    origin_hash: u64,
    counter: TxCounter,
    pub(crate) pool_id: u64,
}

impl BuilderQueue {
    /// A full queue of `size` builders (at least one) with a fresh counter and pool id.
    pub(crate) fn new(size: usize, key: &[u8; 32], session_id: u64, origin_hash: u64) -> Self {
        let queue = Self::empty(size, key, session_id, origin_hash);
        while !queue.queue.is_full() {
            if queue.queue.push(queue.make()).is_err() {
                break;
            }
        }
        crate::residue::scrub_stack();
        queue
    }

    /// A queue with room for `size` builders (at least one) and none in it: builders are
    /// made on demand by [`take`](Self::take).
    pub(crate) fn empty(size: usize, key: &[u8; 32], session_id: u64, origin_hash: u64) -> Self {
        Self {
            queue: crate::residue::boxed_queue(size.max(1)),
            key: Box::new(Key::new(key)),
            session_id,
            origin_hash,
            counter: TxCounter::new(),
            pool_id: next_pool_id(),
        }
    }

    fn make(&self) -> PacketBuilder {
        PacketBuilder::pooled(
            self.key.as_bytes(),
            self.session_id,
            self.origin_hash,
            self.counter.clone(),
            self.pool_id,
        )
    }

    pub(crate) fn pop(&self) -> Option<PacketBuilder> {
        self.queue.pop()
    }

    /// A queued builder, or a new one when the queue is empty.
    pub(crate) fn take(&self) -> PacketBuilder {
        self.pop().unwrap_or_else(|| self.make())
    }

    /// Readies a returned builder for its next user; `None` (the builder dropped, its key
    /// wiped) when another pool made it.
    #[inline]
    pub(crate) fn readmit(&self, mut builder: PacketBuilder) -> Option<PacketBuilder> {
        if builder.pool_id() != self.pool_id {
            return None;
        }
        builder.reset(self.origin_hash);
        Some(builder)
    }

    /// Queues a builder; when the queue is full the builder is dropped, its key wiped.
    pub(crate) fn push(&self, builder: PacketBuilder) {
        let _ = self.queue.push(builder);
    }

    pub(crate) fn capacity(&self) -> usize {
        self.queue.capacity()
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }
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
    builders: BuilderQueue,
}

impl PacketPool {
    /// A pool of `size` builders (at least one) for `key` and `session_id`.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = netmesh_pool::PacketPool::new(4, &[1; 32], 9);
    /// assert_eq!((pool.capacity(), pool.available()), (4, 4));
    /// ```
    #[must_use]
    pub fn new(size: usize, key: &[u8; 32], session_id: u64) -> Self {
        Self::with_origin(size, key, session_id, 0)
    }

    /// A pool whose builders stamp `origin_hash` on every data packet.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_pool::PacketPool;
    /// use netmesh_wire::{NetHeader, PacketFlags};
    ///
    /// let pool = PacketPool::with_origin(2, &[1; 32], 9, 0xabc);
    /// let packet = pool.get().build(0, 0, &[], PacketFlags::NONE);
    /// assert_eq!(NetHeader::parse(&packet)?.origin_hash, 0xabc);
    /// # Ok::<(), netmesh_wire::WireError>(())
    /// ```
    #[must_use]
    pub fn with_origin(size: usize, key: &[u8; 32], session_id: u64, origin_hash: u64) -> Self {
        Self {
            builders: BuilderQueue::new(size, key, session_id, origin_hash),
        }
    }

    /// Re-keys the pool: a new key, session and TX counter from 0. Every pooled builder
    /// is dropped (its key wiped), so no builder of the old key is ever handed out again
    /// (`&mut self` guarantees none is out on loan). As in net-mesh 0.23, the pool then
    /// holds no builders: [`get`](Self::get) makes them on demand, and they stay once
    /// their guards are dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_pool::PacketPool;
    ///
    /// let mut pool = PacketPool::new(2, &[1; 32], 1);
    /// assert_eq!(pool.available(), 2);
    /// pool.set_key(&[2; 32], 2);
    /// assert_eq!(pool.available(), 0);
    /// assert_eq!(pool.session_id(), 2);
    /// assert_eq!(pool.get().session_id(), 2);
    /// ```
    pub fn set_key(&mut self, key: &[u8; 32], session_id: u64) {
        let origin_hash = self.builders.origin_hash;
        // As net-mesh 0.23: the old builders are dropped (keys wiped) and new ones are
        // made on demand, so `available()` is 0 until guards come back.
        self.builders = BuilderQueue::empty(self.capacity(), key, session_id, origin_hash);
    }

    /// Lends a builder; it returns to the pool when the guard drops.
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use netmesh_pool::PacketPool;
    /// use netmesh_wire::PacketFlags;
    ///
    /// let pool = PacketPool::new(2, &[1; 32], 9);
    /// {
    ///     let mut builder = pool.get();
    ///     assert_eq!(pool.available(), 1);
    ///     let _packet = builder.build(0, 0, &[Bytes::from_static(b"e")], PacketFlags::NONE);
    /// }
    /// assert_eq!(pool.available(), 2); // the guard gave the builder back
    /// ```
    #[must_use = "the guard returns the builder as soon as it is dropped"]
    pub fn get(&self) -> PooledBuilder<'_> {
        PooledBuilder {
            pool: self,
            builder: Some(self.builders.take()),
        }
    }

    fn give_back(&self, builder: PacketBuilder) {
        if let Some(builder) = self.builders.readmit(builder) {
            self.builders.push(builder);
        }
    }

    /// How many builders the pool keeps.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(netmesh_pool::PacketPool::new(0, &[1; 32], 9).capacity(), 1);
    /// ```
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.builders.capacity()
    }

    /// How many builders are in the queue now.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = netmesh_pool::PacketPool::new(3, &[1; 32], 9);
    /// let held = pool.get();
    /// assert_eq!(pool.available(), 2);
    /// drop(held);
    /// assert_eq!(pool.available(), 3);
    /// ```
    #[must_use]
    pub fn available(&self) -> usize {
        self.builders.len()
    }

    /// The session id of every packet the pool builds.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(netmesh_pool::PacketPool::new(1, &[1; 32], 9).session_id(), 9);
    /// ```
    #[must_use]
    pub fn session_id(&self) -> u64 {
        self.builders.session_id
    }
}

impl fmt::Debug for PacketPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacketPool")
            .field("session_id", &format_args!("{:#018x}", self.session_id()))
            .field("capacity", &self.capacity())
            .field("available", &self.builders.len())
            .finish_non_exhaustive()
    }
}

/// A builder lent by a [`PacketPool`]; it dereferences to [`PacketBuilder`] and goes
/// back to the pool when dropped, with its channel hash cleared and origin reset.
///
/// # Examples
///
/// ```
/// use netmesh_pool::{PacketPool, PooledBuilder};
///
/// let pool = PacketPool::new(1, &[1; 32], 9);
/// let mut guard: PooledBuilder<'_> = pool.get();
/// guard.set_channel_hash(5); // any PacketBuilder method, through DerefMut
/// drop(guard); // back to the pool, channel hash cleared
/// ```
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
                header.unwrap().nonce_counter()
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
