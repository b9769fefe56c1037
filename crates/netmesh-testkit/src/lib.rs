//! Test support for netmesh (not published): what the crates' tests, the differential
//! and the benches used to define each for themselves.
//!
//! - [`alloc::CountingAllocator`]: counts the heap allocations of one thread while asked
//!   (per call or in running totals), or of every thread.
//! - [`alloc::KeyScanningAllocator`]: scans every freed block for key bytes.
//! - [`Rng`]: one seeded generator, so that a failing run replays exactly.
//! - [`vectors`]: the one schema of `vectors/reference-packets.json`, and the hex helpers.
//!
//! An allocator takes effect only where a test binary declares it:
//!
//! ```
//! #[global_allocator]
//! static GLOBAL: netmesh_testkit::alloc::CountingAllocator =
//!     netmesh_testkit::alloc::CountingAllocator;
//!
//! let (allocations, _bytes, v) = netmesh_testkit::alloc::count(|| vec![1u8; 10]);
//! assert_eq!((allocations, v.len()), (1, 10));
//! ```
#![doc(test(attr(deny(warnings))))]

pub mod alloc;
mod rng;
pub mod vectors;

pub use rng::Rng;
