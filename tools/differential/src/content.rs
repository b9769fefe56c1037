//! SESSION.md's event content, so any receiver can check what arrived: event `i` of
//! stream `s` is `le64(s) ‖ le64(i)` followed by filler byte `k` = `(s * 31 + i + k) mod 251`.

use std::collections::{BTreeMap, HashSet};

use bytes::Bytes;

/// Event `index` of `stream`, `size` bytes (at least 16).
pub fn event(stream: u64, index: u64, size: usize) -> Bytes {
    let size = size.max(16);
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&stream.to_le_bytes());
    out.extend_from_slice(&index.to_le_bytes());
    let base = stream.wrapping_mul(31).wrapping_add(index);
    for k in 0..(size - 16) as u64 {
        out.push((base.wrapping_add(k) % 251) as u8);
    }
    Bytes::from(out)
}

/// `(stream, index)` of a well-formed event, `None` if it is corrupt.
pub fn parse(event: &[u8]) -> Option<(u64, u64)> {
    if event.len() < 16 {
        return None;
    }
    let stream = u64::from_le_bytes(event[..8].try_into().ok()?);
    let index = u64::from_le_bytes(event[8..16].try_into().ok()?);
    let base = stream.wrapping_mul(31).wrapping_add(index);
    let ok = event[16..]
        .iter()
        .enumerate()
        .all(|(k, &b)| u64::from(b) == base.wrapping_add(k as u64) % 251);
    ok.then_some((stream, index))
}

/// The events `0..count` spread over `streams` streams (event i on stream i mod K), in
/// order, grouped by stream.
pub fn per_stream(count: u64, streams: u64, size: usize) -> BTreeMap<u64, Vec<Bytes>> {
    let mut out: BTreeMap<u64, Vec<Bytes>> = BTreeMap::new();
    for i in 0..count {
        let s = i % streams.max(1);
        out.entry(s).or_default().push(event(s, i, size));
    }
    out
}

/// What a receiver saw, judged against the format.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Well-formed events, first arrivals.
    pub events: u64,
    /// Bytes of those events.
    pub bytes: u64,
    /// Well-formed events seen before.
    pub duplicates: u64,
    /// Events that do not match the format.
    pub corrupt: u64,
    /// Events that arrived after a higher index of the same stream.
    pub out_of_order: u64,
    seen: HashSet<(u64, u64)>,
    last: BTreeMap<u64, u64>,
}

impl Tally {
    /// Counts one received event.
    pub fn add(&mut self, event: &[u8]) {
        let Some((stream, index)) = parse(event) else {
            self.corrupt += 1;
            return;
        };
        if !self.seen.insert((stream, index)) {
            self.duplicates += 1;
            return;
        }
        self.events += 1;
        self.bytes += event.len() as u64;
        let last = self.last.entry(stream).or_insert(index);
        if index < *last {
            self.out_of_order += 1;
        } else {
            *last = index;
        }
    }

    /// Events of `0..count` never seen.
    pub fn lost(&self, count: u64, streams: u64) -> u64 {
        (0..count)
            .filter(|i| !self.seen.contains(&(i % streams.max(1), *i)))
            .count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_roundtrip_and_corruption_is_seen() {
        let e = event(3, 77, 40);
        assert_eq!(e.len(), 40);
        assert_eq!(parse(&e), Some((3, 77)));
        let mut bad = e.to_vec();
        bad[30] ^= 1;
        assert_eq!(parse(&bad), None);
        let mut t = Tally::default();
        t.add(&e);
        t.add(&e);
        t.add(&bad);
        t.add(&event(3, 10, 16));
        assert_eq!(
            (t.events, t.duplicates, t.corrupt, t.out_of_order),
            (2, 1, 1, 1)
        );
    }
}
