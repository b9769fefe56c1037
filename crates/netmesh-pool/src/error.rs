//! Errors of the send side ([`BuildError`]) and the receive side ([`OpenError`]).

use netmesh_cipher::{CipherError, REPLAY_WINDOW_SIZE};
use netmesh_wire::WireError;

/// Why a packet could not be built.
///
/// Every variant names the cap that was exceeded; nothing is ever written to the wire
/// when a build fails.
///
/// # Examples
///
/// ```
/// use bytes::Bytes;
/// use netmesh_pool::{BuildError, PacketPool};
/// use netmesh_wire::{PacketFlags, MAX_PAYLOAD_SIZE};
///
/// let pool = PacketPool::new(1, &[3; 32], 5);
/// let too_big = Bytes::from(vec![0; MAX_PAYLOAD_SIZE]);
/// let refused = pool.get().try_build(1, 0, &[too_big], PacketFlags::NONE);
/// assert!(matches!(refused, Err(BuildError::PayloadTooLarge { .. })));
/// ```
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
    /// Pre-framed events ([`PacketBuilder::try_build_framed`](crate::PacketBuilder::try_build_framed))
    /// that are not exactly the declared number of whole frames.
    #[error("malformed frames: {0}")]
    MalformedFrames(#[source] WireError),
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

/// Why a datagram was refused by [`PacketOpener::open`](crate::PacketOpener::open) or
/// [`PacketOpener::open_in_place`](crate::PacketOpener::open_in_place) (the same error for
/// the same bytes, whichever was used).
///
/// No variant carries secret-dependent detail: an authentication failure says only that
/// it failed. Everything else describes bytes the datagram carried in the clear. The
/// outcomes the cipher crate also reports ([`CipherError`]) have the same names and
/// messages here.
///
/// # Examples
///
/// ```
/// use std::error::Error;
///
/// use netmesh_pool::{OpenError, PacketOpener};
/// use netmesh_wire::WireError;
///
/// let opener = PacketOpener::new(&[1; 32], 2);
/// let error = opener.open(bytes::Bytes::from_static(b"short")).unwrap_err();
/// let cause = WireError::TooShort { len: 5, need: 68 };
/// assert_eq!(error, OpenError::MalformedHeader(cause));
/// // The wire error is the source; its text is not repeated in this message.
/// assert_eq!(error.to_string(), "malformed header");
/// assert_eq!(error.source().map(ToString::to_string), Some(cause.to_string()));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The header is malformed: too short, bad magic or version, or a length over its cap.
    #[error("malformed header")]
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
    /// The tag did not verify: wrong key, forged or corrupted packet
    /// ([`CipherError::AuthFailed`]).
    #[error("authentication failed")]
    AuthFailed,
    /// This counter has been accepted before ([`CipherError::Replayed`]).
    #[error("counter {counter} was already accepted")]
    Replayed {
        /// The header's counter.
        counter: u64,
    },
    /// The counter is older than the replay window ([`CipherError::TooOld`]).
    #[error(
        "counter {counter} is too old: the window ends {window} below {highest}",
        window = REPLAY_WINDOW_SIZE
    )]
    TooOld {
        /// The header's counter.
        counter: u64,
        /// The highest counter accepted so far.
        highest: u64,
    },
    /// The counter jumps too far ahead of the highest accepted one
    /// ([`CipherError::TooFarAhead`]).
    #[error("counter {counter} is too far ahead of the highest accepted {highest}")]
    TooFarAhead {
        /// The header's counter.
        counter: u64,
        /// The highest counter accepted so far, or 0 when nothing has been accepted yet.
        highest: u64,
    },
    /// The counter `u64::MAX`, which no sender may use ([`CipherError::CounterReserved`]).
    #[error("counter {counter} is reserved and never accepted")]
    CounterReserved {
        /// The header's counter.
        counter: u64,
    },
    /// A cipher error that is no outcome of opening a packet (the receive path does not
    /// produce one): kept as it is rather than reported as something it is not.
    #[error("cipher error on the receive path")]
    Cipher(#[source] CipherError),
    /// The decrypted payload does not split into exactly `event_count` frames.
    #[error("malformed event frames")]
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
            CipherError::AuthFailed => Self::AuthFailed,
            CipherError::Replayed { counter } => Self::Replayed { counter },
            CipherError::TooOld { counter, highest } => Self::TooOld { counter, highest },
            CipherError::TooFarAhead { counter, highest } => Self::TooFarAhead { counter, highest },
            CipherError::CounterReserved { counter } => Self::CounterReserved { counter },
            // Send-side conditions: the receive path cannot produce them.
            CipherError::BufferTooLarge { .. } | CipherError::CounterExhausted => {
                Self::Cipher(error)
            }
            // The library failed, not the packet: reported as itself, never as a tag.
            CipherError::BackendFailed { .. } => Self::Cipher(error),
            // Required by `#[non_exhaustive]` on another crate's enum. A future variant
            // is reported as itself, never as a failed tag or a replay; give it an arm
            // above when it appears.
            _ => Self::Cipher(error),
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

    /// One of each `CipherError` variant (non-exhaustive: the match below is
    /// exhaustive only inside this workspace's knowledge, so a new variant must be added
    /// here and to the `From` impl by hand).
    fn every_cipher_error() -> [CipherError; 8] {
        [
            CipherError::AuthFailed,
            CipherError::BackendFailed { backend: "openssl" },
            CipherError::BufferTooLarge {
                len: 9000,
                max: 8108,
            },
            CipherError::CounterExhausted,
            CipherError::CounterReserved { counter: u64::MAX },
            CipherError::Replayed { counter: 5 },
            CipherError::TooFarAhead {
                counter: 5000,
                highest: 1,
            },
            CipherError::TooOld {
                counter: 1,
                highest: 2000,
            },
        ]
    }

    #[test]
    fn each_cipher_error_maps_to_the_variant_of_the_same_name() {
        let mapped = every_cipher_error().map(OpenError::from);
        assert_eq!(
            mapped,
            [
                OpenError::AuthFailed,
                OpenError::Cipher(CipherError::BackendFailed { backend: "openssl" }),
                OpenError::Cipher(CipherError::BufferTooLarge {
                    len: 9000,
                    max: 8108
                }),
                OpenError::Cipher(CipherError::CounterExhausted),
                OpenError::CounterReserved { counter: u64::MAX },
                OpenError::Replayed { counter: 5 },
                OpenError::TooFarAhead {
                    counter: 5000,
                    highest: 1
                },
                OpenError::TooOld {
                    counter: 1,
                    highest: 2000
                },
            ]
        );
        // Same condition, same name (checked through Debug) and same message.
        for (cipher, open) in every_cipher_error().into_iter().zip(mapped) {
            if let OpenError::Cipher(inner) = open {
                assert_eq!(inner, cipher);
                continue;
            }
            let name = |debug: String| debug.split([' ', '{']).next().map(str::to_owned);
            assert_eq!(name(format!("{open:?}")), name(format!("{cipher:?}")));
            assert_eq!(open.to_string(), cipher.to_string());
        }
    }

    #[test]
    fn the_window_size_in_messages_is_the_constant() {
        let message = OpenError::TooOld {
            counter: 1,
            highest: 5000,
        }
        .to_string();
        assert!(message.contains(&format!(" {REPLAY_WINDOW_SIZE} below 5000")));
    }

    #[test]
    fn wrapped_errors_are_sources_and_not_repeated_in_the_message() {
        use std::error::Error;
        let wire = WireError::TooFewFrames {
            declared: 3,
            found: 2,
        };
        let cipher = CipherError::CounterExhausted;
        for (error, inner) in [
            (OpenError::MalformedHeader(wire), wire.to_string()),
            (OpenError::MalformedFrames(wire), wire.to_string()),
            (OpenError::Cipher(cipher), cipher.to_string()),
        ] {
            assert!(!error.to_string().contains(&inner), "{error}");
            assert_eq!(error.source().map(ToString::to_string), Some(inner));
        }
    }
}
