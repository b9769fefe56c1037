//! Key generations: what one handshake's keys seal and open with. A re-key makes new
//! generations; the old TX generation is dropped (its pool with it), so nothing ever
//! seals again under a key once a newer one is in use.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use netmesh_pool::{PacketOpener, ThreadLocalPool};

use super::flow::Watermark;
use super::streams::lock;
use super::SessionConfig;
use crate::SessionKeys;

/// "No sender is blocked" in [`TxGen::blocked_at`].
pub(crate) const NOT_BLOCKED: u64 = u64::MAX;

/// The sending half of one key generation.
pub(crate) struct TxGen {
    pub(crate) session_id: u64,
    pub(crate) pool: ThreadLocalPool,
    /// Counters below this may be sealed and sent (`u64::MAX`: no counter credit).
    pub(crate) limit: AtomicU64,
    /// The `limit` at which a sender sealed a packet beyond it (then every sender is
    /// blocked until the limit moves), or [`NOT_BLOCKED`].
    pub(crate) blocked_at: AtomicU64,
    /// Since when senders are blocked on credit (nanoseconds since the session's epoch;
    /// 0: not blocked).
    pub(crate) blocked_since: AtomicU64,
    /// The re-key threshold was reached on this generation.
    pub(crate) rekey_due: AtomicBool,
    /// One past the last counter sealed by any thread (a plain store per packet): a
    /// sender whose next counter would be beyond the limit stops before sealing.
    pub(crate) next_hint: AtomicU64,
}

impl TxGen {
    pub(crate) fn new(keys: &SessionKeys, config: &SessionConfig, limit: u64) -> Self {
        Self {
            session_id: keys.session_id(),
            pool: ThreadLocalPool::new(config.pool_size, keys.tx_key(), keys.session_id()),
            limit: AtomicU64::new(limit),
            blocked_at: AtomicU64::new(NOT_BLOCKED),
            blocked_since: AtomicU64::new(0),
            rekey_due: AtomicBool::new(false),
            next_hint: AtomicU64::new(0),
        }
    }

    /// Whether senders must wait for credit.
    #[inline]
    pub(crate) fn is_blocked(&self) -> bool {
        let limit = self.limit.load(Ordering::Acquire);
        self.blocked_at.load(Ordering::Acquire) == limit
            || self.next_hint.load(Ordering::Relaxed) >= limit
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
    pub(crate) watermark: Mutex<Watermark>,
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
            watermark: Mutex::new(Watermark::new()),
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
        let skipped = |g: &Arc<RxGen>| lock(&g.watermark).skipped();
        self.retired_gap_skips + skipped(&self.current) + self.previous.as_ref().map_or(0, skipped)
    }
}
