//! The one error type of the crate.

/// Why bytes are not a well-formed piece of the wire format.
///
/// Variants carry the numbers that were wrong, never text, so that a caller can match
/// on them and a log line shows what the peer sent. Variants follow the order in which
/// a packet is checked: header, then payload frames, then NACK and batching.
///
/// # Examples
///
/// ```
/// use netmesh_wire::{NetHeader, WireError};
///
/// let err = NetHeader::parse(&[0; 10]).unwrap_err();
/// assert_eq!(err, WireError::TooShort { len: 10, need: 68 });
/// assert_eq!(err.to_string(), "header needs 68 bytes, got 10");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The input is shorter than a header.
    #[error("header needs {need} bytes, got {len}")]
    TooShort {
        /// Bytes available.
        len: usize,
        /// Bytes a header needs ([`HEADER_SIZE`](crate::HEADER_SIZE)).
        need: usize,
    },
    /// The first two bytes are not [`MAGIC`](crate::MAGIC).
    #[error("bad magic {found:#06x}")]
    BadMagic {
        /// The magic found, read as a little-endian u16.
        found: u16,
    },
    /// The version byte is not [`VERSION`](crate::VERSION).
    #[error("unsupported version {found}")]
    BadVersion {
        /// The version found.
        found: u8,
    },
    /// The header declares a payload longer than the largest a packet may carry.
    #[error("payload length {len} exceeds maximum {max}")]
    PayloadTooLong {
        /// The declared payload length.
        len: usize,
        /// The largest allowed ([`MAX_PAYLOAD_SIZE`](crate::MAX_PAYLOAD_SIZE)).
        max: usize,
    },
    /// The header declares more events than a packet can hold.
    #[error("event count {count} exceeds maximum {max}")]
    TooManyEvents {
        /// The declared event count.
        count: usize,
        /// The largest allowed ([`MAX_EVENTS_PER_PACKET`](crate::MAX_EVENTS_PER_PACKET)).
        max: usize,
    },
    /// A frame's length prefix is cut off: fewer than 4 bytes remain where one starts.
    #[error("length prefix of frame {index} truncated: {available} of 4 bytes")]
    LengthPrefixTruncated {
        /// Zero-based index of the frame.
        index: usize,
        /// Bytes left where the prefix should be (1 to 3).
        available: usize,
    },
    /// A frame declares more bytes than remain after its length prefix.
    #[error("frame {index} length {len} exceeds remaining {available}")]
    FrameTruncated {
        /// Zero-based index of the frame.
        index: usize,
        /// Length the prefix declares.
        len: usize,
        /// Bytes left after the prefix.
        available: usize,
    },
    /// The payload ends after fewer whole frames than the header declares.
    #[error("payload holds {found} frames, header declares {declared}")]
    TooFewFrames {
        /// Frames the header declares.
        declared: usize,
        /// Whole frames found.
        found: usize,
    },
    /// Another whole frame follows the declared number of frames.
    #[error("payload holds more than the {declared} frames the header declares")]
    TooManyFrames {
        /// Frames the header declares.
        declared: usize,
    },
    /// Bytes that do not form a whole frame follow the declared frames.
    #[error("{count} trailing bytes after the last frame")]
    TrailingBytes {
        /// Number of bytes left over.
        count: usize,
    },
    /// A NACK payload is not exactly [`NACK_SIZE`](crate::NACK_SIZE) bytes.
    #[error("nack payload must be 16 bytes, got {len}")]
    NackLength {
        /// Bytes given.
        len: usize,
    },
    /// An event cannot fit in a packet even alone.
    #[error("event {index} of {len} bytes exceeds the largest that fits a packet, {max}")]
    EventTooLarge {
        /// Zero-based index of the event in the input.
        index: usize,
        /// Its length in bytes.
        len: usize,
        /// The longest event that fits alone (`MAX_PAYLOAD_SIZE - EVENT_LEN_PREFIX`).
        max: usize,
    },
}
