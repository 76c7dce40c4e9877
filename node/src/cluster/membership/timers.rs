//! foca's timer events, kept in one queue by the membership task and handed back in the order they fall due.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use tokio::time::Instant;

/// A timer event and when it falls due; ordered by due time, then by scheduling order.
struct Scheduled<T> {
    at: Instant,
    seq: u64,
    event: T,
}

impl<T> PartialEq for Scheduled<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<T> Eq for Scheduled<T> {}

impl<T> PartialOrd for Scheduled<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Scheduled<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Pending timer events: one sleep for the earliest instead of a task per event.
pub(super) struct Timers<T> {
    heap: BinaryHeap<Reverse<Scheduled<T>>>,
    seq: u64,
}

impl<T> Timers<T> {
    pub(super) fn new() -> Self {
        Self { heap: BinaryHeap::new(), seq: 0 }
    }

    /// Schedules `event` to fall due `after` from now.
    pub(super) fn schedule(&mut self, event: T, after: Duration) {
        self.seq += 1;
        self.heap.push(Reverse(Scheduled { at: Instant::now() + after, seq: self.seq, event }));
    }

    /// When the earliest pending event falls due.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(scheduled)| scheduled.at)
    }

    /// The earliest event due by `now`, if any.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<T> {
        if self.next_due()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse(scheduled)| scheduled.event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_back_in_due_order_and_not_before() {
        let hour = Duration::from_secs(3600);
        let mut timers = Timers::new();
        timers.schedule("late", hour);
        timers.schedule("early", Duration::ZERO);
        timers.schedule("early too", Duration::ZERO);
        let now = Instant::now();
        let due: Vec<_> = std::iter::from_fn(|| timers.pop_due(now)).collect();
        assert_eq!(due, ["early", "early too"]);
        assert!(timers.next_due().unwrap() > now + hour / 2);
        assert_eq!(timers.pop_due(now + hour * 2), Some("late"));
        assert_eq!(timers.next_due(), None);
    }
}
