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
    eprintln!("reliable: listen {heard}");
}

#[test]
fn a_million_fire_and_forget_events_arrive_checked() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let events = events_or(1_000_000);
    let (sent, heard) = transfer(events, false, &[]);
    assert_eq!(sent["events"], events, "{sent}");
    // On loopback with flow control nothing should be lost; the listener waited for all.
    assert_clean(&heard, events);
    eprintln!("fire-and-forget: listen {heard}");
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

/// Garbage, truncated packets, forged packets and forged handshakes sprayed at a
/// listener while a real sender streams to it: the stream is unaffected, and every bad
/// datagram is counted as rejected.
#[test]
fn a_sprayed_listener_keeps_its_stream_and_counts_every_bad_datagram() {
    use netmesh_wire::{NetHeader, PacketFlags, HEADER_SIZE, TAG_SIZE};
    use std::net::UdpSocket;

    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let events: u64 = 300_000;
    let dir = TempDir::new("spray");
    let (key, public) = keygen(&dir, "listener.key");
    let expect = events.to_string();
    let (listener, addr) = listen(&key, &psk(11), "127.0.0.1:0", &["--expect", &expect]);

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sprayer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut state = 0x5eed_u64;
            let mut next = move || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            };
            // For the first 300 ms of the stream (it lasts longer): the sprayer is done
            // well before the listener exits, so every datagram it sent is counted.
            let start = std::time::Instant::now();
            let mut sent = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed)
                && start.elapsed() < Duration::from_millis(300)
            {
                let kind = next() % 4;
                let len = 1 + usize::try_from(next() % 1400).unwrap();
                let datagram: Vec<u8> = match kind {
                    // Random bytes.
                    0 => (0..len).map(|_| next().to_le_bytes()[0]).collect(),
                    // A header alone, cut short.
                    1 => {
                        let header = NetHeader::new(next(), 0, 0, [0; 12], 0, 0, PacketFlags::NONE);
                        header.to_bytes()[..len.min(HEADER_SIZE - 1)].to_vec()
                    }
                    // A well-formed packet of a made-up session with a made-up tag.
                    2 => {
                        let payload = 32u16;
                        let header = NetHeader::new(
                            next(),
                            1,
                            next(),
                            [1; 12],
                            payload,
                            1,
                            PacketFlags::NONE,
                        );
                        let mut packet = header.to_bytes().to_vec();
                        packet.extend(
                            (0..usize::from(payload) + TAG_SIZE).map(|_| next().to_le_bytes()[0]),
                        );
                        packet
                    }
                    // A forged handshake initiation (rate-limited or refused).
                    _ => {
                        let header = NetHeader::handshake(48);
                        let mut packet = header.to_bytes().to_vec();
                        packet.extend((0..48).map(|_| next().to_le_bytes()[0]));
                        packet
                    }
                };
                if socket.send_to(&datagram, addr).is_ok() {
                    sent += 1;
                }
                if sent % 16 == 0 {
                    std::thread::sleep(Duration::from_micros(100));
                }
            }
            sent
        })
    };
    let send = send_command(
        addr,
        &public,
        &psk(11),
        &["--events", &expect, "--streams", "4", "--reliable"],
    );
    let sent = run(send, "send", LIMIT);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sprayed = sprayer.join().unwrap();
    let heard = listener.finish(LIMIT);
    assert!(sent.status.success(), "send: {sent:?}");
    assert!(heard.status.success(), "listen: {heard:?}");
    let report = heard.json();
    assert_clean(&report, events);
    assert!(sprayed > 1000, "only {sprayed} sprayed");
    assert_eq!(report["rejected"].as_u64().unwrap(), sprayed, "{report}");
    eprintln!("sprayed {sprayed}: {report}");
}

/// The same through `netmesh relay` as a third process (its counts as its last line).
#[test]
fn reliable_streams_lose_nothing_through_the_relay_command() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let events: u64 = 50_000;
    let dir = TempDir::new("relay-cmd");
    let (key, public) = keygen(&dir, "listener.key");
    let expect = events.to_string();
    let (listener, addr) = listen(&key, &psk(12), "127.0.0.1:0", &["--expect", &expect]);
    let mut relay = netmesh();
    relay
        .args([
            "relay",
            "--listen",
            "127.0.0.1:0",
            "--to",
            &addr.to_string(),
        ])
        .args([
            "--drop",
            "0.02",
            "--dup",
            "0.01",
            "--reorder",
            "0.05",
            "--seed",
            "3",
        ])
        .args(["--duration", "5"]);
    let mut relay = Running::spawn(relay, "relay");
    let relay_addr = relay.bound_addr();
    let send = send_command(
        relay_addr,
        &public,
        &psk(12),
        &["--events", &expect, "--streams", "2", "--reliable"],
    );
    let sent = run(send, "send", LIMIT);
    let heard = listener.finish(LIMIT);
    assert!(sent.status.success(), "send: {sent:?}");
    assert!(heard.status.success(), "listen: {heard:?}");
    assert_clean(&heard.json(), events);
    let counts = relay.finish(LIMIT).json();
    assert!(counts["dropped"].as_u64().unwrap() > 0, "{counts}");
    assert!(counts["forwarded"].as_u64().unwrap() > 400, "{counts}");
}
