//! Known-answer check of netmesh-session against running net-mesh 0.23 nodes over
//! 127.0.0.1: both node types (NetAdapter with the empty prologue, MeshNode with the mesh
//! prologue), both directions of the handshake. Keys are shown to agree by traffic:
//! events sealed under our derived tx key are delivered by net-mesh, and net-mesh's data
//! packets and heartbeats open under our rx key. Then netmesh's capability marker (a
//! heartbeat with subprotocol 0x4E4D) is sent and what net-mesh does with it observed.

use std::fmt::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use bytes::Bytes;
use netmesh_session::{Prologue, Psk, Responder, StaticKeypair};
use netmesh_wire::PacketFlags;
use tokio::runtime::Runtime;

use crate::content::{self, Tally};
use crate::nodes::{self, Kind, MeshSetup, RefNode, Timing};
use crate::peer::{self, Peer, Seen};

/// Our wire id when we face a MeshNode (fits u32, as a MeshNode's own ids do).
pub const OUR_WIRE_ID: u64 = 0x4E4D_0001;

const EVENTS: u64 = 60;
const STREAMS: u64 = 3;
const SIZE: usize = 48;
const WAIT: Duration = Duration::from_secs(5);

/// One scenario's outcome.
#[derive(Debug)]
pub struct Outcome {
    /// "netmesh -> adapter" etc.
    pub name: String,
    /// Failed checks (empty: passed).
    pub failures: Vec<String>,
    /// What was observed, one fact a line.
    pub notes: Vec<String>,
}

/// Runs the four scenarios. Errors only for setup failures (sockets, runtime).
pub fn run() -> std::io::Result<Vec<Outcome>> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut out = Vec::new();
    for kind in [Kind::Adapter, Kind::Mesh] {
        for we_initiate in [true, false] {
            out.push(scenario(&rt, kind, we_initiate)?);
        }
    }
    Ok(out)
}

fn free_loopback_addr() -> std::io::Result<SocketAddr> {
    // NetAdapter has no way to report the port it bound, so pick one first.
    UdpSocket::bind("127.0.0.1:0")?.local_addr()
}

struct Ctx {
    failures: Vec<String>,
    notes: Vec<String>,
}

impl Ctx {
    fn check(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.failures.push(what.into());
        }
    }
}

fn scenario(rt: &Runtime, kind: Kind, we_initiate: bool) -> std::io::Result<Outcome> {
    let name = match (kind, we_initiate) {
        (Kind::Adapter, true) => "netmesh initiator -> NetAdapter responder (empty prologue)",
        (Kind::Adapter, false) => "NetAdapter initiator -> netmesh responder (empty prologue)",
        (Kind::Mesh, true) => "netmesh initiator -> MeshNode responder (mesh prologue)",
        (Kind::Mesh, false) => "MeshNode initiator -> netmesh responder (mesh prologue)",
    };
    let mut ctx = Ctx {
        failures: Vec::new(),
        notes: Vec::new(),
    };
    let psk_bytes = *StaticKeypair::generate()
        .map_err(std::io::Error::other)?
        .secret_bytes();
    let psk = Psk::new(psk_bytes);
    let socket = peer::loopback_socket()?;
    let timing = Timing::default();

    let started = Instant::now();
    let established = match (kind, we_initiate) {
        (Kind::Adapter, true) => {
            let server = StaticKeypair::generate().map_err(std::io::Error::other)?;
            let addr = free_loopback_addr()?;
            let node = rt.spawn(nodes::adapter_responder(
                addr,
                psk_bytes,
                *server.secret_bytes(),
                server.public_key().0,
                timing,
            ));
            let ours = peer::initiate(
                &socket,
                addr,
                &server.public_key(),
                &psk,
                &Prologue::Empty,
                WAIT,
            );
            join(rt, node, ours.map(|(k, r)| (k, addr, r)))
        }
        (Kind::Adapter, false) => {
            let us = StaticKeypair::generate().map_err(std::io::Error::other)?;
            let node = rt.spawn(nodes::adapter_initiator(
                "127.0.0.1:0".parse().expect("address"),
                socket.local_addr()?,
                psk_bytes,
                us.public_key().0,
                timing,
            ));
            let ours = peer::respond(&socket, &Responder::new(&us, &psk), &Prologue::Empty, WAIT);
            join(rt, node, ours)
        }
        (Kind::Mesh, true) => {
            let setup = bind_mesh(rt, psk_bytes, timing)?;
            let (addr, public, their_id) =
                (setup.local_addr(), setup.public_key(), setup.wire_id());
            let node = rt.spawn(async move { setup.accept(OUR_WIRE_ID).await.map(|(n, _)| n) });
            let prologue = Prologue::Mesh {
                initiator_id: OUR_WIRE_ID,
                responder_id: their_id,
            };
            let ours = peer::initiate(
                &socket,
                addr,
                &netmesh_session::PublicKey(public),
                &psk,
                &prologue,
                WAIT,
            );
            join(rt, node, ours.map(|(k, r)| (k, addr, r)))
        }
        (Kind::Mesh, false) => {
            let us = StaticKeypair::generate().map_err(std::io::Error::other)?;
            let setup = bind_mesh(rt, psk_bytes, timing)?;
            let their_id = setup.wire_id();
            let our_addr = socket.local_addr()?;
            let our_public = us.public_key().0;
            let node = rt.spawn(setup.connect(our_addr, our_public, OUR_WIRE_ID));
            let prologue = Prologue::Mesh {
                initiator_id: their_id,
                responder_id: OUR_WIRE_ID,
            };
            let ours = peer::respond(&socket, &Responder::new(&us, &psk), &prologue, WAIT);
            join(rt, node, ours)
        }
    };
    let (node, keys, remote, refused) = match established {
        Ok(x) => x,
        Err(e) => {
            ctx.failures.push(format!("handshake: {e}"));
            return Ok(Outcome {
                name: name.to_owned(),
                failures: ctx.failures,
                notes: ctx.notes,
            });
        }
    };
    ctx.notes.push(format!(
        "handshake completed in {:.0} ms, session {:#018x}; our side refused {} handshake datagram(s) first {:?}",
        started.elapsed().as_secs_f64() * 1e3,
        keys.session_id(),
        refused.len(),
        refused
    ));
    let mut peer = Peer::new(socket, remote, &keys);

    // netmesh -> net-mesh: events under our tx key must be delivered.
    let sent = content::per_stream(EVENTS, STREAMS, SIZE);
    for (stream, events) in &sent {
        peer.send_events(*stream, events)?;
    }
    let got = rt
        .block_on(node.collect(EVENTS as usize, WAIT))
        .map_err(std::io::Error::other)?;
    let tally = tally_of(&got);
    ctx.check(
        tally.events == EVENTS && tally.corrupt == 0 && tally.duplicates == 0,
        format!("net-mesh delivered {tally:?} of our {EVENTS} events"),
    );
    ctx.notes.push(format!(
        "net-mesh delivered {}/{EVENTS} events we sealed (corrupt {}, duplicates {}, out of order {})",
        tally.events, tally.corrupt, tally.duplicates, tally.out_of_order
    ));

    // Heartbeats from net-mesh must verify under our rx key.
    let heard = peer.pump_until(Duration::from_secs(3), |s| s.heartbeats >= 2)?;
    ctx.check(
        heard,
        format!(
            "no authenticated heartbeat from net-mesh: {:?}",
            summary(&peer.seen)
        ),
    );

    marker_experiment(rt, &node, &mut peer, &mut ctx)?;
    control_packets(rt, &node, &mut peer, &mut ctx)?;

    // net-mesh -> netmesh, after the marker: its packets open under our rx key.
    let theirs = content::per_stream(EVENTS, STREAMS, SIZE);
    for (stream, events) in &theirs {
        rt.block_on(node.send(*stream as u16, events))
            .map_err(std::io::Error::other)?;
    }
    peer.pump_until(WAIT, |s| s.events.len() as u64 >= EVENTS)?;
    peer.pump(Duration::from_millis(300))?;
    let tally = tally_of(&peer.seen.events);
    ctx.check(
        tally.events == EVENTS
            && tally.corrupt == 0
            && tally.duplicates == 0
            && tally.out_of_order == 0,
        format!("we opened {tally:?} of net-mesh's {EVENTS} events"),
    );
    ctx.notes.push(format!(
        "we opened {}/{EVENTS} of net-mesh's events in {} data packets (corrupt {}, duplicates {}, out of order {})",
        tally.events, peer.seen.data_packets, tally.corrupt, tally.duplicates, tally.out_of_order
    ));
    ctx.notes.push(format!(
        "everything net-mesh sent us: {}",
        summary(&peer.seen)
    ));
    rt.block_on(node.shutdown())
        .map_err(std::io::Error::other)?;
    Ok(Outcome {
        name: name.to_owned(),
        failures: ctx.failures,
        notes: ctx.notes,
    })
}

fn bind_mesh(rt: &Runtime, psk: [u8; 32], timing: Timing) -> std::io::Result<MeshSetup> {
    rt.block_on(MeshSetup::bind(
        "127.0.0.1:0".parse().expect("address"),
        psk,
        timing,
        None,
    ))
    .map_err(std::io::Error::other)
}

type Established = (
    RefNode,
    netmesh_session::SessionKeys,
    SocketAddr,
    Vec<netmesh_session::HandshakeError>,
);

fn join(
    rt: &Runtime,
    node: tokio::task::JoinHandle<Result<RefNode, net::error::AdapterError>>,
    ours: Result<
        (
            netmesh_session::SessionKeys,
            SocketAddr,
            Vec<netmesh_session::HandshakeError>,
        ),
        peer::HandshakeFailure,
    >,
) -> Result<Established, String> {
    let theirs = rt.block_on(node);
    match (theirs, ours) {
        (Ok(Ok(node)), Ok((keys, addr, refused))) => Ok((node, keys, addr, refused)),
        (theirs, ours) => Err(format!(
            "net-mesh: {:?}; netmesh: {:?}",
            theirs.map(|r| r.map(|_| "ok")),
            ours.map(|_| "ok").map_err(|e| e.to_string())
        )),
    }
}

fn tally_of(events: &[Bytes]) -> Tally {
    let mut tally = Tally::default();
    for e in events {
        tally.add(e);
    }
    tally
}

fn summary(seen: &Seen) -> String {
    let mut s = format!(
        "{} data packets, {} heartbeats ({} marked), {} grants",
        seen.data_packets,
        seen.heartbeats,
        seen.marked_heartbeats,
        seen.grants.len()
    );
    if let Some((stream, total)) = seen.grants.last() {
        let _ = write!(s, " (last: stream {stream} total_consumed {total})");
    }
    let _ = write!(
        s,
        ", {} pingwaves (72 B, not netmesh), other subprotocols {:?}, not netmesh by length {:?}, late handshakes {}, refused {:?}, from other addresses {}",
        seen.pingwaves, seen.other_subprotocols, seen.not_netmesh, seen.handshakes, seen.refused, seen.foreign
    );
    s
}

/// What net-mesh does with the capability marker. net-mesh verifies a heartbeat's tag
/// and admits its counter to the replay window; whether it does so for the marked
/// heartbeat is observed through the window. A data packet sealed before the marker
/// (counter c) but sent after it (counter m >= c + 1100) is refused as too old only if
/// m was admitted. A control run with a damaged marker shows such a held packet
/// delivered. (net-mesh admits any authenticated counter ahead of its window: it has no
/// limit on forward jumps, so the marker's counter can be far ahead.)
fn marker_experiment(
    rt: &Runtime,
    node: &RefNode,
    peer: &mut Peer,
    ctx: &mut Ctx,
) -> std::io::Result<()> {
    let control = marker_attempt(rt, node, peer, true, 1, WAIT)?;
    ctx.check(
        control == 1,
        "control failed: a held packet sent after a damaged marker was not delivered",
    );
    let held = marker_attempt(rt, node, peer, false, 2, Duration::from_millis(700))?;
    ctx.check(
        held == 0,
        "a packet sealed before the marked heartbeat and sent after it was delivered: the marker's counter was not admitted",
    );
    // The session survives: our next packet is delivered, net-mesh keeps sending
    // authenticated heartbeats, and the marker was not delivered as an event.
    let fresh = peer.build_data(7, &[content::event(7, 3, SIZE)]);
    peer.send(&fresh)?;
    let after = rt
        .block_on(node.collect(1, Duration::from_secs(2)))
        .map_err(std::io::Error::other)?;
    ctx.check(after.len() == 1, "no packet delivered after the marker");
    ctx.check(
        node_poll_count(rt, node)? == 0,
        "the marked heartbeat was delivered as an event",
    );
    let before = peer.seen.heartbeats;
    let alive = peer.pump_until(Duration::from_secs(2), |s| s.heartbeats > before)?;
    ctx.check(alive, "no heartbeat from net-mesh after the marker");
    ctx.notes.push(format!(
        "marked heartbeat (subprotocol 0x4E4D): tag verified and counter admitted (a packet held from before it and sent after it: delivered {held}; after a damaged marker: delivered {control}); not delivered as an event; session kept (next packet delivered: {}, heartbeats keep coming: {alive})",
        after.len()
    ));
    Ok(())
}

/// Seals one data packet and holds it, burns 1100 counters, sends a marker (or a
/// damaged one), then sends the held packet; returns how many events net-mesh delivered
/// within `wait` (returning as soon as one is: long where delivery is expected, short
/// where its absence is).
fn marker_attempt(
    rt: &Runtime,
    node: &RefNode,
    peer: &mut Peer,
    corrupt: bool,
    index: u64,
    wait: Duration,
) -> std::io::Result<usize> {
    let stream = 7;
    let held = peer.build_data(stream, &[content::event(stream, index, SIZE)]);
    peer.burn_counters(1100);
    let marker = peer.marked_heartbeat(corrupt);
    peer.send(&marker)?;
    std::thread::sleep(Duration::from_millis(100));
    peer.send(&held)?;
    let got = rt
        .block_on(node.collect(1, wait))
        .map_err(std::io::Error::other)?;
    Ok(got.len())
}

/// What net-mesh does with netmesh's control packets (recorded, not judged): each is
/// one authenticated data packet with one 16-byte event.
fn control_packets(
    rt: &Runtime,
    node: &RefNode,
    peer: &mut Peer,
    ctx: &mut Ctx,
) -> std::io::Result<()> {
    let body = Bytes::from_static(&[0x11; 16]);
    let kinds: [(&str, u64, PacketFlags, u16); 4] = [
        (
            "CREDIT (subprotocol 0x4E01, stream u64::MAX)",
            u64::MAX,
            PacketFlags::NONE,
            0x4E01,
        ),
        (
            "ACK (subprotocol 0x4E03, stream u64::MAX)",
            u64::MAX,
            PacketFlags::NONE,
            0x4E03,
        ),
        (
            "NACK (flag NACK, subprotocol 0, stream 5)",
            5,
            PacketFlags::NACK,
            0,
        ),
        (
            "grant (subprotocol 0x0B00, stream u64::MAX)",
            u64::MAX,
            PacketFlags::NONE,
            0x0B00,
        ),
    ];
    let mut seen = Vec::new();
    for (name, stream, flags, subprotocol) in kinds {
        let packet = peer.build_raw(stream, 0, std::slice::from_ref(&body), flags, subprotocol);
        peer.send(&packet)?;
        let got = rt
            .block_on(node.collect(1, Duration::from_secs(1)))
            .map_err(std::io::Error::other)?;
        seen.push(format!("{name}: {} event(s) delivered", got.len()));
    }
    // The session still works afterwards.
    let after = peer.build_data(7, &[content::event(7, 4, SIZE)]);
    peer.send(&after)?;
    let got = rt
        .block_on(node.collect(1, Duration::from_secs(2)))
        .map_err(std::io::Error::other)?;
    ctx.check(
        got.len() == 1,
        "no data packet delivered after the control packets",
    );
    ctx.notes.push(format!(
        "control packets sent to net-mesh: {}",
        seen.join("; ")
    ));
    Ok(())
}

fn node_poll_count(rt: &Runtime, node: &RefNode) -> std::io::Result<usize> {
    std::thread::sleep(Duration::from_millis(100));
    Ok(rt
        .block_on(node.poll())
        .map_err(std::io::Error::other)?
        .len())
}
