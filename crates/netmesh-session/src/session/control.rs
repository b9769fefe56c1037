//! Payloads of the control messages (CREDIT, ACK, SKIP, grants): little-endian words.

#[cfg(test)]
use bytes::Bytes;

/// Reads `N` little-endian u64 words from an event of exactly `8 * N` bytes.
pub(crate) fn words<const N: usize>(event: &[u8]) -> Option<[u64; N]> {
    if event.len() != 8 * N {
        return None;
    }
    let mut out = [0; N];
    for (word, chunk) in out.iter_mut().zip(event.chunks_exact(8)) {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(chunk);
        *word = u64::from_le_bytes(bytes);
    }
    Some(out)
}

/// One event of little-endian u64 words.
#[cfg(test)]
pub(crate) fn event<const N: usize>(values: [u64; N]) -> Bytes {
    let mut out = Vec::with_capacity(8 * N);
    for value in values {
        out.extend_from_slice(&value.to_le_bytes());
    }
    Bytes::from(out)
}

/// CREDIT: `watermark ‖ window ‖ session_id` (24 bytes). The session id names the key
/// generation whose counters the credit is about, so credit never crosses a re-key. A
/// 16-byte CREDIT (as SESSION-DESIGN.md first described it) applies to the current key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Credit {
    pub(crate) watermark: u64,
    pub(crate) window: u64,
    pub(crate) session_id: Option<u64>,
}

impl Credit {
    pub(crate) fn parse(event: &[u8]) -> Option<Self> {
        if let Some([watermark, window, session_id]) = words::<3>(event) {
            return Some(Self {
                watermark,
                window,
                session_id: Some(session_id),
            });
        }
        words::<2>(event).map(|[watermark, window]| Self {
            watermark,
            window,
            session_id: None,
        })
    }

    #[cfg(test)]
    pub(crate) fn encode(self) -> Bytes {
        event([
            self.watermark,
            self.window,
            self.session_id.unwrap_or_default(),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_refuse_other_lengths() {
        let e = event([1, u64::MAX]);
        assert_eq!(words::<2>(&e), Some([1, u64::MAX]));
        assert_eq!(words::<2>(&e[..15]), None);
        assert_eq!(words::<3>(&e), None);
    }

    #[test]
    fn credit_both_lengths() {
        let c = Credit {
            watermark: 5,
            window: 7,
            session_id: Some(9),
        };
        assert_eq!(Credit::parse(&c.encode()), Some(c));
        let short = event([5, 7]);
        assert_eq!(
            Credit::parse(&short),
            Some(Credit {
                watermark: 5,
                window: 7,
                session_id: None
            })
        );
        assert_eq!(Credit::parse(&[0; 17]), None);
    }
}
