//! One `/connect` WebSocket: the handshake, waiting for `Init`, and framing messages in the client's encoding.
//!
//! json messages travel as text frames, bare and cbor as binary frames. A refused handshake (an HTTP error
//! response instead of `101`) is read like any HTTP error body.

use futures_util::{SinkExt, StreamExt};
use tern_proto::{ClientError, Encoding, ErrorFrame, ToClient, ToServer};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::{AUTHORIZATION, CONTENT_TYPE, SEC_WEBSOCKET_PROTOCOL};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::error::{Error, Result};
use crate::handle::ActorHandle;
use crate::http::parse_error_body;
use crate::urls::websocket_protocols;

/// Close code reported when the socket ended without a close frame (RFC 6455 "abnormal closure").
const ABNORMAL_CLOSURE: u16 = 1006;
/// Close code reported for a close frame without a status (RFC 6455 "no status received").
const NO_STATUS: u16 = 1005;

/// An open `/connect` socket.
pub(crate) struct Socket {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    encoding: Encoding,
}

/// A socket that received its `Init`.
pub(crate) struct Opened {
    pub socket: Socket,
    pub actor_id: String,
    pub connection_id: String,
}

/// What reading the socket produced.
pub(crate) enum Incoming {
    /// A decoded server message.
    Message(ToClient),
    /// The socket closed: the close frame's code and reason (1006 and no reason when it just ended).
    Closed { code: u16, reason: String },
    /// The transport failed, or a message could not be decoded.
    Failed(Error),
}

/// Opens a connection to the handle's actor (resolving its id if needed) and waits for `Init`, within the
/// client's open timeout.
pub(crate) async fn open(handle: ActorHandle) -> Result<Opened> {
    let timeout = handle.client().config().open_timeout;
    match tokio::time::timeout(timeout, open_unbounded(&handle)).await {
        Ok(result) => result,
        Err(_) => {
            Err(Error::Timeout(format!("the connection to actor '{}' did not open within {timeout:?}", handle.name())))
        }
    }
}

async fn open_unbounded(handle: &ActorHandle) -> Result<Opened> {
    let config = handle.client().config();
    let encoding = config.encoding;
    let actor_id = handle.resolve().await?;
    let url = handle.client().endpoint().connect_websocket(&actor_id);
    let mut request = url.as_str().into_client_request()?;
    let headers = request.headers_mut();
    let protocols = websocket_protocols(encoding, handle.params());
    headers.insert(SEC_WEBSOCKET_PROTOCOL, header_value(&protocols)?);
    if let Some(token) = &config.token {
        headers.insert(AUTHORIZATION, header_value(&format!("Bearer {token}"))?);
    }
    let ws = match connect_async(request).await {
        Ok((ws, _response)) => ws,
        Err(tungstenite::Error::Http(response)) => {
            let content_type = response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
            let body = response.body().as_deref().unwrap_or_default();
            return Err(parse_error_body(response.status().as_u16(), content_type, body, encoding));
        }
        Err(e) => return Err(e.into()),
    };
    let mut socket = Socket { ws, encoding };
    loop {
        match socket.recv().await {
            Incoming::Message(ToClient::Init { actor_id, connection_id }) => {
                return Ok(Opened { socket, actor_id, connection_id });
            }
            Incoming::Message(ToClient::Error(frame)) => return Err(Error::Actor(ClientError::from(frame))),
            Incoming::Message(other) => tracing::warn!(?other, "ignoring a message received before Init"),
            Incoming::Closed { code, reason } => return Err(close_error(code, &reason)),
            Incoming::Failed(e) => return Err(e),
        }
    }
}

fn header_value(value: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(value).map_err(|e| Error::Config(format!("cannot send header value {value:?}: {e}")))
}

impl Socket {
    /// Sends a message.
    pub async fn send(&mut self, msg: &ToServer) -> Result<()> {
        let payload = self.encoding.encode_to_server(msg);
        let message = if self.encoding.is_binary() {
            Message::binary(payload)
        } else {
            let text =
                String::from_utf8(payload).map_err(|e| Error::Protocol(format!("json message is not UTF-8: {e}")))?;
            Message::text(text)
        };
        self.ws.send(message).await.map_err(Error::from)
    }

    /// Reads the next message, skipping pings and pongs (answered by the WebSocket layer). Cancel-safe.
    pub async fn recv(&mut self) -> Incoming {
        loop {
            let message = match self.ws.next().await {
                None | Some(Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed)) => {
                    return Incoming::Closed { code: ABNORMAL_CLOSURE, reason: String::new() };
                }
                Some(Err(e)) => return Incoming::Failed(e.into()),
                Some(Ok(message)) => message,
            };
            let payload: &[u8] = match &message {
                Message::Text(text) => text.as_bytes(),
                Message::Binary(bytes) => bytes,
                Message::Close(frame) => {
                    return Incoming::Closed {
                        code: frame.as_ref().map_or(NO_STATUS, |f| f.code.into()),
                        reason: frame.as_ref().map(|f| f.reason.to_string()).unwrap_or_default(),
                    };
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            };
            return match self.encoding.decode_to_client(payload) {
                Ok(msg) => Incoming::Message(msg),
                Err(e) => Incoming::Failed(Error::Protocol(format!("undecodable message from the server: {e}"))),
            };
        }
    }

    /// Closes the socket (normal closure), or completes the closing handshake the server started. Errors are
    /// ignored: the socket is going away either way.
    pub async fn close(&mut self) {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), self.ws.close(None)).await;
    }
}

/// The catalogue error a close reason names: `"{group}.{code}"`, optionally followed by `#{rayId}`.
pub(crate) fn reason_error(reason: &str) -> Option<ClientError> {
    let qualified = reason.split('#').next().unwrap_or_default().trim();
    let (group, code) = qualified.split_once('.')?;
    let valid = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid(group) || !valid(code) {
        return None;
    }
    Some(ClientError::from(ErrorFrame {
        group: group.to_string(),
        code: code.to_string(),
        message: format!("the server closed the connection: {reason}"),
        metadata: None,
        action_id: None,
        actor: None,
    }))
}

/// The error for a socket that closed: the reason's catalogue error, else [`Error::ConnectionLost`].
pub(crate) fn close_error(code: u16, reason: &str) -> Error {
    match reason_error(reason) {
        Some(e) => Error::Actor(e),
        None if reason.is_empty() => {
            Error::ConnectionLost(format!("the server closed the connection (code {code}) without a reason"))
        }
        None => Error::ConnectionLost(format!("the server closed the connection (code {code}): {reason}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_name_catalogue_errors() {
        let e = reason_error("actor.stopping").unwrap();
        assert_eq!((e.qualified_code(), e.status), ("actor.stopping".to_string(), 503));
        let ray = reason_error("guard.actor_ready_timeout#ray-123").unwrap();
        assert_eq!(ray.qualified_code(), "guard.actor_ready_timeout");
        assert!(ray.message.contains("#ray-123"));
        assert_eq!(reason_error("user.forbidden").unwrap().group, "user");
        for not_a_code in ["", "going away", "actor.", ".code", "a b.c"] {
            assert!(reason_error(not_a_code).is_none(), "{not_a_code:?}");
        }
    }

    #[test]
    fn close_errors() {
        assert!(close_error(1011, "actor.internal_error").is_code("actor", "internal_error"));
        assert!(matches!(close_error(1006, ""), Error::ConnectionLost(m) if m.contains("1006")));
        assert!(matches!(close_error(1001, "bye"), Error::ConnectionLost(m) if m.contains("bye")));
    }
}
