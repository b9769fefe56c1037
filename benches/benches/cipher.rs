//! netmesh-cipher against the bare AEAD calls it wraps: `PacketCipher` must cost nothing
//! measurable over ring's `LessSafeKey` or RustCrypto's `ChaCha20Poly1305`.
//!
//! Every variant works on the same buffers; the decrypt variants restore the ciphertext
//! from a pristine copy on each iteration, bare and wrapped alike, so the copy cancels out.

use std::hint::black_box;

use chacha20poly1305::aead::generic_array::GenericArray;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
#[cfg(feature = "openssl")]
use netmesh_cipher::OpenSslBackend;
use netmesh_cipher::{
    nonce_for, session_prefix_from_id, Backend, PacketCipher, RingBackend, RustCryptoBackend,
    TxCounter, TAG_SIZE,
};
use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, CHACHA20_POLY1305};

const SIZES: [usize; 6] = [0, 64, 256, 1024, 4096, 8108];
const KEY: [u8; 32] = [0x42; 32];
const SESSION_ID: u64 = 0x0123_4567_89ab_cdef;
const AAD: [u8; 56] = [0x17; 56];

fn ring_key() -> LessSafeKey {
    match UnboundKey::new(&CHACHA20_POLY1305, &KEY) {
        Ok(key) => LessSafeKey::new(key),
        Err(_) => panic!("ring refused a 32-byte key"),
    }
}

fn ring_nonce(counter: u64) -> Nonce {
    Nonce::assume_unique_for_key(nonce_for(session_prefix_from_id(SESSION_ID), counter))
}

type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;

/// `PacketCipher::<B>` sealing `buf` in place, as the pools call it.
fn seal_packet_cipher<B: Backend>(group: &mut Group<'_>, name: &str, size: usize, buf: &mut [u8]) {
    let cipher = PacketCipher::<B>::new(&KEY, SESSION_ID);
    group.bench_function(BenchmarkId::new(name, size), |b| {
        b.iter(|| black_box(cipher.seal_in_place_detached(black_box(&AAD), &mut buf[..])))
    });
}

/// `PacketCipher::<B>` opening a copy of `sealed` (counter, tag, ciphertext) in `work`.
fn open_packet_cipher<B: Backend>(
    group: &mut Group<'_>,
    name: &str,
    (counter, tag, pristine): (u64, [u8; TAG_SIZE], &[u8]),
    work: &mut [u8],
) {
    let cipher = PacketCipher::<B>::new(&KEY, SESSION_ID);
    group.bench_function(BenchmarkId::new(name, pristine.len()), |b| {
        b.iter(|| {
            work.copy_from_slice(pristine);
            black_box(cipher.open_in_place_detached(
                counter,
                black_box(&AAD),
                black_box(&mut work[..]),
                &tag,
            ))
        })
    });
}

fn encrypt(c: &mut Criterion) {
    let mut group = c.benchmark_group("encrypt");
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let mut buf = vec![0xa5u8; size];

        // Bare calls take a nonce from a plain local counter, as a minimal caller would.
        let ring = ring_key();
        let mut counter = 0u64;
        group.bench_function(BenchmarkId::new("ring_bare", size), |b| {
            b.iter(|| {
                counter += 1;
                let tag = ring.seal_in_place_separate_tag(
                    ring_nonce(counter),
                    Aad::from(black_box(&AAD)),
                    black_box(&mut buf[..]),
                );
                black_box(tag)
            })
        });

        seal_packet_cipher::<RingBackend>(&mut group, "ring_packet_cipher", size, &mut buf);

        let rust = ChaCha20Poly1305::new(GenericArray::from_slice(&KEY));
        let mut counter = 0u64;
        group.bench_function(BenchmarkId::new("rust_crypto_bare", size), |b| {
            b.iter(|| {
                counter += 1;
                let nonce = nonce_for(session_prefix_from_id(SESSION_ID), counter);
                black_box(rust.encrypt_in_place_detached(
                    GenericArray::from_slice(&nonce),
                    black_box(&AAD),
                    black_box(&mut buf[..]),
                ))
            })
        });

        seal_packet_cipher::<RustCryptoBackend>(
            &mut group,
            "rust_crypto_packet_cipher",
            size,
            &mut buf,
        );

        // OpenSSL from OPENSSL_MIN_LEN up, ring below: the `netmesh` tool's backend.
        #[cfg(feature = "openssl")]
        seal_packet_cipher::<OpenSslBackend>(&mut group, "openssl_packet_cipher", size, &mut buf);
    }
    group.finish();
}

fn decrypt(c: &mut Criterion) {
    let mut group = c.benchmark_group("decrypt");
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        // One valid packet, sealed once; both backends give the same bytes.
        let sender = PacketCipher::<RingBackend>::with_counter(
            &KEY,
            SESSION_ID,
            TxCounter::starting_at(1000),
        );
        let mut pristine = vec![0xa5u8; size];
        let (counter, tag) = match sender.seal_in_place_detached(&AAD, &mut pristine) {
            Ok(sealed) => sealed,
            Err(error) => panic!("seal failed: {error}"),
        };
        let mut work = pristine.clone();

        let ring = ring_key();
        group.bench_function(BenchmarkId::new("ring_bare", size), |b| {
            b.iter(|| {
                work.copy_from_slice(&pristine);
                let opened = ring.open_in_place_separate_tag(
                    ring_nonce(counter),
                    Aad::from(black_box(&AAD)),
                    Tag::from(tag),
                    black_box(&mut work[..]),
                    0..,
                );
                black_box(opened.is_ok())
            })
        });

        let sealed = (counter, tag, &pristine[..]);
        open_packet_cipher::<RingBackend>(&mut group, "ring_packet_cipher", sealed, &mut work);

        let rust = ChaCha20Poly1305::new(GenericArray::from_slice(&KEY));
        group.bench_function(BenchmarkId::new("rust_crypto_bare", size), |b| {
            b.iter(|| {
                work.copy_from_slice(&pristine);
                let nonce = nonce_for(session_prefix_from_id(SESSION_ID), counter);
                black_box(rust.decrypt_in_place_detached(
                    GenericArray::from_slice(&nonce),
                    black_box(&AAD),
                    black_box(&mut work[..]),
                    GenericArray::from_slice(&tag),
                ))
            })
        });

        #[cfg(feature = "openssl")]
        open_packet_cipher::<OpenSslBackend>(
            &mut group,
            "openssl_packet_cipher",
            sealed,
            &mut work,
        );

        open_packet_cipher::<RustCryptoBackend>(
            &mut group,
            "rust_crypto_packet_cipher",
            sealed,
            &mut work,
        );
    }
    group.finish();
}

criterion_group!(benches, encrypt, decrypt);
criterion_main!(benches);
