//! An impairment relay: forwards UDP datagrams between one client and one server, and
//! drops, duplicates and reorders them at seeded random.
//!
//! The client is whoever last sent to the relay's address; everything from the server
//! goes back to it. Each direction has its own thread and its own random sequence
//! (derived from the seed), so a run's impairments depend only on the seed and the
//! order of the datagrams of each direction.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// The largest datagram forwarded.
const MAX_DATAGRAM: usize = 65_535;

/// How long a held (to be reordered) datagram waits for a successor before it goes alone.
const HOLD: Duration = Duration::from_millis(2);

/// What the relay does to datagrams: each a probability in `0.0..=1.0`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Impairment {
    /// A datagram is dropped.
    pub drop: f64,
    /// A datagram (not dropped) is sent twice.
    pub duplicate: f64,
    /// A datagram (not dropped) is held back and sent after the next one.
    pub reorder: f64,
    /// Seeds the random choices.
    pub seed: u64,
}

/// What a relay did, per direction summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RelayCounts {
    /// Datagrams received.
    pub received: u64,
    /// Datagrams sent on (duplicates included).
    pub forwarded: u64,
    /// Datagrams dropped on purpose.
    pub dropped: u64,
    /// Extra copies sent.
    pub duplicated: u64,
    /// Datagrams sent after their successor.
    pub reordered: u64,
}

#[derive(Debug, Default)]
struct Counters {
    received: AtomicU64,
    forwarded: AtomicU64,
    dropped: AtomicU64,
    duplicated: AtomicU64,
    reordered: AtomicU64,
}

/// A running relay; stops (and joins its threads) on drop.
#[derive(Debug)]
pub struct Relay {
    local: SocketAddr,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    threads: Vec<JoinHandle<()>>,
}

/// splitmix64: small, seeded, good enough to pick which datagrams to impair.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability `p`.
    #[allow(clippy::cast_precision_loss)] // 53 bits of a uniform u64 are plenty
    fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64) / ((1u64 << 53) as f64) < p
    }
}

impl Relay {
    /// Binds `listen`, and forwards to `to` and back, impaired, until dropped.
    ///
    /// # Errors
    ///
    /// When a socket cannot be bound or connected, or a probability is outside `0..=1`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::UdpSocket;
    /// use std::time::Duration;
    /// use netmesh_cli::relay::{Impairment, Relay};
    ///
    /// let server = UdpSocket::bind("127.0.0.1:0")?;
    /// let lossless = Impairment { drop: 0.0, duplicate: 0.0, reorder: 0.0, seed: 1 };
    /// let relay = Relay::start("127.0.0.1:0".parse()?, server.local_addr()?, lossless)?;
    ///
    /// let client = UdpSocket::bind("127.0.0.1:0")?;
    /// client.send_to(b"ping", relay.local_addr())?;
    /// server.set_read_timeout(Some(Duration::from_secs(5)))?;
    /// let mut buf = [0; 16];
    /// let (len, _) = server.recv_from(&mut buf)?;
    /// assert_eq!(&buf[..len], b"ping");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start(listen: SocketAddr, to: SocketAddr, impairment: Impairment) -> io::Result<Self> {
        for p in [impairment.drop, impairment.duplicate, impairment.reorder] {
            if !(0.0..=1.0).contains(&p) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("probability {p} is outside 0..=1"),
                ));
            }
        }
        let front = bind_with_buffers(listen)?;
        let unspecified: SocketAddr = if to.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let back = bind_with_buffers(unspecified)?;
        back.connect(to)?;
        front.set_read_timeout(Some(HOLD))?;
        back.set_read_timeout(Some(HOLD))?;
        let local = front.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let client = Arc::new(Mutex::new(None::<SocketAddr>));

        let mut threads = Vec::with_capacity(2);
        for upstream in [true, false] {
            let (from, onto) = (front.try_clone()?, back.try_clone()?);
            let (stop, counters, client) = (stop.clone(), counters.clone(), client.clone());
            let mut rng = Rng(impairment.seed ^ if upstream { 0 } else { 0x5eed_d0d0 });
            let thread = thread::Builder::new()
                .name(if upstream { "relay-up" } else { "relay-down" }.into())
                .spawn(move || {
                    let mut direction = Direction {
                        impairment,
                        counters: &counters,
                        rng: &mut rng,
                        held: None,
                    };
                    let mut buf = vec![0; MAX_DATAGRAM];
                    while !stop.load(Ordering::Relaxed) {
                        // Upstream: from any client, remembered, to the server.
                        // Downstream: from the server to the last client.
                        let received = if upstream {
                            from.recv_from(&mut buf).map(|(len, source)| {
                                *client.lock().unwrap_or_else(PoisonError::into_inner) =
                                    Some(source);
                                len
                            })
                        } else {
                            onto.recv(&mut buf)
                        };
                        let target = *client.lock().unwrap_or_else(PoisonError::into_inner);
                        let send = |datagram: &[u8]| {
                            // A send that fails (buffer full, client gone) is a loss the
                            // endpoints must cope with, as on a real path.
                            let _ = if upstream {
                                onto.send(datagram)
                            } else if let Some(target) = target {
                                from.send_to(datagram, target)
                            } else {
                                Ok(0)
                            };
                        };
                        match received {
                            Ok(len) => direction.forward(&buf[..len], send),
                            Err(error)
                                if matches!(
                                    error.kind(),
                                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                                ) =>
                            {
                                direction.release(send);
                            }
                            // ICMP "port unreachable" of an earlier send: keep going.
                            Err(_) => {}
                        }
                    }
                })?;
            threads.push(thread);
        }
        Ok(Self {
            local,
            stop,
            counters,
            threads,
        })
    }

    /// The address clients send to.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// What the relay did so far.
    #[must_use]
    pub fn counts(&self) -> RelayCounts {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        RelayCounts {
            received: load(&self.counters.received),
            forwarded: load(&self.counters.forwarded),
            dropped: load(&self.counters.dropped),
            duplicated: load(&self.counters.duplicated),
            reordered: load(&self.counters.reordered),
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Socket buffers the relay asks for: large, so that the relay itself drops nothing it
/// was not told to drop (the kernel may grant less: `net.core.rmem_max`).
const SOCKET_BUFFER: usize = 8 << 20;

fn bind_with_buffers(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    // Best effort: a smaller buffer only means more losses of the relay's own.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// One direction's impairment state.
struct Direction<'a> {
    impairment: Impairment,
    counters: &'a Counters,
    rng: &'a mut Rng,
    held: Option<Vec<u8>>,
}

impl Direction<'_> {
    fn forward(&mut self, datagram: &[u8], send: impl Fn(&[u8])) {
        let count = |counter: &AtomicU64| counter.fetch_add(1, Ordering::Relaxed);
        count(&self.counters.received);
        if self.rng.chance(self.impairment.drop) {
            count(&self.counters.dropped);
            return;
        }
        let copies = if self.rng.chance(self.impairment.duplicate) {
            count(&self.counters.duplicated);
            2
        } else {
            1
        };
        if self.rng.chance(self.impairment.reorder) {
            // Held back: it goes after the next datagram (or alone after HOLD).
            self.release(&send);
            count(&self.counters.reordered);
            self.held = Some(datagram.to_vec());
            if copies == 2 {
                send(datagram);
                count(&self.counters.forwarded);
            }
            return;
        }
        for _ in 0..copies {
            send(datagram);
            count(&self.counters.forwarded);
        }
        self.release(send);
    }

    fn release(&mut self, send: impl Fn(&[u8])) {
        if let Some(held) = self.held.take() {
            send(&held);
            self.counters.forwarded.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn localhost() -> SocketAddr {
        (Ipv4Addr::LOCALHOST, 0).into()
    }

    #[test]
    fn forwards_both_ways_unimpaired() {
        let server = UdpSocket::bind(localhost()).unwrap();
        let clean = Impairment {
            drop: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            seed: 1,
        };
        let relay = Relay::start(localhost(), server.local_addr().unwrap(), clean).unwrap();
        let client = UdpSocket::bind(localhost()).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0; 64];
        for round in 0..10u8 {
            client.send_to(&[round; 3], relay.local_addr()).unwrap();
            let (len, relay_side) = server.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..len], &[round; 3]);
            server.send_to(&[round, 9], relay_side).unwrap();
            let (len, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!((&buf[..len], from), (&[round, 9][..], relay.local_addr()));
        }
        // The relay counts a datagram just after sending it: give the last one a moment.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while relay.counts().forwarded < 20 && std::time::Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        let counts = relay.counts();
        assert_eq!((counts.received, counts.forwarded), (20, 20));
    }

    #[test]
    fn impairs_at_about_the_rates_asked_and_by_seed() {
        let run = |seed| {
            let counters = Counters::default();
            let mut rng = Rng(seed);
            let mut direction = Direction {
                impairment: Impairment {
                    drop: 0.1,
                    duplicate: 0.05,
                    reorder: 0.2,
                    seed,
                },
                counters: &counters,
                rng: &mut rng,
                held: None,
            };
            let sent = std::cell::RefCell::new(Vec::new());
            for i in 0..10_000u32 {
                direction.forward(&i.to_le_bytes(), |d| sent.borrow_mut().push(d.to_vec()));
            }
            direction.release(|d| sent.borrow_mut().push(d.to_vec()));
            (sent.into_inner(), counters.dropped.into_inner())
        };
        let (first, dropped) = run(7);
        assert_eq!(run(7).0, first, "same seed, same impairments");
        assert_ne!(run(8).0, first);
        assert!(
            (800..1200).contains(&dropped),
            "{dropped} of 10 000 dropped"
        );
        let numbers: Vec<u32> = first
            .iter()
            .map(|d| u32::from_le_bytes(d[..4].try_into().unwrap()))
            .collect();
        let out_of_place = numbers.windows(2).filter(|w| w[0] > w[1]).count();
        assert!(out_of_place > 1000, "{out_of_place} reordered");
    }

    #[test]
    fn refuses_impossible_probabilities() {
        let bad = Impairment {
            drop: 1.5,
            duplicate: 0.0,
            reorder: 0.0,
            seed: 0,
        };
        assert!(Relay::start(localhost(), localhost(), bad).is_err());
    }
}
