//! [`SessionStats`]: counters a session keeps, for logs and the CLI's `--json` line.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! stats {
    ($( $(#[$doc:meta])* $field:ident, )*) => {
        /// A snapshot of a session's counters (each monotonic over the session's life,
        /// across re-keys).
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct SessionStats {
            $( $(#[$doc])* pub $field: u64, )*
        }

        /// The live counters behind [`SessionStats`].
        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $( pub(crate) $field: AtomicU64, )*
        }

        /// Adds every counter of `other`: totals over several sessions (an endpoint's
        /// peers, past and present).
        impl std::ops::AddAssign<&SessionStats> for SessionStats {
            fn add_assign(&mut self, other: &SessionStats) {
                $( self.$field += other.$field; )*
            }
        }

        impl Counters {
            pub(crate) fn snapshot(&self) -> SessionStats {
                SessionStats {
                    $( $field: self.$field.load(Ordering::Relaxed), )*
                }
            }
        }
    };
}

stats! {
    /// Data packets sent (first transmissions, events of the application).
    packets_sent,
    /// Events sent in those packets (exact while each stream is sent from one thread at
    /// a time; sends racing on one stream may undercount it).
    events_sent,
    /// Datagram bytes of those packets (the same caveat as `events_sent`).
    bytes_sent,
    /// Packets re-sealed and sent again after a NACK or a tail-loss timeout.
    retransmits,
    /// Control packets sent: CREDIT, ACK, NACK, SKIP, grants.
    control_sent,
    /// Heartbeats sent.
    heartbeats_sent,
    /// msg1 sent again (handshake retries) and msg2 sent again (duplicate msg1).
    handshake_resent,
    /// Data packets accepted.
    packets_received,
    /// Events in accepted data packets (before reliable deduplication).
    events_received,
    /// Datagram bytes of accepted data packets.
    bytes_received,
    /// Events delivered to the application (fire-and-forget and in-order reliable).
    events_delivered,
    /// Heartbeats accepted.
    heartbeats_received,
    /// Control packets accepted.
    control_received,
    /// Refused: not a netmesh packet.
    rejected_not_netmesh,
    /// Refused: malformed header, length or frames, or malformed control payload.
    rejected_malformed,
    /// Refused: another session's packet.
    rejected_wrong_session,
    /// Refused: authentication failed.
    rejected_auth,
    /// Refused: replayed or outside the replay window.
    rejected_replay,
    /// Refused: handshake datagrams refused or unexpected.
    rejected_handshake,
    /// Refused: data before establishment or after close.
    rejected_state,
    /// Ignored: a `MeshNode`'s 72-byte non-netmesh datagrams.
    ignored,
    /// Reliable packets received again after delivery (dropped).
    duplicates,
    /// Reliable packets that arrived ahead of a gap (buffered).
    out_of_order,
    /// Reliable packets dropped because they were beyond the reorder buffer (recovered
    /// by NACK).
    reorder_overflow,
    /// Fire-and-forget packets missing from their stream's sequence (net of late
    /// arrivals).
    lost_packets,
    /// Reliable sequences given up (SKIP received, or NACKed after leaving the buffer).
    lost_reliable,
    /// Send calls refused for lack of counter credit, stream window or buffer space.
    blocked,
    /// Packets built beyond the credit by a thread race and deferred.
    deferred,
    /// Deferred packets dropped because the replay window had moved past them.
    stale_dropped,
    /// Counters the receiver gave up as gaps (lost packets, unused leases).
    gap_skips,
    /// Stream windows reopened after a grant stall.
    grant_stalls,
    /// Re-keys completed.
    rekeys,
}

#[cfg(test)]
mod tests {
    use super::SessionStats;

    #[test]
    fn adding_stats_sums_every_field() {
        let one = SessionStats {
            packets_sent: 2,
            rejected_auth: 5,
            rekeys: 3,
            ..SessionStats::default()
        };
        let mut total = SessionStats::default();
        total += &one;
        total += &one;
        assert_eq!(
            (total.packets_sent, total.rejected_auth, total.rekeys),
            (4, 10, 6)
        );
        assert_eq!(total.events_sent, 0);
    }
}
