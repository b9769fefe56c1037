//! Global allocators that observe the heap: one counts allocations, one scans freed
//! memory for key bytes. A test binary picks one with `#[global_allocator]`.
// A global allocator is the only way to observe heap use; it needs unsafe.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// Counts the allocations (and bytes) of the thread that runs [`count`] or [`counting`],
/// and only while it runs, so that tests on other threads of the harness are not counted;
/// and, while [`count_all_threads`] runs, those of every thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAllocator;

thread_local! {
    static ENABLED: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static BYTES: Cell<u64> = const { Cell::new(0) };
}

/// Counting on every thread: set only by [`count_all_threads`].
static ALL_ENABLED: AtomicBool = AtomicBool::new(false);
static ALL_ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALL_BYTES: AtomicU64 = AtomicU64::new(0);
/// One process-wide count at a time: each resets the shared totals.
static ALL_SERIAL: Mutex<()> = Mutex::new(());

fn record(size: usize) {
    if ALL_ENABLED.load(Ordering::Relaxed) {
        ALL_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALL_BYTES.fetch_add(size as u64, Ordering::Relaxed);
    }
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
    reset();
    let result = counting(f);
    let (allocations, bytes) = totals();
    (allocations, bytes, result)
}

/// Runs `f` counting this thread's allocations into its running totals, which add up
/// over calls until [`reset`]; read them with [`totals`]. For a measurement made of
/// many counted steps with uncounted work (test set-up) between them.
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: netmesh_testkit::alloc::CountingAllocator =
/// #     netmesh_testkit::alloc::CountingAllocator;
/// use netmesh_testkit::alloc::{counting, reset, totals};
///
/// reset();
/// let a = counting(|| vec![1u8; 10]);
/// let not_counted = vec![2u8; 10];
/// let b = counting(|| vec![3u8; 20]);
/// assert_eq!(totals(), (2, 30));
/// # drop((a, not_counted, b));
/// ```
pub fn counting<R>(f: impl FnOnce() -> R) -> R {
    ENABLED.with(|e| e.set(true));
    let result = f();
    ENABLED.with(|e| e.set(false));
    result
}

/// Sets this thread's running totals (see [`counting`]) to zero.
pub fn reset() {
    ALLOCATIONS.with(|n| n.set(0));
    BYTES.with(|n| n.set(0));
}

/// This thread's running totals, (allocations, bytes), since the last [`reset`].
pub fn totals() -> (u64, u64) {
    (ALLOCATIONS.with(Cell::get), BYTES.with(Cell::get))
}

/// Runs `f` and returns the allocations and bytes allocated on every thread of the
/// process while it runs (this one included), with its result: for work that `f` hands
/// to other threads and waits for. Other tests running meanwhile are counted too, so the
/// caller keeps them out (for example one lock held by every test of the binary).
/// Process-wide counts are made one at a time. This thread's own counts ([`count`],
/// [`counting`]) may be taken inside `f`.
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: netmesh_testkit::alloc::CountingAllocator =
/// #     netmesh_testkit::alloc::CountingAllocator;
/// use netmesh_testkit::alloc::{count, count_all_threads};
///
/// let (everywhere, bytes, (here, _, ())) = count_all_threads(|| {
///     count(|| {
///         let worker = std::thread::spawn(|| drop(std::hint::black_box(vec![0u8; 4096])));
///         worker.join().unwrap();
///     })
/// });
/// // The worker's vector is counted process-wide, not on this thread.
/// assert!(bytes >= 4096, "{bytes}");
/// assert!(everywhere > here, "{everywhere} > {here}");
/// ```
pub fn count_all_threads<R>(f: impl FnOnce() -> R) -> (u64, u64, R) {
    let _serial = ALL_SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    ALL_ALLOCATIONS.store(0, Ordering::SeqCst);
    ALL_BYTES.store(0, Ordering::SeqCst);
    ALL_ENABLED.store(true, Ordering::SeqCst);
    let result = f();
    ALL_ENABLED.store(false, Ordering::SeqCst);
    (
        ALL_ALLOCATIONS.load(Ordering::SeqCst),
        ALL_BYTES.load(Ordering::SeqCst),
        result,
    )
}

/// Scans every block freed while [`freed_blocks_with`] or [`freed_blocks_with_any_run`]
/// runs for runs of [`SCAN_WINDOW`] consecutive bytes of up to [`MAX_KEYS`] keys, and
/// counts the blocks that hold some.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyScanningAllocator;

/// A run of this many key bytes in a freed block counts as a leak.
pub const SCAN_WINDOW: usize = 16;

/// The most keys one scan looks for.
pub const MAX_KEYS: usize = 8;

static SCANNING: AtomicBool = AtomicBool::new(false);
static HITS: AtomicUsize = AtomicUsize::new(0);
static LAST_HIT_SIZE: AtomicUsize = AtomicUsize::new(0);
/// Bit i set: key i was found.
static FOUND: AtomicU32 = AtomicU32::new(0);
/// The keys scanned for, as little-endian words (atomics: the allocator cannot lock).
static KEYS: [AtomicU64; 4 * MAX_KEYS] = [const { AtomicU64::new(0) }; 4 * MAX_KEYS];
static KEY_COUNT: AtomicUsize = AtomicUsize::new(0);
/// The offsets in a key at which runs start are multiples of this.
static RUN_STEP: AtomicUsize = AtomicUsize::new(SCAN_WINDOW / 2);
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

/// Which keys (as bits) have a scanned run in `block`.
fn keys_in(block: &[u8]) -> u32 {
    let step = RUN_STEP.load(Ordering::Relaxed);
    let mut found = 0;
    for index in 0..KEY_COUNT.load(Ordering::Relaxed) {
        let key = key(index);
        let hit = key
            .windows(SCAN_WINDOW)
            .step_by(step)
            .any(|needle| block.windows(SCAN_WINDOW).any(|w| w == needle));
        if hit {
            found |= 1 << index;
        }
    }
    found
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
            let found = keys_in(std::hint::black_box(block));
            if found != 0 {
                HITS.fetch_add(1, Ordering::SeqCst);
                LAST_HIT_SIZE.store(layout.size(), Ordering::SeqCst);
                FOUND.fetch_or(found, Ordering::SeqCst);
                // Counted once: the key must not survive into the uninitialised part of
                // a later block (the controls leak one on purpose) and be counted again
                // against whatever frees that block.
                // SAFETY: the block is still ours, `layout.size()` bytes long.
                unsafe { ptr.write_bytes(0, layout.size()) };
            }
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// 32 pseudo-random bytes from a seed (xorshift32), made at compile time: a key to scan
/// for that occurs nowhere else in the process.
///
/// ```
/// const KEY: [u8; 32] = netmesh_testkit::alloc::key_pattern(0x8f1e_c46b);
/// assert_ne!(KEY, netmesh_testkit::alloc::key_pattern(0x710d_e2a3));
/// ```
#[must_use]
pub const fn key_pattern(mut state: u32) -> [u8; 32] {
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

/// What a scan found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// Freed blocks that held key bytes.
    pub hits: usize,
    /// Size of the last such block (0 if none), to tell which allocation leaked.
    pub last_hit_size: usize,
    /// Bit i set: some freed block held bytes of the scan's `keys[i]`.
    pub found: u32,
}

/// Runs `f` while the [`KeyScanningAllocator`] scans every freed block for the runs of
/// `keys` that start at offsets 0, 8 and 16 (a copy of a whole key always holds them),
/// one scan at a time in the process.
///
/// # Panics
///
/// With more than [`MAX_KEYS`] keys.
pub fn freed_blocks_with(keys: &[[u8; 32]], f: impl FnOnce()) -> Scan {
    scan(keys, SCAN_WINDOW / 2, f)
}

/// Like [`freed_blocks_with`], but looks for every run of [`SCAN_WINDOW`] bytes of each
/// key, at any offset in the key: it also sees a partial copy of a key (a secret split
/// over two buffers, or copied from the middle). Slower; for a few keys at a time.
///
/// # Panics
///
/// With more than [`MAX_KEYS`] keys.
pub fn freed_blocks_with_any_run(keys: &[[u8; 32]], f: impl FnOnce()) -> Scan {
    scan(keys, 1, f)
}

/// Leaves 16 KiB of dead stack below the caller full of copies of `key`, as a careless
/// key setup would: what a value built next in that region, and moved to the heap, would
/// carry in its padding unless the stack is scrubbed first.
#[inline(never)]
pub fn soil_stack_with(key: [u8; 32]) {
    let mut soiled = [[0_u8; 32]; 512];
    for slot in &mut soiled {
        *slot = std::hint::black_box(key);
    }
    std::hint::black_box(&soiled);
}

fn scan(keys: &[[u8; 32]], step: usize, f: impl FnOnce()) -> Scan {
    assert!(
        keys.len() <= MAX_KEYS,
        "at most {MAX_KEYS} keys are scanned for"
    );
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    for (index, key) in keys.iter().enumerate() {
        for (word, bytes) in KEYS[4 * index..].iter().zip(key.chunks_exact(8)) {
            let mut le = [0; 8];
            le.copy_from_slice(bytes);
            word.store(u64::from_le_bytes(le), Ordering::SeqCst);
        }
    }
    KEY_COUNT.store(keys.len(), Ordering::SeqCst);
    RUN_STEP.store(step, Ordering::SeqCst);
    HITS.store(0, Ordering::SeqCst);
    LAST_HIT_SIZE.store(0, Ordering::SeqCst);
    FOUND.store(0, Ordering::SeqCst);
    SCANNING.store(true, Ordering::SeqCst);
    f();
    SCANNING.store(false, Ordering::SeqCst);
    Scan {
        hits: HITS.load(Ordering::SeqCst),
        last_hit_size: LAST_HIT_SIZE.load(Ordering::SeqCst),
        found: FOUND.load(Ordering::SeqCst),
    }
}
