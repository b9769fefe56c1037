//! Counters of an endpoint ([`EndpointStats`]) and of the datagrams it refused
//! ([`Rejected`]).

use std::sync::atomic::{AtomicU64, Ordering};

use netmesh_session::SessionStats;

use crate::SocketInfo;

macro_rules! counters {
    ($snapshot:ident, $live:ident, $( $(#[$doc:meta])* $field:ident, )*) => {
        /// A snapshot of counters (each monotonic over the endpoint's life).
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct $snapshot {
            $( $(#[$doc])* pub $field: u64, )*
        }

        #[derive(Debug, Default)]
        pub(crate) struct $live {
            $( pub(crate) $field: AtomicU64, )*
        }

        impl $live {
            pub(crate) fn snapshot(&self) -> $snapshot {
                $snapshot { $( $field: self.$field.load(Ordering::Relaxed), )* }
            }
        }

        impl $snapshot {
            /// The sum of all fields.
            #[must_use]
            pub fn total(&self) -> u64 {
                0 $( + self.$field )*
            }
        }
    };
}

counters! {
    Rejected, RejectedCounters,
    /// Not a netmesh packet: too short for a header, or a wrong magic.
    not_netmesh,
    /// A netmesh header that is malformed (version, lengths), a length that does not
    /// match the header, frames that do not match the event count, a malformed control
    /// message.
    malformed,
    /// A packet of another session (session id or nonce prefix).
    wrong_session,
    /// The tag did not verify: forged or corrupted.
    auth_failed,
    /// Replayed, or outside the replay window.
    replayed,
    /// A handshake refused: invalid msg1/msg2, unexpected, or this endpoint does not
    /// accept handshakes.
    handshake_refused,
    /// A handshake initiation dropped by the per-source rate limit.
    rate_limited,
    /// A handshake initiation refused because the endpoint has its maximum of peers.
    peer_limit,
    /// A non-handshake datagram from an address with no session.
    unknown_peer,
    /// A data packet before establishment, or after the session closed.
    wrong_state,
}

counters! {
    Traffic, TrafficCounters,
    /// Datagrams received (each datagram of a GRO buffer counts).
    datagrams_in,
    /// Bytes of those datagrams.
    bytes_in,
    /// recvmmsg calls that returned data.
    recv_calls,
    /// Datagrams sent.
    datagrams_out,
    /// Bytes of those datagrams.
    bytes_out,
    /// sendmsg calls (a GSO call sends several datagrams).
    send_calls,
    /// Datagrams the kernel refused to send (errors other than a full buffer).
    send_errors,
    /// Handshakes this endpoint answered (sessions created as responder, including
    /// those proposed to replace a peer's session after a new msg1 from its address).
    handshakes_accepted,
    /// Handshakes this endpoint started.
    handshakes_initiated,
    /// Handshakes that did not complete in time.
    handshakes_failed,
    /// Peers reported silent and dropped.
    peers_silent,
    /// Deliveries handed to the application.
    deliveries,
    /// Events in those deliveries.
    events_delivered,
}

/// Everything an endpoint counts, for logs and the CLI's `--json` line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointStats {
    /// Datagrams and calls in and out, handshakes, deliveries.
    pub traffic: Traffic,
    /// Every datagram refused, by kind (`rejected.total()` for all of them).
    pub rejected: Rejected,
    /// The sessions' counters summed over every peer, current and past: events and bytes
    /// in and out, losses, duplicates, retransmissions, flow-control waits. Their
    /// `rejected_*` fields count only what reached a session; [`rejected`](Self::rejected)
    /// counts everything.
    pub sessions: SessionStats,
    /// Peers with a session now.
    pub peers: usize,
    /// Buffer sizes granted and offloads of each socket.
    pub sockets: Vec<SocketInfo>,
}

impl EndpointStats {
    /// Whether UDP GSO is in use for sends.
    #[must_use]
    pub fn gso(&self) -> bool {
        self.sockets.iter().any(|s| s.gso_segments > 1)
    }

    /// Whether UDP GRO is in use for receives.
    #[must_use]
    pub fn gro(&self) -> bool {
        self.sockets.iter().any(|s| s.gro_segments > 1)
    }
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}
