//! Key generations: what one handshake's keys seal and open with. A re-key makes new
//! generations; the old TX generation is dropped (its pool with it), so nothing ever
//! seals again under a key once a newer one is in use.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use netmesh_pool::{PacketOpener, ThreadLocalPool};

use super::flow::SharedWatermark;
use super::SessionConfig;
use crate::SessionKeys;

use std::cell::Cell;

use netmesh_cipher::COUNTER_LEASE;

/// Ids of TX generations, never reused (thread-local records name them).
static NEXT_GEN_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The last counter this thread sealed a data packet with, and the generation's id:
    /// its next counter is the next one of the same lease, unless that lease is used up.
    static LAST_SEALED: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// The sending half of one key generation.
pub(crate) struct TxGen {
    pub(crate) session_id: u64,
    pub(crate) pool: ThreadLocalPool,
    /// Counters below this may be sealed and sent (`u64::MAX`: no counter credit).
    pub(crate) limit: AtomicU64,
    /// Unique id of this generation (see [`LAST_SEALED`]).
    id: u64,
    /// Since when senders are blocked on credit (nanoseconds since the session's epoch;
    /// 0: not blocked).
    pub(crate) blocked_since: AtomicU64,
    /// The re-key threshold was reached on this generation.
    pub(crate) rekey_due: AtomicBool,
    /// The first counter of the newest lease seen by a sender (stored once per lease):
    /// a thread that needs a new lease gets one at or beyond `lease_hint + 16`.
    lease_hint: AtomicU64,
}

impl TxGen {
    pub(crate) fn new(keys: &SessionKeys, config: &SessionConfig, limit: u64) -> Self {
        Self {
            session_id: keys.session_id(),
            pool: ThreadLocalPool::new(config.pool_size, keys.tx_key(), keys.session_id()),
            limit: AtomicU64::new(limit),
            id: NEXT_GEN_ID.fetch_add(1, Ordering::Relaxed),
            blocked_since: AtomicU64::new(0),
            rekey_due: AtomicBool::new(false),
            lease_hint: AtomicU64::new(0),
        }
    }

    /// Whether this thread's next counter would be beyond the credit: the next one of
    /// its lease when it has one, else the first of a new lease.
    #[inline]
    pub(crate) fn is_blocked(&self) -> bool {
        let limit = self.limit.load(Ordering::Acquire);
        if limit == u64::MAX {
            return false;
        }
        let (id, last) = LAST_SEALED.with(Cell::get);
        let next = last.wrapping_add(1);
        if id == self.id && next % COUNTER_LEASE != 0 {
            return next >= limit;
        }
        self.lease_hint.load(Ordering::Relaxed) + COUNTER_LEASE >= limit
    }

    /// Records a counter this thread sealed a data packet with.
    #[inline]
    pub(crate) fn sealed(&self, counter: u64) {
        LAST_SEALED.with(|last| last.set((self.id, counter)));
        if counter % COUNTER_LEASE == 0 {
            self.lease_hint.store(counter, Ordering::Relaxed);
        }
    }

    /// Raises the limit (credit only grows); returns whether it moved.
    pub(crate) fn raise_limit(&self, limit: u64) -> bool {
        let before = self.limit.fetch_max(limit, Ordering::AcqRel);
        if limit > before {
            self.blocked_since.store(0, Ordering::Relaxed);
            true
        } else {
            false
        }
    }
}

/// The receiving half of one key generation.
pub(crate) struct RxGen {
    pub(crate) session_id: u64,
    pub(crate) opener: PacketOpener,
    pub(crate) watermark: SharedWatermark,
    /// The watermark last sent in a CREDIT.
    pub(crate) credit_sent: AtomicU64,
    /// When the last CREDIT went out (nanoseconds since the session's epoch).
    pub(crate) credit_sent_at: AtomicU64,
    /// Packets arrived since the last CREDIT.
    pub(crate) traffic: AtomicBool,
}

impl RxGen {
    pub(crate) fn new(keys: &SessionKeys) -> Arc<Self> {
        Arc::new(Self {
            session_id: keys.session_id(),
            opener: PacketOpener::new(keys.rx_key(), keys.session_id()),
            watermark: SharedWatermark::new(),
            credit_sent: AtomicU64::new(0),
            credit_sent_at: AtomicU64::new(0),
            traffic: AtomicBool::new(false),
        })
    }
}

/// Which RX generation a packet opened under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Which {
    Current,
    Previous,
    Pending,
}

/// The RX generations in use: the current one, the one before the last re-key (for
/// packets still in flight), and a responder's pending one (a re-key the initiator has
/// not used yet).
pub(crate) struct RxKeys {
    pub(crate) current: Arc<RxGen>,
    pub(crate) previous: Option<Arc<RxGen>>,
    pub(crate) pending: Option<Arc<RxGen>>,
    /// Counters given up by generations retired before these.
    pub(crate) retired_gap_skips: u64,
}

impl RxKeys {
    pub(crate) fn new(current: Arc<RxGen>) -> Self {
        Self {
            current,
            previous: None,
            pending: None,
            retired_gap_skips: 0,
        }
    }

    /// The generation for a packet of `session_id` (the current one when none matches,
    /// so that the opener reports the mismatch).
    pub(crate) fn select(&self, session_id: u64) -> (&Arc<RxGen>, Which) {
        if self.current.session_id == session_id {
            return (&self.current, Which::Current);
        }
        if let Some(pending) = self.pending.as_ref().filter(|g| g.session_id == session_id) {
            return (pending, Which::Pending);
        }
        if let Some(previous) = self
            .previous
            .as_ref()
            .filter(|g| g.session_id == session_id)
        {
            return (previous, Which::Previous);
        }
        (&self.current, Which::Current)
    }

    pub(crate) fn gap_skips(&self) -> u64 {
        let skipped = |g: &Arc<RxGen>| g.watermark.skipped();
        self.retired_gap_skips + skipped(&self.current) + self.previous.as_ref().map_or(0, skipped)
    }
}
