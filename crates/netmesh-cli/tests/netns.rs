//! Two machines: two network namespaces joined by a veth pair, created here and removed
//! after; `netmesh listen` in one, `netmesh send` in the other. The addresses
//! (10.77.0.1/24 and 10.77.0.2/24) exist only inside those namespaces.
//!
//! Needs root and `ip` (iproute2); where either is missing or the kernel refuses a
//! namespace, the test says so on stderr and passes without running.

#[path = "support/process.rs"]
mod support;

use std::process::Command;
use std::time::Duration;

use support::*;

const LIMIT: Duration = Duration::from_secs(120);

/// The two namespaces; deleted on drop (which deletes the veth pair with them).
struct Namespaces {
    names: [String; 2],
}

impl Namespaces {
    /// Creates and wires the namespaces, or says why it cannot.
    fn create() -> Result<Self, String> {
        let id = std::process::id() % 100_000;
        let namespaces = Self {
            names: [format!("netmesh-a-{id}"), format!("netmesh-b-{id}")],
        };
        // Deleted on any early return from here on (drop).
        let [a, b] = &namespaces.names;
        let (veth_a, veth_b) = (format!("nmva{id}"), format!("nmvb{id}"));
        ip(&["netns", "add", a])?;
        ip(&["netns", "add", b])?;
        ip(&[
            "-n", a, "link", "add", &veth_a, "type", "veth", "peer", "name", &veth_b, "netns", b,
        ])?;
        for (ns, dev, addr) in [(a, &veth_a, "10.77.0.1/24"), (b, &veth_b, "10.77.0.2/24")] {
            ip(&["-n", ns, "addr", "add", addr, "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(namespaces)
    }

    /// `netmesh` inside namespace `which`.
    fn netmesh(&self, which: usize) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.names[which]])
            .arg(env!("CARGO_BIN_EXE_netmesh"));
        command
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|error| format!("cannot run ip: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

#[test]
fn listen_and_send_in_two_namespaces_over_a_veth_pair() {
    let namespaces = match Namespaces::create() {
        Ok(namespaces) => namespaces,
        Err(why) => {
            eprintln!("SKIPPED: two network namespaces are not available here: {why}");
            return;
        }
    };
    let dir = TempDir::new("netns");
    let (key, public) = keygen(&dir, "listener.key");
    let events: u64 = 200_000;
    let expect = events.to_string();
    for reliable in [true, false] {
        let mut command = namespaces.netmesh(0);
        command
            .args([
                "listen",
                "--bind",
                "10.77.0.1:0",
                "--psk",
                &psk(5),
                "--json",
            ])
            .args(["--expect", &expect, "--key"])
            .arg(&key);
        let mut listener = Running::spawn(command, "listen in namespace a");
        let addr = listener.bound_addr();
        assert_eq!(addr.ip().to_string(), "10.77.0.1");

        let mut command = namespaces.netmesh(1);
        command
            .args(["send", "--to", &addr.to_string(), "--peer-key", &public])
            .args([
                "--psk",
                &psk(5),
                "--json",
                "--events",
                &expect,
                "--streams",
                "4",
            ]);
        if reliable {
            command.arg("--reliable");
        }
        let sent = run(command, "send in namespace b", LIMIT);
        let heard = listener.finish(LIMIT);
        assert!(sent.status.success(), "send: {sent:?}");
        assert!(heard.status.success(), "listen: {heard:?}");
        assert_clean(&heard.json(), events);
        eprintln!("reliable {reliable}: {}", heard.json());
    }
}
