//! [`ActorHandle`]: one actor, addressed by key or id; stateless actions, queue sends, destroy, connect.
//!
//! A key-based handle resolves its actor id on first use (`get`: `GET /actors` by key; `get_or_create`:
//! `PUT /actors`) and caches it. When the gateway answers `actor.not_found` for a cached id (the actor was
//! destroyed), the cache is dropped and the call is retried once with a fresh resolution.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use reqwest::RequestBuilder;
use reqwest::header::CONTENT_TYPE;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tern_proto::messages::{HttpQueueSendRequest, HttpQueueSendResponse};
use tern_proto::{Encoding, Value};

use crate::args::{from_value, to_args};
use crate::client::Client;
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::http::success_body;
use crate::key::ActorKey;
use crate::rest::{CreateOptions, not_found_by_key};
use crate::urls::params_json;

/// How a handle finds its actor.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// An existing actor by key.
    Get { key: ActorKey },
    /// An actor by key, created on demand.
    GetOrCreate { key: ActorKey, options: CreateOptions },
    /// A known actor id.
    Id(String),
}

/// A handle to one actor. Cheap to clone; clones share the resolved actor id.
#[derive(Debug, Clone)]
pub struct ActorHandle {
    client: Client,
    name: String,
    target: Target,
    params: Option<Value>,
    resolved: Arc<Mutex<Option<String>>>,
}

impl ActorHandle {
    pub(crate) fn new(client: Client, name: &str, target: Target) -> Self {
        let resolved = match &target {
            Target::Id(id) => Some(id.clone()),
            _ => None,
        };
        ActorHandle { client, name: name.to_string(), target, params: None, resolved: Arc::new(Mutex::new(resolved)) }
    }

    /// This handle with its own connection parameters (instead of the client's).
    pub fn with_params(mut self, params: Value) -> Self {
        self.params = Some(params);
        self
    }

    /// The actor definition's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key this handle addresses the actor by; `None` for handles made from an id.
    pub fn key(&self) -> Option<&ActorKey> {
        match &self.target {
            Target::Get { key } | Target::GetOrCreate { key, .. } => Some(key),
            Target::Id(_) => None,
        }
    }

    /// The actor id, if already known (resolved before, or given).
    pub fn cached_actor_id(&self) -> Option<String> {
        self.resolved.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The actor id: the cached one, or looked up now (`get`: by key, failing with `actor.not_found`;
    /// `get_or_create`: created if missing).
    pub async fn resolve(&self) -> Result<String> {
        if let Some(id) = self.cached_actor_id() {
            return Ok(id);
        }
        let id = match &self.target {
            Target::Id(id) => id.clone(),
            Target::Get { key } => match self.client.find_actor(&self.name, key.clone()).await? {
                Some(actor) => actor.actor_id,
                None => return Err(not_found_by_key(&self.name, key)),
            },
            Target::GetOrCreate { key, options } => {
                self.client.get_or_create_actor(&self.name, key.clone(), options).await?.0.actor_id
            }
        };
        *self.resolved.lock().unwrap_or_else(PoisonError::into_inner) = Some(id.clone());
        Ok(id)
    }

    /// Forgets the resolved id of a key-based handle, so that the next use resolves again.
    pub(crate) fn invalidate(&self) {
        if self.key().is_some() {
            *self.resolved.lock().unwrap_or_else(PoisonError::into_inner) = None;
        }
    }

    /// Runs `f` against the actor; retries once, after resolving again, when a key-based handle's cached id
    /// turns out to be stale (`actor.not_found`).
    async fn with_actor<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let was_cached = self.cached_actor_id().is_some();
        let result = f(self.resolve().await?).await;
        match result {
            Err(e) if was_cached && self.key().is_some() && e.is_code("actor", "not_found") => {
                tracing::debug!(actor = %self.name, "cached actor id is stale; resolving again");
                self.invalidate();
                f(self.resolve().await?).await
            }
            other => other,
        }
    }

    /// Calls action `name` with positional `args` over HTTP (one request; the actor sees an ephemeral
    /// connection) and returns its output.
    pub async fn action(&self, name: &str, args: Vec<Value>) -> Result<Value> {
        let encoding = self.client.config().encoding;
        let body = encoding.encode_action_request(&Value::Array(args));
        self.with_actor(|actor_id| {
            let url = self.client.endpoint().gateway(&actor_id, &["action", name]);
            let request = self.gateway_request(self.client.http().post(url), encoding).body(body.clone());
            async move {
                let response = success_body(request.send().await?, encoding).await?;
                encoding.decode_action_response(&response).map_err(|e| Error::Protocol(format!("action response: {e}")))
            }
        })
        .await
    }

    /// Calls action `name` with typed arguments (see [`to_args`](crate::to_args): a tuple gives positional
    /// arguments) and deserializes its output.
    pub async fn call<R: DeserializeOwned>(&self, name: &str, args: impl Serialize) -> Result<R> {
        from_value(self.action(name, to_args(&args)?).await?)
    }

    /// Sends `body` to the actor's queue `queue`. With `wait`, the server waits up to that long for the message
    /// to be processed and reports `"completed"` (with the response) or `"timedOut"`.
    pub async fn send(&self, queue: &str, body: Value, wait: Option<Duration>) -> Result<HttpQueueSendResponse> {
        let encoding = self.client.config().encoding;
        let request = HttpQueueSendRequest {
            body,
            name: Some(queue.to_string()),
            wait: wait.map(|_| true),
            timeout: wait.map(|w| u64::try_from(w.as_millis()).unwrap_or(u64::MAX)),
        };
        let payload = encoding.encode_queue_send_request(&request);
        self.with_actor(|actor_id| {
            let url = self.client.endpoint().gateway(&actor_id, &["queue", queue]);
            let request = self.gateway_request(self.client.http().post(url), encoding).body(payload.clone());
            async move {
                let response = success_body(request.send().await?, encoding).await?;
                encoding
                    .decode_queue_send_response(&response)
                    .map_err(|e| Error::Protocol(format!("queue response: {e}")))
            }
        })
        .await
    }

    /// Destroys the actor (`DELETE /actors/{id}`). A key-based handle resolves again on its next use.
    pub async fn destroy(&self) -> Result<()> {
        let actor_id = self.resolve().await?;
        self.client.destroy_actor(&actor_id).await?;
        self.invalidate();
        Ok(())
    }

    /// Opens a connection (WebSocket `/connect`) and waits for the server's `Init`. See [`Connection`].
    pub async fn connect(&self) -> Result<Connection> {
        Connection::open(self.clone()).await
    }

    /// The client this handle belongs to.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The connection parameters in effect: the handle's, else the client's.
    pub(crate) fn params(&self) -> Option<&Value> {
        self.params.as_ref().or(self.client.config().conn_params.as_ref())
    }

    /// Adds the headers of a gateway request: authorization, `x-rivet-encoding`, content type and
    /// `x-rivet-conn-params`.
    fn gateway_request(&self, request: RequestBuilder, encoding: Encoding) -> RequestBuilder {
        let mut request = self
            .client
            .authorized(request)
            .header("x-rivet-encoding", encoding.as_str())
            .header(CONTENT_TYPE, encoding.content_type());
        if let Some(params) = self.params() {
            request = request.header("x-rivet-conn-params", params_json(params));
        }
        request
    }
}
