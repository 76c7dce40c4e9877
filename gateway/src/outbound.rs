//! What an actor sends on one socket (a `/connect` connection or a raw WebSocket): messages in a bounded queue,
//! and the close that ends them, which has a slot of its own.
//!
//! The actor side never waits. It offers each message with [`OutboundSender::try_send`]; a full queue means the
//! client fell behind, and the actor closes the socket. The close cannot be lost to that full queue (a close
//! queued behind the messages would be dropped with them, and the client would see the socket end for another
//! reason): [`OutboundSender::close`] ends the stream after the messages already queued, and
//! [`OutboundSender::close_now`], for a client that fell behind, ends it before them.
//!
//! The gateway side takes the messages in order and then the close ([`OutboundReceiver::recv`]). It writes each
//! message to the client inside [`OutboundReceiver::unless_closed_now`], so a client that stopped reading learns
//! at once that it was dropped, instead of never (its socket's buffers are full and nothing more gets through).

use std::future::Future;

use tokio::sync::mpsc::error::{SendError, TrySendError};
use tokio::sync::oneshot;

use crate::queue;

/// An outbound stream whose queue holds `capacity` messages, plus the slot for its close.
pub fn channel<T>(capacity: usize) -> (OutboundSender<T>, OutboundReceiver<T>) {
    let (messages_tx, messages) = queue::channel(capacity);
    let (close_tx, close) = oneshot::channel();
    let sender = OutboundSender { close: close_tx, messages: messages_tx };
    (sender, OutboundReceiver { messages, close: Ending::Open(close) })
}

/// How the sender ended the stream.
struct Close<T> {
    /// The last message.
    message: T,
    /// Whether it goes before the messages still queued.
    now: bool,
}

/// The actor's side of an outbound stream. Dropping it without a close ends the stream without a last message.
pub struct OutboundSender<T> {
    close: oneshot::Sender<Close<T>>,
    messages: queue::Sender<T>,
}

impl<T> OutboundSender<T> {
    /// Queues `message` without waiting. Fails when the queue is full (the client fell behind) or the receiver is
    /// gone (the client left).
    pub fn try_send(&self, message: T) -> Result<(), TrySendError<T>> {
        self.messages.try_send(message)
    }

    /// Queues `message`, waiting for room (for relays, which pass on the pace of their own source). Fails when
    /// the receiver is gone.
    pub async fn send(&self, message: T) -> Result<(), SendError<T>> {
        self.messages.send(message).await
    }

    /// Ends the stream with `message`, which the receiver gets after the messages already queued, however full
    /// the queue is.
    pub fn close(self, message: T) {
        let _ = self.close.send(Close { message, now: false });
    }

    /// Ends the stream with `message` ahead of the messages still queued, which are dropped: for a client that
    /// fell behind, which should learn why at once.
    pub fn close_now(self, message: T) {
        let _ = self.close.send(Close { message, now: true });
    }
}

/// The gateway's side of an outbound stream.
pub struct OutboundReceiver<T> {
    messages: queue::Receiver<T>,
    close: Ending<T>,
}

/// What the receiver knows about the end of the stream.
enum Ending<T> {
    /// Nothing yet.
    Open(oneshot::Receiver<Close<T>>),
    /// The last message (`None` if the sender went away without one), and whether it goes before the messages
    /// still queued.
    Known { last: Option<T>, now: bool },
    /// The last message was taken.
    Taken,
}

impl<T> OutboundReceiver<T> {
    /// The next message; after the last queued one, the message the stream was closed with; then `None`. A close
    /// made with [`OutboundSender::close_now`] that [`OutboundReceiver::unless_closed_now`] noticed comes first.
    /// Cancel-safe.
    pub async fn recv(&mut self) -> Option<T> {
        if let Ending::Open(close) = &mut self.close {
            if let Some(message) = self.messages.recv().await {
                return Some(message);
            }
            // Every sender is gone, so the slot is settled: a close, or nothing.
            let last = close.await.ok().map(|close| close.message);
            self.close = Ending::Known { last, now: false };
        }
        match &mut self.close {
            Ending::Known { last, now } => {
                if !*now && let Some(message) = self.messages.recv().await {
                    return Some(message);
                }
                let last = last.take();
                self.close = Ending::Taken;
                last
            }
            Ending::Open(_) | Ending::Taken => None,
        }
    }

    /// Runs `work` (writing a message to the client) unless the sender closes the stream with
    /// [`OutboundSender::close_now`] first; then `work` is dropped, `None` is returned, and the next
    /// [`OutboundReceiver::recv`] returns that close. Any other ending lets `work` finish.
    pub async fn unless_closed_now<F: Future>(&mut self, work: F) -> Option<F::Output> {
        let Ending::Open(close) = &mut self.close else { return Some(work.await) };
        let mut work = std::pin::pin!(work);
        let ended = tokio::select! {
            biased;
            output = &mut work => return Some(output),
            ended = close => ended,
        };
        let now = ended.as_ref().is_ok_and(|close| close.now);
        self.close = Ending::Known { last: ended.ok().map(|close| close.message), now };
        if now { None } else { Some(work.await) }
    }
}

#[cfg(test)]
mod tests {
    use std::future::pending;

    use super::*;

    #[tokio::test]
    async fn a_close_follows_the_queued_messages_even_when_the_queue_is_full() {
        let (tx, mut rx) = channel(2);
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
        tx.close(0);
        assert_eq!((rx.recv().await, rx.recv().await, rx.recv().await), (Some(1), Some(2), Some(0)));
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn a_stream_dropped_without_a_close_just_ends() {
        let (tx, mut rx) = channel(2);
        tx.try_send(1).unwrap();
        drop(tx);
        assert_eq!((rx.recv().await, rx.recv().await), (Some(1), None));
    }

    #[tokio::test]
    async fn a_close_now_cuts_a_stalled_write_and_goes_before_the_queued_messages() {
        let (tx, mut rx) = channel(2);
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        assert_eq!(rx.recv().await, Some(1));
        tx.close_now(0);
        // The write of message 1 never completes (its client reads nothing): the close cuts it.
        assert_eq!(rx.unless_closed_now(pending::<()>()).await, None);
        assert_eq!(rx.recv().await, Some(0));
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn an_ordinary_close_lets_a_stalled_write_finish_and_follows_the_queued_messages() {
        let (tx, mut rx) = channel(2);
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        assert_eq!(rx.recv().await, Some(1));
        tx.close(0);
        // The write of message 1 completes only after the close arrived (once this task yields).
        let (written, done) = oneshot::channel::<()>();
        tokio::spawn(async move { written.send(()).unwrap() });
        assert_eq!(rx.unless_closed_now(async { done.await.unwrap() }).await, Some(()));
        assert_eq!((rx.recv().await, rx.recv().await, rx.recv().await), (Some(2), Some(0), None));
    }
}
