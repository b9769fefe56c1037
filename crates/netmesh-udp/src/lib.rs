//! netmesh over real UDP sockets: an [`Endpoint`] that binds, accepts and initiates
//! handshakes, and sends and receives events for many peers at once, on plain threads.
//!
//! - [`BatchSocket`] moves datagrams through the kernel in batches: UDP GSO for runs of
//!   equal-size packets, sendmmsg where GSO does not apply (no offload, or packets
//!   longer than the path MTU lets a segment be), recvmmsg and UDP GRO for receives
//!   (through `quinn-udp` and `rustix`, with fallbacks where the kernel lacks them),
//!   large socket buffers (through `socket2`). Receive buffers are one `BytesMut` per
//!   call, cut into datagrams with `split_to`.
//! - [`Endpoint`] drives a `netmesh_session::Session` per peer: a receive thread per
//!   socket (several with SO_REUSEPORT), a timer thread for heartbeats, handshake retry,
//!   credit, NACK/ACK pacing and idle detection, and sends from any number of
//!   application threads through [`Peer`] handles, which wait for flow-control credit.
//! - Whatever a datagram holds, from anyone, is refused without panicking or blocking
//!   other peers, and counted by kind ([`Rejected`]); handshake initiations are
//!   rate-limited per source address and in all.
//!
//! # Examples
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use bytes::Bytes;
//! use netmesh_session::{Prologue, Psk, Responder, StaticKeypair};
//! use netmesh_udp::{Accept, Endpoint, EndpointConfig, Event};
//!
//! let keypair = StaticKeypair::generate()?;
//! let psk = Psk::new([7; 32]);
//! let server = Endpoint::bind(EndpointConfig {
//!     accept: Some(Accept {
//!         responder: Arc::new(Responder::new(&keypair, &psk)),
//!         prologue: Prologue::Empty,
//!     }),
//!     ..EndpointConfig::new("127.0.0.1:0".parse()?)
//! })?;
//! let client = Endpoint::bind(EndpointConfig::new("127.0.0.1:0".parse()?))?;
//! let peer = client.connect(
//!     server.local_addr(),
//!     &keypair.public_key(),
//!     &psk,
//!     &Prologue::Empty,
//!     Duration::from_secs(5),
//! )?;
//! peer.send(0, &[Bytes::from_static(b"hello")], true)?;
//! loop {
//!     match server.recv_event(Duration::from_secs(5)) {
//!         Some(Event::Delivery(delivery)) => {
//!             assert_eq!(delivery.events().next().as_deref(), Some(&b"hello"[..]));
//!             break;
//!         }
//!         Some(_) => {}
//!         None => panic!("nothing arrived"),
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// One `unsafe` block (`socket::lengthen_initialized`), measured to pay: receive buffers
// are not zeroed again before each batch.
#![deny(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod endpoint;
mod error;
mod event;
mod peer;
mod queue;
mod ratelimit;
mod socket;
mod stats;

pub use endpoint::{Accept, Endpoint, EndpointConfig, EventHandler};
pub use error::{BindError, ConnectError, SendError};
pub use event::{Delivery, Event, PeerId};
pub use peer::Peer;
pub use socket::{BatchSocket, RecvBatch, SocketInfo, SocketOptions};
pub use stats::{EndpointStats, Rejected, Traffic};

/// The session crate this endpoint drives, re-exported for its keys, configuration and
/// events.
pub use netmesh_session as session;
