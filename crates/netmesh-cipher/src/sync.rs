//! The synchronisation primitives of [`ReplayWindow`](crate::ReplayWindow) and
//! [`TxCounter`](crate::TxCounter): std's, or loom's models of them when built with
//! `RUSTFLAGS="--cfg loom"`, so that `tests/loom.rs` can explore every interleaving.

#[cfg(loom)]
pub(crate) use loom::{
    hint::spin_loop,
    sync::{
        atomic::{fence, AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
    thread_local,
};
#[cfg(not(loom))]
pub(crate) use std::{
    hint::spin_loop,
    sync::{
        atomic::{fence, AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
    thread_local,
};

/// The atomic of a `static`, std's even under loom (whose atomics cannot be statics): for
/// values that only have to be unique, not part of any modelled interleaving.
#[cfg(loom)]
pub(crate) type StaticAtomicU64 = std::sync::atomic::AtomicU64;
#[cfg(not(loom))]
pub(crate) type StaticAtomicU64 = AtomicU64;
