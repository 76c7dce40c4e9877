//! `/gateway/{target}/...`: resolves the target to an actor and serves the actor's own routes.
//!
//! Actor routes (after the `/gateway/{target}` prefix): `POST /action/{name}` (a stateless action), `GET
//! /connect` (a WebSocket speaking the connection protocol), `* /request/...` and `GET /websocket/...` (the
//! actor's raw HTTP and WebSocket handlers, see [`crate::raw`]), `GET /health`, `GET /metadata`, and the inspector
//! under `/inspector/...`. Any other path is
//! `actor.not_found` (404), a known path with another method `actor.method_not_allowed` (405). Responses carry
//! `x-rivet-actor`.

use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;
use tern_proto::ClientError;

use crate::AppState;
use crate::connection;
use crate::error_response::ErrorResponse;
use crate::inspector_routes;
use crate::raw;
use crate::request::{http_conn_params, http_encoding, read_body};
use crate::target;

/// An actor route, parsed from the path after the gateway prefix.
enum ActorRoute {
    Action(String),
    /// `POST /queue/{name}`: a message for the actor's queue.
    Queue(String),
    /// `/inspector/...` with the rest of the path; its methods vary per route.
    Inspector(String),
    Connect,
    /// `/request/...`, any method; the path the handler sees.
    Request(String),
    /// `/websocket/...`, a WebSocket upgrade; the path the handler sees.
    WebSocket(String),
    Health,
    Metadata,
}

impl ActorRoute {
    fn parse(path: &str) -> Option<(ActorRoute, Option<Method>)> {
        if let Some(rest) = path.strip_prefix("/inspector") {
            return (rest.is_empty() || rest.starts_with('/')).then(|| (ActorRoute::Inspector(rest.to_string()), None));
        }
        if let Some(handler_path) = raw::handler_path(path, "/request") {
            return Some((ActorRoute::Request(handler_path), None));
        }
        if let Some(handler_path) = raw::handler_path(path, "/websocket") {
            return Some((ActorRoute::WebSocket(handler_path), Some(Method::GET)));
        }
        let route = match path.trim_end_matches('/') {
            "/connect" => (ActorRoute::Connect, Some(Method::GET)),
            "/health" => (ActorRoute::Health, Some(Method::GET)),
            "/metadata" => (ActorRoute::Metadata, Some(Method::GET)),
            other => {
                let segment = |prefix: &str| {
                    let name = other.strip_prefix(prefix).filter(|n| !n.is_empty() && !n.contains('/'))?;
                    Some(percent_decode_str(name).decode_utf8_lossy().into_owned())
                };
                if let Some(queue) = segment("/queue/") {
                    (ActorRoute::Queue(queue), Some(Method::POST))
                } else {
                    (ActorRoute::Action(segment("/action/")?), Some(Method::POST))
                }
            }
        };
        Some(route)
    }
}

/// Whether `path` (a whole request path) is an inspector route: `/gateway/{target}/inspector[/...]`.
pub(crate) fn is_inspector(path: &str) -> bool {
    path.starts_with("/gateway/")
        && matches!(ActorRoute::parse(split_path(path).1), Some((ActorRoute::Inspector(_), _)))
}

/// Splits `/gateway/{segment}{rest}` into the percent-decoded segment and the rest of the path.
fn split_path(path: &str) -> (String, &str) {
    let after = path.strip_prefix("/gateway/").unwrap_or("");
    let (segment, rest) = after.find('/').map_or((after, ""), |i| after.split_at(i));
    (percent_decode_str(segment).decode_utf8_lossy().into_owned(), rest)
}

/// Serves every request under `/gateway/`.
pub(crate) async fn handle(State(app): State<AppState>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let (segment, rest) = split_path(parts.uri.path());
    let rest = rest.to_string();
    let Some((route, method)) = ActorRoute::parse(&rest) else {
        return ErrorResponse(ClientError::actor_not_found(format!("no actor route {rest}"))).into_response();
    };
    if let Some(method) = method
        && parts.method != method
    {
        let refused = ErrorResponse(ClientError::method_not_allowed(parts.method.as_str(), &rest));
        return with_allow(refused.into_response(), &[method]);
    }
    let parsed = target::parse(&segment, parts.uri.query());
    if let ActorRoute::Connect | ActorRoute::WebSocket(_) = route {
        // WebSocket errors, resolution errors included, are reported on the accepted socket.
        let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
            Ok(upgrade) => upgrade,
            Err(rejection) => {
                let err = ClientError::invalid_request(format!(
                    "{rest} needs a WebSocket upgrade: {}",
                    rejection.body_text()
                ));
                return ErrorResponse(err).into_response();
            }
        };
        return match route {
            ActorRoute::WebSocket(path) => raw::upgrade(app, upgrade, &parts.headers, path, parsed),
            _ => connection::upgrade(app, upgrade, &parts.headers, parsed.map(|(t, _)| t)),
        };
    }
    let inspector_path = match &route {
        ActorRoute::Inspector(path) => Some(path.clone()),
        _ => None,
    };
    let result = async {
        let (target, query) = parsed?;
        let actor_id = target::resolve(app.backend.as_ref(), target).await?;
        let response = match route {
            ActorRoute::Action(name) => action(&app, &actor_id, &name, &parts.headers, body).await?,
            ActorRoute::Queue(name) => queue_send(&app, &actor_id, &name, &parts.headers, body).await?,
            ActorRoute::Inspector(path) => {
                let query = parts.uri.query();
                inspector_routes::handle(&app, &actor_id, &parts.method, &path, query, &parts.headers, body).await?
            }
            ActorRoute::Request(path) => raw::request(&app, &actor_id, &parts, &path, query.as_deref(), body).await?,
            ActorRoute::Health => "ok".into_response(),
            ActorRoute::Metadata => axum::Json(
                serde_json::json!({"runtime": "tern", "version": env!("CARGO_PKG_VERSION"), "actorId": actor_id}),
            )
            .into_response(),
            ActorRoute::Connect | ActorRoute::WebSocket(_) => unreachable!("handled above"),
        };
        Ok::<_, ClientError>((actor_id, response))
    }
    .await;
    match result {
        Ok((actor_id, mut response)) => {
            if let Ok(value) = HeaderValue::from_str(&actor_id) {
                response.headers_mut().insert("x-rivet-actor", value);
            }
            response
        }
        Err(err) => {
            let refused_method = err.is(&ClientError::method_not_allowed("", ""));
            let response = ErrorResponse(err).into_response();
            match inspector_path {
                Some(path) if refused_method => with_allow(response, &inspector_routes::allowed_methods(&path)),
                _ => response,
            }
        }
    }
}

/// A 405 with the `Allow` header RFC 9110 asks for, listing `methods`.
fn with_allow(mut response: Response, methods: &[Method]) -> Response {
    let list = methods.iter().map(Method::as_str).collect::<Vec<_>>().join(",");
    if let Ok(value) = HeaderValue::from_str(&list) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

/// `POST /queue/{name}`: stores a message for the actor's queue; with `wait`, answers with the completion's
/// response (`completed`) or `timedOut`.
async fn queue_send(
    app: &AppState,
    actor_id: &str,
    name: &str,
    headers: &axum::http::HeaderMap,
    body: Body,
) -> Result<Response, ClientError> {
    let encoding = http_encoding(headers)?;
    let bytes = read_body(body, app.config.max_incoming_message_size).await?;
    let request = encoding.decode_queue_send_request(&bytes)?;
    let wait = request
        .wait
        .unwrap_or(false)
        .then(|| std::time::Duration::from_millis(request.timeout.unwrap_or(DEFAULT_QUEUE_WAIT_MS)));
    let answer = app.backend.queue_send(actor_id, name, request.body, wait).await?;
    let encoded = encoding.encode_queue_send_response(&answer);
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, encoding.content_type())], encoded).into_response())
}

/// How long a waiting queue send waits for its completion when the client gives no timeout.
const DEFAULT_QUEUE_WAIT_MS: u64 = 60_000;

/// `POST /action/{name}`: decodes the arguments, runs the action, encodes its output.
async fn action(
    app: &AppState,
    actor_id: &str,
    name: &str,
    headers: &axum::http::HeaderMap,
    body: Body,
) -> Result<Response, ClientError> {
    let encoding = http_encoding(headers)?;
    let params = http_conn_params(headers)?;
    let limit = app.config.max_incoming_message_size;
    let bytes = read_body(body, limit).await?;
    let args = encoding.decode_action_request(&bytes)?;
    let output = app.backend.call_action(actor_id, name, args, params).await?;
    let encoded = encoding.encode_action_response(&output);
    if encoded.len() > app.config.max_outgoing_message_size {
        return Err(ClientError::outgoing_too_long(encoded.len(), app.config.max_outgoing_message_size));
    }
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, encoding.content_type())], encoded).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_target_and_route() {
        assert_eq!(split_path("/gateway/abc%40tok/action/inc"), ("abc@tok".to_string(), "/action/inc"));
        assert_eq!(split_path("/gateway/counter"), ("counter".to_string(), ""));
        assert!(
            matches!(ActorRoute::parse("/action/a%20b"), Some((ActorRoute::Action(n), Some(Method::POST))) if n == "a b")
        );
        assert!(matches!(ActorRoute::parse("/connect"), Some((ActorRoute::Connect, Some(Method::GET)))));
        assert!(
            matches!(ActorRoute::parse("/inspector/state"), Some((ActorRoute::Inspector(p), None)) if p == "/state")
        );
        assert!(ActorRoute::parse("/inspectors").is_none());
        assert!(matches!(ActorRoute::parse("/request"), Some((ActorRoute::Request(p), None)) if p == "/"));
        assert!(matches!(ActorRoute::parse("/request/a/"), Some((ActorRoute::Request(p), None)) if p == "/a/"));
        assert!(
            matches!(ActorRoute::parse("/websocket/"), Some((ActorRoute::WebSocket(p), Some(Method::GET))) if p == "/")
        );
        assert!(ActorRoute::parse("/requests").is_none());
        assert!(ActorRoute::parse("/action/").is_none());
        assert!(ActorRoute::parse("/action/a/b").is_none());
        assert!(ActorRoute::parse("/nope").is_none());
    }
}
