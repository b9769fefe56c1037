//! The bare-UDP ceiling: the datagrams netmesh would send for the events, with no
//! crypto, from a sender thread to a receiver thread of this process, batched by
//! quinn-udp (GSO + sendmsg out, GRO + recvmmsg in).

use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use quinn_udp::{RecvMeta, Transmit, UdpSocketState, BATCH_SIZE};

use crate::content::Content;
use crate::{cpu, sock, Options, Report, Result};

/// netmesh's packet layout (WIRE.md): header, `len (u32 LE) ‖ event` frames, tag.
const HEADER: usize = 68;
const TAG: usize = 16;
const MAX_PACKET: usize = 8192;
const MAX_PAYLOAD: usize = MAX_PACKET - HEADER - TAG;
const PREFIX: usize = 4;
const MAX_EVENTS_PER_PACKET: usize = MAX_PAYLOAD / PREFIX;
/// The most UDP payload one GSO send may carry over IPv4.
const MAX_GSO_BYTES: usize = 65_507;
/// A received buffer: one GRO'd message holds at most 64 KiB.
const RECV_BUF: usize = 64 << 10;
/// The receiver stops this long after the last datagram once the sender is done.
const IDLE_END: Duration = Duration::from_millis(300);
/// A sender waiting for credit this long assumes its datagrams were lost and goes on.
const STALL: Duration = Duration::from_millis(200);
const SESSION_ID: u64 = 0x6e65_746d_6573_6821;

/// How events are packed: as many whole frames as fit in 8 KiB, as netmesh packs them.
#[derive(Debug, Clone, Copy)]
struct Layout {
    size: usize,
    per_packet: u64,
    events: u64,
    packets: u64,
}

impl Layout {
    fn new(size: usize, events: u64) -> Self {
        let per_packet = (MAX_PAYLOAD / (PREFIX + size)).min(MAX_EVENTS_PER_PACKET) as u64;
        Self {
            size,
            per_packet,
            events,
            packets: events.div_ceil(per_packet),
        }
    }

    fn events_in(&self, packet: u64) -> u64 {
        self.per_packet.min(self.events - packet * self.per_packet)
    }

    fn packet_len(&self, packet: u64) -> usize {
        HEADER + self.payload_len(packet) + TAG
    }

    fn payload_len(&self, packet: u64) -> usize {
        self.events_in(packet) as usize * (PREFIX + self.size)
    }

    /// Writes packet `packet` (stream 0, sequence and nonce counter = `packet`) into `out`;
    /// returns its length. The tag stays zero: no crypto here.
    fn write(&self, content: &Content, packet: u64, out: &mut [u8]) -> usize {
        let len = self.packet_len(packet);
        let out = &mut out[..len];
        out.fill(0);
        out[0..2].copy_from_slice(&0x4E45u16.to_le_bytes());
        out[2] = 1;
        out[12..16].copy_from_slice(&nonce_prefix().to_le_bytes());
        out[16..24].copy_from_slice(&packet.to_le_bytes());
        out[24..32].copy_from_slice(&SESSION_ID.to_le_bytes());
        out[40..48].copy_from_slice(&packet.to_le_bytes());
        let payload_len = u16::try_from(self.payload_len(packet)).unwrap_or(u16::MAX);
        out[64..66].copy_from_slice(&payload_len.to_le_bytes());
        let count = u16::try_from(self.events_in(packet)).unwrap_or(u16::MAX);
        out[66..68].copy_from_slice(&count.to_le_bytes());
        let frames = &mut out[HEADER..len - TAG];
        let first = packet * self.per_packet;
        for (j, frame) in frames.chunks_exact_mut(PREFIX + self.size).enumerate() {
            frame[..PREFIX].copy_from_slice(&(self.size as u32).to_le_bytes());
            content.write(0, first + j as u64, &mut frame[PREFIX..]);
        }
        len
    }
}

fn nonce_prefix() -> u32 {
    (SESSION_ID as u32) ^ ((SESSION_ID >> 32) as u32)
}

/// Credit between the threads: the receiver counts datagrams taken off its socket; the
/// sender keeps at most `window` beyond that in flight.
#[derive(Debug, Default)]
struct Credit {
    received: AtomicU64,
    waiting: AtomicBool,
    sender_done: AtomicBool,
    /// The sender thread, for the receiver to unpark when credit returns.
    sender: OnceLock<Thread>,
}

pub(crate) fn run(options: &Options) -> Result<bool> {
    let layout = Layout::new(options.size, options.events);
    let (rx_socket, rx_granted) = sock::bind(options.buffer)?;
    let (tx_socket, tx_granted) = sock::bind(options.buffer)?;
    let rx_state = UdpSocketState::new((&rx_socket).into())?;
    let tx_state = UdpSocketState::new((&tx_socket).into())?;
    // The sender may block in sendmsg when its buffer is full; the receiver polls.
    tx_socket.set_nonblocking(false)?;
    let destination = rx_socket.local_addr()?;
    let credit = Credit::default();

    println!(
        "udp: {} events of {} B in {} datagrams of up to {} B ({} events each), sender thread -> \
         receiver thread on 127.0.0.1, no crypto, window {} datagrams",
        layout.events,
        layout.size,
        layout.packets,
        layout.packet_len(0),
        layout.per_packet,
        options.window
    );
    println!(
        "receiver socket: {rx_granted}, GRO {} segments; sender socket: {tx_granted}, GSO up to {} segments",
        rx_state.gro_segments(),
        tx_state.max_gso_segments()
    );

    let window = options.window;
    let (sent, received) = thread::scope(|scope| {
        let receiver = scope.spawn(|| receive(&rx_socket, &rx_state, layout, &credit));
        let sent = scope
            .spawn(|| send(&tx_socket, &tx_state, destination, layout, window, &credit))
            .join();
        credit.sender_done.store(true, Ordering::Release);
        (sent, receiver.join())
    });
    let sent = sent.map_err(|_| "sender panicked")??;
    let mut received = received.map_err(|_| "receiver panicked")??;

    println!(
        "sender: {} datagrams in {} send calls ({:.1} per call), {} credit stalls; receiver: {} datagrams \
         in {} recvmmsg calls returning {} messages ({:.1} datagrams per message)",
        layout.packets,
        sent.calls,
        layout.packets as f64 / sent.calls.max(1) as f64,
        sent.stalls,
        received.report.datagrams,
        received.calls,
        received.messages,
        received.report.datagrams as f64 / received.messages.max(1) as f64,
    );
    let report = &mut received.report;
    report.size = options.size;
    report.sender_cpu = sent.cpu;
    report.extra = vec![
        ("rcvbuf", rx_granted.recv.to_string()),
        ("sndbuf", tx_granted.send.to_string()),
        ("gso_segments", tx_state.max_gso_segments().to_string()),
        ("gro_segments", rx_state.gro_segments().to_string()),
        ("send_calls", sent.calls.to_string()),
        ("recv_calls", received.calls.to_string()),
        ("recv_messages", received.messages.to_string()),
        ("datagram_bytes", layout.packet_len(0).to_string()),
        ("events_per_datagram", layout.per_packet.to_string()),
        ("window", window.to_string()),
        ("stalls", sent.stalls.to_string()),
    ];
    report.print(options.json);
    Ok(report.ok())
}

#[derive(Debug)]
struct Sent {
    calls: u64,
    stalls: u64,
    cpu: f64,
}

fn send(
    socket: &UdpSocket,
    state: &UdpSocketState,
    destination: SocketAddr,
    layout: Layout,
    window: u64,
    credit: &Credit,
) -> Result<Sent> {
    let _ = credit.sender.set(thread::current());
    let content = Content::new(layout.size);
    let full = layout.packet_len(0);
    let per_send = (MAX_GSO_BYTES / full).clamp(1, state.max_gso_segments()) as u64;
    let per_send = per_send.min(window);
    let mut buf = vec![0u8; per_send as usize * full];
    let mut sent = Sent {
        calls: 0,
        stalls: 0,
        cpu: 0.0,
    };
    let mut packet = 0;
    while packet < layout.packets {
        // Same-size datagrams go out together; a short last one goes alone.
        let mut n = per_send.min(layout.packets - packet);
        if n > 1 && layout.packet_len(packet + n - 1) != full {
            n -= 1;
        }
        wait_for_credit(credit, packet + n, window, &mut sent.stalls);
        let mut len = 0;
        for p in packet..packet + n {
            len += layout.write(&content, p, &mut buf[len..]);
        }
        let transmit = Transmit {
            destination,
            ecn: None,
            contents: &buf[..len],
            segment_size: (n > 1).then_some(full),
            src_ip: None,
        };
        state.try_send(socket.into(), &transmit)?;
        sent.calls += 1;
        packet += n;
    }
    sent.cpu = cpu::thread();
    Ok(sent)
}

/// Waits until no more than `window` datagrams would be in flight after sending up to
/// `until`, or until the receiver has made no progress for `STALL` (datagrams lost).
fn wait_for_credit(credit: &Credit, until: u64, window: u64, stalls: &mut u64) {
    let mut seen = credit.received.load(Ordering::Acquire);
    let mut since = Instant::now();
    while until > seen + window {
        credit.waiting.store(true, Ordering::Release);
        let now = credit.received.load(Ordering::Acquire);
        if until <= now + window {
            break;
        }
        if now != seen {
            seen = now;
            since = Instant::now();
        } else if since.elapsed() > STALL {
            *stalls += 1;
            break;
        }
        thread::park_timeout(Duration::from_millis(1));
    }
    credit.waiting.store(false, Ordering::Release);
}

#[derive(Debug)]
struct Received {
    report: Report,
    calls: u64,
    messages: u64,
}

fn receive(
    socket: &UdpSocket,
    state: &UdpSocketState,
    layout: Layout,
    credit: &Credit,
) -> Result<Received> {
    let content = Content::new(layout.size);
    let mut storage = vec![0u8; BATCH_SIZE * RECV_BUF];
    let mut metas = vec![RecvMeta::default(); BATCH_SIZE];
    let mut seen = vec![false; usize::try_from(layout.packets)?];
    let mut report = Report {
        mode: "udp",
        expected: layout.events,
        ..Report::default()
    };
    let (mut calls, mut messages, mut distinct, mut events_seen) = (0u64, 0u64, 0u64, 0u64);
    let mut highest = None::<u64>;
    let (mut first, mut last) = (None::<Instant>, Instant::now());
    socket.set_read_timeout(Some(Duration::from_millis(50)))?;
    while distinct < layout.packets {
        let mut slices: Vec<IoSliceMut<'_>> =
            storage.chunks_mut(RECV_BUF).map(IoSliceMut::new).collect();
        let n = match state.recv(socket.into(), &mut slices, &mut metas) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if credit.sender_done.load(Ordering::Acquire) && last.elapsed() > IDLE_END {
                    break;
                }
                wait_readable(socket)?;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        calls += 1;
        let now = Instant::now();
        first.get_or_insert(now);
        last = now;
        let mut datagrams = 0;
        for (meta, buf) in metas[..n].iter().zip(storage.chunks(RECV_BUF)) {
            messages += 1;
            for datagram in buf[..meta.len].chunks(meta.stride.max(1)) {
                datagrams += 1;
                match parse(&layout, &content, datagram) {
                    Some((packet, intact, count)) => {
                        let slot = &mut seen[usize::try_from(packet)?];
                        if *slot {
                            report.duplicates += 1;
                            continue;
                        }
                        *slot = true;
                        distinct += 1;
                        events_seen += count;
                        report.events += intact;
                        report.corrupt += count - intact;
                        if highest.is_some_and(|h| packet < h) {
                            report.out_of_order += 1;
                        }
                        highest = highest.max(Some(packet));
                    }
                    None => report.rejected += 1,
                }
            }
        }
        credit.received.fetch_add(datagrams, Ordering::AcqRel);
        if credit.waiting.load(Ordering::Acquire) {
            if let Some(sender) = credit.sender.get() {
                sender.unpark();
            }
        }
    }
    report.datagrams = distinct;
    report.lost = layout.events - events_seen;
    report.seconds = first.map_or(0.0, |first| (last - first).as_secs_f64());
    report.receiver_cpu = cpu::thread();
    Ok(Received {
        report,
        calls,
        messages,
    })
}

/// Blocks until a datagram is waiting (or a short timeout passes): quinn-udp keeps the
/// socket non-blocking, so the receiver waits in a blocking peek instead of spinning.
fn wait_readable(socket: &UdpSocket) -> io::Result<()> {
    socket.set_nonblocking(false)?;
    let peeked = socket.peek_from(&mut [0u8; 1]);
    socket.set_nonblocking(true)?;
    match peeked {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Checks one datagram: a well-formed header for a packet of this run, then every
/// frame. Returns the packet number, intact events and events it should hold; `None`
/// for a datagram that is not one of ours (counted as rejected).
fn parse(layout: &Layout, content: &Content, datagram: &[u8]) -> Option<(u64, u64, u64)> {
    let field = |range: std::ops::Range<usize>| -> Option<u64> {
        let bytes = datagram.get(range)?;
        let mut le = [0u8; 8];
        le[..bytes.len()].copy_from_slice(bytes);
        Some(u64::from_le_bytes(le))
    };
    if datagram.len() < HEADER + TAG
        || field(0..2)? != 0x4E45
        || datagram[2] != 1
        || field(24..32)? != SESSION_ID
    {
        return None;
    }
    let packet = field(40..48)?;
    let payload_len = usize::try_from(field(64..66)?).ok()?;
    let count = field(66..68)?;
    if packet >= layout.packets
        || count != layout.events_in(packet)
        || datagram.len() != HEADER + payload_len + TAG
    {
        return None;
    }
    let mut frames = &datagram[HEADER..HEADER + payload_len];
    let first = packet * layout.per_packet;
    let mut intact = 0;
    for j in 0..count {
        let Some((prefix, rest)) = frames.split_first_chunk::<PREFIX>() else {
            break;
        };
        let len = u32::from_le_bytes(*prefix) as usize;
        let Some((event, rest)) = rest.split_at_checked(len) else {
            break;
        };
        intact += u64::from(content.check(0, first + j, event));
        frames = rest;
    }
    Some((packet, intact, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packets are packed as netmesh packs them and the receiver's check accepts each
    /// one and notices a flipped byte.
    #[test]
    fn packets_round_trip() {
        for (size, per_packet, full_len) in [(64, 119, 8176), (1024, 7, 7280), (16, 405, 8184)] {
            let layout = Layout::new(size, 1000);
            assert_eq!(layout.per_packet, per_packet);
            assert_eq!(layout.packet_len(0), full_len);
            assert!(full_len <= MAX_PACKET);
            let content = Content::new(size);
            let mut buf = vec![0; MAX_PACKET];
            for packet in [0, layout.packets - 1] {
                let len = layout.write(&content, packet, &mut buf);
                let count = layout.events_in(packet);
                assert_eq!(
                    parse(&layout, &content, &buf[..len]),
                    Some((packet, count, count))
                );
                buf[len - TAG - 1] ^= 1;
                assert_eq!(
                    parse(&layout, &content, &buf[..len]),
                    Some((packet, count - 1, count))
                );
                assert_eq!(parse(&layout, &content, &buf[..len - 1]), None);
            }
        }
    }
}
