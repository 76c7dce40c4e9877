//! `/gateway/{actor}/inspector/...`: the inspector HTTP API (RivetKit's shapes; all bodies JSON).
//!
//! | route | answer |
//! |---|---|
//! | `GET summary` | state, connections, action names, feature flags |
//! | `GET state`, `PATCH state {"state"}` | `{"state","isStateEnabled"}`, `{"ok":true}` |
//! | `GET connections`, `GET rpcs` | `{"connections":[...]}`, `{"rpcs":[...]}` |
//! | `POST action/{name} {"args"} or {"properties"}` | `{"output"}` |
//! | `GET traces?startMs&endMs&limit` | `{"otlp": <OTLP/JSON>, "clamped"}` |
//! | `GET workflow-history`, `POST workflow/replay {"entryId"?}` | `{"history","isWorkflowEnabled"}` |
//! | `GET queue?limit`, `POST queue {"name","body"}`, `DELETE queue` | `{"size","maxSize","truncated","messages"}`, `{"id","name","createdAtMs"}`, `{}` |
//! | `GET database/schema`, `GET database/rows?table&limit&offset` | `{"schema":{"tables"}}`, `{"rows"}` |
//! | `POST database/execute {"sql","args"} or {"sql","properties"}` | `{"rows"}` |
//! | `GET database/export` | the database file (Tern's addition: a consistent copy) |
//! | `POST migrate {"region"} or {"node"}` | the finished migration, as `POST /actors/{id}/migrate` answers (Tern's addition) |
//!
//! Paging limits are clamped, not refused: rows to 1..=500, traces and queue messages to 1..=1000.

use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value as JsonValue, json};
use tern_proto::{ClientError, value};

use crate::AppState;
use crate::auth::inspector_auth;
use crate::backend::InspectRequest;
use crate::request::read_body;

const DEFAULT_ROWS: usize = 100;
const MAX_ROWS: usize = 500;
const DEFAULT_TRACES: usize = 1000;
const MAX_TRACES: usize = 1000;
const DEFAULT_QUEUE: usize = 100;
const MAX_QUEUE: usize = 1000;

/// What an inspector path asks for.
enum InspectorCall {
    Inspect(InspectRequest),
    Action(String),
    Export,
    Migrate(crate::backend::MigrationTarget),
}

/// Serves one inspector request for `actor_id`; `path` is what follows `/inspector`.
pub(crate) async fn handle(
    app: &AppState,
    actor_id: &str,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ClientError> {
    let auth = inspector_auth(&app.config, headers);
    let body = read_body(body, app.config.max_incoming_message_size).await?;
    let route = route(method, path, query, &body)?;
    match route {
        InspectorCall::Inspect(request) => {
            let answer = app.backend.inspect(actor_id, auth, request).await?;
            Ok(axum::Json(answer).into_response())
        }
        InspectorCall::Action(name) => {
            // Authorize first: an action through the inspector is still an inspector call.
            app.backend.inspect(actor_id, auth, InspectRequest::Rpcs).await?;
            let args = action_args(&body)?;
            let output = app.backend.call_action(actor_id, &name, args, None).await?;
            Ok(axum::Json(json!({ "output": value::to_json(&output) })).into_response())
        }
        InspectorCall::Migrate(target) => {
            // Authorize first, as for an action.
            app.backend.inspect(actor_id, auth, InspectRequest::Rpcs).await?;
            let migration = app.backend.migrate(actor_id, target).await?;
            Ok(axum::Json(json!(migration)).into_response())
        }
        InspectorCall::Export => {
            let bytes = app.backend.export(actor_id, auth).await?;
            let disposition = format!("attachment; filename=\"{actor_id}.db\"");
            Ok((
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                    (header::CONTENT_DISPOSITION, disposition),
                ],
                bytes,
            )
                .into_response())
        }
    }
}

fn not_found(path: &str) -> ClientError {
    ClientError::actor_not_found(format!("Inspector route was not found: {path}"))
}

fn route(method: &Method, path: &str, query: Option<&str>, body: &[u8]) -> Result<InspectorCall, ClientError> {
    let query = Query::parse(query);
    let path = path.trim_end_matches('/');
    let allowed = |expected: &[Method]| -> Result<(), ClientError> {
        if expected.contains(method) { Ok(()) } else { Err(ClientError::method_not_allowed(method.as_str(), path)) }
    };
    let get = |request: InspectRequest| allowed(&[Method::GET]).map(|()| request);
    let request = match path {
        "/summary" => get(InspectRequest::Summary)?,
        "/state" if method == Method::PATCH => {
            let mut body = json_object(body)?;
            let state = body.remove("state").ok_or_else(|| ClientError::invalid_request("missing field `state`"))?;
            InspectRequest::PatchState(state)
        }
        "/state" => get(InspectRequest::State)?,
        "/connections" => get(InspectRequest::Connections)?,
        "/rpcs" => get(InspectRequest::Rpcs)?,
        "/traces" => {
            allowed(&[Method::GET])?;
            let end_ms = query.int("endMs")?.unwrap_or(i64::MAX);
            let start_ms = query.int("startMs")?.unwrap_or(0);
            let limit = query.int("limit")?.map_or(DEFAULT_TRACES, |l| l.clamp(1, MAX_TRACES as i64) as usize);
            InspectRequest::Traces { start_ms, end_ms, limit }
        }
        "/queue" if method == Method::POST => {
            let mut body = json_object(body)?;
            let name = match body.remove("name") {
                Some(JsonValue::String(name)) => name,
                _ => return Err(ClientError::invalid_request("`name` must be a string")),
            };
            let body = value::from_json(&body.remove("body").unwrap_or(JsonValue::Null));
            InspectRequest::QueueSend { name, body }
        }
        "/queue" if method == Method::DELETE => InspectRequest::QueueReset,
        "/queue" => {
            allowed(&[Method::GET])?;
            let limit = query.int("limit")?.map_or(DEFAULT_QUEUE, |l| l.clamp(1, MAX_QUEUE as i64) as usize);
            InspectRequest::Queue { limit }
        }
        "/workflow-history" => get(InspectRequest::WorkflowHistory)?,
        "/workflow/replay" => {
            allowed(&[Method::POST])?;
            let mut body = if body.is_empty() { serde_json::Map::new() } else { json_object(body)? };
            let entry_id = match body.remove("entryId") {
                None | Some(JsonValue::Null) => None,
                Some(JsonValue::String(id)) => {
                    Some(id.parse::<i64>().map_err(|_| ClientError::invalid_request("`entryId` is not an entry id"))?)
                }
                Some(JsonValue::Number(id)) => {
                    Some(id.as_i64().ok_or_else(|| ClientError::invalid_request("`entryId` is not an entry id"))?)
                }
                Some(_) => return Err(ClientError::invalid_request("`entryId` must be a string")),
            };
            InspectRequest::WorkflowReplay { entry_id }
        }
        "/database/schema" => get(InspectRequest::Schema)?,
        "/database/rows" => {
            allowed(&[Method::GET])?;
            let table =
                query.text("table").ok_or_else(|| ClientError::invalid_request("missing query parameter `table`"))?;
            let limit = query.int("limit")?.map_or(DEFAULT_ROWS, |l| l.clamp(1, MAX_ROWS as i64) as usize);
            let offset = query.int("offset")?.unwrap_or(0).max(0) as usize;
            InspectRequest::Rows { table, limit, offset }
        }
        "/database/execute" => {
            allowed(&[Method::POST])?;
            let mut body = json_object(body)?;
            let sql = match body.remove("sql") {
                Some(JsonValue::String(sql)) => sql,
                _ => return Err(ClientError::invalid_request("`sql` must be a string")),
            };
            let params = parameters(&mut body)?;
            InspectRequest::Execute { sql, params }
        }
        "/database/export" => {
            allowed(&[Method::GET])?;
            return Ok(InspectorCall::Export);
        }
        "/migrate" => {
            allowed(&[Method::POST])?;
            return Ok(InspectorCall::Migrate(crate::rest::migration_target(body)?));
        }
        other => match other.strip_prefix("/action/") {
            Some(name) if !name.is_empty() && !name.contains('/') => {
                allowed(&[Method::POST])?;
                let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy().into_owned();
                return Ok(InspectorCall::Action(name));
            }
            _ => return Err(not_found(other)),
        },
    };
    Ok(InspectorCall::Inspect(request))
}

/// The methods an inspector path (what follows `/inspector`) takes, for the `Allow` header of a 405: those whose
/// request is not refused as `actor.method_not_allowed` (a bodiless one may still be refused for its body).
pub(crate) fn allowed_methods(path: &str) -> Vec<Method> {
    let refused = ClientError::method_not_allowed("", "");
    [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE]
        .into_iter()
        .filter(|method| !matches!(route(method, path, None, b""), Err(e) if e.is(&refused)))
        .collect()
}

fn json_object(body: &[u8]) -> Result<serde_json::Map<String, JsonValue>, ClientError> {
    match serde_json::from_slice::<JsonValue>(body) {
        Ok(JsonValue::Object(map)) => Ok(map),
        Ok(_) => Err(ClientError::invalid_request("the body must be a JSON object")),
        Err(e) => Err(ClientError::invalid_request(format!("malformed JSON: {e}"))),
    }
}

/// `args` (an array) or `properties` (an object), not both.
fn parameters(body: &mut serde_json::Map<String, JsonValue>) -> Result<Option<tern_proto::Value>, ClientError> {
    match (body.remove("args"), body.remove("properties")) {
        (Some(_), Some(_)) => Err(ClientError::invalid_request("pass either `args` or `properties`, not both")),
        (Some(args @ JsonValue::Array(_)), None) => Ok(Some(value::from_json(&args))),
        (None, Some(props @ JsonValue::Object(_))) => Ok(Some(value::from_json(&props))),
        (Some(JsonValue::Null), None) | (None, Some(JsonValue::Null)) | (None, None) => Ok(None),
        (Some(_), None) => Err(ClientError::invalid_request("`args` must be an array")),
        (None, Some(_)) => Err(ClientError::invalid_request("`properties` must be an object")),
    }
}

/// An inspector action's arguments: `args`, or `properties` passed as the single argument.
fn action_args(body: &[u8]) -> Result<tern_proto::Value, ClientError> {
    let mut body = if body.is_empty() { serde_json::Map::new() } else { json_object(body)? };
    Ok(match parameters(&mut body)? {
        Some(tern_proto::Value::Array(args)) => tern_proto::Value::Array(args),
        Some(properties) => tern_proto::Value::Array(vec![properties]),
        None => tern_proto::Value::Array(Vec::new()),
    })
}

/// Query parameters of an inspector request.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: Option<&str>) -> Query {
        Query(raw.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default())
    }

    fn text(&self, name: &str) -> Option<String> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    fn int(&self, name: &str) -> Result<Option<i64>, ClientError> {
        self.text(name)
            .map(|v| v.parse::<i64>().map_err(|_| ClientError::invalid_request(format!("`{name}` must be an integer"))))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inspect(method: Method, path: &str, query: Option<&str>, body: &str) -> Result<InspectRequest, String> {
        match route(&method, path, query, body.as_bytes()) {
            Ok(InspectorCall::Inspect(request)) => Ok(request),
            Ok(_) => Err("not an inspect request".into()),
            Err(e) => Err(e.qualified_code()),
        }
    }

    #[test]
    fn limits_are_clamped_not_refused() {
        let rows = inspect(Method::GET, "/database/rows", Some("table=t&limit=100000&offset=-5"), "").unwrap();
        assert_eq!(rows, InspectRequest::Rows { table: "t".into(), limit: 500, offset: 0 });
        let rows = inspect(Method::GET, "/database/rows", Some("table=t&limit=0"), "").unwrap();
        assert_eq!(rows, InspectRequest::Rows { table: "t".into(), limit: 1, offset: 0 });
        let traces = inspect(Method::GET, "/traces", Some("limit=99999"), "").unwrap();
        assert_eq!(traces, InspectRequest::Traces { start_ms: 0, end_ms: i64::MAX, limit: 1000 });
    }

    #[test]
    fn bad_requests_get_catalogue_codes() {
        assert_eq!(inspect(Method::GET, "/database/rows", None, "").unwrap_err(), "actor.invalid_request");
        assert_eq!(
            inspect(Method::GET, "/database/rows", Some("table=t&limit=x"), "").unwrap_err(),
            "actor.invalid_request"
        );
        assert_eq!(inspect(Method::POST, "/database/execute", None, "{").unwrap_err(), "actor.invalid_request");
        assert_eq!(
            inspect(Method::POST, "/database/execute", None, "{\"sql\":1}").unwrap_err(),
            "actor.invalid_request"
        );
        let both = "{\"sql\":\"x\",\"args\":[],\"properties\":{}}";
        assert_eq!(inspect(Method::POST, "/database/execute", None, both).unwrap_err(), "actor.invalid_request");
        assert_eq!(inspect(Method::DELETE, "/state", None, "").unwrap_err(), "actor.method_not_allowed");
        assert_eq!(inspect(Method::PATCH, "/state", None, "{}").unwrap_err(), "actor.invalid_request");
        assert_eq!(inspect(Method::GET, "/nope", None, "").unwrap_err(), "actor.not_found");
    }

    #[test]
    fn a_refused_method_names_the_allowed_ones() {
        assert_eq!(allowed_methods("/state"), [Method::GET, Method::PATCH]);
        assert_eq!(allowed_methods("/queue"), [Method::GET, Method::POST, Method::DELETE]);
        assert_eq!(allowed_methods("/database/execute"), [Method::POST]);
        assert_eq!(allowed_methods("/action/increment"), [Method::POST]);
        assert_eq!(allowed_methods("/summary/"), [Method::GET]);
    }

    #[test]
    fn execute_takes_positional_or_named_parameters() {
        let positional = inspect(Method::POST, "/database/execute", None, "{\"sql\":\"s\",\"args\":[1]}").unwrap();
        assert!(matches!(positional, InspectRequest::Execute { params: Some(tern_proto::Value::Array(_)), .. }));
        let named =
            inspect(Method::POST, "/database/execute", None, "{\"sql\":\"s\",\"properties\":{\"a\":1}}").unwrap();
        assert!(matches!(named, InspectRequest::Execute { params: Some(tern_proto::Value::Map(_)), .. }));
        assert_eq!(
            action_args(b"{\"properties\":{\"a\":1}}").unwrap(),
            tern_proto::Value::Array(vec![value::from_json(&json!({"a":1}))])
        );
    }
}
