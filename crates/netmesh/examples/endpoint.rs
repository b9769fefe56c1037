//! How to use the library: two endpoints on 127.0.0.1, a Noise handshake, events both
//! ways on a reliable and a fire-and-forget stream.
//!
//! ```sh
//! cargo run --release --example endpoint
//! ```
//!
//! The `netmesh` tool (`cargo run --release --bin netmesh -- bench`) does the same at
//! full speed, with checks; this is the smallest program that shows the calls.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use netmesh::bytes::Bytes;
use netmesh::session::{Prologue, Psk, Responder, StaticKeypair};
use netmesh_udp::{Accept, Endpoint, EndpointConfig, Event, Peer};

const WAIT: Duration = Duration::from_secs(5);

/// What [`run`] saw arrive on each side.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Heard {
    /// Events the server received, in arrival order per stream.
    pub(crate) server: Vec<(u64, Bytes)>,
    /// Events the client received back.
    pub(crate) client: Vec<(u64, Bytes)>,
}

/// Sends `count` events each way (reliable on stream 0, fire-and-forget on stream 1).
pub(crate) fn run(count: usize) -> Result<Heard, Box<dyn Error>> {
    // The server's static key: in a real deployment, `netmesh keygen` writes it to a file
    // and the client learns the public half out of band. Both sides share the PSK.
    let server_key = StaticKeypair::generate()?;
    let psk = Psk::new(*StaticKeypair::generate()?.secret_bytes());

    // A server accepts handshakes with its keypair; the empty prologue is net-mesh's
    // point-to-point one (`Prologue::Mesh { .. }` is its MeshNode's).
    let server = Endpoint::bind(EndpointConfig {
        accept: Some(Accept {
            responder: Arc::new(Responder::new(&server_key, &psk)),
            prologue: Prologue::Empty,
        }),
        ..EndpointConfig::new("127.0.0.1:0".parse()?)
    })?;
    // A client only initiates: it needs the server's address and public key.
    let client = Endpoint::bind(EndpointConfig::new("127.0.0.1:0".parse()?))?;
    let to_server = client.connect(
        server.local_addr(),
        &server_key.public_key(),
        &psk,
        &Prologue::Empty,
        WAIT,
    )?;

    // Any number of threads may send through clones of a `Peer`; flow control waits for
    // the receiver's credit, so nothing overruns its socket or replay window.
    let events = |side: &str, stream: u64| -> Vec<Bytes> {
        (0..count)
            .map(|i| Bytes::from(format!("{side} stream {stream} event {i}")))
            .collect()
    };
    to_server.send(0, &events("client", 0), true)?;
    to_server.send(1, &events("client", 1), false)?;

    // Everything that arrives, and every new peer, comes through `recv_event`.
    let mut heard = Heard::default();
    let mut to_client: Option<Peer> = None;
    while heard.server.len() < 2 * count {
        match server
            .recv_event(WAIT)
            .ok_or("the server heard nothing for 5 s")?
        {
            Event::Connected(peer) => {
                println!("server: {} connected", peer.addr());
                to_client = Some(peer);
            }
            Event::Delivery(delivery) => {
                let stream = delivery.stream_id();
                heard
                    .server
                    .extend(delivery.events().map(|event| (stream, event)));
            }
            other => println!("server: {other:?}"),
        }
    }

    // The server answers through the handle its `Connected` event gave it.
    let to_client = to_client.ok_or("no Connected event")?;
    to_client.send(0, &events("server", 0), true)?;
    while heard.client.len() < count {
        if let Event::Delivery(delivery) = client
            .recv_event(WAIT)
            .ok_or("the client heard nothing for 5 s")?
        {
            let stream = delivery.stream_id();
            heard
                .client
                .extend(delivery.events().map(|event| (stream, event)));
        }
    }

    let stats = server.stats();
    println!(
        "server: {} events in {} packets, {} datagrams refused",
        stats.sessions.events_delivered,
        stats.sessions.packets_received,
        stats.rejected.total()
    );
    Ok(heard)
}

#[allow(dead_code)] // the tests include this file and call `run` only
fn main() -> Result<(), Box<dyn Error>> {
    let heard = run(1000)?;
    for (stream, event) in heard
        .server
        .iter()
        .take(2)
        .chain(heard.client.iter().take(1))
    {
        println!("stream {stream}: {}", String::from_utf8_lossy(event));
    }
    println!(
        "server heard {} events, client heard {} back",
        heard.server.len(),
        heard.client.len()
    );
    Ok(())
}
