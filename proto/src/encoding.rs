//! The three encodings and the per-message encode/decode functions for each side.
//!
//! Server side: decode [`ToServer`], `HttpActionRequest`, `HttpQueueSendRequest`; encode [`ToClient`],
//! `HttpActionResponse`, `HttpQueueSendResponse`, `HttpResponseError`. Client side: the mirror images.
//! JSON payloads are UTF-8 text (WebSocket text frames); bare and cbor are binary.
//!
//! Every decoder turns malformed input (truncated or trailing bytes, wrong types, unknown tags, unsupported
//! versions, action arguments that are not an array) into `actor.invalid_request`.

mod bare_schema;
mod fields;
mod shape;
mod tree;

use crate::Value;
use crate::bare::DecodeError;
use crate::error::ClientError;
use crate::messages::{ErrorFrame, HttpQueueSendRequest, HttpQueueSendResponse, ToClient, ToServer};
use crate::value::{from_cbor_bytes, from_json, revive};
use tree::{Node, render_cbor, render_json};

/// A client protocol encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Json,
    Cbor,
    Bare,
}

/// Why a payload could not be decoded; becomes `actor.invalid_request`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Malformed(pub(crate) String);

impl From<DecodeError> for Malformed {
    fn from(e: DecodeError) -> Self {
        Malformed(format!("malformed bare payload: {e}"))
    }
}

impl From<ClientError> for Malformed {
    fn from(e: ClientError) -> Self {
        Malformed(e.message)
    }
}

impl From<Malformed> for ClientError {
    fn from(m: Malformed) -> Self {
        ClientError::invalid_request(m.0)
    }
}

/// Action arguments are a positional array; a missing value (null) means no arguments.
pub(crate) fn args_array(args: Value) -> Result<Value, Malformed> {
    match args {
        Value::Array(_) => Ok(args),
        Value::Null => Ok(Value::Array(Vec::new())),
        _ => Err(Malformed("action arguments must be an array".into())),
    }
}

impl Encoding {
    /// Parses `json`, `cbor` or `bare` (the `x-rivet-encoding` header and `rivet_encoding.*` subprotocol values).
    pub fn parse(name: &str) -> Option<Encoding> {
        match name {
            "json" => Some(Encoding::Json),
            "cbor" => Some(Encoding::Cbor),
            "bare" => Some(Encoding::Bare),
            _ => None,
        }
    }

    /// The encoding's name as clients spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Json => "json",
            Encoding::Cbor => "cbor",
            Encoding::Bare => "bare",
        }
    }

    /// Whether payloads are binary (bare, cbor) rather than text (json).
    pub fn is_binary(self) -> bool {
        !matches!(self, Encoding::Json)
    }

    /// The HTTP `Content-Type` of bodies in this encoding.
    pub fn content_type(self) -> &'static str {
        if self.is_binary() { "application/octet-stream" } else { "application/json" }
    }

    /// Renders an object-shaped message (json, cbor); `bare` is produced by `bare` instead.
    fn render(self, node: Node<'_>, bare: impl FnOnce() -> Vec<u8>) -> Vec<u8> {
        match self {
            Encoding::Json => render_json(&node),
            Encoding::Cbor => render_cbor(&node),
            Encoding::Bare => bare(),
        }
    }

    /// Decodes a payload: `object` reads the revived json/cbor value, `bare` reads the vbare bytes.
    fn read<T>(
        self,
        payload: &[u8],
        object: impl FnOnce(Value) -> Result<T, Malformed>,
        bare: impl FnOnce(&[u8]) -> Result<T, Malformed>,
    ) -> Result<T, ClientError> {
        let decoded = match self {
            Encoding::Json => {
                let json: serde_json::Value = serde_json::from_slice(payload)
                    .map_err(|e| ClientError::invalid_request(format!("malformed JSON: {e}")))?;
                object(from_json(&json))
            }
            Encoding::Cbor => object(revive(from_cbor_bytes(payload)?)),
            Encoding::Bare => bare(payload),
        };
        decoded.map_err(ClientError::from)
    }

    /// Encodes a server-to-client connection message.
    pub fn encode_to_client(self, msg: &ToClient) -> Vec<u8> {
        self.render(shape::to_client_node(msg), || bare_schema::encode_to_client(msg))
    }

    /// Decodes a client-to-server connection message.
    pub fn decode_to_server(self, payload: &[u8]) -> Result<ToServer, ClientError> {
        self.read(payload, shape::to_server, bare_schema::decode_to_server)
    }

    /// Encodes a client-to-server connection message (client side).
    pub fn encode_to_server(self, msg: &ToServer) -> Vec<u8> {
        self.render(shape::to_server_node(msg), || bare_schema::encode_to_server(msg))
    }

    /// Decodes a server-to-client connection message (client side).
    pub fn decode_to_client(self, payload: &[u8]) -> Result<ToClient, ClientError> {
        self.read(payload, shape::to_client, bare_schema::decode_to_client)
    }

    /// Encodes the body of `POST /action/{name}`: the positional arguments.
    pub fn encode_action_request(self, args: &Value) -> Vec<u8> {
        self.render(shape::action_request_node(args), || bare_schema::encode_action_request(args))
    }

    /// Decodes the body of `POST /action/{name}`; the arguments are always an array.
    pub fn decode_action_request(self, payload: &[u8]) -> Result<Value, ClientError> {
        self.read(payload, shape::action_request, bare_schema::decode_action_request)
    }

    /// Encodes the answer to an HTTP action: its output.
    pub fn encode_action_response(self, output: &Value) -> Vec<u8> {
        self.render(shape::action_response_node(output), || bare_schema::encode_action_response(output))
    }

    /// Decodes the answer to an HTTP action (client side).
    pub fn decode_action_response(self, payload: &[u8]) -> Result<Value, ClientError> {
        self.read(payload, shape::action_response, bare_schema::decode_action_response)
    }

    /// Encodes the body of `POST /queue/{name}` (client side).
    pub fn encode_queue_send_request(self, req: &HttpQueueSendRequest) -> Vec<u8> {
        self.render(shape::queue_send_request_node(req), || bare_schema::encode_queue_send_request(req))
    }

    /// Decodes the body of `POST /queue/{name}`.
    pub fn decode_queue_send_request(self, payload: &[u8]) -> Result<HttpQueueSendRequest, ClientError> {
        self.read(payload, shape::queue_send_request, bare_schema::decode_queue_send_request)
    }

    /// Encodes the answer to a queue send.
    pub fn encode_queue_send_response(self, resp: &HttpQueueSendResponse) -> Vec<u8> {
        self.render(shape::queue_send_response_node(resp), || bare_schema::encode_queue_send_response(resp))
    }

    /// Decodes the answer to a queue send (client side).
    pub fn decode_queue_send_response(self, payload: &[u8]) -> Result<HttpQueueSendResponse, ClientError> {
        self.read(payload, shape::queue_send_response, bare_schema::decode_queue_send_response)
    }

    /// Encodes an HTTP error body (`HttpResponseError`).
    pub fn encode_error(self, frame: &ErrorFrame) -> Vec<u8> {
        self.render(shape::error_node(frame), || bare_schema::encode_error(frame))
    }

    /// Decodes an HTTP error body (client side).
    pub fn decode_error(self, payload: &[u8]) -> Result<ErrorFrame, ClientError> {
        self.read(payload, shape::error, bare_schema::decode_error)
    }
}

#[cfg(test)]
mod tests;
