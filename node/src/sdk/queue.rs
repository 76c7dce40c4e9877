//! Durable queues. Clients (and the actor itself) send messages to a named queue the definition declares
//! ([`crate::Actor::queue`]); the actor's run loop ([`crate::Actor::run`]) receives them in order.
//!
//! * A message is committed to the actor's database before its sender hears back, so an accepted message is
//!   never lost.
//! * A plain message is removed when it is received, in the same transaction as the receive.
//! * A message whose sender waits for the answer (`wait: true`) is *completable*: it stays stored until the run
//!   loop completes it ([`RunQueue::complete`]), whose response goes back to the waiting sender. If the actor
//!   crashes first, it is delivered again (RivetKit drops it; Tern keeps it).
//!
//! ```ignore
//! Actor::<Jobs>::new("jobs")
//!     .queue("work")
//!     .run(|r| async move {
//!         while let Some(message) = r.queue().next(&["work"], None).await? {
//!             let n: i64 = message.body()?;
//!             let total = r.step(move |c| async move { Ok(c.update(|s: &mut Jobs| { s.total += n; s.total })) }).await?;
//!             r.queue().complete(&message, total).await?;
//!         }
//!         Ok(())
//!     })
//! ```

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tern_proto::{ClientError, Value};

use super::error::{ActorError, ActorResult};

/// A received message.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueMessage {
    /// Increases with every message sent to the actor: the queue's order.
    pub id: i64,
    /// The queue it was sent to.
    pub name: String,
    pub(crate) body: Value,
    /// Whether its sender waits for [`RunQueue::complete`].
    pub completable: bool,
    /// When it was sent, in ms since the epoch.
    pub created_at: i64,
}

impl QueueMessage {
    /// The body deserialized as `T`.
    pub fn body<T: DeserializeOwned>(&self) -> ActorResult<T> {
        self.body
            .deserialized()
            .map_err(|e| ActorError::from(ClientError::invalid_request(format!("queue message body: {e}"))))
    }

    /// The body as sent.
    pub fn body_value(&self) -> &Value {
        &self.body
    }
}

/// How long a receive waits when the queue is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Answer at once, possibly with nothing.
    No,
    /// Wait at most this long.
    Up(Duration),
    /// Wait until a message arrives or the actor stops.
    Forever,
}

/// Serializes a value for a queue.
pub(crate) fn to_body(body: impl Serialize) -> ActorResult<Value> {
    Value::serialized(&body).map_err(ActorError::internal)
}

pub use super::run::RunQueue;
