//! No key reaches freed heap memory: a global allocator scans every freed block for the
//! key while pools, builders and openers are made, used, re-keyed and dropped.

// Test data: counters, indices and sizes here are small by construction.
#![allow(clippy::cast_possible_truncation)]

use bytes::Bytes;
use netmesh_pool::{shared_local_pool, PacketBuilder, PacketOpener, PacketPool, ThreadLocalPool};
use netmesh_testkit::alloc::{
    freed_blocks_with, key_pattern, soil_stack_with, KeyScanningAllocator, Scan,
};
use netmesh_wire::PacketFlags;

/// Distinctive key bytes that occur nowhere else in the process.
const KEY: [u8; 32] = key_pattern(0x8f1e_c46b);
const NEW_KEY: [u8; 32] = key_pattern(0x710d_e2a3);

#[global_allocator]
static GLOBAL: KeyScanningAllocator = KeyScanningAllocator;

fn hits_during(f: impl FnOnce()) -> Scan {
    freed_blocks_with(&[KEY, NEW_KEY], f)
}

#[test]
fn the_scanner_detects_a_leaked_key() {
    let hits = hits_during(|| drop(std::hint::black_box(Box::new(KEY))));
    assert!(hits.hits >= 1, "the control leak was not detected");
}

fn events() -> Vec<Bytes> {
    vec![Bytes::from_static(b"payload"); 3]
}

#[test]
fn packet_pool_lifecycle_leaves_no_key_in_freed_memory() {
    let hits = hits_during(|| {
        let mut pool = Box::new(PacketPool::with_origin(4, &KEY, 1, 9));
        let guards: Vec<_> = (0..8).map(|_| pool.get()).collect();
        let packets: Vec<Bytes> = guards
            .into_iter()
            .enumerate()
            .map(|(s, mut b)| b.build(0, s as u64, &events(), PacketFlags::NONE))
            .collect();
        let opener = Box::new(PacketOpener::new(&KEY, 1));
        for packet in packets {
            opener.open(packet).unwrap();
        }
        pool.set_key(&NEW_KEY, 2);
        drop(pool.get().build_heartbeat());
        drop(pool);
        drop(opener);
    });
    assert_eq!(
        hits.hits, 0,
        "freed blocks held key bytes (last of {} bytes)",
        hits.last_hit_size
    );
}

#[test]
fn thread_local_pool_lifecycle_leaves_no_key_in_freed_memory() {
    let hits = hits_during(|| {
        let pool = shared_local_pool(4, &KEY, 1);
        let workers: Vec<_> = (0..2)
            .map(|t| {
                let pool = pool.clone();
                std::thread::spawn(move || {
                    for s in 0..100u64 {
                        let builder = pool.acquire();
                        let mut guard = pool.get();
                        drop(guard.build(t, s, &events(), PacketFlags::NONE));
                        pool.release(builder);
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        let other = ThreadLocalPool::with_local_capacity(2, &NEW_KEY, 2, 0, 1);
        let foreign = pool.acquire();
        other.release(foreign);
        drop(other);
        drop(pool);
        let mut standalone = Box::new(PacketBuilder::with_origin(&NEW_KEY, 3, 0));
        drop(standalone.build(0, 0, &events(), PacketFlags::NONE));
        drop(standalone);
    });
    assert_eq!(
        hits.hits, 0,
        "freed blocks held key bytes (last of {} bytes)",
        hits.last_hit_size
    );
}

/// Pools, builders and openers made where the stack still holds key bytes carry none of
/// them to the heap in padding (their cache-padded queues are built on scrubbed stack).
#[test]
fn pools_made_over_key_residue_carry_none_to_the_heap() {
    let hits = hits_during(|| {
        soil_stack_with(KEY);
        drop(std::hint::black_box(Box::new(PacketPool::new(
            2, &NEW_KEY, 1,
        ))));
        soil_stack_with(KEY);
        drop(std::hint::black_box(Box::new(ThreadLocalPool::new(
            2, &NEW_KEY, 1,
        ))));
        soil_stack_with(KEY);
        drop(std::hint::black_box(Box::new(PacketOpener::new(
            &NEW_KEY, 1,
        ))));
        soil_stack_with(KEY);
        let mut builder = Box::new(PacketBuilder::with_origin(&NEW_KEY, 1, 0));
        drop(builder.build(0, 0, &events(), PacketFlags::NONE));
        drop(std::hint::black_box(builder));
    });
    assert_eq!(
        hits.hits, 0,
        "freed blocks held key bytes (last of {} bytes)",
        hits.last_hit_size
    );
}

#[test]
fn openers_and_pools_moved_by_a_growing_vector_leave_no_key_behind() {
    let hits = hits_during(|| {
        // Pushing one at a time makes the vectors reallocate, moving what they hold.
        let mut openers = Vec::new();
        let mut pools = Vec::new();
        let mut local_pools = Vec::new();
        for session in 0..40u64 {
            openers.push(PacketOpener::new(&KEY, session));
            pools.push(PacketPool::new(1, &KEY, session));
            local_pools.push(ThreadLocalPool::new(1, &KEY, session));
            // Seal and open between the moves, leaving AEAD frames on the stack.
            let packet = pools[0]
                .get()
                .build(0, session, &events(), PacketFlags::NONE);
            openers[0].open(packet).unwrap();
            drop(local_pools[session as usize].get().build_heartbeat());
        }
        drop(openers);
        drop(pools);
        drop(local_pools);
    });
    assert_eq!(
        hits.hits, 0,
        "freed blocks held key bytes (last of {} bytes)",
        hits.last_hit_size
    );
}
