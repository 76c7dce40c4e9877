//! [`Client`]: the entry point, holding the endpoint, the configuration and a shared HTTP client.

use std::sync::Arc;

use reqwest::RequestBuilder;
use reqwest::header::AUTHORIZATION;

use crate::config::{ClientBuilder, ClientConfig};
use crate::error::{Error, Result};
use crate::handle::{ActorHandle, Target};
use crate::key::ActorKey;
use crate::rest::CreateOptions;
use crate::urls::Endpoint;

/// A client for one Tern (or RivetKit-compatible) endpoint. Cheap to clone; clones share one HTTP connection
/// pool.
///
/// ```no_run
/// # async fn demo() -> tern_client::Result<()> {
/// use tern_client::{Client, Value};
/// let client = Client::new("http://127.0.0.1:6420")?;
/// let counter = client.get_or_create("counter", ["room-1"]);
/// let count = counter.action("increment", vec![Value::from(5)]).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    endpoint: Endpoint,
    config: ClientConfig,
}

impl Client {
    /// A client for `endpoint` with the default configuration (bare encoding, namespace `default`).
    pub fn new(endpoint: impl Into<String>) -> Result<Client> {
        ClientBuilder::new(endpoint).build()
    }

    /// A builder for a client of `endpoint`.
    pub fn builder(endpoint: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(endpoint)
    }

    pub(crate) fn from_builder(builder: ClientBuilder) -> Result<Client> {
        let (endpoint, auth) = Endpoint::parse(&builder.endpoint)?;
        let mut config = builder.config;
        if let (false, Some(namespace)) = (builder.namespace_set, auth.namespace) {
            config.namespace = namespace;
        }
        if let (false, Some(token)) = (builder.token_set, auth.token) {
            config.token = Some(token);
        }
        let http = reqwest::Client::builder().build().map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(Client { inner: Arc::new(Inner { http, endpoint, config }) })
    }

    /// The configuration in use.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// A handle to the existing actor `name` with `key`; never creates it. The actor id is looked up on first
    /// use.
    pub fn get(&self, name: &str, key: impl Into<ActorKey>) -> ActorHandle {
        ActorHandle::new(self.clone(), name, Target::Get { key: key.into() })
    }

    /// A handle to the actor `name` with `key`, created (without input) on first use if it does not exist.
    pub fn get_or_create(&self, name: &str, key: impl Into<ActorKey>) -> ActorHandle {
        self.get_or_create_with(name, key, CreateOptions::default())
    }

    /// A handle to the actor `name` with `key`, created with `options` on first use if it does not exist.
    pub fn get_or_create_with(&self, name: &str, key: impl Into<ActorKey>, options: CreateOptions) -> ActorHandle {
        ActorHandle::new(self.clone(), name, Target::GetOrCreate { key: key.into(), options })
    }

    /// A handle to the actor with id `actor_id` (of definition `name`); no lookup, no re-resolution.
    pub fn get_for_id(&self, name: &str, actor_id: &str) -> ActorHandle {
        ActorHandle::new(self.clone(), name, Target::Id(actor_id.to_string()))
    }

    /// Creates actor `name` with `key` and optional `input` now, returning a handle bound to its id. Fails with
    /// `actor.duplicate_key` when the key is taken.
    pub async fn create(
        &self,
        name: &str,
        key: impl Into<ActorKey>,
        input: Option<tern_proto::Value>,
    ) -> Result<ActorHandle> {
        self.create_with(name, key, CreateOptions { input, region: None }).await
    }

    /// Creates actor `name` with `key` and `options` now, returning a handle bound to its id.
    pub async fn create_with(
        &self,
        name: &str,
        key: impl Into<ActorKey>,
        options: CreateOptions,
    ) -> Result<ActorHandle> {
        let actor = self.create_actor(name, key, &options).await?;
        Ok(self.get_for_id(name, &actor.actor_id))
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    pub(crate) fn namespace(&self) -> &str {
        &self.inner.config.namespace
    }

    /// Adds `Authorization: Bearer <token>` when a token is configured.
    pub(crate) fn authorized(&self, request: RequestBuilder) -> RequestBuilder {
        match &self.inner.config.token {
            Some(token) => request.header(AUTHORIZATION, format!("Bearer {token}")),
            None => request,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_proto::Encoding;

    #[test]
    fn builder_settings_win_over_url_auth() {
        let client = Client::new("http://ns1:tok1@localhost:6420").unwrap();
        assert_eq!((client.namespace(), client.config().token.as_deref()), ("ns1", Some("tok1")));
        assert_eq!(client.config().encoding, Encoding::Bare);
        let client = Client::builder("http://ns1:tok1@localhost:6420")
            .namespace("ns2")
            .token("tok2")
            .encoding(Encoding::Json)
            .build()
            .unwrap();
        assert_eq!((client.namespace(), client.config().token.as_deref()), ("ns2", Some("tok2")));
        assert_eq!(client.endpoint().url(&[], &[]).as_str(), "http://localhost:6420/");
        let plain = Client::new("http://localhost:6420").unwrap();
        assert_eq!((plain.namespace(), plain.config().token.as_deref()), ("default", None));
    }

    #[test]
    fn handles_carry_their_target() {
        let client = Client::new("http://localhost:6420").unwrap();
        let handle = client.get("counter", []);
        assert_eq!(handle.name(), "counter");
        assert_eq!(handle.key(), Some(&ActorKey::empty()));
        let by_id = client.get_for_id("counter", "abc");
        assert_eq!(by_id.key(), None);
        assert_eq!(by_id.cached_actor_id().as_deref(), Some("abc"));
        assert_eq!(client.get_or_create("counter", "a").cached_actor_id(), None);
    }
}
