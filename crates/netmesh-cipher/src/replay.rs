//! The receive-side replay window of WIRE.md.

use core::fmt;
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::{CipherError, REPLAY_WINDOW_SIZE};

/// Bitmap words: one bit per counter of the window, 1024 bits / 64 bits per word.
const WORDS: usize = 16;
const _: () = assert!(WORDS as u64 * 64 == REPLAY_WINDOW_SIZE);

/// Remembers which of the last [`REPLAY_WINDOW_SIZE`] counters a receiver has accepted,
/// so that each counter is accepted at most once.
///
/// With `highest` the highest counter accepted so far, a counter is accepted when it is
/// not `u64::MAX`, not accepted before, and within `highest - 1023 ..= highest + 1025`.
/// Before anything has been accepted the window admits `0 ..= 1024` (as if
/// `highest + 1` were 0). A refused counter changes nothing.
///
/// [`check`](Self::check) only reads, without a lock; [`commit`](Self::commit) checks and
/// records in one step under a lock, so two threads committing the same counter get
/// exactly one `Ok`.
/// Commit only after the packet's tag has verified.
///
/// # Examples
///
/// ```
/// use netmesh_cipher::{CipherError, ReplayWindow};
///
/// let window = ReplayWindow::new();
/// window.commit(5)?;
/// window.commit(3)?;
/// assert_eq!(window.commit(5), Err(CipherError::Replayed { counter: 5 }));
/// assert_eq!(window.highest(), Some(5));
/// assert_eq!(
///     window.check(2000),
///     Err(CipherError::TooFarAhead { counter: 2000, highest: 5 })
/// );
/// # Ok::<(), CipherError>(())
/// ```
pub struct ReplayWindow {
    /// Serialises commits. Checks take no lock: they read the atomics below under the
    /// sequence counter, so the receive path's read-only check costs loads only.
    writer: Mutex<()>,
    /// Odd while a commit is updating `highest` and `seen` (a seqlock).
    sequence: AtomicU64,
    /// The highest counter accepted, [`NOTHING_YET`] until the first commit.
    highest: AtomicU64,
    /// Bit `c % 1024` is set when counter `c` (within the window) has been accepted.
    /// Indexing by the counter itself, rather than by distance from `highest`, means
    /// advancing the window clears the bits it passes over instead of shifting them all.
    seen: [AtomicU64; WORDS],
}

/// `u64::MAX` is never accepted, so it can stand for "nothing accepted yet".
const NOTHING_YET: u64 = u64::MAX;

/// How often a check retries its lock-free read while commits race it, before it takes
/// the lock instead.
const OPTIMISTIC_READS: usize = 4;

impl Default for ReplayWindow {
    fn default() -> Self {
        Self {
            writer: Mutex::new(()),
            sequence: AtomicU64::new(0),
            highest: AtomicU64::new(NOTHING_YET),
            seen: Default::default(),
        }
    }
}

impl ReplayWindow {
    /// An empty window.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `counter` would be accepted now. Changes nothing and takes no lock; another
    /// thread may commit it before this caller does, so admit with
    /// [`commit`](Self::commit).
    ///
    /// # Errors
    ///
    /// - [`CipherError::CounterReserved`] for `u64::MAX`,
    /// - [`CipherError::TooFarAhead`] when `counter > highest + 1025` (or `counter > 1024`
    ///   before the first commit),
    /// - [`CipherError::TooOld`] when `counter + 1024 <= highest`,
    /// - [`CipherError::Replayed`] when `counter` has been accepted.
    pub fn check(&self, counter: u64) -> Result<(), CipherError> {
        let (word, mask) = slot(counter);
        for _ in 0..OPTIMISTIC_READS {
            // Ordering: the Acquire load and the Acquire fence pair with the commit's
            // Release fence and Release store; if any value read below came from a commit
            // in progress, the second sequence load sees it changed.
            let before = self.sequence.load(Ordering::Acquire);
            if before % 2 == 0 {
                let highest = self.highest.load(Ordering::Relaxed);
                let bits = self.seen[word].load(Ordering::Relaxed);
                fence(Ordering::Acquire);
                if self.sequence.load(Ordering::Relaxed) == before {
                    return decide(highest, bits & mask != 0, counter);
                }
            }
            core::hint::spin_loop();
        }
        let _writer = self.lock();
        self.decide_locked(counter)
    }

    /// Checks `counter` and, if acceptable, records it, in one step with respect to other
    /// threads. A refused counter leaves the window unchanged.
    ///
    /// # Errors
    ///
    /// As [`check`](Self::check).
    pub fn commit(&self, counter: u64) -> Result<(), CipherError> {
        let _writer = self.lock();
        self.decide_locked(counter)?;
        let highest = self.highest.load(Ordering::Relaxed);
        let sequence = self.sequence.load(Ordering::Relaxed);
        self.sequence
            .store(sequence.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        if highest == NOTHING_YET || counter > highest {
            if highest != NOTHING_YET && counter - highest < REPLAY_WINDOW_SIZE {
                // Counters highest+1 ..= counter enter the window; their bits last
                // belonged to counters 1024 lower, which leave it.
                for entering in highest + 1..=counter {
                    self.set_seen(entering, false);
                }
            } else {
                for word in &self.seen {
                    word.store(0, Ordering::Relaxed);
                }
            }
            self.highest.store(counter, Ordering::Relaxed);
        }
        self.set_seen(counter, true);
        self.sequence
            .store(sequence.wrapping_add(2), Ordering::Release);
        Ok(())
    }

    /// The highest counter accepted so far, `None` before the first.
    #[must_use]
    pub fn highest(&self) -> Option<u64> {
        Some(self.highest.load(Ordering::Acquire)).filter(|&h| h != NOTHING_YET)
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        // No code under this lock can panic, and the window is consistent after every
        // commit anyway, so a poisoned lock is simply recovered.
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// [`decide`] on the current state; the caller holds the writer lock, so the state
    /// cannot change underneath.
    fn decide_locked(&self, counter: u64) -> Result<(), CipherError> {
        let (word, mask) = slot(counter);
        let bits = self.seen[word].load(Ordering::Relaxed);
        decide(
            self.highest.load(Ordering::Relaxed),
            bits & mask != 0,
            counter,
        )
    }

    /// Only called with the writer lock held.
    fn set_seen(&self, counter: u64, seen: bool) {
        let (word, mask) = slot(counter);
        let bits = self.seen[word].load(Ordering::Relaxed);
        let bits = if seen { bits | mask } else { bits & !mask };
        self.seen[word].store(bits, Ordering::Relaxed);
    }
}

/// The window rules, given the highest accepted counter ([`NOTHING_YET`] if none) and
/// whether `counter`'s bit is set.
fn decide(highest: u64, seen: bool, counter: u64) -> Result<(), CipherError> {
    if counter == u64::MAX {
        return Err(CipherError::CounterReserved { counter });
    }
    if highest == NOTHING_YET {
        return if counter > REPLAY_WINDOW_SIZE {
            Err(CipherError::TooFarAhead {
                counter,
                highest: 0,
            })
        } else {
            Ok(())
        };
    }
    if counter > highest {
        // highest <= u64::MAX - 1, so counter - highest cannot overflow.
        if counter - highest > REPLAY_WINDOW_SIZE + 1 {
            Err(CipherError::TooFarAhead { counter, highest })
        } else {
            Ok(())
        }
    } else if highest - counter >= REPLAY_WINDOW_SIZE {
        Err(CipherError::TooOld { counter, highest })
    } else if seen {
        Err(CipherError::Replayed { counter })
    } else {
        Ok(())
    }
}

fn slot(counter: u64) -> (usize, u64) {
    let bit = counter % REPLAY_WINDOW_SIZE;
    // bit < 1024, so bit / 64 < 16 fits any usize.
    #[allow(clippy::cast_possible_truncation)]
    let word = (bit / 64) as usize;
    (word, 1 << (bit % 64))
}

impl fmt::Debug for ReplayWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayWindow")
            .field("highest", &self.highest())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};
    use std::thread;

    use super::*;

    const W: u64 = REPLAY_WINDOW_SIZE;

    /// A window whose highest accepted counter is `highest` (and nothing else).
    fn window_at(highest: u64) -> ReplayWindow {
        let window = ReplayWindow::new();
        window.highest.store(highest, Ordering::Relaxed);
        window.set_seen(highest, true);
        assert_eq!(window.highest(), Some(highest));
        window
    }

    #[test]
    fn first_packet_counter_zero_is_accepted() {
        let window = ReplayWindow::new();
        assert_eq!(window.highest(), None);
        assert_eq!(window.commit(0), Ok(()));
        assert_eq!(window.highest(), Some(0));
        assert_eq!(window.commit(0), Err(CipherError::Replayed { counter: 0 }));
    }

    #[test]
    fn first_packet_may_be_up_to_1024() {
        let window = ReplayWindow::new();
        assert_eq!(
            window.commit(W + 1),
            Err(CipherError::TooFarAhead {
                counter: W + 1,
                highest: 0
            })
        );
        assert_eq!(window.highest(), None);
        assert_eq!(window.commit(W), Ok(()));
        // Everything below the first packet inside the window is still new.
        assert_eq!(window.commit(1), Ok(()));
        assert_eq!(
            window.commit(0),
            Err(CipherError::TooOld {
                counter: 0,
                highest: W
            })
        );
    }

    #[test]
    fn first_packet_with_a_huge_counter_is_too_far_ahead() {
        let window = ReplayWindow::new();
        assert_eq!(
            window.commit(1 << 40),
            Err(CipherError::TooFarAhead {
                counter: 1 << 40,
                highest: 0
            })
        );
        assert_eq!(window.highest(), None);
    }

    #[test]
    fn exactly_1024_ahead_of_highest_plus_one_is_accepted() {
        let window = window_at(5000);
        let edge = 5000 + 1 + W;
        assert_eq!(
            window.check(edge + 1),
            Err(CipherError::TooFarAhead {
                counter: edge + 1,
                highest: 5000
            })
        );
        assert_eq!(window.commit(edge), Ok(()));
        assert_eq!(window.highest(), Some(edge));
        // The jump cleared the whole window: the old highest has left it.
        assert_eq!(
            window.commit(5000),
            Err(CipherError::TooOld {
                counter: 5000,
                highest: edge
            })
        );
    }

    #[test]
    fn exactly_1024_behind_highest_is_too_old() {
        let window = window_at(5000);
        assert_eq!(
            window.commit(5000 - W),
            Err(CipherError::TooOld {
                counter: 5000 - W,
                highest: 5000
            })
        );
        assert_eq!(window.commit(5000 - W + 1), Ok(()));
        assert_eq!(
            window.commit(5000 - W + 1),
            Err(CipherError::Replayed {
                counter: 5000 - W + 1
            })
        );
    }

    #[test]
    fn u64_max_is_reserved_even_when_in_range() {
        let window = window_at(u64::MAX - 1);
        assert_eq!(
            window.commit(u64::MAX),
            Err(CipherError::CounterReserved { counter: u64::MAX })
        );
        assert_eq!(
            ReplayWindow::new().check(u64::MAX),
            Err(CipherError::CounterReserved { counter: u64::MAX })
        );
        // The top of the counter space keeps working for the rest of the window.
        assert_eq!(window.commit(u64::MAX - 2), Ok(()));
        assert_eq!(window.highest(), Some(u64::MAX - 1));
    }

    #[test]
    fn commit_after_small_jump_clears_only_the_bits_that_left() {
        let window = window_at(2000);
        window.commit(1990).unwrap();
        // 1990 + 1024 = 3014: advancing to 3013 keeps 1990 inside, 3014 pushes it out.
        window.commit(3013).unwrap();
        assert_eq!(
            window.check(1990),
            Err(CipherError::Replayed { counter: 1990 })
        );
        window.commit(3014).unwrap();
        assert_eq!(
            window.check(1990),
            Err(CipherError::TooOld {
                counter: 1990,
                highest: 3014
            })
        );
        // Bit 1990 % 1024 now belongs to counter 3014, which is seen; 2014 reuses no bit
        // set by an older counter.
        assert_eq!(window.check(2014), Ok(()));
    }

    #[test]
    fn reverse_refill_accepts_each_counter_once() {
        let window = window_at(W - 1);
        for counter in (0..W - 1).rev() {
            assert_eq!(window.commit(counter), Ok(()), "{counter}");
        }
        for counter in 0..W {
            assert_eq!(
                window.check(counter),
                Err(CipherError::Replayed { counter })
            );
        }
    }

    #[test]
    fn a_refused_commit_changes_nothing() {
        let window = window_at(3000);
        window.commit(2500).unwrap();
        let _ = window.commit(9000);
        let _ = window.commit(100);
        let _ = window.commit(u64::MAX);
        let _ = window.commit(2500);
        assert_eq!(window.highest(), Some(3000));
        assert_eq!(window.check(2501), Ok(()));
        assert_eq!(
            window.check(2500),
            Err(CipherError::Replayed { counter: 2500 })
        );
    }

    #[test]
    fn racing_commits_of_one_counter_have_exactly_one_winner() {
        let window = Arc::new(ReplayWindow::new());
        let barrier = Arc::new(Barrier::new(2));
        for counter in 0..2_000u64 {
            let results: Vec<Result<(), CipherError>> = (0..2)
                .map(|_| {
                    let window = Arc::clone(&window);
                    let barrier = Arc::clone(&barrier);
                    thread::spawn(move || {
                        barrier.wait();
                        window.commit(counter)
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|handle| handle.join().unwrap())
                .collect();
            let wins = results.iter().filter(|r| r.is_ok()).count();
            assert_eq!(wins, 1, "counter {counter}: {results:?}");
            assert!(results.contains(&Err(CipherError::Replayed { counter })));
        }
    }

    #[test]
    fn window_is_send_sync_and_debug_shows_highest() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ReplayWindow>();
        let window = window_at(7);
        assert_eq!(
            format!("{window:?}"),
            "ReplayWindow { highest: Some(7), .. }"
        );
    }

    #[test]
    fn lock_free_checks_racing_commits_never_misjudge() {
        // One thread commits every even counter; another checks counters just below the
        // newest it has seen. Odd counters were never committed and must never look
        // seen; even ones below the newest were committed and must never look new.
        let window = Arc::new(ReplayWindow::new());
        let writer = {
            let window = Arc::clone(&window);
            thread::spawn(move || {
                for counter in (0..400_000u64).step_by(2) {
                    window.commit(counter).unwrap();
                }
            })
        };
        let mut checks = 0u64;
        while !writer.is_finished() || checks == 0 {
            let Some(highest) = window.highest() else {
                continue;
            };
            for back in 1..64 {
                let Some(counter) = highest.checked_sub(back) else {
                    break;
                };
                let result = window.check(counter);
                if counter % 2 == 1 {
                    assert!(
                        !matches!(result, Err(CipherError::Replayed { .. })),
                        "never-committed {counter} looked seen"
                    );
                } else {
                    assert!(result.is_err(), "committed {counter} looked new");
                }
                checks += 1;
            }
        }
        writer.join().unwrap();
        assert!(checks > 0);
    }
}
