//! Key material is wiped before its heap memory is freed.
//!
//! A global allocator scans every block handed back to it for a planted key and counts
//! the blocks that still contain it. Each test boxes key-holding values, drops them and
//! checks the count; a control test drops an unwiped copy and must be caught, which
//! shows that the scan can fail.
// The allocator must be `unsafe impl`, and it reads the freed bytes through raw pointers.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use netmesh_cipher::{Key, PacketCipher, ReplayWindow, TxCounter};

/// Distinct bytes, so a match cannot come from a run of one value.
const PLANTED: [u8; 32] = {
    let mut key = [0; 32];
    let mut i = 0u8;
    while i < 32 {
        key[i as usize] = 0x91 ^ i.wrapping_mul(37);
        i += 1;
    }
    key
};

static SCANNING: AtomicBool = AtomicBool::new(false);
static HITS: AtomicUsize = AtomicUsize::new(0);

struct ScanningAllocator;

// SAFETY: every call forwards to `System` unchanged; `dealloc` only reads the block it is
// given (live and `layout.size()` bytes long until the forwarded call) before freeing it.
unsafe impl GlobalAlloc for ScanningAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if SCANNING.load(Ordering::SeqCst) && layout.size() >= PLANTED.len() {
            let mut run = 0;
            for offset in 0..layout.size() {
                // SAFETY: `offset < layout.size()` within the block being freed.
                // Volatile so the read of memory about to be freed is not elided.
                let byte = unsafe { ptr.add(offset).read_volatile() };
                run = if byte == PLANTED[run] {
                    run + 1
                } else if byte == PLANTED[0] {
                    1
                } else {
                    0
                };
                if run == PLANTED.len() {
                    HITS.fetch_add(1, Ordering::SeqCst);
                    break;
                }
            }
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: ScanningAllocator = ScanningAllocator;

/// Tests in this file run one at a time: a control's unwiped block must not be counted
/// against another test.
static SERIAL: Mutex<()> = Mutex::new(());

/// Runs `drop_things` with scanning on and returns how many freed blocks held the key.
fn freed_blocks_with_key(drop_things: impl FnOnce()) -> usize {
    let _serial: MutexGuard<'_, ()> = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    HITS.store(0, Ordering::SeqCst);
    SCANNING.store(true, Ordering::SeqCst);
    drop_things();
    SCANNING.store(false, Ordering::SeqCst);
    HITS.load(Ordering::SeqCst)
}

#[test]
fn control_an_unwiped_key_copy_is_detected() {
    let hits = freed_blocks_with_key(|| {
        let copy = Box::new(PLANTED);
        drop(std::hint::black_box(copy));
    });
    assert_eq!(hits, 1, "the scan must see a key that was not wiped");
}

#[cfg(feature = "ring")]
#[test]
fn control_a_bare_ring_key_is_detected() {
    // ring's own key type, dropped without our wipe: shows the pattern is visible in
    // ring's in-memory layout, so a clean RingBackend result means something.
    let hits = freed_blocks_with_key(|| {
        let unbound =
            ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, &PLANTED).unwrap();
        let key = Box::new(ring::aead::LessSafeKey::new(unbound));
        drop(std::hint::black_box(key));
    });
    assert_eq!(hits, 1);
}

#[cfg(feature = "ring")]
#[test]
fn ring_packet_cipher_wipes_its_key() {
    let hits = freed_blocks_with_key(|| {
        let cipher = Box::new(PacketCipher::<netmesh_cipher::RingBackend>::new(
            &PLANTED, 1,
        ));
        let mut data = *b"use the key once";
        cipher.seal_in_place_detached(b"", &mut data).unwrap();
        drop(std::hint::black_box(cipher));
    });
    assert_eq!(hits, 0);
}

#[cfg(feature = "rust-crypto")]
#[test]
fn rust_crypto_packet_cipher_wipes_its_key() {
    let hits = freed_blocks_with_key(|| {
        let cipher = Box::new(
            PacketCipher::<netmesh_cipher::RustCryptoBackend>::with_counter(
                &PLANTED,
                1,
                TxCounter::new(),
            ),
        );
        let mut data = *b"use the key once";
        cipher.seal_in_place_detached(b"", &mut data).unwrap();
        drop(std::hint::black_box(cipher));
    });
    assert_eq!(hits, 0);
}

#[test]
fn default_cipher_key_and_window_wipe_or_hold_nothing() {
    let hits = freed_blocks_with_key(|| {
        let cipher: Box<PacketCipher> = Box::new(PacketCipher::new(&PLANTED, 2));
        let key = Box::new(Key::new(&PLANTED));
        let owned = Box::new(Key::from_array(PLANTED));
        let window = Box::new(ReplayWindow::new());
        window.commit(0).unwrap();
        drop(std::hint::black_box(cipher));
        drop(std::hint::black_box(key));
        drop(std::hint::black_box(owned));
        drop(std::hint::black_box(window));
    });
    assert_eq!(hits, 0);
}
