//! [`Inspector`]: an actor's inspector API (`{endpoint}/gateway/{actor_id}/inspector/...`), RivetKit's shapes.
//!
//! The inspector looks inside one actor: its state (read and replace), its connections, its actions (list and
//! call), its traces, and its SQL database (schema, rows, arbitrary statements, a copy of the file). When the
//! node runs with an admin token, inspector routes need it (or the actor's own inspector token): build the
//! client with [`ClientBuilder::token`](crate::ClientBuilder::token).
//!
//! User values (state, action arguments and outputs, SQL parameters and cells) travel as JSON in RivetKit's
//! JSON-compat form: `["$BigInt","123"]` for big integers, `["$Uint8Array","<base64>"]` for bytes. They are
//! handed over as [`serde_json::Value`]s in that form; [`tern_proto::value::from_json`] and
//! [`tern_proto::value::to_json`] convert from and to [`Value`](crate::Value).
//!
//! ```no_run
//! # async fn demo() -> tern_client::Result<()> {
//! use serde_json::json;
//! let client = tern_client::Client::builder("http://127.0.0.1:6420").token("admin-token").build()?;
//! let inspector = client.inspector("0123456789abcdef0123456789abcdef");
//! let state = inspector.state().await?;
//! inspector.set_state(&json!({"count": 0})).await?;
//! let rows = inspector.execute("SELECT * FROM items WHERE id > ?", vec![json!(1)]).await?;
//! let file = inspector.export().await?;
//! # Ok(()) }
//! ```

mod traces;
mod types;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json, json};
use tern_proto::Encoding;

use crate::client::Client;
use crate::error::Result;
use crate::http::{json_body, success_body};

pub use traces::{SpanStatus, TraceSpan, Traces};
pub use types::{ConnectionDetails, DatabaseSchema, InspectorConnection, StateInfo, Summary, TableInfo, TableRef};

/// Parameters of an SQL statement run through [`Inspector::execute`].
///
/// Convert from what you have: `()` (none), a `Vec<serde_json::Value>` (positional, `?` or `?N`), or a
/// `serde_json::Map` (named: `:name`, `@name`, `$name`).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum SqlParams {
    /// No parameters.
    #[default]
    None,
    /// Positional parameters, in order.
    Positional(Vec<Json>),
    /// Named parameters; each key binds `:key`, `@key` and `$key`.
    Named(Map<String, Json>),
}

impl From<()> for SqlParams {
    fn from((): ()) -> Self {
        SqlParams::None
    }
}

impl From<Vec<Json>> for SqlParams {
    fn from(args: Vec<Json>) -> Self {
        SqlParams::Positional(args)
    }
}

impl From<Map<String, Json>> for SqlParams {
    fn from(properties: Map<String, Json>) -> Self {
        SqlParams::Named(properties)
    }
}

impl SqlParams {
    /// The body of `POST database/execute`: `{"sql","args"}` or `{"sql","properties"}`.
    fn body(self, sql: &str) -> Json {
        match self {
            SqlParams::None => json!({"sql": sql, "args": []}),
            SqlParams::Positional(args) => json!({"sql": sql, "args": args}),
            SqlParams::Named(properties) => json!({"sql": sql, "properties": properties}),
        }
    }
}

/// The inspector of one actor. Made by [`Client::inspector`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct Inspector {
    client: Client,
    actor_id: String,
}

impl Client {
    /// The inspector of the actor `actor_id`. No request is made until a method is called.
    pub fn inspector(&self, actor_id: &str) -> Inspector {
        Inspector { client: self.clone(), actor_id: actor_id.to_string() }
    }
}

impl Inspector {
    /// The id of the inspected actor.
    pub fn actor_id(&self) -> &str {
        &self.actor_id
    }

    /// Everything at once (`GET summary`): state, connections, action names and feature flags.
    pub async fn summary(&self) -> Result<Summary> {
        self.get(&["summary"], &[]).await
    }

    /// The actor's state (`GET state`); `state` is null when the actor keeps none.
    pub async fn state(&self) -> Result<StateInfo> {
        self.get(&["state"], &[]).await
    }

    /// Replaces the actor's state with `state` (`PATCH state`), JSON-compat form. The actor saves it like a
    /// change made by an action.
    pub async fn set_state(&self, state: &Json) -> Result<()> {
        let url = self.url(&["state"], &[]);
        let request = self.client.authorized(self.client.http().patch(url)).json(&json!({"state": state}));
        let _: Json = json_body(request.send().await?).await?;
        Ok(())
    }

    /// The actor's open connections (`GET connections`).
    pub async fn connections(&self) -> Result<Vec<InspectorConnection>> {
        #[derive(serde::Deserialize)]
        struct Answer {
            connections: Vec<InspectorConnection>,
        }
        Ok(self.get::<Answer>(&["connections"], &[]).await?.connections)
    }

    /// The names of the actor's actions (`GET rpcs`).
    pub async fn rpcs(&self) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Answer {
            rpcs: Vec<String>,
        }
        Ok(self.get::<Answer>(&["rpcs"], &[]).await?.rpcs)
    }

    /// Calls action `name` with positional `args` through the inspector (`POST action/{name}`) and returns its
    /// output. The action's errors are the server's catalogue errors, as for any action.
    pub async fn action(&self, name: &str, args: Vec<Json>) -> Result<Json> {
        #[derive(serde::Deserialize)]
        struct Answer {
            #[serde(default)]
            output: Json,
        }
        let answer: Answer = self.post(&["action", name], &json!({"args": args})).await?;
        Ok(answer.output)
    }

    /// The actor database's tables with their columns, foreign keys and row counts (`GET database/schema`).
    pub async fn schema(&self) -> Result<DatabaseSchema> {
        #[derive(serde::Deserialize)]
        struct Answer {
            schema: DatabaseSchema,
        }
        Ok(self.get::<Answer>(&["database", "schema"], &[]).await?.schema)
    }

    /// Up to `limit` rows of `table` from row `offset` on (`GET database/rows`); the server caps `limit` at
    /// 500. Each row is an object keyed by column name.
    pub async fn rows(&self, table: &str, limit: u32, offset: u64) -> Result<Vec<Json>> {
        let (limit, offset) = (limit.to_string(), offset.to_string());
        let query = [("table", table), ("limit", limit.as_str()), ("offset", offset.as_str())];
        Ok(self.get::<RowsAnswer>(&["database", "rows"], &query).await?.rows)
    }

    /// Runs one SQL statement with `params` (`POST database/execute`) and returns the rows it produced (none
    /// for a write). SQL errors are `database.sql_error`.
    pub async fn execute(&self, sql: &str, params: impl Into<SqlParams>) -> Result<Vec<Json>> {
        Ok(self.post::<RowsAnswer>(&["database", "execute"], &params.into().body(sql)).await?.rows)
    }

    /// The actor's recorded spans between `start_ms` and `end_ms` (milliseconds since the Unix epoch), at most
    /// `limit` of them (`GET traces`). See [`Traces::spans`] for a flat list.
    pub async fn traces(&self, start_ms: u64, end_ms: u64, limit: u32) -> Result<Traces> {
        let (start, end, limit) = (start_ms.to_string(), end_ms.to_string(), limit.to_string());
        let query = [("startMs", start.as_str()), ("endMs", end.as_str()), ("limit", limit.as_str())];
        self.get(&["traces"], &query).await
    }

    /// A consistent copy of the actor's SQLite database file (`GET database/export`).
    pub async fn export(&self) -> Result<Vec<u8>> {
        let url = self.url(&["database", "export"], &[]);
        let response = self.client.authorized(self.client.http().get(url)).send().await?;
        success_body(response, Encoding::Json).await
    }

    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> reqwest::Url {
        let mut path = vec!["inspector"];
        path.extend_from_slice(segments);
        let mut url = self.client.endpoint().gateway(&self.actor_id, &path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    async fn get<T: DeserializeOwned>(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<T> {
        let url = self.url(segments, query);
        json_body(self.client.authorized(self.client.http().get(url)).send().await?).await
    }

    async fn post<T: DeserializeOwned>(&self, segments: &[&str], body: &impl Serialize) -> Result<T> {
        let url = self.url(segments, &[]);
        json_body(self.client.authorized(self.client.http().post(url)).json(body).send().await?).await
    }
}

#[derive(serde::Deserialize)]
struct RowsAnswer {
    #[serde(default)]
    rows: Vec<Json>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execute_bodies_match_rivetkit() {
        assert_eq!(SqlParams::from(()).body("SELECT 1"), json!({"sql": "SELECT 1", "args": []}));
        let positional = SqlParams::from(vec![json!(1), json!(["$BigInt", "9007199254740993"])]);
        assert_eq!(positional.body("q"), json!({"sql": "q", "args": [1, ["$BigInt", "9007199254740993"]]}));
        let mut named = Map::new();
        named.insert("name".into(), json!("widget"));
        assert_eq!(SqlParams::from(named).body("q"), json!({"sql": "q", "properties": {"name": "widget"}}));
    }

    #[test]
    fn urls_live_under_the_gateway() {
        let client = Client::new("http://localhost:6420/base").unwrap();
        let inspector = client.inspector("abc");
        assert_eq!(inspector.url(&["state"], &[]).as_str(), "http://localhost:6420/base/gateway/abc/inspector/state");
        assert_eq!(
            inspector.url(&["action", "a/b"], &[]).as_str(),
            "http://localhost:6420/base/gateway/abc/inspector/action/a%2Fb"
        );
        assert_eq!(
            inspector.url(&["database", "rows"], &[("table", "my items"), ("limit", "5")]).as_str(),
            "http://localhost:6420/base/gateway/abc/inspector/database/rows?table=my+items&limit=5"
        );
    }
}
