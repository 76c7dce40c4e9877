//! Raw WebSockets for actors: the `on_websocket` handler and the socket it works with.
//!
//! A client opens `/gateway/{actor}/websocket/{path}` (the JS client's `handle.webSocket(path)`) and exchanges
//! text and binary messages of the application's own making with the handler:
//!
//! ```ignore
//! Actor::<Echo>::new("echo").on_websocket(|c, socket| async move {
//!     while let Some(message) = socket.recv().await {
//!         c.update(|s| s.messages += 1);
//!         socket.send(message);
//!     }
//!     Ok(())
//! })
//! ```
//!
//! # Design: the handler is driven by the actor's turns
//!
//! The handler is one long-lived future per socket, owned by the actor and polled only inside its turns:
//!
//! - opening the socket is one atomic unit of a turn: the before-connect and create-conn-state hooks run with the
//!   connection parameters (`rivet_conn_params.*` subprotocol; `c.conn()` is an ephemeral connection), then the
//!   handler runs until it waits in [`WebSocket::recv`] with nothing to receive;
//! - each client message is one atomic unit of a later turn: the waiting `recv()` gets the message and the
//!   handler runs until it waits in `recv()` again, or returns;
//! - the client closing is a unit too: `recv()` returns `None`, and the handler runs to its end.
//!
//! So handler code touches state and SQL exactly as an action does, one unit at a time and without locks, and
//! each unit is atomic: its changes commit with the turn, and what it sends (`socket.send`) is held until that
//! commit (the output gate of replies and events) and dropped if the unit fails. A unit that fails (an error or a
//! panic) or runs past the action timeout is rolled back and closes the socket with code 1011 and reason
//! `group.code` (e.g. `actor.action_timed_out`); a handler that returns `Ok` closes it normally (1000).
//!
//! Why this shape: callbacks per event (`on_message`) would need a fresh closure and context per event and make
//! ordered, stateful protocols awkward, and a free-running task would touch state and SQL outside turns, losing
//! atomicity and the output gate. A turn-driven future keeps sequential code with action semantics.
//!
//! What follows from it:
//! - between units the handler is parked, not running: a timer it awaits next to `recv()` advances only when a
//!   message arrives (use schedules for timed work). Await `recv()` only in the socket's own handler; sending to
//!   other sockets (kept in vars, say) is fine.
//! - an actor with an open raw WebSocket does not sleep when idle. When it sleeps anyway (`c.sleep()`, an admin
//!   sleep, shutdown) its sockets close with code 1011 and the retryable reason `actor.stopping`
//!   (`actor.not_found` when destroyed), and their handlers are dropped where they wait: code after the `recv()`
//!   loop runs only when the client closes.
//! - when the actor moves to another node (a migration, a drain) its sockets stay open: the gateway holding the
//!   client's socket opens it again on the new home with the same id and upgrade request, where the before-connect
//!   hooks and the handler run again from the start ([`WebSocket::resumed`] is `true`), and then sends the client
//!   messages the old home's handler never received, in order. Each client message reaches a handler exactly
//!   once; what the handler keeps in local variables does not move (keep it in state or SQL).
//! - as in RivetKit, raw sockets are not connections: they are not in `c.conns()`, events and `conn.send` do not
//!   reach them, and the connect and disconnect hooks do not run for them. An actor without a handler closes the
//!   socket with `handler.websocket_not_defined`.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;

use axum::http::HeaderMap;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
pub use tern_gateway::backend::SocketMessage;
use tern_gateway::backend::SocketOutput;
use tern_gateway::outbound::OutboundSender;
use tern_proto::ClientError;

use super::context::Ctx;
use super::definition::{Actor, BoxFuture};
use super::error::ActorResult;
use crate::sync::lock;

/// Longest close reason, in bytes (RFC 6455: a 125-byte control frame minus the code).
const MAX_CLOSE_REASON: usize = 123;

pub(crate) type SocketFn<S, V> = Arc<dyn Fn(Ctx<S, V>, WebSocket) -> BoxFuture<ActorResult<()>> + Send + Sync>;

/// A raw WebSocket as the actor's handler sees it. Cloning is cheap; clones refer to the same socket.
#[derive(Clone)]
pub struct WebSocket {
    inner: Arc<SocketInner>,
}

struct SocketInner {
    id: String,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    /// Client messages not yet received by the handler.
    inbox: Mutex<VecDeque<SocketMessage>>,
    /// How many client messages were handed to the handler on this node.
    received: AtomicU64,
    /// Whether the socket was opened again here after its actor moved (see [`WebSocket::resumed`]).
    resumed: bool,
    client_closed: AtomicBool,
    /// Set when `recv()` found nothing to receive: the handler's unit is over.
    parked: AtomicBool,
    /// `None` once the socket is closed.
    outbound: Mutex<Option<OutboundSender<SocketOutput>>>,
    /// Messages sent during the current turn, each with its atomic unit; released after the commit.
    pending: Mutex<Vec<(u64, SocketMessage)>>,
    /// The close to send after the turn (asked for by the actor, or the handler's end).
    close: Mutex<Option<(u16, String)>>,
    /// The actor's current atomic unit.
    unit: Arc<AtomicU64>,
}

impl WebSocket {
    /// A socket for the upgrade `request`; `resumed` when its client's socket stayed open while the actor moved
    /// here.
    pub(crate) fn new(
        id: String,
        request: axum::http::Request<()>,
        outbound: OutboundSender<SocketOutput>,
        unit: Arc<AtomicU64>,
        resumed: bool,
    ) -> WebSocket {
        let (parts, ()) = request.into_parts();
        WebSocket {
            inner: Arc::new(SocketInner {
                id,
                path: parts.uri.path().to_string(),
                query: parts.uri.query().map(str::to_string),
                headers: parts.headers,
                inbox: Mutex::new(VecDeque::new()),
                received: AtomicU64::new(0),
                resumed,
                client_closed: AtomicBool::new(false),
                parked: AtomicBool::new(false),
                outbound: Mutex::new(Some(outbound)),
                pending: Mutex::new(Vec::new()),
                close: Mutex::new(None),
                unit,
            }),
        }
    }

    /// The socket's id.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The path after `/websocket`, starting with `/`.
    pub fn path(&self) -> &str {
        &self.inner.path
    }

    /// The query string of the upgrade request without `?` and the gateway's `rvt-*` parameters, if any remain.
    pub fn query(&self) -> Option<&str> {
        self.inner.query.as_deref()
    }

    /// The headers of the upgrade request.
    pub fn headers(&self) -> &HeaderMap {
        &self.inner.headers
    }

    /// Whether this socket was opened again on the actor's new home after the actor moved, with the same id and
    /// upgrade request: the client's socket stayed open, and the handler runs again from its start here (what it
    /// kept in local variables on the old home is gone; what it kept in state or SQL moved with the actor). A
    /// handler that greets its client, say, greets only when this is `false`.
    pub fn resumed(&self) -> bool {
        self.inner.resumed
    }

    /// Whether the socket is open: neither the client nor the actor closed it.
    pub fn is_open(&self) -> bool {
        !self.inner.client_closed.load(Ordering::Acquire) && lock(&self.inner.close).is_none()
    }

    /// The client's next message, or `None` once the socket is closed. Waiting here ends the handler's current
    /// unit (see the module docs).
    pub async fn recv(&self) -> Option<SocketMessage> {
        std::future::poll_fn(|_| {
            if let Some(message) = lock(&self.inner.inbox).pop_front() {
                return Poll::Ready(Some(message));
            }
            if !self.is_open() {
                return Poll::Ready(None);
            }
            self.inner.parked.store(true, Ordering::Release);
            Poll::Pending
        })
        .await
    }

    /// Sends a message once the current turn commits; ignored once the socket is closed.
    pub fn send(&self, message: SocketMessage) {
        if self.is_open() && lock(&self.inner.outbound).is_some() {
            let unit = self.inner.unit.load(Ordering::Acquire);
            lock(&self.inner.pending).push((unit, message));
        }
    }

    /// Sends a text message (see [`WebSocket::send`]).
    pub fn send_text(&self, text: impl Into<String>) {
        self.send(SocketMessage::Text(text.into()));
    }

    /// Sends a binary message (see [`WebSocket::send`]).
    pub fn send_binary(&self, bytes: impl Into<Bytes>) {
        self.send(SocketMessage::Binary(bytes.into()));
    }

    /// Closes the socket after the current turn with `code` (1000, or 3000–4999 for the application's own) and
    /// `reason` (cut to 123 bytes); `recv()` returns `None` from now on. The first close asked for wins.
    pub fn close(&self, code: u16, reason: &str) {
        let cut = (0..=reason.len().min(MAX_CLOSE_REASON)).rev().find(|i| reason.is_char_boundary(*i)).unwrap_or(0);
        lock(&self.inner.close).get_or_insert_with(|| (code, reason[..cut].to_string()));
    }

    /// Hands a client message to the handler, or (`None`) tells it the client closed.
    pub(crate) fn deliver(&self, message: Option<SocketMessage>) {
        match message {
            Some(message) => {
                self.inner.received.fetch_add(1, Ordering::AcqRel);
                lock(&self.inner.inbox).push_back(message);
            }
            None => {
                self.inner.client_closed.store(true, Ordering::Release);
                lock(&self.inner.outbound).take();
            }
        }
    }

    /// Whether the handler parked in `recv()` since the last call; clears the flag.
    pub(crate) fn take_parked(&self) -> bool {
        self.inner.parked.swap(false, Ordering::AcqRel)
    }

    /// The handler ended: close with `output` after the turn, unless the actor already asked for a close.
    pub(crate) fn finish(&self, output: SocketOutput) {
        if let SocketOutput::Close { code, reason } = output {
            self.close(code, &reason);
        }
    }

    /// Drops the messages a failed atomic unit sent.
    pub(crate) fn drop_pending_of(&self, unit: u64) {
        lock(&self.inner.pending).retain(|(sent_by, _)| *sent_by != unit);
    }

    /// After a commit: sends the held messages and, if the socket is done, its close. Returns whether it is done
    /// (closed by the actor or the client), so the runtime forgets it. A socket whose queue is full is closed with
    /// `actor.overloaded` at once (its client is not taking what it was sent); its messages still queued are
    /// dropped.
    pub(crate) fn flush(&self) -> bool {
        let pending = std::mem::take(&mut *lock(&self.inner.pending));
        let mut outbound = lock(&self.inner.outbound);
        if let Some(sender) = outbound.as_ref()
            && pending.into_iter().any(|(_, message)| sender.try_send(SocketOutput::Message(message)).is_err())
        {
            tracing::warn!(socket_id = %self.inner.id, "raw WebSocket fell behind; closing it");
            let overloaded = ClientError::overloaded("The WebSocket fell behind the actor's messages");
            *lock(&self.inner.close) = Some((SocketOutput::ERROR, tern_proto::error::close_reason(&overloaded)));
            if let Some(sender) = outbound.take() {
                sender.close_now(SocketOutput::error(&overloaded));
            }
            return true;
        }
        let close = lock(&self.inner.close).clone();
        if let Some((code, reason)) = close {
            if let Some(sender) = outbound.take() {
                sender.close(SocketOutput::Close { code, reason });
            }
            return true;
        }
        self.inner.client_closed.load(Ordering::Acquire)
    }

    /// Ends the socket here because the actor moves to another node, after what it already sent: its client side
    /// opens it again there ([`SocketOutput::Moved`]) and sends the messages this node's handler never received.
    pub(crate) fn hand_over(&self) {
        lock(&self.inner.pending).clear();
        if let Some(sender) = lock(&self.inner.outbound).take() {
            sender.close(SocketOutput::Moved { received: self.inner.received.load(Ordering::Acquire) });
        }
    }

    /// Closes the socket now because the actor stops, dropping anything not yet sent.
    pub(crate) fn shut(&self, reason: &ClientError) {
        lock(&self.inner.pending).clear();
        if let Some(sender) = lock(&self.inner.outbound).take() {
            sender.close(SocketOutput::error(reason));
        }
    }
}

impl<S, V> Actor<S, V>
where
    S: Serialize + DeserializeOwned + Send + 'static,
    V: Send + 'static,
{
    /// Handles raw WebSockets opened at `/websocket/...` (see the module docs): the handler's future is driven by
    /// the actor's turns, one atomic unit per client message.
    pub fn on_websocket<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Ctx<S, V>, WebSocket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ActorResult<()>> + Send + 'static,
    {
        self.on_websocket = Some(Arc::new(move |ctx, socket| Box::pin(f(ctx, socket))));
        self
    }
}

#[cfg(test)]
mod tests {
    use tern_gateway::outbound::{self, OutboundReceiver};

    use super::*;

    fn socket(queue: usize) -> (WebSocket, OutboundReceiver<SocketOutput>, Arc<AtomicU64>) {
        let (tx, rx) = outbound::channel(queue);
        let unit = Arc::new(AtomicU64::new(1));
        let request = axum::http::Request::builder().uri("/room?x=1").body(()).unwrap();
        (WebSocket::new("s1".into(), request, tx, unit.clone(), false), rx, unit)
    }

    /// What the gateway would receive now, without waiting.
    fn next_now(rx: &mut OutboundReceiver<SocketOutput>) -> Poll<Option<SocketOutput>> {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        std::pin::pin!(rx.recv()).poll(&mut cx)
    }

    fn text(text: &str) -> Poll<Option<SocketOutput>> {
        Poll::Ready(Some(SocketOutput::Message(SocketMessage::Text(text.into()))))
    }

    #[test]
    fn messages_are_held_until_flushed_and_dropped_with_their_unit() {
        let (socket, mut rx, unit) = socket(8);
        assert_eq!((socket.path(), socket.query()), ("/room", Some("x=1")));
        socket.send_text("kept");
        unit.store(2, Ordering::Release);
        socket.send_text("dropped");
        socket.drop_pending_of(2);
        assert!(next_now(&mut rx).is_pending(), "nothing leaves before the flush");
        assert!(!socket.flush());
        assert_eq!(next_now(&mut rx), text("kept"));
        assert!(next_now(&mut rx).is_pending());
        socket.close(4000, "bye");
        socket.close(4001, "later closes do not win");
        socket.finish(SocketOutput::Close { code: 1000, reason: String::new() });
        assert!(socket.flush());
        assert_eq!(next_now(&mut rx), Poll::Ready(Some(SocketOutput::Close { code: 4000, reason: "bye".into() })));
    }

    #[test]
    fn long_close_reasons_are_cut_on_a_character_boundary() {
        let (socket, mut rx, _unit) = socket(8);
        socket.close(4000, &"é".repeat(100));
        assert!(socket.flush());
        let Poll::Ready(Some(SocketOutput::Close { reason, .. })) = next_now(&mut rx) else {
            panic!("expected a close")
        };
        assert_eq!(reason, "é".repeat(61));
    }

    #[test]
    fn a_socket_that_falls_behind_is_closed_as_overloaded() {
        let (socket, mut rx, _unit) = socket(1);
        socket.send_text("taken");
        socket.send_text("no room");
        assert!(socket.flush(), "the socket is done");
        assert!(!socket.is_open());
        assert_eq!(next_now(&mut rx), text("taken"));
        let overloaded = SocketOutput::Close { code: 1011, reason: "actor.overloaded".into() };
        assert_eq!(next_now(&mut rx), Poll::Ready(Some(overloaded)));
        assert_eq!(next_now(&mut rx), Poll::Ready(None));
    }

    #[tokio::test]
    async fn recv_parks_when_empty_and_ends_when_the_client_closes() {
        let (socket, _rx, _unit) = socket(8);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut recv = Box::pin(socket.recv());
        assert!(recv.as_mut().poll(&mut cx).is_pending());
        assert!(socket.take_parked());
        assert!(!socket.take_parked());
        socket.deliver(Some(SocketMessage::Text("hi".into())));
        assert_eq!(recv.as_mut().poll(&mut cx), Poll::Ready(Some(SocketMessage::Text("hi".into()))));
        socket.deliver(None);
        assert_eq!(socket.recv().await, None);
        assert!(socket.flush(), "a socket the client closed is done");
    }
}
