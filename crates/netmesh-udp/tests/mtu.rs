//! A GSO send whose segments are longer than the path MTU is refused by the kernel
//! (EMSGSIZE); the socket then sends those datagrams one by one, and IP fragments them.
//!
//! The test makes a network namespace of its own whose loopback has a 1500-byte MTU and
//! runs itself inside it (needs root and iproute2; skipped with a message otherwise).
//! Traffic stays on that namespace's 127.0.0.1; the namespace is removed afterwards.

// Helpers of the tests unwrap: a failure is a failed test with a clear location.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use netmesh_udp::{BatchSocket, RecvBatch, SocketOptions};

const INSIDE: &str = "NETMESH_UDP_TEST_IN_NETNS";

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .output()
        .is_ok_and(|out| out.status.success())
}

/// Inside the namespace: 8 KiB datagrams over a 1500-byte-MTU loopback, sent as GSO
/// runs, all arrive whole.
fn inside() {
    let a = BatchSocket::bind("127.0.0.1:0".parse().unwrap(), SocketOptions::default()).unwrap();
    let b = BatchSocket::bind("127.0.0.1:0".parse().unwrap(), SocketOptions::default()).unwrap();
    let packets: Vec<Bytes> = (0..14u8).map(|i| Bytes::from(vec![i; 8192])).collect();
    let mut scratch = Vec::new();
    let calls = a
        .send(
            b.local_addr(),
            &packets,
            &mut scratch,
            Duration::from_secs(5),
        )
        .unwrap();
    // The first run of 7 refused as GSO and sent one by one, the other 7 (GSO no longer
    // tried for that size) in one sendmmsg.
    assert_eq!(calls, 7 + 1);
    let mut batch = RecvBatch::new(&b);
    let mut got = Vec::new();
    while got.len() < packets.len() {
        assert!(
            b.recv(&mut batch, Some(Duration::from_secs(5))).unwrap() > 0,
            "lost"
        );
        while let Some((_, datagram)) = batch.next_datagram() {
            got.push(datagram.freeze());
        }
    }
    assert_eq!(got, packets);
    // Later packets that long skip GSO at once and go out in one sendmmsg.
    let calls = a
        .send(
            b.local_addr(),
            &packets[..7],
            &mut scratch,
            Duration::from_secs(5),
        )
        .unwrap();
    assert_eq!(calls, 1);
    let mut again = 0;
    while again < 7 {
        assert!(
            b.recv(&mut batch, Some(Duration::from_secs(5))).unwrap() > 0,
            "lost"
        );
        while let Some((_, datagram)) = batch.next_datagram() {
            assert_eq!(datagram.len(), 8192);
            again += 1;
        }
    }
}

#[test]
fn gso_refused_for_segments_over_the_mtu_falls_back_to_single_datagrams() {
    if std::env::var_os(INSIDE).is_some() {
        inside();
        return;
    }
    let namespace = format!("netmesh-udp-mtu-{}", std::process::id());
    if !ip(&["netns", "add", &namespace]) {
        println!("skipped: cannot create a network namespace (needs root and iproute2)");
        return;
    }
    let configured = ip(&["-n", &namespace, "link", "set", "lo", "up", "mtu", "1500"]);
    let status = configured.then(|| {
        Command::new("ip")
            .args(["netns", "exec", &namespace])
            .arg(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "gso_refused_for_segments_over_the_mtu_falls_back_to_single_datagrams",
                "--nocapture",
            ])
            .env(INSIDE, "1")
            .status()
            .unwrap()
    });
    ip(&["netns", "del", &namespace]);
    assert!(configured, "cannot configure the namespace's loopback");
    assert!(
        status.unwrap().success(),
        "the test failed inside the namespace"
    );
}
