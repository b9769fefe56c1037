//! Shared helpers for the netmesh criterion benchmarks: the packet shapes every
//! send/receive group measures, the bare ring AEAD they are compared with, and the
//! batches of received datagrams the receive benches open.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use netmesh_pool::{PacketOpener, PacketPool, ThreadLocalPool};
use netmesh_wire::{PacketFlags, HEADER_SIZE, TAG_SIZE};
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

/// `datagrams` copied into one receive buffer and cut off with `split_to`, as a receive
/// loop leaves them: `BytesMut`s, each the caller's alone, opened in place. (Frozen into
/// `Bytes`, pieces of one buffer share one reference count, so they would be opened from
/// copies.)
#[must_use]
pub fn split_off_one_buffer(datagrams: &[Bytes]) -> Vec<BytesMut> {
    let mut buffer = BytesMut::with_capacity(datagrams.iter().map(Bytes::len).sum());
    datagrams
        .iter()
        .map(|d| {
            buffer.extend_from_slice(d);
            buffer.split_to(d.len())
        })
        .collect()
}

/// A datagram as a socket read leaves it: unshared, reference-counted storage (not a
/// Vec-backed `Bytes`, whose first slice would allocate its shared header).
#[must_use]
pub fn received(datagram: &[u8]) -> Bytes {
    let mut buffer = BytesMut::with_capacity(datagram.len());
    buffer.extend_from_slice(datagram);
    buffer.split().freeze()
}

/// Datagrams per batch in the receive benches: about what one `recvmmsg` call returns.
pub const RECEIVE_BATCH: usize = 64;

/// One batch of received datagrams of one shape, back to back in one contiguous buffer,
/// opened three ways: by the bare ring AEAD, by a receive loop (`BytesMut::split_to`,
/// then [`PacketOpener::open`]) and by [`PacketOpener::open_in_place`] on each slot.
///
/// Every call refills its buffer from a sealed master copy and opens with a fresh opener
/// (the counters restart at 0), both before its clock starts; the clock stops before the
/// opener is dropped. The bare AEAD's datagrams have the same lengths and layout, their
/// payloads sealed with [`AAD`] and [`ring_nonce`]`(i)`, so each side streams the same
/// memory and every tag verifies.
#[derive(Debug)]
pub struct ReceiveBatch {
    sealed: Vec<u8>,
    bare_sealed: Vec<u8>,
    lens: Vec<usize>,
    bare: LessSafeKey,
    slots: Vec<u8>,
    received: BytesMut,
    split: Vec<BytesMut>,
    unique: Vec<Bytes>,
}

impl ReceiveBatch {
    /// [`RECEIVE_BATCH`] packets of `shape`, counters 0 to 63.
    #[must_use]
    pub fn new(shape: Shape) -> Self {
        let pool = PacketPool::new(1, &KEY, SESSION);
        let bare = bare_ring_key();
        let events = shape.make();
        let (mut sealed, mut bare_sealed, mut lens) = (Vec::new(), Vec::new(), Vec::new());
        for counter in 0..RECEIVE_BATCH as u64 {
            let packet = pool.get().build(1, counter, &events, PacketFlags::NONE);
            sealed.extend_from_slice(&packet);
            let mut mirror = packet.to_vec();
            let end = mirror.len() - TAG_SIZE;
            let tag = bare_ring_seal(&bare, counter, &mut mirror[HEADER_SIZE..end]);
            mirror[end..].copy_from_slice(&tag);
            bare_sealed.extend_from_slice(&mirror);
            lens.push(packet.len());
        }
        let slots = Vec::with_capacity(sealed.len());
        Self {
            sealed,
            bare_sealed,
            lens,
            bare,
            slots,
            received: BytesMut::new(),
            split: Vec::with_capacity(RECEIVE_BATCH),
            unique: Vec::with_capacity(RECEIVE_BATCH),
        }
    }

    /// Time to open the batch with the bare ring AEAD, each datagram in its slot.
    pub fn bare_open(&mut self) -> Duration {
        self.slots.clear();
        self.slots.extend_from_slice(&self.bare_sealed);
        let start = Instant::now();
        let mut rest = &mut self.slots[..];
        for (counter, &len) in self.lens.iter().enumerate() {
            let (slot, next) = rest.split_at_mut(len);
            rest = next;
            let plain = self
                .bare
                .open_in_place(
                    ring_nonce(counter as u64),
                    Aad::from(&AAD),
                    &mut slot[HEADER_SIZE..],
                )
                .map(|p| p.len());
            black_box(plain).ok();
        }
        start.elapsed()
    }

    /// Time for a receive loop to open the batch: each datagram cut from the one receive
    /// buffer with `split_to` and opened as a `BytesMut`. The buffer is reclaimed and
    /// refilled between batches, as a loop that reserves before each receive does.
    pub fn receive_loop(&mut self) -> Duration {
        let opener = PacketOpener::new(&KEY, SESSION);
        self.refill_received();
        let start = Instant::now();
        for &len in &self.lens {
            let datagram = self.received.split_to(len);
            black_box(opener.open(datagram).map(|o| o.event_count())).ok();
        }
        let elapsed = start.elapsed();
        drop(opener);
        elapsed
    }

    /// Time to open the batch's datagrams, already cut from the one receive buffer with
    /// `split_to` before the clock starts (the cut's reference-count increment is not
    /// timed, the opened packets' drop is).
    pub fn open_split(&mut self) -> Duration {
        let opener = PacketOpener::new(&KEY, SESSION);
        self.refill_received();
        self.split.clear();
        for &len in &self.lens {
            self.split.push(self.received.split_to(len));
        }
        let start = Instant::now();
        for datagram in self.split.drain(..) {
            black_box(opener.open(datagram).map(|o| o.event_count())).ok();
        }
        let elapsed = start.elapsed();
        drop(opener);
        elapsed
    }

    /// Time to open the batch's datagrams, each a `Bytes` of its own `Vec` made before
    /// the clock starts (the path of a caller that copies each datagram out).
    pub fn open_unique(&mut self) -> Duration {
        let opener = PacketOpener::new(&KEY, SESSION);
        self.unique.clear();
        let mut rest = &self.sealed[..];
        for &len in &self.lens {
            let (datagram, next) = rest.split_at(len);
            rest = next;
            self.unique.push(Bytes::copy_from_slice(datagram));
        }
        let start = Instant::now();
        for datagram in self.unique.drain(..) {
            black_box(opener.open(datagram).map(|o| o.event_count())).ok();
        }
        let elapsed = start.elapsed();
        drop(opener);
        elapsed
    }

    /// The receive buffer, reclaimed (every datagram cut from it has been dropped) and
    /// filled with the batch again.
    fn refill_received(&mut self) {
        self.received.clear();
        self.received.reserve(self.sealed.len());
        self.received.extend_from_slice(&self.sealed);
    }

    /// Time to open the batch with `open_in_place`, each datagram in its slot.
    pub fn in_place(&mut self) -> Duration {
        let opener = PacketOpener::new(&KEY, SESSION);
        self.slots.clear();
        self.slots.extend_from_slice(&self.sealed);
        let start = Instant::now();
        let mut rest = &mut self.slots[..];
        for &len in &self.lens {
            let (slot, next) = rest.split_at_mut(len);
            rest = next;
            black_box(opener.open_in_place(slot).map(|o| o.event_count())).ok();
        }
        let elapsed = start.elapsed();
        drop(opener);
        elapsed
    }
}
