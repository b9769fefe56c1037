//! Event frames: the payload is `event_count` frames of `len (u32 LE) ‖ event bytes`.

use std::iter::FusedIterator;

use bytes::{Buf, Bytes, BytesMut};

use crate::reader::Reader;
use crate::{WireError, EVENT_LEN_PREFIX, MAX_PAYLOAD_SIZE};

/// The frame codec: associated functions (no value) that encode and decode the event
/// frames of a payload.
///
/// A payload is a run of frames, `len (u32 LE) ‖ event bytes (len)`, with nothing
/// before, between or after them.
///
/// # Examples
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use netmesh_wire::FrameCodec;
///
/// let events = [Bytes::from_static(b"a"), Bytes::from_static(b"bc")];
/// let mut buf = BytesMut::new();
/// assert_eq!(FrameCodec::write_events(&events, &mut buf), 11);
/// assert_eq!(&buf[..], b"\x01\0\0\0a\x02\0\0\0bc");
///
/// let frames = FrameCodec::decode_strict(buf.freeze(), 2)?;
/// assert_eq!(frames.collect::<Vec<_>>(), events);
/// # Ok::<(), netmesh_wire::WireError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct FrameCodec;

impl FrameCodec {
    /// Bytes of the length prefix in front of each event.
    pub const LEN_SIZE: usize = EVENT_LEN_PREFIX;

    /// Appends one frame per event to `buf` and returns the bytes written
    /// (always [`calculate_size`](Self::calculate_size)`(events)`).
    ///
    /// Reserves the whole size once, so it does not allocate when `buf` already has
    /// the room. It does not check packet limits; see [`batches`](crate::batches).
    ///
    /// # Panics
    ///
    /// If an event is longer than `u32::MAX` bytes, which its prefix cannot express
    /// (writing a truncated prefix would corrupt every later frame).
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::{Bytes, BytesMut};
    /// use netmesh_wire::FrameCodec;
    ///
    /// let mut buf = BytesMut::with_capacity(64);
    /// let written = FrameCodec::write_events(&[Bytes::from_static(b"xyz")], &mut buf);
    /// assert_eq!((written, &buf[..]), (7, &b"\x03\0\0\0xyz"[..]));
    /// ```
    #[inline]
    pub fn write_events(events: &[Bytes], buf: &mut BytesMut) -> usize {
        let size = Self::calculate_size(events);
        let start = buf.len();
        buf.resize(start + size, 0);
        Self::write_events_into(events, &mut buf[start..]);
        size
    }

    /// Writes one frame per event into `out`, which must be exactly
    /// [`calculate_size`](Self::calculate_size)`(events)` bytes: the frame writer of
    /// every packet, writing into the packet buffer itself.
    ///
    /// Small events are copied with fixed-size moves rather than a `memcpy` call each,
    /// which for small events costs more than the copy.
    ///
    /// # Panics
    ///
    /// If `out` is not exactly the frames' size (every byte must be written: the buffer
    /// may hold an earlier packet's bytes), or an event is longer than `u32::MAX` bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use netmesh_wire::FrameCodec;
    ///
    /// let events = [Bytes::from_static(b"xyz")];
    /// let mut out = [0xee; 7];
    /// FrameCodec::write_events_into(&events, &mut out);
    /// assert_eq!(&out, b"\x03\0\0\0xyz");
    /// ```
    #[inline]
    pub fn write_events_into(events: &[Bytes], out: &mut [u8]) {
        Self::write_frames_into(events, out);
    }

    /// [`write_events_into`](Self::write_events_into) for events of any byte container
    /// (slices of the caller's buffer cost no reference count per event).
    ///
    /// # Panics
    ///
    /// As [`write_events_into`](Self::write_events_into).
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::FrameCodec;
    ///
    /// let mut out = [0xee; 9];
    /// FrameCodec::write_frames_into(&[&b"x"[..], &b""[..]], &mut out);
    /// assert_eq!(&out, b"\x01\0\0\0x\0\0\0\0");
    /// ```
    #[inline]
    pub fn write_frames_into<E: AsRef<[u8]>>(events: &[E], mut out: &mut [u8]) {
        for event in events {
            let event = event.as_ref();
            let (prefix, rest) = out.split_at_mut(EVENT_LEN_PREFIX);
            prefix.copy_from_slice(&frame_len(event));
            let (body, rest) = rest.split_at_mut(event.len());
            copy_small(body, event);
            out = rest;
        }
        assert!(
            out.is_empty(),
            "frames are smaller than the space sized for them"
        );
    }

    /// Writes `out.len() / (4 + event_len)` frames of `event_len` bytes each into `out`,
    /// each event's bytes written by `fill(index, bytes)` directly in place: for a sender
    /// that makes its events as it sends them, one pass instead of making them in a
    /// buffer and copying them into frames.
    ///
    /// # Panics
    ///
    /// If `out.len()` is not a whole number of such frames, or `event_len` does not fit
    /// a `u32` length prefix.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::FrameCodec;
    ///
    /// let mut out = [0; 10];
    /// FrameCodec::write_frames_with(&mut out, 1, |i, event| event[0] = b'a' + i as u8);
    /// assert_eq!(&out, b"\x01\0\0\0a\x01\0\0\0b");
    /// ```
    #[inline]
    pub fn write_frames_with(
        out: &mut [u8],
        event_len: usize,
        mut fill: impl FnMut(usize, &mut [u8]),
    ) {
        if out.is_empty() {
            return;
        }
        let frame = EVENT_LEN_PREFIX.saturating_add(event_len);
        assert!(
            out.len() % frame == 0,
            "{} bytes are not whole frames of {frame}",
            out.len()
        );
        let Ok(prefix) = u32::try_from(event_len).map(u32::to_le_bytes) else {
            panic!("event of {event_len} bytes does not fit a u32 length prefix");
        };
        for (index, slot) in out.chunks_exact_mut(frame).enumerate() {
            let (head, event) = slot.split_at_mut(EVENT_LEN_PREFIX);
            head.copy_from_slice(&prefix);
            fill(index, event);
        }
    }

    /// Bytes the frames of `events` take: the sum of `4 + len` (saturating).
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use netmesh_wire::FrameCodec;
    ///
    /// let events = [Bytes::new(), Bytes::from_static(b"four")];
    /// assert_eq!(FrameCodec::calculate_size(&events), 12);
    /// ```
    #[inline]
    #[must_use]
    pub fn calculate_size(events: &[Bytes]) -> usize {
        Self::frames_size(events)
    }

    /// [`calculate_size`](Self::calculate_size) for events of any byte container.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::FrameCodec;
    ///
    /// assert_eq!(FrameCodec::frames_size(&[&b"four"[..], &b""[..]]), 12);
    /// ```
    #[inline]
    #[must_use]
    pub fn frames_size<E: AsRef<[u8]>>(events: &[E]) -> usize {
        events.iter().fold(0, |size: usize, event| {
            size.saturating_add(Self::LEN_SIZE + event.as_ref().len())
        })
    }

    /// Bytes the frames of `count` events of `event_len` bytes each take
    /// (`count * (4 + event_len)`), or `None` when that overflows a `usize`: what
    /// [`write_frames_with`](Self::write_frames_with) fills. No events take no bytes,
    /// whatever their length.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::FrameCodec;
    ///
    /// assert_eq!(FrameCodec::uniform_frames_size(3, 60), Some(192));
    /// assert_eq!(FrameCodec::uniform_frames_size(2, usize::MAX), None);
    /// assert_eq!(FrameCodec::uniform_frames_size(0, usize::MAX), Some(0));
    /// ```
    #[inline]
    #[must_use]
    pub const fn uniform_frames_size(count: usize, event_len: usize) -> Option<usize> {
        if count == 0 {
            return Some(0);
        }
        match event_len.checked_add(EVENT_LEN_PREFIX) {
            Some(frame) => frame.checked_mul(count),
            None => None,
        }
    }

    /// How many frames of `event_len`-byte events one packet's payload holds (0 when
    /// not even one does).
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::{FrameCodec, MAX_EVENTS_PER_PACKET};
    ///
    /// assert_eq!(FrameCodec::frames_per_packet(64), 8108 / 68);
    /// assert_eq!(FrameCodec::frames_per_packet(0), MAX_EVENTS_PER_PACKET);
    /// assert_eq!(FrameCodec::frames_per_packet(9000), 0);
    /// ```
    #[inline]
    #[must_use]
    pub const fn frames_per_packet(event_len: usize) -> usize {
        MAX_PAYLOAD_SIZE / event_len.saturating_add(EVENT_LEN_PREFIX)
    }

    /// Reads up to `count` frames the way net-mesh 0.23 does: stops silently at the
    /// first frame that is cut off and ignores anything after `count` frames.
    ///
    /// Each event is a zero-copy slice of `data`. The vector is sized by what `data`
    /// could hold, never by `count` alone. Kept for code moving over from net-mesh; a
    /// receiver should use [`decode_strict`](Self::decode_strict).
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use netmesh_wire::FrameCodec;
    ///
    /// // One whole frame, then a frame that claims 9 bytes but has 1.
    /// let data = Bytes::from_static(b"\x01\0\0\0a\x09\0\0\0b");
    /// assert_eq!(FrameCodec::read_events(data, 1000), [Bytes::from_static(b"a")]);
    /// ```
    #[must_use]
    pub fn read_events(data: Bytes, count: usize) -> Vec<Bytes> {
        let mut events = Vec::with_capacity(count.min(data.len() / Self::LEN_SIZE));
        let mut rest = data;
        while events.len() < count {
            match take_frame(&mut rest) {
                Some(event) => events.push(event),
                None => break,
            }
        }
        events
    }

    /// Checks that `payload` is exactly `count` frames, without allocating.
    ///
    /// # Errors
    ///
    /// - [`WireError::LengthPrefixTruncated`]: a frame within the first `count` starts
    ///   with fewer than 4 bytes left;
    /// - [`WireError::FrameTruncated`]: a frame within the first `count` declares more
    ///   bytes than remain;
    /// - [`WireError::TooFewFrames`]: the payload ends after fewer than `count` frames;
    /// - [`WireError::TooManyFrames`]: a whole frame follows the `count`th;
    /// - [`WireError::TrailingBytes`]: bytes that are not a whole frame follow it.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::{FrameCodec, WireError};
    ///
    /// let payload = b"\x01\0\0\0a\x00\0\0\0";
    /// assert_eq!(FrameCodec::validate_strict(payload, 2), Ok(()));
    /// assert_eq!(
    ///     FrameCodec::validate_strict(payload, 3),
    ///     Err(WireError::TooFewFrames { declared: 3, found: 2 })
    /// );
    /// assert_eq!(
    ///     FrameCodec::validate_strict(payload, 1),
    ///     Err(WireError::TooManyFrames { declared: 1 })
    /// );
    /// ```
    pub fn validate_strict(payload: &[u8], count: usize) -> Result<(), WireError> {
        let mut frames = Self::iter(payload);
        // Bounded by the payload too: every frame consumes at least its 4-byte prefix,
        // so a huge declared count ends at the end of the bytes.
        for index in 0..count {
            match frames.next() {
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error),
                None => {
                    return Err(WireError::TooFewFrames {
                        declared: count,
                        found: index,
                    })
                }
            }
        }
        let rest = frames.remainder();
        if rest.is_empty() {
            return Ok(());
        }
        match frames.next() {
            Some(Ok(_)) => Err(WireError::TooManyFrames { declared: count }),
            _ => Err(WireError::TrailingBytes { count: rest.len() }),
        }
    }

    /// Checks that `payload` is exactly `count` frames (see
    /// [`validate_strict`](Self::validate_strict)) and returns an iterator over the
    /// events as zero-copy slices of `payload`.
    ///
    /// # Errors
    ///
    /// Those of [`validate_strict`](Self::validate_strict).
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use netmesh_wire::{FrameCodec, WireError};
    ///
    /// let payload = Bytes::from_static(b"\x02\0\0\0hi");
    /// let frames = FrameCodec::decode_strict(payload.clone(), 1)?;
    /// assert_eq!(frames.len(), 1);
    /// assert_eq!(frames.collect::<Vec<_>>(), [Bytes::from_static(b"hi")]);
    ///
    /// let cut = payload.slice(..5);
    /// assert_eq!(
    ///     FrameCodec::decode_strict(cut, 1).unwrap_err(),
    ///     WireError::FrameTruncated { index: 0, len: 2, available: 1 }
    /// );
    /// # Ok::<(), WireError>(())
    /// ```
    pub fn decode_strict(payload: Bytes, count: usize) -> Result<OwnedEvents, WireError> {
        Self::validate_strict(&payload, count)?;
        Ok(OwnedEvents {
            rest: payload,
            remaining: count,
        })
    }

    /// Iterates the frames of `payload`, borrowed: each item is one event's bytes, or
    /// the error that stopped the walk (after which the iterator ends). It does not
    /// know a declared count; it ends cleanly when the bytes end on a frame boundary.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::{FrameCodec, WireError};
    ///
    /// let mut frames = FrameCodec::iter(b"\x01\0\0\0a\x00\0");
    /// assert_eq!(frames.next(), Some(Ok(&b"a"[..])));
    /// assert_eq!(
    ///     frames.next(),
    ///     Some(Err(WireError::LengthPrefixTruncated { index: 1, available: 2 }))
    /// );
    /// assert_eq!(frames.next(), None);
    /// ```
    #[inline]
    pub const fn iter(payload: &[u8]) -> BorrowedEvents<'_> {
        BorrowedEvents {
            reader: Reader::new(payload),
            index: 0,
            failed: false,
        }
    }
}

/// An event's length prefix.
#[inline]
fn frame_len(event: &[u8]) -> [u8; EVENT_LEN_PREFIX] {
    let Ok(len) = u32::try_from(event.len()) else {
        panic!(
            "event of {} bytes does not fit a u32 length prefix",
            event.len()
        );
    };
    len.to_le_bytes()
}

/// `dst.copy_from_slice(src)` for slices of equal length, with fixed-size (inlined)
/// copies up to 64 bytes: two overlapping copies of the largest size class that fits.
#[inline]
fn copy_small(dst: &mut [u8], src: &[u8]) {
    fn overlapping<const N: usize>(dst: &mut [u8], src: &[u8]) {
        let n = src.len();
        dst[..N].copy_from_slice(&src[..N]);
        dst[n - N..].copy_from_slice(&src[n - N..]);
    }
    match src.len() {
        0 => {}
        1..=3 => dst.copy_from_slice(src),
        4..=7 => overlapping::<4>(dst, src),
        8..=15 => overlapping::<8>(dst, src),
        16..=31 => overlapping::<16>(dst, src),
        32..=64 => overlapping::<32>(dst, src),
        _ => dst.copy_from_slice(src),
    }
}

/// Splits the next frame off the front of `rest`; `None`, leaving `rest` untouched,
/// when the prefix or the body is cut off.
#[inline]
fn take_frame(rest: &mut Bytes) -> Option<Bytes> {
    let mut reader = Reader::new(rest);
    let len = usize::try_from(reader.u32_le()?).ok()?;
    reader.take(len)?;
    // Both bounds were just checked against `rest`, so neither call can panic.
    rest.advance(EVENT_LEN_PREFIX);
    Some(rest.split_to(len))
}

/// The events of an owned payload that [`FrameCodec::decode_strict`] checked whole, each
/// a zero-copy [`Bytes`] slice of it; it cannot fail. For events borrowed from a `&[u8]`
/// and checked one frame at a time, see [`BorrowedEvents`].
///
/// Its length is known up front ([`ExactSizeIterator`]); cloning it is cheap (one
/// reference count) and the clone iterates from the same point.
///
/// # Examples
///
/// ```
/// use bytes::Bytes;
/// use netmesh_wire::FrameCodec;
///
/// let frames = FrameCodec::decode_strict(Bytes::from_static(b"\x01\0\0\0a\x00\0\0\0"), 2)?;
/// assert!(!frames.is_empty());
/// assert_eq!(frames.len(), 2);
/// let lens: Vec<usize> = frames.map(|event| event.len()).collect();
/// assert_eq!(lens, [1, 0]);
/// # Ok::<(), netmesh_wire::WireError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "iterators do nothing unless consumed"]
pub struct OwnedEvents {
    rest: Bytes,
    remaining: usize,
}

impl OwnedEvents {
    /// Whether no event is left.
    #[inline]
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.remaining == 0
    }
}

impl Iterator for OwnedEvents {
    type Item = Bytes;

    #[inline]
    fn next(&mut self) -> Option<Bytes> {
        if self.remaining == 0 {
            return None;
        }
        // Validated up front, so this cannot fail; if it ever did, end rather than lie.
        let Some(event) = take_frame(&mut self.rest) else {
            self.remaining = 0;
            return None;
        };
        self.remaining -= 1;
        Some(event)
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for OwnedEvents {}

impl FusedIterator for OwnedEvents {}

/// The events of a borrowed payload, each a `&[u8]` slice of it, checked one frame at a
/// time as the walk reaches it: an item is the error that ends the walk when a frame is
/// cut off. See [`FrameCodec::iter`]; for an owned payload checked whole up front, see
/// [`OwnedEvents`].
///
/// # Examples
///
/// ```
/// use netmesh_wire::FrameCodec;
///
/// let events: Result<Vec<&[u8]>, _> = FrameCodec::iter(b"\x02\0\0\0hi").collect();
/// assert_eq!(events, Ok(vec![&b"hi"[..]]));
/// ```
#[derive(Debug, Clone)]
#[must_use = "iterators do nothing unless consumed"]
pub struct BorrowedEvents<'a> {
    reader: Reader<'a>,
    index: usize,
    failed: bool,
}

impl<'a> BorrowedEvents<'a> {
    /// The bytes not consumed yet (after an error: from the start of the bad frame).
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::FrameCodec;
    ///
    /// let mut frames = FrameCodec::iter(b"\x00\0\0\0xyz");
    /// assert_eq!(frames.next(), Some(Ok(&b""[..])));
    /// assert_eq!(frames.remainder(), b"xyz");
    /// ```
    #[inline]
    #[must_use]
    pub const fn remainder(&self) -> &'a [u8] {
        self.reader.rest()
    }
}

impl<'a> Iterator for BorrowedEvents<'a> {
    type Item = Result<&'a [u8], WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.reader.rest().is_empty() {
            return None;
        }
        let index = self.index;
        let mut reader = self.reader;
        let Some(prefix) = reader.u32_le() else {
            self.failed = true;
            let available = self.reader.rest().len();
            return Some(Err(WireError::LengthPrefixTruncated { index, available }));
        };
        let available = reader.rest().len();
        // A length that does not fit usize cannot fit the remaining bytes either.
        let len = usize::try_from(prefix).unwrap_or(usize::MAX);
        let Some(event) = reader.take(len) else {
            self.failed = true;
            return Some(Err(WireError::FrameTruncated {
                index,
                len,
                available,
            }));
        };
        self.reader = reader;
        self.index += 1;
        Some(Ok(event))
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.failed {
            return (0, Some(0));
        }
        let len = self.reader.rest().len();
        (usize::from(len > 0), Some(len.div_ceil(EVENT_LEN_PREFIX)))
    }
}

impl FusedIterator for BorrowedEvents<'_> {}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use hex_literal::hex;

    use super::{copy_small, FrameCodec};
    use crate::WireError;

    #[test]
    fn copy_small_copies_every_length_exactly() {
        let src: Vec<u8> = (1..=200).collect();
        for len in 0..=150 {
            let mut dst = vec![0u8; len + 2];
            copy_small(&mut dst[1..=len], &src[..len]);
            assert_eq!(&dst[1..=len], &src[..len], "length {len}");
            assert_eq!((dst[0], dst[len + 1]), (0, 0), "length {len} wrote outside");
        }
    }

    #[test]
    fn frames_written_into_stale_bytes_decode_back() {
        for sizes in [
            vec![],
            vec![0],
            vec![3],
            vec![0, 1, 7, 8, 31, 33, 64, 65, 300],
            vec![64; 50],
        ] {
            let events: Vec<Bytes> = sizes
                .iter()
                .map(|&n: &usize| {
                    Bytes::from(
                        (0..n)
                            .map(|i| (i * 7 + n).to_le_bytes()[0])
                            .collect::<Vec<u8>>(),
                    )
                })
                .collect();
            // Stale bytes where the frames go, as in a reused packet buffer.
            let mut buf = vec![0xee; FrameCodec::calculate_size(&events)];
            FrameCodec::write_events_into(&events, &mut buf);
            let decoded = FrameCodec::decode_strict(Bytes::from(buf), events.len()).unwrap();
            assert!(decoded.eq(events.iter().cloned()), "{sizes:?}");
        }
    }

    #[test]
    #[should_panic(expected = "frames are smaller than the space sized for them")]
    fn frames_that_leave_space_unwritten_panic() {
        FrameCodec::write_events_into(&[Bytes::from_static(b"abc")], &mut [0; 8]);
    }

    #[test]
    fn write_events_appends_after_what_the_buffer_holds() {
        let mut buf = BytesMut::from(&b"head"[..]);
        let written = FrameCodec::write_events(&[Bytes::from_static(b"ab")], &mut buf);
        assert_eq!((written, &buf[..]), (6, &b"head\x02\0\0\0ab"[..]));
    }

    #[test]
    fn golden_frames_roundtrip() {
        let events = [Bytes::new(), Bytes::from_static(&hex!("678a8e"))];
        let golden = hex!("00000000" "03000000 678a8e");
        let mut buf = BytesMut::new();
        assert_eq!(FrameCodec::write_events(&events, &mut buf), golden.len());
        assert_eq!(&buf[..], &golden);
        let payload = Bytes::copy_from_slice(&golden);
        assert!(FrameCodec::decode_strict(payload.clone(), 2)
            .unwrap()
            .eq(events.clone()));
        assert_eq!(FrameCodec::read_events(payload, 2), events);
    }

    #[test]
    fn write_appends_after_existing_bytes() {
        let mut buf = BytesMut::from(&b"head"[..]);
        let written = FrameCodec::write_events(&[Bytes::from_static(b"x")], &mut buf);
        assert_eq!(written, 5);
        assert_eq!(&buf[..], b"head\x01\0\0\0x");
    }

    #[test]
    fn write_does_not_reallocate_a_buffer_with_room() {
        let events = vec![Bytes::from_static(&[7; 64]); 100];
        let mut buf = BytesMut::with_capacity(FrameCodec::calculate_size(&events));
        let start = buf.as_ptr();
        FrameCodec::write_events(&events, &mut buf);
        assert_eq!(buf.as_ptr(), start);
    }

    #[test]
    fn events_are_slices_of_the_payload() {
        let payload = Bytes::from_static(b"\x02\0\0\0hi\x01\0\0\0x");
        let base = payload.as_ptr() as usize;
        let offsets: Vec<usize> = FrameCodec::decode_strict(payload.clone(), 2)
            .unwrap()
            .map(|event| event.as_ptr() as usize - base)
            .collect();
        assert_eq!(offsets, [4, 10]);
    }

    #[test]
    fn read_events_stops_at_count_and_at_truncation() {
        let payload = Bytes::from_static(b"\x01\0\0\0a\x01\0\0\0b\x05\0");
        assert_eq!(FrameCodec::read_events(payload.clone(), 1).len(), 1);
        assert_eq!(FrameCodec::read_events(payload.clone(), 3).len(), 2);
        assert_eq!(FrameCodec::read_events(payload, usize::MAX).len(), 2);
        assert!(FrameCodec::read_events(Bytes::new(), 10).is_empty());
    }

    #[test]
    fn strict_rejects_trailing_bytes_that_are_not_a_frame() {
        assert_eq!(
            FrameCodec::validate_strict(b"\x01\0\0\0a\x07", 1),
            Err(WireError::TrailingBytes { count: 1 })
        );
        assert_eq!(
            FrameCodec::validate_strict(b"\x01\0\0\0a\x07\0\0\0", 1),
            Err(WireError::TrailingBytes { count: 4 })
        );
    }

    #[test]
    fn strict_reports_the_frame_that_is_cut_off() {
        assert_eq!(
            FrameCodec::validate_strict(b"\x01\0\0\0a\xff\xff\xff\xffzz", 5),
            Err(WireError::FrameTruncated {
                index: 1,
                len: 0xffff_ffff,
                available: 2
            })
        );
        assert_eq!(
            FrameCodec::validate_strict(b"\x01\0\0\0a\x01", 2),
            Err(WireError::LengthPrefixTruncated {
                index: 1,
                available: 1
            })
        );
    }

    #[test]
    fn zero_count_needs_an_empty_payload() {
        assert_eq!(FrameCodec::validate_strict(b"", 0), Ok(()));
        assert!(FrameCodec::decode_strict(Bytes::new(), 0)
            .unwrap()
            .is_empty());
        assert_eq!(
            FrameCodec::validate_strict(b"\0\0\0\0", 0),
            Err(WireError::TooManyFrames { declared: 0 })
        );
    }

    #[test]
    fn frame_iter_is_fused_after_an_error() {
        let mut frames = FrameCodec::iter(b"\x09\0\0\0ab");
        assert!(matches!(
            frames.next(),
            Some(Err(WireError::FrameTruncated { .. }))
        ));
        assert_eq!(frames.next(), None);
        assert_eq!(frames.size_hint(), (0, Some(0)));
    }
}
