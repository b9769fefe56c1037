//! Global allocators that observe the heap: one counts allocations, one scans freed
//! memory for key bytes. A test binary picks one with `#[global_allocator]`.
// A global allocator is the only way to observe heap use; it needs unsafe.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// Counts the allocations (and bytes) of the thread that runs [`count`], and only while
/// it runs, so that tests on other threads of the harness are not counted.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAllocator;

thread_local! {
    static ENABLED: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static BYTES: Cell<u64> = const { Cell::new(0) };
}

fn record(size: usize) {
    let _ = ENABLED.try_with(|enabled| {
        if enabled.get() {
            ALLOCATIONS.with(|n| n.set(n.get() + 1));
            BYTES.with(|n| n.set(n.get() + size as u64));
        }
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches
// only const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Runs `f` and returns the allocations and bytes allocated it made on this thread, with
/// its result. Counts only when the binary's global allocator is [`CountingAllocator`].
pub fn count<R>(f: impl FnOnce() -> R) -> (u64, u64, R) {
    ALLOCATIONS.with(|n| n.set(0));
    BYTES.with(|n| n.set(0));
    ENABLED.with(|e| e.set(true));
    let result = f();
    ENABLED.with(|e| e.set(false));
    (ALLOCATIONS.with(Cell::get), BYTES.with(Cell::get), result)
}

/// Scans every block freed while [`freed_blocks_with`] runs for any 16 consecutive bytes
/// (at 8-byte steps) of up to two keys, and counts the blocks that hold some.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyScanningAllocator;

/// A run of this many key bytes in a freed block counts as a leak.
pub const SCAN_WINDOW: usize = 16;

static SCANNING: AtomicBool = AtomicBool::new(false);
static HITS: AtomicUsize = AtomicUsize::new(0);
static LAST_HIT_SIZE: AtomicUsize = AtomicUsize::new(0);
/// The keys scanned for, as little-endian words (atomics: the allocator cannot lock).
static KEYS: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];
static KEY_COUNT: AtomicUsize = AtomicUsize::new(0);
/// One scan at a time: each sets what is scanned for, and a control's leak must not be
/// counted against another test.
static SERIAL: Mutex<()> = Mutex::new(());

fn key(index: usize) -> [u8; 32] {
    let mut key = [0; 32];
    for (word, out) in KEYS[4 * index..4 * index + 4]
        .iter()
        .zip(key.chunks_exact_mut(8))
    {
        out.copy_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
    }
    key
}

fn holds_key_bytes(block: &[u8]) -> bool {
    (0..KEY_COUNT.load(Ordering::Relaxed)).any(|index| {
        let key = key(index);
        key.windows(SCAN_WINDOW)
            .step_by(SCAN_WINDOW / 2)
            .any(|needle| block.windows(SCAN_WINDOW).any(|w| w == needle))
    })
}

// SAFETY: allocation is forwarded unchanged to the system allocator; dealloc only reads
// the block it is about to free, which is still valid for `layout.size()` bytes.
unsafe impl GlobalAlloc for KeyScanningAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if SCANNING.load(Ordering::SeqCst) && layout.size() >= SCAN_WINDOW {
            // SAFETY: `ptr` points to a live block of `layout.size()` bytes until the
            // System.dealloc below.
            let block = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
            if holds_key_bytes(std::hint::black_box(block)) {
                HITS.fetch_add(1, Ordering::SeqCst);
                LAST_HIT_SIZE.store(layout.size(), Ordering::SeqCst);
            }
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// What a scan found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// Freed blocks that held key bytes.
    pub hits: usize,
    /// Size of the last such block (0 if none), to tell which allocation leaked.
    pub last_hit_size: usize,
}

/// Runs `f` while the [`KeyScanningAllocator`] scans every freed block for bytes of
/// `keys` (at most two), one scan at a time in the process.
///
/// # Panics
///
/// With more than two keys.
pub fn freed_blocks_with(keys: &[[u8; 32]], f: impl FnOnce()) -> Scan {
    assert!(keys.len() <= 2, "at most two keys are scanned for");
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    for (index, key) in keys.iter().enumerate() {
        for (word, bytes) in KEYS[4 * index..].iter().zip(key.chunks_exact(8)) {
            let mut le = [0; 8];
            le.copy_from_slice(bytes);
            word.store(u64::from_le_bytes(le), Ordering::SeqCst);
        }
    }
    KEY_COUNT.store(keys.len(), Ordering::SeqCst);
    HITS.store(0, Ordering::SeqCst);
    LAST_HIT_SIZE.store(0, Ordering::SeqCst);
    SCANNING.store(true, Ordering::SeqCst);
    f();
    SCANNING.store(false, Ordering::SeqCst);
    Scan {
        hits: HITS.load(Ordering::SeqCst),
        last_hit_size: LAST_HIT_SIZE.load(Ordering::SeqCst),
    }
}
