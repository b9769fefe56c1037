//! Per-stream state: sequences, reliable send buffers, receive trackers and reorder
//! buffers, in a table with lock-free lookup for small stream ids.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError, RwLock};

use netmesh_pool::OpenedPacket;

use crate::reliable::{Outcome, ReliableReceiver, RetransmitBuffer, StreamTracker};

/// Stream ids below this live in a fixed array (a lookup is one load); others in a map.
const FAST_STREAMS: usize = 64;

/// Locks a mutex, ignoring poisoning: a panicking holder leaves plain counters behind,
/// never a broken invariant that matters more than stopping the session.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Slots of the slow table: `CHUNK` chunks of `CHUNK` streams, made on demand.
const CHUNK: usize = 64;

/// One chunk of the slow table: `(stream id, stream)` slots.
type Chunk<T> = Box<[OnceLock<(u64, T)>]>;

/// Streams by id. Ids below 64 sit in a fixed array (a lookup is one load); others get
/// the next free slot of a chunked table, found through a map. Entries are never
/// removed, so a reference to one lives as long as the table: deliveries can hold a
/// stream's lock without owning anything. Bounded: at most `max` (and 4096) streams
/// beyond the fixed array, so a peer cannot make the session allocate without bound by
/// inventing stream ids.
pub(crate) struct StreamTable<T> {
    fast: Box<[OnceLock<T>]>,
    chunks: Box<[OnceLock<Chunk<T>>]>,
    index: RwLock<HashMap<u64, usize>>,
    max: usize,
}

impl<T> StreamTable<T> {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            fast: (0..FAST_STREAMS).map(|_| OnceLock::new()).collect(),
            chunks: (0..CHUNK).map(|_| OnceLock::new()).collect(),
            index: RwLock::new(HashMap::new()),
            max: max.min(CHUNK * CHUNK),
        }
    }

    fn fast_index(id: u64) -> Option<usize> {
        usize::try_from(id).ok().filter(|&i| i < FAST_STREAMS)
    }

    fn slot(&self, slot: usize) -> Option<&OnceLock<(u64, T)>> {
        let chunk = self
            .chunks
            .get(slot / CHUNK)?
            .get_or_init(|| (0..CHUNK).map(|_| OnceLock::new()).collect());
        chunk.get(slot % CHUNK)
    }

    /// The stream, if it exists.
    #[inline]
    pub(crate) fn get(&self, id: u64) -> Option<&T> {
        if let Some(index) = Self::fast_index(id) {
            return self.fast[index].get();
        }
        let slot = *self
            .index
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)?;
        self.slot(slot)?.get().map(|(_, stream)| stream)
    }

    /// The stream, made with `make` if new; `None` when the table is full.
    #[inline]
    pub(crate) fn get_or_insert(&self, id: u64, make: impl FnOnce() -> T) -> Option<&T> {
        if let Some(index) = Self::fast_index(id) {
            return Some(self.fast[index].get_or_init(make));
        }
        if let Some(stream) = self.get(id) {
            return Some(stream);
        }
        let mut index = self.index.write().unwrap_or_else(PoisonError::into_inner);
        let slot = match index.get(&id) {
            Some(&slot) => slot,
            None => {
                let slot = index.len();
                if slot >= self.max {
                    return None;
                }
                self.slot(slot)?.get_or_init(|| (id, make()));
                index.insert(id, slot);
                slot
            }
        };
        drop(index);
        self.slot(slot)?.get().map(|(_, stream)| stream)
    }

    /// Calls `f` for every stream.
    pub(crate) fn for_each(&self, mut f: impl FnMut(u64, &T)) {
        for (id, slot) in (0u64..).zip(self.fast.iter()) {
            if let Some(stream) = slot.get() {
                f(id, stream);
            }
        }
        for chunk in self.chunks.iter().filter_map(OnceLock::get) {
            for (id, stream) in chunk.iter().filter_map(OnceLock::get) {
                f(*id, stream);
            }
        }
    }
}

/// The send side of one stream.
pub(crate) struct TxStream {
    /// Next sequence of a fire-and-forget packet.
    pub(crate) next_seq: AtomicU64,
    /// Events sent (both kinds).
    pub(crate) events: AtomicU64,
    /// Datagram bytes sent (both kinds).
    pub(crate) bytes: AtomicU64,
    /// When the oldest unacknowledged reliable packet started waiting (nanoseconds since
    /// the session's epoch): ACK progress restarts it.
    pub(crate) ack_progress_at: AtomicU64,
    /// The reliable send buffer, made by the first reliable packet.
    pub(crate) reliable: OnceLock<Mutex<RetransmitBuffer>>,
    /// Whether `DeliveryUnconfirmed` was reported for this stream.
    pub(crate) unconfirmed_reported: AtomicBool,
    /// Wire bytes sent (counted once the peer has sent a grant).
    pub(crate) window_sent: AtomicU64,
    /// The peer's latest `total_consumed` for this stream.
    pub(crate) window_consumed: AtomicU64,
    /// When grant progress was last seen, or the window found closed (nanoseconds
    /// since the session's epoch; 0: never).
    pub(crate) window_progress_at: AtomicU64,
    /// Whether a sender found the window closed since the last grant.
    pub(crate) window_blocked: AtomicBool,
}

impl TxStream {
    pub(crate) fn new() -> Self {
        Self {
            next_seq: AtomicU64::new(0),
            events: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            ack_progress_at: AtomicU64::new(0),
            reliable: OnceLock::new(),
            unconfirmed_reported: AtomicBool::new(false),
            window_sent: AtomicU64::new(0),
            window_consumed: AtomicU64::new(0),
            window_progress_at: AtomicU64::new(0),
            window_blocked: AtomicBool::new(false),
        }
    }

    pub(crate) fn packets_sent(&self) -> u64 {
        let reliable = self.reliable.get().map_or(0, |b| lock(b).next_seq());
        self.next_seq.load(Ordering::Relaxed) + reliable
    }
}

/// The receive side of one reliable stream: the reorder buffer and in-order delivery.
#[derive(Debug)]
pub(crate) struct ReliableRx {
    receiver: ReliableReceiver<OpenedPacket>,
    /// Counted under this stream's lock rather than in shared atomics.
    pub(crate) traffic: RxTraffic,
}

impl ReliableRx {
    pub(crate) fn new(receiver: ReliableReceiver<OpenedPacket>) -> Self {
        Self {
            receiver,
            traffic: RxTraffic::default(),
        }
    }

    pub(crate) fn receiver(&self) -> &ReliableReceiver<OpenedPacket> {
        &self.receiver
    }

    pub(crate) fn receiver_mut(&mut self) -> &mut ReliableReceiver<OpenedPacket> {
        &mut self.receiver
    }

    /// Packets ready for in-order delivery.
    pub(crate) fn ready(&self) -> usize {
        self.receiver.ready()
    }

    /// Files one packet; every sequence it makes contiguous becomes ready.
    pub(crate) fn on_packet(&mut self, sequence: u64, packet: OpenedPacket) -> Outcome {
        self.receiver.on_packet(sequence, packet)
    }

    /// Gives up every sequence below `first_available`; returns how many were lost.
    pub(crate) fn skip_to(&mut self, first_available: u64) -> u64 {
        self.receiver.skip_to(first_available)
    }

    pub(crate) fn pop_ready(&mut self) -> Option<OpenedPacket> {
        let (_, packet) = self.receiver.pop_ready()?;
        self.traffic.events_delivered += u64::from(packet.header().event_count);
        Some(packet)
    }
}

/// What one stream received, counted under the stream's lock.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RxTraffic {
    pub(crate) packets: u64,
    pub(crate) events: u64,
    pub(crate) bytes: u64,
    pub(crate) events_delivered: u64,
}

impl RxTraffic {
    pub(crate) fn packet(&mut self, events: u16, bytes: usize) {
        self.packets_of(1, u64::from(events), bytes as u64);
    }

    /// Counts `packets` packets carrying `events` events in `bytes` bytes.
    pub(crate) fn packets_of(&mut self, packets: u64, events: u64, bytes: u64) {
        self.packets += packets;
        self.events += events;
        self.bytes += bytes;
    }
}

/// The fire-and-forget side of a receive stream.
#[derive(Debug, Default)]
pub(crate) struct FfRx {
    pub(crate) tracker: StreamTracker,
    pub(crate) traffic: RxTraffic,
}

/// The receive side of one stream.
pub(crate) struct RxStream {
    /// Fire-and-forget accounting.
    pub(crate) tracker: Mutex<FfRx>,
    /// Reliable delivery, made by the first reliable packet.
    pub(crate) reliable: OnceLock<Mutex<ReliableRx>>,
}

impl RxStream {
    pub(crate) fn new() -> Self {
        Self {
            tracker: Mutex::new(FfRx::default()),
            reliable: OnceLock::new(),
        }
    }
}
