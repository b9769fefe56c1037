//! net-mesh 0.23's name for the frame codec, kept so that code moving over compiles.

/// net-mesh 0.23's name (`protocol::EventFrame`) for [`FrameCodec`](crate::FrameCodec):
/// the same associated functions, under the name of the reference.
///
/// # Examples
///
/// ```
/// #![allow(deprecated)]
/// use bytes::{Bytes, BytesMut};
/// use netmesh_wire::EventFrame;
///
/// let mut buf = BytesMut::new();
/// assert_eq!(EventFrame::write_events(&[Bytes::from_static(b"a")], &mut buf), 5);
/// assert_eq!(EventFrame::read_events(buf.freeze(), 1), [Bytes::from_static(b"a")]);
/// ```
///
/// Without the `allow`, the name warns (here made an error):
///
/// ```compile_fail
/// #![deny(deprecated)]
/// assert_eq!(netmesh_wire::EventFrame::LEN_SIZE, 4);
/// ```
#[deprecated(note = "renamed to `FrameCodec`: a namespace of frame functions, not a frame")]
pub type EventFrame = crate::FrameCodec;
