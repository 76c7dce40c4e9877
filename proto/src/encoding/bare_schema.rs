//! Messages in the `bare` encoding: RivetKit client protocol schemas v1–v4 (`client-protocol/schemas/v*.bare`).
//!
//! Tern writes v4. It reads v1–v4: v1 `Init` carries an extra `connectionToken` (dropped), v1–v3 `Error` and
//! `HttpResponseError` lack the trailing `actor`, and the `HttpQueueSend*` messages exist from v3 on. `Cbor`
//! fields hold the CBOR bytes of a user value: written from [`to_wire_cbor`], read through [`revive`].

use std::ops::RangeInclusive;

use super::{Malformed, args_array};
use crate::Value;
use crate::bare::{self, CURRENT_VERSION, Reader, Writer};
use crate::messages::{ActorSpecifier, ErrorFrame, HttpQueueSendRequest, HttpQueueSendResponse, ToClient, ToServer};
use crate::value::{from_cbor_bytes, revive, to_cbor_bytes, to_wire_cbor};

/// Versions in which a message exists with its current meaning.
const ALL_VERSIONS: RangeInclusive<u16> = 1..=CURRENT_VERSION;
const QUEUE_VERSIONS: RangeInclusive<u16> = 3..=CURRENT_VERSION;
/// First version whose `Error`/`HttpResponseError` end with `actor`.
const ACTOR_SPECIFIER_VERSION: u16 = 4;
/// The only version whose `Init` carries `connectionToken`.
const CONNECTION_TOKEN_VERSION: u16 = 1;

/// Decodes a vbare payload with `read`, after checking its version is in `versions`; the whole body must be used.
fn decode<T>(
    payload: &[u8],
    versions: RangeInclusive<u16>,
    read: impl FnOnce(&mut Reader<'_>, u16) -> Result<T, Malformed>,
) -> Result<T, Malformed> {
    let (version, body) = bare::split_version(payload)?;
    if !versions.contains(&version) {
        return Err(Malformed(format!(
            "unsupported protocol version {version} (supported: {}..={})",
            versions.start(),
            versions.end()
        )));
    }
    let mut reader = Reader::new(body);
    let message = read(&mut reader, version)?;
    reader.finish()?;
    Ok(message)
}

fn write_user(w: &mut Writer, value: &Value) {
    w.data(&to_cbor_bytes(&to_wire_cbor(value)));
}

fn read_user(r: &mut Reader<'_>) -> Result<Value, Malformed> {
    Ok(revive(from_cbor_bytes(r.data()?)?))
}

fn unknown_tag(what: &str, tag: u64) -> Malformed {
    Malformed(format!("unknown {what} tag {tag}"))
}

/// Encodes a `ToServer` (v4).
pub(super) fn encode_to_server(msg: &ToServer) -> Vec<u8> {
    let mut w = Writer::versioned(CURRENT_VERSION);
    match msg {
        ToServer::ActionRequest { id, name, args } => {
            w.uint(0);
            w.uint(*id);
            w.str(name);
            write_user(&mut w, args);
        }
        ToServer::SubscriptionRequest { event_name, subscribe } => {
            w.uint(1);
            w.str(event_name);
            w.bool(*subscribe);
        }
    }
    w.into_bytes()
}

/// Decodes a `ToServer` (v1–v4); action arguments must be an array.
pub(super) fn decode_to_server(payload: &[u8]) -> Result<ToServer, Malformed> {
    decode(payload, ALL_VERSIONS, |r, _| match r.uint()? {
        0 => {
            Ok(ToServer::ActionRequest { id: r.uint()?, name: r.str()?.to_string(), args: args_array(read_user(r)?)? })
        }
        1 => Ok(ToServer::SubscriptionRequest { event_name: r.str()?.to_string(), subscribe: r.bool()? }),
        tag => Err(unknown_tag("ToServer", tag)),
    })
}

/// Encodes a `ToClient` (v4).
pub(super) fn encode_to_client(msg: &ToClient) -> Vec<u8> {
    let mut w = Writer::versioned(CURRENT_VERSION);
    match msg {
        ToClient::Init { actor_id, connection_id } => {
            w.uint(0);
            w.str(actor_id);
            w.str(connection_id);
        }
        ToClient::Error(frame) => {
            w.uint(1);
            write_error_head(&mut w, frame);
            w.optional(frame.action_id, Writer::uint);
            w.optional(frame.actor.as_ref(), write_actor);
        }
        ToClient::ActionResponse { id, output } => {
            w.uint(2);
            w.uint(*id);
            write_user(&mut w, output);
        }
        ToClient::Event { name, args } => {
            w.uint(3);
            w.str(name);
            write_user(&mut w, args);
        }
    }
    w.into_bytes()
}

/// Decodes a `ToClient` (v1–v4).
pub(super) fn decode_to_client(payload: &[u8]) -> Result<ToClient, Malformed> {
    decode(payload, ALL_VERSIONS, |r, version| match r.uint()? {
        0 => {
            let (actor_id, connection_id) = (r.str()?.to_string(), r.str()?.to_string());
            if version == CONNECTION_TOKEN_VERSION {
                r.str()?;
            }
            Ok(ToClient::Init { actor_id, connection_id })
        }
        1 => {
            let (group, code, message, metadata) = read_error_head(r)?;
            let action_id = r.optional(Reader::uint)?;
            let actor = read_actor(r, version)?;
            Ok(ToClient::Error(ErrorFrame { group, code, message, metadata, action_id, actor }))
        }
        2 => Ok(ToClient::ActionResponse { id: r.uint()?, output: read_user(r)? }),
        3 => Ok(ToClient::Event { name: r.str()?.to_string(), args: read_user(r)? }),
        tag => Err(unknown_tag("ToClient", tag)),
    })
}

fn write_error_head(w: &mut Writer, frame: &ErrorFrame) {
    w.str(&frame.group);
    w.str(&frame.code);
    w.str(&frame.message);
    w.optional(frame.metadata.as_ref(), write_user);
}

type ErrorHead = (String, String, String, Option<Value>);

fn read_error_head(r: &mut Reader<'_>) -> Result<ErrorHead, Malformed> {
    let (group, code, message) = (r.str()?.to_string(), r.str()?.to_string(), r.str()?.to_string());
    let metadata = if r.bool()? { Some(read_user(r)?) } else { None };
    Ok((group, code, message, metadata))
}

fn write_actor(w: &mut Writer, actor: &ActorSpecifier) {
    w.str(&actor.actor_id);
    w.uint(actor.generation);
    w.optional(actor.key.as_deref(), Writer::str);
}

/// Reads the trailing `actor: optional<ActorSpecifier>` of v4 errors; earlier versions have none.
fn read_actor(r: &mut Reader<'_>, version: u16) -> Result<Option<ActorSpecifier>, Malformed> {
    if version < ACTOR_SPECIFIER_VERSION {
        return Ok(None);
    }
    let actor = r.optional(|r| {
        Ok(ActorSpecifier {
            actor_id: r.str()?.to_string(),
            generation: r.uint()?,
            key: r.optional(Reader::str)?.map(str::to_string),
        })
    })?;
    Ok(actor)
}

/// Encodes an `HttpActionRequest` (v4).
pub(super) fn encode_action_request(args: &Value) -> Vec<u8> {
    let mut w = Writer::versioned(CURRENT_VERSION);
    write_user(&mut w, args);
    w.into_bytes()
}

/// Decodes an `HttpActionRequest` (v1–v4); the arguments must be an array.
pub(super) fn decode_action_request(payload: &[u8]) -> Result<Value, Malformed> {
    decode(payload, ALL_VERSIONS, |r, _| args_array(read_user(r)?))
}

/// Encodes an `HttpActionResponse` (v4).
pub(super) fn encode_action_response(output: &Value) -> Vec<u8> {
    let mut w = Writer::versioned(CURRENT_VERSION);
    write_user(&mut w, output);
    w.into_bytes()
}

/// Decodes an `HttpActionResponse` (v1–v4).
pub(super) fn decode_action_response(payload: &[u8]) -> Result<Value, Malformed> {
    decode(payload, ALL_VERSIONS, |r, _| read_user(r))
}

/// Encodes an `HttpQueueSendRequest` (v4).
pub(super) fn encode_queue_send_request(req: &HttpQueueSendRequest) -> Vec<u8> {
    let mut w = Writer::versioned(CURRENT_VERSION);
    write_user(&mut w, &req.body);
    w.optional(req.name.as_deref(), Writer::str);
    w.optional(req.wait, Writer::bool);
    w.optional(req.timeout, Writer::u64);
    w.into_bytes()
}

/// Decodes an `HttpQueueSendRequest` (v3–v4).
pub(super) fn decode_queue_send_request(payload: &[u8]) -> Result<HttpQueueSendRequest, Malformed> {
    decode(payload, QUEUE_VERSIONS, |r, _| {
        Ok(HttpQueueSendRequest {
            body: read_user(r)?,
            name: r.optional(Reader::str)?.map(str::to_string),
            wait: r.optional(Reader::bool)?,
            timeout: r.optional(Reader::u64)?,
        })
    })
}

/// Encodes an `HttpQueueSendResponse` (v4).
pub(super) fn encode_queue_send_response(resp: &HttpQueueSendResponse) -> Vec<u8> {
    let mut w = Writer::versioned(CURRENT_VERSION);
    w.str(&resp.status);
    w.optional(resp.response.as_ref(), write_user);
    w.into_bytes()
}

/// Decodes an `HttpQueueSendResponse` (v3–v4).
pub(super) fn decode_queue_send_response(payload: &[u8]) -> Result<HttpQueueSendResponse, Malformed> {
    decode(payload, QUEUE_VERSIONS, |r, _| {
        let status = r.str()?.to_string();
        let response = if r.bool()? { Some(read_user(r)?) } else { None };
        Ok(HttpQueueSendResponse { status, response })
    })
}

/// Encodes an `HttpResponseError` (v4); the frame's action id is not part of it.
pub(super) fn encode_error(frame: &ErrorFrame) -> Vec<u8> {
    let mut w = Writer::versioned(CURRENT_VERSION);
    write_error_head(&mut w, frame);
    w.optional(frame.actor.as_ref(), write_actor);
    w.into_bytes()
}

/// Decodes an `HttpResponseError` (v1–v4).
pub(super) fn decode_error(payload: &[u8]) -> Result<ErrorFrame, Malformed> {
    decode(payload, ALL_VERSIONS, |r, version| {
        let (group, code, message, metadata) = read_error_head(r)?;
        let actor = read_actor(r, version)?;
        Ok(ErrorFrame { group, code, message, metadata, action_id: None, actor })
    })
}
