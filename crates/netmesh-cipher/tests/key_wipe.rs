//! Key material is wiped before its heap memory is freed.
//!
//! The testkit's key-scanning allocator scans every block handed back to it for a
//! planted key and counts the blocks that still contain some of it. Each test boxes key-holding values, drops them and
//! checks the count; a control test drops an unwiped copy and must be caught, which
//! shows that the scan can fail.
use netmesh_cipher::{Key, PacketCipher, ReplayWindow};
use netmesh_testkit::alloc::{freed_blocks_with, soil_stack_with, KeyScanningAllocator};

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

#[global_allocator]
static ALLOCATOR: KeyScanningAllocator = KeyScanningAllocator;

/// Runs `drop_things` with scanning on and returns how many freed blocks held the key.
fn freed_blocks_with_key(drop_things: impl FnOnce()) -> usize {
    freed_blocks_with(&[PLANTED], drop_things).hits
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
                netmesh_cipher::TxCounter::new(),
            ),
        );
        let mut data = *b"use the key once";
        cipher.seal_in_place_detached(b"", &mut data).unwrap();
        drop(std::hint::black_box(cipher));
    });
    assert_eq!(hits, 0);
}

/// The copies netmesh holds (the key for new contexts, ring's schedule) are wiped. The
/// contexts live in OpenSSL's own heap, which this allocator does not see; OpenSSL wipes
/// them in `EVP_CIPHER_CTX_free` (`OPENSSL_clear_free` of the provider context).
#[cfg(feature = "openssl")]
#[test]
fn openssl_packet_cipher_wipes_its_key() {
    let hits = freed_blocks_with_key(|| {
        let cipher = Box::new(PacketCipher::<netmesh_cipher::OpenSslBackend>::new(
            &PLANTED, 1,
        ));
        let mut small = *b"use the key once";
        cipher.seal_in_place_detached(b"", &mut small).unwrap();
        let mut large = vec![7u8; 4096];
        cipher.seal_in_place_detached(b"", &mut large).unwrap();
        drop(std::hint::black_box(cipher));
    });
    assert_eq!(hits, 0);
}

/// A cipher made where the stack still holds key bytes carries none of them to the heap
/// in padding: the OpenSSL backend's cache-padded queue is built on scrubbed stack.
#[cfg(feature = "openssl")]
#[test]
fn openssl_cipher_made_over_key_residue_carries_none_to_the_heap() {
    let hits = freed_blocks_with_key(|| {
        soil_stack_with(PLANTED);
        let cipher = Box::new(PacketCipher::<netmesh_cipher::OpenSslBackend>::new(
            &[3; 32], 1,
        ));
        drop(std::hint::black_box(cipher));
    });
    assert_eq!(hits, 0);
}

/// The control for the test above: a value with padding, built over the soiled stack
/// without scrubbing, does carry the key to the heap (so the soiling works), and the
/// same value built with `boxed_on_scrubbed_stack` does not.
#[test]
fn control_padding_built_over_key_residue_carries_it() {
    #[repr(align(128))]
    struct Padded(#[allow(dead_code)] u8);
    #[inline(never)]
    fn make() -> Padded {
        Padded(std::hint::black_box(1))
    }
    // A frame of its own, so the temporary lies where the soiled frame was.
    #[inline(never)]
    fn boxed() -> Box<Padded> {
        Box::new(make())
    }
    let soiled = freed_blocks_with_key(|| {
        soil_stack_with(PLANTED);
        drop(std::hint::black_box(boxed()));
    });
    assert!(
        soiled >= 1,
        "the soiled stack did not reach the heap: the test proves nothing"
    );
    let scrubbed = freed_blocks_with_key(|| {
        soil_stack_with(PLANTED);
        drop(std::hint::black_box(
            netmesh_cipher::boxed_on_scrubbed_stack(make),
        ));
    });
    assert_eq!(scrubbed, 0);
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
