//! Events per second through two endpoints in one process over 127.0.0.1: a real
//! handshake, real sockets, every event checked at the receiver.
//!
//! ```text
//! cargo run --release -p netmesh-udp --example endpoint_bench -- [EVENTS] [SIZE] [SENDERS] [--reliable] [--callback]
//! ```
//!
//! (`netmesh bench` is the user-facing tool; this is the endpoint alone, for profiling:
//! `perf record -g target/release/examples/endpoint_bench 20000000 64`.)

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use netmesh_session::{Prologue, Psk, Responder, StaticKeypair};
use netmesh_udp::{Accept, Delivery, Endpoint, EndpointConfig, Event, EventHandler};

/// What the receiver checked: per stream the next index expected.
#[derive(Default)]
struct Checker {
    next: Vec<u64>,
    received: u64,
    out_of_order: u64,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Checker {
    fn check(&mut self, delivery: &Delivery) {
        let now = Instant::now();
        self.first.get_or_insert(now);
        self.last = Some(now);
        for event in delivery.event_slices() {
            let stream = u64::from_le_bytes(event[..8].try_into().unwrap_or_default());
            let index = u64::from_le_bytes(event[8..16].try_into().unwrap_or_default());
            let Some(next) = usize::try_from(stream)
                .ok()
                .and_then(|s| self.next.get_mut(s))
            else {
                self.out_of_order += 1;
                continue;
            };
            if index != *next {
                self.out_of_order += 1;
            }
            *next = index + 1;
            self.received += 1;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Events per `send` call.
const RUN: usize = 8192;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let events: u64 = args.first().map_or(Ok(10_000_000), |s| s.parse())?;
    let size: usize = args.get(1).map_or(Ok(64), |s| s.parse())?;
    let senders: u64 = args.get(2).map_or(Ok(1), |s| s.parse())?;
    let reliable = args.iter().any(|a| a == "--reliable");
    let callback = args.iter().any(|a| a == "--callback");
    let size = size.max(16);

    let keypair = StaticKeypair::generate()?;
    let psk = Psk::new([7; 32]);
    let mut server_config = EndpointConfig::new("127.0.0.1:0".parse()?);
    server_config.accept = Some(Accept {
        responder: Arc::new(Responder::new(&keypair, &psk)),
        prologue: Prologue::Empty,
    });
    server_config.event_queue = 4096;
    let checker = Arc::new(Mutex::new(Checker {
        next: vec![0; usize::try_from(senders)?],
        ..Checker::default()
    }));
    if callback {
        let checker = Arc::clone(&checker);
        server_config.on_event = Some(EventHandler::new(move |event| {
            if let Event::Delivery(delivery) = event {
                lock(&checker).check(&delivery);
            }
        }));
    }
    // BENCH_GAP_MS: the receiver's gap timeout, for comparison with the default.
    if let Some(ms) = std::env::var("BENCH_GAP_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        server_config.session.gap_timeout = Duration::from_millis(ms);
    }
    let server = Endpoint::bind(server_config)?;
    let client = Endpoint::bind(EndpointConfig::new("127.0.0.1:0".parse()?))?;
    let peer = client.connect(
        server.local_addr(),
        &keypair.public_key(),
        &psk,
        &Prologue::Empty,
        Duration::from_secs(5),
    )?;
    println!(
        "{events} events of {size} B, {senders} sender(s), {}; sockets {:?}",
        if reliable {
            "reliable"
        } else {
            "fire-and-forget"
        },
        server.socket_info()
    );

    let start = Instant::now();
    let per_sender = events / senders;
    let handles: Vec<_> = (0..senders)
        .map(|s| {
            let peer = peer.clone();
            thread::spawn(move || -> Result<(), netmesh_udp::SendError> {
                // Each run's events are written into one buffer and cut from it: one
                // allocation per run, as a producer of many small events would do.
                let mut run = Vec::with_capacity(RUN);
                let mut sent = 0;
                while sent < per_sender {
                    run.clear();
                    let n = (per_sender - sent).min(RUN as u64);
                    let mut buf = BytesMut::with_capacity(size * RUN);
                    for i in sent..sent + n {
                        buf.extend_from_slice(&s.to_le_bytes());
                        buf.extend_from_slice(&i.to_le_bytes());
                        buf.resize(buf.len() + size - 16, 0x5a);
                    }
                    let buf = buf.freeze();
                    let n_events = usize::try_from(n).unwrap_or(RUN);
                    run.extend((0..n_events).map(|k| buf.slice(k * size..(k + 1) * size)));
                    peer.send(s, &run, reliable)?;
                    sent += n;
                }
                Ok(())
            })
        })
        .collect();

    let expected = per_sender * senders;
    let checker = Arc::clone(&checker);
    let mut last_count = 0;
    let mut last = Instant::now();
    loop {
        let received = if callback {
            thread::sleep(Duration::from_millis(1));
            lock(&checker).received
        } else {
            match server.recv_event(Duration::from_millis(100)) {
                Some(Event::Delivery(delivery)) => {
                    let mut checker = lock(&checker);
                    checker.check(&delivery);
                    checker.received
                }
                _ => lock(&checker).received,
            }
        };
        if received != last_count {
            last_count = received;
            last = Instant::now();
        }
        if received >= expected || last.elapsed() > Duration::from_secs(2) {
            break;
        }
    }
    let (received, out_of_order, first, last) = {
        let checker = lock(&checker);
        (
            checker.received,
            checker.out_of_order,
            checker.first,
            checker.last,
        )
    };
    let last = last.unwrap_or(start);
    let elapsed = last.duration_since(first.unwrap_or(start)).as_secs_f64();
    for handle in handles {
        handle.join().map_err(|_| "sender panicked")??;
    }
    let stats = server.stats();
    println!(
        "received {received} of {expected} events in {elapsed:.3} s: {:.2} M events/s, {:.1} MB/s of events; out of order {out_of_order}",
        received as f64 / elapsed / 1e6,
        received as f64 * size as f64 / elapsed / 1e6,
    );
    println!(
        "server: {} datagrams in {} recvmmsg calls, rejected {}; client: {} datagrams in {} send calls, blocked {} times",
        stats.traffic.datagrams_in,
        stats.traffic.recv_calls,
        stats.rejected.total(),
        client.stats().traffic.datagrams_out,
        client.stats().traffic.send_calls,
        client.stats().sessions.blocked,
    );
    if std::env::var_os("BENCH_STATS").is_some() {
        println!("server sessions: {:?}", stats.sessions);
        println!("client sessions: {:?}", client.stats().sessions);
    }
    Ok(())
}
