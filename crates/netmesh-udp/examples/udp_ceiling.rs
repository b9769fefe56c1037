//! The bare-UDP ceiling: the same datagrams netmesh sends (8 KiB packets of framed
//! events), batched the same way (GSO sends, recvmmsg/GRO receives), no crypto, no
//! sessions. One sender thread, one receiver thread, 127.0.0.1.
//!
//! ```text
//! cargo run --release -p netmesh-udp --example udp_ceiling -- [SECONDS] [DATAGRAM_BYTES] [--no-gso]
//! ```
//!
//! Prints datagrams/s received and, for 64-byte events, the events/s they would carry.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use netmesh_udp::{BatchSocket, RecvBatch, SocketOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds: f64 = args.first().map_or(Ok(3.0), |s| s.parse())?;
    let size: usize = args.get(1).map_or(Ok(8192), |s| s.parse())?;
    let gso = !args.iter().any(|a| a == "--no-gso");
    let options = SocketOptions {
        gso,
        ..SocketOptions::default()
    };
    let receiver = Arc::new(BatchSocket::bind("127.0.0.1:0".parse()?, options)?);
    let sender = BatchSocket::bind("127.0.0.1:0".parse()?, options)?;
    println!("receiver {:?}", receiver.info());
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let rx = {
        let (receiver, stop, received) = (receiver.clone(), stop.clone(), received.clone());
        thread::spawn(move || {
            let mut batch = RecvBatch::new(&receiver);
            let mut calls = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if receiver
                    .recv(&mut batch, Some(Duration::from_millis(50)))
                    .unwrap_or(0)
                    > 0
                {
                    calls += 1;
                }
                let mut n = 0;
                while let Some((_, datagram)) = batch.next_datagram() {
                    std::hint::black_box(&datagram);
                    n += 1;
                }
                received.fetch_add(n, Ordering::Relaxed);
            }
            calls
        })
    };
    let packets: Vec<Bytes> = (0..64).map(|_| Bytes::from(vec![0x5a; size])).collect();
    let mut scratch = Vec::new();
    let dest = receiver.local_addr();
    let start = Instant::now();
    let mut sent = 0u64;
    let mut calls = 0usize;
    while start.elapsed().as_secs_f64() < seconds {
        calls += sender.send(dest, &packets, &mut scratch, Duration::from_secs(1))?;
        sent += packets.len() as u64;
    }
    let elapsed = start.elapsed().as_secs_f64();
    thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    let recv_calls = rx.join().map_err(|_| "receiver panicked")?;
    let got = received.load(Ordering::Relaxed);
    let events_per_packet = (netmesh_wire::MAX_PAYLOAD_SIZE / 68).min(size.saturating_sub(84) / 68);
    println!(
        "{size} B datagrams, GSO {}: sent {sent} in {calls} calls, received {got} in {recv_calls} calls ({:.1}% lost)",
        if gso { "on" } else { "off" },
        100.0 * (sent - got.min(sent)) as f64 / sent as f64
    );
    println!(
        "{:.0} datagrams/s received = {:.2} M 64-byte events/s ({} events per datagram), {:.2} GB/s",
        got as f64 / elapsed,
        got as f64 * events_per_packet as f64 / elapsed / 1e6,
        events_per_packet,
        got as f64 * size as f64 / elapsed / 1e9
    );
    Ok(())
}
