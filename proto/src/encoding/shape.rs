//! Messages as the objects of RivetKit's Zod schemas (`client-protocol-zod.ts`), shared by `json` and `cbor`.
//!
//! Unions are `{"tag": "<Variant>", "val": {...}}` under a `body` key. Keys are written in schema order. Optional
//! fields the schema types as `.optional()` (`metadata`, `actor`, `actor.key`, queue `name`/`wait`/`timeout`/
//! `response`) are omitted when absent, because the client's Zod schema rejects `null` for them; `actionId` is
//! `.nullable()` and so is always present, `null` when absent.

use super::fields::Object;
use super::tree::Node;
use super::{Malformed, args_array};
use crate::Value;
use crate::messages::{ActorSpecifier, ErrorFrame, HttpQueueSendRequest, HttpQueueSendResponse, ToClient, ToServer};

/// `{"body": {"tag": tag, "val": val}}`.
fn union<'a>(tag: &'static str, val: Vec<(&'static str, Node<'a>)>) -> Node<'a> {
    Node::Object(vec![("body", Node::Object(vec![("tag", Node::Text(tag)), ("val", Node::Object(val))]))])
}

/// Splits `{"body": {"tag", "val"}}` into the tag and the `val` object.
fn open_union(value: Value, what: &str) -> Result<(String, Object), Malformed> {
    let mut body = Object::new(value, what)?.object("body")?;
    Ok((body.text("tag")?, body.object("val")?))
}

/// A `ToServer` message object.
pub(super) fn to_server_node(msg: &ToServer) -> Node<'_> {
    match msg {
        ToServer::ActionRequest { id, name, args } => union(
            "ActionRequest",
            vec![("id", Node::BigUint(*id)), ("name", Node::Text(name)), ("args", Node::User(args))],
        ),
        ToServer::SubscriptionRequest { event_name, subscribe } => union(
            "SubscriptionRequest",
            vec![("eventName", Node::Text(event_name)), ("subscribe", Node::Bool(*subscribe))],
        ),
    }
}

/// Reads a `ToServer` message object; action arguments must be an array.
pub(super) fn to_server(value: Value) -> Result<ToServer, Malformed> {
    let (tag, mut val) = open_union(value, "ToServer")?;
    match tag.as_str() {
        "ActionRequest" => Ok(ToServer::ActionRequest {
            id: val.uint("id")?,
            name: val.text("name")?,
            args: args_array(val.user("args"))?,
        }),
        "SubscriptionRequest" => {
            Ok(ToServer::SubscriptionRequest { event_name: val.text("eventName")?, subscribe: val.bool("subscribe")? })
        }
        other => Err(Malformed(format!("unknown ToServer tag `{other}`"))),
    }
}

/// A `ToClient` message object.
pub(super) fn to_client_node(msg: &ToClient) -> Node<'_> {
    match msg {
        ToClient::Init { actor_id, connection_id } => {
            union("Init", vec![("actorId", Node::Text(actor_id)), ("connectionId", Node::Text(connection_id))])
        }
        ToClient::Error(frame) => {
            let mut val = error_head(frame);
            val.push(("actionId", frame.action_id.map_or(Node::Null, Node::BigUint)));
            val.extend(frame.actor.as_ref().map(|actor| ("actor", actor_node(actor))));
            union("Error", val)
        }
        ToClient::ActionResponse { id, output } => {
            union("ActionResponse", vec![("id", Node::BigUint(*id)), ("output", Node::User(output))])
        }
        ToClient::Event { name, args } => union("Event", vec![("name", Node::Text(name)), ("args", Node::User(args))]),
    }
}

/// Reads a `ToClient` message object.
pub(super) fn to_client(value: Value) -> Result<ToClient, Malformed> {
    let (tag, mut val) = open_union(value, "ToClient")?;
    match tag.as_str() {
        "Init" => Ok(ToClient::Init { actor_id: val.text("actorId")?, connection_id: val.text("connectionId")? }),
        "Error" => Ok(ToClient::Error(error_frame(val)?)),
        "ActionResponse" => Ok(ToClient::ActionResponse { id: val.uint("id")?, output: val.user("output") }),
        "Event" => Ok(ToClient::Event { name: val.text("name")?, args: val.user("args") }),
        other => Err(Malformed(format!("unknown ToClient tag `{other}`"))),
    }
}

/// `group`, `code`, `message` and, when present, `metadata`: the fields `Error` and `HttpResponseError` share.
fn error_head(frame: &ErrorFrame) -> Vec<(&'static str, Node<'_>)> {
    let mut val = vec![
        ("group", Node::Text(&frame.group)),
        ("code", Node::Text(&frame.code)),
        ("message", Node::Text(&frame.message)),
    ];
    val.extend(frame.metadata.as_ref().map(|m| ("metadata", Node::User(m))));
    val
}

fn actor_node(actor: &ActorSpecifier) -> Node<'_> {
    let mut fields = vec![("actorId", Node::Text(&actor.actor_id)), ("generation", Node::Number(actor.generation))];
    fields.extend(actor.key.as_deref().map(|key| ("key", Node::Text(key))));
    Node::Object(fields)
}

/// Reads the fields of an `Error` or `HttpResponseError` object (`actionId` is read when present).
fn error_frame(mut val: Object) -> Result<ErrorFrame, Malformed> {
    let (group, code, message) = (val.text("group")?, val.text("code")?, val.text("message")?);
    let metadata = val.opt_user("metadata");
    let action_id = val.opt_uint("actionId")?;
    let actor = match val.opt_object("actor")? {
        None => None,
        Some(mut actor) => Some(ActorSpecifier {
            actor_id: actor.text("actorId")?,
            generation: actor.uint("generation")?,
            key: actor.opt_text("key")?,
        }),
    };
    Ok(ErrorFrame { group, code, message, metadata, action_id, actor })
}

/// An `HttpResponseError` object (the frame's action id is not part of it).
pub(super) fn error_node(frame: &ErrorFrame) -> Node<'_> {
    let mut val = error_head(frame);
    val.extend(frame.actor.as_ref().map(|actor| ("actor", actor_node(actor))));
    Node::Object(val)
}

/// Reads an `HttpResponseError` object.
pub(super) fn error(value: Value) -> Result<ErrorFrame, Malformed> {
    let mut frame = error_frame(Object::new(value, "HttpResponseError")?)?;
    frame.action_id = None;
    Ok(frame)
}

/// An `HttpActionRequest` object.
pub(super) fn action_request_node(args: &Value) -> Node<'_> {
    Node::Object(vec![("args", Node::User(args))])
}

/// Reads an `HttpActionRequest` object; the arguments must be an array.
pub(super) fn action_request(value: Value) -> Result<Value, Malformed> {
    args_array(Object::new(value, "HttpActionRequest")?.user("args"))
}

/// An `HttpActionResponse` object.
pub(super) fn action_response_node(output: &Value) -> Node<'_> {
    Node::Object(vec![("output", Node::User(output))])
}

/// Reads an `HttpActionResponse` object.
pub(super) fn action_response(value: Value) -> Result<Value, Malformed> {
    Ok(Object::new(value, "HttpActionResponse")?.user("output"))
}

/// An `HttpQueueSendRequest` object.
pub(super) fn queue_send_request_node(req: &HttpQueueSendRequest) -> Node<'_> {
    let mut fields = vec![("body", Node::User(&req.body))];
    fields.extend(req.name.as_deref().map(|name| ("name", Node::Text(name))));
    fields.extend(req.wait.map(|wait| ("wait", Node::Bool(wait))));
    fields.extend(req.timeout.map(|timeout| ("timeout", Node::Number(timeout))));
    Node::Object(fields)
}

/// Reads an `HttpQueueSendRequest` object.
pub(super) fn queue_send_request(value: Value) -> Result<HttpQueueSendRequest, Malformed> {
    let mut obj = Object::new(value, "HttpQueueSendRequest")?;
    Ok(HttpQueueSendRequest {
        body: obj.user("body"),
        name: obj.opt_text("name")?,
        wait: obj.opt_bool("wait")?,
        timeout: obj.opt_uint("timeout")?,
    })
}

/// An `HttpQueueSendResponse` object.
pub(super) fn queue_send_response_node(resp: &HttpQueueSendResponse) -> Node<'_> {
    let mut fields = vec![("status", Node::Text(&resp.status))];
    fields.extend(resp.response.as_ref().map(|r| ("response", Node::User(r))));
    Node::Object(fields)
}

/// Reads an `HttpQueueSendResponse` object.
pub(super) fn queue_send_response(value: Value) -> Result<HttpQueueSendResponse, Malformed> {
    let mut obj = Object::new(value, "HttpQueueSendResponse")?;
    Ok(HttpQueueSendResponse { status: obj.text("status")?, response: obj.opt_user("response") })
}
