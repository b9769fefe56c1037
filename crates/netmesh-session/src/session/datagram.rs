//! [`IncomingDatagram`]: what [`Session::handle_datagram`](crate::Session::handle_datagram)
//! accepts.

use bytes::{Bytes, BytesMut};
use netmesh_pool::{OpenError, OpenedPacket, PacketOpener};

/// A received datagram: [`Bytes`] or [`BytesMut`] (sealed).
///
/// A `BytesMut` cut from a receive buffer with `split_to` is the endpoint's natural
/// form; a `Bytes` that nobody else holds is decrypted in place too.
pub trait IncomingDatagram: Sealed {}

impl IncomingDatagram for Bytes {}
impl IncomingDatagram for BytesMut {}

/// The datagram, as the session handles it.
pub(crate) enum Incoming {
    Shared(Bytes),
    Exclusive(BytesMut),
}

impl Incoming {
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Self::Shared(b) => b,
            Self::Exclusive(b) => b,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.as_slice().len()
    }

    // Inlined: called, the opened packet and its result travel through memory.
    #[inline(always)]
    pub(crate) fn open(self, opener: &PacketOpener) -> Result<OpenedPacket, OpenError> {
        match self {
            Self::Shared(b) => opener.open(b),
            // The caller's alone, even when split off a larger receive buffer: opened
            // in place, no copy (freezing it first would make it shared).
            Self::Exclusive(b) => opener.open(b),
        }
    }
}

// The sealing trait hands the session its own private form of the datagram.
#[allow(private_interfaces)]
mod sealed {
    use super::Incoming;

    pub trait Sealed {
        #[doc(hidden)]
        fn into_incoming(self) -> Incoming;
    }

    impl Sealed for bytes::Bytes {
        fn into_incoming(self) -> Incoming {
            Incoming::Shared(self)
        }
    }

    impl Sealed for bytes::BytesMut {
        fn into_incoming(self) -> Incoming {
            Incoming::Exclusive(self)
        }
    }
}

pub(crate) use sealed::Sealed;
