//! The commands that move events: `listen`, `send` and `bench`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::args::{BenchArgs, ListenArgs, MeshIds, SendArgs, Shape};
use crate::events::{self, Counts, PeerCheck};
use crate::link::{Handler, Incoming, Node, NodeConfig, PeerHandle, PeerKey};
use crate::report::{Report, Span};
use crate::{say, Failure};

/// How often loops wake to update progress and check their deadlines.
const TICK: Duration = Duration::from_millis(50);

/// How long a finished listener keeps answering (ACKs, NACKs) before it exits, so that
/// a reliable sender hears that its last packets arrived.
const LINGER: Duration = Duration::from_millis(500);

/// How long `send` waits for replies to go quiet once its own events are delivered.
const REPLY_QUIET: Duration = Duration::from_millis(400);

/// Events per send call: about 512 KiB of them (at most 8192), so that each call fills
/// many packets and the endpoint sends them in GSO batches.
fn batch_len(size: usize) -> usize {
    ((512 << 10) / size).clamp(64, 8192)
}

/// Progress on a terminal; nothing when stdout is not one.
fn progress(total: Option<u64>, what: &str) -> ProgressBar {
    let bar = match total {
        Some(total) => ProgressBar::with_draw_target(Some(total), hidden_unless_terminal()),
        None => ProgressBar::with_draw_target(None, hidden_unless_terminal()),
    };
    let template = if total.is_some() {
        "{prefix} [{bar:30}] {human_pos}/{human_len} events ({per_sec}, {eta})"
    } else {
        "{prefix} {human_pos} events ({per_sec})"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(what.to_owned());
    bar
}

fn hidden_unless_terminal() -> ProgressDrawTarget {
    if std::io::stdout().is_terminal() {
        ProgressDrawTarget::stdout()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// Sends events `index ≡ part (mod parts)` of `total`, with `shape`, to `peer`: the
/// share of one sender thread (`parts` threads in all; stream `s` belongs to the thread
/// `s mod parts`, so each stream's events leave in order).
fn send_share(
    peer: &PeerHandle,
    (first, total): (u64, u64),
    shape: Shape,
    part: u64,
    parts: u64,
    (stop, pace): (&AtomicBool, Option<f64>),
) -> Result<Span, Failure> {
    let mut span = Span::default();
    // Paced: calls of about 2 packets, each after the time its bytes take at the rate.
    let batch = match pace {
        Some(_) => ((2 * netmesh_wire::MAX_PAYLOAD_SIZE) / (shape.size + 4)).max(1),
        None => batch_len(shape.size),
    };
    let started = Instant::now();
    let mut bytes_sent = 0u64;
    let streams: Vec<u64> = (0..shape.streams).filter(|s| s % parts == part).collect();
    // Per stream, the next index it sends: stream s sends s, s + K, s + 2K, ... from the
    // first at or after `first` (those before were sent already).
    let mut next: Vec<u64> = streams
        .iter()
        .map(|&s| s + shape.streams * first.saturating_sub(s).div_ceil(shape.streams))
        .collect();
    let mut remaining = streams.len();
    while remaining > 0 {
        remaining = 0;
        for (slot, &stream) in streams.iter().enumerate() {
            if next[slot] >= total {
                continue;
            }
            if stop.load(Ordering::Relaxed) {
                return Ok(span);
            }
            let count = ((total - next[slot]).div_ceil(shape.streams)).min(batch as u64);
            let count = usize::try_from(count).unwrap_or(batch);
            // Each event written where it is sent from: inside its packet.
            let (first, step) = (next[slot], shape.streams);
            peer.send_with(stream, (count, shape.size), shape.reliable, |i, event| {
                events::write_event(event, stream, first + i as u64 * step);
            })?;
            next[slot] += count as u64 * step;
            span.mark();
            if let Some(bytes_per_s) = pace {
                bytes_sent += (count * shape.size) as u64;
                #[allow(clippy::cast_precision_loss)] // a pace, not a count
                let due = Duration::from_secs_f64(bytes_sent as f64 / bytes_per_s);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    thread::sleep(wait);
                }
            }
            if next[slot] < total {
                remaining += 1;
            }
        }
    }
    Ok(span)
}

/// What a sending thread ends with: when its events left, and whether sending settled.
type SenderOutcome = Result<(Span, bool), Failure>;

/// Sends `total` events with `shape` from `threads` threads on a thread of its own, then
/// waits up to `timeout` for sending to settle.
fn spawn_sender(
    peer: &PeerHandle,
    total: u64,
    shape: Shape,
    threads: u64,
    stop: &Arc<AtomicBool>,
    timeout: Duration,
) -> thread::JoinHandle<SenderOutcome> {
    let (peer, stop) = (peer.clone(), Arc::clone(stop));
    thread::spawn(move || {
        let span = send_all(&peer, total, shape, threads, &stop)?;
        let settled = peer.wait_settled(&stop, timeout);
        Ok((span, settled))
    })
}

/// The sending thread's outcome; its panic as an error.
fn join_sender(sender: thread::JoinHandle<SenderOutcome>) -> SenderOutcome {
    sender
        .join()
        .unwrap_or_else(|_| Err(Failure::Error("the sender thread panicked".into())))
}

/// Sends `total` events with `shape` from `threads` threads; returns when all left.
fn send_all(
    peer: &PeerHandle,
    total: u64,
    shape: Shape,
    threads: u64,
    stop: &Arc<AtomicBool>,
) -> Result<Span, Failure> {
    let mut span = Span::default();
    // Event 0 alone first, and a moment for the peer to answer it: a net-mesh MeshNode
    // grants stream windows only for packets it accepted, and its 256 KB socket buffer
    // overflows if the first burst is not held to them. A netmesh peer answers at once
    // (credit, marker); a NetAdapter never does, and is known after the detection grace.
    let first = u64::from(total > 0);
    if total > 0 {
        let mut event = BytesMut::with_capacity(shape.size);
        events::append_event(&mut event, 0, 0, shape.size);
        span.mark();
        peer.send(0, &[event.freeze()], shape.reliable)?;
        peer.wait_answer(Duration::from_secs(1));
    }
    let threads = threads.clamp(1, shape.streams);
    // A peer that answered nothing and is known to be net-mesh is a NetAdapter: no
    // grants, no credit, a default-sized socket buffer. Pace towards it.
    let pace = (shape.pace > 0.0 && peer.is_net_mesh() && !peer.has_answered())
        .then(|| shape.pace * 1e6 / threads as f64);
    let handles: Vec<_> = (0..threads)
        .map(|part| {
            let (peer, stop) = (peer.clone(), stop.clone());
            thread::Builder::new()
                .name(format!("sender-{part}"))
                .spawn(move || {
                    send_share(&peer, (first, total), shape, part, threads, (&stop, pace))
                })
        })
        .collect::<Result<_, _>>()?;
    let mut failure = None;
    for handle in handles {
        match handle.join() {
            Ok(Ok(share)) => span.merge(&share),
            Ok(Err(error)) => failure = Some(error),
            Err(_) => failure = Some(Failure::Error("a sender thread panicked".into())),
        }
    }
    failure.map_or(Ok(span), Err)
}

/// What a receiving side learns about each peer's events.
#[derive(Debug, Default)]
struct Receiver {
    peers: HashMap<PeerKey, PeerState>,
    span: Span,
    /// Reliable sequences the senders gave up on (their SKIPs).
    lost_reliable: u64,
}

#[derive(Debug, Default)]
struct PeerState {
    check: PeerCheck,
    reliable: bool,
}

impl Receiver {
    /// Checks one delivery's events; returns how many were new.
    fn deliver(
        &mut self,
        peer: PeerKey,
        reliable: bool,
        events: impl Iterator<Item = impl AsRef<[u8]>>,
    ) -> u64 {
        let state = self.peers.entry(peer).or_default();
        state.reliable |= reliable;
        let fresh = state.check.check_all(events, reliable);
        if fresh > 0 {
            self.span.mark();
        }
        fresh
    }

    /// Takes what a node reported; returns how many new events it brought.
    fn take(&mut self, incoming: Incoming) -> u64 {
        match incoming {
            Incoming::Delivery {
                peer,
                reliable,
                events,
            } => self.deliver(peer, reliable, events.packet().event_slices()),
            Incoming::Lost { count, .. } => {
                self.lost_reliable += count;
                0
            }
            _ => 0,
        }
    }

    fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for state in self.peers.values() {
            counts.add(&state.check.counts());
        }
        counts
    }

    /// Lost events: gaps per peer, then what `expect` still misses beyond them.
    /// The second value says whether any loss breaks a promise of delivery.
    fn lost(&self, expect: Option<u64>) -> (u64, bool) {
        let mut lost = 0;
        let mut promised = false;
        for state in self.peers.values() {
            let gaps = state.check.lost();
            lost += gaps;
            promised |= gaps > 0 && state.reliable;
        }
        let events = self.counts().events;
        if let Some(expect) = expect {
            let missing = expect.saturating_sub(events + lost);
            lost += missing;
            // Nothing from a sender that promised delivery, or nothing at all: a failure.
            let reliable_or_unknown =
                self.peers.is_empty() || self.peers.values().any(|p| p.reliable);
            promised |= missing > 0 && reliable_or_unknown;
        }
        (
            lost + self.lost_reliable,
            promised || self.lost_reliable > 0,
        )
    }

    /// The report of what arrived; `ok` follows SESSION.md's exit rule.
    fn report(&self, expect: Option<u64>) -> Report {
        let counts = self.counts();
        let (lost, promised_lost) = self.lost(expect);
        let mut report = Report {
            events: counts.events,
            bytes: counts.bytes,
            lost,
            duplicates: counts.duplicates,
            out_of_order: counts.out_of_order,
            corrupt: counts.corrupt,
            ..Report::default()
        };
        report.set_span(self.span.duration());
        report.ok = !promised_lost
            && counts.duplicates == 0
            && counts.out_of_order == 0
            && counts.corrupt == 0;
        report.extra("reordered_fire_and_forget", counts.reordered);
        report.extra("late", counts.late);
        report.extra("peers", self.peers.len() as u64);
        report
    }
}

/// A [`Receiver`] fed on a node's receive thread (see [`Checked::handler`]), and what
/// the command's thread reads from it while it waits.
#[derive(Debug, Default)]
struct Checked {
    receiver: Mutex<Receiver>,
    /// Events delivered so far: the waiting thread's progress, read without the lock.
    fresh: AtomicU64,
}

/// What a node's receive thread tells the command's thread.
enum Signal {
    /// A peer's handshake completed.
    Connected(PeerHandle),
    /// The expected number of events arrived.
    Done,
}

impl Checked {
    /// A handler that checks every delivery where it arrives, counts lost reliable
    /// sequences, and signals [`Signal::Done`] once `expect` events arrived (and, with
    /// `connected`, every peer whose handshake completed).
    fn handler(
        self: &Arc<Self>,
        expect: Option<u64>,
        connected: bool,
    ) -> (Handler, mpsc::Receiver<Signal>) {
        let (signal, signals) = mpsc::channel();
        let checked = Arc::clone(self);
        let handler = move |incoming| match incoming {
            Incoming::Connected(peer) => {
                if connected {
                    let _ = signal.send(Signal::Connected(peer));
                }
            }
            incoming => {
                // Locked once per packet.
                let fresh = checked.receiver().take(incoming);
                if fresh > 0 {
                    let before = checked.fresh.fetch_add(fresh, Ordering::Relaxed);
                    if expect.is_some_and(|expect| before < expect && before + fresh >= expect) {
                        // The command's thread may be gone already: nothing to tell then.
                        let _ = signal.send(Signal::Done);
                    }
                }
            }
        };
        (Arc::new(handler), signals)
    }

    fn receiver(&self) -> MutexGuard<'_, Receiver> {
        // A panic while checking would leave whole counts behind: report them all the same.
        self.receiver.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fresh(&self) -> u64 {
        self.fresh.load(Ordering::Relaxed)
    }
}

/// Checks what the node reports within [`TICK`]; true when it brought new events.
fn take_reply(node: &Node, replies: &mut Receiver) -> bool {
    node.next(TICK)
        .is_some_and(|incoming| replies.take(incoming) > 0)
}

/// Waits up to [`TICK`] for a signal.
fn wait_signal(signals: &mpsc::Receiver<Signal>) -> Option<Signal> {
    match signals.recv_timeout(TICK) {
        Ok(signal) => Some(signal),
        Err(RecvTimeoutError::Timeout) => None,
        Err(RecvTimeoutError::Disconnected) => {
            // The node is gone (not while a command runs): wait all the same.
            thread::sleep(TICK);
            None
        }
    }
}

fn node_config(mesh: MeshIds, initiator: bool) -> Option<(u64, u64)> {
    // The prologue names (initiator, responder); node = this side, peer = the other.
    match (mesh.node_id, mesh.peer_id) {
        (Some(node), Some(peer)) if initiator => Some((node, peer)),
        (Some(node), Some(peer)) => Some((peer, node)),
        _ => None,
    }
}

pub(crate) fn listen(args: &ListenArgs) -> Result<bool, Failure> {
    let keypair = crate::load_keypair(&args.key)?;
    let psk = crate::parse_psk(&args.psk)?;
    let checked = Arc::new(Checked::default());
    let (handler, signals) = checked.handler(args.expect, args.reply > 0);
    let node = Node::bind(NodeConfig {
        bind: args.bind,
        keypair: Some(keypair),
        psk,
        mesh: node_config(args.mesh, false),
        handler: Some(handler),
    })?;
    say(&format!("listening on {}", node.local_addr()))?;

    let timeout = args
        .timeout
        .map(Duration::from_secs_f64)
        .or(args.expect.map(|_| Duration::from_secs(10)));
    let bar = progress(args.expect, "listen");
    let stop = Arc::new(AtomicBool::new(false));
    let mut repliers = Vec::new();
    let mut last_progress = Instant::now();
    let mut seen = 0;
    let mut done_at: Option<Instant> = None;
    let mut timed_out = false;
    loop {
        let now = Instant::now();
        if let Some(done) = done_at {
            let replying = repliers
                .iter()
                .any(|r: &thread::JoinHandle<_>| !r.is_finished());
            if now >= done + LINGER && !replying {
                break;
            }
            if let Some(timeout) = timeout {
                if now >= done + timeout {
                    break;
                }
            }
        } else if let Some(timeout) = timeout {
            if now >= last_progress + timeout {
                timed_out = true;
                break;
            }
        }
        // Deliveries are checked on the node's receive thread; this one waits, replies
        // and keeps time.
        if let Some(Signal::Connected(peer)) = wait_signal(&signals) {
            let (shape, total, stop) = (args.shape, args.reply, stop.clone());
            repliers.push(thread::spawn(move || {
                let sent = send_all(&peer, total, shape, 1, &stop);
                if sent.is_ok() {
                    peer.wait_settled(&stop, Duration::from_secs(10));
                }
                sent
            }));
        }
        let fresh = checked.fresh();
        if fresh > seen {
            seen = fresh;
            last_progress = Instant::now();
            bar.set_position(fresh);
        }
        if done_at.is_none() && args.expect.is_some_and(|expect| fresh >= expect) {
            done_at = Some(Instant::now());
        }
    }
    stop.store(true, Ordering::Relaxed);
    bar.finish_and_clear();
    let mut report = checked.receiver().report(args.expect);
    node.add_stats(&mut report);
    report.extra("timed_out", timed_out);
    let mut ok = report.ok;
    for replier in repliers {
        match replier.join() {
            Ok(Ok(_)) => {}
            Ok(Err(Failure::Error(error) | Failure::Usage(error))) => {
                eprintln!("netmesh: reply failed: {error}");
                ok = false;
            }
            Ok(Err(Failure::StdoutClosed)) | Err(_) => ok = false,
        }
    }
    report.ok = ok;
    finish(&report, args.json, "received")
}

pub(crate) fn send(args: &SendArgs) -> Result<bool, Failure> {
    let peer_key = crate::parse_public_key(&args.peer_key)?;
    let psk = crate::parse_psk(&args.psk)?;
    let bind = args.bind.unwrap_or_else(|| match args.to {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    });
    let node = Node::bind(NodeConfig {
        bind,
        keypair: None,
        psk,
        mesh: node_config(args.mesh, true),
        handler: None,
    })?;
    let timeout = Duration::from_secs_f64(args.timeout);
    let peer = node.connect(args.to, peer_key, timeout)?;

    let stop = Arc::new(AtomicBool::new(false));
    let bar = progress(Some(args.events), "send");
    let threads = thread::available_parallelism()
        .map_or(1, |n| n.get() as u64)
        .min(2);
    let sender = spawn_sender(&peer, args.events, args.shape, threads, &stop, timeout);
    // Meanwhile: replies from the listener, checked like any events.
    let mut replies = Receiver::default();
    let mut last_reply = Instant::now();
    while !sender.is_finished() {
        bar.set_position(peer.events_sent());
        if take_reply(&node, &mut replies) {
            last_reply = Instant::now();
        }
    }
    let at = Instant::now();
    let (span, settled) = join_sender(sender)?;
    // Replies may still be on their way: wait until they go quiet.
    loop {
        let now = Instant::now();
        if now >= at.max(last_reply) + REPLY_QUIET {
            break;
        }
        if take_reply(&node, &mut replies) {
            last_reply = Instant::now();
        }
    }
    stop.store(true, Ordering::Relaxed);
    bar.finish_and_clear();

    let mut report = Report {
        events: peer.events_sent(),
        bytes: peer.events_sent() * args.shape.size as u64,
        ..Report::default()
    };
    report.set_span(span.duration());
    let lost = peer.packets_lost();
    report.lost = lost;
    let reply_report = replies.report(None);
    report.duplicates = reply_report.duplicates;
    report.out_of_order = reply_report.out_of_order;
    report.corrupt = reply_report.corrupt;
    report.lost += reply_report.lost;
    report.extra("replies", reply_report.events);
    report.extra("settled", settled);
    node.add_stats(&mut report);
    // A net-mesh node acknowledges nothing: its delivery cannot be confirmed.
    let net_mesh = peer.is_net_mesh();
    report.extra("peer_net_mesh", net_mesh);
    report.extra(
        "delivery_confirmed",
        args.shape.reliable && settled && !net_mesh,
    );
    report.ok = reply_report.ok && lost == 0 && (settled || !args.shape.reliable || net_mesh);
    if !settled && args.shape.reliable && !net_mesh {
        eprintln!(
            "netmesh: error: delivery of reliable events not confirmed within {:?}",
            timeout
        );
    }
    finish(&report, args.json, "sent")
}

pub(crate) fn bench(args: &BenchArgs) -> Result<bool, Failure> {
    let keypair = netmesh_session::StaticKeypair::generate()
        .map_err(|error| Failure::Error(format!("cannot generate a key: {error}")))?;
    let public = keypair.public_key();
    let psk = netmesh_session::Psk::new(rand_psk()?);
    let localhost = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let checked = Arc::new(Checked::default());
    let (handler, signals) = checked.handler(Some(args.events), false);
    let listener = Node::bind(NodeConfig {
        bind: localhost,
        keypair: Some(keypair),
        psk: psk.clone(),
        mesh: None,
        handler: Some(handler),
    })?;
    // The sending side reports nothing bench looks at: dropped where it arises, so
    // that no queue of it can fill and hold up the sender's receive thread.
    let ignore: Handler = Arc::new(|_| {});
    let sender = Node::bind(NodeConfig {
        bind: localhost,
        keypair: None,
        psk,
        mesh: None,
        handler: Some(ignore),
    })?;
    let timeout = Duration::from_secs_f64(args.timeout);
    let peer = sender.connect(listener.local_addr(), public, timeout)?;
    let shape = Shape {
        size: args.size,
        streams: args.senders,
        reliable: args.reliable,
        pace: 0.0,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let sending = spawn_sender(&peer, args.events, shape, args.senders, &stop, timeout);
    let bar = progress(Some(args.events), "bench");
    // Deliveries are checked on the listener's receive thread; this one only waits.
    let mut last_progress = Instant::now();
    let mut seen = 0;
    let mut timed_out = false;
    while checked.fresh() < args.events {
        if last_progress.elapsed() > timeout {
            timed_out = true;
            break;
        }
        let _ = wait_signal(&signals);
        let fresh = checked.fresh();
        if fresh > seen {
            seen = fresh;
            last_progress = Instant::now();
            bar.set_position(fresh);
        }
    }
    // Let the last ACKs reach the sender, then stop it if it still waits.
    let linger_until = Instant::now() + LINGER;
    while !sending.is_finished() && Instant::now() < linger_until {
        thread::sleep(TICK / 5);
    }
    stop.store(true, Ordering::Relaxed);
    bar.finish_and_clear();
    let (_, settled) = join_sender(sending)?;
    let mut report = checked.receiver().report(Some(args.events));
    listener.add_stats(&mut report);
    let mut sent = Report::default();
    sender.add_stats(&mut sent);
    report.extra(
        "sender",
        serde_json::to_value(&sent.extra).unwrap_or_default(),
    );
    report.extra("size", args.size as u64);
    report.extra("senders", args.senders);
    report.extra("reliable", args.reliable);
    report.extra("settled", settled);
    report.extra("timed_out", timed_out);
    report.rejected += sent.rejected;
    finish(&report, args.json, "bench: received")
}

fn rand_psk() -> Result<[u8; 32], Failure> {
    // A throwaway PSK for one in-process run: the secret half of a fresh key will do.
    let keypair = netmesh_session::StaticKeypair::generate()
        .map_err(|error| Failure::Error(format!("cannot generate a key: {error}")))?;
    Ok(*keypair.secret_bytes())
}

fn finish(report: &Report, json: bool, verb: &str) -> Result<bool, Failure> {
    if json {
        say(&report.json())?;
    } else {
        say(&report.human(verb))?;
    }
    Ok(report.ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use netmesh_udp::PeerId;

    fn events(stream: u64, indices: impl IntoIterator<Item = u64>) -> Vec<Bytes> {
        indices
            .into_iter()
            .map(|index| {
                let mut event = vec![0; 32];
                events::write_event(&mut event, stream, index);
                Bytes::from(event)
            })
            .collect()
    }

    #[test]
    fn a_clean_run_from_two_peers_is_ok() {
        let mut receiver = Receiver::default();
        for peer in [PeerId(1), PeerId(2)] {
            assert_eq!(
                receiver.deliver(peer, true, events(0, 0..100).into_iter()),
                100
            );
        }
        let report = receiver.report(Some(200));
        assert_eq!((report.events, report.lost, report.duplicates), (200, 0, 0));
        assert!(report.ok);
    }

    #[test]
    fn losses_fail_only_where_delivery_was_promised() {
        let mut loose = Receiver::default();
        loose.deliver(
            PeerId(1),
            false,
            events(0, (0..100).filter(|i| i % 10 != 3)).into_iter(),
        );
        let report = loose.report(Some(100));
        assert_eq!(report.lost, 10);
        assert!(report.ok, "fire-and-forget promises no delivery");

        let mut reliable = Receiver::default();
        reliable.deliver(PeerId(1), true, events(0, 0..90).into_iter());
        let report = reliable.report(Some(100));
        assert_eq!(report.lost, 10, "what --expect misses counts as lost");
        assert!(!report.ok);

        let nothing = Receiver::default().report(Some(5));
        assert_eq!((nothing.events, nothing.lost), (0, 5));
        assert!(!nothing.ok, "nothing arrived of what was expected");
    }

    #[test]
    fn duplicates_reordering_and_corruption_fail() {
        let mut receiver = Receiver::default();
        receiver.deliver(PeerId(1), false, events(0, [0, 1, 1]).into_iter());
        assert_eq!(receiver.report(None).duplicates, 1);
        assert!(!receiver.report(None).ok);

        let mut receiver = Receiver::default();
        receiver.deliver(PeerId(1), true, events(0, [0, 2, 1]).into_iter());
        assert_eq!(receiver.report(None).out_of_order, 1);
        assert!(!receiver.report(None).ok);

        let mut receiver = Receiver::default();
        let mut bad = events(0, [0]);
        bad.push(Bytes::from_static(b"not an event of the tool"));
        receiver.deliver(PeerId(1), false, bad.into_iter());
        assert_eq!(receiver.report(None).corrupt, 1);
        assert!(!receiver.report(None).ok);

        // Reordering on a fire-and-forget stream is allowed (and reported apart).
        let mut receiver = Receiver::default();
        receiver.deliver(PeerId(1), false, events(0, [1, 0]).into_iter());
        let report = receiver.report(None);
        assert_eq!(report.out_of_order, 0);
        assert_eq!(report.extra["reordered_fire_and_forget"], 1);
        assert!(report.ok);
    }

    #[test]
    fn the_handler_counts_reliable_losses_and_signals_only_deliveries() {
        let checked = Arc::new(Checked::default());
        let (handler, signals) = checked.handler(Some(1), true);
        handler(Incoming::Lost { count: 3 });
        handler(Incoming::Other);
        assert!(signals.try_recv().is_err(), "no events arrived");
        assert_eq!(checked.fresh(), 0);
        let report = checked.receiver().report(Some(1));
        assert_eq!(report.lost, 4, "3 given up, 1 expected and missing");
        assert!(!report.ok);
    }

    #[test]
    fn deliveries_are_checked_on_the_receive_thread_and_done_is_signalled_once() {
        let keypair = netmesh_session::StaticKeypair::generate().unwrap();
        let public = keypair.public_key();
        let psk = netmesh_session::Psk::new([5; 32]);
        let localhost = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let total = 5000;
        let checked = Arc::new(Checked::default());
        let (handler, signals) = checked.handler(Some(total), false);
        let listener = Node::bind(NodeConfig {
            bind: localhost,
            keypair: Some(keypair),
            psk: psk.clone(),
            mesh: None,
            handler: Some(handler),
        })
        .unwrap();
        let sender = Node::bind(NodeConfig {
            bind: localhost,
            keypair: None,
            psk,
            mesh: None,
            handler: None,
        })
        .unwrap();
        let peer = sender
            .connect(listener.local_addr(), public, Duration::from_secs(5))
            .unwrap();
        let shape = Shape {
            size: 100,
            streams: 3,
            reliable: true,
            pace: 0.0,
        };
        let stop = Arc::new(AtomicBool::new(false));
        send_all(&peer, total, shape, 2, &stop).unwrap();
        assert!(
            matches!(
                signals.recv_timeout(Duration::from_secs(10)),
                Ok(Signal::Done)
            ),
            "all {total} events arrive within 10 s"
        );
        assert_eq!(checked.fresh(), total);
        assert!(listener.next(Duration::ZERO).is_none(), "nothing is queued");
        // Events sent again after Done are checked (as duplicates), but signal nothing.
        peer.send(0, &events(0, [0]), false).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while checked.receiver().counts().duplicates == 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        assert!(signals.try_recv().is_err(), "Done is signalled once");
        let report = checked.receiver().report(Some(total));
        assert_eq!(
            (
                report.events,
                report.lost,
                report.duplicates,
                report.corrupt
            ),
            (total, 0, 1, 0)
        );
        assert_eq!(report.out_of_order, 0);
        assert_eq!(report.bytes, total * 100);
        assert!(!report.ok, "the duplicate fails the run");
    }
}
