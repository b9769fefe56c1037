//! Many threads, one transmit counter: every nonce is used exactly once.

use std::sync::Barrier;
use std::thread;

use netmesh_cipher::{CipherError, PacketCipher, TxCounter, MAX_COUNTER};

const KEY: [u8; 32] = [0x5c; 32];
const PER_THREAD: usize = 100_000;

/// Encrypts empty payloads from `threads` ciphers sharing one counter and returns every
/// counter they were given.
fn encrypt_concurrently(threads: usize, counter: &TxCounter, per_thread: usize) -> Vec<u64> {
    let barrier = Barrier::new(threads);
    thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let cipher: PacketCipher = PacketCipher::with_counter(&KEY, 77, counter.clone());
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    let mut used = Vec::with_capacity(per_thread);
                    let mut empty = [];
                    for _ in 0..per_thread {
                        match cipher.seal_in_place_detached(b"aad", &mut empty) {
                            Ok((counter, _tag)) => used.push(counter),
                            Err(error) => {
                                assert_eq!(error, CipherError::CounterExhausted);
                            }
                        }
                    }
                    used
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().expect("encrypting thread panicked"))
            .collect()
    })
}

/// Sorts `used` and asserts no value appears twice.
fn assert_unique(used: &mut [u64], context: &str) {
    used.sort_unstable();
    if let Some(pair) = used.windows(2).find(|pair| pair[0] == pair[1]) {
        panic!("{context}: counter {} used twice", pair[0]);
    }
}

#[test]
fn shared_counter_hands_each_value_to_exactly_one_encryption() {
    for threads in [2, 4, 8] {
        let counter = TxCounter::new();
        let mut used = encrypt_concurrently(threads, &counter, PER_THREAD);
        assert_eq!(used.len(), threads * PER_THREAD);
        assert_unique(&mut used, &format!("{threads} threads"));
        // Every value came from a lease, all of which lie below the shared counter;
        // only leases dropped as stale leave values unused.
        assert!(used.iter().all(|&value| value < counter.peek()));
    }
}

#[test]
fn concurrent_encryption_at_the_end_never_reuses_or_wraps() {
    let remaining = 3_000u64;
    let counter = TxCounter::starting_at(MAX_COUNTER - (remaining - 1));
    // 8 threads x 1000 attempts: far more attempts than counters left.
    let mut used = encrypt_concurrently(8, &counter, 1_000);
    assert_unique(&mut used, "8 threads at the end");
    assert!(used
        .iter()
        .all(|&value| value >= MAX_COUNTER - (remaining - 1)));
    assert!(
        used.len() as u64 > remaining / 2,
        "only {} used",
        used.len()
    );
    assert_eq!(counter.peek(), u64::MAX);
}
