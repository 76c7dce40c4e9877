//! The client's single error type.
//!
//! [`Error::Actor`] carries the server's catalogue errors (`group.code`, message, metadata, HTTP status) exactly
//! as the server sent them, whether they came as an HTTP error body, an `Error` frame or a WebSocket close
//! reason. Every other variant is a failure on the client's side of the wire: transport, protocol, conversion
//! or configuration.
//!
//! `Error` is `Clone` (transport errors are shared behind an [`Arc`]) so that one failure can be handed to every
//! action waiting on a connection and to every watcher of its state.

use std::sync::Arc;

use tern_proto::ClientError;
use tokio_tungstenite::tungstenite;

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to an actor.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The server answered with an error from its catalogue (`actor.not_found`, `user.*`, ...).
    #[error("{0}")]
    Actor(ClientError),
    /// An HTTP request could not be sent or its response could not be read.
    #[error("HTTP transport error: {0}")]
    Http(#[source] Arc<reqwest::Error>),
    /// A WebSocket could not be opened, or failed while in use.
    #[error("WebSocket transport error: {0}")]
    WebSocket(#[source] Arc<tungstenite::Error>),
    /// The server sent something this client does not understand (an undecodable body or frame, a response
    /// of the wrong shape, a message out of order).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The connection's socket went away while an action was waiting for its answer. The action may or may
    /// not have run on the actor.
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    /// A WebSocket did not open and receive its `Init` message within the configured open timeout.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The connection was closed (by [`Connection::close`](crate::Connection::close), by dropping it, or for
    /// good after a failure) and accepts no more work.
    #[error("the connection is closed")]
    ConnectionClosed,
    /// A user value could not be converted to or from the requested Rust type.
    #[error("value conversion failed: {0}")]
    Value(String),
    /// The client was configured with something unusable (an endpoint that is not an http(s) URL, a header
    /// value that cannot be sent).
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl Error {
    /// The catalogue error, when the server sent one.
    pub fn as_actor_error(&self) -> Option<&ClientError> {
        match self {
            Error::Actor(e) => Some(e),
            _ => None,
        }
    }

    /// Whether this is the server's catalogue error `group.code`.
    pub fn is_code(&self, group: &str, code: &str) -> bool {
        self.as_actor_error().is_some_and(|e| e.group == group && e.code == code)
    }
}

impl From<ClientError> for Error {
    fn from(e: ClientError) -> Self {
        Error::Actor(e)
    }
}

impl From<reqwest::Error> for Error {
    fn from(e: reqwest::Error) -> Self {
        Error::Http(Arc::new(e))
    }
}

impl From<tungstenite::Error> for Error {
    fn from(e: tungstenite::Error) -> Self {
        Error::WebSocket(Arc::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actor_errors_display_their_qualified_code() {
        let err = Error::from(ClientError::action_not_found("nope"));
        assert!(err.is_code("actor", "action_not_found"));
        assert!(!err.is_code("actor", "not_found"));
        assert_eq!(err.to_string(), "actor.action_not_found: The actor has no action named 'nope'");
        assert!(Error::ConnectionClosed.as_actor_error().is_none());
    }
}
