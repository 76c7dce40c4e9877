//! Errors raised by actor code.
//!
//! A [`UserError`] reaches the client as `user.<code>` with its message and metadata. Any other error is
//! internal: it is logged with its cause and the client sees only `actor.internal_error` with a masked message.
//! SQL errors reach the client as `database.sql_error` with SQLite's message, and catalogue errors
//! ([`ClientError`]) pass through unchanged.

use serde::Serialize;
use tern_proto::{ClientError, Value};

/// The error type of actions and hooks. Any `std::error::Error` converts into it with `?`.
#[derive(Debug)]
pub struct ActorError(pub(crate) ErrorKind);

#[derive(Debug)]
pub(crate) enum ErrorKind {
    /// Visible to the client as is.
    Public(ClientError),
    /// Logged; masked for the client.
    Internal(String),
}

/// An error meant for the client: `user.<code>`, a message and optional metadata.
#[derive(Debug, Clone)]
pub struct UserError {
    code: String,
    message: String,
    metadata: Option<Value>,
}

impl UserError {
    /// A user error with a code and a message. A plain code (`"name_required"`) reaches clients as group
    /// `user`; a qualified one (`"room.name_required"`) as that group and code.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> UserError {
        UserError { code: code.into(), message: message.into(), metadata: None }
    }

    fn to_client(&self) -> ClientError {
        let mut error = ClientError::user(&self.code, &self.message, self.metadata.clone());
        if let Some((group, code)) = self.code.split_once('.') {
            error.group = group.to_string();
            error.code = code.to_string();
        }
        error
    }

    /// Attaches metadata the client receives with the error. A value that cannot be serialized is dropped.
    pub fn with_metadata(mut self, metadata: impl Serialize) -> UserError {
        self.metadata = Value::serialized(&metadata).ok();
        self
    }
}

impl std::fmt::Display for UserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "user.{}: {}", self.code, self.message)
    }
}

impl std::error::Error for UserError {}

impl ActorError {
    /// An internal error with a message for the logs (the client sees a masked message).
    pub fn internal(message: impl std::fmt::Display) -> ActorError {
        ActorError(ErrorKind::Internal(message.to_string()))
    }

    /// The error as the client sees it; internal errors are logged here and masked.
    pub(crate) fn into_client(self, actor_id: &str, context: &str) -> ClientError {
        match self.0 {
            ErrorKind::Public(e) => e,
            ErrorKind::Internal(cause) => {
                tracing::warn!(actor_id, context, %cause, "internal error in actor code");
                ClientError::internal()
            }
        }
    }
}

impl std::fmt::Display for ActorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            ErrorKind::Public(e) => e.fmt(f),
            ErrorKind::Internal(cause) => write!(f, "internal error: {cause}"),
        }
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for ActorError {
    fn from(err: E) -> ActorError {
        let any: &dyn std::any::Any = &err;
        if let Some(user) = any.downcast_ref::<UserError>() {
            return ActorError(ErrorKind::Public(user.to_client()));
        }
        if let Some(client) = any.downcast_ref::<ClientError>() {
            return ActorError(ErrorKind::Public(client.clone()));
        }
        if let Some(sql) = any.downcast_ref::<libsql::Error>() {
            return ActorError(ErrorKind::Public(crate::storage::sql_value::sql_error_ref(sql)));
        }
        ActorError(ErrorKind::Internal(err.to_string()))
    }
}

/// The result type of actions and hooks.
pub type ActorResult<T> = Result<T, ActorError>;
