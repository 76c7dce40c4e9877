//! Reading what a client sends: the encoding it speaks, its connection parameters, size-limited bodies, and
//! axum's extractors with catalogue errors.

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use base64::Engine;
use http_body_util::BodyExt;
use percent_encoding::percent_decode_str;
use tern_proto::{ClientError, Encoding, Value, value};

use crate::error_response::ErrorResponse;

/// An axum extractor (`Query`, `Path`) whose rejection is `actor.invalid_request` with the JSON error body, instead
/// of axum's plain-text answer.
pub(crate) struct Checked<E>(pub E);

impl<E, S> FromRequestParts<S> for Checked<E>
where
    E: FromRequestParts<S>,
    E::Rejection: std::fmt::Display,
    S: Send + Sync,
{
    type Rejection = ErrorResponse;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        E::from_request_parts(parts, state)
            .await
            .map(Checked)
            .map_err(|rejection| ErrorResponse(ClientError::invalid_request(rejection.to_string())))
    }
}

/// The request's encoding from `x-rivet-encoding` (json when absent, as RivetKit's server defaults).
pub(crate) fn http_encoding(headers: &HeaderMap) -> Result<Encoding, ClientError> {
    match headers.get("x-rivet-encoding") {
        None => Ok(Encoding::Json),
        Some(raw) => {
            let name = raw.to_str().unwrap_or_default();
            Encoding::parse(name).ok_or_else(|| {
                ClientError::invalid_request(format!("unsupported encoding '{name}' in x-rivet-encoding"))
            })
        }
    }
}

/// Connection parameters from `x-rivet-conn-params` (JSON, compat tags revived).
pub(crate) fn http_conn_params(headers: &HeaderMap) -> Result<Option<Value>, ClientError> {
    headers.get("x-rivet-conn-params").map(|raw| parse_params_json(raw.as_bytes())).transpose()
}

fn parse_params_json(bytes: &[u8]) -> Result<Value, ClientError> {
    let json: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ClientError::invalid_request(format!("connection parameters are not JSON: {e}")))?;
    Ok(value::from_json(&json))
}

/// What a WebSocket client offered in `Sec-WebSocket-Protocol`: `rivet_encoding.{enc}` and
/// `rivet_conn_params.{percent-encoded JSON}`.
pub(crate) struct SocketProtocols {
    pub encoding: Encoding,
    pub params: Option<Value>,
}

/// Parses the offered subprotocols. A missing encoding is json; an unknown one is an error the caller reports
/// after the upgrade.
pub(crate) fn socket_protocols(headers: &HeaderMap) -> Result<SocketProtocols, ClientError> {
    let mut encoding = Encoding::Json;
    for protocol in offered_protocols(headers) {
        if let Some(name) = protocol.strip_prefix("rivet_encoding.") {
            encoding = Encoding::parse(name).ok_or_else(|| {
                ClientError::new(
                    "actor",
                    "unsupported_websocket_encoding",
                    400,
                    format!("unsupported encoding '{name}'"),
                )
            })?;
        }
    }
    Ok(SocketProtocols { encoding, params: socket_conn_params(headers)? })
}

/// The subprotocols a WebSocket client offered, in order.
fn offered_protocols(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    let offered = headers.get_all("sec-websocket-protocol").iter().filter_map(|v| v.to_str().ok());
    offered.flat_map(|v| v.split(',')).map(str::trim)
}

/// Connection parameters offered as `rivet_conn_params.{percent-encoded JSON}` (raw WebSockets, which ignore the
/// encoding).
pub(crate) fn socket_conn_params(headers: &HeaderMap) -> Result<Option<Value>, ClientError> {
    offered_protocols(headers)
        .find_map(|protocol| protocol.strip_prefix("rivet_conn_params."))
        .map(|encoded| parse_params_json(&percent_decode_str(encoded).collect::<Vec<u8>>()))
        .transpose()
}

/// Bodies over the limit are still read (and discarded) up to this size, so the client receives the error
/// response instead of a connection reset; beyond it the connection is dropped.
const DRAIN_CAP: usize = 32 * 1024 * 1024;

/// Reads a whole request body of at most `limit` bytes; a larger one is `message.incoming_too_long`.
pub(crate) async fn read_body(body: Body, limit: usize) -> Result<bytes::Bytes, ClientError> {
    let mut body = body;
    let mut collected = bytes::BytesMut::new();
    let mut size = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ClientError::invalid_request(format!("cannot read the request body: {e}")))?;
        let Ok(data) = frame.into_data() else { continue };
        size += data.len();
        if size > DRAIN_CAP {
            break;
        }
        if size <= limit {
            collected.extend_from_slice(&data);
        }
    }
    if size > limit {
        return Err(ClientError::incoming_too_long(size, limit));
    }
    Ok(collected.freeze())
}

/// Decodes a create input sent as base64 of its CBOR (`PUT`/`POST /actors`).
pub(crate) fn decode_input(encoded: &str) -> Result<Value, ClientError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| ClientError::invalid_request(format!("input is not base64: {e}")))?;
    Ok(value::revive(value::from_cbor_bytes(&bytes)?))
}
