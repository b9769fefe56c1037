//! Model checks of the two lock-free structures under loom: every interleaving of 2-3
//! threads (up to a preemption bound of 3, or 2 for the largest model), with leases of 2 counters and epochs of 2
//! counters (`COUNTER_LEASE` and the epoch shift are smaller under `cfg(loom)`).
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p netmesh-cipher --test loom --release`;
//! `LOOM_MAX_PREEMPTIONS` overrides the bound.
//!
//! Every racing actor is a spawned thread and the model's own thread only joins them:
//! loom explored no interleaving of an action the main thread takes right after a spawn
//! (a seeded bug in the seqlock went unnoticed that way).
#![cfg(loom)]
#![allow(clippy::unwrap_used)]

use loom::sync::Arc;
use loom::thread::{self, JoinHandle};
use netmesh_cipher::{CipherError, ReplayWindow, TxCounter, COUNTER_LEASE, MAX_COUNTER};

fn model(f: impl Fn() + Sync + Send + 'static) {
    model_bounded(3, f);
}

/// `model` with another preemption bound (unless `LOOM_MAX_PREEMPTIONS` sets one).
fn model_bounded(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(preemptions);
    }
    builder.check(f);
}

/// Runs `f` on a new thread with its own handle to `shared`.
fn on<S: Clone + Send + 'static, R: Send + 'static>(
    shared: &S,
    f: impl FnOnce(S) -> R + Send + 'static,
) -> JoinHandle<R> {
    let shared = shared.clone();
    thread::spawn(move || f(shared))
}

#[test]
fn racing_commits_of_one_counter_admit_it_once() {
    model(|| {
        let window = Arc::new(ReplayWindow::new());
        let a = on(&window, |w| w.commit(7));
        let b = on(&window, |w| w.commit(7));
        let results = [a.join().unwrap(), b.join().unwrap()];
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "{results:?}"
        );
        assert!(results.contains(&Err(CipherError::Replayed { counter: 7 })));
        assert_eq!(window.check(7), Err(CipherError::Replayed { counter: 7 }));
    });
}

/// A lock-free check racing commits: a counter never committed never looks seen, and a
/// counter committed before the checker saw the window move never looks new.
#[test]
fn checks_racing_commits_never_misjudge() {
    model(|| {
        let window = Arc::new(ReplayWindow::new());
        let writer = on(&window, |w| {
            w.commit(1).unwrap();
            w.commit(3).unwrap();
        });
        let checker = on(&window, |w| {
            let never = w.check(2);
            assert!(
                !matches!(never, Err(CipherError::Replayed { .. })),
                "uncommitted 2 looked seen: {never:?}"
            );
            if w.highest() == Some(3) {
                // commit(1) returned before commit(3) published its highest.
                assert_eq!(w.check(1), Err(CipherError::Replayed { counter: 1 }));
            }
        });
        writer.join().unwrap();
        checker.join().unwrap();
        assert_eq!(window.check(2), Ok(()));
        assert_eq!(window.check(3), Err(CipherError::Replayed { counter: 3 }));
    });
}

/// A commit that moves the window a whole window's width (clearing every word) racing a
/// check of a counter it pushes out.
#[test]
fn a_check_racing_a_jump_never_sees_an_old_counter_as_new() {
    model(|| {
        let window = Arc::new(ReplayWindow::new());
        window.commit(5).unwrap();
        let jumper = on(&window, |w| w.commit(5 + 1025));
        let checker = on(&window, |w| w.check(5));
        assert_eq!(jumper.join().unwrap(), Ok(()));
        // 5 was committed before either thread started: a duplicate until the jump
        // pushes it out of the window, then too old; never new.
        let checked = checker.join().unwrap();
        assert!(
            matches!(
                checked,
                Err(CipherError::Replayed { counter: 5 } | CipherError::TooOld { counter: 5, .. })
            ),
            "{checked:?}"
        );
    });
}

/// Three threads: a jump, a commit inside the old window and a check of that commit's
/// counter (preemption bound 2: bound 3 takes minutes).
#[test]
fn a_jump_a_commit_and_a_check() {
    model_bounded(2, || {
        let window = Arc::new(ReplayWindow::new());
        window.commit(5).unwrap();
        let jumper = on(&window, |w| w.commit(5 + 1025));
        let committer = on(&window, |w| w.commit(6));
        let checker = on(&window, |w| w.check(6));
        assert_eq!(jumper.join().unwrap(), Ok(()));
        let six = committer.join().unwrap();
        // 6 is admitted if it came before the jump, and refused as too old after it.
        assert!(
            matches!(six, Ok(()) | Err(CipherError::TooOld { counter: 6, .. })),
            "commit(6): {six:?}"
        );
        let checked = checker.join().unwrap();
        assert!(
            !matches!(checked, Err(CipherError::Replayed { .. })) || six.is_ok(),
            "check(6) saw a commit that was refused: {checked:?}"
        );
        assert_eq!(window.highest(), Some(5 + 1025));
    });
}

fn take(counter: &TxCounter, n: u64) -> JoinHandle<Vec<u64>> {
    on(counter, move |c| {
        (0..n).map(|_| c.take().unwrap()).collect()
    })
}

/// Values taken on several threads from clones of one counter are all different, and
/// each thread's increase.
#[test]
fn values_across_threads_are_never_reused() {
    model(|| {
        let counter = TxCounter::new();
        let handles = [
            take(&counter, COUNTER_LEASE + 1),
            take(&counter, 2),
            take(&counter, 1),
        ];
        let mut all = Vec::new();
        for handle in handles {
            let values = handle.join().unwrap();
            assert!(values.windows(2).all(|w| w[0] < w[1]), "{values:?}");
            all.extend(values);
        }
        let len = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), len, "a value was handed out twice");
    });
}

/// A thread whose lease went stale while another leased far ahead drops it: its next
/// value is either still from its lease (it read the epoch before it moved) or new, and
/// never one the other thread had.
#[test]
fn a_stale_lease_is_dropped_or_used_but_never_reused() {
    model(|| {
        let counter = TxCounter::new();
        let sleeper = on(&counter, |c| {
            let first = c.take().unwrap();
            let second = c.take().unwrap();
            (first, second)
        });
        let runner = take(&counter, 3 * COUNTER_LEASE);
        let (first, second) = sleeper.join().unwrap();
        let theirs = runner.join().unwrap();
        assert!(second > first, "{first} {second}");
        assert!(!theirs.contains(&first) && !theirs.contains(&second));
        // The runner leased 3 leases: if the sleeper's lease came first, it is 3 leases
        // (3 epochs) behind the highest, stale, and its second value is not from it.
        if first == 0 && theirs.iter().all(|&v| v > second) {
            assert!(second == 1 || second >= 4 * COUNTER_LEASE, "{second}");
        }
    });
}

/// Three threads race for the last two values: each is handed out at most once, and
/// every thread then fails.
#[test]
fn exhaustion_hands_out_the_last_values_once() {
    model(|| {
        let counter = TxCounter::starting_at(MAX_COUNTER - 1);
        let handles: Vec<_> = (0..3)
            .map(|_| {
                on(&counter, |c| {
                    let mine: Vec<u64> = std::iter::from_fn(|| c.take().ok()).collect();
                    assert_eq!(c.take(), Err(CipherError::CounterExhausted));
                    mine
                })
            })
            .collect();
        let mut all: Vec<u64> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        all.sort_unstable();
        assert_eq!(all, [MAX_COUNTER - 1, MAX_COUNTER]);
    });
}
