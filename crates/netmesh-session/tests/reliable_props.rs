//! Property tests of the reliable-stream structures against simple models built on
//! `BTreeSet`/`BTreeMap`: the reorder buffer delivers exactly the in-order sequence
//! without repeats, its counters and NACK bitmaps match the model; the retransmit
//! buffer frees on ACK, resends exactly the NACKed sequences it holds (paced), reports
//! the ones it gave up, and stays within its capacity; the fire-and-forget tracker
//! never double counts.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use netmesh_session::reliable::{
    Outcome, ReceiverConfig, ReliableReceiver, RetransmitBuffer, RetransmitConfig, RetransmitError,
    StreamTracker, TrackOutcome,
};
use netmesh_wire::NackPayload;
use proptest::prelude::*;

/// Sequence numbers: mostly a small range (so that arrivals collide, fill gaps and
/// overflow small windows), sometimes the top of the range or anything at all.
fn seq() -> impl Strategy<Value = u64> {
    prop_oneof![
        20 => 0..150u64,
        2 => (u64::MAX - 80)..=u64::MAX,
        1 => any::<u64>(),
    ]
}

#[derive(Debug, Clone)]
enum RxOp {
    Packet(u64),
    Pop,
    Skip(u64),
    SkipGaps,
}

fn rx_op() -> impl Strategy<Value = RxOp> {
    prop_oneof![
        12 => seq().prop_map(RxOp::Packet),
        5 => Just(RxOp::Pop),
        1 => seq().prop_map(RxOp::Skip),
        1 => Just(RxOp::SkipGaps),
    ]
}

/// The receiver's specification, written as directly as possible.
#[derive(Debug, Default)]
struct RxModel {
    capacity: u64,
    /// Every sequence ever accepted.
    seen: BTreeSet<u64>,
    /// Accepted, not yet delivered.
    held: BTreeSet<u64>,
    /// Largest `first_available` of any SKIP.
    floor: u64,
    highest_heard: Option<u64>,
    accepted: u64,
    delivered: u64,
    duplicates: u64,
    beyond_window: u64,
    lost: u64,
}

impl RxModel {
    /// The smallest sequence at or above the floor that has not been accepted.
    fn next_expected(&self) -> u64 {
        let mut n = self.floor;
        while self.seen.contains(&n) {
            n += 1;
        }
        n
    }

    fn packet(&mut self, seq: u64) -> Outcome {
        let ne = self.next_expected();
        if seq < ne || self.seen.contains(&seq) {
            self.duplicates += 1;
            return Outcome::Duplicate;
        }
        // The window starts at the oldest sequence neither delivered nor given up.
        let base = self.held.first().map_or(ne, |&h| h.min(ne));
        if seq == u64::MAX || seq - base >= self.capacity {
            self.beyond_window += 1;
            if seq != u64::MAX {
                self.highest_heard = self.highest_heard.max(Some(seq));
            }
            return Outcome::BeyondWindow;
        }
        self.seen.insert(seq);
        self.held.insert(seq);
        self.accepted += 1;
        self.highest_heard = self.highest_heard.max(Some(seq));
        if seq == ne {
            Outcome::InOrder
        } else {
            Outcome::Buffered
        }
    }

    fn pop(&mut self) -> Option<u64> {
        let ne = self.next_expected();
        match self.held.first().copied() {
            Some(s) if s < ne => {
                self.held.remove(&s);
                self.delivered += 1;
                Some(s)
            }
            _ => None,
        }
    }

    fn skip(&mut self, first: u64) -> u64 {
        let ne = self.next_expected();
        if first <= ne {
            return 0;
        }
        let received = self.seen.range(ne..first).count() as u64;
        let lost = first - ne - received;
        self.lost += lost;
        self.floor = first;
        lost
    }

    fn nack(&self) -> Option<NackPayload> {
        let ne = self.next_expected();
        let highest = self.highest_heard?;
        if highest <= ne {
            return None;
        }
        let mut missing_bitmap = 0;
        for bit in 0..64u64 {
            match ne.checked_add(1 + bit) {
                Some(s) if s <= highest => {
                    if !self.seen.contains(&s) {
                        missing_bitmap |= 1 << bit;
                    }
                }
                _ => break,
            }
        }
        Some(NackPayload {
            next_expected: ne,
            missing_bitmap,
        })
    }
}

/// The payload a test packet carries: derived from its sequence so that delivery of
/// the wrong packet under a sequence shows.
fn payload(seq: u64) -> u64 {
    seq.rotate_left(17) ^ 0x5555
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Every operation's result, every counter and every NACK agree with the model.
    #[test]
    fn receiver_matches_model(capacity in 1usize..80, ops in prop::collection::vec(rx_op(), 0..400)) {
        let mut rx = ReliableReceiver::new(ReceiverConfig { capacity, ..ReceiverConfig::default() });
        let mut model = RxModel { capacity: capacity as u64, ..RxModel::default() };
        let mut last_delivered: Option<u64> = None;
        for op in ops {
            match op {
                RxOp::Packet(s) => prop_assert_eq!(rx.on_packet(s, payload(s)), model.packet(s), "seq {}", s),
                RxOp::Pop => {
                    let got = rx.pop_ready();
                    prop_assert_eq!(got.map(|(s, _)| s), model.pop());
                    if let Some((s, p)) = got {
                        prop_assert_eq!(p, payload(s));
                        prop_assert!(last_delivered < Some(s), "strictly rising delivery");
                        last_delivered = Some(s);
                    }
                }
                RxOp::Skip(first) => prop_assert_eq!(rx.skip_to(first), model.skip(first)),
                RxOp::SkipGaps => {
                    let want = model.highest_heard.map_or(0, |h| model.skip(h + 1));
                    prop_assert_eq!(rx.skip_gaps(), want);
                }
            }
            prop_assert_eq!(rx.next_expected(), model.next_expected());
            prop_assert_eq!(rx.ack(), model.next_expected());
            prop_assert_eq!(rx.nack(), model.nack());
            prop_assert_eq!(rx.highest_seen(), model.highest_heard);
            prop_assert_eq!(rx.buffered(), model.held.len());
            prop_assert_eq!(rx.ready(), model.held.range(..model.next_expected()).count());
            let stats = rx.stats();
            prop_assert_eq!(stats.accepted, model.accepted);
            prop_assert_eq!(stats.delivered, model.delivered);
            prop_assert_eq!(stats.duplicates, model.duplicates);
            prop_assert_eq!(stats.beyond_window, model.beyond_window);
            prop_assert_eq!(stats.lost, model.lost);
        }
    }

    /// Sequences 0..n arriving in any order, any number of times each, through a small
    /// window (refused ones come back later, as retransmissions would) are delivered
    /// exactly once each, in order.
    #[test]
    fn any_arrival_order_delivers_each_once_in_order(
        capacity in 1usize..40,
        arrivals in prop::collection::vec((0..120u64, 0..3usize), 0..360),
        n in 0..120u64,
    ) {
        let mut rx = ReliableReceiver::new(ReceiverConfig { capacity, ..ReceiverConfig::default() });
        let mut delivered = Vec::new();
        let drain = |rx: &mut ReliableReceiver<u64>, delivered: &mut Vec<u64>| {
            while let Some((s, p)) = rx.pop_ready() {
                assert_eq!(p, payload(s));
                delivered.push(s);
            }
        };
        for (s, extra) in arrivals {
            let s = s % n.max(1);
            if s >= n {
                continue;
            }
            for _ in 0..=extra {
                rx.on_packet(s, payload(s));
            }
            drain(&mut rx, &mut delivered);
        }
        // Retransmission of whatever is still missing, oldest first, until done.
        while rx.next_expected() < n {
            for s in rx.next_expected()..n {
                rx.on_packet(s, payload(s));
            }
            drain(&mut rx, &mut delivered);
        }
        drain(&mut rx, &mut delivered);
        prop_assert_eq!(delivered, (0..n).collect::<Vec<_>>());
        prop_assert_eq!(rx.stats().delivered, n);
        prop_assert_eq!(rx.stats().lost, 0);
        prop_assert_eq!(rx.nack(), None);
    }

    /// The NACK bitmap names exactly the missing sequences up to the highest heard of.
    #[test]
    fn nack_lists_exactly_the_missing(received in prop::collection::btree_set(0..200u64, 0..120)) {
        let mut rx = ReliableReceiver::new(ReceiverConfig::default());
        for &s in &received {
            rx.on_packet(s, ());
        }
        let ne = (0..).find(|s| !received.contains(s)).unwrap();
        prop_assert_eq!(rx.next_expected(), ne);
        let highest = received.last().copied();
        match rx.nack() {
            None => prop_assert!(highest.is_none_or(|h| h < ne)),
            Some(nack) => {
                let listed: BTreeSet<u64> = nack.missing_sequences().collect();
                let h = highest.unwrap();
                let expected: BTreeSet<u64> = (ne..=h.min(ne + 64))
                    .filter(|s| !received.contains(s))
                    .collect();
                prop_assert_eq!(listed, expected);
            }
        }
    }
}

#[derive(Debug, Clone)]
enum TxOp {
    Push(usize),
    /// Push with a wrong sequence (offset from the right one, never 0).
    PushWrong(u64),
    Ack(u64),
    Discard(u64),
    Nack(u64, u64),
    Probe,
    Skip,
    Wait(u64),
}

fn tx_op() -> impl Strategy<Value = TxOp> {
    prop_oneof![
        10 => (0..4usize).prop_map(TxOp::Push),
        1 => (1..5u64).prop_map(TxOp::PushWrong),
        3 => (0..120u64).prop_map(TxOp::Ack),
        1 => (0..120u64).prop_map(TxOp::Discard),
        5 => ((0..120u64), any::<u64>()).prop_map(|(n, b)| TxOp::Nack(n, b)),
        2 => Just(TxOp::Probe),
        2 => Just(TxOp::Skip),
        4 => (0..40u64).prop_map(TxOp::Wait),
    ]
}

fn events_of(seq: u64, n: usize) -> Vec<Bytes> {
    (0..n)
        .map(|i| {
            Bytes::copy_from_slice(
                &[
                    &seq.to_le_bytes()[..],
                    &[u8::try_from(i).unwrap_or(u8::MAX)],
                ]
                .concat(),
            )
        })
        .collect()
}

/// The retransmit buffer's specification.
#[derive(Debug)]
struct TxModel {
    capacity: u64,
    interval: Duration,
    probe_timeout: Duration,
    held: BTreeMap<u64, (Vec<Bytes>, Option<Instant>)>,
    acked: u64,
    first_unacked: u64,
    next_seq: u64,
    probe_armed: Option<Instant>,
    last_skip: Option<Instant>,
}

impl TxModel {
    fn ack(&mut self, n: u64, now: Instant) -> Result<usize, RetransmitError> {
        if n > self.next_seq {
            return Err(RetransmitError::AckBeyondSent {
                acked: n,
                next_seq: self.next_seq,
            });
        }
        if n <= self.acked {
            return Ok(0);
        }
        self.acked = n;
        let before = self.held.len();
        self.held.retain(|&s, _| s >= n);
        let freed = before - self.held.len();
        self.first_unacked = self.first_unacked.max(n);
        if freed > 0 {
            self.probe_armed = Some(now);
        }
        Ok(freed)
    }

    /// The sequences resent for `wanted`, and whether a SKIP is needed.
    fn resend(&mut self, wanted: impl Iterator<Item = u64>, now: Instant) -> (Vec<u64>, bool) {
        let mut out = Vec::new();
        let mut skip = false;
        for s in wanted {
            if s < self.acked {
                continue;
            }
            if s < self.first_unacked {
                skip = true;
                self.last_skip = None;
                continue;
            }
            if let Some((_, last)) = self.held.get_mut(&s) {
                if last.is_none_or(|l| now - l >= self.interval) {
                    *last = Some(now);
                    out.push(s);
                }
            }
        }
        (out, skip)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn retransmit_buffer_matches_model(capacity in 1usize..50, ops in prop::collection::vec(tx_op(), 0..300)) {
        let config = RetransmitConfig { capacity, ..RetransmitConfig::default() };
        let mut tx = RetransmitBuffer::new(config);
        let mut model = TxModel {
            capacity: capacity as u64,
            interval: config.retransmit_interval,
            probe_timeout: config.probe_timeout,
            held: BTreeMap::new(),
            acked: 0,
            first_unacked: 0,
            next_seq: 0,
            probe_armed: None,
            last_skip: None,
        };
        let t0 = Instant::now();
        let mut now = t0;
        for op in ops {
            match op {
                TxOp::Push(n) => {
                    let seq = model.next_seq;
                    let events = events_of(seq, n);
                    let expected = if seq - model.first_unacked >= model.capacity {
                        Err(RetransmitError::Full { capacity })
                    } else {
                        if model.held.is_empty() {
                            model.probe_armed = Some(now);
                        }
                        model.held.insert(seq, (events.clone(), None));
                        model.next_seq += 1;
                        Ok(())
                    };
                    prop_assert_eq!(tx.push(seq, &events, now), expected);
                }
                TxOp::PushWrong(d) => {
                    let got = model.next_seq.wrapping_add(d);
                    prop_assert_eq!(
                        tx.push(got, &[], now),
                        Err(RetransmitError::OutOfOrder { expected: model.next_seq, got })
                    );
                }
                TxOp::Ack(n) => prop_assert_eq!(tx.ack(n, now), model.ack(n, now)),
                TxOp::Discard(s) => {
                    let to = s.min(model.next_seq);
                    let expected = to.saturating_sub(model.first_unacked);
                    model.held.retain(|&k, _| k >= to);
                    model.first_unacked = model.first_unacked.max(to);
                    prop_assert_eq!(tx.discard_before(s), expected);
                }
                TxOp::Nack(next_expected, missing_bitmap) => {
                    let nack = NackPayload { next_expected, missing_bitmap };
                    let expected = model.ack(next_expected, now);
                    match tx.on_nack(&nack, now) {
                        Err(e) => prop_assert_eq!(Err(e), expected),
                        Ok(mut resend) => {
                            prop_assert!(expected.is_ok());
                            let got: Vec<(u64, Vec<Bytes>)> =
                                resend.by_ref().map(|(s, ev)| (s, ev.to_vec())).collect();
                            let (want, skip) = model.resend(nack.missing_sequences(), now);
                            prop_assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), want);
                            for (s, ev) in &got {
                                prop_assert_eq!(ev, &model.held[s].0);
                            }
                            prop_assert_eq!(resend.skip_to(), skip.then_some(model.first_unacked));
                        }
                    }
                }
                TxOp::Probe => {
                    let got: Vec<u64> = tx.poll_probe(now).map(|(s, _)| s).collect();
                    let want = if model.held.is_empty() {
                        model.probe_armed = None;
                        vec![]
                    } else {
                        match model.probe_armed {
                            None => {
                                model.probe_armed = Some(now);
                                vec![]
                            }
                            Some(armed) if now - armed < model.probe_timeout => vec![],
                            Some(_) => {
                                model.probe_armed = Some(now);
                                let oldest = model.first_unacked;
                                let newest = model.next_seq - 1;
                                let pair: Vec<u64> = if oldest == newest { vec![oldest] } else { vec![oldest, newest] };
                                model.resend(pair.into_iter(), now).0
                            }
                        }
                    };
                    prop_assert_eq!(got, want);
                }
                TxOp::Skip => {
                    let pending = model.acked < model.first_unacked;
                    let want = if pending && model.last_skip.is_none_or(|l| now - l >= model.interval) {
                        model.last_skip = Some(now);
                        Some(model.first_unacked)
                    } else {
                        None
                    };
                    prop_assert_eq!(tx.poll_skip(now), want);
                }
                TxOp::Wait(ms) => now += Duration::from_millis(ms),
            }
            prop_assert_eq!(tx.len(), model.held.len());
            prop_assert!(tx.len() <= capacity);
            prop_assert_eq!(tx.is_empty(), model.held.is_empty());
            prop_assert_eq!(tx.is_full(), model.held.len() == capacity);
            prop_assert_eq!(tx.first_unacked(), model.first_unacked);
            prop_assert_eq!(tx.next_seq(), model.next_seq);
            prop_assert_eq!(tx.acked(), model.acked);
            prop_assert_eq!(
                tx.pending_skip(),
                (model.acked < model.first_unacked).then_some(model.first_unacked)
            );
            for s in model.first_unacked.saturating_sub(3)..model.next_seq + 3 {
                prop_assert_eq!(tx.get(s).map(|held| held.to_vec()), model.held.get(&s).map(|h| h.0.clone()));
            }
        }
    }
}

/// The tracker's specification: the set of sequences received.
#[derive(Debug, Default)]
struct TrackerModel {
    received: BTreeSet<u64>,
    /// Sequences given up for good (too old when they came).
    next: u64,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Within the window: received counts distinct sequences, lost counts the
    /// sequences below the newest that never came, and nothing is counted twice.
    #[test]
    fn tracker_counts_each_sequence_once(
        arrivals in prop::collection::vec(prop_oneof![20 => 0..3000u64, 1 => seq()], 0..600),
    ) {
        let mut t = StreamTracker::new();
        let mut model = TrackerModel::default();
        let mut too_old = 0u64;
        for s in arrivals {
            let want = if s == u64::MAX {
                TrackOutcome::Unusable
            } else if s >= model.next {
                model.next = s + 1;
                model.received.insert(s);
                TrackOutcome::New
            } else if model.next - s > StreamTracker::WINDOW {
                too_old += 1;
                TrackOutcome::TooOld
            } else if model.received.contains(&s) {
                TrackOutcome::Duplicate
            } else {
                model.received.insert(s);
                TrackOutcome::Late
            };
            prop_assert_eq!(t.on_packet(s), want, "seq {}", s);
            let stats = t.stats();
            prop_assert_eq!(stats.received, model.received.len() as u64);
            prop_assert_eq!(stats.lost, model.next - model.received.len() as u64);
            prop_assert_eq!(stats.too_old, too_old);
            prop_assert_eq!(t.next(), model.next);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// A run recorded at once leaves the tracker exactly as recording its packets one by
    /// one does (bitmap, counters, newest), and reports the same number of duplicates:
    /// runs that start ahead, behind, inside the window and beyond it, short and longer
    /// than the window.
    #[test]
    fn a_run_is_recorded_as_its_packets_are(
        runs in prop::collection::vec(
            (prop_oneof![4 => 0..200u64, 2 => 0..3000u64, 1 => 0..u64::MAX - 4000], 0..2500u64),
            1..40,
        ),
    ) {
        let (mut by_run, mut by_packet) = (StreamTracker::new(), StreamTracker::new());
        for (ahead, len) in runs {
            // Half the runs start near the newest sequence, the rest anywhere below it.
            let first = if ahead % 2 == 0 {
                by_packet.next().saturating_add(ahead / 2)
            } else {
                by_packet.next().saturating_sub(ahead / 2)
            };
            let end = first.saturating_add(len);
            let duplicates = (first..end)
                .filter(|&s| by_packet.on_packet(s) == TrackOutcome::Duplicate)
                .count() as u64;
            prop_assert_eq!(by_run.on_packets(first..end), duplicates, "{}..{}", first, end);
            prop_assert_eq!(format!("{by_run:?}"), format!("{by_packet:?}"), "{}..{}", first, end);
        }
    }
}

#[test]
fn receiver_handles_the_top_of_the_sequence_space() {
    let mut rx = ReliableReceiver::new(ReceiverConfig::default());
    assert_eq!(rx.skip_to(u64::MAX - 2), u64::MAX - 2);
    assert_eq!(rx.on_packet(u64::MAX - 1, 'b'), Outcome::Buffered);
    assert_eq!(rx.on_packet(u64::MAX - 2, 'a'), Outcome::InOrder);
    assert_eq!(rx.next_expected(), u64::MAX);
    assert_eq!(rx.on_packet(u64::MAX, 'c'), Outcome::BeyondWindow);
    assert_eq!(rx.pop_ready(), Some((u64::MAX - 2, 'a')));
    assert_eq!(rx.pop_ready(), Some((u64::MAX - 1, 'b')));
    assert_eq!(rx.pop_ready(), None);
    assert_eq!(rx.nack(), None);
    assert_eq!(rx.skip_to(u64::MAX), 0);
}

#[test]
fn retransmit_buffer_refuses_sequence_max() {
    let mut tx = RetransmitBuffer::new(RetransmitConfig::default());
    let now = Instant::now();
    assert_eq!(
        tx.push(u64::MAX, &[], now),
        Err(RetransmitError::OutOfOrder {
            expected: 0,
            got: u64::MAX
        })
    );
    let nack = NackPayload {
        next_expected: u64::MAX,
        missing_bitmap: u64::MAX,
    };
    assert!(matches!(
        tx.on_nack(&nack, now),
        Err(RetransmitError::AckBeyondSent { .. })
    ));
}

#[test]
fn receiver_pacing_and_timeout() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let mut rx = ReliableReceiver::new(ReceiverConfig {
        nack_interval: ms(5),
        ack_interval: ms(3),
        ..ReceiverConfig::default()
    });
    assert_eq!(rx.poll_timeout(), None);
    rx.on_packet(0, ());
    rx.on_packet(2, ());
    assert!(rx.nack_due(t0));
    let nack = rx.poll_nack(t0).unwrap();
    assert_eq!(nack.missing_sequences().collect::<Vec<_>>(), [1]);
    assert_eq!(rx.poll_ack(t0), None, "the NACK carried the ACK");
    assert_eq!(rx.poll_timeout(), Some(t0 + ms(5)));
    assert!(!rx.nack_due(t0 + ms(4)));
    rx.on_packet(1, ());
    assert!(!rx.nack_due(t0 + ms(5)), "gap filled");
    assert_eq!(rx.poll_timeout(), Some(t0 + ms(3)), "ACK of the progress");
    assert_eq!(rx.poll_ack(t0 + ms(3)), Some(3));
    assert_eq!(rx.poll_timeout(), None);
    rx.on_packet(1, ());
    assert_eq!(
        rx.poll_ack(t0 + ms(6)),
        Some(3),
        "a duplicate means the sender missed an ACK"
    );
}
