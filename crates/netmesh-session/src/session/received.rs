//! What came in ([`Received`], [`Delivery`]) and what went out ([`Sent`]).

use std::fmt;
use std::sync::MutexGuard;

use bytes::Bytes;
use netmesh_pool::OpenedPacket;

use std::sync::atomic::{AtomicBool, Ordering};

use super::streams::ReliableRx;

/// One packet built by a send call.
///
/// `datagram` is `Some` when it may go on the wire now. It is `None` in the rare case
/// where another thread took counters first and this packet's counter landed beyond the
/// peer's credit: the session keeps the packet and hands it out through
/// [`Session::poll_transmit`](crate::Session::poll_transmit) once credit allows. Either
/// way its events were taken: do not send them again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The packet's nonce counter.
    pub counter: u64,
    /// The packet's sequence number on its stream.
    pub sequence: u64,
    /// The datagram to send now, or `None` when the session deferred it.
    pub datagram: Option<Bytes>,
}

/// What an accepted datagram was. Borrowed from the session only for
/// [`Received::Delivered`], which holds its stream's receive lock until dropped.
#[derive(Debug)]
#[non_exhaustive]
pub enum Received<'a> {
    /// A data packet of a fire-and-forget stream (or any data packet of a net-mesh
    /// peer): its events, zero copy.
    Packet(OpenedPacket),
    /// A packet of a reliable stream: the packets now deliverable in order (none when it
    /// arrived ahead of a gap and was buffered).
    Delivered(Delivery<'a>),
    /// A packet of a reliable stream that was delivered before: dropped (counted).
    Duplicate {
        /// The stream.
        stream_id: u64,
        /// The packet's sequence.
        sequence: u64,
    },
    /// A heartbeat (`marked`: it carried the netmesh capability marker).
    Heartbeat {
        /// Whether the heartbeat carried the netmesh marker.
        marked: bool,
    },
    /// Counter credit from the netmesh peer (it may let blocked senders go on).
    Credit,
    /// Stream window grants (net-mesh's 0x0B00).
    Grant,
    /// A NACK of a reliable stream: retransmissions were queued for
    /// [`poll_transmit`](crate::Session::poll_transmit).
    Nack,
    /// A cumulative ACK of a reliable stream: retransmit buffer space was freed.
    Ack,
    /// A SKIP of a reliable stream: the sender gave up on some sequences (reported as
    /// [`Event::StreamLoss`](crate::Event::StreamLoss)).
    Skip,
    /// A handshake datagram that was answered: a responder's duplicate msg1 (the same
    /// msg2 is queued again) or a re-key (the new msg2 is queued), or the msg2 that
    /// completed an initiator's handshake or re-key.
    Handshake,
    /// Not for this layer, ignored and counted: the 72-byte datagrams a net-mesh
    /// `MeshNode` sends besides its packets.
    Ignored,
}

/// The packets of one reliable stream that are deliverable in order, oldest first.
///
/// Holds the stream's receive lock: drain it and drop it promptly. Packets left in it
/// when it is dropped stay queued and come out of the next delivery of that stream (or
/// [`Session::poll_delivery`](crate::Session::poll_delivery)). Holding it keeps
/// in-order delivery across receiving threads: a thread that receives the next packet of
/// the same stream waits for the lock. So do not call `handle_datagram`,
/// `handle_timeout`, `poll_timeout` or `poll_delivery` on the thread that holds one.
pub struct Delivery<'a> {
    stream_id: u64,
    rx: MutexGuard<'a, ReliableRx>,
    /// The session's "deliveries pending" flag, raised if packets are left undrained.
    pending: &'a AtomicBool,
}

impl<'a> Delivery<'a> {
    pub(crate) fn new(
        stream_id: u64,
        rx: MutexGuard<'a, ReliableRx>,
        pending: &'a AtomicBool,
    ) -> Self {
        Self {
            stream_id,
            rx,
            pending,
        }
    }

    /// The reliable stream these packets belong to.
    #[must_use]
    pub fn stream_id(&self) -> u64 {
        self.stream_id
    }

    /// How many packets are ready in this delivery.
    #[must_use]
    pub fn ready(&self) -> usize {
        self.rx.ready()
    }
}

impl Iterator for Delivery<'_> {
    type Item = OpenedPacket;

    fn next(&mut self) -> Option<OpenedPacket> {
        self.rx.pop_ready()
    }
}

impl Drop for Delivery<'_> {
    fn drop(&mut self) {
        if self.rx.ready() > 0 {
            self.pending.store(true, Ordering::Release);
        }
    }
}

impl fmt::Debug for Delivery<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("stream_id", &self.stream_id)
            .field("ready", &self.ready())
            .finish()
    }
}
