//! [`AsEvent`]: what the send paths take as one event.

use bytes::{Bytes, BytesMut};

/// One event as the send paths take it: any container of its bytes.
///
/// Builders only copy an event's bytes into the packet, and a reliable stream's
/// retransmit buffer copies them into one buffer per packet, so any byte container
/// will do: a slice of the caller's own buffer costs no reference count per event (a
/// `Bytes` costs an atomic increment when made and a decrement when dropped).
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
/// ```
pub trait AsEvent: AsRef<[u8]> {}

impl AsEvent for Bytes {}
impl AsEvent for &Bytes {}
impl AsEvent for &[u8] {}
impl AsEvent for Vec<u8> {}
impl AsEvent for BytesMut {}
impl<const N: usize> AsEvent for [u8; N] {}
impl<const N: usize> AsEvent for &[u8; N] {}
