//! Reliable and fire-and-forget stream state, sans-IO.
//!
//! A reliable stream (flag RELIABLE, between netmesh peers) has a
//! [`RetransmitBuffer`] on the sending side and a [`ReliableReceiver`] on the receiving
//! side. The receiver reports gaps with NACKs (netmesh-wire's [`NackPayload`]:
//! cumulative `next_expected` plus a bitmap of the next 64 sequences) and progress with
//! cumulative ACKs; the sender resends NACKed packets (re-sealed under fresh counters by
//! the caller) and probes when the tail of the stream may have been lost. When the
//! sender gives up a packet it says so with a SKIP, and the receiver counts it lost
//! instead of waiting forever: loss beyond the buffer is reported, never silent.
//!
//! A fire-and-forget stream keeps only a [`StreamTracker`] on the receiving side: a
//! bounded bitmap that counts received sequences and gaps.
//!
//! All structures are bounded, never panic on any sequence number, and allocate
//! nothing per packet once their rings have grown to the traffic's reorder depth.
//!
//! [`NackPayload`]: netmesh_wire::NackPayload

mod ring;
mod rx;
mod tracker;
mod tx;

pub use rx::{Outcome, ReceiverConfig, ReceiverStats, ReliableReceiver};
pub use tracker::{StreamTracker, TrackOutcome, TrackerStats};
pub use tx::{
    HeldEvents, Resend, RetransmitBuffer, RetransmitConfig, RetransmitError, RetransmitStats,
};
