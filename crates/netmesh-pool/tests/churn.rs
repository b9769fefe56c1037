//! Thread-local caches of dropped pools are reclaimed: churning pools never leaks.

// Test data: counters, indices and sizes here are small by construction.
#![allow(clippy::cast_possible_truncation)]

use std::sync::{Arc, Barrier};

use bytes::Bytes;
use netmesh_pool::ThreadLocalPool;
use netmesh_wire::PacketFlags;

#[test]
fn churning_10k_pools_on_two_threads_keeps_caches_bounded() {
    const POOLS: usize = 10_000;
    const LIVE: usize = 4;
    let barrier = Arc::new(Barrier::new(2));
    // Pools are made on the main thread and used on two workers, then dropped: the
    // workers never see the drop, so only their own sweeps can reclaim the caches.
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..2)
        .map(|_| std::sync::mpsc::sync_channel::<Arc<ThreadLocalPool>>(LIVE))
        .unzip();
    let workers: Vec<_> = receivers
        .into_iter()
        .map(|rx| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let mut peak = 0;
                let mut sequence = 0u64;
                for pool in rx {
                    sequence += 1;
                    let packet = pool.get().build(
                        0,
                        sequence,
                        &[Bytes::from_static(b"e")],
                        PacketFlags::NONE,
                    );
                    assert_eq!(packet.len(), 68 + 5 + 16);
                    drop(pool);
                    peak = peak.max(ThreadLocalPool::thread_cache_count());
                }
                barrier.wait();
                (peak, ThreadLocalPool::thread_cache_count())
            })
        })
        .collect();
    for i in 0..POOLS {
        let pool = Arc::new(ThreadLocalPool::new(2, &[i as u8; 32], i as u64));
        for sender in &senders {
            sender.send(Arc::clone(&pool)).unwrap();
        }
    }
    drop(senders);
    for worker in workers {
        let (peak, _) = worker.join().unwrap();
        // Without reclaiming, each worker would hold 10,000 caches.
        assert!(peak <= 64, "a worker held {peak} caches at once");
    }
}

#[test]
fn caches_of_dropped_pools_are_swept_within_a_bounded_number_of_operations() {
    let live = ThreadLocalPool::new(2, &[1; 32], 1);
    drop(live.get());
    // Use pools on this thread, drop them from another thread, then keep working here.
    let pools: Vec<Arc<ThreadLocalPool>> = (0..8)
        .map(|i| Arc::new(ThreadLocalPool::new(2, &[i; 32], 3)))
        .collect();
    for pool in &pools {
        drop(pool.get());
    }
    let with_dead = ThreadLocalPool::thread_cache_count();
    assert!(with_dead >= 8);
    std::thread::spawn(move || drop(pools)).join().unwrap();
    for _ in 0..1024 {
        drop(live.get());
    }
    assert_eq!(
        ThreadLocalPool::thread_cache_count(),
        1,
        "only the live pool's cache is left"
    );
}
