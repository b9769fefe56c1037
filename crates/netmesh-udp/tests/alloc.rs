//! Heap allocations per datagram through two endpoints in steady state, fire-and-forget:
//! counted on the sending application thread (the send path: session build, GSO
//! batching, sendmsg) and on every other thread of the process (the receive path:
//! recvmmsg, cutting, opening, delivery to a handler; plus the timer thread's
//! heartbeats and credit). Events are made before counting starts; the handler only
//! counts them.

// A global allocator is the only way to observe heap use; it needs unsafe.
#![allow(unsafe_code)]
// Helpers of the tests unwrap: a failure is a failed test with a clear location.
#![allow(
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use netmesh_session::{Prologue, Psk, Responder, StaticKeypair};
use netmesh_udp::{Accept, Endpoint, EndpointConfig, Event, EventHandler};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALL: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static MINE: Cell<u64> = const { Cell::new(0) };
}

fn record() {
    if COUNTING.load(Ordering::Relaxed) {
        ALL.fetch_add(1, Ordering::Relaxed);
        let _ = MINE.try_with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches
// an atomic and a const-initialised thread-local, which never allocate.
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
fn steady_state_allocations_per_datagram() {
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

    MINE.with(|n| n.set(0));
    ALL.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::SeqCst);
    for run in &measured {
        peer.send(0, run, false).unwrap();
    }
    let on_sender = MINE.with(Cell::get);
    wait_for(&received, ((warm_up.len() + measured.len()) * RUN) as u64);
    COUNTING.store(false, Ordering::SeqCst);
    let everywhere = ALL.load(Ordering::Relaxed);

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
    // The receive path: at most one buffer refill per receive call of many datagrams,
    // never one per datagram.
    assert!(
        elsewhere * 8 <= datagrams_in,
        "{elsewhere} allocations for {datagrams_in} datagrams received"
    );
}
