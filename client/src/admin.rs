//! The admin side of the REST API: list actors, look one up by id, put one to sleep, read its KV entries.
//!
//! When the node runs with an admin token these routes need it: build the client with
//! [`ClientBuilder::token`](crate::ClientBuilder::token) and it is sent as `Authorization: Bearer <token>`.
//! Without one the node answers `api.unauthorized` (HTTP 401), which surfaces as [`Error::Actor`].

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use tern_proto::Encoding;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::http::{json_body, success_body};
use crate::rest::Actor;

/// Most pages [`Client::list_actors`] follows before it stops (a guard against a server that never ends a
/// listing).
const MAX_PAGES: usize = 1000;

/// One entry of an actor's key-value store, as `GET /actors/{id}/kv/keys/{key}` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvEntry {
    /// The stored bytes.
    pub value: Vec<u8>,
    /// When the entry was last written, in milliseconds since the Unix epoch.
    pub update_ts: i64,
}

#[derive(Deserialize)]
struct ListPage {
    actors: Vec<Actor>,
    #[serde(default)]
    pagination: Option<Pagination>,
}

#[derive(Deserialize)]
struct Pagination {
    #[serde(default)]
    cursor: Option<String>,
}

#[derive(Deserialize)]
struct KvResponse {
    value: String,
    #[serde(default)]
    update_ts: i64,
}

impl Client {
    /// Lists actors (`GET /actors`), optionally only those of definition `name`, at most `limit` of them (the
    /// server's default page size when `None`). Follows the pagination cursor while the server hands one out
    /// and fewer than `limit` actors were collected. Admin route.
    pub async fn list_actors(&self, name: Option<&str>, limit: Option<usize>) -> Result<Vec<Actor>> {
        let mut actors = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let limit_text = limit.map(|l| l.saturating_sub(actors.len()).to_string());
            let mut query: Vec<(&str, &str)> = Vec::new();
            if let Some(name) = name {
                query.push(("name", name));
            }
            if let Some(limit) = &limit_text {
                query.push(("limit", limit));
            }
            if let Some(cursor) = &cursor {
                query.push(("cursor", cursor));
            }
            let url = self.endpoint().actors(&[], self.namespace(), &query);
            let page: ListPage = json_body(self.authorized(self.http().get(url)).send().await?).await?;
            let page_len = page.actors.len();
            actors.extend(page.actors);
            // Without a limit, one page: the server's default page size.
            let Some(limit) = limit else { break };
            actors.truncate(limit);
            if actors.len() >= limit {
                break;
            }
            match page.pagination.and_then(|p| p.cursor) {
                Some(next) if page_len > 0 && cursor.as_deref() != Some(next.as_str()) => cursor = Some(next),
                _ => break,
            }
        }
        Ok(actors)
    }

    /// The actor with id `actor_id` (`GET /actors?actor_ids=`), destroyed ones included; `None` when there is
    /// no such actor.
    pub async fn actor_by_id(&self, actor_id: &str) -> Result<Option<Actor>> {
        let url = self.endpoint().actors(&[], self.namespace(), &[("actor_ids", actor_id)]);
        let response = self.authorized(self.http().get(url)).send().await?;
        match json_body::<ListPage>(response).await {
            Ok(page) => Ok(page.actors.into_iter().find(|a| a.actor_id == actor_id)),
            Err(e) if e.is_code("actor", "not_found") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Puts the actor `actor_id` to sleep now (`POST /actors/{id}/sleep`): it saves its state and releases its
    /// resources; the next request wakes it. Admin route.
    pub async fn sleep_actor(&self, actor_id: &str) -> Result<()> {
        let url = self.endpoint().actors(&[actor_id, "sleep"], self.namespace(), &[]);
        let response = self.authorized(self.http().post(url)).json(&serde_json::json!({})).send().await?;
        success_body(response, Encoding::Json).await.map(|_| ())
    }

    /// The actor's home and replicas with how far each is (`GET /actors/{id}/replicas`), as JSON:
    /// `{"home": Replica, "replicas": [Replica]}`, each `{"node", "region", "position", "lagFrames", "lagBytes",
    /// "lagMs", "state"}`. Admin route.
    pub async fn replicas(&self, actor_id: &str) -> Result<serde_json::Value> {
        let url = self.endpoint().actors(&[actor_id, "replicas"], self.namespace(), &[]);
        json_body(self.authorized(self.http().get(url)).send().await?).await
    }

    /// Moves the actor to `target` (`{"region": R}` or `{"node": ID}`) and returns the finished move
    /// (`POST /actors/{id}/migrate`): `{"actor_id", "from": {"node", "region"}, "to": {...}, "epoch",
    /// "pause_ms"}`. Admin route.
    pub async fn migrate_actor(&self, actor_id: &str, target: &serde_json::Value) -> Result<serde_json::Value> {
        let url = self.endpoint().actors(&[actor_id, "migrate"], self.namespace(), &[]);
        json_body(self.authorized(self.http().post(url)).json(target).send().await?).await
    }

    /// Moves every actor off node `node` (`POST /cluster/nodes/{id}/drain`): `{"node", "moved", "failed":
    /// [{"actorId", "error", "message"}]}`. Admin route.
    pub async fn drain_node(&self, node: &str) -> Result<serde_json::Value> {
        let url = self.endpoint().url(&["cluster", "nodes", node, "drain"], &[]);
        json_body(self.authorized(self.http().post(url)).send().await?).await
    }

    /// Reads the entry `key` of the actor's key-value store (`GET /actors/{id}/kv/keys/{base64 key}`); `None`
    /// when the store has no such key (`kv.not_found`). A missing actor is `actor.not_found`. Key `[3]` holds
    /// the actor's own inspector token (RivetKit's layout). Admin route.
    pub async fn kv_get(&self, actor_id: &str, key: &[u8]) -> Result<Option<KvEntry>> {
        let encoded = STANDARD.encode(key);
        let url = self.endpoint().actors(&[actor_id, "kv", "keys", &encoded], self.namespace(), &[]);
        let answer: KvResponse = match json_body(self.authorized(self.http().get(url)).send().await?).await {
            Ok(answer) => answer,
            Err(e) if e.is_code("kv", "not_found") => return Ok(None),
            Err(e) => return Err(e),
        };
        let value = STANDARD
            .decode(&answer.value)
            .map_err(|e| Error::Protocol(format!("KV value is not base64 ({e}): {:?}", answer.value)))?;
        Ok(Some(KvEntry { value, update_ts: answer.update_ts }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pages_parse_with_or_without_a_cursor() {
        let page: ListPage = serde_json::from_value(json!({
            "actors": [{"actor_id": "a", "name": "counter", "key": "k1", "datacenter": "local", "create_ts": 5}],
            "pagination": {"cursor": null}
        }))
        .unwrap();
        assert_eq!(page.actors[0].key.as_deref(), Some("k1"));
        assert!(page.pagination.unwrap().cursor.is_none());
        let bare: ListPage = serde_json::from_value(json!({"actors": []})).unwrap();
        assert!(bare.pagination.is_none());
    }

    #[test]
    fn kv_answers_parse() {
        let kv: KvResponse = serde_json::from_value(json!({"value": "Aw==", "update_ts": 12})).unwrap();
        assert_eq!((STANDARD.decode(kv.value).unwrap(), kv.update_ts), (vec![3u8], 12));
    }
}
