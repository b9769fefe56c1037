//! The shared transmit counter, handed out to threads in small leases.

use crate::sync::{thread_local, Arc, AtomicU64, Ordering, StaticAtomicU64};
use crate::{CipherError, MAX_COUNTER};
use core::cell::Cell;
use core::fmt;

/// How many consecutive counters a thread takes from the shared counter at a time.
///
/// One atomic read-modify-write per lease instead of one per packet: on one thread that
/// takes the `lock cmpxchg` off 15 of 16 packets, and on several threads it stops the
/// counter's cache line bouncing between cores on every packet. It also bounds how far a
/// thread's counters can trail the others' (see [`TxCounter`]).
#[cfg(not(loom))]
pub const COUNTER_LEASE: u64 = 16;

/// Under loom, leases of 2 so that a model of a few threads and values crosses lease and
/// epoch boundaries.
#[cfg(loom)]
pub const COUNTER_LEASE: u64 = 2;

/// A lease stays usable only while no counter 2 epochs beyond its first has been leased,
/// so a packet sealed from it is at most `2 << EPOCH_SHIFT` (512) counters behind the
/// highest counter leased so far: well inside the receiver's 1024-counter window.
#[cfg(not(loom))]
const EPOCH_SHIFT: u32 = 8;

/// Under loom, epochs of 2 counters (one lease), so that a stale lease can be reached.
#[cfg(loom)]
const EPOCH_SHIFT: u32 = 1;

/// Leases one thread keeps at once, for as many counters (pools, keys) used in turn.
const LEASE_SLOTS: usize = 4;

/// Counter ids: a lease names its counter by an id that is never reused, never by
/// address, so a lease of a dropped counter can never be taken for a new one.
static NEXT_ID: StaticAtomicU64 = StaticAtomicU64::new(1);

/// The transmit counter of one sending key: hands out each counter from its start to
/// [`MAX_COUNTER`] at most once, then fails forever with
/// [`CipherError::CounterExhausted`].
///
/// A `TxCounter` is a handle: clones share one counter (every builder of a pool, on every
/// thread, takes its nonces from the same sequence), while two counters made with
/// [`new`](Self::new) or [`starting_at`](Self::starting_at) are independent. Never give
/// two independent counters to ciphers with the same key: they would reuse nonces.
///
/// # Leases
///
/// Each thread takes [`COUNTER_LEASE`] consecutive counters at a time and hands them out
/// in order. On one thread, whatever the number of handles and ciphers, the values are
/// therefore exactly `start, start + 1, start + 2, ...`, as with a plain shared counter.
/// Across threads the values stay unique, and a thread's values run in blocks:
///
/// - values of different threads interleave in blocks of up to 16, so a receiver sees
///   them reordered by up to about `16 x threads` (its window is 1024);
/// - a lease left partly unused (its thread stops sending, or it fell too far behind the
///   other threads' leases and was dropped) leaves a gap: those values are never used;
/// - leases end at multiples of [`COUNTER_LEASE`]: after a value taken alone
///   ([`take_single`](Self::take_single)) the next lease is shorter.
///
/// A lease is dropped rather than used once other threads have leased counters 512 or
/// more beyond it, so a thread that slept does not send packets the receiver's replay
/// window has already passed.
///
/// # Examples
///
/// ```
/// use netmesh_cipher::TxCounter;
///
/// let counter = TxCounter::new();
/// let shared = counter.clone();
/// assert_eq!(counter.take()?, 0);
/// assert_eq!(shared.take()?, 1);
/// assert_eq!(counter.peek(), 2);
///
/// let independent = TxCounter::new();
/// assert_eq!(independent.take()?, 0);
/// # Ok::<(), netmesh_cipher::CipherError>(())
/// ```
#[derive(Clone)]
pub struct TxCounter {
    shared: Arc<Shared>,
}

/// `next` and `epoch` sit on separate cache lines, with no other data on `next`'s, so
/// that leasing does not evict the epoch every thread reads on every value. The padding
/// is explicit, zeroed fields rather than an alignment attribute: implicit padding would
/// be copied from the stack into the heap block, and stack residue can hold key bytes.
#[repr(C)]
struct Shared {
    _front: [u64; 14],
    /// The first counter not yet leased to any thread; `u64::MAX` once `MAX_COUNTER`
    /// has been leased. Written once per lease.
    next: AtomicU64,
    _middle: [u64; 15],
    /// The epoch (`counter >> EPOCH_SHIFT`) of the highest counter leased so far. Read on
    /// every value handed out, written only once per 256 counters, so it stays in every
    /// core's cache.
    epoch: AtomicU64,
    id: u64,
    _back: [u64; 14],
}

/// Counters `next..end` of counter `id`, taken from it by this thread.
#[derive(Clone, Copy)]
struct Lease {
    /// 0: an empty slot (ids start at 1).
    id: u64,
    next: u64,
    end: u64,
    /// The epoch of the lease's first counter.
    epoch: u64,
}

/// A place in [`LEASES`] holding a [`Lease`] field by field, so that taking a value
/// stores only `next`.
struct Slot {
    id: Cell<u64>,
    next: Cell<u64>,
    end: Cell<u64>,
    epoch: Cell<u64>,
}

impl Slot {
    /// An empty slot (ids start at 1).
    const fn empty() -> Self {
        Self {
            id: Cell::new(0),
            next: Cell::new(0),
            end: Cell::new(0),
            epoch: Cell::new(0),
        }
    }

    #[inline]
    fn get(&self) -> Lease {
        Lease {
            id: self.id.get(),
            next: self.next.get(),
            end: self.end.get(),
            epoch: self.epoch.get(),
        }
    }

    fn set(&self, lease: Lease) {
        self.id.set(lease.id);
        self.next.set(lease.next);
        self.end.set(lease.end);
        self.epoch.set(lease.epoch);
    }
}

#[cfg(not(loom))]
thread_local! {
    /// This thread's leases, most recently used first. No destructor, so it stays
    /// usable while the thread exits.
    static LEASES: [Slot; LEASE_SLOTS] = const { [const { Slot::empty() }; LEASE_SLOTS] };
}

// loom's thread-locals take no `const` initialiser.
#[cfg(loom)]
thread_local! {
    static LEASES: [Slot; LEASE_SLOTS] = [const { Slot::empty() }; LEASE_SLOTS];
}

impl TxCounter {
    /// A new, unshared counter starting at 0.
    #[must_use]
    pub fn new() -> Self {
        Self::starting_at(0)
    }

    /// A new, unshared counter whose first value is `first`. With `first = u64::MAX` the
    /// counter starts exhausted.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_cipher::{CipherError, TxCounter, MAX_COUNTER};
    ///
    /// let counter = TxCounter::starting_at(MAX_COUNTER);
    /// assert_eq!(counter.take(), Ok(MAX_COUNTER));
    /// assert_eq!(counter.take(), Err(CipherError::CounterExhausted));
    /// ```
    #[must_use]
    pub fn starting_at(first: u64) -> Self {
        Self {
            shared: Arc::new(Shared {
                _front: [0; 14],
                next: AtomicU64::new(first),
                _middle: [0; 15],
                epoch: AtomicU64::new(first.min(MAX_COUNTER) >> EPOCH_SHIFT),
                // Relaxed: the id only has to be unique.
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                _back: [0; 14],
            }),
        }
    }

    /// Takes the next counter value for this thread. No value is ever returned twice, by this handle or any
    /// clone of it on any thread, and the counter never wraps.
    ///
    /// # Errors
    ///
    /// [`CipherError::CounterExhausted`] once [`MAX_COUNTER`] has been leased and this
    /// thread's lease is used up, on this and every later call.
    #[inline]
    pub fn take(&self) -> Result<u64, CipherError> {
        LEASES
            .try_with(|slots| {
                let hot = slots[0].get();
                if self.can_use(&hot) {
                    slots[0].next.set(hot.next + 1);
                    return Ok(hot.next);
                }
                self.take_cold(slots)
            })
            .unwrap_or_else(|_| self.lease(1).map(|(first, _)| first))
    }

    /// One value straight from the shared sequence, without a lease: for a thread that
    /// seals rarely (a timer's heartbeat, a receive thread's acknowledgement), whose lease
    /// would sit mostly unused and leave a gap of up to 15 values that the receiver's
    /// credit watermark waits on. Costs one atomic read-modify-write; unique like
    /// [`take`](Self::take)'s values (leases come from the same sequence).
    ///
    /// # Errors
    ///
    /// [`CipherError::CounterExhausted`] once [`MAX_COUNTER`] has been handed out.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_cipher::TxCounter;
    ///
    /// let counter = TxCounter::new();
    /// assert_eq!(counter.take()?, 0); // this thread leases 0..16
    /// let other = counter.clone();
    /// let single = std::thread::spawn(move || other.take_single()).join().unwrap()?;
    /// assert_eq!(single, 16); // after the lease, and no lease left behind
    /// assert_eq!(counter.take()?, 1);
    /// # Ok::<(), netmesh_cipher::CipherError>(())
    /// ```
    pub fn take_single(&self) -> Result<u64, CipherError> {
        self.lease(1).map(|(first, _)| first)
    }

    /// `take` when the most recent lease is not this counter's or is used up.
    #[cold]
    #[inline(never)]
    fn take_cold(&self, slots: &[Slot; LEASE_SLOTS]) -> Result<u64, CipherError> {
        let id = self.shared.id;
        // This counter's slot, or else the least recently used one (evicting its lease:
        // at worst a gap in another counter's values).
        let index = slots
            .iter()
            .position(|slot| slot.get().id == id)
            .unwrap_or(LEASE_SLOTS - 1);
        let mut lease = slots[index].get();
        if !self.can_use(&lease) {
            let (first, end) = self.lease(COUNTER_LEASE)?;
            lease = Lease {
                id,
                next: first,
                end,
                epoch: first >> EPOCH_SHIFT,
            };
        }
        // Move to the front, shifting the more recent ones down one place.
        for i in (1..=index).rev() {
            slots[i].set(slots[i - 1].get());
        }
        let value = lease.next;
        slots[0].set(Lease {
            next: value + 1,
            ..lease
        });
        Ok(value)
    }

    /// Whether `lease` is this counter's, has values left, and no other thread has
    /// leased counters so far beyond it that the receiver may already have moved past it.
    #[inline]
    fn can_use(&self, lease: &Lease) -> bool {
        lease.id == self.shared.id
            && lease.next < lease.end
            && self.shared.epoch.load(Ordering::Relaxed) <= lease.epoch + 1
    }

    /// Takes up to `max` consecutive counters from the shared counter: `(first, end)`.
    fn lease(&self, max: u64) -> Result<(u64, u64), CipherError> {
        // A compare-and-swap loop rather than `fetch_add`: a failed `fetch_add` past the
        // end would wrap the atomic and a racing thread could be handed 0 again. The CAS
        // never stores beyond u64::MAX, and stores nothing once exhausted.
        //
        // Ordering: Relaxed is enough. Each value must be taken once, and read-modify-
        // writes of one atomic are totally ordered whatever the memory ordering; the
        // counter publishes no other memory.
        // `MAX_COUNTER + 1 == u64::MAX`: the sum never overflows.
        // A lease ends at a multiple of its size even when a single value taken before
        // it left `next` unaligned: senders judge from a counter alone whether it was
        // the last of its lease (netmesh-session's credit check does).
        let end_from = |first: u64| {
            let want = if max == COUNTER_LEASE {
                COUNTER_LEASE - first % COUNTER_LEASE
            } else {
                max
            };
            first + want.min(MAX_COUNTER + 1 - first)
        };
        let first = self
            .shared
            .next
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |next| {
                (next <= MAX_COUNTER).then(|| end_from(next))
            })
            .map_err(|_| CipherError::CounterExhausted)?;
        let end = end_from(first);
        let epoch = (end - 1) >> EPOCH_SHIFT;
        // Relaxed: a stale epoch only delays dropping another thread's lease, exactly as
        // a thread preempted between taking a counter and sending would.
        if self.shared.epoch.load(Ordering::Relaxed) < epoch {
            self.shared.epoch.fetch_max(epoch, Ordering::Relaxed);
        }
        Ok((first, end))
    }

    /// The value [`take`](Self::take) would hand out next on this thread: the next value
    /// of this thread's lease, or else the first value not yet leased (`u64::MAX` once
    /// every value is leased). Under concurrent use it may be stale as soon as it
    /// returns.
    #[must_use]
    pub fn peek(&self) -> u64 {
        let leased = LEASES.try_with(|slots| {
            slots
                .iter()
                .map(Slot::get)
                .find(|lease| self.can_use(lease))
                .map(|lease| lease.next)
        });
        match leased {
            Ok(Some(next)) => next,
            _ => self.shared.next.load(Ordering::Relaxed),
        }
    }

    /// Whether two handles share one counter.
    #[must_use]
    pub fn shares_with(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl Default for TxCounter {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for TxCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TxCounter")
            .field("next", &self.peek())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Barrier;
    use std::thread;

    use super::*;

    #[test]
    fn a_lease_after_a_single_value_ends_at_the_next_multiple_of_the_lease() {
        let counter = TxCounter::new();
        let single = |c: &TxCounter| {
            let c = c.clone();
            thread::spawn(move || c.take_single()).join().unwrap()
        };
        assert_eq!(single(&counter), Ok(0));
        // This thread's lease is 1..16, not 1..17.
        let taken: Vec<u64> = (1..COUNTER_LEASE)
            .map(|_| counter.take().unwrap())
            .collect();
        assert_eq!(taken, (1..COUNTER_LEASE).collect::<Vec<_>>());
        assert_eq!(single(&counter), Ok(COUNTER_LEASE));
        // The next lease starts after that single value and ends at 32.
        assert_eq!(counter.take(), Ok(COUNTER_LEASE + 1));
        assert_eq!(single(&counter), Ok(2 * COUNTER_LEASE));
    }

    #[test]
    fn clones_share_and_new_counters_are_independent() {
        let a = TxCounter::new();
        let b = a.clone();
        let c = TxCounter::default();
        assert!(a.shares_with(&b));
        assert!(!a.shares_with(&c));
        assert_eq!(a.take(), Ok(0));
        assert_eq!(b.take(), Ok(1));
        assert_eq!(c.take(), Ok(0));
        assert_eq!(a.peek(), 2);
    }

    #[test]
    fn exhaustion_hands_out_the_last_three_then_fails_forever() {
        let counter = TxCounter::starting_at(MAX_COUNTER - 2);
        assert_eq!(counter.take(), Ok(MAX_COUNTER - 2));
        assert_eq!(counter.take(), Ok(MAX_COUNTER - 1));
        assert_eq!(counter.take(), Ok(MAX_COUNTER));
        for _ in 0..10 {
            assert_eq!(counter.take(), Err(CipherError::CounterExhausted));
            assert_eq!(counter.peek(), u64::MAX);
        }
    }

    #[test]
    fn starting_at_u64_max_is_exhausted() {
        let counter = TxCounter::starting_at(u64::MAX);
        assert_eq!(counter.take(), Err(CipherError::CounterExhausted));
        assert_eq!(counter.peek(), u64::MAX);
    }

    #[test]
    fn concurrent_exhaustion_hands_out_every_value_at_most_once_then_fails() {
        const THREADS: usize = 8;
        const REMAINING: u64 = 5_000;
        let counter = TxCounter::starting_at(MAX_COUNTER - (REMAINING - 1));
        let barrier = Barrier::new(THREADS);
        let taken: Vec<Vec<u64>> = thread::scope(|scope| {
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        let mut mine = Vec::new();
                        let mut failures = 0;
                        // Keep hammering well past exhaustion: no failure may disturb it.
                        while failures < 2_000 {
                            match counter.take() {
                                Ok(value) => mine.push(value),
                                Err(error) => {
                                    assert_eq!(error, CipherError::CounterExhausted);
                                    failures += 1;
                                }
                            }
                        }
                        mine
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let all: Vec<u64> = taken.into_iter().flatten().collect();
        let unique: BTreeSet<u64> = all.iter().copied().collect();
        assert_eq!(all.len(), unique.len(), "a counter was handed out twice");
        let range = MAX_COUNTER - (REMAINING - 1)..=MAX_COUNTER;
        assert!(unique.iter().all(|value| range.contains(value)));
        // Only a lease dropped as stale leaves values unused; each thread drops at most
        // one lease per 256 values leased after it, so most of the range is used.
        assert!(unique.len() as u64 > REMAINING / 2, "{} used", unique.len());
        assert_eq!(counter.peek(), u64::MAX);
    }

    #[test]
    fn one_thread_gets_consecutive_values_across_leases_handles_and_counters() {
        let a = TxCounter::new();
        let b = TxCounter::starting_at(1_000);
        let a2 = a.clone();
        for i in 0..3 * COUNTER_LEASE {
            assert_eq!(a.take(), Ok(2 * i));
            assert_eq!(b.take(), Ok(1_000 + i));
            assert_eq!(a2.take(), Ok(2 * i + 1));
            assert_eq!(a.peek(), 2 * i + 2);
        }
    }

    #[test]
    fn more_counters_than_lease_slots_stay_unique_and_increasing() {
        let counters: Vec<TxCounter> = (0..LEASE_SLOTS as u64 + 2)
            .map(|_| TxCounter::new())
            .collect();
        let mut last = vec![None; counters.len()];
        for _ in 0..200 {
            for (counter, last) in counters.iter().zip(&mut last) {
                let value = counter.take().unwrap();
                // An evicted lease is skipped, never handed out again.
                assert!(last.is_none_or(|previous| value > previous));
                *last = Some(value);
            }
        }
    }

    #[test]
    fn other_threads_values_come_in_leases() {
        let counter = TxCounter::new();
        assert_eq!(counter.take(), Ok(0));
        let theirs: Vec<u64> = thread::scope(|scope| {
            scope
                .spawn(|| (0..3).map(|_| counter.take().unwrap()).collect())
                .join()
                .unwrap()
        });
        assert_eq!(theirs, [16, 17, 18]);
        assert_eq!(counter.take(), Ok(1), "this thread's lease is still fresh");
        assert_eq!(counter.peek(), 2);
    }

    #[test]
    fn a_lease_left_far_behind_is_dropped_not_used() {
        let counter = TxCounter::new();
        assert_eq!(counter.take(), Ok(0));
        // Another thread leases 600 counters: this thread's lease [0, 16) now lies more
        // than 512 below the highest leased counter.
        thread::scope(|scope| {
            scope.spawn(|| {
                for _ in 0..600 {
                    counter.take().unwrap();
                }
            });
        });
        let next = counter.take().unwrap();
        assert!(next >= 16 * 38, "a stale lease was used: {next}");
    }

    #[test]
    fn a_lease_never_outlives_its_counter() {
        for _ in 0..100 {
            let first = TxCounter::new();
            assert_eq!(first.take(), Ok(0));
            drop(first);
            // The new counter may sit where the old one was: it still starts at 0.
            let second = TxCounter::new();
            assert_eq!(second.take(), Ok(0));
        }
    }

    #[test]
    fn values_past_exhaustion_fail_on_every_thread() {
        let counter = TxCounter::starting_at(MAX_COUNTER - 20);
        let mut mine: Vec<u64> = (0..3).map(|_| counter.take().unwrap()).collect();
        let theirs: Vec<u64> = thread::scope(|scope| {
            scope
                .spawn(|| {
                    let taken: Vec<u64> = std::iter::from_fn(|| counter.take().ok()).collect();
                    assert_eq!(counter.take(), Err(CipherError::CounterExhausted));
                    taken
                })
                .join()
                .unwrap()
        });
        mine.extend(std::iter::from_fn(|| counter.take().ok()));
        assert_eq!(counter.take(), Err(CipherError::CounterExhausted));
        mine.extend(theirs);
        mine.sort_unstable();
        let expected: Vec<u64> = (MAX_COUNTER - 20..=MAX_COUNTER).collect();
        assert_eq!(mine, expected);
    }

    #[test]
    fn debug_shows_the_next_value() {
        let counter = TxCounter::starting_at(41);
        assert_eq!(format!("{counter:?}"), "TxCounter { next: 41 }");
    }
}
