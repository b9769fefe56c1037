//! Running the built `netmesh` binary from tests: children killed on drop, every wait
//! bounded, the `--json` line parsed.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)] // each test file uses its own part; `pub` marks the API

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary under test.
pub fn netmesh() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netmesh"))
}

/// A temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "netmesh-cli-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a finished child printed.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// The last line of stdout as JSON.
    pub fn json(&self) -> Value {
        let line = self.stdout.lines().last().unwrap_or_default();
        serde_json::from_str(line)
            .unwrap_or_else(|error| panic!("last stdout line is not JSON ({error}): {self:?}"))
    }

    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// A child process killed (and reaped) when dropped: a failing test leaves nothing behind.
pub struct Running {
    child: Child,
    what: String,
    /// Lines of stdout already read (the `listening on` line).
    head: Vec<String>,
    stdout: Option<BufReader<ChildStdout>>,
}

impl Running {
    /// Starts `command` with stdout and stderr piped.
    pub fn spawn(mut command: Command, what: &str) -> Self {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("{what}: cannot start: {error}"));
        Self {
            child,
            what: what.into(),
            head: Vec::new(),
            stdout: None,
        }
    }

    /// Reads stdout's first line, within `limit`.
    pub fn first_line(&mut self, limit: Duration) -> String {
        let stdout = self.child.stdout.take().expect("stdout piped");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send((line, reader));
        });
        match rx.recv_timeout(limit) {
            Ok((line, reader)) => {
                self.stdout = Some(reader);
                let line = line.trim_end().to_owned();
                self.head.push(line.clone());
                line
            }
            Err(_) => panic!("{}: no first line within {limit:?}", self.what),
        }
    }

    /// The address of a `listening on ADDR` (or `relaying on ADDR`) first line.
    pub fn bound_addr(&mut self) -> SocketAddr {
        let line = self.first_line(Duration::from_secs(10));
        let addr = line
            .rsplit(' ')
            .next()
            .and_then(|addr| addr.parse::<SocketAddr>().ok())
            .unwrap_or_else(|| panic!("{}: first line {line:?} has no address", self.what));
        assert!(line.ends_with(&addr.to_string()), "{line}");
        addr
    }

    /// Waits at most `limit` for the child to exit; kills it and panics past that.
    pub fn finish(mut self, limit: Duration) -> Finished {
        let stdout_pipe: Box<dyn Read + Send> = match self.stdout.take() {
            Some(reader) => Box::new(reader),
            None => Box::new(self.child.stdout.take().expect("stdout piped")),
        };
        let stdout = read_all(stdout_pipe);
        let stderr = read_all(self.child.stderr.take().expect("stderr piped"));
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let stderr = stderr
                    .recv_timeout(Duration::from_secs(2))
                    .unwrap_or_default();
                panic!(
                    "{}: still running after {limit:?}; stderr: {stderr}",
                    self.what
                );
            }
            thread::sleep(Duration::from_millis(10));
        };
        let mut stdout = stdout.recv().unwrap_or_default();
        if !self.head.is_empty() {
            stdout = format!("{}\n{stdout}", self.head.join("\n"));
        }
        Finished {
            status,
            stdout,
            stderr: stderr.recv().unwrap_or_default(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn read_all(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    rx
}

/// Runs `command` to completion within `limit`.
pub fn run(command: Command, what: &str, limit: Duration) -> Finished {
    Running::spawn(command, what).finish(limit)
}

/// A new key file in `dir` and its public key (hex), through `netmesh keygen`.
pub fn keygen(dir: &TempDir, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let mut command = netmesh();
    command.arg("keygen").arg("--out").arg(&path);
    let done = run(command, "keygen", Duration::from_secs(10));
    assert!(done.status.success(), "keygen: {done:?}");
    (path, done.stdout.trim().to_owned())
}

/// A PSK for tests (hex).
pub fn psk(byte: u8) -> String {
    hex_of(&[byte; 32])
}

pub fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `netmesh listen` on `bind` with `extra` flags; returns it and its bound address.
pub fn listen(key: &Path, psk: &str, bind: &str, extra: &[&str]) -> (Running, SocketAddr) {
    let mut command = netmesh();
    command
        .args(["listen", "--bind", bind, "--psk", psk, "--json", "--key"])
        .arg(key)
        .args(extra);
    let mut running = Running::spawn(command, "listen");
    let addr = running.bound_addr();
    (running, addr)
}

/// The `netmesh send` command to `to`.
pub fn send_command(to: SocketAddr, peer_key: &str, psk: &str, extra: &[&str]) -> Command {
    let mut command = netmesh();
    command
        .args(["send", "--to", &to.to_string(), "--peer-key", peer_key])
        .args(["--psk", psk, "--json"])
        .args(extra);
    command
}

/// Asserts the receiver's counts of a run that must be clean.
pub fn assert_clean(report: &Value, events: u64) {
    let field = |name: &str| {
        report[name]
            .as_u64()
            .unwrap_or_else(|| panic!("{name}: {report}"))
    };
    assert_eq!(field("events"), events, "{report}");
    for name in ["lost", "duplicates", "out_of_order", "corrupt"] {
        assert_eq!(field(name), 0, "{name}: {report}");
    }
    assert_eq!(report["ok"], true, "{report}");
}

/// Events per test run: `NETMESH_TEST_EVENTS` or `default`.
pub fn events_or(default: u64) -> u64 {
    std::env::var("NETMESH_TEST_EVENTS")
        .ok()
        .and_then(|n| n.replace('_', "").parse().ok())
        .unwrap_or(default)
}
