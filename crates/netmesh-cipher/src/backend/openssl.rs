//! The full-packet backend: OpenSSL's ChaCha20-Poly1305 for buffers of
//! [`OPENSSL_MIN_LEN`] and more, ring's below.
//!
//! OpenSSL 3 has AVX-512 ChaCha20 and Poly1305; ring's stitched AVX2 code is the fastest
//! there is for small inputs. Measured on this project's host (a Xeon with AVX-512,
//! OpenSSL 3.0.19), per seal with 68 bytes of associated data:
//!
//! | bytes | ring | OpenSSL |
//! |---|---|---|
//! | 64 | 190 ns | 485 ns |
//! | 1024 | 617 ns | 697 ns |
//! | 8108 | 3.7 µs | 2.5 µs |
//!
//! Both produce the same bytes, so the choice is made per call by length alone.
//!
//! The calls go to libcrypto through `openssl-sys`, not through the `openssl` crate's
//! safe wrapper: the wrapper asks the context for its IV length on every
//! re-initialisation, a parameter query through OpenSSL 3's provider layer, and checks
//! output sizes the same way. Measured on 8108 bytes: 2.93 µs a seal through the wrapper,
//! against 2.5 µs for the same calls made directly. Hence the `unsafe` below, one
//! foreign call per block.
#![allow(unsafe_code)] // Calls into libcrypto; each block says why it is sound.

use core::ffi::c_int;
use core::fmt;
use core::ptr::{self, NonNull};

use crossbeam_queue::ArrayQueue;
use openssl_sys as ffi;
use zeroize::Zeroize;

use super::RingBackend;
use crate::{Backend, CipherError, Key, KEY_SIZE, NONCE_SIZE, TAG_SIZE};

/// Inputs of this many bytes or more are sealed and opened by OpenSSL, shorter ones by
/// ring. OpenSSL's fixed cost per call (re-initialising the context, Poly1305's AVX-512
/// key powers, the tag through a control call) is about 400 ns against ring's 150 ns; its
/// cost per byte is 0.25 ns against ring's 0.44 ns. The two meet near 1.5 KiB.
pub const OPENSSL_MIN_LEN: usize = 2048;

/// Inputs longer than this go to ring: OpenSSL takes an `int` length, and no packet comes
/// near it.
const OPENSSL_MAX_LEN: usize = 1 << 20;

/// Initialised contexts kept for reuse. One is in use per thread sealing or opening at
/// the same moment; a context beyond this many is freed when given back.
const SPARE_CONTEXTS: usize = 16;

/// ChaCha20-Poly1305 from OpenSSL (feature `openssl`) for inputs of [`OPENSSL_MIN_LEN`]
/// bytes and more, from [`RingBackend`] for shorter ones; the
/// [`DefaultBackend`](crate::DefaultBackend) whenever the `openssl` feature is on.
///
/// The gain is that of OpenSSL's AVX-512 code: on a CPU without AVX-512 (checked once, in
/// [`new`](Backend::new)) ring seals and opens everything.
///
/// An OpenSSL cipher context is not safe to share between threads, so the backend keeps
/// a lock-free stack of initialised contexts: a call takes one and gives it back, and a
/// context is made (once per thread at most, in steady state) when none is free.
///
/// Key hygiene: the key is held in a [`Key`] (wiped on drop) to initialise new contexts.
/// OpenSSL keeps its copy inside each context and wipes it when the context is freed
/// (`OPENSSL_clear_free` in the provider's `freectx`), which happens when the backend is
/// dropped. A failed open overwrites what OpenSSL decrypted with zeroes, as ring does.
///
/// # Examples
///
/// ```
/// use netmesh_cipher::{Backend, OpenSslBackend, RingBackend};
///
/// let key = [5; 32];
/// let (openssl, ring) = (OpenSslBackend::new(&key), RingBackend::new(&key));
/// let mut a = vec![1u8; 4096];
/// let mut b = a.clone();
/// let tag = openssl.seal_in_place(&[0; 12], b"aad", &mut a)?;
/// assert_eq!(tag, ring.seal_in_place(&[0; 12], b"aad", &mut b)?);
/// assert_eq!(a, b);
/// # Ok::<(), netmesh_cipher::CipherError>(())
/// ```
pub struct OpenSslBackend {
    ring: RingBackend,
    key: Key,
    /// Boxed: the queue is aligned to 128 bytes (cache-padded head and tail), which
    /// would give the backend, and every struct holding it, padding that fields' drops
    /// never wipe, and a move fills padding with whatever the stack held, key copies
    /// included (seen by the key-scan test as a key in a freed 1152-byte cipher).
    contexts: Box<ArrayQueue<Context>>,
    /// [`OPENSSL_MIN_LEN`] on CPUs with AVX-512, `usize::MAX` (ring for everything)
    /// elsewhere.
    openssl_from: usize,
}

/// How OpenSSL failed: the tag did not verify, or a call failed for another reason
/// (an allocation inside OpenSSL, in practice).
#[derive(Debug)]
enum Failure {
    Tag,
    Library,
}

/// Turns an OpenSSL return code (1 for success) into a result, emptying this thread's
/// OpenSSL error queue on failure so that it cannot grow.
fn check(code: c_int) -> Result<(), Failure> {
    if code == 1 {
        Ok(())
    } else {
        // SAFETY: no arguments; clears the calling thread's error queue.
        unsafe { ffi::ERR_clear_error() };
        Err(Failure::Library)
    }
}

/// An owned `EVP_CIPHER_CTX`, freed (and so wiped, key included) on drop.
struct Context(NonNull<ffi::EVP_CIPHER_CTX>);

// SAFETY: an `EVP_CIPHER_CTX` may be used from any thread as long as one thread at a
// time does; `Context` is not `Sync` and every use goes through `&mut`.
unsafe impl Send for Context {}

impl Context {
    /// A context with no cipher and no key.
    fn new() -> Result<Self, Failure> {
        // SAFETY: no arguments; returns null or a context this value then owns.
        let ctx = unsafe { ffi::EVP_CIPHER_CTX_new() };
        NonNull::new(ctx).map(Self).ok_or(Failure::Library)
    }

    /// A context set up for ChaCha20-Poly1305 under `key`.
    fn with_key(key: &[u8; KEY_SIZE]) -> Result<Self, Failure> {
        let ctx = Self::new()?;
        // SAFETY: `ctx` is a live context; `EVP_chacha20_poly1305` returns a static
        // cipher whose key is 32 bytes, the length of `key`; a null IV is allowed.
        check(unsafe {
            ffi::EVP_EncryptInit_ex(
                ctx.0.as_ptr(),
                ffi::EVP_chacha20_poly1305(),
                ptr::null_mut(),
                key.as_ptr(),
                ptr::null(),
            )
        })?;
        Ok(ctx)
    }

    fn as_ptr(&mut self) -> *mut ffi::EVP_CIPHER_CTX {
        self.0.as_ptr()
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the context is owned and not used again; OpenSSL's provider wipes its
        // key state (`OPENSSL_clear_free`) as it frees it.
        unsafe { ffi::EVP_CIPHER_CTX_free(self.0.as_ptr()) }
    }
}

/// Whether OpenSSL's ChaCha20-Poly1305 beats ring's on this CPU. The gain measured is
/// that of its AVX-512 code; with AVX2 alone OpenSSL's two passes (ChaCha20, then
/// Poly1305) are not faster than ring's stitched one, so ring keeps everything.
fn openssl_is_faster() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

impl OpenSslBackend {
    /// A backend that gives OpenSSL inputs of `openssl_from` bytes and more (up to
    /// [`OPENSSL_MAX_LEN`]), ring the others.
    fn with_openssl_from(key: &[u8; KEY_SIZE], openssl_from: usize) -> Self {
        // First, and on scrubbed stack: built where the ring key setup below (or an
        // earlier one) left key bytes, the queue's padding carried them to the heap (the
        // key-scan test saw one in a freed 384-byte queue).
        let contexts = crate::boxed_on_scrubbed_stack(|| ArrayQueue::new(SPARE_CONTEXTS));
        Self {
            ring: RingBackend::new(key),
            key: Key::new(key),
            contexts,
            openssl_from,
        }
    }

    /// Whether OpenSSL takes an input of `len` bytes.
    #[inline]
    fn uses_openssl(&self, len: usize) -> bool {
        (self.openssl_from..=OPENSSL_MAX_LEN).contains(&len)
    }

    /// A context initialised with this backend's key, from the spares or new.
    fn take_context(&self) -> Result<Context, Failure> {
        match self.contexts.pop() {
            Some(ctx) => Ok(ctx),
            None => Context::with_key(self.key.as_bytes()),
        }
    }

    /// Keeps `ctx` for the next call, or frees it (OpenSSL wipes its key) when enough
    /// are kept already.
    fn give_back(&self, ctx: Context) {
        drop(self.contexts.push(ctx));
    }

    /// Runs `op` on a context. A context on which a call failed is freed, not reused:
    /// its state is unknown.
    fn with_context<T>(
        &self,
        op: impl FnOnce(&mut Context) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        let mut ctx = self.take_context()?;
        let result = op(&mut ctx);
        if !matches!(result, Err(Failure::Library)) {
            self.give_back(ctx);
        }
        result
    }
}

/// The tag's length as OpenSSL takes it.
#[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)] // 16 fits.
const TAG_LEN: c_int = TAG_SIZE as c_int;

/// The length of `data` as OpenSSL takes it. The callers keep inputs to
/// [`OPENSSL_MAX_LEN`], far below `c_int::MAX`.
fn c_len(data: &[u8]) -> Result<c_int, Failure> {
    c_int::try_from(data.len()).map_err(|_| Failure::Library)
}

/// Feeds `aad`, then `data` in place, through `ctx` (set up for one direction and a
/// nonce), then finishes the message. With `final_is_tag`, a failed finish is a tag that
/// did not verify.
fn run(ctx: &mut Context, aad: &[u8], data: &mut [u8], final_is_tag: bool) -> Result<(), Failure> {
    let mut written: c_int = 0;
    // SAFETY: `ctx` is live and initialised; a null output makes this call take `aad`
    // as associated data, reading `aad.len()` bytes from it.
    check(unsafe {
        ffi::EVP_CipherUpdate(
            ctx.as_ptr(),
            ptr::null_mut(),
            &mut written,
            aad.as_ptr(),
            c_len(aad)?,
        )
    })?;
    // SAFETY: a stream cipher writes exactly as many bytes as it reads, and OpenSSL
    // allows output and input to be the same buffer; `data` is valid for both.
    check(unsafe {
        ffi::EVP_CipherUpdate(
            ctx.as_ptr(),
            data.as_mut_ptr(),
            &mut written,
            data.as_ptr(),
            c_len(data)?,
        )
    })?;
    // ChaCha20-Poly1305 writes nothing at the end; the scratch is only somewhere valid.
    let mut scratch = [0u8; 16];
    // SAFETY: `scratch` is valid for the (zero) bytes a stream cipher writes here.
    let finished =
        check(unsafe { ffi::EVP_CipherFinal(ctx.as_ptr(), scratch.as_mut_ptr(), &mut written) });
    match finished {
        Err(Failure::Library) if final_is_tag => Err(Failure::Tag),
        other => other,
    }
}

/// Starts a message under `nonce` on `ctx`, sealing (`encrypt`) or opening.
fn start(ctx: &mut Context, nonce: &[u8; NONCE_SIZE], encrypt: bool) -> Result<(), Failure> {
    // SAFETY: `ctx` is live; null cipher and key keep those set at creation; `nonce` is
    // the cipher's 12-byte IV.
    check(unsafe {
        ffi::EVP_CipherInit_ex(
            ctx.as_ptr(),
            ptr::null(),
            ptr::null_mut(),
            ptr::null(),
            nonce.as_ptr(),
            c_int::from(encrypt),
        )
    })
}

/// Reads the tag out of `ctx` (`EVP_CTRL_AEAD_GET_TAG`) or hands it the tag to verify
/// (`EVP_CTRL_AEAD_SET_TAG`). openssl-sys names the AEAD controls after GCM; the values
/// are the same for every AEAD.
fn tag_control(ctx: &mut Context, control: c_int, tag: &mut [u8; TAG_SIZE]) -> Result<(), Failure> {
    // SAFETY: `tag` is valid for the `TAG_SIZE` bytes OpenSSL writes or reads.
    check(unsafe {
        ffi::EVP_CIPHER_CTX_ctrl(ctx.as_ptr(), control, TAG_LEN, tag.as_mut_ptr().cast())
    })
}

/// Seals `data` in place under `nonce` with `ctx`, initialised with the key.
fn seal_with(
    ctx: &mut Context,
    nonce: &[u8; NONCE_SIZE],
    aad: &[u8],
    data: &mut [u8],
) -> Result<[u8; TAG_SIZE], Failure> {
    start(ctx, nonce, true)?;
    run(ctx, aad, data, false)?;
    let mut tag = [0; TAG_SIZE];
    tag_control(ctx, ffi::EVP_CTRL_GCM_GET_TAG, &mut tag)?;
    Ok(tag)
}

/// Decrypts `data` in place under `nonce` with `ctx` and verifies `tag` (OpenSSL compares
/// in constant time). On any failure `data` may hold plaintext: the caller wipes it.
fn open_with(
    ctx: &mut Context,
    nonce: &[u8; NONCE_SIZE],
    aad: &[u8],
    data: &mut [u8],
    tag: &[u8; TAG_SIZE],
) -> Result<(), Failure> {
    start(ctx, nonce, false)?;
    tag_control(ctx, ffi::EVP_CTRL_GCM_SET_TAG, &mut { *tag })?;
    run(ctx, aad, data, true)
}

/// The error an open reports for `failure`.
fn open_error(failure: Failure) -> CipherError {
    match failure {
        Failure::Tag => CipherError::AuthFailed,
        Failure::Library => CipherError::BackendFailed {
            backend: OpenSslBackend::NAME,
        },
    }
}

impl Backend for OpenSslBackend {
    const NAME: &'static str = "openssl";

    fn new(key: &[u8; KEY_SIZE]) -> Self {
        let openssl_from = if openssl_is_faster() {
            OPENSSL_MIN_LEN
        } else {
            usize::MAX
        };
        Self::with_openssl_from(key, openssl_from)
    }

    #[inline]
    fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_SIZE],
        aad: &[u8],
        data: &mut [u8],
    ) -> Result<[u8; TAG_SIZE], CipherError> {
        if !self.uses_openssl(data.len()) {
            return self.ring.seal_in_place(nonce, aad, data);
        }
        self.with_context(|ctx| seal_with(ctx, nonce, aad, data))
            .map_err(|_| CipherError::BackendFailed {
                backend: Self::NAME,
            })
    }

    #[inline]
    fn open_in_place(
        &self,
        nonce: &[u8; NONCE_SIZE],
        aad: &[u8],
        data: &mut [u8],
        tag: &[u8; TAG_SIZE],
    ) -> Result<(), CipherError> {
        if !self.uses_openssl(data.len()) {
            return self.ring.open_in_place(nonce, aad, data, tag);
        }
        self.with_context(|ctx| open_with(ctx, nonce, aad, data, tag))
            .map_err(|failure| {
                data.zeroize();
                open_error(failure)
            })
    }
}

impl fmt::Debug for OpenSslBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenSslBackend")
            .field("openssl_from_len", &self.openssl_from)
            .field("spare_contexts", &self.contexts.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; KEY_SIZE] = [0x5a; KEY_SIZE];

    /// Sizes on both sides of each bound, so that both libraries are exercised.
    const SIZES: [usize; 7] = [
        0,
        64,
        OPENSSL_MIN_LEN - 1,
        OPENSSL_MIN_LEN,
        8108,
        OPENSSL_MAX_LEN,
        OPENSSL_MAX_LEN + 1,
    ];

    fn filled(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + 3).to_le_bytes()[0]).collect()
    }

    #[test]
    fn same_bytes_as_ring_at_every_size_and_opens_its_own() {
        let (openssl, ring) = (
            OpenSslBackend::with_openssl_from(&KEY, OPENSSL_MIN_LEN),
            RingBackend::new(&KEY),
        );
        for (i, len) in SIZES.into_iter().enumerate() {
            let nonce = [i.to_le_bytes()[0]; NONCE_SIZE];
            let plain = filled(len);
            let (mut a, mut b) = (plain.clone(), plain.clone());
            let tag = openssl.seal_in_place(&nonce, b"header", &mut a).unwrap();
            assert_eq!(tag, ring.seal_in_place(&nonce, b"header", &mut b).unwrap());
            assert!(a == b, "ciphertexts differ at {len} bytes");
            openssl
                .open_in_place(&nonce, b"header", &mut a, &tag)
                .unwrap();
            assert!(a == plain, "round trip differs at {len} bytes");
            ring.open_in_place(&nonce, b"header", &mut b, &tag).unwrap();
            assert!(b == plain);
        }
    }

    #[test]
    fn failed_open_leaves_zeroes_and_the_context_stays_usable() {
        let backend = OpenSslBackend::with_openssl_from(&KEY, OPENSSL_MIN_LEN);
        let plain = filled(4096);
        let mut data = plain.clone();
        let tag = backend
            .seal_in_place(&[1; NONCE_SIZE], b"", &mut data)
            .unwrap();
        let sealed = data.clone();
        for (aad, bad_tag, flip) in [
            (&b""[..], true, false),
            (&b""[..], false, true),
            (&b"other"[..], false, false),
        ] {
            let mut tag = tag;
            tag[0] ^= u8::from(bad_tag);
            data.copy_from_slice(&sealed);
            data[100] ^= u8::from(flip);
            assert_eq!(
                backend.open_in_place(&[1; NONCE_SIZE], aad, &mut data, &tag),
                Err(CipherError::AuthFailed)
            );
            assert!(
                data.iter().all(|&b| b == 0),
                "plaintext left after a failed open"
            );
        }
        data.copy_from_slice(&sealed);
        backend
            .open_in_place(&[1; NONCE_SIZE], b"", &mut data, &tag)
            .unwrap();
        assert_eq!(data, plain);
    }

    #[test]
    fn contexts_are_reused_and_bounded() {
        let backend = OpenSslBackend::with_openssl_from(&KEY, OPENSSL_MIN_LEN);
        let mut data = filled(OPENSSL_MIN_LEN);
        for i in 0..100u8 {
            backend
                .seal_in_place(&[i; NONCE_SIZE], b"", &mut data)
                .unwrap();
        }
        assert_eq!(backend.contexts.len(), 1);
        let held: Vec<_> = (0..SPARE_CONTEXTS + 3)
            .map(|_| backend.take_context().unwrap())
            .collect();
        for ctx in held {
            backend.give_back(ctx);
        }
        assert_eq!(backend.contexts.len(), SPARE_CONTEXTS);
    }

    #[test]
    fn threads_share_one_backend() {
        let backend = OpenSslBackend::with_openssl_from(&KEY, OPENSSL_MIN_LEN);
        let ring = RingBackend::new(&KEY);
        std::thread::scope(|s| {
            for t in 0..4u8 {
                let (backend, ring) = (&backend, &ring);
                s.spawn(move || {
                    for i in 0..200u8 {
                        let nonce = [t, i, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
                        let mut a = filled(3000 + usize::from(i));
                        let mut b = a.clone();
                        let tag = backend.seal_in_place(&nonce, b"x", &mut a).unwrap();
                        assert_eq!(tag, ring.seal_in_place(&nonce, b"x", &mut b).unwrap());
                        assert!(a == b);
                        backend.open_in_place(&nonce, b"x", &mut a, &tag).unwrap();
                    }
                });
            }
        });
        assert!(backend.contexts.len() <= 4);
    }

    #[test]
    fn a_context_without_a_cipher_fails_as_the_library() {
        let mut bare = Context::new().unwrap();
        let mut data = filled(OPENSSL_MIN_LEN);
        assert!(matches!(
            seal_with(&mut bare, &[0; NONCE_SIZE], b"", &mut data),
            Err(Failure::Library)
        ));
        assert!(matches!(
            open_with(&mut bare, &[0; NONCE_SIZE], b"", &mut data, &[0; TAG_SIZE]),
            Err(Failure::Library)
        ));
        // SAFETY: no arguments; takes from this thread's error queue, which `check` emptied.
        assert_eq!(unsafe { ffi::ERR_get_error() }, 0);
    }

    #[test]
    fn a_library_failure_is_its_own_error_and_its_context_is_not_kept() {
        let backend = OpenSslBackend::with_openssl_from(&KEY, OPENSSL_MIN_LEN);
        let result = backend.with_context(|_| Err::<(), _>(Failure::Library));
        assert!(matches!(result, Err(Failure::Library)));
        assert_eq!(
            backend.contexts.len(),
            0,
            "a failed context must not be reused"
        );
        let result = backend.with_context(|_| Err::<(), _>(Failure::Tag));
        assert!(matches!(result, Err(Failure::Tag)));
        assert_eq!(
            backend.contexts.len(),
            1,
            "a wrong tag leaves the context sound"
        );
        assert_eq!(
            open_error(Failure::Library),
            CipherError::BackendFailed { backend: "openssl" }
        );
        assert_eq!(open_error(Failure::Tag), CipherError::AuthFailed);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        #[test]
        fn agrees_with_ring_and_refuses_a_flipped_bit(
            key in proptest::prelude::any::<[u8; KEY_SIZE]>(),
            nonce in proptest::prelude::any::<[u8; NONCE_SIZE]>(),
            aad in proptest::collection::vec(0u8.., 0..80),
            len in proptest::prop_oneof![0usize..=8108, OPENSSL_MIN_LEN..=8108],
            flip in 0usize..8108 * 8,
        ) {
            let (openssl, ring) = (
                OpenSslBackend::with_openssl_from(&key, OPENSSL_MIN_LEN),
                RingBackend::new(&key),
            );
            let plain = filled(len);
            let (mut a, mut b) = (plain.clone(), plain.clone());
            let tag = openssl.seal_in_place(&nonce, &aad, &mut a).unwrap();
            proptest::prop_assert_eq!(tag, ring.seal_in_place(&nonce, &aad, &mut b).unwrap());
            proptest::prop_assert!(a == b);
            let sealed = a.clone();
            ring.open_in_place(&nonce, &aad, &mut a, &tag).unwrap();
            proptest::prop_assert!(a == plain);
            let mut c = sealed.clone();
            let mut bad_tag = tag;
            if len == 0 {
                bad_tag[flip % TAG_SIZE] ^= 1;
            } else {
                c[(flip / 8) % len] ^= 1 << (flip % 8);
            }
            proptest::prop_assert_eq!(
                openssl.open_in_place(&nonce, &aad, &mut c, &bad_tag),
                Err(CipherError::AuthFailed)
            );
            let mut d = sealed;
            openssl.open_in_place(&nonce, &aad, &mut d, &tag).unwrap();
            proptest::prop_assert!(d == plain);
        }
    }

    #[test]
    fn debug_shows_no_key() {
        let shown = format!(
            "{:?}",
            OpenSslBackend::with_openssl_from(&KEY, OPENSSL_MIN_LEN)
        );
        assert!(shown.starts_with("OpenSslBackend"), "{shown}");
        assert!(
            !shown.contains("90, 90") && !shown.contains("5a5a"),
            "{shown}"
        );
    }
}
