//! The replay window against a naive model: a set of every accepted counter and the
//! highest one, with the rules of WIRE.md written out directly.

use std::collections::BTreeSet;

use netmesh_cipher::{CipherError, ReplayWindow, REPLAY_WINDOW_SIZE};
use proptest::prelude::*;

const W: u64 = REPLAY_WINDOW_SIZE;

#[derive(Default)]
struct Model {
    accepted: BTreeSet<u64>,
    highest: Option<u64>,
}

impl Model {
    fn check(&self, counter: u64) -> Result<(), CipherError> {
        if counter == u64::MAX {
            return Err(CipherError::CounterReserved { counter });
        }
        match self.highest {
            None if counter <= W => Ok(()),
            None => Err(CipherError::TooFarAhead {
                counter,
                highest: 0,
            }),
            Some(highest) if counter > highest.saturating_add(W + 1) => {
                Err(CipherError::TooFarAhead { counter, highest })
            }
            Some(highest) if counter.saturating_add(W) <= highest => {
                Err(CipherError::TooOld { counter, highest })
            }
            Some(_) if self.accepted.contains(&counter) => Err(CipherError::Replayed { counter }),
            Some(_) => Ok(()),
        }
    }

    fn commit(&mut self, counter: u64) -> Result<(), CipherError> {
        self.check(counter)?;
        self.accepted.insert(counter);
        self.highest = Some(self.highest.map_or(counter, |h| h.max(counter)));
        Ok(())
    }
}

/// splitmix64: a seeded generator, so failures replay exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The next counter to offer, biased towards the interesting places: just ahead,
/// reordered, duplicated, at each edge, and far off in both directions.
fn next_counter(rng: &mut Rng, model: &Model, start: u64) -> u64 {
    let h = model.highest.unwrap_or(start);
    match rng.below(12) {
        0..=3 => h.saturating_add(1 + rng.below(4)),
        4 => h.saturating_sub(rng.below(64)),
        5 => h.saturating_sub(rng.below(W + 64)),
        6 => h.saturating_add(rng.below(2 * W)),
        7 => h.saturating_add(W + rng.below(3)),
        8 => h.saturating_sub(W - 1 + rng.below(3)),
        9 => {
            // A duplicate of something accepted, if any.
            let n = model.accepted.len() as u64;
            let pick = usize::try_from(rng.below(n.max(1))).unwrap_or(0);
            model.accepted.iter().nth(pick).copied().unwrap_or(h)
        }
        10 => rng.next(),
        _ => u64::MAX - rng.below(3),
    }
}

fn run(seed: u64, steps: usize, start: u64) {
    let mut rng = Rng(seed);
    let window = ReplayWindow::new();
    let mut model = Model::default();
    // Start near `start` so the top of the counter space gets exercised too.
    if start > 0 {
        let first = start.min(W);
        assert_eq!(window.commit(first), model.commit(first));
    }
    for step in 0..steps {
        let counter = next_counter(&mut rng, &model, start);
        let expected = model.check(counter);
        assert_eq!(
            window.check(counter),
            expected,
            "seed {seed} step {step} check {counter}"
        );
        if rng.below(8) != 0 {
            assert_eq!(
                window.commit(counter),
                model.commit(counter),
                "seed {seed} step {step} commit {counter}"
            );
        }
        assert_eq!(window.highest(), model.highest, "seed {seed} step {step}");
        // Keep the model's set to what the window can still be asked about.
        if let Some(h) = model.highest {
            let floor = h.saturating_sub(W);
            model.accepted = model.accepted.split_off(&floor);
        }
    }
}

#[test]
fn long_seeded_sequences_match_the_model() {
    for seed in 0..16 {
        run(seed, 10_000, 0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_sequences_match_the_model(seed in any::<u64>(), steps in 1usize..3_000) {
        run(seed, steps, 0);
    }

    #[test]
    fn arbitrary_counters_match_the_model(
        counters in proptest::collection::vec(
            prop_oneof![0u64..3000, any::<u64>(), Just(u64::MAX), Just(W), Just(W + 1)],
            1..400,
        )
    ) {
        let window = ReplayWindow::new();
        let mut model = Model::default();
        for counter in counters {
            prop_assert_eq!(window.check(counter), model.check(counter));
            prop_assert_eq!(window.commit(counter), model.commit(counter));
            prop_assert_eq!(window.highest(), model.highest);
        }
    }
}
