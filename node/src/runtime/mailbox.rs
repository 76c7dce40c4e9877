//! An actor's mailbox: the bounded queue of commands its instance handles in turns.
//!
//! Every awake actor has one, so it is kept small: about 120 bytes however many commands it has carried. tokio's
//! bounded channel, which it replaces, cost about 800 bytes per actor (512 of cache-padded state and a first block
//! of 32 slots, allocated when the channel opens), a fifth of an awake idle actor's memory.
//!
//! Senders wait for room through tokio's [`Semaphore`], which queues them fairly and whose waiting is cancel-safe
//! (a send dropped while it waits takes no room). The values sit in a linked list behind a mutex held only to push
//! one or to take a batch: each value is one allocation, made when it is sent and freed when it is taken, and an
//! empty mailbox holds no buffer (a `VecDeque` would keep its largest one for as long as the actor is awake). The
//! receiver's side is one task (the instance), so a single waker is enough.
//!
//! Guarantees, the ones the runtime relies on:
//! - A send either queues its value or hands it back ([`SendError`]): nothing is lost in between.
//! - After [`Receiver::close`] (or the receiver's drop) every send fails, the waiting ones included, and `close`
//!   returns everything queued before it.
//! - [`Receiver::recv_batch`] returns nothing once the mailbox is closed or no [`Sender`] is left, and nothing is
//!   queued.
//! - A [`WeakSender`] does not keep the mailbox open: it upgrades only while a `Sender` still exists.

use std::collections::LinkedList;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Poll, Waker};

use tokio::sync::Semaphore;

use crate::sync::lock;

/// A new mailbox holding at most `capacity` values; senders wait while it is full.
pub(crate) fn mailbox<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        room: Semaphore::new(capacity),
        state: Mutex::new(State { queue: LinkedList::new(), receiver: None, senders: 1, closed: false }),
    });
    (Sender { shared: shared.clone() }, Receiver { shared })
}

struct Shared<T> {
    /// One permit per free place in the queue.
    room: Semaphore,
    state: Mutex<State<T>>,
}

struct State<T> {
    queue: LinkedList<T>,
    /// The receiver's waker while it waits on an empty queue.
    receiver: Option<Waker>,
    /// Live [`Sender`]s.
    senders: usize,
    closed: bool,
}

fn wake(receiver: Option<Waker>) {
    if let Some(waker) = receiver {
        waker.wake();
    }
}

/// The value of a send that could not be queued, because the mailbox was closed.
#[derive(Debug)]
pub(crate) struct SendError<T>(pub T);

/// Queues values into a mailbox. Cloning it adds a sender; the mailbox's receiver sees the end once all are gone.
pub(crate) struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Sender<T> {
    /// Queues `value`, waiting while the mailbox is full; hands it back if the mailbox is (or gets) closed.
    pub async fn send(&self, value: T) -> Result<(), SendError<T>> {
        match self.shared.room.acquire().await {
            // The receiver gives the place back when it takes the value out.
            Ok(place) => place.forget(),
            Err(_) => return Err(SendError(value)),
        }
        let waker = {
            let mut state = lock(&self.shared.state);
            if state.closed {
                return Err(SendError(value));
            }
            state.queue.push_back(value);
            state.receiver.take()
        };
        wake(waker);
        Ok(())
    }

    /// A sender that does not keep the mailbox open.
    pub fn downgrade(&self) -> WeakSender<T> {
        WeakSender { shared: Arc::downgrade(&self.shared) }
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        lock(&self.shared.state).senders += 1;
        Sender { shared: self.shared.clone() }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut state = lock(&self.shared.state);
            state.senders -= 1;
            if state.senders > 0 {
                return;
            }
            state.receiver.take()
        };
        wake(waker);
    }
}

/// A [`Sender`] that does not count: it neither keeps the mailbox open nor its memory alive once it closed.
pub(crate) struct WeakSender<T> {
    shared: Weak<Shared<T>>,
}

impl<T> WeakSender<T> {
    /// A sender, if one still exists (so the receiver has not seen the end).
    pub fn upgrade(&self) -> Option<Sender<T>> {
        let shared = self.shared.upgrade()?;
        let mut state = lock(&shared.state);
        if state.senders == 0 {
            return None;
        }
        state.senders += 1;
        drop(state);
        Some(Sender { shared })
    }
}

impl<T> Clone for WeakSender<T> {
    fn clone(&self) -> Self {
        WeakSender { shared: self.shared.clone() }
    }
}

/// Takes values out of a mailbox, in the order they were queued. There is one per mailbox.
pub(crate) struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Receiver<T> {
    /// Every value queued (at most `limit`, at least one), in order, waiting for the first; empty once the
    /// mailbox is closed or has no sender left, and is empty. Takes them under one lock.
    pub fn recv_batch(&mut self, limit: usize) -> impl Future<Output = Vec<T>> + '_ {
        poll_fn(move |cx| {
            let mut state = lock(&self.shared.state);
            if state.queue.is_empty() {
                if !state.closed && state.senders > 0 {
                    if !state.receiver.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        state.receiver = Some(cx.waker().clone());
                    }
                    return Poll::Pending;
                }
                return Poll::Ready(Vec::new());
            }
            let count = state.queue.len().min(limit.max(1));
            let batch: Vec<T> = (0..count).filter_map(|_| state.queue.pop_front()).collect();
            drop(state);
            self.shared.room.add_permits(batch.len());
            Poll::Ready(batch)
        })
    }

    /// Closes the mailbox: every later send fails, and so do the sends waiting for room. Returns the values
    /// queued before, in order.
    pub fn close(&mut self) -> LinkedList<T> {
        self.shared.room.close();
        let mut state = lock(&self.shared.state);
        state.closed = true;
        std::mem::take(&mut state.queue)
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        // Dropped outside the lock: a value's drop may send to this mailbox (and fail).
        drop(self.close());
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn values_arrive_in_order_in_batches_and_the_end_follows_the_last_sender() {
        let (tx, mut rx) = mailbox(4);
        let other = tx.clone();
        tx.send(1).await.unwrap();
        other.send(2).await.unwrap();
        tx.send(3).await.unwrap();
        assert_eq!(rx.recv_batch(2).await, [1, 2]);
        drop(tx);
        assert_eq!(rx.recv_batch(2).await, [3]);
        let waiting = tokio::spawn(async move { rx.recv_batch(2).await });
        tokio::task::yield_now().await;
        drop(other);
        assert!(waiting.await.unwrap().is_empty(), "no sender left: the receiver sees the end");
    }

    #[tokio::test]
    async fn a_full_mailbox_makes_senders_wait_until_a_value_is_taken() {
        let (tx, mut rx) = mailbox(2);
        tx.send(1).await.unwrap();
        tx.send(2).await.unwrap();
        let third = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send(3).await }
        });
        assert!(tokio::time::timeout(Duration::from_millis(10), tx.send(9)).await.is_err(), "a full mailbox waits");
        assert_eq!(rx.recv_batch(1).await, [1]);
        third.await.unwrap().unwrap();
        assert_eq!(Vec::from_iter(rx.close()), [2, 3]);
    }

    #[tokio::test]
    async fn closing_fails_every_later_and_waiting_send_and_hands_the_value_back() {
        let (tx, mut rx) = mailbox(1);
        tx.send(1).await.unwrap();
        let waiting = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send(2).await }
        });
        tokio::task::yield_now().await;
        assert_eq!(Vec::from_iter(rx.close()), [1]);
        assert_eq!(waiting.await.unwrap().unwrap_err().0, 2, "the waiting send gets its value back");
        assert_eq!(tx.send(3).await.unwrap_err().0, 3);
        assert!(rx.recv_batch(4).await.is_empty());
        drop(rx);
        assert_eq!(tx.send(4).await.unwrap_err().0, 4, "a dropped receiver closes the mailbox too");
    }

    #[tokio::test]
    async fn a_cancelled_send_takes_no_room_and_a_taken_value_gives_its_room_back() {
        let (tx, mut rx) = mailbox(1);
        tx.send(1).await.unwrap();
        let cancelled = tokio::time::timeout(Duration::from_millis(10), tx.send(2)).await;
        assert!(cancelled.is_err(), "the mailbox was full");
        assert_eq!(rx.recv_batch(4).await, [1]);
        tx.send(3).await.unwrap();
        assert_eq!(rx.recv_batch(4).await, [3]);
    }

    #[tokio::test]
    async fn a_weak_sender_upgrades_only_while_a_sender_lives() {
        let (tx, mut rx) = mailbox(4);
        let weak = tx.downgrade();
        weak.upgrade().expect("a sender lives").send(1).await.unwrap();
        drop(tx);
        assert!(weak.upgrade().is_none(), "the last sender is gone");
        assert_eq!(rx.recv_batch(4).await, [1]);
        assert!(rx.recv_batch(4).await.is_empty(), "a weak sender does not keep the mailbox open");
    }
}
