//! UDP sockets on 127.0.0.1 with large kernel buffers.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

/// Buffer sizes asked for by default: Linux caps them at net.core.{r,w}mem_max and
/// reports twice what it grants (the doubling covers its bookkeeping).
pub(crate) const DEFAULT_BUFFER: usize = 8 << 20;

/// What the kernel granted (as `getsockopt` reports it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Granted {
    pub(crate) recv: usize,
    pub(crate) send: usize,
}

impl std::fmt::Display for Granted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SO_RCVBUF {} B, SO_SNDBUF {} B", self.recv, self.send)
    }
}

/// Binds 127.0.0.1:0 with receive and send buffers of `buffer` bytes asked for.
pub(crate) fn bind(buffer: usize) -> io::Result<(UdpSocket, Granted)> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_recv_buffer_size(buffer)?;
    socket.set_send_buffer_size(buffer)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())?;
    let granted = Granted {
        recv: socket.recv_buffer_size()?,
        send: socket.send_buffer_size()?,
    };
    Ok((socket.into(), granted))
}
