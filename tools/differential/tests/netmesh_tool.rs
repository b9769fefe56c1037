//! The `netmesh` tool against real net-mesh 0.23 nodes (`refnode`), over 127.0.0.1, both
//! directions and both node types: `netmesh listen` with `refnode send`, `refnode listen`
//! with `netmesh send`, for a `NetAdapter` (empty prologue) and a `MeshNode` (mesh
//! prologue, `--node-id`/`--peer-id`). Each session carries events both ways (the
//! listener replies), and every event is checked on arrival by its receiver.
//!
//! The `netmesh` binary is `NETMESH_BIN` if set, else built here from the main workspace
//! (`cargo build --release --bin netmesh`).
//!
//! ```text
//! cargo test --release --manifest-path tools/differential/Cargo.toml --test netmesh_tool
//! ```

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// One run at a time: refnode's NetAdapter picks its port by binding and closing a
/// socket before the adapter binds it, and a parallel run's socket can take it between.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

const EVENTS: u64 = 20_000;
const REPLIES: u64 = 5_000;
const PSK: &str = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";
const LIMIT: Duration = Duration::from_secs(60);
/// The netmesh side's id in the mesh prologue.
const NETMESH_ID: u64 = 7;
/// The seed of the MeshNode's identity (its wire id follows from it).
const MESH_SEED: &str = "42";

fn netmesh_bin() -> PathBuf {
    if let Ok(path) = std::env::var("NETMESH_BIN") {
        return PathBuf::from(path);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--bin", "netmesh"])
        .current_dir(&root)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building netmesh failed");
    root.join("target/release/netmesh")
}

fn refnode() -> Command {
    Command::new(env!("CARGO_BIN_EXE_refnode"))
}

/// A child killed on drop; its stdout read line by line on a thread.
struct Proc {
    child: Child,
    what: &'static str,
    lines: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Proc {
    fn spawn(mut command: Command, what: &'static str) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let (etx, stderr) = mpsc::channel();
        let mut err = child.stderr.take().expect("piped");
        thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            let _ = etx.send(text);
        });
        Self {
            child,
            what,
            lines,
            stderr,
            seen: Vec::new(),
        }
    }

    /// The rest of the first stdout line starting with `prefix`.
    fn line_after(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.trim().to_owned();
                    }
                }
                Err(_) => panic!("{}: no '{prefix}' line; saw {:?}", self.what, self.seen),
            }
        }
    }

    /// Waits for exit; returns (success, last stdout line, stderr).
    fn finish(mut self) -> (bool, String, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(
                start.elapsed() < LIMIT,
                "{}: still running after {LIMIT:?}",
                self.what
            );
            thread::sleep(Duration::from_millis(20));
        };
        let rest: Vec<String> = self.lines.iter().collect();
        let last = rest
            .last()
            .or(self.seen.last())
            .cloned()
            .unwrap_or_default();
        let stderr = self.stderr.recv().unwrap_or_default();
        (status.success(), last, stderr)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A number field of a one-line JSON object (no nesting needed here).
fn field(json: &str, name: &str) -> u64 {
    let key = format!("\"{name}\":");
    let at = json
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {json}"))
        + key.len();
    json[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a whole number in {json}"))
}

fn assert_clean(json: &str, events: u64, what: &str) {
    assert_eq!(field(json, "events"), events, "{what}: {json}");
    for name in ["lost", "duplicates", "out_of_order", "corrupt"] {
        assert_eq!(field(json, name), 0, "{what}: {name}: {json}");
    }
}

fn mesh_wire_id() -> String {
    let out = refnode()
        .args(["mesh-id", MESH_SEED])
        .output()
        .expect("refnode mesh-id");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `netmesh listen` (replying) with `refnode send` of `kind`.
fn netmesh_listens(kind: &str) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let netmesh = netmesh_bin();
    let dir = std::env::temp_dir().join(format!("netmesh-vs-{kind}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let key = dir.join("listener.key");
    let out = Command::new(&netmesh)
        .arg("keygen")
        .arg("--out")
        .arg(&key)
        .output()
        .expect("keygen");
    assert!(out.status.success(), "keygen: {out:?}");
    let public = String::from_utf8_lossy(&out.stdout).trim().to_owned();

    let mut listen = Command::new(&netmesh);
    listen
        .args([
            "listen",
            "--bind",
            "127.0.0.1:0",
            "--psk",
            PSK,
            "--json",
            "--key",
        ])
        .arg(&key)
        .args([
            "--expect",
            &EVENTS.to_string(),
            "--reply",
            &REPLIES.to_string(),
        ]);
    let mut send = refnode();
    send.args(["send", "--kind", kind, "--psk", PSK, "--peer-key", &public])
        .args(["--events", &EVENTS.to_string(), "--streams", "2"])
        .args(["--expect-reply", &REPLIES.to_string()]);
    if kind == "mesh" {
        listen.args([
            "--node-id",
            &NETMESH_ID.to_string(),
            "--peer-id",
            &mesh_wire_id(),
        ]);
        send.args(["--seed", MESH_SEED, "--peer-id", &NETMESH_ID.to_string()]);
    }
    let mut listener = Proc::spawn(listen, "netmesh listen");
    let addr = listener.line_after("listening on ");
    send.args(["--to", &addr]);
    let sender = Proc::spawn(send, "refnode send");
    let (sent_ok, sent, sent_err) = sender.finish();
    let (heard_ok, heard, heard_err) = listener.finish();
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("{kind}: refnode send: {sent}\n{kind}: netmesh listen: {heard}");
    assert!(heard_ok, "netmesh listen: {heard}\n{heard_err}");
    assert_clean(&heard, EVENTS, "netmesh listen");
    assert!(sent_ok, "refnode send: {sent}\n{sent_err}");
    assert_clean(&sent, REPLIES, "refnode send (the replies)");
}

/// `refnode listen` (replying) of `kind` with `netmesh send` of `events` of `size` bytes.
fn net_mesh_listens(kind: &str) {
    net_mesh_listens_to(kind, EVENTS, 64);
}

fn net_mesh_listens_to(kind: &str, events: u64, size: usize) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let netmesh = netmesh_bin();
    let mut listen = refnode();
    listen.args(["listen", "--kind", kind, "--psk", PSK]).args([
        "--expect",
        &events.to_string(),
        "--reply",
        &REPLIES.to_string(),
    ]);
    if kind == "mesh" {
        listen.args(["--seed", MESH_SEED, "--peer-id", &NETMESH_ID.to_string()]);
    }
    let mut listener = Proc::spawn(listen, "refnode listen");
    let addr = listener.line_after("listening on ");
    let public = listener.line_after("public key ");
    let mut send = Command::new(&netmesh);
    send.args([
        "send",
        "--to",
        &addr,
        "--peer-key",
        &public,
        "--psk",
        PSK,
        "--json",
    ])
    .args(["--events", &events.to_string(), "--streams", "2"])
    .args(["--size", &size.to_string()]);
    if kind == "mesh" {
        let wire_id = listener.line_after("node id ");
        send.args(["--node-id", &NETMESH_ID.to_string(), "--peer-id", &wire_id]);
    }
    let sender = Proc::spawn(send, "netmesh send");
    let (sent_ok, sent, sent_err) = sender.finish();
    let (heard_ok, heard, heard_err) = listener.finish();
    eprintln!("{kind}: netmesh send: {sent}\n{kind}: refnode listen: {heard}");
    assert!(sent_ok, "netmesh send: {sent}\n{sent_err}");
    assert_eq!(field(&sent, "events"), events, "{sent}");
    assert_eq!(
        field(&sent, "replies"),
        REPLIES,
        "netmesh send heard the replies: {sent}"
    );
    for name in ["lost", "duplicates", "out_of_order", "corrupt"] {
        assert_eq!(field(&sent, name), 0, "netmesh send: {name}: {sent}");
    }
    assert!(heard_ok, "refnode listen: {heard}\n{heard_err}");
    assert_clean(&heard, events, "refnode listen");
}

#[test]
fn netmesh_listens_net_adapter_sends() {
    netmesh_listens("adapter");
}

#[test]
fn netmesh_listens_mesh_node_sends() {
    netmesh_listens("mesh");
}

#[test]
fn net_adapter_listens_netmesh_sends() {
    net_mesh_listens("adapter");
}

#[test]
fn mesh_node_listens_netmesh_sends() {
    net_mesh_listens("mesh");
}

/// More than a NetAdapter's default socket buffer holds: it grants no flow control, so
/// `netmesh send` paces towards it (`--pace`, 32 MB/s by default); unpaced, about half of
/// 100 000 events of 1 KiB were lost here.
#[test]
fn net_adapter_keeps_up_with_a_paced_netmesh_sender() {
    net_mesh_listens_to("adapter", 100_000, 1024);
    net_mesh_listens_to("mesh", 100_000, 1024);
}
