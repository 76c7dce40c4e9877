//! The messages of RivetKit's client protocol v4, independent of their encoding.
//!
//! WebSocket `/connect`: the client sends [`ToServer`], the server sends [`ToClient`]. HTTP actions and queue
//! sends use the `Http*` structs. Field names follow the BARE schema (`client-protocol/schemas/v4.bare`).

use crate::Value;

/// Identifies the actor an error refers to (protocol v4 `ActorSpecifier`).
#[derive(Debug, Clone, PartialEq)]
pub struct ActorSpecifier {
    pub actor_id: String,
    pub generation: u64,
    pub key: Option<String>,
}

/// A structured error as sent on a connection (`Error`) or as an HTTP error body (`HttpResponseError`).
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorFrame {
    pub group: String,
    pub code: String,
    pub message: String,
    /// User-visible metadata; `None` when absent.
    pub metadata: Option<Value>,
    /// The action this error answers; `None` for connection-level errors. Not part of HTTP error bodies.
    pub action_id: Option<u64>,
    pub actor: Option<ActorSpecifier>,
}

/// A message from client to server on a `/connect` WebSocket.
#[derive(Debug, Clone, PartialEq)]
pub enum ToServer {
    /// Call action `name` with positional `args` (always an array); answered with the same `id`.
    ActionRequest { id: u64, name: String, args: Value },
    /// Start or stop receiving event `event_name`.
    SubscriptionRequest { event_name: String, subscribe: bool },
}

/// A message from server to client on a `/connect` WebSocket.
#[derive(Debug, Clone, PartialEq)]
pub enum ToClient {
    /// First message after the connection is accepted.
    Init {
        actor_id: String,
        connection_id: String,
    },
    Error(ErrorFrame),
    ActionResponse {
        id: u64,
        output: Value,
    },
    /// An event; `args` is always an array.
    Event {
        name: String,
        args: Value,
    },
}

/// Body of `POST /queue/{name}`.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpQueueSendRequest {
    pub body: Value,
    pub name: Option<String>,
    pub wait: Option<bool>,
    /// Milliseconds to wait for completion when `wait` is true.
    pub timeout: Option<u64>,
}

/// Answer to a queue send: `status` is `"completed"` or `"timedOut"`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HttpQueueSendResponse {
    pub status: String,
    pub response: Option<Value>,
}
