//! Heap allocations per datagram in steady state.
//!
//! The socket layer alone (GSO sends, recvmmsg/GRO receives, cutting), counted on the
//! test's thread. Two endpoints, fire-and-forget: counted on the sending application
//! thread (the send path: session build, GSO batching, sendmsg) and on every other
//! thread of the process (the receive path: recvmmsg, cutting, opening, delivery to a
//! handler; plus the timer thread's heartbeats and credit). Events are made before
//! counting starts; the handler only counts them. The tests run one at a time, so that
//! one's set-up is not counted in another's process-wide figure.

// Helpers of the tests unwrap: a failure is a failed test with a clear location.
#![allow(
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss
)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use netmesh_session::{Prologue, Psk, Responder, StaticKeypair};
use netmesh_testkit::alloc::{count, count_all_threads, CountingAllocator};
use netmesh_udp::{
    Accept, BatchSocket, Endpoint, EndpointConfig, Event, EventHandler, RecvBatch, SocketOptions,
};

/// One test at a time: the process-wide count must see one test's work only.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const RUN: usize = 4096;
const SIZE: usize = 64;

/// `runs` runs of `RUN` events, cut from one buffer.
fn make_runs(runs: usize) -> Vec<Vec<Bytes>> {
    let all = Bytes::from(vec![0x5a; RUN * SIZE]);
    (0..runs)
        .map(|_| {
            (0..RUN)
                .map(|k| all.slice(k * SIZE..(k + 1) * SIZE))
                .collect()
        })
        .collect()
}

fn wait_for(counter: &AtomicU64, value: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while counter.load(Ordering::Relaxed) < value {
        assert!(Instant::now() < deadline, "events did not all arrive");
        thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn endpoints_steady_state_allocations_per_datagram() {
    let _serial = serial();
    let keypair = StaticKeypair::generate().unwrap();
    let psk = Psk::new([9; 32]);
    let received = Arc::new(AtomicU64::new(0));
    let mut config = EndpointConfig::new("127.0.0.1:0".parse().unwrap());
    config.accept = Some(Accept {
        responder: Arc::new(Responder::new(&keypair, &psk)),
        prologue: Prologue::Empty,
    });
    let counter = Arc::clone(&received);
    config.on_event = Some(EventHandler::new(move |event| {
        if let Event::Delivery(delivery) = event {
            counter.fetch_add(delivery.event_count() as u64, Ordering::Relaxed);
        }
    }));
    let server = Endpoint::bind(config).unwrap();
    let client = Endpoint::bind(EndpointConfig::new("127.0.0.1:0".parse().unwrap())).unwrap();
    let peer = client
        .connect(
            server.local_addr(),
            &keypair.public_key(),
            &psk,
            &Prologue::Empty,
            Duration::from_secs(5),
        )
        .unwrap();

    let warm_up = make_runs(50);
    let measured = make_runs(400);
    for run in &warm_up {
        peer.send(0, run, false).unwrap();
    }
    wait_for(&received, (warm_up.len() * RUN) as u64);
    let before_in = server.stats().traffic.datagrams_in;
    let before_out = client.stats().traffic.datagrams_out;

    let (everywhere, _, on_sender) = count_all_threads(|| {
        let (on_sender, _, ()) = count(|| {
            for run in &measured {
                peer.send(0, run, false).unwrap();
            }
        });
        wait_for(&received, ((warm_up.len() + measured.len()) * RUN) as u64);
        on_sender
    });

    let datagrams_in = server.stats().traffic.datagrams_in - before_in;
    let datagrams_out = client.stats().traffic.datagrams_out - before_out;
    let elsewhere = everywhere - on_sender;
    println!(
        "{} events in {datagrams_out} datagrams sent, {datagrams_in} received; allocations: \
         {on_sender} on the sending thread ({:.4} per datagram), {elsewhere} on the other \
         threads ({:.4} per datagram received)",
        measured.len() * RUN,
        on_sender as f64 / datagrams_out as f64,
        elsewhere as f64 / datagrams_in as f64,
    );
    assert!(datagrams_out > 1_000);
    // The send path: nothing per datagram (a handful of pool refills at most).
    assert!(on_sender <= 8, "{on_sender} allocations on the send path");

    // The same events written in place (`send_with`): nothing per datagram either.
    let (in_place, _, ()) = count(|| {
        for _ in &measured {
            peer.send_with(0, RUN, SIZE, false, |_, event| event.fill(0x5a))
                .unwrap();
        }
    });
    wait_for(
        &received,
        ((warm_up.len() + 2 * measured.len()) * RUN) as u64,
    );
    assert!(
        in_place <= 8,
        "{in_place} allocations on the in-place send path"
    );
    // The receive path: at most one buffer refill per receive call of many datagrams,
    // never one per datagram: each datagram is a `BytesMut` cut off the batch buffer and
    // decrypted in place (measured: 0 allocations for 14 094 datagrams; a copy per
    // datagram would be about 2 each).
    assert!(
        elsewhere * 100 <= datagrams_in,
        "{elsewhere} allocations for {datagrams_in} datagrams received"
    );
}

/// Sends `rounds` runs of `run` packets of `size` bytes from `a` to `b` and receives
/// them all on this thread, dropping each datagram at once; returns the datagrams
/// received.
fn exchange(
    a: &BatchSocket,
    b: &BatchSocket,
    batch: &mut RecvBatch,
    packets: &[Bytes],
    scratch: &mut Vec<u8>,
    rounds: usize,
) -> usize {
    let mut received = 0;
    for _ in 0..rounds {
        a.send(b.local_addr(), packets, scratch, Duration::from_secs(5))
            .expect("send");
        let mut this_round = 0;
        while this_round < packets.len() {
            let filled = b.recv(batch, Some(Duration::from_secs(5))).expect("recv");
            assert!(filled > 0, "datagrams lost on loopback");
            while let Some((_, datagram)) = batch.next_datagram() {
                assert_eq!(datagram.len(), packets[0].len());
                this_round += 1;
            }
        }
        received += this_round;
    }
    received
}

fn steady_state(options: SocketOptions, size: usize, run: usize) -> (usize, u64, u64) {
    let a = BatchSocket::bind("127.0.0.1:0".parse().unwrap(), options).unwrap();
    let b = BatchSocket::bind("127.0.0.1:0".parse().unwrap(), options).unwrap();
    let mut batch = RecvBatch::new(&b);
    let packets: Vec<Bytes> = (0..run).map(|i| Bytes::from(vec![i as u8; size])).collect();
    let mut scratch = Vec::new();
    // Warm-up: the receive buffer, the GSO scratch and the kernel's state.
    exchange(&a, &b, &mut batch, &packets, &mut scratch, 20);
    let buffers_before = batch.buffers_allocated();
    let (allocations, _, received) =
        count(|| exchange(&a, &b, &mut batch, &packets, &mut scratch, 500));
    (
        received,
        allocations,
        batch.buffers_allocated() - buffers_before,
    )
}

#[test]
fn socket_no_allocation_per_datagram_with_gso() {
    let _serial = serial();
    let (received, allocations, buffers) = steady_state(SocketOptions::default(), 8192, 7);
    println!("GSO/GRO on: {received} datagrams, {allocations} allocations, {buffers} new buffers");
    assert_eq!(received, 3500);
    assert_eq!(allocations, 0);
    assert_eq!(buffers, 0);
}

#[test]
fn socket_no_allocation_per_datagram_without_gso() {
    let _serial = serial();
    let options = SocketOptions {
        gso: false,
        ..SocketOptions::default()
    };
    let (received, allocations, buffers) = steady_state(options, 1200, 32);
    println!("GSO off: {received} datagrams, {allocations} allocations, {buffers} new buffers");
    assert_eq!(received, 16_000);
    assert_eq!(allocations, 0);
    assert_eq!(buffers, 0);
}

#[test]
fn socket_a_held_datagram_costs_one_buffer_per_receive_call_not_per_datagram() {
    let _serial = serial();
    let a = BatchSocket::bind("127.0.0.1:0".parse().unwrap(), SocketOptions::default()).unwrap();
    let b = BatchSocket::bind("127.0.0.1:0".parse().unwrap(), SocketOptions::default()).unwrap();
    let mut batch = RecvBatch::new(&b);
    let packets: Vec<Bytes> = (0..32).map(|_| Bytes::from(vec![7; 1000])).collect();
    let mut scratch = Vec::new();
    let mut held = Vec::new();
    let before = batch.buffers_allocated();
    let mut calls = 0;
    for _ in 0..10 {
        a.send(
            b.local_addr(),
            &packets,
            &mut scratch,
            Duration::from_secs(5),
        )
        .unwrap();
        let mut got = 0;
        while got < packets.len() {
            let n = b.recv(&mut batch, Some(Duration::from_secs(2))).unwrap();
            assert!(
                n > 0,
                "round got {got} held {} info {:?}",
                held.len(),
                a.info()
            );
            calls += 1;
            while let Some((_, datagram)) = batch.next_datagram() {
                held.push(datagram);
                got += 1;
            }
        }
    }
    assert_eq!(held.len(), 320);
    assert!(held.iter().all(|d| d.iter().all(|&b| b == 7)));
    // Each call whose datagrams are still held needs a fresh buffer for the next call.
    let buffers = batch.buffers_allocated() - before;
    assert!(buffers <= calls, "{buffers} buffers for {calls} calls");
}
