//! Timers: what `handle_timeout` does and when `poll_timeout` asks for it.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::gen::RxGen;
use super::streams::lock;
use super::{Event, Inner, CLOSED, ESTABLISHED, HANDSHAKING, PEER_NET_MESH, PEER_UNKNOWN};

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Inner {
    pub(super) fn handle_timeout(&self, now: Instant) {
        self.note_now(now);
        self.handshake_timers(now);
        if self.state.load(Ordering::Acquire) != ESTABLISHED {
            return;
        }
        self.heartbeat_timers(now);
        self.idle_timer(now);
        if let Some(keys) = self.rx.load_full() {
            self.credit_timers(&keys.current, now);
        }
        self.stream_timers(now);
        self.blocked_probe(now);
    }

    fn handshake_timers(&self, now: Instant) {
        let mut hs = lock(&self.handshake);
        if hs.initiator.is_none() {
            return;
        }
        if hs.deadline.is_some_and(|deadline| now >= deadline) {
            let rekey = hs.finish();
            drop(hs);
            if rekey {
                // Keep the old keys; try a new re-key handshake.
                self.start_rekey(now);
            } else if self.state.load(Ordering::Acquire) == HANDSHAKING {
                self.set_state(CLOSED);
                self.push_event(Event::HandshakeTimedOut);
            }
            return;
        }
        if hs.retry_at.is_some_and(|at| now >= at) {
            hs.retry_at = Some(now + self.config.handshake_retry);
            let msg1 = hs.msg1.clone();
            drop(hs);
            if let Some(msg1) = msg1 {
                self.counters
                    .handshake_resent
                    .fetch_add(1, Ordering::Relaxed);
                self.queue(msg1);
            }
        }
    }

    fn heartbeat_timers(&self, now: Instant) {
        let mut timers = lock(&self.timers);
        let mut marker = false;
        if timers.next_heartbeat.is_some_and(|at| now >= at) {
            timers.next_heartbeat = Some(now + self.config.heartbeat_interval);
            marker = true;
        }
        if timers.markers_until.is_some_and(|until| now < until)
            && timers.next_marker.is_some_and(|at| now >= at)
        {
            timers.next_marker =
                Some(now + (self.config.peer_detect_grace / 5).max(Duration::from_millis(1)));
            marker = true;
        }
        let grace_over = timers.grace_deadline.is_some_and(|at| now >= at);
        if grace_over {
            timers.grace_deadline = None;
        }
        drop(timers);
        if marker {
            self.send_heartbeat(true);
        }
        if grace_over && self.peer_kind.load(Ordering::Acquire) == PEER_UNKNOWN {
            self.set_peer_kind(PEER_NET_MESH, now);
        }
    }

    fn idle_timer(&self, now: Instant) {
        let heard = self.instant(self.last_heard.load(Ordering::Relaxed));
        let silent_for = now.saturating_duration_since(heard);
        if silent_for >= self.config.idle_timeout
            && !self.idle_reported.swap(true, Ordering::Relaxed)
        {
            self.push_event(Event::PeerSilent { silent_for });
        }
    }

    fn credit_timers(&self, gen: &RxGen, now: Instant) {
        let moved = gen.watermark.expire_gap(now, self.config.gap_timeout);
        let sent_at = self.instant(gen.credit_sent_at.load(Ordering::Relaxed));
        let due = now.saturating_duration_since(sent_at) >= self.config.credit_interval;
        if moved || (due && gen.traffic.load(Ordering::Relaxed)) {
            self.send_credit(gen, now);
        }
    }

    fn stream_timers(&self, now: Instant) {
        let netmesh = self.peer_is_netmesh();
        self.rx_streams.for_each(|id, stream| {
            if let Some(rx) = stream.reliable.get() {
                self.acknowledge(id, &mut lock(rx), now);
            }
        });
        let give_up = self.config.retransmit_give_up;
        let stall = self.config.grant_stall_timeout;
        self.tx_streams.for_each(|id, stream| {
            if let Some(buffer) = stream.reliable.get() {
                let mut buffer = lock(buffer);
                if netmesh {
                    let mut probe = buffer.poll_probe(now);
                    for (sequence, events) in probe.by_ref() {
                        self.retransmit(id, sequence, events);
                    }
                }
                let waiting_since = self.instant(stream.ack_progress_at.load(Ordering::Relaxed));
                if netmesh
                    && !buffer.is_empty()
                    && now.saturating_duration_since(waiting_since) >= give_up
                {
                    // The oldest packet was never acknowledged: give it up.
                    let first = buffer.first_unacked();
                    buffer.discard_before(first + 1);
                    stream
                        .ack_progress_at
                        .store(self.nanos(now).max(1), Ordering::Relaxed);
                    self.report_loss(id, first, first + 1);
                    self.bump_credit();
                }
                if netmesh {
                    if let Some(first_available) = buffer.poll_skip(now) {
                        self.send_skip(id, first_available);
                    }
                }
            }
            if stream.window_blocked.load(Ordering::Relaxed) {
                let since = self.instant(stream.window_progress_at.load(Ordering::Relaxed));
                if now.saturating_duration_since(since) >= stall {
                    // No grant progress: take what was sent as consumed, so a lost grant
                    // never deadlocks the sender.
                    let sent = stream.window_sent.load(Ordering::Relaxed);
                    stream.window_consumed.fetch_max(sent, Ordering::AcqRel);
                    stream.window_blocked.store(false, Ordering::Relaxed);
                    stream
                        .window_progress_at
                        .store(self.nanos(now).max(1), Ordering::Relaxed);
                    self.counters.grant_stalls.fetch_add(1, Ordering::Relaxed);
                    self.push_event(Event::GrantStalled { stream_id: id });
                    self.bump_credit();
                }
            }
        });
    }

    /// A sender blocked on credit for a while probes with a heartbeat: the receiver
    /// answers with CREDIT (a CREDIT may have been lost while nothing else flowed).
    fn blocked_probe(&self, now: Instant) {
        let Some(tx) = self.tx.load_full() else {
            return;
        };
        let since = tx.blocked_since.load(Ordering::Relaxed);
        if since == 0 || !tx.is_blocked() {
            return;
        }
        let interval = self.probe_interval();
        let mut timers = lock(&self.timers);
        let last = timers.last_probe.unwrap_or_else(|| self.instant(since));
        if now.saturating_duration_since(last) >= interval {
            timers.last_probe = Some(now);
            drop(timers);
            self.send_heartbeat(true);
        }
    }

    fn probe_interval(&self) -> Duration {
        self.config.credit_interval * 4
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        let state = self.state.load(Ordering::Acquire);
        if state == CLOSED {
            return None;
        }
        let mut next = {
            let hs = lock(&self.handshake);
            if hs.initiator.is_some() {
                earliest(hs.retry_at, hs.deadline)
            } else {
                None
            }
        };
        if state != ESTABLISHED {
            return next;
        }
        {
            let timers = lock(&self.timers);
            next = earliest(next, timers.next_heartbeat);
            if timers
                .markers_until
                .is_some_and(|until| timers.next_marker.is_some_and(|at| at < until))
            {
                next = earliest(next, timers.next_marker);
            }
            next = earliest(next, timers.grace_deadline);
            if let (Some(last), Some(tx)) = (timers.last_probe, self.tx.load().as_ref()) {
                if tx.is_blocked() {
                    next = earliest(next, Some(last + self.probe_interval()));
                }
            }
        }
        if let Some(tx) = self.tx.load().as_ref() {
            let since = tx.blocked_since.load(Ordering::Relaxed);
            if since != 0 && tx.is_blocked() {
                next = earliest(next, Some(self.instant(since) + self.probe_interval()));
            }
        }
        if !self.idle_reported.load(Ordering::Relaxed) {
            let heard = self.instant(self.last_heard.load(Ordering::Relaxed));
            next = earliest(next, Some(heard + self.config.idle_timeout));
        }
        if let Some(keys) = self.rx.load().as_ref() {
            let gen = &keys.current;
            next = earliest(next, gen.watermark.gap_deadline(self.config.gap_timeout));
            if gen.traffic.load(Ordering::Relaxed) && self.peer_is_netmesh() {
                let sent_at = self.instant(gen.credit_sent_at.load(Ordering::Relaxed));
                next = earliest(next, Some(sent_at + self.config.credit_interval));
            }
        }
        let netmesh = self.peer_is_netmesh();
        self.rx_streams.for_each(|_, stream| {
            if let Some(rx) = stream.reliable.get() {
                if netmesh {
                    next = earliest(next, lock(rx).receiver().poll_timeout());
                }
            }
        });
        self.tx_streams.for_each(|_, stream| {
            if let Some(buffer) = stream.reliable.get() {
                let buffer = lock(buffer);
                if netmesh {
                    next = earliest(next, buffer.poll_timeout());
                    if !buffer.is_empty() {
                        let since = self.instant(stream.ack_progress_at.load(Ordering::Relaxed));
                        next = earliest(next, Some(since + self.config.retransmit_give_up));
                    }
                }
            }
            if stream.window_blocked.load(Ordering::Relaxed) {
                let since = self.instant(stream.window_progress_at.load(Ordering::Relaxed));
                next = earliest(next, Some(since + self.config.grant_stall_timeout));
            }
        });
        next
    }
}
