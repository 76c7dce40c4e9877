//! The queue inside an actor's turns: storing sent messages (with their limits), delivering them to the run
//! loop (now, or when one arrives for a receiver that waits), completing completable messages and answering
//! their waiting senders. Everything here runs inside the turn's transaction; answers are held until it
//! commits.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tern_proto::{ClientError, Value};

use super::command::Reply;
use super::instance::{Held, Instance};
use crate::clock::now_ms;
use crate::sdk::queue::QueueMessage;
use crate::sdk::run::{ErasedStep, ProcessFn};
use crate::storage::ActorDb;
use crate::storage::queue::{self, StoredMessage};
use crate::sync::lock;

/// A run-loop receive waiting for a message.
enum Receiver {
    /// `next`/`next_batch`: hand over up to `limit` messages.
    Deliver { names: Vec<String>, limit: usize, reply: Reply<Vec<QueueMessage>> },
    /// `process`: handle one message with `handler` (a [`ProcessFn`], type-erased).
    Process { names: Vec<String>, handler: ErasedStep, reply: Reply<Option<Box<dyn Any + Send>>> },
}

impl Receiver {
    fn is_closed(&self) -> bool {
        match self {
            Receiver::Deliver { reply, .. } => reply.is_closed(),
            Receiver::Process { reply, .. } => reply.is_closed(),
        }
    }
}

/// The queue's in-memory side (lost on sleep or crash, which is what makes completable messages redeliver).
#[derive(Default)]
pub(crate) struct QueueState {
    receivers: Vec<Receiver>,
    /// Completable messages delivered and not yet completed.
    in_flight: BTreeSet<i64>,
    /// Senders waiting for a completion, by message id.
    waiters: BTreeMap<i64, Reply<Option<Value>>>,
    /// A message arrived this turn.
    arrived: bool,
}

impl QueueState {
    /// Whether the queue lets the actor sleep: no completable message is being handled.
    pub fn is_idle(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// Whether the run loop is parked on a receive (so it is not busy).
    pub fn has_waiting_receiver(&mut self) -> bool {
        self.receivers.retain(|r| !r.is_closed());
        !self.receivers.is_empty()
    }
}

fn queue_error(code: &str, message: String) -> ClientError {
    ClientError::new("queue", code, 400, message)
}

impl<S, V> Instance<S, V>
where
    S: Serialize + DeserializeOwned + Send + 'static,
    V: Default + Send + 'static,
{
    /// Stores a message after checking its queue and the limits.
    pub(crate) async fn queue_send(
        &self,
        db: &ActorDb,
        name: &str,
        body: &Value,
        completable: bool,
    ) -> Result<i64, ClientError> {
        if !self.def.queues.contains(name) {
            return Err(queue_error("unknown_queue", format!("The actor has no queue named '{name}'")));
        }
        let size = tern_proto::value::to_cbor_bytes(body).len();
        let max_size = self.def.options.max_queue_message_size;
        if size > max_size {
            return Err(queue_error(
                "message_too_large",
                format!("A queue message of {size} bytes exceeds {max_size} bytes"),
            ));
        }
        let conn = db.connection();
        let max_len = self.def.options.max_queue_size as i64;
        if queue::len(conn).await? >= max_len {
            return Err(queue_error("full", format!("The queue holds its maximum of {max_len} messages")));
        }
        let id = queue::push(conn, name, body, completable, now_ms()).await?;
        lock(&self.queue).arrived = true;
        self.core.metrics.record_queue_sent(&self.shared.name);
        Ok(id)
    }

    /// Handles `QueueSend`: a waiting sender is answered at completion, others once the turn commits.
    pub(crate) async fn handle_queue_send(
        &self,
        db: &ActorDb,
        name: String,
        body: Value,
        wait: bool,
        reply: Reply<Option<Value>>,
    ) -> Option<Held> {
        match self.queue_send(db, &name, &body, wait).await {
            Ok(id) if wait => {
                lock(&self.queue).waiters.insert(id, reply);
                None
            }
            Ok(_) => Some(Held::new(reply, Ok(None))),
            Err(e) => Some(Held::new(reply, Err(e))),
        }
    }

    /// Takes up to `limit` deliverable messages: plain ones are removed, completable ones marked in flight.
    async fn take(&self, db: &ActorDb, names: &[String], limit: usize) -> Result<Vec<QueueMessage>, ClientError> {
        let conn = db.connection();
        let mut taken = Vec::new();
        let mut after = 0;
        while taken.len() < limit {
            let batch = queue::peek(conn, names, after, limit - taken.len()).await?;
            let Some(last) = batch.last() else { break };
            after = last.id;
            for stored in batch {
                if stored.completable {
                    if !lock(&self.queue).in_flight.insert(stored.id) {
                        continue;
                    }
                } else {
                    queue::remove(conn, stored.id).await?;
                }
                taken.push(message(stored));
            }
        }
        if !taken.is_empty() {
            self.core.metrics.record_queue_consumed(&self.shared.name, taken.len() as u64);
        }
        Ok(taken)
    }

    /// Handles `QueueReceive`: delivers now, or parks the receiver when it waits and nothing is there.
    pub(crate) async fn handle_queue_receive(
        &self,
        db: &ActorDb,
        names: Vec<String>,
        limit: usize,
        wait: bool,
        reply: Reply<Vec<QueueMessage>>,
    ) -> Option<Held> {
        match self.take(db, &names, limit).await {
            Ok(messages) if messages.is_empty() && wait => {
                lock(&self.queue).receivers.push(Receiver::Deliver { names, limit, reply });
                None
            }
            result => Some(Held::new(reply, result)),
        }
    }

    /// Handles `QueueComplete`: removes the message and answers its sender.
    pub(crate) async fn handle_queue_complete(
        &self,
        db: &ActorDb,
        id: i64,
        response: Value,
        reply: Reply<()>,
    ) -> Vec<Held> {
        if !lock(&self.queue).in_flight.remove(&id) {
            let err = queue_error("not_in_flight", format!("Message {id} is not a delivered completable message"));
            return vec![Held::new(reply, Err(err))];
        }
        if let Err(e) = queue::remove(db.connection(), id).await {
            return vec![Held::new(reply, Err(e))];
        }
        let mut answers = vec![Held::new(reply, Ok(()))];
        let waiter = lock(&self.queue).waiters.remove(&id);
        answers.extend(waiter.map(|waiter| Held::new(waiter, Ok(Some(response)))));
        answers
    }

    /// After a turn's commands: hands messages that arrived to receivers that wait for them.
    pub(crate) async fn deliver_to_waiting(&self, db: &ActorDb) -> Result<Vec<Held>, ClientError> {
        if !std::mem::take(&mut lock(&self.queue).arrived) {
            return Ok(Vec::new());
        }
        let mut answers = Vec::new();
        let receivers = std::mem::take(&mut lock(&self.queue).receivers);
        for receiver in receivers {
            if receiver.is_closed() {
                continue;
            }
            match receiver {
                Receiver::Deliver { names, limit, reply } => {
                    let messages = self.take(db, &names, limit).await?;
                    if messages.is_empty() {
                        lock(&self.queue).receivers.push(Receiver::Deliver { names, limit, reply });
                    } else {
                        answers.push(Held::new(reply, Ok(messages)));
                    }
                }
                Receiver::Process { names, handler, reply } => {
                    answers.extend(self.handle_queue_process(db, names, handler, reply).await);
                }
            }
        }
        Ok(answers)
    }

    /// The oldest message of `names` that is not in flight.
    async fn first_available(&self, db: &ActorDb, names: &[String]) -> Result<Option<StoredMessage>, ClientError> {
        let mut after = 0;
        loop {
            let batch = queue::peek(db.connection(), names, after, 16).await?;
            let Some(last) = batch.last() else { return Ok(None) };
            after = last.id;
            let in_flight = &lock(&self.queue).in_flight;
            if let Some(found) = batch.into_iter().find(|m| !in_flight.contains(&m.id)) {
                return Ok(Some(found));
            }
        }
    }

    /// Handles `QueueProcess`: takes the next message and runs the handler on it in one atomic unit, or parks
    /// the request until a message arrives.
    pub(crate) async fn handle_queue_process(
        &self,
        db: &ActorDb,
        names: Vec<String>,
        handler: ErasedStep,
        reply: Reply<Option<Box<dyn Any + Send>>>,
    ) -> Vec<Held> {
        let stored = match self.first_available(db, &names).await {
            Ok(Some(stored)) => stored,
            Ok(None) => {
                lock(&self.queue).receivers.push(Receiver::Process { names, handler, reply });
                return Vec::new();
            }
            Err(e) => return vec![Held::new(reply, Err(e))],
        };
        let Ok(handler) = handler.downcast::<ProcessFn<S, V>>() else {
            tracing::error!(actor_id = %self.shared.actor_id, "a queue handler of another actor type reached this actor");
            return vec![Held::new(reply, Err(ClientError::internal()))];
        };
        let (id, completable) = (stored.id, stored.completable);
        let span_name = format!("queue message {}", stored.name);
        let attributes =
            vec![("queue.name".to_string(), stored.name.clone()), ("message.id".to_string(), id.to_string())];
        let ctx = self.ctx();
        let timeout = self.def.options.action_timeout;
        let unit = self.atomically(db, async move {
            let handled = crate::sdk::actors::with_budget(timeout, handler(ctx, message(stored)));
            let output = match tokio::time::timeout(timeout, handled).await {
                Err(_) => return Err(ClientError::action_timed_out("queue handler", timeout.as_millis() as u64)),
                Ok(output) => output.map_err(|e| e.into_client(&self.shared.actor_id, "queue handler"))?,
            };
            queue::remove(db.connection(), id).await?;
            Ok(output)
        });
        let handled = self.in_span(&span_name, attributes, unit).await;
        match handled {
            Ok((response, output)) => {
                self.core.metrics.record_queue_consumed(&self.shared.name, 1);
                let waiter = if completable { lock(&self.queue).waiters.remove(&id) } else { None };
                let mut answers: Vec<Held> =
                    waiter.into_iter().map(|w| Held::new(w, Ok(Some(response.clone())))).collect();
                answers.push(Held::new(reply, Ok(Some(output))));
                answers
            }
            Err(e) => vec![Held::new(reply, Err(e))],
        }
    }

    /// Removes every message (the inspector's reset); senders waiting for completions are dropped, so they hear
    /// `actor.stopping`.
    pub(crate) async fn queue_reset(&self, db: &ActorDb) -> Result<(), ClientError> {
        queue::clear(db.connection()).await?;
        let mut state = lock(&self.queue);
        state.in_flight.clear();
        state.waiters.clear();
        Ok(())
    }
}

fn message(stored: StoredMessage) -> QueueMessage {
    QueueMessage {
        id: stored.id,
        name: stored.name,
        body: stored.body,
        completable: stored.completable,
        created_at: stored.created_at,
    }
}
