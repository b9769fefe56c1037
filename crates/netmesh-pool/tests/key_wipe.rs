//! No key reaches freed heap memory: a global allocator scans every freed block for the
//! key while pools, builders and openers are made, used, re-keyed and dropped.

// Test data: counters, indices and sizes here are small by construction.
#![allow(clippy::cast_possible_truncation)]
// A global allocator is the only way to observe heap use; it needs unsafe.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use netmesh_pool::{shared_local_pool, PacketBuilder, PacketOpener, PacketPool, ThreadLocalPool};
use netmesh_wire::PacketFlags;

/// Distinctive key bytes that occur nowhere else in the process.
const KEY: [u8; 32] = pattern(0x8f1e_c46b);
const NEW_KEY: [u8; 32] = pattern(0x710d_e2a3);

/// 32 pseudo-random bytes from a seed (xorshift32), made at compile time.
const fn pattern(mut state: u32) -> [u8; 32] {
    let mut key = [0; 32];
    let mut i = 0;
    while i < 32 {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        key[i] = state.to_le_bytes()[0];
        i += 1;
    }
    key
}
/// A leaked copy of 16 consecutive key bytes counts as a hit.
const WINDOW: usize = 16;

static SCANNING: AtomicBool = AtomicBool::new(false);
static HITS: AtomicUsize = AtomicUsize::new(0);
static LAST_HIT_SIZE: AtomicUsize = AtomicUsize::new(0);
/// The test functions run one at a time: each changes what is scanned for.
static SERIAL: Mutex<()> = Mutex::new(());

fn contains_key_bytes(block: &[u8]) -> bool {
    [&KEY, &NEW_KEY].iter().any(|key| {
        key.windows(WINDOW)
            .step_by(WINDOW / 2)
            .any(|needle| block.windows(WINDOW).any(|w| w == needle))
    })
}

struct Scanning;

// SAFETY: allocation is forwarded unchanged to the system allocator; dealloc only reads
// the block it is about to free, which is still valid for `layout.size()` bytes.
unsafe impl GlobalAlloc for Scanning {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if SCANNING.load(Ordering::Relaxed) && layout.size() >= WINDOW {
            // SAFETY: `ptr` points to a live block of `layout.size()` bytes until the
            // System.dealloc below.
            let block = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
            if contains_key_bytes(block) {
                HITS.fetch_add(1, Ordering::Relaxed);
                LAST_HIT_SIZE.store(layout.size(), Ordering::Relaxed);
            }
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Scanning = Scanning;

fn hits_during(f: impl FnOnce()) -> usize {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    HITS.store(0, Ordering::SeqCst);
    SCANNING.store(true, Ordering::SeqCst);
    f();
    SCANNING.store(false, Ordering::SeqCst);
    HITS.load(Ordering::SeqCst)
}

#[test]
fn the_scanner_detects_a_leaked_key() {
    let hits = hits_during(|| drop(std::hint::black_box(Box::new(KEY))));
    assert!(hits >= 1, "the control leak was not detected");
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
        hits,
        0,
        "freed blocks held key bytes (last of {} bytes)",
        LAST_HIT_SIZE.load(Ordering::Relaxed)
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
        hits,
        0,
        "freed blocks held key bytes (last of {} bytes)",
        LAST_HIT_SIZE.load(Ordering::Relaxed)
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
        hits,
        0,
        "freed blocks held key bytes (last of {} bytes)",
        LAST_HIT_SIZE.load(Ordering::Relaxed)
    );
}
