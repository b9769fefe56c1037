//! Packet builders and pools (the send side) and the packet opener (the receive side) of
//! netmesh.
//!
//! Sending: a [`PacketBuilder`] frames events, encrypts them in place with
//! ChaCha20-Poly1305 under a counter nonce, and writes the 68-byte header in front, in
//! one buffer and one pass. Builders live in a lock-free [`PacketPool`] or a
//! [`ThreadLocalPool`] (a per-thread cache in front of a shared queue); every builder of
//! a pool shares one TX counter, so no nonce is ever used twice. In steady state a build
//! allocates nothing. Packets are byte-identical to net-mesh 0.23's.
//!
//! Receiving: a [`PacketOpener`] checks a datagram's header and length, authenticates and
//! decrypts it, admits its counter to a replay window and splits the events, zero copy.
//! It opens a [`Bytes`](bytes::Bytes) or a [`BytesMut`](bytes::BytesMut) (a `BytesMut`
//! cut from a receive buffer is decrypted where it lies, without allocating), or, with
//! [`PacketOpener::open_in_place`], a slice of the caller's own buffer.
//!
//! # Examples
//!
//! ```
//! use bytes::Bytes;
//! use netmesh_pool::{PacketOpener, ThreadLocalPool};
//! use netmesh_wire::PacketFlags;
//!
//! let key = [7; 32];
//! let session = 0x0123_4567_89ab_cdef;
//! let pool = ThreadLocalPool::new(8, &key, session);
//! let opener = PacketOpener::new(&key, session);
//!
//! let events = vec![Bytes::from_static(b"alpha"), Bytes::from_static(b"beta")];
//! let packet = pool.get().build(9, 0, &events, PacketFlags::RELIABLE);
//! let opened = opener.open(packet)?;
//! assert_eq!(opened.events().collect::<Vec<_>>(), events);
//! # Ok::<(), netmesh_pool::OpenError>(())
//! ```
//!
//! # Features
//!
//! - `ring` (default): the assembly AEAD backend of netmesh-cipher. Without it the
//!   pure-Rust RustCrypto backend is used; both produce the same bytes.
#![doc(test(attr(deny(warnings))))]
#![deny(unsafe_code)]

/// `Deref`/`DerefMut` to the lent [`PacketBuilder`], `Drop` handing it back through
/// `pool.$give_back(builder)`, and `Debug`, for a guard with fields `pool` and
/// `builder: Option<PacketBuilder>` (present until the guard drops).
macro_rules! builder_guard {
    ($guard:ident, $give_back:ident) => {
        impl std::ops::Deref for $guard<'_> {
            type Target = $crate::PacketBuilder;

            #[inline]
            fn deref(&self) -> &$crate::PacketBuilder {
                self.builder
                    .as_ref()
                    .expect("a pooled builder is present until drop")
            }
        }

        impl std::ops::DerefMut for $guard<'_> {
            #[inline]
            fn deref_mut(&mut self) -> &mut $crate::PacketBuilder {
                self.builder
                    .as_mut()
                    .expect("a pooled builder is present until drop")
            }
        }

        impl Drop for $guard<'_> {
            #[inline]
            fn drop(&mut self) {
                if let Some(builder) = self.builder.take() {
                    self.pool.$give_back(builder);
                }
            }
        }

        impl std::fmt::Debug for $guard<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_tuple(stringify!($guard))
                    .field(&self.builder)
                    .finish()
            }
        }
    };
}
pub(crate) use builder_guard;

mod builder;
mod chunk;
mod error;
mod local;
mod recv;
mod residue;
mod shared;

pub use builder::{BatchPackets, PacketBuilder};
pub use error::{BuildError, OpenError};
pub use local::{shared_local_pool, SharedLocalPool, ThreadLocalPool, ThreadLocalPooledBuilder};
pub use recv::{
    handshake_payload, Datagram, EventSlices, OpenedPacket, OpenedRef, PacketOpener, SplitDatagram,
};
pub use shared::{PacketPool, PooledBuilder};
