//! netmesh over real UDP sockets.
//!
//! [`BatchSocket`] moves datagrams through the kernel in batches (UDP GSO for sends,
//! recvmmsg and UDP GRO for receives, through `quinn-udp`), with large socket buffers
//! requested through `socket2`. Receive buffers are cut into `BytesMut` datagrams with
//! `split_to`, zero copy.

#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod socket;

pub use socket::{BatchSocket, RecvBatch, SocketInfo, SocketOptions};
