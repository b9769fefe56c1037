//! A ring of slots indexed by sequence number, grown on demand up to a fixed bound.

/// Slots for a sliding range of sequence numbers: sequence `s` lives at `s mod len`.
///
/// The length is a power of two so that indexing is a mask. The ring starts empty and
/// doubles when a sequence further from the range's base than its length must be held,
/// up to `max_len` (the configured capacity rounded up to a power of two): a stream
/// that never reorders much never pays for a full-size buffer, and once grown the ring
/// is reused, so steady state allocates nothing.
#[derive(Debug)]
pub(super) struct SeqRing<T> {
    slots: Vec<T>,
    max_len: usize,
}

impl<T: Default> SeqRing<T> {
    /// Smallest length allocated, so that the first growths are not one slot at a time.
    const MIN_LEN: usize = 16;

    /// An empty ring that may grow to hold `capacity` consecutive sequences.
    pub(super) fn new(capacity: usize) -> Self {
        let max_len = capacity
            .max(1)
            .checked_next_power_of_two()
            .unwrap_or(1 << (usize::BITS - 1));
        Self {
            slots: Vec::new(),
            max_len,
        }
    }

    /// Slots currently allocated; sequences at offset `>= len()` from the base hold nothing.
    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether a sequence at `offset` from the base has a slot now.
    pub(super) fn covers(&self, offset: u64) -> bool {
        offset < self.len() as u64
    }

    // Only the low bits of the sequence select the slot: truncation is the point.
    #[allow(clippy::cast_possible_truncation)]
    fn index(&self, seq: u64) -> usize {
        (seq as usize) & (self.slots.len().wrapping_sub(1))
    }

    /// The slot of `seq`. The caller checks [`covers`](Self::covers) first; on an empty
    /// ring there is no slot, which `None` says.
    pub(super) fn get(&self, seq: u64) -> Option<&T> {
        self.slots.get(self.index(seq))
    }

    /// The slot of `seq`, mutably; see [`get`](Self::get).
    pub(super) fn get_mut(&mut self, seq: u64) -> Option<&mut T> {
        let index = self.index(seq);
        self.slots.get_mut(index)
    }

    /// Makes the ring cover `offset` from `base` (grows it, keeping every slot of
    /// `base..base + len()` at its sequence). Returns false when `offset` is beyond the
    /// ring's bound; nothing changes then.
    pub(super) fn cover(&mut self, base: u64, offset: u64) -> bool {
        if self.covers(offset) {
            return true;
        }
        if offset >= self.max_len as u64 {
            return false;
        }
        let needed = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .saturating_add(1)
            .checked_next_power_of_two()
            .unwrap_or(self.max_len);
        let new_len = needed
            .max(self.slots.len().saturating_mul(2))
            .max(Self::MIN_LEN)
            .min(self.max_len);
        let mut old = std::mem::take(&mut self.slots);
        self.slots = std::iter::repeat_with(T::default).take(new_len).collect();
        let old_mask = old.len().wrapping_sub(1);
        for i in 0..old.len() {
            let seq = base.wrapping_add(i as u64);
            // Low bits only, as in `index`.
            #[allow(clippy::cast_possible_truncation)]
            let from = (seq as usize) & old_mask;
            let to = self.index(seq);
            if let (Some(src), Some(dst)) = (old.get_mut(from), self.slots.get_mut(to)) {
                *dst = std::mem::take(src);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::SeqRing;

    #[test]
    fn grows_keeping_items_at_their_sequence() {
        let mut ring: SeqRing<Option<u64>> = SeqRing::new(100);
        let base = u64::MAX - 20;
        assert!(ring.cover(base, 3));
        assert_eq!(ring.len(), 16);
        for seq in base..base + 16 {
            *ring.get_mut(seq).unwrap() = Some(seq);
        }
        assert!(ring.cover(base, 40));
        assert_eq!(ring.len(), 64);
        for seq in base..base + 16 {
            assert_eq!(ring.get(seq).copied().flatten(), Some(seq));
        }
        assert!(
            ring.cover(base, 127),
            "capacity rounds up to a power of two"
        );
        assert!(!ring.cover(base, 128));
        assert_eq!(ring.len(), 128);
    }

    #[test]
    fn empty_ring_has_no_slot() {
        let ring: SeqRing<Option<u8>> = SeqRing::new(0);
        assert!(ring.get(5).is_none());
        assert!(!ring.covers(0));
    }
}
