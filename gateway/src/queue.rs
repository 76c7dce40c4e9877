//! The bounded queues a socket's messages travel in, each message boxed.
//!
//! tokio allocates a queue in blocks of 32 slots, and once 32 messages went through it keeps two blocks for good.
//! A queue of 128-byte messages thus holds 8 KiB however idle it is; boxed, a slot is a pointer and two blocks are
//! 512 bytes. A socket has a queue each way, so with 10,000 open sockets that is 60 MiB against 5 (measured by the
//! soak, `ops/BENCHMARKS.md`), for one small allocation per message.

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::{SendError, TrySendError};

/// A queue of at most `capacity` messages.
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let (sender, receiver) = mpsc::channel(capacity);
    (Sender(sender), Receiver(receiver))
}

/// The sending side of a [`channel`]. Cheap to clone.
#[derive(Debug)]
pub struct Sender<T>(mpsc::Sender<Box<T>>);

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender(self.0.clone())
    }
}

impl<T> Sender<T> {
    /// Queues `message` without waiting: fails when the queue is full or the receiver is gone, giving it back.
    pub fn try_send(&self, message: T) -> Result<(), TrySendError<T>> {
        self.0.try_send(Box::new(message)).map_err(|e| match e {
            TrySendError::Full(message) => TrySendError::Full(*message),
            TrySendError::Closed(message) => TrySendError::Closed(*message),
        })
    }

    /// Queues `message`, waiting for room: fails when the receiver is gone, giving it back.
    pub async fn send(&self, message: T) -> Result<(), SendError<T>> {
        self.0.send(Box::new(message)).await.map_err(|SendError(message)| SendError(*message))
    }
}

/// The receiving side of a [`channel`].
#[derive(Debug)]
pub struct Receiver<T>(mpsc::Receiver<Box<T>>);

impl<T> Receiver<T> {
    /// The next message, in order; `None` once every sender is gone and the queue is empty. Cancel-safe.
    pub async fn recv(&mut self) -> Option<T> {
        self.0.recv().await.map(|message| *message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_come_out_in_order_and_a_full_queue_gives_the_message_back() {
        let (tx, mut rx) = channel(2);
        tx.try_send(1).unwrap();
        tx.send(2).await.unwrap();
        assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
        assert_eq!((rx.recv().await, rx.recv().await), (Some(1), Some(2)));
        drop(tx);
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn a_queue_without_its_receiver_gives_the_message_back() {
        let (tx, rx) = channel::<u8>(2);
        drop(rx);
        assert!(matches!(tx.try_send(7), Err(TrySendError::Closed(7))));
        assert_eq!(tx.send(8).await.map_err(|e| e.0), Err(8));
    }
}
