//! `netmesh send` to `netmesh listen` as two processes on 127.0.0.1, directly and through
//! the impairment relay; every event checked by the listener (its `--json` line).
//!
//! `NETMESH_TEST_EVENTS` sets the events of the direct runs (default 1 000 000).

#[path = "support/process.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use netmesh_cli::relay::{Impairment, Relay};
use support::*;

const LIMIT: Duration = Duration::from_secs(240);

/// The runs share two cores: one at a time, so that none starves the others.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn transfer(
    events: u64,
    reliable: bool,
    extra_send: &[&str],
) -> (serde_json::Value, serde_json::Value) {
    let dir = TempDir::new("transfer");
    let (key, public) = keygen(&dir, "listener.key");
    let expect = events.to_string();
    let (listener, addr) = listen(&key, &psk(7), "127.0.0.1:0", &["--expect", &expect]);
    let mut args = vec!["--events", &expect, "--streams", "4"];
    if reliable {
        args.push("--reliable");
    }
    args.extend_from_slice(extra_send);
    let sent = run(send_command(addr, &public, &psk(7), &args), "send", LIMIT);
    let heard = listener.finish(LIMIT);
    assert!(sent.status.success(), "send: {sent:?}");
    assert!(heard.status.success(), "listen: {heard:?}");
    (sent.json(), heard.json())
}

#[test]
fn a_million_reliable_events_arrive_once_in_order() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let events = events_or(1_000_000);
    let (sent, heard) = transfer(events, true, &[]);
    assert_eq!(sent["events"], events, "{sent}");
    assert_eq!(sent["lost"], 0, "{sent}");
    assert_clean(&heard, events);
}

#[test]
fn a_million_fire_and_forget_events_arrive_checked() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let events = events_or(1_000_000);
    let (sent, heard) = transfer(events, false, &[]);
    assert_eq!(sent["events"], events, "{sent}");
    // On loopback with flow control nothing should be lost; the listener waited for all.
    assert_clean(&heard, events);
}

#[test]
fn reliable_streams_lose_nothing_through_a_lossy_relay() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let events: u64 = 200_000;
    let dir = TempDir::new("relay");
    let (key, public) = keygen(&dir, "listener.key");
    let expect = events.to_string();
    let (listener, addr) = listen(
        &key,
        &psk(9),
        "127.0.0.1:0",
        &["--expect", &expect, "--timeout", "20"],
    );
    let localhost: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let relay = Relay::start(
        localhost,
        addr,
        Impairment {
            drop: 0.02,
            duplicate: 0.01,
            reorder: 0.05,
            seed: 14,
        },
    )
    .unwrap();
    let send = send_command(
        relay.local_addr(),
        &public,
        &psk(9),
        &[
            "--events",
            &expect,
            "--streams",
            "8",
            "--reliable",
            "--timeout",
            "20",
        ],
    );
    let sent = run(send, "send", LIMIT);
    let heard = listener.finish(LIMIT);
    let counts = relay.counts();
    assert!(sent.status.success(), "send: {sent:?}\nrelay: {counts:?}");
    assert!(
        heard.status.success(),
        "listen: {heard:?}\nrelay: {counts:?}"
    );
    let (sent, heard) = (sent.json(), heard.json());
    assert_clean(&heard, events);
    assert_eq!(sent["lost"], 0, "{sent}");
    // The relay did impair: datagrams were dropped and the sender made up for them.
    // (2% drop, 1% duplication, 5% reordering of every datagram, control included.)
    assert!(
        counts.dropped * 100 >= counts.received
            && counts.duplicated * 200 >= counts.received
            && counts.reordered * 40 >= counts.received,
        "{counts:?}"
    );
    assert!(sent["retransmits"].as_u64().unwrap_or(0) > 0, "{sent}");
    eprintln!("relay: {counts:?}\nsend: {sent}\nlisten: {heard}");
}

#[test]
fn fire_and_forget_losses_through_a_lossy_relay_are_counted() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let events: u64 = 100_000;
    let dir = TempDir::new("relay-loose");
    let (key, public) = keygen(&dir, "listener.key");
    let expect = events.to_string();
    let (listener, addr) = listen(
        &key,
        &psk(10),
        "127.0.0.1:0",
        &["--expect", &expect, "--timeout", "2"],
    );
    let localhost: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let impairment = Impairment {
        drop: 0.02,
        duplicate: 0.01,
        reorder: 0.05,
        seed: 15,
    };
    let relay = Relay::start(localhost, addr, impairment).unwrap();
    let send = send_command(
        relay.local_addr(),
        &public,
        &psk(10),
        &["--events", &expect, "--streams", "2", "--timeout", "20"],
    );
    let sent = run(send, "send", LIMIT);
    let heard = listener.finish(LIMIT);
    let counts = relay.counts();
    assert!(sent.status.success(), "send: {sent:?}");
    // Losses on fire-and-forget streams break no promise: status 0, but counted.
    assert!(
        heard.status.success(),
        "listen: {heard:?}\nrelay: {counts:?}"
    );
    let report = heard.json();
    let field = |name: &str| report[name].as_u64().unwrap();
    assert!(field("lost") > 0, "{report}");
    assert_eq!(field("events") + field("lost"), events, "{report}");
    assert_eq!((field("duplicates"), field("corrupt")), (0, 0), "{report}");
    // Duplicated datagrams are refused by the replay window, and counted as rejected.
    assert!(field("rejected") > 0, "{report}");
    eprintln!("relay: {counts:?}\nlisten: {report}");
}
