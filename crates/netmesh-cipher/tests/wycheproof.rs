//! Project Wycheproof's ChaCha20-Poly1305 vectors (`vectors/wycheproof/`), through every
//! compiled backend: each valid vector seals to its ciphertext and tag and opens back,
//! each invalid one is refused.
#![allow(clippy::unwrap_used)]

use netmesh_cipher::{Backend, CipherError, NONCE_SIZE, TAG_SIZE};
use netmesh_testkit::vectors::{bytes_hex as bytes, WYCHEPROOF_CHACHA20_POLY1305};
use serde::Deserialize;

#[derive(Deserialize)]
struct File {
    algorithm: String,
    #[serde(rename = "numberOfTests")]
    number_of_tests: usize,
    #[serde(rename = "testGroups")]
    groups: Vec<Group>,
}

#[derive(Deserialize)]
struct Group {
    #[serde(rename = "ivSize")]
    iv_bits: usize,
    #[serde(rename = "keySize")]
    key_bits: usize,
    #[serde(rename = "tagSize")]
    tag_bits: usize,
    tests: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    #[serde(rename = "tcId")]
    id: u32,
    key: String,
    iv: String,
    aad: String,
    msg: String,
    ct: String,
    tag: String,
    result: String,
    flags: Vec<String>,
}

fn load() -> File {
    serde_json::from_str(WYCHEPROOF_CHACHA20_POLY1305).unwrap()
}

/// What one backend made of the file.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    valid: usize,
    invalid: usize,
    /// Nonces of another length than 12: the `&[u8; NONCE_SIZE]` parameter cannot carry
    /// them, so the type system is what refuses them.
    wrong_nonce_size: usize,
}

fn run<B: Backend>() -> Tally {
    let file = load();
    assert_eq!(file.algorithm, "CHACHA20-POLY1305");
    let mut tally = Tally::default();
    for group in &file.groups {
        assert_eq!((group.key_bits, group.tag_bits), (256, 8 * TAG_SIZE));
        for case in &group.tests {
            let id = case.id;
            let Ok(nonce) = <[u8; NONCE_SIZE]>::try_from(bytes(&case.iv)) else {
                assert_ne!(group.iv_bits, 8 * NONCE_SIZE, "tc {id}");
                assert_eq!(case.result, "invalid", "tc {id}");
                assert_eq!(case.flags, ["InvalidNonceSize"], "tc {id}");
                tally.wrong_nonce_size += 1;
                continue;
            };
            let key: [u8; 32] = bytes(&case.key).try_into().unwrap();
            let aad = bytes(&case.aad);
            let msg = bytes(&case.msg);
            let ct = bytes(&case.ct);
            let tag: [u8; TAG_SIZE] = bytes(&case.tag).try_into().unwrap();
            let backend = B::new(&key);
            match case.result.as_str() {
                "valid" => {
                    let mut data = msg.clone();
                    let sealed = backend.seal_in_place(&nonce, &aad, &mut data).unwrap();
                    assert_eq!(data, ct, "tc {id}: ciphertext");
                    assert_eq!(sealed, tag, "tc {id}: tag");
                    backend
                        .open_in_place(&nonce, &aad, &mut data, &tag)
                        .unwrap();
                    assert_eq!(data, msg, "tc {id}: opened");
                    tally.valid += 1;
                }
                "invalid" => {
                    let mut data = ct.clone();
                    assert_eq!(
                        backend.open_in_place(&nonce, &aad, &mut data, &tag),
                        Err(CipherError::AuthFailed),
                        "tc {id}"
                    );
                    if !msg.is_empty() {
                        assert_ne!(data, msg, "tc {id}: plaintext left after a refused open");
                    }
                    tally.invalid += 1;
                }
                other => panic!("tc {id}: result {other:?}"),
            }
        }
    }
    assert_eq!(
        tally.valid + tally.invalid + tally.wrong_nonce_size,
        file.number_of_tests
    );
    tally
}

/// The counts of the vendored file: a changed file shows up here, not as silently fewer cases.
const EXPECTED: Tally = Tally {
    valid: 256,
    invalid: 60,
    wrong_nonce_size: 9,
};

#[cfg(feature = "ring")]
#[test]
fn ring_backend_passes_every_vector() {
    assert_eq!(run::<netmesh_cipher::RingBackend>(), EXPECTED);
}

#[cfg(feature = "rust-crypto")]
#[test]
fn rust_crypto_backend_passes_every_vector() {
    assert_eq!(run::<netmesh_cipher::RustCryptoBackend>(), EXPECTED);
}

#[cfg(feature = "openssl")]
#[test]
fn openssl_backend_passes_every_vector() {
    assert_eq!(run::<netmesh_cipher::OpenSslBackend>(), EXPECTED);
}
