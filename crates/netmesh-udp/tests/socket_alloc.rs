//! Heap allocations of the batched socket layer in steady state: sending runs of packets
//! (GSO) and receiving them (recvmmsg, GRO), counted by a global allocator on this
//! test's thread only.

// Helpers of the tests unwrap: a failure is a failed test with a clear location.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]
// A global allocator is the only way to observe heap use; it needs unsafe.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use bytes::Bytes;
use netmesh_udp::{BatchSocket, RecvBatch, SocketOptions};

struct Counting;

thread_local! {
    static ENABLED: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn record() {
    let _ = ENABLED.try_with(|enabled| {
        if enabled.get() {
            ALLOCATIONS.with(|n| n.set(n.get() + 1));
        }
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches
// only const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn counted<R>(f: impl FnOnce() -> R) -> (R, u64) {
    ALLOCATIONS.with(|n| n.set(0));
    ENABLED.with(|e| e.set(true));
    let result = f();
    ENABLED.with(|e| e.set(false));
    (result, ALLOCATIONS.with(Cell::get))
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
    let (received, allocations) =
        counted(|| exchange(&a, &b, &mut batch, &packets, &mut scratch, 500));
    (
        received,
        allocations,
        batch.buffers_allocated() - buffers_before,
    )
}

#[test]
fn no_allocation_per_datagram_with_gso() {
    let (received, allocations, buffers) = steady_state(SocketOptions::default(), 8192, 7);
    println!("GSO/GRO on: {received} datagrams, {allocations} allocations, {buffers} new buffers");
    assert_eq!(received, 3500);
    assert_eq!(allocations, 0);
    assert_eq!(buffers, 0);
}

#[test]
fn no_allocation_per_datagram_without_gso() {
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
fn a_held_datagram_costs_one_buffer_per_receive_call_not_per_datagram() {
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
