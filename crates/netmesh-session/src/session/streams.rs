//! Per-stream state: sequences, reliable send buffers and receive reorder buffers.

use netmesh_pool::OpenedPacket;

/// The receive side of one reliable stream.
#[derive(Debug, Default)]
pub(crate) struct ReliableRx {}

impl ReliableRx {
    pub(crate) fn ready(&self) -> usize {
        0
    }

    pub(crate) fn pop_ready(&mut self) -> Option<OpenedPacket> {
        None
    }
}
