//! The one schema of `vectors/reference-packets.json`, the reference implementation's
//! packets and encodings, and the hex helpers every test reading it uses.
//!
//! Fields are named exactly as in the file (u64 values are `0x` hex strings, byte strings
//! lowercase hex); see the file's `about` entry. Unknown fields are refused, so the
//! schema and the file cannot drift apart.
// The fields are the file's, documented there and in WIRE.md; one line each would only
// repeat their names.
#![allow(missing_docs)]

use bytes::Bytes;
use serde::Deserialize;

/// The reference vectors file, read at compile time.
pub const REFERENCE_PACKETS: &str = include_str!("../../../vectors/reference-packets.json");

/// The Wycheproof ChaCha20-Poly1305 vectors file, read at compile time.
pub const WYCHEPROOF_CHACHA20_POLY1305: &str =
    include_str!("../../../vectors/wycheproof/chacha20_poly1305_test.json");

/// The parsed reference vectors.
///
/// # Panics
///
/// If the file does not match the schema.
#[must_use]
pub fn reference() -> Vectors {
    serde_json::from_str(REFERENCE_PACKETS).expect("reference-packets.json matches the schema")
}

/// A u64 written as a `0x`-prefixed hex string.
///
/// # Panics
///
/// If `text` is not one.
#[must_use]
pub fn u64_hex(text: &str) -> u64 {
    let digits = text.strip_prefix("0x").expect("u64 values start with 0x");
    u64::from_str_radix(digits, 16).expect("u64 hex")
}

/// A hex byte string.
///
/// # Panics
///
/// If `text` is not hex.
#[must_use]
pub fn bytes_hex(text: &str) -> Vec<u8> {
    hex::decode(text).expect("byte strings are hex")
}

/// A 32-byte key written in hex.
///
/// # Panics
///
/// If `text` is not 32 bytes of hex.
#[must_use]
pub fn key_hex(text: &str) -> [u8; 32] {
    bytes_hex(text).try_into().expect("keys are 32 bytes")
}

/// Events written as hex strings.
///
/// # Panics
///
/// If one is not hex.
#[must_use]
pub fn events_hex(events: &[String]) -> Vec<Bytes> {
    events
        .iter()
        .map(|event| Bytes::from(bytes_hex(event)))
        .collect()
}

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vectors {
    pub about: String,
    pub constants: Constants,
    pub headers: Vec<HeaderVector>,
    pub event_frames: Vec<FramesVector>,
    pub nacks: Vec<NackVector>,
    pub data_packets: Vec<DataPacket>,
    pub heartbeats: Vec<Heartbeat>,
    pub handshakes: Vec<Handshake>,
}

/// The protocol constants as the reference defines them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)] // Named as in the file, which names them as the constants.
pub struct Constants {
    pub EVENT_LEN_PREFIX: usize,
    pub HEADER_SIZE: usize,
    pub MAGIC: u16,
    pub MAX_EVENTS_PER_PACKET: usize,
    pub MAX_PACKET_SIZE: usize,
    pub MAX_PAYLOAD_SIZE: usize,
    pub NACK_SIZE: usize,
    pub NONCE_SIZE: usize,
    pub PAYLOAD_LEN_OFFSET: usize,
    pub TAG_SIZE: usize,
    pub VERSION: u8,
}

/// A header, its wire bytes and AAD, and whether it parses.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderVector {
    pub header: HeaderFields,
    pub bytes: String,
    pub aad: String,
    pub valid: bool,
}

/// Every header field.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderFields {
    pub magic: u16,
    pub version: u8,
    pub flags: u8,
    pub priority: u8,
    pub hop_ttl: u8,
    pub hop_count: u8,
    pub frag_flags: u8,
    pub subprotocol_id: u16,
    pub channel_hash: u16,
    pub nonce: String,
    pub session_id: String,
    pub stream_id: String,
    pub sequence: String,
    pub origin_hash: String,
    pub subnet_id: u32,
    pub fragment_id: u16,
    pub fragment_offset: u16,
    pub payload_len: u16,
    pub event_count: u16,
}

/// Events and their frames.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FramesVector {
    pub events: Vec<String>,
    pub bytes: String,
}

/// A NACK payload and what it says.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NackVector {
    pub next_expected: String,
    pub missing_bitmap: String,
    pub bytes: String,
    pub missing: Vec<String>,
}

/// A data packet the reference built, with everything it was built from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataPacket {
    pub kind: String,
    pub key: String,
    pub session_id: String,
    pub stream_id: String,
    pub sequence: String,
    pub counter: u64,
    pub flags: u8,
    pub origin_hash: String,
    pub channel_hash: u16,
    pub subprotocol_id: u16,
    pub events: Vec<String>,
    pub packet: String,
}

/// A heartbeat the reference built.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    pub key: String,
    pub session_id: String,
    pub counter: u64,
    pub packet: String,
}

/// A handshake packet and its payload.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Handshake {
    pub payload: String,
    pub packet: String,
}
