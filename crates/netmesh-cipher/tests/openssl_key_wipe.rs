//! The OpenSSL backend's key copies inside OpenSSL's own heap are wiped before that heap
//! memory is freed.
//!
//! The key-scanning Rust allocator (tests/key_wipe.rs) cannot see OpenSSL's memory, so
//! this binary installs its own allocation functions into OpenSSL
//! (`CRYPTO_set_mem_functions`, which works only before OpenSSL's first allocation: one
//! test, and nothing else in this binary uses OpenSSL) and scans every block OpenSSL
//! frees for the key. A control frees an unwiped copy through OpenSSL and must be seen.
#![cfg(feature = "openssl")]
// Foreign allocation functions for OpenSSL: the unsafe code of this test.
#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use netmesh_cipher::{OpenSslBackend, PacketCipher};

/// Pseudo-random bytes that occur nowhere else in the process.
const PLANTED: [u8; 32] = netmesh_testkit::alloc::key_pattern(0x0b5e_55ed);

/// Bytes in front of each block: its size, kept for the scan at `free`.
const HEADER: usize = 16;

static SCANNING: AtomicBool = AtomicBool::new(false);
static HITS: AtomicU64 = AtomicU64::new(0);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
/// OpenSSL's live blocks, address to size (kept with Rust's allocator, not OpenSSL's).
static LIVE: Mutex<BTreeMap<usize, usize>> = Mutex::new(BTreeMap::new());

fn live() -> std::sync::MutexGuard<'static, BTreeMap<usize, usize>> {
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How many of OpenSSL's live blocks hold the key now.
fn live_blocks_with_key() -> usize {
    live()
        .iter()
        .filter(|&(&address, &size)| {
            // SAFETY: a live block of `size` bytes, allocated by `hooked_malloc` and not
            // yet freed (the registry lock is held, and frees take it first).
            let block = unsafe { std::slice::from_raw_parts(address as *const u8, size) };
            holds_key(block)
        })
        .count()
}

extern "C" {
    fn malloc(size: usize) -> *mut c_void;
    fn free(ptr: *mut c_void);
    fn CRYPTO_set_mem_functions(
        malloc_fn: extern "C" fn(usize, *const c_char, c_int) -> *mut c_void,
        realloc_fn: extern "C" fn(*mut c_void, usize, *const c_char, c_int) -> *mut c_void,
        free_fn: extern "C" fn(*mut c_void, *const c_char, c_int),
    ) -> c_int;
    fn CRYPTO_malloc(size: usize, file: *const c_char, line: c_int) -> *mut c_void;
    fn CRYPTO_free(ptr: *mut c_void, file: *const c_char, line: c_int);
}

/// Whether `block` holds 16 consecutive bytes of the key anywhere.
fn holds_key(block: &[u8]) -> bool {
    PLANTED
        .windows(16)
        .any(|run| block.windows(16).any(|window| window == run))
}

extern "C" fn hooked_malloc(size: usize, _: *const c_char, _: c_int) -> *mut c_void {
    let Some(total) = size.checked_add(HEADER) else {
        return std::ptr::null_mut();
    };
    // SAFETY: plain malloc; the result is checked for null before use.
    let base = unsafe { malloc(total) }.cast::<u8>();
    if base.is_null() {
        return std::ptr::null_mut();
    }
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    // SAFETY: `base` has room for `HEADER` bytes, enough (and aligned, malloc's
    // alignment being 16) for the size; the block handed out starts after them.
    let block = unsafe {
        base.cast::<usize>().write(size);
        base.add(HEADER)
    };
    live().insert(block as usize, size);
    block.cast()
}

extern "C" fn hooked_free(ptr: *mut c_void, _: *const c_char, _: c_int) {
    if ptr.is_null() {
        return;
    }
    let mut live = live();
    live.remove(&(ptr as usize));
    // SAFETY: `ptr` came from `hooked_malloc` (OpenSSL frees only what its malloc or
    // realloc returned), so the size sits `HEADER` bytes before it and the block is
    // `size` bytes long and ours until freed here.
    unsafe {
        let base = ptr.cast::<u8>().sub(HEADER);
        let size = base.cast::<usize>().read();
        let block = std::slice::from_raw_parts(ptr.cast::<u8>(), size);
        if SCANNING.load(Ordering::SeqCst) && holds_key(block) {
            HITS.fetch_add(1, Ordering::SeqCst);
        }
        free(base.cast());
    }
    drop(live);
}

extern "C" fn hooked_realloc(
    ptr: *mut c_void,
    size: usize,
    file: *const c_char,
    line: c_int,
) -> *mut c_void {
    let fresh = hooked_malloc(size, file, line);
    if ptr.is_null() || fresh.is_null() {
        return fresh;
    }
    // SAFETY: as in `hooked_free` for `ptr`; `fresh` has room for `size` bytes; the
    // copy takes the smaller of the two sizes.
    unsafe {
        let old = ptr.cast::<u8>().sub(HEADER).cast::<usize>().read();
        std::ptr::copy_nonoverlapping(ptr.cast::<u8>(), fresh.cast::<u8>(), old.min(size));
    }
    hooked_free(ptr, file, line);
    fresh
}

/// Runs `f` with scanning on; returns how many blocks OpenSSL freed with the key in them.
fn freed_with_key(f: impl FnOnce()) -> u64 {
    HITS.store(0, Ordering::SeqCst);
    SCANNING.store(true, Ordering::SeqCst);
    f();
    SCANNING.store(false, Ordering::SeqCst);
    HITS.load(Ordering::SeqCst)
}

#[test]
fn openssl_frees_no_block_holding_the_key() {
    // SAFETY: the three functions have OpenSSL's signatures and stay valid for the
    // program's life; OpenSSL has allocated nothing yet in this binary.
    let installed = unsafe { CRYPTO_set_mem_functions(hooked_malloc, hooked_realloc, hooked_free) };
    assert_eq!(
        installed, 1,
        "OpenSSL allocated before the hooks were installed"
    );

    // Control: a copy of the key freed through OpenSSL without a wipe is seen.
    let control = freed_with_key(|| {
        // SAFETY: a 32-byte block from OpenSSL's allocator, written in bounds and freed
        // once by the same allocator.
        unsafe {
            let block = CRYPTO_malloc(32, c"test".as_ptr(), 0).cast::<u8>();
            assert!(!block.is_null());
            block.copy_from_nonoverlapping(PLANTED.as_ptr(), 32);
            CRYPTO_free(block.cast(), c"test".as_ptr(), 0);
        }
    });
    assert_eq!(control, 1, "the scan must see an unwiped key");

    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let mut held = 0;
    let hits = freed_with_key(|| {
        let cipher: PacketCipher<OpenSslBackend> = PacketCipher::new(&PLANTED, 1);
        // Full packets, sealed and opened: OpenSSL makes and keeps contexts for them.
        for _ in 0..4 {
            let mut data = vec![7u8; 8000];
            let (counter, tag) = cipher.seal_in_place_detached(b"aad", &mut data).unwrap();
            cipher
                .open_in_place_detached(counter, b"aad", &mut data, &tag)
                .unwrap();
        }
        held = live_blocks_with_key();
        drop(cipher);
    });
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    if allocations == 0 {
        // Only on a CPU without AVX-512, where ring seals everything.
        println!("skipped: the OpenSSL backend does not use OpenSSL on this CPU");
        return;
    }
    println!(
        "{allocations} OpenSSL allocations; before the drop {held} live blocks held the \
         key; {hits} were freed holding it"
    );
    // The key did reach OpenSSL's heap (else a clean free would prove nothing) ...
    assert!(held >= 1, "no live OpenSSL block held the key");
    // ... and left it wiped.
    assert_eq!(live_blocks_with_key(), 0);
    assert_eq!(
        hits, 0,
        "{hits} of {allocations} blocks OpenSSL allocated were freed holding the key"
    );
}
