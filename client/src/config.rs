//! Client configuration and its builder.

use std::time::Duration;

use tern_proto::{Encoding, Value};

use crate::client::Client;
use crate::error::Result;

/// How a [`Connection`](crate::Connection) reconnects after the server closed it with a reason.
///
/// The first attempt waits `initial_delay`; each further attempt doubles the wait, up to `max_delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// Wait before the first attempt (default 250 ms).
    pub initial_delay: Duration,
    /// Longest wait between attempts (default 30 s).
    pub max_delay: Duration,
    /// Give up after this many failed attempts; `None` (the default) retries until the connection is closed.
    /// `Some(0)` disables reconnection.
    pub max_attempts: Option<u32>,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            initial_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(30),
            max_attempts: None,
        }
    }
}

impl ReconnectPolicy {
    /// Never reconnect: a closed socket closes the connection.
    pub fn disabled() -> Self {
        ReconnectPolicy { max_attempts: Some(0), ..Self::default() }
    }

    /// The wait before attempt `attempt` (1-based): `initial_delay * 2^(attempt-1)`, capped at `max_delay`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.initial_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// The settings a [`Client`] was built with.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Encoding of actions and connection messages (default [`Encoding::Bare`], as RivetKit's client).
    pub encoding: Encoding,
    /// Namespace of every REST call (default `"default"`).
    pub namespace: String,
    /// Sent as `Authorization: Bearer <token>` on every request and WebSocket handshake.
    pub token: Option<String>,
    /// Connection parameters sent with actions and connections (handles can override them).
    pub conn_params: Option<Value>,
    /// Reconnection of established connections.
    pub reconnect: ReconnectPolicy,
    /// Longest wait for a WebSocket to open and receive its `Init` message (default 30 s).
    pub open_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            encoding: Encoding::Bare,
            namespace: "default".to_string(),
            token: None,
            conn_params: None,
            reconnect: ReconnectPolicy::default(),
            open_timeout: Duration::from_secs(30),
        }
    }
}

/// Builds a [`Client`]: `Client::builder("http://127.0.0.1:6420").encoding(Encoding::Json).build()?`.
///
/// The endpoint may carry RivetKit's URL-auth form `http://namespace:token@host`; explicit
/// [`namespace`](Self::namespace) and [`token`](Self::token) settings win over it.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    pub(crate) endpoint: String,
    pub(crate) config: ClientConfig,
    pub(crate) namespace_set: bool,
    pub(crate) token_set: bool,
}

impl ClientBuilder {
    /// A builder for `endpoint` (an `http://` or `https://` URL; a path prefix is kept).
    pub fn new(endpoint: impl Into<String>) -> Self {
        ClientBuilder {
            endpoint: endpoint.into(),
            config: ClientConfig::default(),
            namespace_set: false,
            token_set: false,
        }
    }

    /// Sets the encoding of actions and connection messages.
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.config.encoding = encoding;
        self
    }

    /// Sets the namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.config.namespace = namespace.into();
        self.namespace_set = true;
        self
    }

    /// Sets the bearer token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.config.token = Some(token.into());
        self.token_set = true;
        self
    }

    /// Sets the default connection parameters (handles may override them with
    /// [`ActorHandle::with_params`](crate::ActorHandle::with_params)).
    pub fn conn_params(mut self, params: Value) -> Self {
        self.config.conn_params = Some(params);
        self
    }

    /// Sets how connections reconnect.
    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.config.reconnect = policy;
        self
    }

    /// Sets the longest wait for a WebSocket to open and receive `Init`.
    pub fn open_timeout(mut self, timeout: Duration) -> Self {
        self.config.open_timeout = timeout;
        self
    }

    /// Builds the client. Fails when the endpoint is not an http(s) URL.
    pub fn build(self) -> Result<Client> {
        Client::from_builder(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = ReconnectPolicy::default();
        let delays: Vec<u64> = (1..=10).map(|a| policy.delay(a).as_millis() as u64).collect();
        assert_eq!(delays, [250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
        assert_eq!(policy.delay(u32::MAX), Duration::from_secs(30));
    }
}
