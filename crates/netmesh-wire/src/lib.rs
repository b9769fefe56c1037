//! The netmesh wire protocol: packet constants, [`PacketFlags`], the 68-byte
//! [`NetHeader`], event frames ([`FrameCodec`]), the packet-sized [`batches`] splitter and
//! the [`NackPayload`].
//!
//! Scope: no cryptography and no I/O (sans-IO): this crate only turns values into bytes
//! and bytes into values. Decoding never allocates (except the compatibility
//! [`FrameCodec::read_events`], which allocates no more than its input could hold),
//! never panics on any input, and never sizes anything by an untrusted length.
//! The format is byte for byte that of net-mesh 0.23; `docs/WIRE.md` in the repository
//! describes it.
//!
//! | piece | type |
//! |---|---|
//! | header (68 bytes) | [`NetHeader`], [`NetHeader::parse`], [`NetHeader::to_bytes`] |
//! | associated data (56 bytes) | [`NetHeader::aad`], [`aad_from_bytes`] |
//! | nonce (header bytes 12..24) | [`compose_nonce`], [`nonce_prefix`], [`nonce_counter`] |
//! | flags byte | [`PacketFlags`] |
//! | payload (event frames) | [`FrameCodec`], [`OwnedEvents`], [`BorrowedEvents`], [`batches`] |
//! | NACK payload (16 bytes) | [`NackPayload`] |
//! | every decode failure | [`WireError`] |
//!
//! # Examples
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use netmesh_wire::{FrameCodec, NetHeader, PacketFlags, HEADER_SIZE};
//!
//! let events = [Bytes::from_static(b"hello"), Bytes::from_static(b"mesh")];
//! let mut payload = BytesMut::new();
//! let len = FrameCodec::write_events(&events, &mut payload);
//!
//! let header = NetHeader::new(7, 1, 0, [0; 12], u16::try_from(len)?, 2, PacketFlags::RELIABLE);
//! let wire: [u8; HEADER_SIZE] = header.to_bytes();
//!
//! let parsed = NetHeader::parse(&wire)?;
//! assert_eq!(parsed, header);
//! let decoded = FrameCodec::decode_strict(payload.freeze(), usize::from(parsed.event_count))?;
//! assert!(decoded.eq(events));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod batch;
mod compat;
mod error;
mod event;
mod flags;
mod frame;
mod header;
mod nack;
mod nonce;
mod reader;

pub use batch::{batches, batches_of, check_event, EventBatches};
// The reference-named aliases, by glob so that tools/rename.sh leaves this line alone.
#[allow(deprecated)]
pub use compat::*;
pub use error::WireError;
pub use event::AsEvent;
pub use flags::PacketFlags;
pub use frame::{BorrowedEvents, FrameCodec, OwnedEvents};
pub use header::{aad_from_bytes, NetHeader};
pub use nack::{MissingSequences, NackPayload};
pub use nonce::{compose_nonce, nonce_counter, nonce_prefix, NONCE_PREFIX_SIZE};

/// First two bytes of every packet: "NE" read as a little-endian u16 (bytes `45 4e`).
pub const MAGIC: u16 = 0x4E45;
/// Protocol version carried in header byte 2.
pub const VERSION: u8 = 1;
/// Bytes of header on the wire.
pub const HEADER_SIZE: usize = 68;
/// Wire offset, in bytes, of the header's `payload_len` field.
pub const PAYLOAD_LEN_OFFSET: usize = 64;
/// Bytes of ChaCha20-Poly1305 nonce (header bytes 12..24), laid out as
/// [`compose_nonce`] says. The one definition: `netmesh-cipher` re-exports it.
pub const NONCE_SIZE: usize = 12;
/// Bytes of Poly1305 tag after the payload. The one definition: `netmesh-cipher`
/// re-exports it.
pub const TAG_SIZE: usize = 16;
/// Largest packet in bytes: header, payload and tag.
pub const MAX_PACKET_SIZE: usize = 8192;
/// Largest payload in bytes (plaintext, tag not counted).
pub const MAX_PAYLOAD_SIZE: usize = 8108;
/// Bytes of the `u32` little-endian length prefix before each event.
pub const EVENT_LEN_PREFIX: usize = 4;
/// Largest event in bytes: one that fills a packet's payload alone, after its prefix.
pub const MAX_EVENT_SIZE: usize = MAX_PAYLOAD_SIZE - EVENT_LEN_PREFIX;
/// Most events one packet can carry: every event costs at least its length prefix.
pub const MAX_EVENTS_PER_PACKET: usize = 2027;
/// Bytes of AEAD associated data: the header without nonce, hop count zeroed.
pub const AAD_SIZE: usize = 56;
/// Bytes of a NACK payload.
pub const NACK_SIZE: usize = 16;

const _: () = assert!(HEADER_SIZE == 68);
const _: () = assert!(PAYLOAD_LEN_OFFSET + 2 * 2 == HEADER_SIZE);
const _: () = assert!(MAX_PAYLOAD_SIZE == MAX_PACKET_SIZE - HEADER_SIZE - TAG_SIZE);
const _: () = assert!(MAX_EVENTS_PER_PACKET == MAX_PAYLOAD_SIZE / EVENT_LEN_PREFIX);
const _: () = assert!(AAD_SIZE == HEADER_SIZE - NONCE_SIZE);
const _: () = assert!(NACK_SIZE == 2 * 8);
// payload_len and event_count are u16 on the wire: both caps must fit.
const _: () = assert!(MAX_PAYLOAD_SIZE <= u16::MAX as usize);
const _: () = assert!(MAX_EVENTS_PER_PACKET <= u16::MAX as usize);
