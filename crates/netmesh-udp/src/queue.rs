//! The queue of events between the endpoint's threads and the application: pushed a
//! receive batch at a time and taken a queue at a time, so that locking and wake-ups
//! cost per batch of packets, not per packet (a handoff per packet cost a futex wake-up
//! per packet whenever the application kept up).

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::Event;

#[derive(Debug, Default)]
struct State {
    events: VecDeque<Event>,
    closed: bool,
    consumer_waiting: bool,
    producers_waiting: usize,
}

/// Bounded: producers wait while `capacity` events are queued.
#[derive(Debug)]
pub(crate) struct EventQueue {
    state: Mutex<State>,
    not_empty: Condvar,
    not_full: Condvar,
    capacity: usize,
    /// The consumer's side: events taken from `state` and not handed out yet.
    taken: Mutex<VecDeque<Event>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl EventQueue {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            capacity: capacity.max(1),
            taken: Mutex::new(VecDeque::new()),
        }
    }

    /// Appends every event of `events` (emptying it), first waiting while the queue is
    /// full. After `close`, drops them instead.
    pub(crate) fn push_all(&self, events: &mut Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let mut state = lock(&self.state);
        while state.events.len() >= self.capacity && !state.closed {
            state.producers_waiting += 1;
            state = self
                .not_full
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            state.producers_waiting -= 1;
        }
        if state.closed {
            drop(state);
            events.clear();
            return;
        }
        state.events.extend(events.drain(..));
        if state.consumer_waiting {
            self.not_empty.notify_one();
        }
    }

    /// The next event, waiting up to `timeout`.
    pub(crate) fn pop(&self, timeout: Duration) -> Option<Event> {
        let mut taken = lock(&self.taken);
        if let Some(event) = taken.pop_front() {
            return Some(event);
        }
        let deadline = Instant::now() + timeout;
        let mut state = lock(&self.state);
        while state.events.is_empty() && !state.closed {
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            state.consumer_waiting = true;
            state = self
                .not_empty
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            state.consumer_waiting = false;
        }
        // Everything queued at once: both deques keep their capacity, nothing allocates.
        std::mem::swap(&mut state.events, &mut *taken);
        if state.producers_waiting > 0 {
            self.not_full.notify_all();
        }
        drop(state);
        taken.pop_front()
    }

    /// Wakes and releases every waiter; later pushes are dropped.
    pub(crate) fn close(&self) {
        let mut state = lock(&self.state);
        state.closed = true;
        state.events.clear();
        self.not_full.notify_all();
        self.not_empty.notify_all();
        drop(state);
        lock(&self.taken).clear();
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use super::*;
    use crate::PeerId;

    fn event(n: u64) -> Event {
        Event::Closed {
            peer: PeerId(n),
            addr: SocketAddr::from(([127, 0, 0, 1], 1)),
        }
    }

    fn id(event: &Event) -> u64 {
        match event {
            Event::Closed { peer, .. } => peer.0,
            _ => u64::MAX,
        }
    }

    #[test]
    fn events_come_out_in_order_across_batches_and_a_full_queue_holds_the_producer() {
        let queue = Arc::new(EventQueue::new(4));
        let producer = {
            let queue = Arc::clone(&queue);
            std::thread::spawn(move || {
                for batch in 0..50 {
                    let mut events: Vec<Event> = (0..3).map(|i| event(batch * 3 + i)).collect();
                    queue.push_all(&mut events);
                    assert!(events.is_empty());
                }
            })
        };
        let mut seen = Vec::new();
        while seen.len() < 150 {
            let event = queue.pop(Duration::from_secs(5)).expect("an event");
            seen.push(id(&event));
        }
        producer.join().unwrap();
        assert_eq!(seen, (0..150).collect::<Vec<_>>());
        assert!(queue.pop(Duration::from_millis(10)).is_none());
    }

    #[test]
    fn close_releases_a_waiting_producer_and_drops_its_events() {
        let queue = Arc::new(EventQueue::new(1));
        queue.push_all(&mut vec![event(0)]);
        let producer = {
            let queue = Arc::clone(&queue);
            std::thread::spawn(move || queue.push_all(&mut vec![event(1)]))
        };
        std::thread::sleep(Duration::from_millis(50));
        queue.close();
        producer.join().unwrap();
        assert!(queue.pop(Duration::from_millis(10)).is_none());
    }
}
