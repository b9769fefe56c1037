//! Shared helpers for the netmesh criterion benchmarks: the packet shapes every
//! send/receive group measures, and the bare ring AEAD they are compared with.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use netmesh_pool::ThreadLocalPool;
use netmesh_wire::PacketFlags;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};

/// The key every bench uses.
pub const KEY: [u8; 32] = [0x4b; 32];
/// The session every bench uses.
pub const SESSION: u64 = 0x5e55_1011_dead_beef;
/// Associated data as long as the real one (56 bytes).
pub const AAD: [u8; 56] = [0xaa; 56];

/// A packet shape: how many events of how many bytes.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Events per packet.
    pub events: usize,
    /// Bytes per event.
    pub size: usize,
}

impl Shape {
    /// The shapes of the issue: 1x64 B, 10x64 B, 50x64 B, 1x1 KB, 1x8000 B.
    pub const ALL: [Self; 5] = [
        Self {
            events: 1,
            size: 64,
        },
        Self {
            events: 10,
            size: 64,
        },
        Self {
            events: 50,
            size: 64,
        },
        Self {
            events: 1,
            size: 1024,
        },
        Self {
            events: 1,
            size: 8000,
        },
    ];

    /// `events x size`, the label in reports.
    #[must_use]
    pub fn label(self) -> String {
        format!("{}x{}B", self.events, self.size)
    }

    /// The events themselves.
    #[must_use]
    pub fn make(self) -> Vec<Bytes> {
        (0..self.events)
            .map(|i| Bytes::from(vec![u8::try_from(i % 251).unwrap_or(0); self.size]))
            .collect()
    }

    /// Event bytes per packet (the throughput unit).
    #[must_use]
    pub fn event_bytes(self) -> u64 {
        (self.events * self.size) as u64
    }

    /// Framed payload length: what the AEAD encrypts.
    #[must_use]
    pub fn payload_len(self) -> usize {
        self.events * (4 + self.size)
    }
}

/// The bare ring AEAD, keyed with [`KEY`].
#[must_use]
pub fn bare_ring_key() -> LessSafeKey {
    let unbound = UnboundKey::new(&CHACHA20_POLY1305, &KEY).unwrap_or_else(|_| unreachable!());
    LessSafeKey::new(unbound)
}

/// A ring nonce for `counter` (the prefix does not change the cost).
#[must_use]
pub fn ring_nonce(counter: u64) -> Nonce {
    let mut nonce = [0; 12];
    nonce[4..].copy_from_slice(&counter.to_le_bytes());
    Nonce::assume_unique_for_key(nonce)
}

/// Seals `buf` in place with the bare ring AEAD, as a packet build does.
pub fn bare_ring_seal(key: &LessSafeKey, counter: u64, buf: &mut [u8]) -> [u8; 16] {
    let tag = key
        .seal_in_place_separate_tag(ring_nonce(counter), Aad::from(&AAD), buf)
        .unwrap_or_else(|_| unreachable!());
    let mut out = [0; 16];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Time for `threads` threads to build `per_thread` packets of `events` each, every thread
/// through its own guard of the shared `pool`.
pub fn build_on_threads(
    pool: &ThreadLocalPool,
    events: &[Bytes],
    threads: u64,
    per_thread: u64,
) -> Duration {
    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            scope.spawn(move || {
                let mut builder = pool.get();
                for s in 0..per_thread {
                    black_box(builder.build(t, s, events, PacketFlags::NONE));
                }
            });
        }
    });
    start.elapsed()
}

/// Time for `threads` threads to seal `per_thread` 1 x 64 B payloads each with the bare
/// ring AEAD, nothing shared: the machine's own ceiling for [`build_on_threads`].
#[must_use]
pub fn seal_on_threads(threads: u64, per_thread: u64) -> Duration {
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(move || {
                let key = bare_ring_key();
                let mut buf = vec![0u8; Shape::ALL[0].payload_len()];
                for counter in 0..per_thread {
                    black_box(bare_ring_seal(&key, counter, &mut buf));
                }
            });
        }
    });
    start.elapsed()
}

/// Packets per block in the interleaved benches: compared loops alternate block by block.
pub const BLOCK: u64 = 2_000;
/// Rounds of alternating blocks in the interleaved benches; ratios are their medians.
pub const ROUNDS: usize = 301;

/// The median of `values` (the upper one for an even count); `values` must not be empty.
#[must_use]
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Seconds `f` takes for one block of [`BLOCK`] calls, each given its index.
pub fn time_block(mut f: impl FnMut(u64)) -> f64 {
    let start = Instant::now();
    for i in 0..BLOCK {
        f(i);
    }
    start.elapsed().as_secs_f64()
}

/// The key of the other direction in the session benches.
pub const OTHER_KEY: [u8; 32] = [0x5a; 32];

/// Two established sessions over [`KEY`] and [`OTHER_KEY`], each side's TX the other's
/// RX (no handshake: the benches measure the packet paths).
#[must_use]
pub fn session_pair(now: Instant) -> (netmesh_session::Session, netmesh_session::Session) {
    use netmesh_session::{Role, Session, SessionConfig, SessionKeys};
    let a = Session::from_keys(
        SessionConfig::default(),
        SessionKeys::from_parts(SESSION, KEY, OTHER_KEY),
        Role::Initiator,
        now,
    );
    let b = Session::from_keys(
        SessionConfig::default(),
        SessionKeys::from_parts(SESSION, OTHER_KEY, KEY),
        Role::Responder,
        now,
    );
    (a, b)
}

/// A datagram as a socket read leaves it: unshared, reference-counted storage (not a
/// Vec-backed `Bytes`, whose first slice would allocate its shared header).
#[must_use]
pub fn received(datagram: &[u8]) -> Bytes {
    let mut buffer = bytes::BytesMut::with_capacity(datagram.len());
    buffer.extend_from_slice(datagram);
    buffer.split().freeze()
}
