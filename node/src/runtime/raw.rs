//! The runtime side of raw HTTP and raw WebSockets: running `on_request` handlers, and driving `on_websocket`
//! handlers inside turns (the design is in [`crate::sdk::websocket`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tern_gateway::backend::{RawRequest, RawResponse, SocketMessage, SocketOutput};
use tern_gateway::outbound::OutboundSender;
use tern_proto::{ClientError, Value};

use super::instance::Instance;
use crate::sdk::definition::BoxFuture;
use crate::sdk::error::ActorResult;
use crate::sdk::request::{Request, Response};
use crate::sdk::websocket::WebSocket;
use crate::storage::ActorDb;
use crate::sync::lock;
use crate::trace::SpanKind;

/// A socket's handler, parked in `recv()` between units.
type Handler = BoxFuture<ActorResult<()>>;

/// The open raw WebSockets of an instance, each with its parked handler (`None` once it returned).
#[derive(Default)]
pub(crate) struct RawSockets {
    open: Mutex<BTreeMap<String, (WebSocket, Option<Handler>)>>,
}

impl RawSockets {
    /// Whether no raw WebSocket is open.
    pub fn is_empty(&self) -> bool {
        lock(&self.open).is_empty()
    }

    /// Drops the messages a failed atomic unit sent on any socket.
    pub fn drop_pending_of(&self, unit: u64) {
        lock(&self.open).values().for_each(|(socket, _)| socket.drop_pending_of(unit));
    }

    /// After a commit: sends what the turn held back, closes the sockets that are done and forgets them. Returns
    /// how many closed.
    pub fn flush(&self) -> usize {
        let mut open = lock(&self.open);
        let before = open.len();
        open.retain(|_, (socket, _)| !socket.flush());
        before - open.len()
    }

    /// Ends every socket because the actor moves to another node ([`WebSocket::hand_over`]) and drops the
    /// handlers. Returns how many ended.
    pub fn hand_over_all(&self) -> usize {
        let open = std::mem::take(&mut *lock(&self.open));
        open.values().for_each(|(socket, _)| socket.hand_over());
        open.len()
    }

    /// Closes every socket with `reason` (the actor stops) and drops the handlers. Returns how many closed.
    pub fn close_all(&self, reason: &ClientError) -> usize {
        let open = std::mem::take(&mut *lock(&self.open));
        open.values().for_each(|(socket, _)| socket.shut(reason));
        open.len()
    }

    fn insert(&self, socket: WebSocket, handler: Option<Handler>) {
        lock(&self.open).insert(socket.id().to_string(), (socket, handler));
    }

    /// The socket and its handler, taken out to be driven (the socket stays registered).
    fn take(&self, socket_id: &str) -> Option<(WebSocket, Option<Handler>)> {
        lock(&self.open).get_mut(socket_id).map(|(socket, handler)| (socket.clone(), handler.take()))
    }

    fn park(&self, socket_id: &str, handler: Handler) {
        if let Some((_, slot)) = lock(&self.open).get_mut(socket_id) {
            *slot = Some(handler);
        }
    }
}

/// Polls a socket's handler until it waits in `recv()` with nothing to receive (the handler comes back, to be
/// parked) or returns (`None`).
struct Drive {
    handler: Option<Handler>,
    socket: WebSocket,
}

impl Future for Drive {
    type Output = ActorResult<Option<Handler>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let handler = this.handler.as_mut().expect("Drive polled after it finished");
        this.socket.take_parked();
        match handler.as_mut().poll(cx) {
            Poll::Ready(result) => Poll::Ready(result.map(|()| None)),
            Poll::Pending if this.socket.take_parked() => Poll::Ready(Ok(this.handler.take())),
            // Waiting for something else (SQL, a timer): its waker polls us again.
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S, V> Instance<S, V>
where
    S: Serialize + DeserializeOwned + Send + 'static,
    V: Default + Send + 'static,
{
    /// Runs the `on_request` handler as one atomic unit, like a stateless action.
    pub(crate) async fn raw_request(
        &self,
        db: &ActorDb,
        request: RawRequest,
        params: Option<Value>,
    ) -> Result<RawResponse, ClientError> {
        let handler = self.def.on_request.clone().ok_or_else(|| ClientError::handler_not_defined("request"))?;
        let attributes = vec![
            ("http.method".to_string(), request.method().to_string()),
            ("http.target".to_string(), request.uri().to_string()),
        ];
        let span = self.shared.recorder.start("request", SpanKind::Server, attributes, true);
        let result = self
            .atomically(db, async {
                let conn = self.admit(params, None).await?;
                let response = handler(self.ctx().with_conn(Some(conn)), Request::from_raw(request));
                self.bounded("onRequest", response).await.map(Response::into_raw)
            })
            .await;
        self.shared.recorder.finish(span, result.as_ref().err().map(ToString::to_string));
        result
    }

    /// Opens a raw WebSocket: admits the client and runs the handler up to its first wait in `recv()`, as one
    /// atomic unit. Replies with the socket's id: a new one, or `resumed`'s (a socket that followed its actor
    /// here from another node).
    pub(crate) async fn open_socket(
        &self,
        db: &ActorDb,
        request: axum::http::Request<()>,
        params: Option<Value>,
        resumed: Option<String>,
        outbound: OutboundSender<SocketOutput>,
    ) -> Result<String, ClientError> {
        let handler = self.def.on_websocket.clone().ok_or_else(|| ClientError::handler_not_defined("websocket"))?;
        let is_resumed = resumed.is_some();
        let id = resumed.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let socket = WebSocket::new(id.clone(), request, outbound, self.shared.unit.clone(), is_resumed);
        let span = self.socket_span("websocket open", &id);
        let result = self
            .atomically(db, async {
                let conn = self.admit(params, None).await?;
                let handler = handler(self.ctx().with_conn(Some(conn)), socket.clone());
                self.bounded("onWebSocket", Drive { handler: Some(handler), socket: socket.clone() }).await
            })
            .await;
        self.shared.recorder.finish(span, result.as_ref().err().map(ToString::to_string));
        let parked = result?;
        if parked.is_none() {
            socket.finish(SocketOutput::Close { code: SocketOutput::NORMAL, reason: String::new() });
        }
        self.raw.insert(socket, parked);
        self.core.connections_changed(&self.shared.name, 1);
        Ok(id)
    }

    /// Hands a client message (or, with `None`, the client's close) to a socket's handler and drives it, as one
    /// atomic unit.
    pub(crate) async fn socket_input(&self, db: &ActorDb, socket_id: &str, message: Option<SocketMessage>) {
        let Some((socket, handler)) = self.raw.take(socket_id) else { return };
        socket.deliver(message);
        let Some(handler) = handler else { return };
        let span = self.socket_span("websocket message", socket_id);
        let result = self
            .atomically(db, self.bounded("onWebSocket", Drive { handler: Some(handler), socket: socket.clone() }))
            .await;
        self.shared.recorder.finish(span, result.as_ref().err().map(ToString::to_string));
        match result {
            Ok(Some(parked)) => self.raw.park(socket_id, parked),
            Ok(None) => socket.finish(SocketOutput::Close { code: SocketOutput::NORMAL, reason: String::new() }),
            Err(err) => socket.finish(SocketOutput::error(&err)),
        }
    }

    fn socket_span(&self, name: &str, socket_id: &str) -> crate::trace::OpenSpan {
        let attributes = vec![("websocket.id".to_string(), socket_id.to_string())];
        self.shared.recorder.start(name, SpanKind::Server, attributes, true)
    }
}
