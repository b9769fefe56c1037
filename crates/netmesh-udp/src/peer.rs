//! [`Peer`]: the application's handle on one peer session, and the send path.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use netmesh_session::{PeerKind, Session, SessionStats};
use netmesh_wire::{batches_of, AsEvent, FrameCodec, PacketFlags};

use crate::endpoint::{lock, Shared, TX};
use crate::{PeerId, SendError};

/// Where a peer's session is, as the endpoint sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Handshaking,
    Established,
    Closed,
}

/// What the endpoint keeps per peer.
pub(crate) struct PeerInner {
    pub(crate) id: PeerId,
    pub(crate) addr: SocketAddr,
    /// The socket this peer's datagrams arrive on, and its replies leave from.
    pub(crate) socket: usize,
    pub(crate) session: Session,
    phase: Mutex<Phase>,
    /// Signalled on phase changes and whenever the session's credit generation moves.
    changed: Condvar,
    seen_generation: AtomicU64,
    /// A session answering a new msg1 from this peer's address, waiting for a packet
    /// that authenticates under it to take this one's place.
    pub(crate) candidate: Mutex<Option<Arc<Self>>>,
}

impl PeerInner {
    pub(crate) fn new(
        id: PeerId,
        addr: SocketAddr,
        socket: usize,
        session: Session,
        phase: Phase,
    ) -> Self {
        Self {
            id,
            addr,
            socket,
            session,
            phase: Mutex::new(phase),
            changed: Condvar::new(),
            seen_generation: AtomicU64::new(0),
            candidate: Mutex::new(None),
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        *lock(&self.phase)
    }

    pub(crate) fn set_phase(&self, phase: Phase) {
        let mut current = lock(&self.phase);
        // Closed is final.
        if *current != Phase::Closed {
            *current = phase;
        }
        self.changed.notify_all();
    }

    /// Waits until the phase is no longer `from` or `deadline` passes; the phase then.
    pub(crate) fn wait_phase_change(&self, from: Phase, deadline: Instant) -> Phase {
        let mut phase = lock(&self.phase);
        while *phase == from {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            phase = self
                .changed
                .wait_timeout(phase, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *phase
    }

    /// Wakes blocked senders if the session's credit generation moved since last time.
    pub(crate) fn notify_if_credit_moved(&self) {
        let generation = self.session.credit_generation();
        if self.seen_generation.swap(generation, Ordering::Relaxed) != generation {
            // Under the lock: a sender checks the generation and starts waiting under
            // it, so it cannot miss this.
            let _phase = lock(&self.phase);
            self.changed.notify_all();
        }
    }

    /// Waits until the credit generation differs from `generation`, the session closes
    /// or `deadline` passes; `false` on the deadline.
    fn wait_credit(&self, generation: u64, deadline: Instant) -> bool {
        let mut phase = lock(&self.phase);
        loop {
            if *phase == Phase::Closed || self.session.credit_generation() != generation {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            phase = self
                .changed
                .wait_timeout(phase, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// The application's handle on one peer's session: send events to it, read its state and
/// counters. Cheap to clone; any number of threads may send through clones at once.
///
/// A handle outlives its session: once the peer is dropped (silent, closed, replaced)
/// sends fail with [`SendError::PeerClosed`].
#[derive(Clone)]
pub struct Peer {
    inner: Arc<PeerInner>,
    shared: Arc<Shared>,
}

/// What one step of a send produced.
enum Step {
    /// Nothing left to send.
    Done,
    /// A packet of this many events (its datagram, unless deferred beyond the credit).
    Sent(netmesh_session::Sent, usize),
    /// The session refused.
    Refused(netmesh_session::SendError),
}

fn flags_for(reliable: bool) -> PacketFlags {
    if reliable {
        PacketFlags::RELIABLE
    } else {
        PacketFlags::NONE
    }
}

impl Peer {
    pub(crate) fn new(inner: Arc<PeerInner>, shared: Arc<Shared>) -> Self {
        Self { inner, shared }
    }

    /// The endpoint's id for this session.
    #[must_use]
    pub fn id(&self) -> PeerId {
        self.inner.id
    }

    /// The peer's address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// Whether the session is established and not closed.
    #[must_use]
    pub fn is_established(&self) -> bool {
        self.inner.phase() == Phase::Established
    }

    /// What the session knows of the peer's implementation (netmesh or net-mesh).
    #[must_use]
    pub fn kind(&self) -> PeerKind {
        self.inner.session.peer_kind()
    }

    /// The session's counters.
    #[must_use]
    pub fn stats(&self) -> SessionStats {
        self.inner.session.stats()
    }

    /// The session itself, for what this handle does not wrap.
    #[must_use]
    pub fn session(&self) -> &Session {
        &self.inner.session
    }

    /// Sends `events` on stream `stream_id` (`reliable`: retransmitted until
    /// acknowledged, delivered once and in order, towards a netmesh peer), waiting up to
    /// the endpoint's `send_timeout` for flow-control credit. See
    /// [`send_timeout`](Self::send_timeout).
    ///
    /// # Errors
    ///
    /// As [`send_timeout`](Self::send_timeout).
    pub fn send(&self, stream_id: u64, events: &[Bytes], reliable: bool) -> Result<(), SendError> {
        self.send_timeout(stream_id, events, reliable, self.shared.send_timeout)
    }

    /// Sends `events` on stream `stream_id`: packs them into as few packets as they
    /// fit, seals them and hands them to the kernel in GSO batches, waiting whenever
    /// flow control (the receiver's credit, a stream window, a full retransmit buffer)
    /// holds the rest back, up to `timeout` for each wait. Returns when every event was
    /// handed to the kernel (not when it arrived).
    ///
    /// # Errors
    ///
    /// [`SendError::TimedOut`] when no credit came within `timeout`;
    /// [`SendError::PeerClosed`] when the session is gone; [`SendError::Session`] when
    /// the session refuses (an event too large for a packet, the reserved stream
    /// `u64::MAX`, a used-up counter); [`SendError::Io`] when the kernel refuses a
    /// datagram. Each says how many events were sent before.
    pub fn send_timeout(
        &self,
        stream_id: u64,
        events: &[Bytes],
        reliable: bool,
        timeout: Duration,
    ) -> Result<(), SendError> {
        self.send_events_timeout(stream_id, events, reliable, timeout)
    }

    /// [`send`](Self::send) for events of any byte container ([`AsEvent`]): slices of
    /// the caller's own buffer cost no reference count per event (a reliable stream
    /// copies them until acknowledged).
    ///
    /// # Errors
    ///
    /// As [`send_timeout`](Self::send_timeout).
    pub fn send_events<E: AsEvent>(
        &self,
        stream_id: u64,
        events: &[E],
        reliable: bool,
    ) -> Result<(), SendError> {
        self.send_events_timeout(stream_id, events, reliable, self.shared.send_timeout)
    }

    /// [`send_timeout`](Self::send_timeout) for events of any byte container
    /// ([`AsEvent`]).
    ///
    /// # Errors
    ///
    /// As [`send_timeout`](Self::send_timeout).
    pub fn send_events_timeout<E: AsEvent>(
        &self,
        stream_id: u64,
        events: &[E],
        reliable: bool,
        timeout: Duration,
    ) -> Result<(), SendError> {
        let flags = flags_for(reliable);
        self.send_packets(timeout, |session, done| {
            let Some(batch) = batches_of(&events[done..]).next() else {
                return Step::Done;
            };
            // An event too large for any packet: the session names the error.
            let batch = batch.unwrap_or(&events[done..=done]);
            match session.send_events(stream_id, batch, flags) {
                Ok(sent) => Step::Sent(sent, batch.len()),
                Err(error) => Step::Refused(error),
            }
        })
    }

    /// Sends `count` events of `event_len` bytes each, which `fill(index, event)` writes
    /// in place, into as many packets as they need ([`Session::send_with`] for each):
    /// for a sender that makes its events as it sends them, no buffer of events to make
    /// first and copy. Waits for credit as [`send`](Self::send) does, up to the endpoint's
    /// `send_timeout` for each wait.
    ///
    /// # Errors
    ///
    /// As [`send_timeout`](Self::send_timeout); [`SendError::Session`] when one event
    /// does not fit a packet.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[allow(dead_code)]
    /// # fn demo(peer: &netmesh_udp::Peer) -> Result<(), netmesh_udp::SendError> {
    /// // 10 000 events of 64 bytes, each numbered in its first 8 bytes.
    /// peer.send_with(1, 10_000, 64, false, |i, event| {
    ///     event.fill(0);
    ///     event[..8].copy_from_slice(&(i as u64).to_le_bytes());
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn send_with(
        &self,
        stream_id: u64,
        count: usize,
        event_len: usize,
        reliable: bool,
        mut fill: impl FnMut(usize, &mut [u8]),
    ) -> Result<(), SendError> {
        let flags = flags_for(reliable);
        // At least one: an event too large for any packet is the session's error to name.
        let per_packet = FrameCodec::frames_per_packet(event_len).max(1);
        self.send_packets(self.shared.send_timeout, |session, done| {
            let n = per_packet.min(count - done);
            if n == 0 {
                return Step::Done;
            }
            let fill = |k, event: &mut [u8]| fill(done + k, event);
            match session.send_with(stream_id, n, event_len, flags, fill) {
                Ok(sent) => Step::Sent(sent, n),
                Err(error) => Step::Refused(error),
            }
        })
    }

    /// Builds packets with `step` (given the session and how many events went so far)
    /// until it is done, handing them to the kernel in GSO batches and waiting up to
    /// `timeout` for credit whenever flow control holds one back.
    fn send_packets(
        &self,
        timeout: Duration,
        mut step: impl FnMut(&Session, usize) -> Step,
    ) -> Result<(), SendError> {
        let inner = &*self.inner;
        let shared = &*self.shared;
        let socket = &shared.sockets[inner.socket];
        TX.with(|tx| {
            let tx = &mut *tx.borrow_mut();
            let queue = &mut tx.queue;
            let mut done = 0;
            let mut deadline = Instant::now() + timeout;
            let result = loop {
                if inner.phase() == Phase::Closed {
                    break Err(SendError::PeerClosed);
                }
                let generation = inner.session.credit_generation();
                match step(&inner.session, done) {
                    Step::Done => break Ok(()),
                    Step::Sent(sent, events) => {
                        if let Some(datagram) = sent.datagram {
                            // Copied into the GSO buffer and dropped at once, so the
                            // session's builder reuses its memory for the next packet.
                            if let Err(source) = queue.push(socket, inner.addr, &datagram, deadline)
                            {
                                break Err(SendError::Io { sent: done, source });
                            }
                        }
                        done += events;
                        deadline = Instant::now() + timeout;
                    }
                    Step::Refused(netmesh_session::SendError::Blocked(_)) => {
                        // What is built goes out before waiting: the receiver's credit
                        // answers it.
                        if let Err(source) = queue.flush(socket, inner.addr, deadline) {
                            break Err(SendError::Io { sent: done, source });
                        }
                        if !inner.wait_credit(generation, deadline) {
                            break Err(SendError::TimedOut { sent: done });
                        }
                    }
                    Step::Refused(netmesh_session::SendError::Closed) => {
                        break Err(SendError::PeerClosed)
                    }
                    Step::Refused(source) => break Err(SendError::Session { sent: done, source }),
                }
            };
            let flushed = queue.flush(socket, inner.addr, deadline);
            shared.count_sent(queue);
            match (result, flushed) {
                (Ok(()), Err(source)) => Err(SendError::Io { sent: done, source }),
                (result, _) => result,
            }
        })
    }

    /// Closes the session and forgets the peer (an [`Event::Closed`](crate::Event) is not
    /// reported for a close the application asked for).
    pub fn close(&self) {
        self.shared.remove_peer(&self.inner);
    }
}

impl fmt::Debug for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Peer")
            .field("id", &self.inner.id)
            .field("addr", &self.inner.addr)
            .field("phase", &self.inner.phase())
            .finish_non_exhaustive()
    }
}
