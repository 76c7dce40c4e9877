//! `/connect`: one client connection speaking RivetKit's connection protocol over a WebSocket.
//!
//! The upgrade is always accepted (echoing the `rivet` subprotocol). Once open, per-action errors are `Error`
//! frames with the action's id and keep the socket open. Every connection-level error is an `Error` frame without
//! an action id followed by a close with code 1011 and reason `group.code`: failures before the connection is
//! open (an unknown actor, a rejected connect hook), an oversize incoming message (`message.incoming_too_long`), a
//! malformed one (`actor.invalid_request`), an oversize outgoing one (`message.outgoing_too_long`), and the actor
//! ending the connection (sleep, destroy; a RivetKit client that was connected reconnects on its own). A client
//! that falls behind the actor's messages is dropped with `actor.overloaded` at once, even while the gateway waits
//! to write to it (see [`crate::outbound`]).
//!
//! A client that breaks the WebSocket protocol itself gets the close RFC 6455 prescribes, without an `Error`
//! frame (see [`violation_close`]); raw WebSockets share that rule.

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use tern_proto::error::close_reason;
use tern_proto::{ClientError, Encoding, ErrorFrame, ToClient, ToServer};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};

use crate::AppState;
use crate::backend::{ConnInput, ConnOutput, ConnectionHandle};
use crate::request::{SocketProtocols, socket_protocols};
use crate::target::{self, Target};

/// Close code for errors (RFC 6455 "internal error"; RivetKit uses it for every error close).
const CLOSE_ERROR: u16 = 1011;
/// Close code for an encoding the server does not speak ("unsupported data").
const CLOSE_UNSUPPORTED: u16 = 1003;
/// Close code for a frame that breaks the WebSocket protocol (RFC 6455 "protocol error").
const CLOSE_PROTOCOL_ERROR: u16 = 1002;
/// Close code for a text message that is not UTF-8 (RFC 6455 "invalid frame payload data").
const CLOSE_INVALID_PAYLOAD: u16 = 1007;
/// Close code for a frame or message over [`FRAME_HARD_CAP`] (RFC 6455 "message too big").
const CLOSE_TOO_BIG: u16 = 1009;
/// A hard cap on frames the WebSocket layer buffers before Tern's own (smaller) size check answers.
pub(crate) const FRAME_HARD_CAP: usize = 32 * 1024 * 1024;
/// The read buffer and the write batching threshold of each client WebSocket. The WebSocket library's default is
/// 128 KiB each, and the read buffer is allocated when the socket opens (1.2 GiB for 10,000 sockets); with 8 KiB
/// a socket costs the node about 23 KiB in all (`tern-bench --only soak`). Larger messages still arrive whole
/// (the buffer grows for them); small ones, the usual traffic, fit.
pub(crate) const SOCKET_BUFFER: usize = 8 * 1024;

/// Accepts the upgrade and serves the connection to `target` (or reports why it cannot be resolved).
pub(crate) fn upgrade(
    app: AppState,
    upgrade: WebSocketUpgrade,
    headers: &HeaderMap,
    target: Result<Target, ClientError>,
) -> Response {
    let protocols = socket_protocols(headers);
    let upgrade = upgrade.read_buffer_size(SOCKET_BUFFER).write_buffer_size(SOCKET_BUFFER);
    upgrade.protocols(["rivet"]).max_message_size(FRAME_HARD_CAP).on_upgrade(move |socket| async move {
        let mut socket = socket;
        let protocols = match protocols {
            Ok(protocols) => protocols,
            Err(err) => return close(&mut socket, CLOSE_UNSUPPORTED, &err).await,
        };
        Session { app, socket, encoding: protocols.encoding }.run(target, protocols).await;
    })
}

/// The close a failed read from a client calls for: a malformed frame is 1002 and an invalid UTF-8 text message
/// 1007, both `actor.invalid_request`; a frame or message over [`FRAME_HARD_CAP`] is 1009,
/// `message.incoming_too_long`. `None` when the client just went away, leaving nothing to close.
pub(crate) fn violation_close(error: axum::Error) -> Option<(u16, ClientError)> {
    let error = *error.into_inner().downcast::<WsError>().ok()?;
    match error {
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        WsError::Protocol(violation) => {
            Some((CLOSE_PROTOCOL_ERROR, ClientError::invalid_request(format!("WebSocket protocol error: {violation}"))))
        }
        WsError::Utf8(_) => {
            Some((CLOSE_INVALID_PAYLOAD, ClientError::invalid_request("A text message is not valid UTF-8")))
        }
        WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
            Some((CLOSE_TOO_BIG, ClientError::incoming_too_long(size, max_size)))
        }
        _ => None,
    }
}

async fn close(socket: &mut WebSocket, code: u16, err: &ClientError) {
    let frame = CloseFrame { code, reason: close_reason(err).into() };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

struct Session {
    app: AppState,
    socket: WebSocket,
    encoding: Encoding,
}

/// Why the session loop ended.
enum End {
    /// The client closed or went away.
    ClientGone,
    /// Close the socket with this error.
    Error(ClientError),
    /// The client broke the WebSocket protocol: close with this code and error, and nothing more.
    Violation(u16, ClientError),
}

impl Session {
    async fn run(mut self, target: Result<Target, ClientError>, protocols: SocketProtocols) {
        let opened = async {
            let actor_id = target::resolve(self.app.backend.as_ref(), target?).await?;
            self.app.backend.connect(&actor_id, protocols.params).await
        }
        .await;
        let handle = match opened {
            Ok(handle) => handle,
            Err(err) => return self.fail(err).await,
        };
        let init = ToClient::Init { actor_id: handle.actor_id.clone(), connection_id: handle.connection_id.clone() };
        let end = match self.send(&init).await {
            Ok(()) => self.serve(handle).await,
            Err(end) => end,
        };
        match end {
            End::ClientGone => {}
            End::Error(err) => self.fail(err).await,
            End::Violation(code, err) => close(&mut self.socket, code, &err).await,
        }
    }

    /// Sends a connection-level error frame and closes.
    async fn fail(&mut self, err: ClientError) {
        let _ = self.send(&ToClient::Error(ErrorFrame::from(&err))).await;
        close(&mut self.socket, CLOSE_ERROR, &err).await;
    }

    /// Relays messages both ways until either side ends. Dropping the handle's inbound sender tells the actor
    /// the client is gone.
    async fn serve(&mut self, handle: ConnectionHandle) -> End {
        let ConnectionHandle { inbound, mut outbound, .. } = handle;
        loop {
            tokio::select! {
                incoming = self.socket.recv() => {
                    let payload = match incoming {
                        None | Some(Ok(Message::Close(_))) => return End::ClientGone,
                        Some(Err(error)) => {
                            return violation_close(error)
                                .map_or(End::ClientGone, |(code, err)| End::Violation(code, err));
                        }
                        Some(Ok(Message::Text(text))) => text.as_bytes().to_vec(),
                        Some(Ok(Message::Binary(bytes))) => bytes.to_vec(),
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    };
                    let input = match self.decode(&payload) {
                        Ok(input) => input,
                        Err(err) => return End::Error(err),
                    };
                    if inbound.send(input).await.is_err() {
                        return End::Error(ClientError::stopping());
                    }
                }
                output = outbound.recv() => {
                    let message = match output {
                        None | Some(ConnOutput::Moved) => return End::Error(ClientError::stopping()),
                        Some(ConnOutput::Close(reason)) => return End::Error(reason),
                        Some(ConnOutput::Event { name, args }) => ToClient::Event { name, args },
                        Some(ConnOutput::ActionResponse { id, result: Ok(output) }) => ToClient::ActionResponse { id, output },
                        Some(ConnOutput::ActionResponse { id, result: Err(err) }) => {
                            let mut frame = ErrorFrame::from(&err);
                            frame.action_id = Some(id);
                            ToClient::Error(frame)
                        }
                    };
                    // `None`: the actor dropped a client that is not taking its messages, which the next `recv`
                    // reports.
                    if let Some(Err(end)) = outbound.unless_closed_now(self.send(&message)).await {
                        return end;
                    }
                }
            }
        }
    }

    fn decode(&self, payload: &[u8]) -> Result<ConnInput, ClientError> {
        let limit = self.app.config.max_incoming_message_size;
        if payload.len() > limit {
            return Err(ClientError::incoming_too_long(payload.len(), limit));
        }
        Ok(match self.encoding.decode_to_server(payload)? {
            ToServer::ActionRequest { id, name, args } => ConnInput::Action { id, name, args },
            ToServer::SubscriptionRequest { event_name, subscribe } => {
                ConnInput::Subscribe { event: event_name, subscribe }
            }
        })
    }

    async fn send(&mut self, message: &ToClient) -> Result<(), End> {
        let bytes = self.encoding.encode_to_client(message);
        let limit = self.app.config.max_outgoing_message_size;
        if bytes.len() > limit {
            return Err(End::Error(ClientError::outgoing_too_long(bytes.len(), limit)));
        }
        let frame = if self.encoding.is_binary() {
            Message::Binary(bytes.into())
        } else {
            // JSON encoding always produces UTF-8.
            Message::Text(String::from_utf8(bytes).map_err(|_| End::Error(ClientError::internal()))?.into())
        };
        self.socket.send(frame).await.map_err(|_| End::ClientGone)
    }
}
