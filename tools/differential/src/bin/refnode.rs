//! Runs real net-mesh 0.23 nodes as peers of netmesh (for example of the `netmesh` tool).
//!
//! ```text
//! refnode kat
//! refnode mesh-id SEED
//! refnode listen --kind adapter|mesh --psk HEX [--bind ADDR] [--key HEX] [--seed SEED]
//!                [--peer-id N] [--expect N] [--reply N] [--size B] [--streams K]
//!                [--timeout SECS] [--heartbeat-ms MS]
//! refnode send   --kind adapter|mesh --to ADDR --peer-key HEX --psk HEX [--bind ADDR]
//!                [--seed SEED] [--peer-id N] --events N [--size B] [--streams K]
//!                [--expect-reply N] [--timeout SECS] [--heartbeat-ms MS]
//! ```
//!
//! - `kat`: the handshake known-answer check against a NetAdapter and a MeshNode, both
//!   directions (exit status 1 on any failure).
//! - `mesh-id SEED`: the wire id (node id truncated to u32) of the MeshNode whose identity
//!   seed is SEED (a u64; `--seed` takes the same), so a netmesh peer can be given
//!   `--peer-id` before the MeshNode starts.
//! - `listen`: a responder. A NetAdapter (`--kind adapter`, empty prologue) uses `--key`
//!   (its X25519 secret, hex; fresh if absent) and serves one peer. A MeshNode (`--kind
//!   mesh`, mesh prologue) has a fresh static key and needs `--peer-id` (the initiator's
//!   wire id). Prints `listening on ADDR`, `public key HEX` and, for a MeshNode,
//!   `node id N` (its wire id), then waits for the handshake, counts and checks events
//!   (SESSION.md's content format) until `--expect` arrived or `--timeout` passed
//!   without progress; `--reply N` sends N events back once the session is up.
//! - `send`: an initiator. Handshakes with `--to`, sends `--events` events of `--size`
//!   bytes over `--streams` streams (net-mesh sends all at once, no flow control), then
//!   waits for `--expect-reply` events back.
//!
//! The last line of stdout is a JSON object: `events` (received), `bytes`, `seconds`,
//! `events_per_s`, `lost`, `duplicates`, `out_of_order`, `corrupt`, `rejected` (always 0:
//! net-mesh reports nothing it drops), `sent`. Exit status 0 only if every expected event
//! arrived, none twice, none corrupt.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use netmesh_differential::content::{self, Tally};
use netmesh_differential::nodes::{self, Kind, MeshSetup, RefNode, Timing};
use netmesh_session::{Psk, PublicKey, StaticKeypair};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("kat") => return kat(),
        Some("mesh-id") => mesh_id(&args[1..]),
        Some("listen") => Flags::parse(&args[1..]).and_then(|f| run(|rt| listen(rt, &f))),
        Some("send") => Flags::parse(&args[1..]).and_then(|f| run(|rt| send(rt, &f))),
        _ => Err(
            "usage: refnode kat | mesh-id SEED | listen ... | send ... (see the source's docs)"
                .into(),
        ),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

type Result<T> = std::result::Result<T, String>;

fn run(f: impl FnOnce(&tokio::runtime::Runtime) -> Result<bool>) -> Result<bool> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let out = f(&rt);
    rt.shutdown_timeout(Duration::from_secs(1));
    out
}

/// `--name value` pairs.
struct Flags(HashMap<String, String>);

impl Flags {
    fn parse(args: &[String]) -> Result<Self> {
        let mut map = HashMap::new();
        let mut it = args.iter();
        while let Some(name) = it.next() {
            let key = name
                .strip_prefix("--")
                .ok_or_else(|| format!("expected a --flag, got {name:?}"))?;
            let value = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
            map.insert(key.to_owned(), value.clone());
        }
        Ok(Self(map))
    }

    fn get<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>>
    where
        T::Err: std::fmt::Display,
    {
        self.0
            .get(name)
            .map(|v| v.parse::<T>().map_err(|e| format!("--{name} {v:?}: {e}")))
            .transpose()
    }

    fn need<T: std::str::FromStr>(&self, name: &str) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        self.get(name)?
            .ok_or_else(|| format!("--{name} is required"))
    }

    fn timing(&self) -> Result<Timing> {
        let mut timing = Timing::default();
        if let Some(ms) = self.get::<u64>("heartbeat-ms")? {
            timing.heartbeat = Duration::from_millis(ms);
        }
        timing.handshake_retries = 10;
        Ok(timing)
    }

    /// net-mesh takes the PSK as plain bytes; netmesh-session checks the hex first.
    fn psk(&self) -> Result<[u8; 32]> {
        let text: String = self.need("psk")?;
        Psk::from_hex(&text).map_err(|e| format!("--psk: {e}"))?;
        let digits = text.trim().as_bytes();
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            let pair = std::str::from_utf8(&digits[2 * i..2 * i + 2]).map_err(|e| e.to_string())?;
            *b = u8::from_str_radix(pair, 16).map_err(|e| e.to_string())?;
        }
        Ok(out)
    }

    fn seed(&self) -> Result<Option<[u8; 32]>> {
        Ok(self.get::<u64>("seed")?.map(seed_bytes))
    }
}

fn seed_bytes(seed: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[..8].copy_from_slice(&seed.to_le_bytes());
    out[8..16].copy_from_slice(b"refnode!");
    out
}

fn mesh_id(args: &[String]) -> Result<bool> {
    let seed: u64 = args
        .first()
        .ok_or("usage: refnode mesh-id SEED")?
        .parse()
        .map_err(|e| format!("SEED: {e}"))?;
    println!("{}", nodes::mesh_wire_id(seed_bytes(seed)));
    Ok(true)
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn listen(rt: &tokio::runtime::Runtime, f: &Flags) -> Result<bool> {
    let kind: Kind = f.need("kind")?;
    let psk = f.psk()?;
    let bind: SocketAddr = f
        .get("bind")?
        .unwrap_or_else(|| "127.0.0.1:0".parse().expect("address"));
    let timing = f.timing()?;
    let timeout = Duration::from_secs(f.get("timeout")?.unwrap_or(10));
    let node = match kind {
        Kind::Adapter => {
            let keypair = match f.get::<String>("key")? {
                Some(hex) => StaticKeypair::from_hex(&hex).map_err(|e| e.to_string())?,
                None => StaticKeypair::generate().map_err(|e| e.to_string())?,
            };
            // NetAdapter cannot report the port it bound: choose it first.
            let bind = if bind.port() == 0 {
                std::net::UdpSocket::bind(bind)
                    .and_then(|s| s.local_addr())
                    .map_err(|e| e.to_string())?
            } else {
                bind
            };
            say(&format!("listening on {bind}"));
            say(&format!("public key {}", keypair.public_key()));
            let secret = *keypair.secret_bytes();
            let public = keypair.public_key().0;
            let mut timing = timing;
            timing.handshake_timeout = timeout;
            rt.block_on(nodes::adapter_responder(bind, psk, secret, public, timing))
                .map_err(|e| format!("handshake: {e}"))?
        }
        Kind::Mesh => {
            let peer_id: u64 = f.need("peer-id")?;
            let setup = rt
                .block_on(MeshSetup::bind(bind, psk, timing, f.seed()?))
                .map_err(|e| e.to_string())?;
            say(&format!("listening on {}", setup.local_addr()));
            say(&format!("public key {}", PublicKey(setup.public_key())));
            say(&format!("node id {}", setup.wire_id()));
            rt.block_on(setup.accept(peer_id))
                .map_err(|e| format!("handshake: {e}"))?
                .0
        }
    };
    say("session established");
    let sent = reply(rt, &node, f, "reply")?;
    let expect: u64 = f.get("expect")?.unwrap_or(0);
    let report = receive(rt, &node, expect, timeout)?;
    finish(rt, &node, report, sent, expect)
}

fn send(rt: &tokio::runtime::Runtime, f: &Flags) -> Result<bool> {
    let kind: Kind = f.need("kind")?;
    let psk = f.psk()?;
    let to: SocketAddr = f.need("to")?;
    let peer_key: PublicKey = f.need("peer-key")?;
    let bind: SocketAddr = f
        .get("bind")?
        .unwrap_or_else(|| "127.0.0.1:0".parse().expect("address"));
    let timing = f.timing()?;
    let timeout = Duration::from_secs(f.get("timeout")?.unwrap_or(10));
    let node = match kind {
        Kind::Adapter => rt
            .block_on(nodes::adapter_initiator(bind, to, psk, peer_key.0, timing))
            .map_err(|e| format!("handshake: {e}"))?,
        Kind::Mesh => {
            let peer_id: u64 = f.need("peer-id")?;
            let setup = rt
                .block_on(MeshSetup::bind(bind, psk, timing, f.seed()?))
                .map_err(|e| e.to_string())?;
            say(&format!("node id {}", setup.wire_id()));
            rt.block_on(setup.connect(to, peer_key.0, peer_id))
                .map_err(|e| format!("handshake: {e}"))?
        }
    };
    say("session established");
    let sent = reply(rt, &node, f, "events")?;
    let expect: u64 = f.get("expect-reply")?.unwrap_or(0);
    let report = receive(rt, &node, expect, timeout)?;
    finish(rt, &node, report, sent, expect)
}

/// Sends `--{count_flag}` events (content format), one batch per stream.
fn reply(rt: &tokio::runtime::Runtime, node: &RefNode, f: &Flags, count_flag: &str) -> Result<u64> {
    let count: u64 = f.get(count_flag)?.unwrap_or(0);
    let streams: u64 = f.get("streams")?.unwrap_or(1);
    let size: usize = f.get("size")?.unwrap_or(64);
    if streams == 0 || streams > u64::from(u16::MAX) {
        return Err("--streams must be 1..=65535 (net-mesh streams are shard ids)".into());
    }
    for (stream, events) in content::per_stream(count, streams, size) {
        let stream = u16::try_from(stream).map_err(|e| e.to_string())?;
        rt.block_on(node.send(stream, &events))
            .map_err(|e| e.to_string())?;
    }
    Ok(count)
}

struct Received {
    tally: Tally,
    first: Option<Instant>,
    last: Option<Instant>,
}

/// Counts events until `expect` arrived or `timeout` passed without a new one.
fn receive(
    rt: &tokio::runtime::Runtime,
    node: &RefNode,
    expect: u64,
    timeout: Duration,
) -> Result<Received> {
    let mut r = Received {
        tally: Tally::default(),
        first: None,
        last: None,
    };
    let mut progress = Instant::now();
    while r.tally.events < expect && progress.elapsed() < timeout {
        let got = rt.block_on(node.poll()).map_err(|e| e.to_string())?;
        if got.is_empty() {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        let now = Instant::now();
        r.first.get_or_insert(now);
        r.last = Some(now);
        let before = r.tally.events;
        for e in &got {
            r.tally.add(e);
        }
        if r.tally.events > before {
            progress = now;
        }
    }
    Ok(r)
}

fn finish(
    rt: &tokio::runtime::Runtime,
    node: &RefNode,
    r: Received,
    sent: u64,
    expect: u64,
) -> Result<bool> {
    let seconds = match (r.first, r.last) {
        (Some(a), Some(b)) => (b - a).as_secs_f64(),
        _ => 0.0,
    };
    let t = &r.tally;
    let lost = expect.saturating_sub(t.events);
    let rate = if seconds > 0.0 {
        t.events as f64 / seconds
    } else {
        0.0
    };
    say(&format!(
        "{{\"events\":{},\"bytes\":{},\"seconds\":{seconds:.6},\"events_per_s\":{rate:.1},\"lost\":{lost},\"duplicates\":{},\"out_of_order\":{},\"corrupt\":{},\"rejected\":0,\"sent\":{sent}}}",
        t.events, t.bytes, t.duplicates, t.out_of_order, t.corrupt
    ));
    let _ = rt.block_on(node.shutdown());
    Ok(lost == 0 && t.duplicates == 0 && t.corrupt == 0)
}

fn kat() -> ExitCode {
    let outcomes = match netmesh_differential::kat::run() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = false;
    for o in &outcomes {
        let verdict = if o.failures.is_empty() {
            "ok"
        } else {
            "FAILED"
        };
        println!("{verdict}: {}", o.name);
        for n in &o.notes {
            println!("    {n}");
        }
        for f in &o.failures {
            println!("    FAILURE: {f}");
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
