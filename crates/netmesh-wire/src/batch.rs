//! Splitting a run of events into packet-sized batches.

use std::iter::FusedIterator;

use bytes::Bytes;

use crate::{WireError, EVENT_LEN_PREFIX, MAX_EVENTS_PER_PACKET, MAX_EVENT_SIZE, MAX_PAYLOAD_SIZE};

/// Whether event `index` of a run, `event`, can be sent at all: the one event-size check,
/// made by [`batches`] and by the pools' batch builders before they build anything.
///
/// # Errors
///
/// [`WireError::EventTooLarge`] when `event` is longer than [`MAX_EVENT_SIZE`].
///
/// # Examples
///
/// ```
/// use netmesh_wire::{check_event, WireError, MAX_EVENT_SIZE};
///
/// assert_eq!(check_event(0, &[0; MAX_EVENT_SIZE]), Ok(()));
/// assert_eq!(
///     check_event(3, &[0; MAX_EVENT_SIZE + 1]),
///     Err(WireError::EventTooLarge { index: 3, len: 8105, max: 8104 })
/// );
/// ```
#[inline]
pub fn check_event(index: usize, event: &[u8]) -> Result<(), WireError> {
    if event.len() > MAX_EVENT_SIZE {
        Err(WireError::EventTooLarge {
            index,
            len: event.len(),
            max: MAX_EVENT_SIZE,
        })
    } else {
        Ok(())
    }
}

/// Splits `events` into consecutive batches, each of which fits one packet.
///
/// Greedy: each batch takes as many of the next events as fit, so that its frames
/// take at most [`MAX_PAYLOAD_SIZE`] bytes and it holds at most
/// [`MAX_EVENTS_PER_PACKET`] events. Every batch is non-empty and the batches, in
/// order, are exactly `events`. Empty events are fine (each still takes a 4-byte
/// prefix). Nothing is allocated.
///
/// An event longer than [`MAX_EVENT_SIZE`] bytes cannot be sent (see [`check_event`]):
/// once the batches before it are out, the iterator yields
/// [`WireError::EventTooLarge`] with the event's index in `events`, then ends.
///
/// # Examples
///
/// ```
/// use bytes::Bytes;
/// use netmesh_wire::{batches, WireError};
///
/// let events = vec![Bytes::from(vec![0; 5000]); 3];
/// let sizes: Vec<usize> = batches(&events).map(|batch| batch.unwrap().len()).collect();
/// assert_eq!(sizes, [1, 1, 1]);
///
/// let events = [Bytes::from_static(b"ok"), Bytes::from(vec![0; 8105])];
/// let mut split = batches(&events);
/// assert_eq!(split.next(), Some(Ok(&events[..1])));
/// assert_eq!(
///     split.next(),
///     Some(Err(WireError::EventTooLarge { index: 1, len: 8105, max: 8104 }))
/// );
/// assert_eq!(split.next(), None);
/// ```
#[inline]
pub fn batches(events: &[Bytes]) -> EventBatches<'_> {
    batches_of(events)
}

/// [`batches`] for events of any byte container (slices of the caller's buffer cost no
/// reference count per event).
///
/// # Examples
///
/// ```
/// use netmesh_wire::batches_of;
///
/// let sizes: Vec<usize> = batches_of(&[&b"a"[..]; 3000]).map(|b| b.unwrap().len()).collect();
/// assert_eq!(sizes, [1621, 1379]); // 5 framed bytes each, 8108 bytes a packet
/// ```
#[inline]
pub fn batches_of<E: AsRef<[u8]>>(events: &[E]) -> EventBatches<'_, E> {
    EventBatches {
        rest: events,
        offset: 0,
        failed: false,
    }
}

/// The runs of events, each sized to fit one packet, that [`batches`] splits a slice into:
/// it yields slices of the caller's events and builds nothing. The pools' builders turn
/// each run into a sealed packet (`netmesh_pool::BatchPackets`).
#[derive(Debug, Clone)]
#[must_use = "iterators do nothing unless consumed"]
pub struct EventBatches<'a, E = Bytes> {
    rest: &'a [E],
    /// Index in the caller's slice of `rest[0]`, for error reports.
    offset: usize,
    failed: bool,
}

impl<'a, E: AsRef<[u8]>> Iterator for EventBatches<'a, E> {
    type Item = Result<&'a [E], WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let mut size = 0;
        let mut count = 0;
        for event in self.rest.iter().take(MAX_EVENTS_PER_PACKET) {
            let event = event.as_ref();
            if let Err(error) = check_event(self.offset + count, event) {
                if count == 0 {
                    self.failed = true;
                    return Some(Err(error));
                }
                break;
            }
            // Cannot overflow: size <= MAX_PAYLOAD_SIZE and the event <= MAX_EVENT_SIZE.
            let next = size + EVENT_LEN_PREFIX + event.len();
            if next > MAX_PAYLOAD_SIZE {
                break;
            }
            size = next;
            count += 1;
        }
        let (batch, rest) = self.rest.split_at_checked(count)?;
        self.rest = rest;
        self.offset += count;
        Some(Ok(batch))
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.failed {
            (0, Some(0))
        } else {
            (usize::from(!self.rest.is_empty()), Some(self.rest.len()))
        }
    }
}

impl<E: AsRef<[u8]>> FusedIterator for EventBatches<'_, E> {}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::{batches, MAX_EVENT_SIZE};
    use crate::{FrameCodec, WireError, MAX_EVENTS_PER_PACKET, MAX_PAYLOAD_SIZE};

    fn lens(events: &[Bytes]) -> Vec<usize> {
        batches(events).map(|batch| batch.unwrap().len()).collect()
    }

    #[test]
    fn empty_input_yields_nothing() {
        assert_eq!(batches(&[]).next(), None);
    }

    #[test]
    fn empty_events_split_at_the_event_cap() {
        let events = vec![Bytes::new(); 2 * MAX_EVENTS_PER_PACKET + 1];
        assert_eq!(
            lens(&events),
            [MAX_EVENTS_PER_PACKET, MAX_EVENTS_PER_PACKET, 1]
        );
    }

    #[test]
    fn largest_event_fills_a_packet_alone() {
        let events = [
            Bytes::new(),
            Bytes::from(vec![1; MAX_EVENT_SIZE]),
            Bytes::new(),
        ];
        assert_eq!(lens(&events), [1, 1, 1]);
        assert_eq!(FrameCodec::calculate_size(&events[1..2]), MAX_PAYLOAD_SIZE);
    }

    #[test]
    fn batches_fill_to_the_byte() {
        // 2 frames of 4054 bytes make exactly MAX_PAYLOAD_SIZE.
        let events = vec![Bytes::from(vec![0; MAX_PAYLOAD_SIZE / 2 - 4]); 5];
        assert_eq!(lens(&events), [2, 2, 1]);
    }

    #[test]
    fn oversized_event_reports_its_index_and_fuses() {
        let events = vec![
            Bytes::new(),
            Bytes::new(),
            Bytes::from(vec![0; MAX_EVENT_SIZE + 1]),
        ];
        let mut split = batches(&events);
        assert_eq!(split.next(), Some(Ok(&events[..2])));
        assert_eq!(
            split.next(),
            Some(Err(WireError::EventTooLarge {
                index: 2,
                len: 8105,
                max: 8104
            }))
        );
        assert_eq!(split.next(), None);
        assert_eq!(split.size_hint(), (0, Some(0)));
    }
}
