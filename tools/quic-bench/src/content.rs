//! Event content as SESSION.md defines it, so every receiver (netmesh, quinn, bare UDP)
//! checks the same bytes: event `i` of stream `s` is `le64(s) ‖ le64(i)` followed by
//! filler byte `k` = `(s * 31 + i + k) mod 251`.

/// Builds and checks events of one size without per-event arithmetic on the filler: the
/// filler of any event is a slice of one precomputed ramp `0, 1, .., 250, 0, 1, ..`.
#[derive(Debug, Clone)]
pub(crate) struct Content {
    size: usize,
    ramp: Vec<u8>,
}

/// The smallest event: stream id and index.
pub(crate) const MIN_EVENT_SIZE: usize = 16;

impl Content {
    pub(crate) fn new(size: usize) -> Self {
        assert!(size >= MIN_EVENT_SIZE, "events are at least 16 bytes");
        let ramp = (0..251 + size).map(|j| (j % 251) as u8).collect();
        Self { size, ramp }
    }

    pub(crate) fn size(&self) -> usize {
        self.size
    }

    fn filler(&self, stream: u64, index: u64) -> &[u8] {
        // (s * 31 + i + k) mod 251 = ramp[((s * 31 + i) mod 251) + k]
        let start = ((stream % 251) * 31 + index % 251) % 251;
        let start = start as usize;
        &self.ramp[start..start + self.size - MIN_EVENT_SIZE]
    }

    /// Writes event `index` of `stream` into `out` (exactly `size` bytes).
    pub(crate) fn write(&self, stream: u64, index: u64, out: &mut [u8]) {
        out[..8].copy_from_slice(&stream.to_le_bytes());
        out[8..16].copy_from_slice(&index.to_le_bytes());
        out[16..].copy_from_slice(self.filler(stream, index));
    }

    /// Whether `event` is exactly event `index` of `stream`.
    pub(crate) fn check(&self, stream: u64, index: u64, event: &[u8]) -> bool {
        event.len() == self.size
            && event[..8] == stream.to_le_bytes()
            && event[8..16] == index.to_le_bytes()
            && event[16..] == *self.filler(stream, index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ramp gives the same bytes as the definition, for streams and indices that
    /// wrap the modulus.
    #[test]
    fn matches_the_definition() {
        for size in [16, 17, 64, 1024] {
            let content = Content::new(size);
            let mut event = vec![0; size];
            for (s, i) in [
                (0u64, 0u64),
                (1, 250),
                (7, 251),
                (300, 123_456_789),
                (u64::MAX, u64::MAX),
            ] {
                content.write(s, i, &mut event);
                let mut expected = s.to_le_bytes().to_vec();
                expected.extend_from_slice(&i.to_le_bytes());
                for k in 0..(size - 16) as u64 {
                    let v = (u128::from(s) * 31 + u128::from(i) + u128::from(k)) % 251;
                    expected.push(v as u8);
                }
                assert_eq!(event, expected, "size {size} s {s} i {i}");
                assert!(content.check(s, i, &event));
                assert!(!content.check(s, i + 1, &event));
                if size > 16 {
                    event[size - 1] ^= 1;
                    assert!(!content.check(s, i, &event));
                }
            }
        }
    }
}
