//! The NACK payload a receiver sends for a reliable stream.

use std::fmt;
use std::iter::FusedIterator;

use crate::reader::Reader;
use crate::{WireError, NACK_SIZE};

/// The 16-byte payload of a NACK: `next_expected (u64 LE) ‖ missing_bitmap (u64 LE)`.
///
/// `next_expected` is the first sequence not received (every sequence below it has
/// been); bit `i` of `missing_bitmap` set means `next_expected + 1 + i` is missing too.
///
/// # Examples
///
/// ```
/// use netmesh_wire::NackPayload;
///
/// let nack = NackPayload { next_expected: 10, missing_bitmap: 0b101 };
/// let bytes = nack.to_bytes();
/// assert_eq!(NackPayload::from_bytes(&bytes), Some(nack));
/// assert_eq!(nack.missing_sequences().collect::<Vec<_>>(), [10, 11, 13]);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NackPayload {
    /// First sequence the receiver has not received.
    pub next_expected: u64,
    /// Bit `i` set: sequence `next_expected + 1 + i` is missing.
    pub missing_bitmap: u64,
}

impl NackPayload {
    /// Bytes of a NACK payload.
    pub const SIZE: usize = NACK_SIZE;

    /// The 16 wire bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::NackPayload;
    ///
    /// let bytes = NackPayload { next_expected: 1, missing_bitmap: 2 }.to_bytes();
    /// assert_eq!(bytes, [1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
    /// ```
    #[inline]
    #[must_use]
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut out = [0; Self::SIZE];
        out[..8].copy_from_slice(&self.next_expected.to_le_bytes());
        out[8..].copy_from_slice(&self.missing_bitmap.to_le_bytes());
        out
    }

    /// Decodes a payload of exactly 16 bytes; `None` for any other length.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::NackPayload;
    ///
    /// assert!(NackPayload::from_bytes(&[0; 16]).is_some());
    /// assert!(NackPayload::from_bytes(&[0; 17]).is_none());
    /// ```
    #[inline]
    #[must_use]
    pub fn from_bytes(data: &[u8]) -> Option<Self> {
        Self::parse(data).ok()
    }

    /// Decodes a payload of exactly 16 bytes, saying why not.
    ///
    /// # Errors
    ///
    /// [`WireError::NackLength`] when `data` is not exactly [`NACK_SIZE`] bytes:
    /// trailing bytes are refused, not ignored.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::{NackPayload, WireError};
    ///
    /// assert_eq!(
    ///     NackPayload::parse(&[0xff; 16]),
    ///     Ok(NackPayload { next_expected: u64::MAX, missing_bitmap: u64::MAX })
    /// );
    /// assert_eq!(NackPayload::parse(&[0; 15]), Err(WireError::NackLength { len: 15 }));
    /// ```
    #[inline]
    pub fn parse(data: &[u8]) -> Result<Self, WireError> {
        let wrong_length = WireError::NackLength { len: data.len() };
        let mut reader = Reader::new(data);
        let (Some(next_expected), Some(missing_bitmap), true) =
            (reader.u64_le(), reader.u64_le(), reader.rest().is_empty())
        else {
            return Err(wrong_length);
        };
        Ok(Self {
            next_expected,
            missing_bitmap,
        })
    }

    /// The missing sequences, ascending: `next_expected`, then `next_expected + 1 + i`
    /// for each set bit `i`.
    ///
    /// Sequences past `u64::MAX` do not exist, so bits that would name one are skipped
    /// (no wrap to 0, no repeat of `u64::MAX`).
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::NackPayload;
    ///
    /// let nack = NackPayload { next_expected: u64::MAX - 1, missing_bitmap: 0b11 };
    /// assert_eq!(nack.missing_sequences().collect::<Vec<_>>(), [u64::MAX - 1, u64::MAX]);
    /// ```
    #[inline]
    pub const fn missing_sequences(&self) -> MissingSequences {
        MissingSequences {
            base: self.next_expected,
            bits: self.missing_bitmap,
            first: true,
        }
    }
}

/// Shows the bitmap in binary, where the gaps are visible.
impl fmt::Debug for NackPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NackPayload")
            .field("next_expected", &self.next_expected)
            .field(
                "missing_bitmap",
                &format_args!("{:#066b}", self.missing_bitmap),
            )
            .finish()
    }
}

/// Iterator over the sequences a [`NackPayload`] reports missing; see
/// [`NackPayload::missing_sequences`].
#[derive(Debug, Clone)]
#[must_use = "iterators do nothing unless consumed"]
pub struct MissingSequences {
    base: u64,
    /// Bits not yielded yet.
    bits: u64,
    /// Whether `base` itself is still to come.
    first: bool,
}

impl Iterator for MissingSequences {
    type Item = u64;

    #[inline]
    fn next(&mut self) -> Option<u64> {
        if self.first {
            self.first = false;
            return Some(self.base);
        }
        while self.bits != 0 {
            let bit = u64::from(self.bits.trailing_zeros());
            self.bits &= self.bits - 1;
            if let Some(sequence) = self.base.checked_add(1 + bit) {
                return Some(sequence);
            }
            // Every higher bit overflows too.
            self.bits = 0;
        }
        None
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        let bits = usize::try_from(self.bits.count_ones()).unwrap_or(usize::MAX);
        let upper = bits.saturating_add(usize::from(self.first));
        (usize::from(self.first), Some(upper))
    }
}

impl FusedIterator for MissingSequences {}

#[cfg(test)]
mod tests {
    use hex_literal::hex;

    use super::NackPayload;

    #[test]
    fn golden_bytes_roundtrip() {
        let nack = NackPayload {
            next_expected: 0x0102,
            missing_bitmap: 0x8000_0000_0000_0001,
        };
        let golden = hex!("0201000000000000 0100000000000080");
        assert_eq!(nack.to_bytes(), golden);
        assert_eq!(NackPayload::parse(&golden), Ok(nack));
    }

    #[test]
    fn missing_sequences_cover_all_64_bits() {
        let nack = NackPayload {
            next_expected: 100,
            missing_bitmap: u64::MAX,
        };
        let seqs: Vec<u64> = nack.missing_sequences().collect();
        assert_eq!(seqs, (100..=164).collect::<Vec<_>>());
        let empty = NackPayload {
            next_expected: 5,
            missing_bitmap: 0,
        };
        assert_eq!(empty.missing_sequences().collect::<Vec<_>>(), [5]);
    }

    #[test]
    fn missing_sequences_stop_at_u64_max() {
        let nack = NackPayload {
            next_expected: u64::MAX,
            missing_bitmap: u64::MAX,
        };
        assert_eq!(nack.missing_sequences().collect::<Vec<_>>(), [u64::MAX]);
        let nack = NackPayload {
            next_expected: u64::MAX - 3,
            missing_bitmap: u64::MAX,
        };
        let seqs: Vec<u64> = nack.missing_sequences().collect();
        assert_eq!(seqs, (u64::MAX - 3..=u64::MAX).collect::<Vec<_>>());
    }

    #[test]
    fn debug_shows_the_bitmap_in_binary() {
        let text = format!(
            "{:?}",
            NackPayload {
                next_expected: 1,
                missing_bitmap: 5
            }
        );
        assert!(text.contains("0b0000"), "{text}");
        assert!(text.ends_with("101 }"), "{text}");
    }
}
