//! The REST API RivetKit clients use to find and manage actors (`/metadata`, `/health`, `/actors`), the admin
//! routes beside it (listing, sleep, destroy, KV reads; see [`crate::auth`]) and `/metrics`.
//!
//! JSON in snake_case as RivetKit's engine serves it. Every route takes the `namespace` query parameter; only
//! `default` exists.

use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value as JsonValue, json};
use tern_proto::ClientError;
use tern_proto::key::{ActorKey, serialize_key};

use crate::AppState;
use crate::auth::require_admin;
use crate::backend::{ActorInfo, CreateRequest, ListCursor, MigrationTarget};
use crate::error_response::ErrorResponse;
use crate::request::{Checked, decode_input};
use crate::target::check_namespace;

type ApiResult = Result<Json<JsonValue>, ErrorResponse>;

/// Default and largest page of `GET /actors`.
const DEFAULT_LIST_LIMIT: usize = 100;
const MAX_LIST_LIMIT: usize = 1000;

/// An actor as the REST API reports it (RivetKit's `Actor` schema).
pub(crate) fn actor_json(actor: &ActorInfo) -> JsonValue {
    json!({
        "actor_id": actor.actor_id,
        "name": actor.name,
        "key": serialize_key(&actor.key),
        "namespace_id": crate::target::NAMESPACE,
        "datacenter": actor.region,
        "runner_name_selector": "default",
        "crash_policy": "sleep",
        "create_ts": actor.create_ts,
        "start_ts": actor.start_ts,
        "connectable_ts": actor.start_ts,
        "sleep_ts": actor.sleep_ts,
        "destroy_ts": actor.destroy_ts,
        "error": null,
    })
}

/// `GET /metadata`: RivetKit clients probe it before every operation.
pub(crate) async fn metadata(State(app): State<AppState>) -> Json<JsonValue> {
    Json(json!({
        "runtime": "tern",
        "version": env!("CARGO_PKG_VERSION"),
        "actorNames": app.backend.actor_names(),
    }))
}

/// `GET /health`.
pub(crate) async fn health() -> &'static str {
    "ok"
}

#[derive(Debug, Deserialize)]
pub(crate) struct NamespaceQuery {
    namespace: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    namespace: Option<String>,
    name: Option<String>,
    key: Option<String>,
    /// Comma-separated ids (RivetKit's deprecated form).
    actor_ids: Option<String>,
    /// One id (RivetKit allows it repeated; Tern takes one, use `actor_ids` for several).
    actor_id: Option<String>,
    limit: Option<usize>,
    /// Where a listing goes on (the `pagination.cursor` of the page before).
    cursor: Option<String>,
}

impl ListQuery {
    /// The ids asked for: `actor_ids` (comma-separated) and `actor_id`, empty ones left out.
    fn ids(&self) -> Vec<String> {
        let listed = self.actor_ids.iter().flat_map(|ids| ids.split(','));
        listed.chain(self.actor_id.as_deref()).filter(|id| !id.is_empty()).map(str::to_string).collect()
    }
}

/// Whether `GET /actors` with `uri`'s query lists actors (an admin request: it names neither ids nor a key)
/// rather than looking one up. A query that does not parse counts as a listing.
pub(crate) fn lists_actors(uri: &Uri) -> bool {
    Query::<ListQuery>::try_from_uri(uri).map_or(true, |Query(q)| q.ids().is_empty() && q.key.is_none())
}

/// `GET /actors`: by `name` + `key`, by `actor_ids`/`actor_id` (public), or a listing, optionally of one name
/// (admin).
pub(crate) async fn list_actors(
    State(app): State<AppState>,
    headers: HeaderMap,
    Checked(Query(q)): Checked<Query<ListQuery>>,
) -> ApiResult {
    check_namespace(q.namespace.as_deref())?;
    let ids = q.ids();
    let mut next = None;
    let actors = if !ids.is_empty() {
        if q.name.is_some() || q.key.is_some() {
            return Err(ClientError::invalid_request("actor ids cannot be combined with name or key").into());
        }
        app.backend.get_actors_by_ids(&ids).await?
    } else if let Some(key) = &q.key {
        let name = q.name.as_deref().ok_or_else(|| ClientError::invalid_request("`key` needs `name`"))?;
        app.backend.get_actor_by_key(name, &ActorKey::parse(key)?).await?.into_iter().collect()
    } else {
        require_admin(&app.config, &headers)?;
        let limit = q.limit.unwrap_or(DEFAULT_LIST_LIMIT).clamp(1, MAX_LIST_LIMIT);
        let after = q.cursor.as_deref().map(ListCursor::parse).transpose()?;
        let page = app.backend.list_actors(q.name.as_deref(), after.as_ref(), limit).await?;
        // A full page may have more after it; the last page is the first one that comes back short.
        if page.len() == limit {
            next = page.last().map(|last| ListCursor::after(last).encode());
        }
        page
    };
    Ok(Json(json!({
        "actors": actors.iter().map(actor_json).collect::<Vec<_>>(),
        "pagination": { "cursor": next },
    })))
}

#[derive(Debug, Deserialize)]
pub(crate) struct CreateBody {
    name: String,
    key: Option<String>,
    input: Option<String>,
    datacenter: Option<String>,
}

impl CreateBody {
    fn into_request(self) -> Result<CreateRequest, ClientError> {
        Ok(CreateRequest {
            name: self.name,
            key: self.key.as_deref().map(ActorKey::parse).transpose()?.unwrap_or_default(),
            input: self.input.as_deref().map(decode_input).transpose()?,
            region: self.datacenter,
        })
    }
}

fn json_body<T: serde::de::DeserializeOwned>(
    body: Result<Json<T>, axum::extract::rejection::JsonRejection>,
) -> Result<T, ClientError> {
    body.map(|Json(b)| b).map_err(|e| ClientError::invalid_request(e.body_text()))
}

/// `PUT /actors`: get or create by key → `{actor, created}`.
pub(crate) async fn get_or_create_actor(
    State(app): State<AppState>,
    Checked(Query(q)): Checked<Query<NamespaceQuery>>,
    body: Result<Json<CreateBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    check_namespace(q.namespace.as_deref())?;
    let request = json_body(body)?.into_request()?;
    let (actor, created) = app.backend.get_or_create_actor(request).await?;
    Ok(Json(json!({ "actor": actor_json(&actor), "created": created })))
}

/// `POST /actors`: create → `{actor}`; `actor.duplicate_key` if the key is taken.
pub(crate) async fn create_actor(
    State(app): State<AppState>,
    Checked(Query(q)): Checked<Query<NamespaceQuery>>,
    body: Result<Json<CreateBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    check_namespace(q.namespace.as_deref())?;
    let request = json_body(body)?.into_request()?;
    let actor = app.backend.create_actor(request).await?;
    Ok(Json(json!({ "actor": actor_json(&actor) })))
}

/// `GET /actors/names` → `{names: {name: {metadata: {}}}}`.
pub(crate) async fn actor_names(
    State(app): State<AppState>,
    Checked(Query(q)): Checked<Query<NamespaceQuery>>,
) -> ApiResult {
    check_namespace(q.namespace.as_deref())?;
    let names: serde_json::Map<String, JsonValue> =
        app.backend.actor_names().into_iter().map(|n| (n, json!({ "metadata": {} }))).collect();
    Ok(Json(json!({ "names": names, "pagination": { "cursor": null } })))
}

/// The actor id of an admin route on one actor (`/actors/{actor_id}/...`), after the admin and namespace checks.
pub(crate) struct AdminActor(String);

impl FromRequestParts<AppState> for AdminActor {
    type Rejection = ErrorResponse;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Self::Rejection> {
        require_admin(&app.config, &parts.headers)?;
        let Checked(Query(q)) = Checked::<Query<NamespaceQuery>>::from_request_parts(parts, app).await?;
        check_namespace(q.namespace.as_deref())?;
        let Checked(Path(actor_id)) = Checked::<Path<String>>::from_request_parts(parts, app).await?;
        Ok(AdminActor(actor_id))
    }
}

/// `DELETE /actors/{id}` (admin) → `{}` once the actor and its data are gone.
pub(crate) async fn destroy_actor(State(app): State<AppState>, AdminActor(actor_id): AdminActor) -> ApiResult {
    app.backend.destroy_actor(&actor_id).await?;
    Ok(Json(json!({})))
}

/// `POST /actors/{id}/sleep` (admin) → `{}` once the actor sleeps (its connections are closed with a retryable
/// reason).
pub(crate) async fn sleep_actor(State(app): State<AppState>, AdminActor(actor_id): AdminActor) -> ApiResult {
    app.backend.sleep_actor(&actor_id).await?;
    Ok(Json(json!({})))
}

/// `GET /actors/{id}/replicas` (admin) → `{"home": Replica, "replicas": [Replica]}`, each
/// `{"node", "region", "position", "lagFrames", "lagBytes", "lagMs", "state"}`.
pub(crate) async fn replicas(State(app): State<AppState>, AdminActor(actor_id): AdminActor) -> ApiResult {
    let set = app.backend.replicas(&actor_id).await?;
    Ok(Json(json!(set)))
}

/// `POST /actors/{id}/migrate {"region": R} | {"node": ID}` (admin) → `{"actor_id", "from": {"node", "region"},
/// "to": {"node", "region"}, "epoch", "pause_ms"}` once the actor serves from its new home.
pub(crate) async fn migrate_actor(
    State(app): State<AppState>,
    AdminActor(actor_id): AdminActor,
    body: axum::body::Bytes,
) -> ApiResult {
    let target = migration_target(&body)?;
    let migration = app.backend.migrate(&actor_id, target).await?;
    Ok(Json(json!(migration)))
}

/// The target of a migration request's body: exactly one of `region` and `node`, a non-empty string.
pub(crate) fn migration_target(body: &[u8]) -> Result<MigrationTarget, ClientError> {
    let refused = || ClientError::invalid_request("the body must be {\"region\": \"…\"} or {\"node\": \"…\"}");
    let target: MigrationTarget = serde_json::from_slice(body).map_err(|_| refused())?;
    match &target {
        MigrationTarget::Region(name) | MigrationTarget::Node(name) if name.is_empty() => Err(refused()),
        _ => Ok(target),
    }
}

/// `GET /actors/{id}/kv/keys/{base64 key}` (admin) → `{"value": base64, "update_ts"}`; `kv.not_found` when
/// absent. Key `0x03` (`Aw==`) holds the actor's inspector token.
pub(crate) async fn kv_get(
    State(app): State<AppState>,
    headers: HeaderMap,
    Checked(Path((actor_id, key))): Checked<Path<(String, String)>>,
    Checked(Query(q)): Checked<Query<NamespaceQuery>>,
) -> ApiResult {
    require_admin(&app.config, &headers)?;
    check_namespace(q.namespace.as_deref())?;
    let key = STANDARD.decode(&key).map_err(|e| ClientError::invalid_request(format!("the key is not base64: {e}")))?;
    let (value, update_ts) = app.backend.kv_get(&actor_id, &key).await?.ok_or_else(ClientError::kv_not_found)?;
    Ok(Json(json!({ "value": STANDARD.encode(value), "update_ts": update_ts })))
}

/// `GET /metrics`: Prometheus text.
pub(crate) async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], app.backend.metrics().await)
}

/// Any path no route matches.
pub(crate) async fn no_route(uri: Uri) -> ErrorResponse {
    ClientError::no_route(uri.path()).into()
}

/// A known path with a method it does not take.
pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> ErrorResponse {
    ClientError::method_not_allowed(method.as_str(), uri.path()).into()
}
