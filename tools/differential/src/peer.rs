//! A netmesh peer over a plain std `UdpSocket`: netmesh-session's handshake, then
//! netmesh-pool's builder and opener under the derived keys. Deliberately minimal (no
//! flow control, no retransmission): it exists to check keys and wire behaviour against
//! real net-mesh nodes.

use std::collections::BTreeMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use bytes::Bytes;
use netmesh_cipher::{nonce_for, session_prefix_from_id, PacketCipher, TxCounter};
use netmesh_pool::{PacketBuilder, PacketOpener};
use netmesh_session::{
    HandshakeError, Initiator, Prologue, Psk, PublicKey, Responder, SessionKeys,
};
use netmesh_wire::{NetHeader, PacketFlags, MAX_PACKET_SIZE, MAX_PAYLOAD_SIZE};

/// netmesh's capability marker: a heartbeat with this subprotocol id.
pub const NETMESH_HELLO_SUBPROTOCOL: u16 = 0x4E4D;
/// net-mesh's stream window grant subprotocol.
pub const GRANT_SUBPROTOCOL: u16 = 0x0B00;
/// Size of a MeshNode's pingwave datagram (not a netmesh packet).
pub const PINGWAVE_SIZE: usize = 72;

/// Everything a peer received, by kind.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// Events of data packets (subprotocol 0), in arrival order.
    pub events: Vec<Bytes>,
    /// Data packets (subprotocol 0) opened.
    pub data_packets: u64,
    /// Authenticated heartbeats.
    pub heartbeats: u64,
    /// Authenticated heartbeats carrying the netmesh marker.
    pub marked_heartbeats: u64,
    /// Stream window grants: (stream, total_consumed) in arrival order.
    pub grants: Vec<(u64, u64)>,
    /// Authenticated packets of other subprotocols: id -> packets.
    pub other_subprotocols: BTreeMap<u16, u64>,
    /// Handshake packets after the session was established.
    pub handshakes: u64,
    /// 72-byte datagrams that are not netmesh packets (a MeshNode's pingwaves).
    pub pingwaves: u64,
    /// Other datagrams that are not netmesh packets: length -> count.
    pub not_netmesh: BTreeMap<usize, u64>,
    /// Packets the opener refused: error -> count.
    pub refused: BTreeMap<String, u64>,
    /// Datagrams from an address other than the peer's.
    pub foreign: u64,
}

/// Why a handshake did not complete.
#[derive(Debug)]
pub enum HandshakeFailure {
    /// Socket error.
    Io(io::Error),
    /// No acceptable answer before the deadline; the refusals seen meanwhile.
    Timeout(Vec<HandshakeError>),
}

impl std::fmt::Display for HandshakeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "socket error: {e}"),
            Self::Timeout(refused) => write!(f, "handshake timed out; refused: {refused:?}"),
        }
    }
}

/// Runs our initiator against `to`: sends msg1 (again every `retry`), accepts the first
/// msg2 from `to` that authenticates. Refused msg2s are returned with the keys.
pub fn initiate(
    socket: &UdpSocket,
    to: SocketAddr,
    responder: &PublicKey,
    psk: &Psk,
    prologue: &Prologue,
    deadline: Duration,
) -> Result<(SessionKeys, Vec<HandshakeError>), HandshakeFailure> {
    let mut initiator =
        Initiator::new(responder, psk, prologue).map_err(|e| HandshakeFailure::Timeout(vec![e]))?;
    let start = Instant::now();
    let retry = Duration::from_millis(500);
    let mut refused = Vec::new();
    let mut buf = vec![0u8; 65_536];
    let mut last_sent: Option<Instant> = None;
    while start.elapsed() < deadline {
        if last_sent.is_none_or(|t| t.elapsed() >= retry) {
            socket
                .send_to(initiator.msg1_datagram(), to)
                .map_err(HandshakeFailure::Io)?;
            last_sent = Some(Instant::now());
        }
        let Some((n, from)) = recv_briefly(socket, &mut buf)? else {
            continue;
        };
        if from != to {
            continue;
        }
        match initiator.read_msg2(&buf[..n]) {
            Ok(keys) => return Ok((keys, refused)),
            Err(e) => refused.push(e),
        }
    }
    Err(HandshakeFailure::Timeout(refused))
}

/// Runs our responder: answers the first msg1 that authenticates (from any address).
/// Returns the keys, the initiator's address and the refusals seen before.
pub fn respond(
    socket: &UdpSocket,
    responder: &Responder,
    prologue: &Prologue,
    deadline: Duration,
) -> Result<(SessionKeys, SocketAddr, Vec<HandshakeError>), HandshakeFailure> {
    let start = Instant::now();
    let mut refused = Vec::new();
    let mut buf = vec![0u8; 65_536];
    while start.elapsed() < deadline {
        let Some((n, from)) = recv_briefly(socket, &mut buf)? else {
            continue;
        };
        match responder.respond(&buf[..n], prologue) {
            Ok((keys, msg2)) => {
                socket.send_to(&msg2, from).map_err(HandshakeFailure::Io)?;
                return Ok((keys, from, refused));
            }
            Err(e) => refused.push(e),
        }
    }
    Err(HandshakeFailure::Timeout(refused))
}

/// One datagram, or `None` after 50 ms without one.
fn recv_briefly(
    socket: &UdpSocket,
    buf: &mut [u8],
) -> Result<Option<(usize, SocketAddr)>, HandshakeFailure> {
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(HandshakeFailure::Io)?;
    match socket.recv_from(buf) {
        Ok(x) => Ok(Some(x)),
        Err(e) if is_timeout(&e) => Ok(None),
        Err(e) => Err(HandshakeFailure::Io(e)),
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// One established session with a remote node.
pub struct Peer {
    socket: UdpSocket,
    remote: SocketAddr,
    session_id: u64,
    counter: TxCounter,
    builder: PacketBuilder,
    cipher: PacketCipher,
    opener: PacketOpener,
    sequences: BTreeMap<u64, u64>,
    /// What arrived so far.
    pub seen: Seen,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("remote", &self.remote)
            .field("session_id", &format_args!("{:#018x}", self.session_id))
            .finish_non_exhaustive()
    }
}

impl Peer {
    /// A session over `socket` with `remote` under `keys`.
    pub fn new(socket: UdpSocket, remote: SocketAddr, keys: &SessionKeys) -> Self {
        let counter = TxCounter::new();
        Self {
            socket,
            remote,
            session_id: keys.session_id(),
            builder: PacketBuilder::with_shared_counter(
                keys.tx_key(),
                keys.session_id(),
                0,
                counter.clone(),
            ),
            cipher: PacketCipher::with_counter(keys.tx_key(), keys.session_id(), counter.clone()),
            counter,
            opener: PacketOpener::new(keys.rx_key(), keys.session_id()),
            sequences: BTreeMap::new(),
            seen: Seen::default(),
        }
    }

    /// The session id.
    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    /// Sends a datagram to the remote.
    pub fn send(&self, datagram: &[u8]) -> io::Result<()> {
        self.socket.send_to(datagram, self.remote).map(|_| ())
    }

    /// Builds one data packet of `events` (which must fit) on `stream` with the stream's
    /// next sequence, without sending it.
    pub fn build_data(&mut self, stream: u64, events: &[Bytes]) -> Bytes {
        let sequence = self.sequences.entry(stream).or_insert(0);
        let packet = self
            .builder
            .build(stream, *sequence, events, PacketFlags::NONE);
        *sequence += 1;
        packet
    }

    /// Builds one packet with any subprotocol id and flags, without sending it.
    pub fn build_raw(
        &mut self,
        stream: u64,
        sequence: u64,
        events: &[Bytes],
        flags: PacketFlags,
        subprotocol: u16,
    ) -> Bytes {
        self.builder
            .build_subprotocol(stream, sequence, events, flags, subprotocol)
    }

    /// Sends `events` on `stream`, as many per packet as fit. Returns the packets sent.
    pub fn send_events(&mut self, stream: u64, events: &[Bytes]) -> io::Result<u64> {
        let mut packets = 0;
        let mut start = 0;
        while start < events.len() {
            let mut end = start;
            let mut size = 0;
            while end < events.len() && size + 4 + events[end].len() <= MAX_PAYLOAD_SIZE {
                size += 4 + events[end].len();
                end += 1;
            }
            let end = end.max(start + 1);
            let packet = self.build_data(stream, &events[start..end]);
            self.send(&packet)?;
            packets += 1;
            start = end;
        }
        Ok(packets)
    }

    /// A heartbeat carrying netmesh's capability marker (subprotocol 0x4E4D), under the
    /// next counter. With `corrupt`, its tag is damaged (for control experiments).
    pub fn marked_heartbeat(&self, corrupt: bool) -> Bytes {
        let mut header =
            NetHeader::heartbeat(self.session_id).with_subprotocol(NETMESH_HELLO_SUBPROTOCOL);
        let (counter, mut tag) = self
            .cipher
            .seal_in_place_detached(&header.aad(), &mut [])
            .expect("counter not exhausted");
        header.nonce = nonce_for(session_prefix_from_id(self.session_id), counter);
        if corrupt {
            tag[0] ^= 1;
        }
        let mut out = header.to_bytes().to_vec();
        out.extend_from_slice(&tag);
        Bytes::from(out)
    }

    /// Takes `n` counters without sending anything.
    pub fn burn_counters(&self, n: u64) {
        for _ in 0..n {
            self.counter.next().expect("counter not exhausted");
        }
    }

    /// Receives and classifies datagrams for `duration`.
    pub fn pump(&mut self, duration: Duration) -> io::Result<()> {
        let end = Instant::now() + duration;
        let mut buf = vec![0u8; MAX_PACKET_SIZE.max(65_536)];
        loop {
            let now = Instant::now();
            if now >= end {
                return Ok(());
            }
            self.socket
                .set_read_timeout(Some((end - now).max(Duration::from_millis(1))))?;
            let (n, from) = match self.socket.recv_from(&mut buf) {
                Ok(x) => x,
                Err(e) if is_timeout(&e) => return Ok(()),
                Err(e) => return Err(e),
            };
            if from != self.remote {
                self.seen.foreign += 1;
                continue;
            }
            self.classify(Bytes::copy_from_slice(&buf[..n]));
        }
    }

    /// Pumps until `done(seen)` holds or `timeout` passes; returns whether it held.
    pub fn pump_until(
        &mut self,
        timeout: Duration,
        done: impl Fn(&Seen) -> bool,
    ) -> io::Result<bool> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if done(&self.seen) {
                return Ok(true);
            }
            self.pump(Duration::from_millis(20))?;
        }
        Ok(done(&self.seen))
    }

    fn classify(&mut self, datagram: Bytes) {
        let header = match NetHeader::parse(&datagram) {
            Ok(h) => h,
            Err(_) if datagram.len() == PINGWAVE_SIZE => {
                self.seen.pingwaves += 1;
                return;
            }
            Err(_) => {
                *self.seen.not_netmesh.entry(datagram.len()).or_default() += 1;
                return;
            }
        };
        if header.flags.is_handshake() {
            self.seen.handshakes += 1;
            return;
        }
        let opened = match self.opener.open(datagram) {
            Ok(p) => p,
            Err(e) => {
                let name = format!("{e:?}");
                let name = name.split([' ', '(', '{']).next().unwrap_or("").to_owned();
                *self.seen.refused.entry(name).or_default() += 1;
                return;
            }
        };
        let header = opened.header();
        if header.flags.is_heartbeat() {
            self.seen.heartbeats += 1;
            if header.subprotocol_id == NETMESH_HELLO_SUBPROTOCOL {
                self.seen.marked_heartbeats += 1;
            }
            return;
        }
        match header.subprotocol_id {
            0 => {
                self.seen.data_packets += 1;
                self.seen.events.extend(opened.events());
            }
            GRANT_SUBPROTOCOL => {
                for e in opened.events() {
                    if e.len() == 16 {
                        let stream = u64::from_le_bytes(e[..8].try_into().expect("8 bytes"));
                        let total = u64::from_le_bytes(e[8..].try_into().expect("8 bytes"));
                        self.seen.grants.push((stream, total));
                    }
                }
            }
            other => *self.seen.other_subprotocols.entry(other).or_default() += 1,
        }
    }
}

/// A socket on 127.0.0.1 with an OS-chosen port.
pub fn loopback_socket() -> io::Result<UdpSocket> {
    UdpSocket::bind("127.0.0.1:0")
}
