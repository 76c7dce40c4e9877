//! The management REST API (`/actors`): look actors up by key, get-or-create, create and destroy them.
//!
//! Bodies are snake_case JSON as RivetKit's engine API has them; every call carries `?namespace=`. Create
//! input travels as base64 of its CBOR encoding.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use tern_proto::{Encoding, Value, value};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::http::{json_body, success_body};
use crate::key::ActorKey;

/// The runner pool every actor is created in.
const RUNNER_NAME_SELECTOR: &str = "default";
/// Crash policy of created actors (what RivetKit's client always sends).
const CRASH_POLICY: &str = "sleep";

/// An actor as the REST API describes it. Timestamps are milliseconds since the Unix epoch. Serializes back to
/// the REST API's snake_case JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Actor {
    /// The actor's id.
    pub actor_id: String,
    /// The actor definition's name.
    pub name: String,
    /// The serialized key (see [`ActorKey::parse`]); `None` for actors created without one.
    #[serde(default)]
    pub key: Option<String>,
    /// When the actor was created.
    #[serde(default)]
    pub create_ts: i64,
    /// When the actor last started.
    #[serde(default)]
    pub start_ts: Option<i64>,
    /// When the actor last went to sleep.
    #[serde(default)]
    pub sleep_ts: Option<i64>,
    /// When the actor was destroyed.
    #[serde(default)]
    pub destroy_ts: Option<i64>,
    /// The region (datacenter) the actor lives in.
    #[serde(default)]
    pub datacenter: Option<String>,
}

/// Options for creating an actor (`create`, `get_or_create`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CreateOptions {
    /// Input passed to the actor's create hooks, once.
    pub input: Option<Value>,
    /// Region (datacenter) to create the actor in.
    pub region: Option<String>,
}

impl CreateOptions {
    /// Options with just an input.
    pub fn with_input(input: Value) -> Self {
        CreateOptions { input: Some(input), region: None }
    }
}

/// Body of `PUT /actors` and `POST /actors`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ActorRequestBody {
    name: String,
    key: String,
    runner_name_selector: &'static str,
    crash_policy: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    datacenter: Option<String>,
}

impl ActorRequestBody {
    /// The body creating actor `name` with `key`.
    pub fn new(name: &str, key: &ActorKey, options: &CreateOptions) -> Self {
        ActorRequestBody {
            name: name.to_string(),
            key: key.serialize(),
            runner_name_selector: RUNNER_NAME_SELECTOR,
            crash_policy: CRASH_POLICY,
            input: options.input.as_ref().map(encode_input),
            datacenter: options.region.clone(),
        }
    }
}

/// Create input as the REST API carries it: standard base64 of the value's CBOR (prepared as for a JavaScript
/// reader).
pub(crate) fn encode_input(input: &Value) -> String {
    STANDARD.encode(value::to_cbor_bytes(&value::to_wire_cbor(input)))
}

#[derive(Deserialize)]
struct ActorResponse {
    actor: Actor,
}

#[derive(Deserialize)]
struct GetOrCreateResponse {
    actor: Actor,
    created: bool,
}

#[derive(Deserialize)]
struct ListResponse {
    actors: Vec<Actor>,
}

impl Client {
    /// Looks up the actor `name` with `key` (`GET /actors?name=&key=`); `None` when there is none.
    pub async fn find_actor(&self, name: &str, key: impl Into<ActorKey>) -> Result<Option<Actor>> {
        let key = key.into().serialize();
        let url = self.endpoint().actors(&[], self.namespace(), &[("name", name), ("key", &key)]);
        let response = self.authorized(self.http().get(url)).send().await?;
        match json_body::<ListResponse>(response).await {
            Ok(list) => Ok(list.actors.into_iter().next()),
            Err(e) if e.is_code("actor", "not_found") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Returns the actor `name` with `key`, creating it if needed (`PUT /actors`); the flag says whether this
    /// call created it.
    pub async fn get_or_create_actor(
        &self,
        name: &str,
        key: impl Into<ActorKey>,
        options: &CreateOptions,
    ) -> Result<(Actor, bool)> {
        let body = ActorRequestBody::new(name, &key.into(), options);
        let url = self.endpoint().actors(&[], self.namespace(), &[]);
        let response = self.authorized(self.http().put(url)).json(&body).send().await?;
        let answer: GetOrCreateResponse = json_body(response).await?;
        Ok((answer.actor, answer.created))
    }

    /// Creates actor `name` with `key` (`POST /actors`); fails with `actor.duplicate_key` when the key is taken.
    pub async fn create_actor(&self, name: &str, key: impl Into<ActorKey>, options: &CreateOptions) -> Result<Actor> {
        let body = ActorRequestBody::new(name, &key.into(), options);
        let url = self.endpoint().actors(&[], self.namespace(), &[]);
        let response = self.authorized(self.http().post(url)).json(&body).send().await?;
        let answer: ActorResponse = json_body(response).await?;
        Ok(answer.actor)
    }

    /// Destroys the actor `actor_id` (`DELETE /actors/{id}`).
    pub async fn destroy_actor(&self, actor_id: &str) -> Result<()> {
        let url = self.endpoint().actors(&[actor_id], self.namespace(), &[]);
        let response = self.authorized(self.http().delete(url)).send().await?;
        success_body(response, Encoding::Json).await.map(|_| ())
    }
}

/// `actor.not_found` for a key lookup that found nothing.
pub(crate) fn not_found_by_key(name: &str, key: &ActorKey) -> Error {
    Error::Actor(tern_proto::ClientError::actor_not_found(format!("{name} with key {key:?}", key = key.serialize())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_match_rivetkit() {
        let body = ActorRequestBody::new("counter", &ActorKey::new(["org", "a/b"]), &CreateOptions::default());
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({"name": "counter", "key": "org/a\\/b", "runner_name_selector": "default", "crash_policy": "sleep"})
        );
        let options = CreateOptions { input: Some(Value::Integer(5.into())), region: Some("eu".into()) };
        let body = ActorRequestBody::new("counter", &ActorKey::empty(), &options);
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({"name": "counter", "key": "/", "runner_name_selector": "default", "crash_policy": "sleep",
                   "input": "BQ==", "datacenter": "eu"})
        );
    }

    #[test]
    fn input_is_base64_cbor() {
        let input = value::from_json(&json!({"count": 1, "tags": ["a"]}));
        let decoded = STANDARD.decode(encode_input(&input)).unwrap();
        assert_eq!(value::from_cbor_bytes(&decoded).unwrap(), input);
    }

    #[test]
    fn actors_parse_with_optional_fields() {
        let full: Actor = serde_json::from_value(json!({
            "actor_id": "a1", "name": "counter", "key": "k", "namespace_id": "ns", "create_ts": 1,
            "start_ts": 2, "sleep_ts": null, "destroy_ts": null, "datacenter": "local", "crash_policy": "sleep"
        }))
        .unwrap();
        assert_eq!(full.start_ts, Some(2));
        assert_eq!(full.datacenter.as_deref(), Some("local"));
        let minimal: Actor = serde_json::from_value(json!({"actor_id": "a2", "name": "n", "key": null})).unwrap();
        assert_eq!((minimal.key, minimal.create_ts, minimal.sleep_ts), (None, 0, None));
        let list: ListResponse = serde_json::from_value(json!({"actors": [], "pagination": {"cursor": null}})).unwrap();
        assert!(list.actors.is_empty());
        let got: GetOrCreateResponse =
            serde_json::from_value(json!({"actor": {"actor_id": "a3", "name": "n"}, "created": true})).unwrap();
        assert!(got.created && got.actor.actor_id == "a3");
    }
}
