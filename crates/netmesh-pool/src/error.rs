//! Errors of the send side ([`BuildError`]) and the receive side ([`OpenError`]).

use netmesh_cipher::CipherError;
use netmesh_wire::WireError;

/// Why a packet could not be built.
///
/// Every variant names the cap that was exceeded; nothing is ever written to the wire
/// when a build fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// More events than one packet can declare.
    #[error("too many events for one packet: {count} > MAX_EVENTS_PER_PACKET ({max})")]
    TooManyEvents {
        /// Events given.
        count: usize,
        /// `MAX_EVENTS_PER_PACKET`.
        max: usize,
    },
    /// The framed events do not fit one packet's payload.
    #[error("payload too large for one packet: {len} bytes > MAX_PAYLOAD_SIZE ({max})")]
    PayloadTooLarge {
        /// Framed payload length in bytes.
        len: usize,
        /// `MAX_PAYLOAD_SIZE`.
        max: usize,
    },
    /// One event cannot fit a packet even alone (batch building).
    #[error("event {index} of {len} bytes cannot fit any packet (at most {max} bytes)")]
    EventTooLarge {
        /// Position of the event in the input.
        index: usize,
        /// Its length in bytes.
        len: usize,
        /// The largest event a packet can carry: `MAX_PAYLOAD_SIZE - 4`.
        max: usize,
    },
    /// The session's TX nonce counter is used up: the session must be re-keyed.
    #[error("TX nonce counter exhausted: re-key the session")]
    CounterExhausted,
    /// The AEAD backend refused to seal (not expected with valid sizes).
    #[error("encryption failed: {0}")]
    Cipher(CipherError),
}

impl From<CipherError> for BuildError {
    fn from(error: CipherError) -> Self {
        match error {
            CipherError::CounterExhausted => Self::CounterExhausted,
            other => Self::Cipher(other),
        }
    }
}

/// Why a datagram was refused by [`PacketOpener::open`](crate::PacketOpener::open).
///
/// No variant carries secret-dependent detail: an authentication failure says only that
/// it failed. Everything else describes bytes the datagram carried in the clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The header is malformed: too short, bad magic or version, or a length over its cap.
    #[error("malformed header: {0}")]
    MalformedHeader(#[source] WireError),
    /// The datagram is not exactly `68 + payload_len + 16` bytes long.
    #[error("datagram is {actual} bytes, its header declares {expected}")]
    WrongLength {
        /// `HEADER_SIZE + payload_len + TAG_SIZE`.
        expected: usize,
        /// The datagram's length.
        actual: usize,
    },
    /// The packet belongs to another session.
    #[error("session {found:#018x} does not match this opener's {expected:#018x}")]
    WrongSession {
        /// This opener's session id.
        expected: u64,
        /// The header's session id.
        found: u64,
    },
    /// The nonce prefix (header bytes 12..16) is not the one derived from the session id.
    #[error("nonce prefix {found:02x?} does not match the session's {expected:02x?}")]
    WrongNoncePrefix {
        /// The prefix derived from this opener's session id.
        expected: [u8; 4],
        /// The header's prefix.
        found: [u8; 4],
    },
    /// The tag did not verify: wrong key, forged or corrupted packet.
    #[error("authentication failed")]
    AuthFailed,
    /// This counter has been accepted before.
    #[error("replayed packet: counter {counter} was already accepted")]
    Replayed {
        /// The header's counter.
        counter: u64,
    },
    /// The counter is older than the replay window.
    #[error("counter {counter} is too old: the window ends 1024 below {highest}")]
    TooOld {
        /// The header's counter.
        counter: u64,
        /// The highest counter accepted so far.
        highest: u64,
    },
    /// The counter jumps too far ahead of the highest accepted one.
    #[error("counter {counter} is too far ahead of the highest accepted {highest}")]
    TooFarAhead {
        /// The header's counter.
        counter: u64,
        /// The highest counter accepted so far.
        highest: u64,
    },
    /// The counter `u64::MAX`, which no sender may use.
    #[error("counter {counter} is reserved and never accepted")]
    ReservedCounter {
        /// The header's counter.
        counter: u64,
    },
    /// The decrypted payload does not split into exactly `event_count` frames.
    #[error("malformed event frames: {0}")]
    MalformedFrames(#[source] WireError),
    /// A handshake packet: not encrypted, so `open` refuses it. See
    /// [`handshake_payload`](crate::handshake_payload).
    #[error("handshake packet: read it with handshake_payload, not open")]
    Handshake,
    /// [`handshake_payload`](crate::handshake_payload) was given a packet without the
    /// HANDSHAKE flag.
    #[error("not a handshake packet (flags {flags:#04x})")]
    NotHandshake {
        /// The header's flags.
        flags: u8,
    },
}

impl From<WireError> for OpenError {
    fn from(error: WireError) -> Self {
        Self::MalformedHeader(error)
    }
}

impl From<CipherError> for OpenError {
    fn from(error: CipherError) -> Self {
        match error {
            CipherError::Duplicate { counter } => Self::Replayed { counter },
            CipherError::TooOld { counter, highest } => Self::TooOld { counter, highest },
            CipherError::TooFarAhead { counter, highest } => Self::TooFarAhead { counter, highest },
            CipherError::CounterReserved { counter } => Self::ReservedCounter { counter },
            // Everything else the cipher reports on the receive path is a failed tag.
            _ => Self::AuthFailed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_error_messages_name_the_cap() {
        let e = BuildError::TooManyEvents {
            count: 2028,
            max: 2027,
        };
        assert!(e.to_string().contains("MAX_EVENTS_PER_PACKET (2027)"));
        let e = BuildError::PayloadTooLarge {
            len: 8109,
            max: 8108,
        };
        assert!(e.to_string().contains("MAX_PAYLOAD_SIZE (8108)"));
    }

    #[test]
    fn cipher_exhaustion_maps_to_its_own_variant() {
        assert_eq!(
            BuildError::from(CipherError::CounterExhausted),
            BuildError::CounterExhausted
        );
    }

    #[test]
    fn replay_outcomes_stay_distinct() {
        assert_eq!(
            OpenError::from(CipherError::Duplicate { counter: 5 }),
            OpenError::Replayed { counter: 5 }
        );
        assert_eq!(
            OpenError::from(CipherError::TooOld {
                counter: 1,
                highest: 2000
            }),
            OpenError::TooOld {
                counter: 1,
                highest: 2000
            }
        );
        assert_eq!(
            OpenError::from(CipherError::TooFarAhead {
                counter: 5000,
                highest: 1
            }),
            OpenError::TooFarAhead {
                counter: 5000,
                highest: 1
            }
        );
        assert_eq!(
            OpenError::from(CipherError::CounterReserved { counter: u64::MAX }),
            OpenError::ReservedCounter { counter: u64::MAX }
        );
        assert_eq!(
            OpenError::from(CipherError::AuthFailed),
            OpenError::AuthFailed
        );
    }
}
