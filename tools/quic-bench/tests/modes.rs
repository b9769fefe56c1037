//! The tool end to end on 127.0.0.1, small runs: every mode delivers and checks every
//! event and says so in its JSON line and exit status; loss is reported, not hidden.

use std::process::Command;

/// Runs the tool, returns its exit success and its last line of stdout (the JSON line).
fn run(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_quic-bench"))
        .args(args)
        .arg("--json")
        .output()
        .expect("the tool runs");
    let stdout = String::from_utf8(output.stdout).expect("utf-8 output");
    let last = stdout.lines().last().unwrap_or_default().to_string();
    assert!(
        last.starts_with('{') && last.ends_with('}'),
        "no JSON line: {stdout}"
    );
    (output.status.success(), last)
}

fn field(json: &str, key: &str) -> String {
    let start = json
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("{key} missing in {json}"));
    json[start + key.len() + 3..]
        .split([',', '}'])
        .next()
        .unwrap_or_default()
        .to_string()
}

fn assert_clean(json: &str, events: u64) {
    assert_eq!(field(json, "events"), events.to_string(), "{json}");
    for key in ["lost", "duplicates", "out_of_order", "corrupt", "rejected"] {
        assert_eq!(field(json, key), "0", "{key} in {json}");
    }
    assert!(field(json, "events_per_s").parse::<f64>().expect("a rate") > 0.0);
}

#[test]
fn quic_one_stream_64_bytes() {
    let (ok, json) = run(&["quic", "--events", "200000", "--size", "64"]);
    assert!(ok, "{json}");
    assert_clean(&json, 200_000);
    assert_eq!(field(&json, "cipher"), "\"TLS13_CHACHA20_POLY1305_SHA256\"");
    assert!(field(&json, "sender_cpu_s").parse::<f64>().is_ok());
}

/// Events that straddle QUIC chunks (1000 B does not divide any chunk size) on three
/// streams, one of which gets one event fewer.
#[test]
fn quic_three_streams_odd_size() {
    let (ok, json) = run(&[
        "quic",
        "--events",
        "20000",
        "--size",
        "1000",
        "--streams",
        "3",
    ]);
    assert!(ok, "{json}");
    assert_clean(&json, 20_000);
}

#[test]
fn udp_64_and_1024_bytes() {
    for (size, per_datagram, bytes) in [("64", "119", "8176"), ("1024", "7", "7280")] {
        let (ok, json) = run(&["udp", "--events", "100001", "--size", size]);
        assert!(ok, "{json}");
        assert_clean(&json, 100_001);
        assert_eq!(field(&json, "events_per_datagram"), per_datagram);
        assert_eq!(field(&json, "datagram_bytes"), bytes);
    }
}

/// With a window far beyond a tiny socket buffer datagrams are dropped by the kernel:
/// the run ends, counts them as lost and fails.
#[test]
fn udp_loss_is_counted() {
    let (ok, json) = run(&[
        "udp", "--events", "2000000", "--window", "100000", "--buffer", "4096",
    ]);
    assert!(!ok, "{json}");
    let lost: u64 = field(&json, "lost").parse().expect("a count");
    let events: u64 = field(&json, "events").parse().expect("a count");
    assert!(lost > 0, "{json}");
    assert_eq!(lost + events, 2_000_000, "{json}");
}
