//! The `netmesh` binary as a user meets it: keys, bad flags, a wrong PSK, `bench`,
//! `listen --reply`.

#[path = "support/process.rs"]
mod support;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use support::*;

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn keygen_writes_a_0600_hex_key_and_pubkey_reads_it_back() {
    let dir = TempDir::new("keys");
    let (path, public) = keygen(&dir, "node.key");
    assert_eq!(public.len(), 64, "{public:?}");
    assert!(public.bytes().all(|b| b.is_ascii_hexdigit()), "{public}");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let secret = std::fs::read_to_string(&path).unwrap();
    assert_eq!(secret.trim().len(), 64);
    assert!(
        !secret.contains(&public),
        "the file holds the secret, not the public key"
    );

    let mut pubkey = netmesh();
    pubkey.arg("pubkey").arg("--key").arg(&path);
    let done = run(pubkey, "pubkey", LIMIT);
    assert!(done.status.success(), "{done:?}");
    assert_eq!(done.stdout.trim(), public);

    let (_, other) = keygen(&dir, "other.key");
    assert_ne!(other, public, "two keygens, two keys");
}

/// Every bad command line: exit status 2, exactly one line on stderr, nothing on stdout.
#[test]
fn bad_command_lines_give_one_clear_error_line() {
    let dir = TempDir::new("flags");
    let (key, _public) = keygen(&dir, "k");
    let key = key.to_str().unwrap().to_owned();
    let psk = psk(1);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["frobnicate"], "frobnicate"),
        (vec!["bench", "--size", "8"], "--size"),
        (vec!["bench", "--events", "lots"], "--events"),
        (vec!["bench", "--senders", "0"], "--senders"),
        (vec!["send", "--to", "127.0.0.1:1"], "required"),
        (
            vec![
                "listen",
                "--bind",
                "localhost",
                "--key",
                &key,
                "--psk",
                &psk,
            ],
            "--bind",
        ),
        (
            vec![
                "listen",
                "--bind",
                "127.0.0.1:0",
                "--key",
                &key,
                "--psk",
                "abcd",
            ],
            "--psk",
        ),
        (
            vec![
                "listen",
                "--bind",
                "127.0.0.1:0",
                "--key",
                &key,
                "--psk",
                &psk,
                "--node-id",
                "1",
            ],
            "--peer-id",
        ),
        (
            vec![
                "send",
                "--to",
                "127.0.0.1:1",
                "--peer-key",
                "xyz",
                "--psk",
                &psk,
                "--events",
                "1",
            ],
            "--peer-key",
        ),
    ];
    for (args, mentions) in cases {
        let mut command = netmesh();
        command.args(&args);
        let done = run(command, "bad flags", LIMIT);
        assert_eq!(done.code(), Some(2), "{args:?}: {done:?}");
        assert_eq!(
            done.stderr.lines().count(),
            1,
            "{args:?}: {:?}",
            done.stderr
        );
        assert!(
            done.stderr.starts_with("netmesh: error: "),
            "{}",
            done.stderr
        );
        assert!(done.stderr.contains(mentions), "{args:?}: {}", done.stderr);
        assert!(done.stdout.is_empty(), "{args:?}: {}", done.stdout);
    }

    // A key file that is not there: the run cannot start (status 3), one line.
    let mut command = netmesh();
    command.args(["pubkey", "--key"]).arg(dir.join("missing"));
    let done = run(command, "pubkey", LIMIT);
    assert_eq!(done.code(), Some(3), "{done:?}");
    assert_eq!(done.stderr.lines().count(), 1, "{:?}", done.stderr);
    assert!(done.stderr.contains("missing"), "{}", done.stderr);
}

#[test]
fn a_wrong_psk_is_refused_and_counted() {
    let dir = TempDir::new("psk");
    let (key, public) = keygen(&dir, "listener.key");
    let (listener, addr) = listen(
        &key,
        &psk(1),
        "127.0.0.1:0",
        &["--expect", "10", "--timeout", "3"],
    );
    let send = send_command(
        addr,
        &public,
        &psk(2),
        &["--events", "10", "--timeout", "2"],
    );
    let sent = run(send, "send", LIMIT);
    assert_eq!(
        sent.code(),
        Some(3),
        "the handshake cannot finish: {sent:?}"
    );
    assert_eq!(sent.stderr.lines().count(), 1, "{:?}", sent.stderr);
    assert!(sent.stderr.contains("handshake"), "{}", sent.stderr);

    let heard = listener.finish(LIMIT);
    assert_eq!(
        heard.code(),
        Some(1),
        "nothing arrived of 10 expected: {heard:?}"
    );
    let report = heard.json();
    assert_eq!(report["events"], 0, "{report}");
    assert_eq!(report["lost"], 10, "{report}");
    assert!(report["rejected"].as_u64().unwrap() >= 1, "{report}");
}

#[test]
fn bench_moves_every_event_and_reports_it() {
    for extra in [&[][..], &["--reliable", "--size", "1024", "--senders", "3"]] {
        let mut command = netmesh();
        command
            .args(["bench", "--events", "200000", "--json"])
            .args(extra);
        let done = run(command, "bench", LIMIT);
        assert!(done.status.success(), "{extra:?}: {done:?}");
        assert_clean(&done.json(), 200_000);
    }
}

#[test]
fn listen_replies_to_each_sender() {
    let dir = TempDir::new("reply");
    let (key, public) = keygen(&dir, "listener.key");
    let (listener, addr) = listen(
        &key,
        &psk(3),
        "127.0.0.1:0",
        &[
            "--expect",
            "5000",
            "--reply",
            "3000",
            "--streams",
            "2",
            "--reliable",
        ],
    );
    let send = send_command(addr, &public, &psk(3), &["--events", "5000", "--reliable"]);
    let sent = run(send, "send", LIMIT);
    assert!(sent.status.success(), "{sent:?}");
    let report = sent.json();
    assert_eq!(report["events"], 5000, "{report}");
    assert_eq!(report["replies"], 3000, "{report}");
    for name in ["lost", "duplicates", "out_of_order", "corrupt"] {
        assert_eq!(report[name], 0, "{name}: {report}");
    }
    let heard = listener.finish(LIMIT);
    assert!(heard.status.success(), "{heard:?}");
    assert_clean(&heard.json(), 5000);
}

/// Three senders at once to one listener: each numbers its events from 0, so loss,
/// duplication and order are judged per sender, and `--expect` counts across them.
#[test]
fn one_listener_serves_three_senders_at_once() {
    let dir = TempDir::new("many");
    let (key, public) = keygen(&dir, "listener.key");
    let (listener, addr) = listen(&key, &psk(4), "127.0.0.1:0", &["--expect", "150000"]);
    let senders: Vec<_> = [&["--reliable"][..], &[], &["--reliable", "--size", "300"]]
        .into_iter()
        .map(|extra| {
            let mut args = vec!["--events", "50000", "--streams", "3"];
            args.extend_from_slice(extra);
            Running::spawn(send_command(addr, &public, &psk(4), &args), "send")
        })
        .collect();
    for sender in senders {
        let sent = sender.finish(LIMIT);
        assert!(sent.status.success(), "{sent:?}");
    }
    let heard = listener.finish(LIMIT);
    assert!(heard.status.success(), "{heard:?}");
    let report = heard.json();
    assert_clean(&report, 150_000);
    assert_eq!(report["peers"], 3, "{report}");
}
