//! The one error type of this crate.

/// Everything that can go wrong while sealing, opening or admitting a packet.
///
/// Replay outcomes (`Replayed`, `TooOld`, `TooFarAhead`, `CounterReserved`) are distinct
/// so that a receiver can count them separately; an authentication failure is a unit
/// variant that carries nothing derived from the secret or the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CipherError {
    /// The tag did not verify: wrong key, wrong counter, wrong associated data, or a
    /// modified ciphertext or tag. Also returned for input shorter than a tag.
    #[error("authentication failed")]
    AuthFailed,
    /// The input is longer than the operation accepts: longer than [`MAX_VERIFY_LEN`]
    /// for [`verify`](crate::PacketCipher::verify), or beyond the AEAD's limit of
    /// 274 877 906 880 bytes for sealing.
    ///
    /// [`MAX_VERIFY_LEN`]: crate::MAX_VERIFY_LEN
    #[error("input of {len} bytes exceeds the maximum of {max}")]
    BufferTooLarge {
        /// Length of the input in bytes.
        len: usize,
        /// Largest length accepted.
        max: usize,
    },
    /// The transmit counter has handed out [`MAX_COUNTER`](crate::MAX_COUNTER): no nonce
    /// is left for this key, so the session must be re-keyed.
    #[error("transmit counter exhausted: the session must be re-keyed")]
    CounterExhausted,
    /// The AEAD library failed for a reason other than the tag: an allocation inside
    /// OpenSSL, in practice. Nothing was sealed; an open leaves no plaintext.
    #[error("the {backend} AEAD backend failed")]
    BackendFailed {
        /// The backend's [`Backend::NAME`](crate::Backend::NAME).
        backend: &'static str,
    },
    /// The counter `u64::MAX`, which no sender uses and no window accepts.
    #[error("counter {counter} is reserved and never accepted")]
    CounterReserved {
        /// The refused counter.
        counter: u64,
    },
    /// The counter has already been accepted by this window.
    #[error("counter {counter} was already accepted")]
    Replayed {
        /// The replayed counter.
        counter: u64,
    },
    /// The counter is more than [`REPLAY_WINDOW_SIZE`](crate::REPLAY_WINDOW_SIZE) ahead of
    /// `highest + 1`.
    #[error("counter {counter} is too far ahead of the highest accepted {highest}")]
    TooFarAhead {
        /// The refused counter.
        counter: u64,
        /// The highest counter accepted so far, or 0 when nothing has been accepted yet
        /// (an empty window accepts counters 0 to 1024).
        highest: u64,
    },
    /// The counter is at least [`REPLAY_WINDOW_SIZE`](crate::REPLAY_WINDOW_SIZE) below the
    /// highest accepted one, so the window no longer knows whether it was seen.
    #[error(
        "counter {counter} is too old: the window ends {window} below {highest}",
        window = crate::REPLAY_WINDOW_SIZE
    )]
    TooOld {
        /// The refused counter.
        counter: u64,
        /// The highest counter accepted so far.
        highest: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lower_case_without_trailing_period() {
        let all = [
            CipherError::AuthFailed,
            CipherError::BufferTooLarge {
                len: 9000,
                max: 8108,
            },
            CipherError::CounterExhausted,
            CipherError::BackendFailed { backend: "openssl" },
            CipherError::CounterReserved { counter: u64::MAX },
            CipherError::Replayed { counter: 3 },
            CipherError::TooFarAhead {
                counter: 5000,
                highest: 1,
            },
            CipherError::TooOld {
                counter: 1,
                highest: 2000,
            },
        ];
        for error in all {
            let message = error.to_string();
            assert!(message.starts_with(|c: char| c.is_lowercase()), "{message}");
            assert!(!message.ends_with('.'), "{message}");
        }
        assert_eq!(CipherError::AuthFailed.to_string(), "authentication failed");
    }
}
