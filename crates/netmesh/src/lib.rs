//! Encrypted, authenticated packets of opaque events, each sized for one UDP datagram.
//!
//! netmesh packs events — opaque byte strings, as many as fit — into packets of at most
//! [`MAX_PACKET_SIZE`] bytes: a 68-byte header in the clear (session, stream, sequence,
//! flags, nonce), the framed events encrypted with ChaCha20-Poly1305 under a counter
//! nonce, and a 16-byte tag that also authenticates the header. The receiver checks the
//! header, authenticates and decrypts the packet, refuses replays with a sliding window,
//! and hands back the events as zero-copy [`Bytes`] slices. The bytes on the wire are
//! those of net-mesh 0.23, so both implementations interoperate; the names of the API
//! are net-mesh's too.
//!
//! netmesh does no I/O: a packet is a [`Bytes`] you send as one datagram with any socket,
//! and a datagram you receive is a [`Bytes`] or [`BytesMut`] you open (or a slice of a
//! receive buffer you open in place, [`PacketOpener::open_in_place`]). Key exchange is
//! not part of it: both sides need the same 32-byte key and session id from your
//! handshake.
//!
//! # Crates
//!
//! This crate re-exports three smaller ones as modules, each whole, and at its root the
//! items most users touch; depend on one of them alone when you need only its part.
//!
//! - [`wire`] (`netmesh-wire`): the constants, [`PacketFlags`], [`NetHeader`], event
//!   frames and the NACK payload; no cryptography. Take it alone to inspect or route
//!   packets without keys (tools, forwarders, fuzzers).
//! - [`cipher`] (`netmesh-cipher`): ChaCha20-Poly1305 with counter nonces, the shared TX
//!   counter, the replay window and the two backends. Take it alone to frame packets
//!   yourself under the same nonce and replay rules.
//! - [`pool`] (`netmesh-pool`): [`PacketBuilder`], [`PacketPool`] and
//!   [`ThreadLocalPool`] to send, [`PacketOpener`] to receive. What most applications
//!   use.
//! - `netmesh` (this crate): all three, a [`prelude`], and the examples. Take it for one
//!   dependency.
//!
//! The root holds the pools, builders, opener and their guards and errors, the header,
//! flags and frame codec, the cipher, counter, replay window, key and backends, and the
//! protocol's sizes and caps. Lower-level pieces (frame iterators, the batch splitter's
//! iterator, the nonce and AAD helpers, the lease size) are in their module only, e.g.
//! `netmesh::wire::BorrowedEvents`. Each size is defined once (`NONCE_SIZE` and `TAG_SIZE` in
//! netmesh-wire, re-exported by netmesh-cipher), so every path to it names one item.
//!
//! # Example
//!
//! One packet from events to events: a pool builds it, an opener opens it.
//!
//! ```
//! use netmesh::prelude::*;
//!
//! // Both sides share a key and a session id, agreed by a handshake outside netmesh.
//! let key = [0x42; 32];
//! let session_id = 0x5eed_0000_0001;
//!
//! // Sending side: a pool of builders that share one nonce counter.
//! let pool = ThreadLocalPool::new(8, &key, session_id);
//! let events = vec![
//!     Bytes::from_static(b"temperature=21.5"),
//!     Bytes::from_static(b"door=open"),
//! ];
//! let packet: Bytes = pool.get().build(7, 0, &events, PacketFlags::RELIABLE);
//! assert!(packet.len() <= netmesh::MAX_PACKET_SIZE);
//!
//! // ... `packet` travels as one UDP datagram ...
//!
//! // Receiving side: authenticate, decrypt, split.
//! let opener = PacketOpener::new(&key, session_id);
//! let opened = opener.open(packet.clone())?;
//! assert_eq!(opened.header().stream_id, 7);
//! assert_eq!(opened.header().sequence, 0);
//! let received: Vec<Bytes> = opened.events().collect();
//! assert_eq!(received, events);
//!
//! // The same datagram a second time is a replay, and refused.
//! assert!(matches!(opener.open(packet), Err(OpenError::Replayed { .. })));
//! # Ok::<(), netmesh::OpenError>(())
//! ```
//!
//! Over real UDP sockets, with a handshake, flow control and reliable streams, use
//! `netmesh-udp`'s endpoint on [`session`]: the `endpoint` example
//! (`cargo run --release --example endpoint`) shows the calls, and the project's main job,
//! `cargo run --release --bin netmesh -- bench`, runs them at full speed with every event
//! checked.
//!
//! # Features
//!
//! - `ring` (default): the assembly ChaCha20-Poly1305 of *ring*, the fastest backend.
//! - `rust-crypto`: the pure-Rust RustCrypto `chacha20poly1305` backend, used when `ring`
//!   is off (`default-features = false, features = ["rust-crypto"]`). Both backends
//!   produce identical bytes, so peers may use either. One of the two must be enabled.

#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

pub use bytes;
pub use netmesh_cipher as cipher;
pub use netmesh_pool as pool;
/// Sessions, sans-IO: handshake, flow control, reliable streams, re-keys (`netmesh-session`).
pub use netmesh_session as session;
pub use netmesh_wire as wire;

// The root, item by item: what a crate adds reaches the root only when listed here.
// Sending and receiving.
pub use netmesh_pool::{
    handshake_payload, shared_local_pool, BatchPackets, BuildError, OpenError, OpenedPacket,
    PacketBuilder, PacketOpener, PacketPool, PooledBuilder, SharedLocalPool, ThreadLocalPool,
    ThreadLocalPooledBuilder,
};
// The packet format.
pub use netmesh_wire::{
    batches, FrameCodec, NackPayload, NetHeader, PacketFlags, WireError, AAD_SIZE,
    EVENT_LEN_PREFIX, HEADER_SIZE, MAGIC, MAX_EVENTS_PER_PACKET, MAX_EVENT_SIZE, MAX_PACKET_SIZE,
    MAX_PAYLOAD_SIZE, NACK_SIZE, NONCE_SIZE, TAG_SIZE, VERSION,
};
// The cipher.
#[cfg(feature = "ring")]
pub use netmesh_cipher::RingBackend;
#[cfg(feature = "rust-crypto")]
pub use netmesh_cipher::RustCryptoBackend;
pub use netmesh_cipher::{
    Backend, CipherError, DefaultBackend, Key, PacketCipher, ReplayWindow, TxCounter, KEY_SIZE,
    MAX_COUNTER, REPLAY_WINDOW_SIZE,
};
#[cfg(feature = "openssl")]
pub use netmesh_cipher::{OpenSslBackend, OPENSSL_MIN_LEN};

/// The buffer type of every packet and event, from the `bytes` crate (re-exported so
/// that callers use the same version as netmesh).
pub use bytes::Bytes;
/// A receive buffer, from the `bytes` crate: a datagram cut from one with `split_to` is
/// opened where it lies by [`PacketOpener::open`].
pub use bytes::BytesMut;

/// The everyday items, for a glob import: `use netmesh::prelude::*;`.
///
/// Pools and their guards, the builder, the opener and what it opens (a
/// [`Datagram`](prelude::Datagram): a [`Bytes`] or a [`BytesMut`]) and returns
/// ([`OpenedPacket`], [`OpenedRef`](prelude::OpenedRef)), the two error types, the header
/// and flags. Lower-level items (the cipher, frame codecs,
/// constants) stay at the crate root.
///
/// # Examples
///
/// ```
/// use netmesh::prelude::*;
///
/// let pool: SharedLocalPool = shared_local_pool(4, &[1; 32], 9);
/// let packet = pool.get().build(1, 0, &[Bytes::from_static(b"hi")], PacketFlags::NONE);
/// let opened: OpenedPacket = PacketOpener::new(&[1; 32], 9).open(packet)?;
/// let header: &NetHeader = opened.header();
/// assert_eq!(header.event_count, 1);
/// # Ok::<(), OpenError>(())
/// ```
pub mod prelude {
    pub use bytes::{Bytes, BytesMut};
    pub use netmesh_pool::{
        shared_local_pool, BatchPackets, BuildError, Datagram, OpenError, OpenedPacket, OpenedRef,
        PacketBuilder, PacketOpener, PacketPool, PooledBuilder, SharedLocalPool, ThreadLocalPool,
        ThreadLocalPooledBuilder,
    };
    pub use netmesh_wire::{NetHeader, PacketFlags};
}

/// The README's examples, compiled and run as doctests so they cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
