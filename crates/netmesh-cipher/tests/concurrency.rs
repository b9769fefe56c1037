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

#[test]
fn shared_counter_hands_each_value_to_exactly_one_encryption() {
    for threads in [2, 4, 8] {
        let counter = TxCounter::new();
        let mut used = encrypt_concurrently(threads, &counter, PER_THREAD);
        let total = threads * PER_THREAD;
        assert_eq!(used.len(), total);
        used.sort_unstable();
        let expected: Vec<u64> = (0..total as u64).collect();
        assert_eq!(used, expected, "{threads} threads");
        assert_eq!(counter.peek(), total as u64);
    }
}

#[test]
fn concurrent_encryption_at_the_end_uses_exactly_the_remaining_counters() {
    let remaining = 3_000u64;
    let counter = TxCounter::starting_at(MAX_COUNTER - (remaining - 1));
    // 8 threads x 1000 attempts: far more attempts than counters left.
    let mut used = encrypt_concurrently(8, &counter, 1_000);
    used.sort_unstable();
    let expected: Vec<u64> = (MAX_COUNTER - (remaining - 1)..=MAX_COUNTER).collect();
    assert_eq!(used, expected);
    assert_eq!(counter.peek(), u64::MAX);
}
