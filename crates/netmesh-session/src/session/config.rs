//! [`SessionConfig`]: every tunable of a session, with documented defaults.

use std::time::Duration;

/// The largest counter-credit window a receiver grants: half the 1024-counter replay
/// window, the other half being room for thread leases and reordering.
pub const MAX_CREDIT_WINDOW: u64 = 512;

/// Tunables of a [`Session`](crate::Session). `Default` gives the documented values.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use netmesh_session::SessionConfig;
///
/// let config = SessionConfig {
///     heartbeat_interval: Duration::from_millis(500),
///     ..SessionConfig::default()
/// };
/// assert_eq!(config.credit_window, 256);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// How often a heartbeat is sent while established. Default 1 s.
    pub heartbeat_interval: Duration,
    /// An established session that has heard nothing authenticated from its peer for
    /// this long reports [`Event::PeerSilent`](crate::Event::PeerSilent) (once per
    /// silence). Default 15 s.
    pub idle_timeout: Duration,
    /// An initiator re-sends the same msg1 this often until msg2 arrives. Default 250 ms
    /// (a net-mesh `NetAdapter` accepts at most 5 msg1 a second per source).
    pub handshake_retry: Duration,
    /// An initiator gives up when no valid msg2 has arrived this long after `connect`.
    /// Default 5 s.
    pub handshake_timeout: Duration,
    /// Counter credit is applied before the peer's kind is known; if no netmesh marker
    /// arrives within this grace after establishment (or a heartbeat without the marker
    /// arrives first), the peer is taken for net-mesh. Default 250 ms.
    pub peer_detect_grace: Duration,
    /// The counter-credit window this side grants its netmesh peer: how many counters
    /// above the watermark the peer may seal. At most [`MAX_CREDIT_WINDOW`]. Size it to
    /// the socket receive buffer (granted bytes / largest datagram). Default 256.
    pub credit_window: u64,
    /// While traffic flows, CREDIT is re-sent at least this often (and at once whenever
    /// the watermark moved by half a window). Default 5 ms.
    pub credit_interval: Duration,
    /// A counter missing below a received one is given up after this long, so the
    /// watermark passes lost packets and unused lease holes. Default 20 ms.
    pub gap_timeout: Duration,
    /// At most one NACK per reliable stream per this interval. Default 5 ms.
    pub nack_interval: Duration,
    /// A gap in a reliable stream is NACKed only once it has lasted this long, so that
    /// packets that are merely reordered are not retransmitted. Default 2 ms.
    pub nack_delay: Duration,
    /// Cumulative ACKs of a reliable stream are sent at most this often. Default 5 ms.
    pub ack_interval: Duration,
    /// A reliable stream whose sent packets have gone unacknowledged this long
    /// retransmits its oldest unacknowledged packet (tail loss: no later packet arrives
    /// to reveal the gap). Default 50 ms.
    pub tail_loss_timeout: Duration,
    /// Packets kept per reliable stream for retransmission. A full buffer blocks that
    /// stream's sender until ACKs free it. Default 4096.
    pub retransmit_buffer: usize,
    /// Out-of-order packets kept per reliable stream by the receiver. Default 4096.
    pub reorder_buffer: usize,
    /// A stream whose byte window (net-mesh grants) shows no grant progress for this
    /// long reopens its window, so a lost grant never deadlocks the sender. Default
    /// 200 ms.
    pub grant_stall_timeout: Duration,
    /// A netmesh initiator starts a re-key handshake once its TX counter reaches this
    /// value. Default 2^60 (far below the counter's end). Tests set it low.
    pub rekey_after: u64,
    /// Builders in the session's TX pool (shared queue). Default 64.
    pub pool_size: usize,
    /// Streams a session keeps state for, in each direction, beyond the first 64 ids
    /// (which cost a fixed array). Packets of streams beyond it are refused
    /// (sending) or delivered without per-stream accounting (receiving fire-and-forget)
    /// or dropped (receiving reliable), so a peer cannot make the session allocate
    /// without bound. Default 1024.
    pub max_streams: usize,
    /// A reliable stream whose oldest packet has gone unacknowledged this long (while
    /// probes and NACKs went on) gives it up: the receiver is told with a SKIP and
    /// both sides report [`Event::StreamLoss`](crate::Event::StreamLoss). Default 10 s.
    pub retransmit_give_up: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(15),
            handshake_retry: Duration::from_millis(250),
            handshake_timeout: Duration::from_secs(5),
            peer_detect_grace: Duration::from_millis(250),
            credit_window: 256,
            credit_interval: Duration::from_millis(5),
            gap_timeout: Duration::from_millis(20),
            nack_interval: Duration::from_millis(5),
            nack_delay: Duration::from_millis(2),
            ack_interval: Duration::from_millis(5),
            tail_loss_timeout: Duration::from_millis(50),
            retransmit_buffer: 4096,
            reorder_buffer: 4096,
            grant_stall_timeout: Duration::from_millis(200),
            rekey_after: 1 << 60,
            pool_size: 64,
            max_streams: 1024,
            retransmit_give_up: Duration::from_secs(10),
        }
    }
}
