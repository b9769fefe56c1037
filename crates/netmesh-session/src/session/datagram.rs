//! [`IncomingDatagram`]: what [`Session::handle_datagram`](crate::Session::handle_datagram)
//! accepts.

/// A received datagram: every form the pool opens ([`netmesh_pool::Datagram`]: `Bytes`,
/// `BytesMut`, [`SplitDatagram`](netmesh_pool::SplitDatagram)); sealed.
///
/// A `BytesMut` cut from a receive buffer with `split_to` is the endpoint's natural
/// form, wrapped in a `SplitDatagram` to save a copy of its payload; a `Bytes` that
/// nobody else holds is decrypted in place too.
pub trait IncomingDatagram: Sealed {}

impl<D: netmesh_pool::Datagram> IncomingDatagram for D {}

// The sealing trait gives the session what it needs of either form, monomorphized: no
// enum to match per packet. Every form the pool opens will do.
#[allow(private_interfaces)]
mod sealed {
    use netmesh_pool::{Datagram, OpenError, OpenedPacket, PacketOpener};

    pub trait Sealed {
        #[doc(hidden)]
        fn as_bytes(&self) -> &[u8];

        #[doc(hidden)]
        fn open_with(self, opener: &PacketOpener) -> Result<OpenedPacket, OpenError>;
    }

    impl<D: Datagram> Sealed for D {
        fn as_bytes(&self) -> &[u8] {
            self
        }

        // A `BytesMut` is the caller's alone, even when split off a larger receive
        // buffer: opened in place, no copy (freezing it first would make it shared).
        #[inline(always)]
        fn open_with(self, opener: &PacketOpener) -> Result<OpenedPacket, OpenError> {
            opener.open(self)
        }
    }
}

pub(crate) use sealed::Sealed;
