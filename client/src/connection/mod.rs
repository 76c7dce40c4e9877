//! [`Connection`]: a stateful connection to an actor over one WebSocket (`/connect`), with multiplexed
//! actions, event subscriptions and automatic reconnection.
//!
//! A background task owns the socket (see [`driver`]); the [`Connection`] talks to it over a channel. Dropping
//! the connection (or calling [`Connection::close`]) closes the socket; subscriptions then end.

mod driver;
mod socket;

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use futures_util::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tern_proto::Value;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::args::{from_value, to_args};
use crate::error::{Error, Result};
use crate::handle::ActorHandle;
use driver::Driver;

/// Capacity of the connection-error channel; slow watchers miss the oldest errors.
const ERROR_CHANNEL_CAPACITY: usize = 64;

/// Where a connection stands.
#[derive(Debug, Clone)]
pub enum ConnectionState {
    /// The socket is open and the server sent `Init`.
    Connected {
        /// The actor's id.
        actor_id: String,
        /// The server's id for this connection (new after each reconnect).
        connection_id: String,
    },
    /// The server closed the socket; attempt `attempt` to open a new one is pending. Actions issued now are
    /// sent once it opens.
    Reconnecting {
        /// 1-based attempt number.
        attempt: u32,
        /// Why the previous socket (or attempt) failed.
        cause: Error,
    },
    /// The connection is over. `cause` is `None` when it was closed by the user.
    Closed {
        /// Why it ended, when it was not closed by the user.
        cause: Option<Error>,
    },
}

/// A request from the [`Connection`] to its driver.
pub(crate) enum Command {
    Action { name: String, args: Vec<Value>, reply: oneshot::Sender<Result<Value>> },
    Subscribe { event: String, id: u64, sender: mpsc::UnboundedSender<Vec<Value>> },
    Unsubscribe { event: String, id: u64 },
    Close,
}

/// A connection to an actor. Made by [`ActorHandle::connect`].
///
/// ```no_run
/// # async fn demo(handle: tern_client::ActorHandle) -> tern_client::Result<()> {
/// let conn = handle.connect().await?;
/// let mut counts = conn.subscribe("count");
/// let total: i64 = conn.call("increment", (1,)).await?;
/// let event_args = counts.recv().await; // Some(vec![Value::from(total)])
/// conn.close().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Connection {
    commands: mpsc::UnboundedSender<Command>,
    state: watch::Receiver<ConnectionState>,
    errors: broadcast::Sender<Error>,
    next_subscription: AtomicU64,
}

impl Connection {
    /// Opens the socket and waits for `Init`, then hands it to a driver task. A key-based handle whose cached id
    /// turns out stale (`actor.not_found`) resolves again once.
    pub(crate) async fn open(handle: ActorHandle) -> Result<Connection> {
        let stale_possible = handle.key().is_some() && handle.cached_actor_id().is_some();
        let opened = match socket::open(handle.clone()).await {
            Err(e) if stale_possible && e.is_code("actor", "not_found") => {
                handle.invalidate();
                socket::open(handle.clone()).await?
            }
            result => result?,
        };
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (state_tx, state) = watch::channel(ConnectionState::Connected {
            actor_id: opened.actor_id.clone(),
            connection_id: opened.connection_id.clone(),
        });
        let (errors, _) = broadcast::channel(ERROR_CHANNEL_CAPACITY);
        let driver = Driver::new(handle, opened.actor_id, command_rx, state_tx, errors.clone());
        tokio::spawn(driver.run(opened.socket));
        Ok(Connection { commands, state, errors, next_subscription: AtomicU64::new(0) })
    }

    /// The current state.
    pub fn state(&self) -> ConnectionState {
        self.state.borrow().clone()
    }

    /// A receiver of state changes (reconnects, the final close).
    pub fn watch_state(&self) -> watch::Receiver<ConnectionState> {
        self.state.clone()
    }

    /// The actor's id while connected.
    pub fn actor_id(&self) -> Option<String> {
        match &*self.state.borrow() {
            ConnectionState::Connected { actor_id, .. } => Some(actor_id.clone()),
            _ => None,
        }
    }

    /// The server's connection id while connected.
    pub fn connection_id(&self) -> Option<String> {
        match &*self.state.borrow() {
            ConnectionState::Connected { connection_id, .. } => Some(connection_id.clone()),
            _ => None,
        }
    }

    /// A receiver of connection-level errors: `Error` frames not tied to an action, and the reasons the server
    /// gave for closing the socket. Only errors after this call are received.
    pub fn errors(&self) -> broadcast::Receiver<Error> {
        self.errors.subscribe()
    }

    /// Calls action `name` with positional `args` and returns its output.
    ///
    /// Fails with [`Error::Actor`] when the actor answers with an error, [`Error::ConnectionLost`] when the socket
    /// went away before the answer (the action may or may not have run), and [`Error::ConnectionClosed`] when the
    /// connection is closed. While reconnecting, the action waits and is sent on the new socket.
    pub async fn action(&self, name: &str, args: Vec<Value>) -> Result<Value> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Action { name: name.to_string(), args, reply })
            .map_err(|_| Error::ConnectionClosed)?;
        answer.await.unwrap_or(Err(Error::ConnectionClosed))
    }

    /// Calls action `name` with typed arguments (see [`to_args`](crate::to_args)) and deserializes its output.
    pub async fn call<R: DeserializeOwned>(&self, name: &str, args: impl Serialize) -> Result<R> {
        from_value(self.action(name, to_args(&args)?).await?)
    }

    /// Subscribes to event `event`: the server is asked to send it (again after each reconnect), and the
    /// returned [`Subscription`] yields each occurrence's arguments. Dropping the subscription unsubscribes.
    pub fn subscribe(&self, event: &str) -> Subscription {
        let id = self.next_subscription.fetch_add(1, Ordering::Relaxed);
        let (sender, events) = mpsc::unbounded_channel();
        // If the driver is gone, `sender` is dropped with the command and the subscription ends at once.
        let _ = self.commands.send(Command::Subscribe { event: event.to_string(), id, sender });
        Subscription { event: event.to_string(), id, events, commands: self.commands.clone() }
    }

    /// Closes the connection and waits until it is closed. Pending actions fail with
    /// [`Error::ConnectionClosed`].
    pub async fn close(self) {
        let _ = self.commands.send(Command::Close);
        self.closed().await;
    }

    /// Waits until the connection is closed for good; returns why (`None`: closed by the user).
    pub async fn closed(&self) -> Option<Error> {
        let mut state = self.state.clone();
        let closed = state.wait_for(|s| matches!(s, ConnectionState::Closed { .. })).await;
        match closed.as_deref() {
            Ok(ConnectionState::Closed { cause }) => cause.clone(),
            _ => Some(Error::ConnectionClosed),
        }
    }
}

impl Drop for Connection {
    /// Closes the socket in the background.
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Close);
    }
}

/// The occurrences of one event on a [`Connection`]: each item is the event's arguments. Ends when the
/// connection closes. Dropping it unsubscribes (the server is told when no subscription to the event remains).
///
/// Also a [`Stream`] of the same items.
#[derive(Debug)]
pub struct Subscription {
    event: String,
    id: u64,
    events: mpsc::UnboundedReceiver<Vec<Value>>,
    commands: mpsc::UnboundedSender<Command>,
}

impl Subscription {
    /// The event's name.
    pub fn event(&self) -> &str {
        &self.event
    }

    /// The next occurrence's arguments; `None` once the connection is closed.
    pub async fn recv(&mut self) -> Option<Vec<Value>> {
        self.events.recv().await
    }

    /// Stops the subscription (the same as dropping it).
    pub fn unsubscribe(self) {}
}

impl Stream for Subscription {
    type Item = Vec<Value>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().events.poll_recv(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Unsubscribe { event: std::mem::take(&mut self.event), id: self.id });
    }
}
