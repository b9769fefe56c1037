//! [`AsEvent`]: what the send paths take as one event.

use bytes::{Bytes, BytesMut};

/// One event as the send paths take it: its bytes, and whether it is already a
/// reference-counted [`Bytes`].
///
/// Builders only copy an event's bytes into the packet, so any byte container will do:
/// a slice of the caller's own buffer costs no reference count per event (a `Bytes`
/// costs an atomic increment when made and a decrement when dropped). Paths that keep
/// events after sending (a reliable stream's retransmit buffer) keep a `Bytes` by
/// reference count and copy anything else.
///
/// # Examples
///
/// ```
/// use bytes::Bytes;
/// use netmesh_wire::AsEvent;
///
/// fn total<E: AsEvent>(events: &[E]) -> usize {
///     events.iter().map(|e| e.as_ref().len()).sum()
/// }
/// let buffer = b"onetwo";
/// assert_eq!(total(&[&buffer[..3], &buffer[3..]]), 6);
/// assert_eq!(total(&[Bytes::from_static(b"three")]), 5);
/// assert!(Bytes::from_static(b"x").as_shared().is_some());
/// assert!((&b"x"[..]).as_shared().is_none());
/// ```
pub trait AsEvent: AsRef<[u8]> {
    /// The event as a `Bytes` to keep by reference count, if it is one.
    fn as_shared(&self) -> Option<&Bytes> {
        None
    }
}

impl AsEvent for Bytes {
    #[inline]
    fn as_shared(&self) -> Option<&Bytes> {
        Some(self)
    }
}

impl AsEvent for &Bytes {
    #[inline]
    fn as_shared(&self) -> Option<&Bytes> {
        Some(self)
    }
}

impl AsEvent for &[u8] {}
impl AsEvent for Vec<u8> {}
impl AsEvent for BytesMut {}
impl<const N: usize> AsEvent for [u8; N] {}
impl<const N: usize> AsEvent for &[u8; N] {}
