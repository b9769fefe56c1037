//! The main job of netmesh: events through the whole stack over real UDP on 127.0.0.1.
//!
//! ```text
//! cargo run --release --example loopback
//! cargo run --release --example loopback -- --events N --event-size BYTES --senders N
//! ```
//!
//! Sender threads (one stream each) share one thread-local pool, batch-build packets from
//! runs of events and send them from their own sockets to one receiver socket. The
//! receiver opens every datagram, checks every event's content and per-stream order, and
//! returns credits so that no more than `--window` packets are ever in flight: loopback
//! UDP drops what overflows the receive buffer, so without flow control fast senders
//! lose packets. At the end it prints what arrived, what was lost, corrupted or
//! rejected, and the rates; the exit status is 1 if anything went wrong, 2 for bad
//! options.
//!
//! Credit has two parts, both returned by the receiver. Slots bound the packets in
//! flight: senders share a slot counter, take one slot per packet and send slot `s` once
//! the receiver has opened more than `s - window` packets. A replay guard keeps every
//! packet within the opener's 1024-counter replay window even when a sender is
//! descheduled between building and sending: the receiver returns the watermark below
//! which it has received every nonce counter, and a packet waits until its counter is
//! less than 512 above it (the other senders then stall instead of pushing its packet
//! out of the window). Each sender thread takes its nonce counters in leases of 16 (see
//! `TxCounter`), so counters are not a count of packets; the few a sender leaves unused
//! when it finishes are a gap the receiver's watermark skips after `GAP_TIMEOUT`.

use std::collections::hash_map::RandomState;
use std::collections::BTreeSet;
use std::error::Error;
use std::fmt;
use std::hash::BuildHasher;
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use netmesh::bytes::BytesMut;
use netmesh::prelude::*;
use netmesh::{MAX_EVENT_SIZE, MAX_PACKET_SIZE, REPLAY_WINDOW_SIZE};

/// Default number of events: about five seconds in release on a 2-core machine, which
/// moves about 6 million 64-byte events a second.
const DEFAULT_EVENTS: u64 = 30_000_000;
const DEFAULT_EVENT_SIZE: usize = 64;
/// Two senders, so that the shared pool and window are shared: on two cores this runs
/// as fast as one sender does (the receiver sets the pace).
const DEFAULT_SENDERS: usize = 2;
/// The default Linux UDP receive buffer (208 KiB) is charged about 19 KiB of kernel
/// memory per queued 8 KiB datagram, so it holds 10 full-size packets (11 lose some on
/// this machine); 8 leaves room and still runs at full speed.
const DEFAULT_WINDOW: u64 = 8;
const MAX_WINDOW: u64 = 1000;
/// How far above the receiver's watermark a packet's nonce counter may be when it is
/// sent: half the opener's replay window, the other half being margin for reordering.
const REPLAY_GUARD: u64 = REPLAY_WINDOW_SIZE / 2;
const MAX_EVENTS: u64 = 1_000_000_000_000;
const MAX_SENDERS: usize = 64;

/// Packets' worth of events generated at once and handed to `build_batch`.
const RUN_PACKETS: usize = 16;
/// How long a blocking receive waits before the loop looks at its timers.
const POLL: Duration = Duration::from_millis(20);
/// The receiver gives up on a missing counter (a lost packet) after this long, so the
/// senders are not stalled by it for ever.
const GAP_TIMEOUT: Duration = Duration::from_millis(100);
/// A sender that hears no new credit for this long assumes its packets in flight were
/// lost and grants itself one packet (the receiver re-sends its credit every `POLL` when
/// idle, so silence means loss, not a lost credit datagram).
const RESYNC_AFTER: Duration = Duration::from_millis(250);
/// A sender gives up after this many re-syncs in a row without any credit: the
/// receiver is gone.
const MAX_RESYNCS: u32 = 8;
/// Once every sender has said it is done, the receiver waits this long for stragglers.
const FIN_GRACE: Duration = Duration::from_millis(200);
/// The receiver stops when nothing at all has arrived for this long.
const IDLE_LIMIT: Duration = Duration::from_secs(2);

fn main() -> ExitCode {
    let config = match Config::parse(std::env::args().skip(1)) {
        Ok(Some(config)) => config,
        Ok(None) => {
            print!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("loopback: {message}\n\n{}", usage());
            return ExitCode::from(2);
        }
    };
    println!(
        "loopback: {} events of {} B from {} sender(s) to 1 receiver on 127.0.0.1, a window of \
         {} packet(s)",
        config.events, config.event_size, config.senders, config.window
    );
    match run(&config, true) {
        Ok(summary) => {
            print!("{summary}");
            if summary.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(error) => {
            eprintln!("loopback: {error}");
            ExitCode::from(1)
        }
    }
}

// ---------------------------------------------------------------------------------------
// Options

/// What to run, from the command line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    pub(crate) events: u64,
    pub(crate) event_size: usize,
    pub(crate) senders: usize,
    pub(crate) window: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            events: DEFAULT_EVENTS,
            event_size: DEFAULT_EVENT_SIZE,
            senders: DEFAULT_SENDERS,
            window: DEFAULT_WINDOW,
        }
    }
}

fn usage() -> String {
    format!(
        "\
Usage: loopback [OPTIONS]

Sends events in netmesh packets over UDP on 127.0.0.1 and checks every one.

Options:
  --events N          events in total, over all senders [default: {DEFAULT_EVENTS}]
  --event-size BYTES  bytes per event, 0..={MAX_EVENT_SIZE} [default: {DEFAULT_EVENT_SIZE}]
  --senders N         sender threads, a stream each, 1..={MAX_SENDERS} [default: {DEFAULT_SENDERS}]
  --window PACKETS    packets in flight, 1..={MAX_WINDOW} [default: {DEFAULT_WINDOW}]; Linux's
                      default receive buffer holds about 10 full-size packets: beyond
                      that packets are dropped, counted as lost, and each loss stalls
                      the senders for a moment
  -h, --help          print this help

Options take their value as the next argument or after '=' (--events=1000); digits may
be grouped with '_' (1_000_000).

Exit status: 0 when every event arrived intact and in order; 1 when any was lost,
corrupted or out of order, a datagram was rejected, or the run failed; 2 for bad options.
"
    )
}

impl Config {
    /// Parses `--name value` and `--name=value` options; `Ok(None)` means `--help`.
    pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Self>, String> {
        let mut config = Self::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) if name.starts_with("--") => (name.to_owned(), Some(value)),
                _ => (arg.clone(), None),
            };
            if name == "-h" || name == "--help" {
                return Ok(None);
            }
            if !matches!(
                name.as_str(),
                "--events" | "--event-size" | "--senders" | "--window"
            ) {
                return Err(format!("unknown option '{arg}'"));
            }
            let value = match inline {
                Some(value) => value.to_owned(),
                None => args
                    .next()
                    .ok_or_else(|| format!("option '{name}' needs a value"))?,
            };
            match name.as_str() {
                "--events" => config.events = number(&name, &value, 1, MAX_EVENTS)?,
                "--event-size" => config.event_size = number(&name, &value, 0, MAX_EVENT_SIZE)?,
                "--senders" => config.senders = number(&name, &value, 1, MAX_SENDERS)?,
                _ => config.window = number(&name, &value, 1, MAX_WINDOW)?,
            }
        }
        Ok(Some(config))
    }
}

/// Parses `value` as a number in `min..=max`.
fn number<T>(name: &str, value: &str, min: T, max: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + fmt::Display,
{
    let parsed: T = value
        .replace('_', "")
        .parse()
        .map_err(|_| format!("option '{name}' needs a whole number, not '{value}'"))?;
    if parsed < min || parsed > max {
        return Err(format!(
            "option '{name}' must be between {min} and {max}, not {value}"
        ));
    }
    Ok(parsed)
}

// ---------------------------------------------------------------------------------------
// The run

/// Anything that stops the run before it can count: socket errors, a failed build.
type RunError = Box<dyn Error + Send + Sync>;

/// Runs senders and receiver to completion and returns what the receiver counted.
pub(crate) fn run(config: &Config, progress: bool) -> Result<Summary, RunError> {
    let (key, session_id) = demo_key_and_session();
    let localhost = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));

    let data = UdpSocket::bind(localhost)?;
    let data_addr = data.local_addr()?;
    // One control socket per sender, where the receiver sends credits; connected to the
    // receiver so that nothing else can grant credit.
    let controls = (0..config.senders)
        .map(|_| {
            let control = UdpSocket::bind(localhost)?;
            control.connect(data_addr)?;
            control.set_read_timeout(Some(POLL))?;
            Ok(control)
        })
        .collect::<io::Result<Vec<_>>>()?;
    let control_addrs = controls
        .iter()
        .map(UdpSocket::local_addr)
        .collect::<io::Result<Vec<_>>>()?;

    let per_stream = split_events(config.events, config.senders);
    let pool = shared_local_pool(
        config.senders * ThreadLocalPool::DEFAULT_LOCAL_CAPACITY,
        &key,
        session_id,
    );
    // Slots in the in-flight window, shared by the senders: one per packet sent.
    let slots = Arc::new(AtomicU64::new(0));
    let start = Instant::now();

    let receiver = {
        let mut receiver = Receiver::new(
            PacketOpener::new(&key, session_id),
            &per_stream,
            config.event_size,
            config.window,
        );
        thread::Builder::new()
            .name("receiver".into())
            .spawn(move || receiver.run(&data, &control_addrs, start, progress))?
    };

    let senders = controls
        .into_iter()
        .zip(&per_stream)
        .zip(1u64..)
        .map(|((control, &events), stream_id)| {
            let sender = Sender {
                pool: Arc::clone(&pool),
                stream_id,
                events,
                event_size: config.event_size,
                destination: data_addr,
                credit: Credit::new(control, Arc::clone(&slots), config.window),
            };
            thread::Builder::new()
                .name(format!("sender-{stream_id}"))
                .spawn(move || sender.run())
        })
        .collect::<io::Result<Vec<_>>>()?;

    let mut sent = Sent::default();
    let mut sender_error = None;
    for handle in senders {
        match handle.join() {
            Ok(Ok(totals)) => {
                sent.events += totals.events;
                sent.packets += totals.packets;
            }
            Ok(Err(error)) => sender_error = Some(error),
            Err(_) => sender_error = Some("a sender thread panicked".into()),
        }
    }
    let received = receiver
        .join()
        .map_err(|_| "the receiver thread panicked")??;
    if let Some(error) = sender_error {
        return Err(error);
    }
    Ok(Summary {
        config: *config,
        sent,
        received,
    })
}

/// Splits `events` over `streams` as evenly as possible.
fn split_events(events: u64, streams: usize) -> Vec<u64> {
    let count = u64::try_from(streams).unwrap_or(u64::MAX).max(1);
    (0..count)
        .map(|i| events / count + u64::from(i < events % count))
        .collect()
}

/// A key and session id for this run only.
///
/// This is a demo key, not a key derivation: std has no cryptographic random source, so
/// it mixes the clock, the process id and `RandomState` (whose SipHash keys std seeds
/// from the operating system's randomness) through SipHash. Real deployments take the
/// key and session id from their handshake.
fn demo_key_and_session() -> ([u8; 32], u64) {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    let pid = std::process::id();
    let mut key = [0; 32];
    for (index, word) in key.chunks_mut(8).enumerate() {
        // A fresh RandomState each time: each has its own SipHash keys.
        let hash = RandomState::new().hash_one((nanos, pid, index));
        word.copy_from_slice(&hash.to_le_bytes());
    }
    let session_id = RandomState::new().hash_one((nanos, pid, "session"));
    (key, session_id)
}

// ---------------------------------------------------------------------------------------
// Events: content that encodes where it belongs

/// Writes the event `index` of stream `stream_id` into `event` (all of it):
/// `stream_id (u64 LE) ‖ index (u64 LE) ‖ pattern(stream_id, index)`, cut to its length.
/// Every byte depends on both numbers, so a misplaced or altered event never matches.
fn write_event(event: &mut [u8], stream_id: u64, index: u64) {
    let mut head = [0; 16];
    head[..8].copy_from_slice(&stream_id.to_le_bytes());
    head[8..].copy_from_slice(&index.to_le_bytes());
    let (prefix, rest) = event.split_at_mut(event.len().min(16));
    prefix.copy_from_slice(&head[..prefix.len()]);
    // xorshift64 seeded from both numbers; `| 1` keeps the state away from zero.
    let mut state = (stream_id.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ index.wrapping_mul(0xd1b5_4a32_d192_ed03))
        | 1;
    for chunk in rest.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
}

/// The index an event claims, if it is long enough to say and claims `stream_id`.
fn claimed_index(event: &[u8], stream_id: u64) -> Option<u64> {
    let stream: [u8; 8] = event.get(..8)?.try_into().ok()?;
    let index: [u8; 8] = event.get(8..16)?.try_into().ok()?;
    (u64::from_le_bytes(stream) == stream_id).then(|| u64::from_le_bytes(index))
}

/// Events `first..first + count` of a stream, carved from one buffer (one allocation
/// per run, each event a zero-copy slice of it).
fn make_events(stream_id: u64, first: u64, count: usize, size: usize) -> Vec<Bytes> {
    let mut buf = BytesMut::zeroed(count * size);
    for (event, index) in buf.chunks_mut(size.max(1)).zip(first..) {
        write_event(event, stream_id, index);
    }
    let buf = buf.freeze();
    (0..count)
        .map(|i| buf.slice(i * size..(i + 1) * size))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Sending

/// One sender thread: one stream of events.
struct Sender {
    pool: SharedLocalPool,
    stream_id: u64,
    events: u64,
    event_size: usize,
    destination: SocketAddr,
    credit: Credit,
}

/// What senders report having sent.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sent {
    pub(crate) events: u64,
    pub(crate) packets: u64,
}

impl Sender {
    fn run(mut self) -> Result<Sent, RunError> {
        let socket = UdpSocket::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        let per_packet = self.pool.get().max_events_for_size(self.event_size).max(1);
        let run_len = per_packet * RUN_PACKETS;
        let mut sent = Sent::default();
        let mut sequence = 0;

        while sent.events < self.events {
            let remaining = self.events - sent.events;
            let count = usize::try_from(remaining).map_or(run_len, |r| r.min(run_len));
            let events = make_events(self.stream_id, sent.events, count, self.event_size);

            let mut builder = self.pool.get();
            let mut batch =
                builder.build_batch(self.stream_id, sequence, &events, PacketFlags::RELIABLE)?;
            for packet in batch.by_ref() {
                let packet = packet?;
                self.credit
                    .wait_for(NetHeader::parse(&packet)?.nonce_counter())?;
                socket.send_to(&packet, self.destination)?;
                sent.packets += 1;
            }
            sequence = batch.next_sequence();
            sent.events += u64::try_from(count)?;
        }

        // The end of the stream: an empty FIN packet, authenticated like the others.
        let fin = self
            .pool
            .get()
            .try_build(self.stream_id, sequence, &[], PacketFlags::FIN)?;
        self.credit
            .wait_for(NetHeader::parse(&fin)?.nonce_counter())?;
        socket.send_to(&fin, self.destination)?;
        Ok(sent)
    }
}

/// A sender's view of the credit.
///
/// Senders wait with the packet already built: its nonce counter is known only then,
/// since each thread takes counters from its own lease. The replay guard is waited for
/// before a slot is taken, so a sender held by the guard holds no slot. No deadlock: the
/// lowest counter built and not yet received is always within the guard of the
/// watermark (which sits at it once stale gaps are skipped), and the lowest slot taken
/// is always within the window.
struct Credit {
    control: UdpSocket,
    slots: Arc<AtomicU64>,
    window: u64,
    /// Packets the receiver has opened, plus those this sender gave up as lost.
    opened: u64,
    /// Every nonce counter below this has been received (or skipped as lost/unused).
    watermark: u64,
}

impl Credit {
    fn new(control: UdpSocket, slots: Arc<AtomicU64>, window: u64) -> Self {
        Self {
            control,
            slots,
            window,
            opened: 0,
            watermark: 0,
        }
    }

    /// Waits until the packet with nonce counter `counter` may be sent.
    fn wait_for(&mut self, counter: u64) -> Result<(), RunError> {
        self.wait_until(
            |credit| counter < credit.watermark + REPLAY_GUARD,
            // Treat what is missing below as lost and let this packet through.
            |credit| credit.watermark = counter + 1 - REPLAY_GUARD,
        )?;
        // Ordering: the slot only has to be unique; no other memory hangs on it.
        let slot = self.slots.fetch_add(1, Ordering::Relaxed);
        self.wait_until(
            |credit| slot < credit.opened + credit.window,
            // Treat what is in flight as lost; the receiver counts its events as lost.
            |credit| credit.opened = slot + 1 - credit.window,
        )
    }

    /// Reads credit until `ready`; after `RESYNC_AFTER` without news, `resync`s.
    fn wait_until(
        &mut self,
        ready: impl Fn(&Self) -> bool,
        resync: impl Fn(&mut Self),
    ) -> Result<(), RunError> {
        let mut last_progress = Instant::now();
        let mut resyncs = 0;
        let mut datagram = [0; 32];
        while !ready(self) {
            match self.control.recv(&mut datagram) {
                Ok(16) => {
                    let word = |i: usize| {
                        let mut bytes = [0; 8];
                        bytes.copy_from_slice(&datagram[i * 8..(i + 1) * 8]);
                        u64::from_le_bytes(bytes)
                    };
                    let (opened, watermark) = (word(0), word(1));
                    if opened > self.opened || watermark > self.watermark {
                        self.opened = self.opened.max(opened);
                        self.watermark = self.watermark.max(watermark);
                        last_progress = Instant::now();
                        resyncs = 0;
                    }
                }
                Ok(_) => {} // not a credit datagram
                Err(error) if is_timeout(&error) => {}
                Err(error) => return Err(error.into()),
            }
            if last_progress.elapsed() >= RESYNC_AFTER {
                resyncs += 1;
                if resyncs > MAX_RESYNCS {
                    return Err("the receiver stopped returning credits".into());
                }
                resync(self);
                last_progress = Instant::now();
            }
        }
        Ok(())
    }
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

// ---------------------------------------------------------------------------------------
// Receiving

/// What the receiver knows of one stream.
#[derive(Debug, Clone, Copy, Default)]
struct StreamCheck {
    stream_id: u64,
    expected: u64,
    /// The index the next event should carry.
    next: u64,
    received: u64,
    corrupt: u64,
    misordered: u64,
    fin: bool,
}

impl StreamCheck {
    fn is_complete(&self) -> bool {
        self.fin && self.received >= self.expected
    }

    /// Checks one event against the one expected next; `scratch` is reused memory.
    fn check(&mut self, event: &[u8], size: usize, scratch: &mut Vec<u8>) {
        self.received += 1;
        scratch.resize(size, 0);
        write_event(scratch, self.stream_id, self.next);
        if event == scratch.as_slice() {
            self.next += 1;
            return;
        }
        // Not the next event. If it is an intact later one, the events between were lost
        // (the totals will show it); an intact earlier one is a duplicate or reordering.
        if event.len() == size {
            if let Some(index) = claimed_index(event, self.stream_id) {
                write_event(scratch, self.stream_id, index);
                if event == scratch.as_slice() {
                    if index > self.next {
                        self.next = index.saturating_add(1);
                    } else {
                        self.misordered += 1;
                    }
                    return;
                }
            }
        }
        self.corrupt += 1;
        self.next += 1;
    }
}

/// The receiver's side of the credit window: which nonce counters have arrived.
#[derive(Debug)]
struct Watermark {
    /// Every counter below this one has been received (or given up as lost).
    below: u64,
    /// Counters received above `below`: at most the replay guard's worth.
    above: BTreeSet<u64>,
    /// Since when a counter has been missing below a received one.
    gap_since: Option<Instant>,
}

impl Watermark {
    fn new() -> Self {
        Self {
            below: 0,
            above: BTreeSet::new(),
            gap_since: None,
        }
    }

    fn admit(&mut self, counter: u64) {
        if counter == self.below {
            self.below += 1;
            while self.above.remove(&self.below) {
                self.below += 1;
            }
            // Whatever is still above now waits on a newer gap.
            self.gap_since = (!self.above.is_empty()).then(Instant::now);
        } else if counter > self.below {
            self.above.insert(counter);
            self.gap_since.get_or_insert_with(Instant::now);
        }
        // Below the watermark: a packet given up as lost arrived after all; the opener
        // accepted it, the watermark has moved on.
    }

    /// Skips a missing counter that has been waited for too long: its packet was lost
    /// (its events show up as lost), and waiting longer would stall every sender.
    fn skip_stale_gap(&mut self) {
        if self
            .gap_since
            .is_some_and(|since| since.elapsed() >= GAP_TIMEOUT)
        {
            if let Some(first) = self.above.pop_first() {
                self.below = first;
                self.admit(first);
            }
        }
    }
}

/// What the receiver counted.
#[derive(Debug, Clone, Default)]
pub(crate) struct Received {
    pub(crate) events: u64,
    pub(crate) packets: u64,
    pub(crate) event_bytes: u64,
    pub(crate) wire_bytes: u64,
    pub(crate) rejected: u64,
    pub(crate) first_rejection: Option<String>,
    pub(crate) corrupt: u64,
    pub(crate) misordered: u64,
    /// From the start of the run to the last datagram.
    pub(crate) elapsed: Duration,
}

struct Receiver {
    opener: PacketOpener,
    /// Stream `i + 1` at index `i`.
    streams: Vec<StreamCheck>,
    event_size: usize,
    scratch: Vec<u8>,
    watermark: Watermark,
    /// Packets opened so far (FIN packets included): frees the senders' slots.
    opened: u64,
    /// The credit last sent: packets opened and the watermark.
    credit_sent: (u64, u64),
    /// Send credit once the packets opened have moved this far.
    step: u64,
    totals: Received,
}

impl Receiver {
    fn new(opener: PacketOpener, per_stream: &[u64], event_size: usize, window: u64) -> Self {
        let streams = per_stream
            .iter()
            .zip(1..)
            .map(|(&expected, stream_id)| StreamCheck {
                stream_id,
                expected,
                ..StreamCheck::default()
            })
            .collect();
        Self {
            opener,
            streams,
            event_size,
            scratch: Vec::with_capacity(event_size),
            watermark: Watermark::new(),
            opened: 0,
            credit_sent: (0, 0),
            step: (window / 4).max(1),
            totals: Received::default(),
        }
    }

    fn run(
        &mut self,
        socket: &UdpSocket,
        controls: &[SocketAddr],
        start: Instant,
        progress: bool,
    ) -> Result<Received, RunError> {
        socket.set_read_timeout(Some(POLL))?;
        let mut last_datagram = Instant::now();
        let mut report = Progress::new(start);
        loop {
            let all_fin = self.streams.iter().all(|s| s.fin);
            if self.streams.iter().all(StreamCheck::is_complete)
                || (all_fin && last_datagram.elapsed() >= FIN_GRACE)
                || last_datagram.elapsed() >= IDLE_LIMIT
            {
                break;
            }
            // A fresh buffer per datagram, so the opener decrypts it in place and the
            // events stay valid however long they are kept.
            let mut buf = BytesMut::with_capacity(MAX_PACKET_SIZE);
            buf.resize(MAX_PACKET_SIZE, 0);
            match socket.recv(&mut buf) {
                Ok(len) => {
                    buf.truncate(len);
                    last_datagram = Instant::now();
                    self.totals.elapsed = last_datagram - start;
                    self.handle(buf.freeze());
                    let (opened, watermark) = self.credit_sent;
                    if self.opened >= opened + self.step
                        || self.watermark.below >= watermark + REPLAY_GUARD / 4
                    {
                        self.send_credit(socket, controls)?;
                    }
                }
                Err(error) if is_timeout(&error) => {
                    // Idle: re-send the credit (it may have been lost) and stop waiting
                    // for packets that are not coming.
                    self.watermark.skip_stale_gap();
                    self.send_credit(socket, controls)?;
                }
                Err(error) => return Err(error.into()),
            }
            self.watermark.skip_stale_gap();
            if progress {
                report.tick(self.totals.events);
            }
        }
        // Whatever is still missing when the senders are done is lost; report it.
        self.send_credit(socket, controls)?;
        for stream in &self.streams {
            self.totals.corrupt += stream.corrupt;
            self.totals.misordered += stream.misordered;
        }
        Ok(self.totals.clone())
    }

    fn send_credit(&mut self, socket: &UdpSocket, controls: &[SocketAddr]) -> io::Result<()> {
        let mut credit = [0; 16];
        credit[..8].copy_from_slice(&self.opened.to_le_bytes());
        credit[8..].copy_from_slice(&self.watermark.below.to_le_bytes());
        for control in controls {
            socket.send_to(&credit, control)?;
        }
        self.credit_sent = (self.opened, self.watermark.below);
        Ok(())
    }

    fn handle(&mut self, datagram: Bytes) {
        self.totals.wire_bytes += u64::try_from(datagram.len()).unwrap_or(u64::MAX);
        let packet = match self.opener.open(datagram) {
            Ok(packet) => packet,
            Err(error) => {
                self.totals.rejected += 1;
                self.totals.first_rejection.get_or_insert(error.to_string());
                return;
            }
        };
        self.opened += 1;
        let header = packet.header();
        self.watermark.admit(header.nonce_counter());

        let stream = usize::try_from(header.stream_id)
            .ok()
            .and_then(|id| id.checked_sub(1))
            .and_then(|index| self.streams.get_mut(index));
        let Some(stream) = stream else {
            // Authentic but from no stream of ours: count its events as corrupt.
            self.totals.corrupt += u64::from(header.event_count);
            return;
        };
        if header.flags.contains(PacketFlags::FIN) {
            stream.fin = true;
            return;
        }
        self.totals.packets += 1;
        for event in packet.events() {
            stream.check(&event, self.event_size, &mut self.scratch);
            self.totals.events += 1;
            self.totals.event_bytes += u64::try_from(event.len()).unwrap_or(u64::MAX);
        }
    }
}

/// A line about once a second: events received so far and the rate since the last line.
struct Progress {
    start: Instant,
    last: Instant,
    last_events: u64,
}

impl Progress {
    fn new(start: Instant) -> Self {
        Self {
            start,
            last: start,
            last_events: 0,
        }
    }

    fn tick(&mut self, events: u64) {
        let now = Instant::now();
        let interval = now - self.last;
        if interval < Duration::from_secs(1) {
            return;
        }
        let rate = rate(events - self.last_events, interval);
        eprintln!(
            "  {:5.1} s  {events:>12} events received  {:>7.2} M events/s",
            (now - self.start).as_secs_f64(),
            rate / 1e6,
        );
        let _ = io::stderr().flush();
        self.last = now;
        self.last_events = events;
    }
}

/// `count` per second over `elapsed`.
fn rate(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

// ---------------------------------------------------------------------------------------
// Summary

/// The outcome of a run.
#[derive(Debug, Clone)]
pub(crate) struct Summary {
    pub(crate) config: Config,
    pub(crate) sent: Sent,
    pub(crate) received: Received,
}

impl Summary {
    /// Events sent that never arrived.
    pub(crate) fn lost(&self) -> u64 {
        self.sent.events.saturating_sub(self.received.events)
    }

    /// Everything sent arrived intact, in order, and nothing was rejected.
    pub(crate) fn is_clean(&self) -> bool {
        self.lost() == 0
            && self.sent.events == self.config.events
            && self.received.rejected == 0
            && self.received.corrupt == 0
            && self.received.misordered == 0
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.received;
        let elapsed = r.elapsed;
        writeln!(
            f,
            "sent      {} events in {} packets ({} sender(s))",
            self.sent.events, self.sent.packets, self.config.senders
        )?;
        writeln!(
            f,
            "received  {} events in {} packets; lost {}, corrupt {}, out of order {}, \
             rejected datagrams {}",
            r.events,
            r.packets,
            self.lost(),
            r.corrupt,
            r.misordered,
            r.rejected
        )?;
        if let Some(first) = &r.first_rejection {
            writeln!(f, "          first rejection: {first}")?;
        }
        writeln!(
            f,
            "rate      {:.2} s: {:.0} events/s, {:.0} packets/s, {:.1} MB/s of events \
             ({:.1} MB/s on the wire)",
            elapsed.as_secs_f64(),
            rate(r.events, elapsed),
            rate(r.packets, elapsed),
            rate(r.event_bytes, elapsed) / 1e6,
            rate(r.wire_bytes, elapsed) / 1e6,
        )?;
        writeln!(
            f,
            "result    {}",
            if self.is_clean() {
                "OK: every event arrived intact and in order"
            } else {
                "FAILED: events were lost, corrupted or rejected"
            }
        )
    }
}
