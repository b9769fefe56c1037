//! Events through quinn 0.11 between two processes: `run` sends, a child running
//! `quic-server` receives and checks.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Endpoint, EndpointConfig, MtuDiscoveryConfig, TransportConfig, VarInt};
use rustls::crypto::{ring as provider, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};

use crate::content::Content;
use crate::{cpu, sock, Options, Report, Result};

/// How long either side waits for the connection before giving up.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes of events handed to quinn per `write_all`.
const WRITE_BYTES: usize = 64 << 10;

/// TLS 1.3 with one cipher suite, so the 1-RTT packets (all the data) are sealed with
/// ChaCha20-Poly1305 whatever the peer prefers.
fn chacha_only() -> Arc<CryptoProvider> {
    Arc::new(CryptoProvider {
        cipher_suites: vec![provider::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256],
        ..provider::default_provider()
    })
}

/// QUIC protects Initial packets with AES-128-GCM by definition (RFC 9001 5.2), whatever
/// the negotiated suite; quinn needs that suite given separately when the TLS config
/// offers only ChaCha20-Poly1305.
fn initial_suite() -> Result<rustls::quic::Suite> {
    provider::cipher_suite::TLS13_AES_128_GCM_SHA256
        .tls13()
        .and_then(|suite| suite.quic_suite())
        .ok_or_else(|| "ring has no QUIC AES-128-GCM suite".into())
}

/// Large windows (as quinn's `perf` tool uses) so flow control never waits on loopback:
/// the transfer is limited by CPU, not by credit.
fn transport(options: &Options) -> Result<Arc<TransportConfig>> {
    let mut transport = TransportConfig::default();
    transport
        .max_concurrent_uni_streams(VarInt::from_u32(64))
        .stream_receive_window(VarInt::from_u32(64 << 20))
        .receive_window(VarInt::MAX)
        .send_window(256 << 20)
        .max_idle_timeout(Some(Duration::from_secs(10).try_into()?));
    if let Some(mtu) = options.mtu {
        let mut discovery = MtuDiscoveryConfig::default();
        discovery.upper_bound(mtu);
        transport
            .initial_mtu(mtu)
            .mtu_discovery_config(Some(discovery));
    }
    Ok(Arc::new(transport))
}

fn endpoint_config(options: &Options) -> Result<EndpointConfig> {
    let mut config = EndpointConfig::default();
    if let Some(mtu) = options.mtu {
        config.max_udp_payload_size(mtu)?;
    }
    Ok(config)
}

/// Extra JSON fields of a report.
type Extra = Vec<(&'static str, String)>;

/// A socket with big buffers, and what quinn-udp can batch on it.
fn socket(options: &Options) -> Result<(std::net::UdpSocket, String, Extra)> {
    let (socket, granted) = sock::bind(options.buffer)?;
    let state = quinn_udp::UdpSocketState::new((&socket).into())?;
    let line = format!(
        "{granted}; GSO up to {} segments, GRO {} segments",
        state.max_gso_segments(),
        state.gro_segments()
    );
    let extra = vec![
        ("rcvbuf", granted.recv.to_string()),
        ("sndbuf", granted.send.to_string()),
        ("gso_segments", state.max_gso_segments().to_string()),
        ("gro_segments", state.gro_segments().to_string()),
    ];
    Ok((socket, line, extra))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Events of `stream` when `events` go round-robin over `streams`.
fn events_on(stream: u64, streams: u64, events: u64) -> u64 {
    if stream >= events {
        0
    } else {
        (events - 1 - stream) / streams + 1
    }
}

/// The receiving side, a child process: prints `listening ADDR CERT_HEX`, takes one
/// connection, checks every event, prints the report.
pub(crate) fn serve(options: &Options) -> Result<bool> {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    let cert = certified.cert.der().clone();
    let key = PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der());
    let tls = rustls::ServerConfig::builder_with_provider(chacha_only())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key.into())?;
    let crypto = QuicServerConfig::with_initial(Arc::new(tls), initial_suite()?)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(transport(options)?);

    let runtime = runtime()?;
    let report = runtime.block_on(async {
        let (socket, socket_line, mut extra) = socket(options)?;
        let endpoint = Endpoint::new(
            endpoint_config(options)?,
            Some(config),
            socket,
            Arc::new(quinn::TokioRuntime),
        )?;
        let mut stdout = std::io::stdout().lock();
        writeln!(
            stdout,
            "listening {} {}",
            endpoint.local_addr()?,
            hex(&cert)
        )?;
        stdout.flush()?;
        drop(stdout);

        let incoming = tokio::time::timeout(HANDSHAKE_TIMEOUT, endpoint.accept())
            .await?
            .ok_or("endpoint closed")?;
        let connection = tokio::time::timeout(HANDSHAKE_TIMEOUT, incoming).await??;
        let content = Arc::new(Content::new(options.size));
        let mut readers = Vec::new();
        for stream in 0..options.streams.min(options.events) {
            let recv = connection.accept_uni().await?;
            let expected = events_on(stream, options.streams, options.events);
            let content = Arc::clone(&content);
            let streams = options.streams;
            readers.push(tokio::spawn(read_stream(
                recv, stream, streams, expected, content,
            )));
        }
        let mut total = StreamStats::default();
        for reader in readers {
            total.merge(reader.await??);
        }
        let stats = connection.stats();
        connection.close(VarInt::from_u32(0), b"done");
        endpoint.wait_idle().await;

        println!("receiver socket: {socket_line}");
        println!(
            "receiver: {} datagrams in {} receive calls, path MTU {} B, RTT {:?}",
            stats.udp_rx.datagrams, stats.udp_rx.ios, stats.path.current_mtu, stats.path.rtt
        );
        extra.extend([
            ("rx_ios", stats.udp_rx.ios.to_string()),
            ("path_mtu", stats.path.current_mtu.to_string()),
            ("streams", options.streams.to_string()),
            ("cipher", "\"TLS13_CHACHA20_POLY1305_SHA256\"".to_string()),
        ]);
        let seconds = match (total.first, total.last) {
            (Some(first), Some(last)) => (last - first).as_secs_f64(),
            _ => 0.0,
        };
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Report {
            mode: "quic",
            size: options.size,
            expected: options.events,
            events: total.intact,
            seconds,
            datagrams: stats.udp_rx.datagrams,
            lost: options.events.saturating_sub(total.seen),
            corrupt: total.corrupt,
            receiver_cpu: cpu::process(),
            extra,
            ..Report::default()
        })
    })?;
    report.print(options.json);
    Ok(report.ok())
}

#[derive(Debug, Default)]
struct StreamStats {
    /// Events (whole or not) read.
    seen: u64,
    intact: u64,
    corrupt: u64,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl StreamStats {
    fn merge(&mut self, other: Self) {
        self.seen += other.seen;
        self.intact += other.intact;
        self.corrupt += other.corrupt;
        self.first = match (self.first, other.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last = self.last.max(other.last);
    }

    fn check(&mut self, content: &Content, stream: u64, streams: u64, expected: u64, event: &[u8]) {
        let index = stream + self.seen * streams;
        if self.seen < expected && content.check(stream, index, event) {
            self.intact += 1;
        } else {
            self.corrupt += 1;
        }
        self.seen += 1;
    }
}

/// Reads one stream to its end, checking each fixed-size event (events may straddle
/// chunks).
async fn read_stream(
    mut recv: quinn::RecvStream,
    stream: u64,
    streams: u64,
    expected: u64,
    content: Arc<Content>,
) -> Result<StreamStats> {
    let size = content.size();
    let mut stats = StreamStats::default();
    let mut carry = Vec::with_capacity(size);
    while let Some(chunk) = recv.read_chunk(usize::MAX, true).await? {
        stats.first.get_or_insert_with(Instant::now);
        let mut data: &[u8] = &chunk.bytes;
        if !carry.is_empty() {
            let take = (size - carry.len()).min(data.len());
            carry.extend_from_slice(&data[..take]);
            data = &data[take..];
            if carry.len() == size {
                stats.check(&content, stream, streams, expected, &carry);
                carry.clear();
            }
        }
        let whole = data.len() / size * size;
        for event in data[..whole].chunks_exact(size) {
            stats.check(&content, stream, streams, expected, event);
        }
        carry.extend_from_slice(&data[whole..]);
        stats.last = Some(Instant::now());
    }
    if !carry.is_empty() {
        stats.seen += 1;
        stats.corrupt += 1;
    }
    Ok(stats)
}

/// The sending side: starts the receiver as a child process, connects, sends every
/// event, waits for the receiver's report and prints it.
pub(crate) fn run(options: &Options) -> Result<bool> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg("quic-server")
        .args(options.to_args())
        .arg("--json")
        .stdout(Stdio::piped())
        .spawn()?;
    let mut stdout = BufReader::new(child.stdout.take().ok_or("no child stdout")?);
    let mut first = String::new();
    stdout.read_line(&mut first)?;
    let mut words = first.split_whitespace();
    let (Some("listening"), Some(addr), Some(cert)) = (words.next(), words.next(), words.next())
    else {
        let _ = child.kill();
        return Err(format!("receiver said {first:?}").into());
    };
    let addr: SocketAddr = addr.parse()?;
    let cert = CertificateDer::from(unhex(cert)?);

    let sent = send(options, addr, cert);
    if sent.is_err() {
        let _ = child.kill();
    }
    let (sender_lines, sender_cpu) = sent?;
    let mut rest = String::new();
    stdout.read_to_string(&mut rest)?;
    let status = child.wait()?;
    println!(
        "quic: {} events of {} B, 1 sender process -> 1 receiver process on 127.0.0.1, {} stream(s), \
         TLS13_CHACHA20_POLY1305_SHA256 only",
        options.events, options.size, options.streams
    );
    for line in sender_lines {
        println!("{line}");
    }
    // The receiver always ends with its JSON line; the sender's CPU time joins it here.
    let mut lines: Vec<&str> = rest.lines().collect();
    let json = lines
        .pop()
        .filter(|line| line.starts_with('{') && line.ends_with('}'));
    for line in lines {
        println!("{line}");
    }
    let per_cpu_s = options.events as f64 / sender_cpu.max(f64::MIN_POSITIVE);
    println!("cpu: sender {sender_cpu:.2} s ({per_cpu_s:.0} events per CPU-second)");
    match json {
        Some(json) if options.json => println!(
            "{},\"sender_cpu_s\":{sender_cpu:.2},\"sender_events_per_cpu_s\":{per_cpu_s:.1}}}",
            &json[..json.len() - 1]
        ),
        Some(_) => {}
        None => return Err("the receiver printed no report".into()),
    }
    Ok(status.success())
}

/// Connects and sends every event; returns lines to print and the CPU seconds used.
fn send(
    options: &Options,
    addr: SocketAddr,
    cert: CertificateDer<'static>,
) -> Result<(Vec<String>, f64)> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert)?;
    let tls = rustls::ClientConfig::builder_with_provider(chacha_only())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let crypto = QuicClientConfig::with_initial(Arc::new(tls), initial_suite()?)?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport(options)?);

    runtime()?.block_on(async {
        let (socket, socket_line, _) = socket(options)?;
        let endpoint = Endpoint::new(endpoint_config(options)?, None, socket, Arc::new(quinn::TokioRuntime))?;
        let connecting = endpoint.connect_with(config, addr, "localhost")?;
        let connection = tokio::time::timeout(HANDSHAKE_TIMEOUT, connecting).await??;
        let content = Arc::new(Content::new(options.size));
        let mut writers = Vec::new();
        for stream in 0..options.streams.min(options.events) {
            let send = connection.open_uni().await?;
            let count = events_on(stream, options.streams, options.events);
            let content = Arc::clone(&content);
            let streams = options.streams;
            writers.push(tokio::spawn(write_stream(send, stream, streams, count, content)));
        }
        for writer in writers {
            writer.await??;
        }
        // The receiver closes the connection once it has read every stream to its end.
        let _ = connection.closed().await;
        let stats = connection.stats();
        endpoint.wait_idle().await;
        let cpu = cpu::process();
        let lines = vec![
            format!("sender socket: {socket_line}"),
            format!(
                "sender: {} datagrams in {} send calls, path MTU {} B, {} lost packets, congestion window {} B",
                stats.udp_tx.datagrams,
                stats.udp_tx.ios,
                stats.path.current_mtu,
                stats.path.lost_packets,
                stats.path.cwnd
            ),
        ];
        Ok((lines, cpu))
    })
}

async fn write_stream(
    mut send: quinn::SendStream,
    stream: u64,
    streams: u64,
    count: u64,
    content: Arc<Content>,
) -> Result<()> {
    let size = content.size();
    let per_write = (WRITE_BYTES / size).max(1);
    let mut buf = vec![0; per_write * size];
    let mut index = stream;
    let mut left = count;
    while left > 0 {
        let n = usize::try_from(left.min(per_write as u64))?;
        for event in buf[..n * size].chunks_exact_mut(size) {
            content.write(stream, index, event);
            index += streams;
        }
        send.write_all(&buf[..n * size]).await?;
        left -= n as u64;
    }
    send.finish()?;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn unhex(text: &str) -> Result<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return Err("odd-length hex".into());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| Ok(u8::from_str_radix(&text[i..i + 2], 16)?))
        .collect()
}
