//! Baselines for netmesh's speed on 127.0.0.1, outside netmesh's workspace.
//!
//! ```text
//! quic-bench quic [--events N] [--size BYTES] [--streams K] [--mtu BYTES] [--buffer BYTES] [--json]
//! quic-bench udp  [--events N] [--size BYTES] [--window DATAGRAMS] [--buffer BYTES] [--json]
//! ```
//!
//! `quic`: a bulk transfer of events through quinn 0.11 (TLS 1.3 with
//! TLS13_CHACHA20_POLY1305_SHA256 only), between two processes: this process sends, a
//! child process of the same binary (`quic-server`) receives and checks every event.
//!
//! `udp`: the bare-UDP ceiling: the datagrams netmesh would send for these events (68-byte
//! header, length-prefixed frames, 16-byte tag, 8 KiB at most) with no crypto, batched
//! through quinn-udp (GSO and sendmsg out, GRO and recvmmsg in) from a sender thread to a
//! receiver thread of one process, with a credit window so nothing is lost.
//!
//! Both print a human summary and, with `--json`, a last line of JSON with the fields of
//! `netmesh bench --json` (events, bytes, seconds, events_per_s, lost, duplicates,
//! out_of_order, corrupt, rejected) and a few of their own.

mod content;
mod cpu;
mod quic;
mod sock;
mod udp;

use std::error::Error;
use std::fmt::Write as _;
use std::process::ExitCode;

use content::MIN_EVENT_SIZE;

type Result<T, E = Box<dyn Error + Send + Sync>> = std::result::Result<T, E>;

const USAGE: &str = "\
usage: quic-bench quic [--events N] [--size BYTES] [--streams K] [--mtu BYTES] [--buffer BYTES] [--json]
       quic-bench udp  [--events N] [--size BYTES] [--window DATAGRAMS] [--buffer BYTES] [--json]

  quic   events through quinn 0.11 (ChaCha20-Poly1305 only), this process to a child process
  udp    the same events in netmesh-sized datagrams, no crypto, GSO/GRO batched, two threads
  --events N        events to move [default: 20000000 for 64 B and less, 2000000 above]
  --size BYTES      bytes per event, 16..=8104 [default: 64]
  --streams K       QUIC streams, events round-robin [default: 1]
  --mtu BYTES       QUIC: largest UDP payload, 1200..=6500 (initial MTU, discovery bound) [default: quinn's]
  --window N        UDP: datagrams in flight [default: 256]
  --buffer BYTES    socket buffers to ask for [default: 8388608; the kernel caps them]
  --json            a last line of JSON";

/// The largest `--mtu`: quinn 0.11 puts up to 10 datagrams in one GSO send with no cap
/// on their total, and the kernel refuses a send above 65,507 bytes (EMSGSIZE, which
/// quinn-udp drops silently as if it were an MTU probe).
const MAX_MTU: u64 = 6500;

/// Options of every mode.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) events: u64,
    pub(crate) size: usize,
    pub(crate) streams: u64,
    pub(crate) mtu: Option<u16>,
    pub(crate) window: u64,
    pub(crate) buffer: usize,
    pub(crate) json: bool,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self> {
        let mut options = Self {
            events: 0,
            size: 64,
            streams: 1,
            mtu: None,
            window: 256,
            buffer: sock::DEFAULT_BUFFER,
            json: false,
        };
        let mut events = None;
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            if flag == "--json" {
                options.json = true;
                continue;
            }
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = |min: u64, max: u64| -> Result<u64> {
                match value.parse::<u64>() {
                    Ok(n) if (min..=max).contains(&n) => Ok(n),
                    _ => Err(format!("{flag}: expected {min}..={max}, got {value:?}").into()),
                }
            };
            match flag.as_str() {
                "--events" => events = Some(number(1, 1 << 40)?),
                "--size" => options.size = usize::try_from(number(MIN_EVENT_SIZE as u64, 8104)?)?,
                "--streams" => options.streams = number(1, 64)?,
                "--mtu" => options.mtu = Some(u16::try_from(number(1200, MAX_MTU)?)?),
                "--window" => options.window = number(1, 1 << 20)?,
                "--buffer" => options.buffer = usize::try_from(number(4096, 1 << 30)?)?,
                _ => return Err(format!("unknown flag {flag}").into()),
            }
        }
        options.events = events.unwrap_or(if options.size <= 64 {
            20_000_000
        } else {
            2_000_000
        });
        Ok(options)
    }

    /// The flags that give these options back to `parse` (for the child process).
    pub(crate) fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "--events".into(),
            self.events.to_string(),
            "--size".into(),
            self.size.to_string(),
            "--streams".into(),
            self.streams.to_string(),
            "--buffer".into(),
            self.buffer.to_string(),
        ];
        if let Some(mtu) = self.mtu {
            args.extend(["--mtu".into(), mtu.to_string()]);
        }
        args
    }
}

/// What a receiver saw.
#[derive(Debug, Default, Clone)]
pub(crate) struct Report {
    pub(crate) mode: &'static str,
    pub(crate) size: usize,
    /// Events expected.
    pub(crate) expected: u64,
    /// Events that arrived intact.
    pub(crate) events: u64,
    pub(crate) seconds: f64,
    /// UDP datagrams that carried them (QUIC: all the receiver's datagrams).
    pub(crate) datagrams: u64,
    pub(crate) lost: u64,
    pub(crate) duplicates: u64,
    pub(crate) out_of_order: u64,
    pub(crate) corrupt: u64,
    pub(crate) rejected: u64,
    /// CPU seconds of the receiving and the sending side (process or thread).
    pub(crate) receiver_cpu: f64,
    pub(crate) sender_cpu: f64,
    /// Extra `"key": value` pairs for the JSON line (values already JSON).
    pub(crate) extra: Vec<(&'static str, String)>,
}

impl Report {
    fn per_s(&self, n: u64) -> f64 {
        if self.seconds > 0.0 {
            n as f64 / self.seconds
        } else {
            0.0
        }
    }

    pub(crate) fn per_cpu_s(&self, cpu: f64) -> f64 {
        if cpu > 0.0 {
            self.events as f64 / cpu
        } else {
            0.0
        }
    }

    pub(crate) fn ok(&self) -> bool {
        self.events == self.expected
            && self.lost == 0
            && self.duplicates == 0
            && self.out_of_order == 0
            && self.corrupt == 0
    }

    pub(crate) fn print(&self, json: bool) {
        println!(
            "{}: {} of {} events of {} B in {:.3} s: {:.0} events/s, {:.0} datagrams/s, {:.1} MB/s of events; \
             lost {}, duplicates {}, out of order {}, corrupt {}, rejected {}: {}",
            self.mode,
            self.events,
            self.expected,
            self.size,
            self.seconds,
            self.per_s(self.events),
            self.per_s(self.datagrams),
            self.per_s(self.events * self.size as u64) / 1e6,
            self.lost,
            self.duplicates,
            self.out_of_order,
            self.corrupt,
            self.rejected,
            if self.ok() { "OK" } else { "FAILED" },
        );
        let mut cpu = format!(
            "cpu: receiver {:.2} s ({:.0} events per CPU-second)",
            self.receiver_cpu,
            self.per_cpu_s(self.receiver_cpu)
        );
        if self.sender_cpu > 0.0 {
            let _ = write!(
                cpu,
                ", sender {:.2} s ({:.0} events per CPU-second)",
                self.sender_cpu,
                self.per_cpu_s(self.sender_cpu)
            );
        }
        println!("{cpu}");
        if json {
            let mut line = format!(
                "{{\"mode\":\"{}\",\"size\":{},\"events\":{},\"bytes\":{},\"seconds\":{:.6},\"events_per_s\":{:.1},\
                 \"datagrams\":{},\"datagrams_per_s\":{:.1},\"lost\":{},\"duplicates\":{},\"out_of_order\":{},\
                 \"corrupt\":{},\"rejected\":{}",
                self.mode,
                self.size,
                self.events,
                self.events * self.size as u64,
                self.seconds,
                self.per_s(self.events),
                self.datagrams,
                self.per_s(self.datagrams),
                self.lost,
                self.duplicates,
                self.out_of_order,
                self.corrupt,
                self.rejected,
            );
            let _ = write!(
                line,
                ",\"receiver_cpu_s\":{:.2},\"receiver_events_per_cpu_s\":{:.1}",
                self.receiver_cpu,
                self.per_cpu_s(self.receiver_cpu),
            );
            if self.sender_cpu > 0.0 {
                let _ = write!(
                    line,
                    ",\"sender_cpu_s\":{:.2},\"sender_events_per_cpu_s\":{:.1}",
                    self.sender_cpu,
                    self.per_cpu_s(self.sender_cpu),
                );
            }
            for (key, value) in &self.extra {
                let _ = write!(line, ",\"{key}\":{value}");
            }
            line.push('}');
            println!("{line}");
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(mode) = args.first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    if mode == "-h" || mode == "--help" {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let options = match Options::parse(&args[1..]) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("quic-bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match mode.as_str() {
        "quic" => quic::run(&options),
        "quic-server" => quic::serve(&options),
        "udp" => udp::run(&options),
        _ => {
            eprintln!("quic-bench: unknown mode {mode:?}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("quic-bench {mode}: {e}");
            ExitCode::FAILURE
        }
    }
}
