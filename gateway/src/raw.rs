//! Raw actor routes: `/request/...` (any method) for the actor's HTTP handler, and `/websocket/...` (a WebSocket
//! upgrade) for its WebSocket handler.
//!
//! The handler sees the path after the `/request` or `/websocket` prefix (`/` when nothing follows) and the query
//! without the gateway's `rvt-*` parameters. Connection parameters come from `x-rivet-conn-params` (HTTP) or from
//! the `rivet_conn_params.*` subprotocol (WebSocket; the `rivet_encoding.*` subprotocol the JS client also offers is
//! ignored, since a raw socket carries the application's own frames). Request bodies and incoming messages are
//! limited to `max_incoming_message_size` (`message.incoming_too_long`), response bodies and outgoing messages to
//! `max_outgoing_message_size` (`message.outgoing_too_long`).
//!
//! The WebSocket upgrade is always accepted (echoing the `rivet` subprotocol, as `/connect` does); a failure to
//! open (unknown actor, no handler, a rejected connect hook) closes it with code 1011 and reason `group.code`, as
//! RivetKit does. So do the size limits, the actor stopping (`actor.stopping`, retryable), and a client falling
//! behind the actor's messages (`actor.overloaded`, at once, even while the gateway waits to write to it; see
//! [`crate::outbound`]). A client that breaks the WebSocket protocol gets the close RFC 6455 prescribes
//! (1002, 1007 or 1009; see [`crate::connection::violation_close`]).

use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Request, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::SinkExt;
use tern_proto::ClientError;

use crate::AppState;
use crate::backend::{RawSocketHandle, SocketMessage, SocketOutput};
use crate::connection::{FRAME_HARD_CAP, SOCKET_BUFFER, violation_close};
use crate::request::{http_conn_params, read_body, socket_conn_params};
use crate::target::{self, Target};

/// The path a raw handler sees for `path` under `prefix` (`/request` or `/websocket`): what follows the prefix,
/// or `/` when nothing does. `None` when `path` is not under the prefix (e.g. `/requests`).
pub(crate) fn handler_path(path: &str, prefix: &str) -> Option<String> {
    match path.strip_prefix(prefix)? {
        "" => Some("/".to_string()),
        rest if rest.starts_with('/') => Some(rest.to_string()),
        _ => None,
    }
}

/// The handler's URI: its path plus the query that passes through the gateway.
fn handler_uri(path: &str, query: Option<&str>) -> Result<Uri, ClientError> {
    let uri = match query {
        Some(query) => format!("{path}?{query}"),
        None => path.to_string(),
    };
    uri.parse().map_err(|e| ClientError::invalid_request(format!("invalid request path {uri}: {e}")))
}

/// `* /request/...`: hands the whole request to the actor's HTTP handler and returns its response.
pub(crate) async fn request(
    app: &AppState,
    actor_id: &str,
    parts: &Parts,
    path: &str,
    query: Option<&str>,
    body: Body,
) -> Result<Response, ClientError> {
    let params = http_conn_params(&parts.headers)?;
    let body = read_body(body, app.config.max_incoming_message_size).await?;
    let mut request = Request::new(body);
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = handler_uri(path, query)?;
    *request.headers_mut() = parts.headers.clone();
    let response = app.backend.raw_request(actor_id, request, params).await?;
    let limit = app.config.max_outgoing_message_size;
    if response.body().len() > limit {
        return Err(ClientError::outgoing_too_long(response.body().len(), limit));
    }
    Ok(response.map(Body::from).into_response())
}

/// `GET /websocket/...`: accepts the upgrade and relays the socket to the actor's WebSocket handler (or closes it
/// with the reason it cannot be opened).
pub(crate) fn upgrade(
    app: AppState,
    upgrade: WebSocketUpgrade,
    headers: &HeaderMap,
    path: String,
    parsed: Result<(Target, Option<String>), ClientError>,
) -> Response {
    let headers = headers.clone();
    let upgrade = upgrade.read_buffer_size(SOCKET_BUFFER).write_buffer_size(SOCKET_BUFFER);
    upgrade.protocols(["rivet"]).max_message_size(FRAME_HARD_CAP).on_upgrade(move |mut socket| async move {
        let end = match open(&app, headers, &path, parsed).await {
            Ok(handle) => relay(&app, &mut socket, handle).await,
            Err(err) => Some(SocketOutput::error(&err)),
        };
        match end {
            Some(SocketOutput::Close { code, reason }) => {
                let _ = socket.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
            }
            // The client closed: complete the closing handshake (its close frame is answered on flush).
            _ => {
                let _ = SinkExt::close(&mut socket).await;
            }
        }
    })
}

async fn open(
    app: &AppState,
    headers: HeaderMap,
    path: &str,
    parsed: Result<(Target, Option<String>), ClientError>,
) -> Result<RawSocketHandle, ClientError> {
    let (target, query) = parsed?;
    let params = socket_conn_params(&headers)?;
    let mut request = Request::new(());
    *request.uri_mut() = handler_uri(path, query.as_deref())?;
    *request.headers_mut() = headers;
    let actor_id = target::resolve(app.backend.as_ref(), target).await?;
    app.backend.raw_websocket(&actor_id, request, params).await
}

/// Relays messages both ways until either side ends; returns the close to send, if any. Returning drops the
/// handle's inbound sender, which tells the actor the client is gone.
async fn relay(app: &AppState, socket: &mut WebSocket, handle: RawSocketHandle) -> Option<SocketOutput> {
    let RawSocketHandle { inbound, mut outbound, .. } = handle;
    let max_incoming = app.config.max_incoming_message_size;
    let max_outgoing = app.config.max_outgoing_message_size;
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let message = match incoming {
                    None | Some(Ok(Message::Close(_))) => return None,
                    Some(Err(error)) => {
                        return violation_close(error).map(|(code, err)| SocketOutput::Close {
                            code,
                            reason: tern_proto::error::close_reason(&err),
                        });
                    }
                    Some(Ok(Message::Text(text))) => SocketMessage::Text(text.as_str().to_string()),
                    Some(Ok(Message::Binary(bytes))) => SocketMessage::Binary(bytes),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                };
                if message.len() > max_incoming {
                    return Some(SocketOutput::error(&ClientError::incoming_too_long(message.len(), max_incoming)));
                }
                if inbound.send(message).await.is_err() {
                    return Some(SocketOutput::error(&ClientError::stopping()));
                }
            }
            output = outbound.recv() => {
                let message = match output {
                    None | Some(SocketOutput::Moved { .. }) => {
                        return Some(SocketOutput::error(&ClientError::stopping()));
                    }
                    Some(close @ SocketOutput::Close { .. }) => return Some(close),
                    Some(SocketOutput::Message(message)) => message,
                };
                if message.len() > max_outgoing {
                    return Some(SocketOutput::error(&ClientError::outgoing_too_long(message.len(), max_outgoing)));
                }
                let frame = match message {
                    SocketMessage::Text(text) => Message::Text(text.into()),
                    SocketMessage::Binary(bytes) => Message::Binary(bytes),
                };
                // `None`: the actor dropped a client that is not taking its messages, which the next `recv` reports.
                if let Some(Err(_)) = outbound.unless_closed_now(socket.send(frame)).await {
                    return None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_paths_strip_the_prefix() {
        assert_eq!(handler_path("/request", "/request").as_deref(), Some("/"));
        assert_eq!(handler_path("/request/", "/request").as_deref(), Some("/"));
        assert_eq!(handler_path("/request/a/b", "/request").as_deref(), Some("/a/b"));
        assert_eq!(handler_path("/requests", "/request"), None);
        assert_eq!(handler_path("/websocket/x", "/websocket").as_deref(), Some("/x"));
        assert_eq!(handler_uri("/a", Some("x=1")).unwrap(), "/a?x=1");
        assert_eq!(handler_uri("/a", None).unwrap(), "/a");
    }
}
