//! The shared transmit counter.

use core::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::{CipherError, MAX_COUNTER};

/// The transmit counter of one sending key: hands out each counter from its start to
/// [`MAX_COUNTER`] exactly once, then fails forever with
/// [`CipherError::CounterExhausted`].
///
/// A `TxCounter` is a handle: clones share one counter (every builder of a pool, on every
/// thread, takes its nonces from the same sequence), while two counters made with
/// [`new`](Self::new) or [`starting_at`](Self::starting_at) are independent. Never give
/// two independent counters to ciphers with the same key: they would reuse nonces.
///
/// # Examples
///
/// ```
/// use netmesh_cipher::TxCounter;
///
/// let counter = TxCounter::new();
/// let shared = counter.clone();
/// assert_eq!(counter.next()?, 0);
/// assert_eq!(shared.next()?, 1);
/// assert_eq!(counter.peek(), 2);
///
/// let independent = TxCounter::new();
/// assert_eq!(independent.next()?, 0);
/// # Ok::<(), netmesh_cipher::CipherError>(())
/// ```
#[derive(Clone, Default)]
pub struct TxCounter {
    /// The next counter to hand out; `u64::MAX` once `MAX_COUNTER` has been handed out.
    next: Arc<AtomicU64>,
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
    /// assert_eq!(counter.next(), Ok(MAX_COUNTER));
    /// assert_eq!(counter.next(), Err(CipherError::CounterExhausted));
    /// ```
    #[must_use]
    pub fn starting_at(first: u64) -> Self {
        Self {
            next: Arc::new(AtomicU64::new(first)),
        }
    }

    /// Reserves and returns the next counter. No value is ever returned twice, by this
    /// handle or any clone of it, and the counter never wraps.
    ///
    /// # Errors
    ///
    /// [`CipherError::CounterExhausted`] once [`MAX_COUNTER`] has been handed out, on this
    /// and every later call.
    #[inline]
    pub fn next(&self) -> Result<u64, CipherError> {
        // A compare-and-swap loop rather than `fetch_add`: with only one value of headroom
        // above MAX_COUNTER, failed `fetch_add`s would push the atomic past u64::MAX and
        // wrap it to 0, and a racing thread could then be handed 0 again. The CAS never
        // stores a value above u64::MAX, and stores nothing once exhausted. Uncontended it
        // costs one load and one `lock cmpxchg`, the same as one `lock xadd`.
        //
        // Ordering: Relaxed is enough. The only guarantee needed is that each value is
        // taken once, and read-modify-write operations on a single atomic are totally
        // ordered (its modification order) whatever the memory ordering. The counter
        // publishes no other memory: the nonce is derived from the returned value itself.
        self.next
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |next| {
                if next <= MAX_COUNTER {
                    Some(next + 1)
                } else {
                    None
                }
            })
            .map_err(|_| CipherError::CounterExhausted)
    }

    /// The value [`next`](Self::next) would try to hand out; `u64::MAX` once the counter
    /// is exhausted. Under concurrent use it may be stale as soon as it returns.
    #[inline]
    #[must_use]
    pub fn peek(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }

    /// Whether two handles share one counter.
    #[must_use]
    pub fn shares_with(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.next, &other.next)
    }
}

impl fmt::Debug for TxCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TxCounter")
            .field("next", &self.peek())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Barrier;
    use std::thread;

    use super::*;

    #[test]
    fn clones_share_and_new_counters_are_independent() {
        let a = TxCounter::new();
        let b = a.clone();
        let c = TxCounter::default();
        assert!(a.shares_with(&b));
        assert!(!a.shares_with(&c));
        assert_eq!(a.next(), Ok(0));
        assert_eq!(b.next(), Ok(1));
        assert_eq!(c.next(), Ok(0));
        assert_eq!(a.peek(), 2);
    }

    #[test]
    fn exhaustion_hands_out_the_last_three_then_fails_forever() {
        let counter = TxCounter::starting_at(MAX_COUNTER - 2);
        assert_eq!(counter.next(), Ok(MAX_COUNTER - 2));
        assert_eq!(counter.next(), Ok(MAX_COUNTER - 1));
        assert_eq!(counter.next(), Ok(MAX_COUNTER));
        for _ in 0..10 {
            assert_eq!(counter.next(), Err(CipherError::CounterExhausted));
            assert_eq!(counter.peek(), u64::MAX);
        }
    }

    #[test]
    fn starting_at_u64_max_is_exhausted() {
        let counter = TxCounter::starting_at(u64::MAX);
        assert_eq!(counter.next(), Err(CipherError::CounterExhausted));
        assert_eq!(counter.peek(), u64::MAX);
    }

    #[test]
    fn concurrent_exhaustion_hands_out_exactly_the_remaining_range() {
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
                            match counter.next() {
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
        let expected: BTreeSet<u64> = (MAX_COUNTER - (REMAINING - 1)..=MAX_COUNTER).collect();
        assert_eq!(unique, expected);
        assert_eq!(counter.peek(), u64::MAX);
    }

    #[test]
    fn debug_shows_the_next_value() {
        let counter = TxCounter::starting_at(41);
        assert_eq!(format!("{counter:?}"), "TxCounter { next: 41 }");
    }
}
