//! The task behind a [`Connection`](super::Connection): owns the socket, multiplexes actions, fans events out
//! to subscriptions, and reconnects.
//!
//! Reconnection: when the server closes an established socket *with a reason* (`actor.stopping` when the actor
//! sleeps, `ws.eviction`, ...), actions in flight on that socket fail with [`Error::ConnectionLost`] and the
//! driver dials again after the policy's backoff (250 ms, doubling up to a cap), resolving a key-based handle's
//! actor id afresh each time. Meanwhile new actions are queued and subscriptions recorded; once a new socket has
//! its `Init`, every subscribed event is subscribed again and the queue is flushed. A close without a reason
//! (a dropped TCP connection, a server shutting down), a transport or protocol failure, or a dial failing with a
//! permanent error (a `user.*` rejection, `actor.not_found`, unauthorized, ...) ends the connection instead.

use std::collections::{HashMap, VecDeque};

use tern_proto::{ClientError, ToClient, ToServer, Value};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::{Instant, sleep_until};

use super::socket::{self, Incoming, Opened, Socket, close_error, reason_error};
use super::{Command, ConnectionState};
use crate::error::{Error, Result};
use crate::handle::ActorHandle;

/// An action waiting for its answer.
struct Pending {
    name: String,
    reply: oneshot::Sender<Result<Value>>,
}

/// An action not yet sent (issued while reconnecting).
struct Queued {
    name: String,
    args: Vec<Value>,
    reply: oneshot::Sender<Result<Value>>,
}

/// Where one subscription's event arguments go.
type EventSender = mpsc::UnboundedSender<Vec<Value>>;

/// Why serving a socket stopped.
enum SessionEnd {
    /// The user closed the connection (or dropped it).
    UserClosed,
    /// The socket is gone; `retry` when the server closed it with a reason.
    Lost { cause: Error, retry: bool },
}

/// The connection's state machine; see the module docs.
pub(crate) struct Driver {
    handle: ActorHandle,
    commands: mpsc::UnboundedReceiver<Command>,
    state: watch::Sender<ConnectionState>,
    errors: broadcast::Sender<Error>,
    actor_id: String,
    next_action_id: u64,
    in_flight: HashMap<u64, Pending>,
    queued: VecDeque<Queued>,
    subscribers: HashMap<String, Vec<(u64, EventSender)>>,
    /// The last connection-level `Error` frame, which explains the close that follows it.
    last_error: Option<ClientError>,
}

impl Driver {
    pub fn new(
        handle: ActorHandle,
        actor_id: String,
        commands: mpsc::UnboundedReceiver<Command>,
        state: watch::Sender<ConnectionState>,
        errors: broadcast::Sender<Error>,
    ) -> Self {
        Driver {
            handle,
            commands,
            state,
            errors,
            actor_id,
            next_action_id: 0,
            in_flight: HashMap::new(),
            queued: VecDeque::new(),
            subscribers: HashMap::new(),
            last_error: None,
        }
    }

    /// Serves `socket`, reconnecting as the policy allows, until the connection closes for good.
    pub async fn run(mut self, mut socket: Socket) {
        loop {
            let end = self.serve(&mut socket).await;
            socket.close().await;
            let (cause, retry) = match end {
                SessionEnd::UserClosed => return self.finish(None),
                SessionEnd::Lost { cause, retry } => (cause, retry),
            };
            self.fail_in_flight(&cause);
            if !retry {
                return self.finish(Some(cause));
            }
            match self.reconnect(cause).await {
                Some(opened) => socket = opened,
                None => return,
            }
        }
    }

    /// Serves one socket: re-subscribes, flushes queued actions, then relays until the socket ends.
    async fn serve(&mut self, socket: &mut Socket) -> SessionEnd {
        let events: Vec<String> = self.subscribers.keys().cloned().collect();
        for event_name in events {
            if let Err(cause) = socket.send(&ToServer::SubscriptionRequest { event_name, subscribe: true }).await {
                return SessionEnd::Lost { cause, retry: false };
            }
        }
        while let Some(action) = self.queued.pop_front() {
            if let Err(cause) = self.send_action(socket, action).await {
                return SessionEnd::Lost { cause, retry: false };
            }
        }
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    None | Some(Command::Close) => return SessionEnd::UserClosed,
                    Some(command) => {
                        if let Err(cause) = self.apply_online(socket, command).await {
                            return SessionEnd::Lost { cause, retry: false };
                        }
                    }
                },
                incoming = socket.recv() => match incoming {
                    Incoming::Message(msg) => self.dispatch(msg),
                    Incoming::Closed { code, reason } => return self.closed_by_server(code, &reason),
                    Incoming::Failed(cause) => return SessionEnd::Lost { cause, retry: false },
                },
            }
        }
    }

    /// Handles a command while a socket is open.
    async fn apply_online(&mut self, socket: &mut Socket, command: Command) -> Result<()> {
        match command {
            Command::Action { name, args, reply } => self.send_action(socket, Queued { name, args, reply }).await,
            Command::Subscribe { event, id, sender } => {
                if self.add_subscriber(&event, id, sender) {
                    socket.send(&ToServer::SubscriptionRequest { event_name: event, subscribe: true }).await?;
                }
                Ok(())
            }
            Command::Unsubscribe { event, id } => {
                if self.remove_subscriber(&event, id) {
                    socket.send(&ToServer::SubscriptionRequest { event_name: event, subscribe: false }).await?;
                }
                Ok(())
            }
            Command::Close => Ok(()),
        }
    }

    /// Handles a command while no socket is open; `false` when the user closed the connection.
    fn apply_offline(&mut self, command: Option<Command>) -> bool {
        match command {
            None | Some(Command::Close) => return false,
            Some(Command::Action { name, args, reply }) => self.queued.push_back(Queued { name, args, reply }),
            Some(Command::Subscribe { event, id, sender }) => {
                self.add_subscriber(&event, id, sender);
            }
            Some(Command::Unsubscribe { event, id }) => {
                self.remove_subscriber(&event, id);
            }
        }
        true
    }

    async fn send_action(&mut self, socket: &mut Socket, action: Queued) -> Result<()> {
        if action.reply.is_closed() {
            return Ok(()); // The caller stopped waiting.
        }
        let id = self.next_action_id;
        self.next_action_id += 1;
        let msg = ToServer::ActionRequest { id, name: action.name.clone(), args: Value::Array(action.args) };
        self.in_flight.insert(id, Pending { name: action.name, reply: action.reply });
        socket.send(&msg).await
    }

    /// Records a subscriber; `true` when it is the event's first.
    fn add_subscriber(&mut self, event: &str, id: u64, sender: EventSender) -> bool {
        let list = self.subscribers.entry(event.to_string()).or_default();
        list.push((id, sender));
        list.len() == 1
    }

    /// Forgets a subscriber; `true` when it was the event's last.
    fn remove_subscriber(&mut self, event: &str, id: u64) -> bool {
        let Some(list) = self.subscribers.get_mut(event) else { return false };
        let before = list.len();
        list.retain(|(sub, _)| *sub != id);
        if list.is_empty() {
            self.subscribers.remove(event);
            return before > 0;
        }
        false
    }

    /// Routes a server message.
    fn dispatch(&mut self, msg: ToClient) {
        match msg {
            ToClient::ActionResponse { id, output } => match self.in_flight.remove(&id) {
                Some(pending) => {
                    let _ = pending.reply.send(Ok(output));
                }
                None => tracing::warn!(id, "response to an unknown action"),
            },
            ToClient::Error(frame) => {
                let action_id = frame.action_id;
                let error = ClientError::from(frame);
                match action_id {
                    Some(id) => match self.in_flight.remove(&id) {
                        Some(pending) => {
                            let _ = pending.reply.send(Err(Error::Actor(error)));
                        }
                        None => tracing::warn!(id, %error, "error for an unknown action"),
                    },
                    None => {
                        tracing::debug!(%error, "connection error");
                        self.last_error = Some(error.clone());
                        let _ = self.errors.send(Error::Actor(error));
                    }
                }
            }
            ToClient::Event { name, args } => {
                let args = match args {
                    Value::Array(items) => items,
                    Value::Null => Vec::new(),
                    other => vec![other],
                };
                for (_, sender) in self.subscribers.get(&name).into_iter().flatten() {
                    let _ = sender.send(args.clone());
                }
            }
            ToClient::Init { .. } => tracing::warn!("ignoring a second Init"),
        }
    }

    /// The end of a socket the server closed. The preceding `Error` frame, if it names the same code, is the
    /// richer description; otherwise the close itself is reported to error watchers.
    fn closed_by_server(&mut self, code: u16, reason: &str) -> SessionEnd {
        let frame_error = self.last_error.take();
        let cause = match (reason_error(reason), frame_error) {
            (Some(closed), Some(frame)) if closed.group == frame.group && closed.code == frame.code => {
                Error::Actor(frame)
            }
            _ => {
                let cause = close_error(code, reason);
                let _ = self.errors.send(cause.clone());
                cause
            }
        };
        tracing::debug!(code, reason, "server closed the connection");
        SessionEnd::Lost { cause, retry: !reason.is_empty() }
    }

    /// Fails every action sent on the socket that just went away.
    fn fail_in_flight(&mut self, cause: &Error) {
        for (id, pending) in self.in_flight.drain() {
            let message = format!(
                "action '{}' (id {id}) on actor {} got no answer before its connection closed ({cause}); it may or may \
                 not have run",
                pending.name, self.actor_id
            );
            let _ = pending.reply.send(Err(Error::ConnectionLost(message)));
        }
    }

    /// Dials until a socket opens (`Some`), or the connection closes for good (`None`, state already set).
    async fn reconnect(&mut self, mut cause: Error) -> Option<Socket> {
        let policy = self.handle.client().config().reconnect;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            if policy.max_attempts.is_some_and(|max| attempt > max) {
                self.finish(Some(cause));
                return None;
            }
            let delay = policy.delay(attempt);
            tracing::info!(actor = %self.actor_id, attempt, ?delay, %cause, "reconnecting");
            self.state.send_replace(ConnectionState::Reconnecting { attempt, cause: cause.clone() });
            if self.offline_during(sleep_until(Instant::now() + delay)).await.is_none() {
                self.finish(None);
                return None;
            }
            self.handle.invalidate();
            match self.offline_during(socket::open(self.handle.clone())).await {
                None => {
                    self.finish(None);
                    return None;
                }
                Some(Ok(opened)) => return Some(self.connected(opened)),
                Some(Err(e)) if is_permanent(&e) => {
                    self.finish(Some(e));
                    return None;
                }
                Some(Err(e)) => cause = e,
            }
        }
    }

    /// Awaits `future` while handling commands offline; `None` when the user closed the connection meanwhile.
    async fn offline_during<F: Future>(&mut self, future: F) -> Option<F::Output> {
        tokio::pin!(future);
        loop {
            tokio::select! {
                output = &mut future => return Some(output),
                command = self.commands.recv() => {
                    if !self.apply_offline(command) {
                        return None;
                    }
                }
            }
        }
    }

    /// Records a newly opened socket.
    fn connected(&mut self, opened: Opened) -> Socket {
        tracing::info!(actor = %opened.actor_id, connection = %opened.connection_id, "reconnected");
        self.actor_id = opened.actor_id.clone();
        self.last_error = None;
        self.state.send_replace(ConnectionState::Connected {
            actor_id: opened.actor_id,
            connection_id: opened.connection_id,
        });
        opened.socket
    }

    /// Closes the connection for good: fails what is waiting, ends subscriptions, publishes `Closed`.
    fn finish(&mut self, cause: Option<Error>) {
        let failure = cause.clone().unwrap_or(Error::ConnectionClosed);
        for pending in self.in_flight.drain().map(|(_, p)| p.reply).chain(self.queued.drain(..).map(|q| q.reply)) {
            let _ = pending.send(Err(failure.clone()));
        }
        self.subscribers.clear();
        self.commands.close();
        self.state.send_replace(ConnectionState::Closed { cause });
    }
}

/// Whether a failed dial should end reconnection: the server refused us for a reason retrying cannot fix.
fn is_permanent(error: &Error) -> bool {
    match error {
        Error::Actor(e) => {
            e.group == "user"
                || matches!(e.code.as_str(), "unauthorized" | "forbidden")
                || (e.group == "actor"
                    && matches!(
                        e.code.as_str(),
                        "not_found"
                            | "not_registered"
                            | "namespace_not_found"
                            | "invalid_request"
                            | "unsupported_websocket_encoding"
                    ))
        }
        Error::Config(_) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permanent_dial_failures() {
        assert!(is_permanent(&Error::Actor(ClientError::user("forbidden", "no", None))));
        assert!(is_permanent(&Error::Actor(ClientError::actor_not_found("x"))));
        assert!(is_permanent(&Error::Actor(ClientError::api_unauthorized())));
        assert!(!is_permanent(&Error::Actor(ClientError::stopping())));
        assert!(!is_permanent(&Error::Actor(ClientError::unavailable("moving"))));
        assert!(!is_permanent(&Error::ConnectionLost("reset".into())));
        assert!(!is_permanent(&Error::Timeout("slow".into())));
    }
}
