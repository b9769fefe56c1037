//! The receive-side replay window of WIRE.md.

use core::fmt;
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
/// [`check`](Self::check) only reads; [`commit`](Self::commit) checks and records in one
/// step under a lock, so two threads committing the same counter get exactly one `Ok`.
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
/// assert_eq!(window.commit(5), Err(CipherError::Duplicate { counter: 5 }));
/// assert_eq!(window.highest(), Some(5));
/// assert_eq!(
///     window.check(2000),
///     Err(CipherError::TooFarAhead { counter: 2000, highest: 5 })
/// );
/// # Ok::<(), CipherError>(())
/// ```
#[derive(Default)]
pub struct ReplayWindow {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The highest counter accepted, `None` until the first commit.
    highest: Option<u64>,
    /// Bit `c % 1024` is set when counter `c` (within the window) has been accepted.
    /// Indexing by the counter itself, rather than by distance from `highest`, means
    /// advancing the window clears the bits it passes over instead of shifting them all.
    seen: [u64; WORDS],
}

impl ReplayWindow {
    /// An empty window.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `counter` would be accepted now. Changes nothing; another thread may
    /// commit it before this caller does, so admit with [`commit`](Self::commit).
    ///
    /// # Errors
    ///
    /// - [`CipherError::CounterReserved`] for `u64::MAX`,
    /// - [`CipherError::TooFarAhead`] when `counter > highest + 1025` (or `counter > 1024`
    ///   before the first commit),
    /// - [`CipherError::TooOld`] when `counter + 1024 <= highest`,
    /// - [`CipherError::Duplicate`] when `counter` has been accepted.
    pub fn check(&self, counter: u64) -> Result<(), CipherError> {
        self.lock().check(counter)
    }

    /// Checks `counter` and, if acceptable, records it, in one step with respect to other
    /// threads. A refused counter leaves the window unchanged.
    ///
    /// # Errors
    ///
    /// As [`check`](Self::check).
    pub fn commit(&self, counter: u64) -> Result<(), CipherError> {
        self.lock().commit(counter)
    }

    /// The highest counter accepted so far, `None` before the first.
    #[must_use]
    pub fn highest(&self) -> Option<u64> {
        self.lock().highest
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No code under this lock can panic, and the state is consistent after every
        // step anyway, so a poisoned lock is simply recovered.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    fn check(&self, counter: u64) -> Result<(), CipherError> {
        if counter == u64::MAX {
            return Err(CipherError::CounterReserved { counter });
        }
        let Some(highest) = self.highest else {
            return if counter > REPLAY_WINDOW_SIZE {
                Err(CipherError::TooFarAhead {
                    counter,
                    highest: 0,
                })
            } else {
                Ok(())
            };
        };
        if counter > highest {
            // highest <= u64::MAX - 1, so counter - highest cannot overflow.
            if counter - highest > REPLAY_WINDOW_SIZE + 1 {
                Err(CipherError::TooFarAhead { counter, highest })
            } else {
                Ok(())
            }
        } else if highest - counter >= REPLAY_WINDOW_SIZE {
            Err(CipherError::TooOld { counter, highest })
        } else if self.is_seen(counter) {
            Err(CipherError::Duplicate { counter })
        } else {
            Ok(())
        }
    }

    fn commit(&mut self, counter: u64) -> Result<(), CipherError> {
        self.check(counter)?;
        match self.highest {
            Some(highest) if counter <= highest => {}
            Some(highest) => {
                // Counters highest+1 ..= counter enter the window; their bits last belonged
                // to counters 1024 lower, which leave it.
                if counter - highest >= REPLAY_WINDOW_SIZE {
                    self.seen = [0; WORDS];
                } else {
                    for entering in highest + 1..=counter {
                        self.set_seen(entering, false);
                    }
                }
                self.highest = Some(counter);
            }
            None => self.highest = Some(counter),
        }
        self.set_seen(counter, true);
        Ok(())
    }

    fn slot(counter: u64) -> (usize, u64) {
        let bit = counter % REPLAY_WINDOW_SIZE;
        // bit < 1024, so bit / 64 < 16 fits any usize.
        #[allow(clippy::cast_possible_truncation)]
        let word = (bit / 64) as usize;
        (word, 1 << (bit % 64))
    }

    fn is_seen(&self, counter: u64) -> bool {
        let (word, mask) = Self::slot(counter);
        self.seen[word] & mask != 0
    }

    fn set_seen(&mut self, counter: u64, seen: bool) {
        let (word, mask) = Self::slot(counter);
        if seen {
            self.seen[word] |= mask;
        } else {
            self.seen[word] &= !mask;
        }
    }
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
        let window = ReplayWindow {
            state: Mutex::new(State {
                highest: Some(highest),
                seen: [0; WORDS],
            }),
        };
        window.state.lock().unwrap().set_seen(highest, true);
        assert_eq!(window.highest(), Some(highest));
        window
    }

    #[test]
    fn first_packet_counter_zero_is_accepted() {
        let window = ReplayWindow::new();
        assert_eq!(window.highest(), None);
        assert_eq!(window.commit(0), Ok(()));
        assert_eq!(window.highest(), Some(0));
        assert_eq!(window.commit(0), Err(CipherError::Duplicate { counter: 0 }));
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
            Err(CipherError::Duplicate {
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
            Err(CipherError::Duplicate { counter: 1990 })
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
                Err(CipherError::Duplicate { counter })
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
            Err(CipherError::Duplicate { counter: 2500 })
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
            assert!(results.contains(&Err(CipherError::Duplicate { counter })));
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
}
