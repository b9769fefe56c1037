//! [`ThreadLocalPool`]: a per-thread cache of builders in front of a shared queue.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Weak};

use crate::shared::BuilderQueue;
use crate::PacketBuilder;

/// A [`ThreadLocalPool`] shared between threads.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use netmesh_pool::{SharedLocalPool, ThreadLocalPool};
///
/// let pool: SharedLocalPool = Arc::new(ThreadLocalPool::new(4, &[1; 32], 9));
/// let other = Arc::clone(&pool);
/// std::thread::spawn(move || drop(other.get())).join().unwrap();
/// ```
pub type SharedLocalPool = Arc<ThreadLocalPool>;

/// Makes a [`SharedLocalPool`] of `size` builders with the default local capacity.
///
/// # Examples
///
/// ```
/// use bytes::Bytes;
/// use netmesh_wire::PacketFlags;
///
/// let pool = netmesh_pool::shared_local_pool(8, &[5; 32], 77);
/// let handles: Vec<_> = (0..2)
///     .map(|t| {
///         let pool = pool.clone();
///         std::thread::spawn(move || {
///             pool.get().build(t, 0, &[Bytes::from_static(b"e")], PacketFlags::NONE).len()
///         })
///     })
///     .collect();
/// for handle in handles {
///     assert_eq!(handle.join().unwrap(), 68 + 5 + 16);
/// }
/// ```
#[must_use]
pub fn shared_local_pool(size: usize, key: &[u8; 32], session_id: u64) -> SharedLocalPool {
    Arc::new(ThreadLocalPool::new(size, key, session_id))
}

/// Operations on one thread between two sweeps of its caches for dropped pools.
const REAP_INTERVAL: u32 = 1024;
/// A thread's cache table may grow to this many entries before growth forces a sweep.
const MIN_REAP_THRESHOLD: usize = 16;

/// Builders of one pool cached on one thread.
struct LocalCache {
    /// Dead once the pool is dropped; the next sweep then frees the builders.
    alive: Weak<()>,
    /// Never grows past the capacity it was made with, so builders are never moved by a
    /// reallocation.
    builders: Vec<PacketBuilder>,
}

/// The caches of every pool this thread has used: the most recently used one in `hot`,
/// so the warm path is one id comparison, the others in a table.
struct LocalCaches {
    hot: Option<(u64, LocalCache)>,
    cold: HashMap<u64, LocalCache, BuildHasherDefault<PoolIdHasher>>,
    operations: u32,
    reap_threshold: usize,
}

impl LocalCaches {
    const fn new() -> Self {
        Self {
            hot: None,
            cold: HashMap::with_hasher(BuildHasherDefault::new()),
            operations: 0,
            reap_threshold: MIN_REAP_THRESHOLD,
        }
    }

    /// The cache for `pool`, made on first use. Dropped pools' caches are swept every
    /// [`REAP_INTERVAL`] operations and whenever the table has doubled since the last
    /// sweep, so a sweep's cost is amortised and the table stays within about twice the
    /// live pools.
    #[inline]
    fn cache_for(&mut self, pool: &ThreadLocalPool) -> &mut LocalCache {
        self.operations = self.operations.wrapping_add(1);
        if self.operations % REAP_INTERVAL == 0 {
            self.reap();
        }
        if !matches!(&self.hot, Some((id, _)) if *id == pool.shared.pool_id) {
            self.make_hot(pool);
        }
        let (_, cache) = self
            .hot
            .get_or_insert_with(|| (pool.shared.pool_id, LocalCache::new(pool)));
        cache
    }

    #[cold]
    fn make_hot(&mut self, pool: &ThreadLocalPool) {
        let cache = self.cold.remove(&pool.shared.pool_id).unwrap_or_else(|| {
            if self.len() >= self.reap_threshold {
                self.reap();
            }
            LocalCache::new(pool)
        });
        if let Some((id, previous)) = self.hot.replace((pool.shared.pool_id, cache)) {
            self.cold.insert(id, previous);
        }
    }

    fn get(&self, pool_id: u64) -> Option<&LocalCache> {
        match &self.hot {
            Some((id, cache)) if *id == pool_id => Some(cache),
            _ => self.cold.get(&pool_id),
        }
    }

    fn remove(&mut self, pool_id: u64) {
        if matches!(&self.hot, Some((id, _)) if *id == pool_id) {
            self.hot = None;
        } else {
            self.cold.remove(&pool_id);
        }
    }

    fn len(&self) -> usize {
        self.cold.len() + usize::from(self.hot.is_some())
    }

    #[cold]
    fn reap(&mut self) {
        self.cold.retain(|_, cache| cache.is_alive());
        if self
            .hot
            .as_ref()
            .is_some_and(|(_, cache)| !cache.is_alive())
        {
            self.hot = None;
        }
        self.reap_threshold = (2 * self.len()).max(MIN_REAP_THRESHOLD);
    }
}

impl LocalCache {
    fn new(pool: &ThreadLocalPool) -> Self {
        Self {
            alive: Arc::downgrade(&pool.alive),
            builders: Vec::with_capacity(pool.local_limit()),
        }
    }

    fn is_alive(&self) -> bool {
        self.alive.strong_count() > 0
    }
}

thread_local! {
    static CACHES: RefCell<LocalCaches> = const { RefCell::new(LocalCaches::new()) };
}

/// Pool ids are distinct sequential integers: one multiply spreads them well, and is far
/// cheaper on the warm path than the default SipHash.
#[derive(Default)]
struct PoolIdHasher(u64);

impl Hasher for PoolIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = (self.0 ^ id).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A per-thread cache of [`PacketBuilder`]s in front of a shared lock-free queue.
///
/// With a warm cache, [`get`](Self::get) and the guard's drop touch only thread-local
/// state: no lock and no atomic read-modify-write (the TX counter's, when building, is
/// the only one). An empty cache refills from the shared queue in a batch of up to
/// `local_capacity`; a cache never holds more than `2 × local_capacity`, returning a
/// batch to the shared queue when full. Every builder of the pool shares one TX counter.
///
/// Several pools may be used on one thread; each has its own cache and a builder is
/// only ever handed out by the pool that made it. When a pool is dropped, its cache on
/// the dropping thread is freed at once, and on every other thread within 1024 later
/// pool operations on that thread, or sooner when the thread's table of caches has
/// doubled; builders of a dropped pool wipe their keys.
///
/// # Examples
///
/// ```
/// use bytes::Bytes;
/// use netmesh_pool::ThreadLocalPool;
/// use netmesh_wire::PacketFlags;
///
/// let pool = ThreadLocalPool::new(16, &[6; 32], 0xabc);
/// let mut builder = pool.get();
/// let packet = builder.build(1, 0, &[Bytes::from_static(b"event")], PacketFlags::NONE);
/// assert_eq!(packet.len(), 68 + 9 + 16);
/// ```
pub struct ThreadLocalPool {
    shared: BuilderQueue,
    /// Dropped with the pool, which tells every thread's sweep its caches are dead.
    alive: Arc<()>,
    local_capacity: usize,
}

impl ThreadLocalPool {
    /// Builders a thread caches by default before going to the shared queue.
    pub const DEFAULT_LOCAL_CAPACITY: usize = 8;

    /// A pool of `size` shared builders (at least one) with the default local capacity.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = netmesh_pool::ThreadLocalPool::new(16, &[1; 32], 9);
    /// assert_eq!(pool.capacity(), 16);
    /// assert_eq!(pool.local_capacity(), netmesh_pool::ThreadLocalPool::DEFAULT_LOCAL_CAPACITY);
    /// ```
    #[must_use]
    pub fn new(size: usize, key: &[u8; 32], session_id: u64) -> Self {
        Self::with_local_capacity(size, key, session_id, 0, Self::DEFAULT_LOCAL_CAPACITY)
    }

    /// A pool whose builders stamp `origin_hash` on every data packet.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_pool::ThreadLocalPool;
    /// use netmesh_wire::{NetHeader, PacketFlags};
    ///
    /// let pool = ThreadLocalPool::with_origin(4, &[1; 32], 9, 0xabc);
    /// let packet = pool.get().build(0, 0, &[], PacketFlags::NONE);
    /// assert_eq!(NetHeader::parse(&packet)?.origin_hash, 0xabc);
    /// # Ok::<(), netmesh_wire::WireError>(())
    /// ```
    #[must_use]
    pub fn with_origin(size: usize, key: &[u8; 32], session_id: u64, origin_hash: u64) -> Self {
        Self::with_local_capacity(
            size,
            key,
            session_id,
            origin_hash,
            Self::DEFAULT_LOCAL_CAPACITY,
        )
    }

    /// A pool with a chosen per-thread cache size (0 disables the cache).
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_pool::ThreadLocalPool;
    ///
    /// let pool = ThreadLocalPool::with_local_capacity(8, &[1; 32], 9, 0, 2);
    /// let builder = pool.acquire();
    /// assert_eq!(pool.local_available(), 1); // a batch of 2 came over, one is in hand
    /// pool.release(builder);
    /// ```
    #[must_use]
    pub fn with_local_capacity(
        size: usize,
        key: &[u8; 32],
        session_id: u64,
        origin_hash: u64,
        local_capacity: usize,
    ) -> Self {
        Self {
            shared: BuilderQueue::new(size, key, session_id, origin_hash),
            alive: Arc::new(()),
            local_capacity,
        }
    }

    #[inline]
    fn local_limit(&self) -> usize {
        self.local_capacity.saturating_mul(2)
    }

    /// Takes a builder: from this thread's cache, else a batch from the shared queue,
    /// else a new one. Give it back with [`release`](Self::release), or use
    /// [`get`](Self::get) for a guard that does.
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use netmesh_pool::ThreadLocalPool;
    /// use netmesh_wire::PacketFlags;
    ///
    /// let pool = ThreadLocalPool::new(4, &[1; 32], 9);
    /// let mut builder = pool.acquire();
    /// let packet = builder.build(0, 0, &[Bytes::from_static(b"e")], PacketFlags::NONE);
    /// pool.release(builder);
    /// assert_eq!(packet.len(), 68 + 5 + 16);
    /// ```
    #[must_use = "an acquired builder should be released back to the pool"]
    #[inline]
    pub fn acquire(&self) -> PacketBuilder {
        let cached = CACHES
            .try_with(|caches| {
                let mut caches = caches.try_borrow_mut().ok()?;
                let cache = caches.cache_for(self);
                cache.builders.pop().or_else(|| self.refill(cache))
            })
            .ok()
            .flatten();
        cached.unwrap_or_else(|| self.shared.take())
    }

    /// Moves a batch of builders from the shared queue into this thread's empty cache
    /// and takes one of them.
    #[cold]
    #[inline(never)]
    fn refill(&self, cache: &mut LocalCache) -> Option<PacketBuilder> {
        for _ in 0..self.local_capacity {
            match self.shared.pop() {
                Some(builder) => cache.builders.push(builder),
                None => break,
            }
        }
        cache.builders.pop()
    }

    /// Gives a builder back to this thread's cache. A builder made by another pool is
    /// dropped (its key wiped), never cached: pools never exchange builders.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_pool::ThreadLocalPool;
    ///
    /// let pool = ThreadLocalPool::new(4, &[1; 32], 9);
    /// let builder = pool.acquire();
    /// let cached = pool.local_available();
    /// pool.release(builder);
    /// assert_eq!(pool.local_available(), cached + 1);
    ///
    /// // A builder of another pool is dropped, not cached.
    /// let other = ThreadLocalPool::new(1, &[2; 32], 9);
    /// pool.release(other.acquire());
    /// assert_eq!(pool.local_available(), cached + 1);
    /// ```
    #[inline]
    pub fn release(&self, builder: PacketBuilder) {
        let Some(builder) = self.shared.readmit(builder) else {
            return;
        };
        let overflow = CACHES
            .try_with(|caches| {
                let Ok(mut caches) = caches.try_borrow_mut() else {
                    return Some(builder);
                };
                let cache = caches.cache_for(self);
                if cache.builders.len() < self.local_limit() {
                    cache.builders.push(builder);
                    None
                } else {
                    self.spill(cache, builder)
                }
            })
            .unwrap_or(None);
        if let Some(builder) = overflow {
            self.shared.push(builder);
        }
    }

    /// Returns a batch of this thread's full cache to the shared queue, then caches
    /// `builder` if there is room (there is unless the local capacity is 0).
    #[cold]
    #[inline(never)]
    fn spill(&self, cache: &mut LocalCache, builder: PacketBuilder) -> Option<PacketBuilder> {
        let keep = cache.builders.len().saturating_sub(self.local_capacity);
        for extra in cache.builders.drain(keep..) {
            self.shared.push(extra);
        }
        if cache.builders.len() < self.local_limit() {
            cache.builders.push(builder);
            None
        } else {
            Some(builder)
        }
    }

    /// Lends a builder through a guard that releases it on drop.
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use netmesh_pool::ThreadLocalPool;
    /// use netmesh_wire::PacketFlags;
    ///
    /// let pool = ThreadLocalPool::new(4, &[1; 32], 9);
    /// let packet = pool.get().build(0, 0, &[Bytes::from_static(b"e")], PacketFlags::NONE);
    /// assert_eq!(packet.len(), 68 + 5 + 16);
    /// ```
    #[must_use = "the guard returns the builder as soon as it is dropped"]
    #[inline]
    pub fn get(&self) -> ThreadLocalPooledBuilder<'_> {
        ThreadLocalPooledBuilder {
            pool: self,
            builder: Some(self.acquire()),
        }
    }

    /// How many builders the shared queue holds at most.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(netmesh_pool::ThreadLocalPool::new(16, &[1; 32], 9).capacity(), 16);
    /// ```
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.shared.capacity()
    }

    /// How many builders are in the shared queue now.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = netmesh_pool::ThreadLocalPool::with_local_capacity(16, &[1; 32], 9, 0, 4);
    /// drop(pool.get()); // this thread takes a batch of 4 into its cache
    /// assert_eq!(pool.shared_available(), 12);
    /// ```
    #[must_use]
    pub fn shared_available(&self) -> usize {
        self.shared.len()
    }

    /// The session id of every packet the pool builds.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(netmesh_pool::ThreadLocalPool::new(1, &[1; 32], 9).session_id(), 9);
    /// ```
    #[must_use]
    pub fn session_id(&self) -> u64 {
        self.shared.session_id
    }

    /// How many builders a thread refills at once; it caches at most twice this.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = netmesh_pool::ThreadLocalPool::with_local_capacity(16, &[1; 32], 9, 0, 3);
    /// assert_eq!(pool.local_capacity(), 3);
    /// ```
    #[must_use]
    pub fn local_capacity(&self) -> usize {
        self.local_capacity
    }

    /// How many builders this thread holds in its cache for this pool.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = netmesh_pool::ThreadLocalPool::with_local_capacity(16, &[1; 32], 9, 0, 4);
    /// assert_eq!(pool.local_available(), 0);
    /// drop(pool.get());
    /// assert_eq!(pool.local_available(), 4);
    /// ```
    #[must_use]
    pub fn local_available(&self) -> usize {
        CACHES
            .try_with(|caches| {
                caches.try_borrow().ok().map_or(0, |caches| {
                    caches
                        .get(self.shared.pool_id)
                        .map_or(0, |cache| cache.builders.len())
                })
            })
            .unwrap_or(0)
    }

    /// How many pools' caches the current thread holds, dropped pools not yet swept
    /// included. A diagnostic: it stays within about twice the live pools the thread uses.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_pool::ThreadLocalPool;
    ///
    /// let before = ThreadLocalPool::thread_cache_count();
    /// let pool = ThreadLocalPool::new(2, &[1; 32], 9);
    /// drop(pool.get());
    /// assert_eq!(ThreadLocalPool::thread_cache_count(), before + 1);
    /// ```
    #[must_use]
    pub fn thread_cache_count() -> usize {
        CACHES
            .try_with(|caches| caches.try_borrow().map_or(0, |c| c.len()))
            .unwrap_or(0)
    }
}

impl Drop for ThreadLocalPool {
    fn drop(&mut self) {
        // Free this thread's cache now; other threads sweep theirs once `alive` is gone.
        let _ = CACHES.try_with(|caches| {
            if let Ok(mut caches) = caches.try_borrow_mut() {
                caches.remove(self.shared.pool_id);
            }
        });
    }
}

impl fmt::Debug for ThreadLocalPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadLocalPool")
            .field("session_id", &format_args!("{:#018x}", self.session_id()))
            .field("capacity", &self.capacity())
            .field("shared_available", &self.shared.len())
            .field("local_capacity", &self.local_capacity)
            .finish_non_exhaustive()
    }
}

/// A builder lent by a [`ThreadLocalPool`]; it dereferences to [`PacketBuilder`] and is
/// released to the thread's cache when dropped, channel hash cleared and origin reset.
///
/// # Examples
///
/// ```
/// use netmesh_pool::{ThreadLocalPool, ThreadLocalPooledBuilder};
///
/// let pool = ThreadLocalPool::new(2, &[1; 32], 9);
/// let mut guard: ThreadLocalPooledBuilder<'_> = pool.get();
/// guard.set_origin_hash(7); // any PacketBuilder method, through DerefMut
/// drop(guard); // back to this thread's cache, origin reset to the pool's
/// ```
#[must_use = "the builder goes back to the pool as soon as the guard is dropped"]
pub struct ThreadLocalPooledBuilder<'a> {
    pool: &'a ThreadLocalPool,
    builder: Option<PacketBuilder>,
}

crate::builder_guard!(ThreadLocalPooledBuilder, release);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refill_is_batched_and_cache_is_bounded() {
        let pool = ThreadLocalPool::with_local_capacity(32, &[1; 32], 1, 0, 4);
        let first = pool.acquire();
        // One batch of 4 came over; one is in hand.
        assert_eq!(pool.shared_available(), 28);
        assert_eq!(pool.local_available(), 3);
        let mut held: Vec<_> = (0..20).map(|_| pool.acquire()).collect();
        held.push(first);
        for builder in held {
            pool.release(builder);
            assert!(pool.local_available() <= 8);
        }
        assert_eq!(pool.local_available() + pool.shared_available(), 32);
    }

    #[test]
    fn foreign_builders_are_not_cached() {
        let a = ThreadLocalPool::new(2, &[1; 32], 1);
        let b = ThreadLocalPool::new(2, &[2; 32], 1);
        let from_a = a.acquire();
        let before = b.local_available() + b.shared_available();
        b.release(from_a);
        assert_eq!(b.local_available() + b.shared_available(), before);
    }

    #[test]
    fn zero_local_capacity_uses_the_shared_queue() {
        let pool = ThreadLocalPool::with_local_capacity(2, &[1; 32], 1, 0, 0);
        let builder = pool.acquire();
        assert_eq!(pool.shared_available(), 1);
        pool.release(builder);
        assert_eq!(pool.shared_available(), 2);
        assert_eq!(pool.local_available(), 0);
    }

    #[test]
    fn dropping_a_pool_frees_this_threads_cache() {
        let before = ThreadLocalPool::thread_cache_count();
        let pool = ThreadLocalPool::new(2, &[1; 32], 1);
        drop(pool.get());
        assert_eq!(ThreadLocalPool::thread_cache_count(), before + 1);
        drop(pool);
        assert_eq!(ThreadLocalPool::thread_cache_count(), before);
    }
}
