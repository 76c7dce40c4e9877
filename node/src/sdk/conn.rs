//! A client connection as actor code sees it.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tern_gateway::backend::ConnOutput;
use tern_gateway::outbound::OutboundSender;
use tern_proto::{ClientError, Value};

use super::error::{ActorError, ActorResult};
use crate::sync::lock;

/// The unit recorded for messages whose turn already committed (no atomic unit has this number).
const COMMITTED: u64 = u64::MAX;

/// A connection to the actor: a `/connect` WebSocket, or the ephemeral connection of one stateless HTTP action.
///
/// Cloning is cheap; clones refer to the same connection.
#[derive(Clone)]
pub struct Conn {
    pub(crate) inner: Arc<ConnInner>,
}

pub(crate) struct ConnInner {
    pub id: String,
    pub params: Value,
    pub state: Mutex<Value>,
    pub subscriptions: Mutex<HashSet<String>>,
    /// `None` for the ephemeral connection of a stateless action: messages to it are dropped.
    pub outbound: Mutex<Option<OutboundSender<ConnOutput>>>,
    /// Set when actor code asked to disconnect; the runtime closes the connection after the turn.
    pub disconnect: Mutex<Option<ClientError>>,
    /// Messages produced during the current turn, each with the atomic unit that produced it; released after
    /// the turn commits, dropped with their unit if it fails.
    pub pending: Mutex<Vec<(u64, ConnOutput)>>,
    /// The actor's current atomic unit (shared with [`crate::sdk::context::Shared`]).
    pub unit: Arc<AtomicU64>,
    /// Set while the connection waits for its client to re-bind after the actor moved here: messages for it are
    /// kept (up to the connection's queue) and sent once it does.
    pub detached: AtomicBool,
}

impl Conn {
    pub(crate) fn new(
        id: String,
        params: Value,
        state: Value,
        outbound: Option<OutboundSender<ConnOutput>>,
        unit: Arc<AtomicU64>,
    ) -> Conn {
        Conn {
            inner: Arc::new(ConnInner {
                id,
                params,
                state: Mutex::new(state),
                subscriptions: Mutex::new(HashSet::new()),
                outbound: Mutex::new(outbound),
                disconnect: Mutex::new(None),
                pending: Mutex::new(Vec::new()),
                unit,
                detached: AtomicBool::new(false),
            }),
        }
    }

    /// A connection that arrived with its actor from another node: its id, parameters, state and subscriptions
    /// as they were saved there, waiting for its client to re-bind ([`Conn::attach`]).
    pub(crate) fn arrived(
        id: String,
        params: Value,
        state: Value,
        subscriptions: HashSet<String>,
        unit: Arc<AtomicU64>,
    ) -> Conn {
        let conn = Conn::new(id, params, state, None, unit);
        *lock(&conn.inner.subscriptions) = subscriptions;
        conn.inner.detached.store(true, Ordering::Release);
        conn
    }

    /// Whether the connection waits for its client to re-bind after a move.
    pub(crate) fn is_detached(&self) -> bool {
        self.inner.detached.load(Ordering::Acquire)
    }

    /// Binds a connection that arrived with its actor to its client's new stream; the messages kept meanwhile
    /// go out with the next flush.
    pub(crate) fn attach(&self, outbound: OutboundSender<ConnOutput>) {
        *lock(&self.inner.outbound) = Some(outbound);
        self.inner.detached.store(false, Ordering::Release);
    }

    /// Puts back messages a flush took but could not send yet (the connection is detached), in front of any
    /// produced since.
    pub(crate) fn keep_pending(&self, messages: Vec<ConnOutput>) {
        let mut pending = lock(&self.inner.pending);
        let newer = std::mem::take(&mut *pending);
        // Committed already: no failing unit may drop them.
        pending.extend(messages.into_iter().map(|m| (COMMITTED, m)));
        pending.extend(newer);
    }

    /// How many messages wait for the turn to commit or (detached) for the client.
    pub(crate) fn pending_count(&self) -> usize {
        lock(&self.inner.pending).len()
    }

    /// The connection's id (as sent to the client in `Init`).
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The connection parameters the client sent, as a dynamic value (null when none were sent).
    pub fn params_value(&self) -> &Value {
        &self.inner.params
    }

    /// The connection parameters deserialized as `T`; `actor.invalid_request` if they do not fit.
    pub fn params<T: DeserializeOwned>(&self) -> ActorResult<T> {
        self.inner
            .params
            .deserialized()
            .map_err(|e| ActorError::from(ClientError::invalid_request(format!("invalid connection parameters: {e}"))))
    }

    /// The connection state deserialized as `T`.
    pub fn state<T: DeserializeOwned>(&self) -> ActorResult<T> {
        lock(&self.inner.state).deserialized().map_err(|e| ActorError::internal(format!("connection state: {e}")))
    }

    /// Replaces the connection state.
    pub fn set_state<T: Serialize>(&self, state: &T) -> ActorResult<()> {
        *lock(&self.inner.state) = Value::serialized(state).map_err(ActorError::internal)?;
        Ok(())
    }

    /// Sends an event to this connection only (whether or not it subscribed), after the current turn commits.
    pub fn send<T: Serialize>(&self, event: &str, arg: &T) -> ActorResult<()> {
        let arg = Value::serialized(arg).map_err(ActorError::internal)?;
        self.push(ConnOutput::Event { name: event.to_string(), args: Value::Array(vec![arg]) });
        Ok(())
    }

    /// Closes the connection after the current turn. Its client sees the reason and, being disconnected by the
    /// server, reconnects on its own; to keep a client away, reject it in the before-connect hook.
    pub fn disconnect(&self, reason: Option<&str>) {
        let message = reason.unwrap_or("Disconnected by the actor").to_string();
        *lock(&self.inner.disconnect) = Some(ClientError::new("actor", "disconnected", 400, message));
    }

    /// Whether the connection subscribed to `event`.
    pub fn is_subscribed(&self, event: &str) -> bool {
        lock(&self.inner.subscriptions).contains(event)
    }

    pub(crate) fn push(&self, output: ConnOutput) {
        if lock(&self.inner.outbound).is_some() || self.is_detached() {
            let unit = self.inner.unit.load(Ordering::Acquire);
            lock(&self.inner.pending).push((unit, output));
        }
    }

    /// Takes the messages waiting for the turn to commit.
    pub(crate) fn take_pending(&self) -> Vec<ConnOutput> {
        std::mem::take(&mut *lock(&self.inner.pending)).into_iter().map(|(_, message)| message).collect()
    }

    /// Drops the messages a failed atomic unit produced.
    pub(crate) fn drop_pending_of(&self, unit: u64) {
        lock(&self.inner.pending).retain(|(produced_by, _)| *produced_by != unit);
    }
}
