//! Reading HTTP responses: success bodies, and error bodies turned into [`Error::Actor`].
//!
//! As RivetKit's client does, an error body is read as JSON whenever its `Content-Type` contains
//! `application/json`, whatever encoding the request asked for; otherwise it is decoded in the request's
//! encoding (`HttpResponseError`). The error keeps the response's real HTTP status.

use reqwest::Response;
use reqwest::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;
use tern_proto::{ClientError, Encoding, value};

use crate::error::{Error, Result};

/// Longest part of an unreadable body quoted in an error message.
const BODY_SNIPPET_CHARS: usize = 200;

/// The body of a 2xx response, or the error its body describes.
pub(crate) async fn success_body(response: Response, encoding: Encoding) -> Result<Vec<u8>> {
    let status = response.status().as_u16();
    let content_type = response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = response.bytes().await?;
    if (200..300).contains(&status) {
        Ok(body.to_vec())
    } else {
        Err(parse_error_body(status, content_type.as_deref(), &body, encoding))
    }
}

/// The JSON body of a 2xx response (REST API), or the error its body describes.
pub(crate) async fn json_body<T: DeserializeOwned>(response: Response) -> Result<T> {
    let body = success_body(response, Encoding::Json).await?;
    serde_json::from_slice(&body)
        .map_err(|e| Error::Protocol(format!("unexpected response body ({e}): {}", snippet(&body))))
}

/// The error an HTTP error response describes.
///
/// A body that cannot be read as an error becomes [`Error::Protocol`] quoting the status and the body.
pub(crate) fn parse_error_body(status: u16, content_type: Option<&str>, body: &[u8], encoding: Encoding) -> Error {
    let is_json = content_type.is_some_and(|ct| ct.to_ascii_lowercase().contains("application/json"));
    let parsed = if is_json { json_error(body) } else { encoding.decode_error(body).ok().map(ClientError::from) };
    match parsed {
        Some(mut err) => {
            err.status = status;
            Error::Actor(err)
        }
        None => Error::Protocol(format!("HTTP {status} with an unreadable error body: {}", snippet(body))),
    }
}

/// Reads `{"group","code","message","metadata"?}`; metadata is a JSON-compat user value.
fn json_error(body: &[u8]) -> Option<ClientError> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = |field: &str| json.get(field).and_then(|v| v.as_str()).map(str::to_string);
    let metadata = json.get("metadata").filter(|m| !m.is_null()).map(value::from_json);
    Some(ClientError {
        group: text("group")?,
        code: text("code")?,
        message: text("message").unwrap_or_default(),
        metadata,
        status: 0,
    })
}

/// The start of a body, for error messages.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text.chars().take(BODY_SNIPPET_CHARS).collect();
    if text.chars().count() > BODY_SNIPPET_CHARS {
        out.push('…');
    }
    if out.is_empty() { "(empty)".to_string() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_proto::{ErrorFrame, Value};

    fn actor_error(err: Error) -> ClientError {
        match err {
            Error::Actor(e) => e,
            other => panic!("expected an actor error, got {other:?}"),
        }
    }

    #[test]
    fn json_bodies_are_read_whatever_the_encoding() {
        let body =
            br#"{"group":"user","code":"bad_input","message":"no","metadata":{"n":["$BigInt","9007199254740993"]}}"#;
        for encoding in [Encoding::Bare, Encoding::Cbor, Encoding::Json] {
            let err = actor_error(parse_error_body(400, Some("application/json; charset=utf-8"), body, encoding));
            assert_eq!((err.group.as_str(), err.code.as_str(), err.message.as_str()), ("user", "bad_input", "no"));
            assert_eq!(err.status, 400);
            let expected = Value::Map(vec![(Value::Text("n".into()), Value::Integer(9007199254740993u64.into()))]);
            assert_eq!(err.metadata, Some(expected));
        }
        let no_metadata = br#"{"group":"actor","code":"not_found","message":"gone","metadata":null}"#;
        let err = actor_error(parse_error_body(404, Some("application/json"), no_metadata, Encoding::Bare));
        assert_eq!((err.metadata, err.status), (None, 404));
    }

    #[test]
    fn encoded_bodies_use_the_request_encoding() {
        let frame = ErrorFrame {
            group: "actor".into(),
            code: "action_timed_out".into(),
            message: "slow".into(),
            metadata: Some(Value::Bool(true)),
            action_id: None,
            actor: None,
        };
        for encoding in [Encoding::Bare, Encoding::Cbor] {
            let body = encoding.encode_error(&frame);
            let err = actor_error(parse_error_body(408, Some("application/octet-stream"), &body, encoding));
            assert_eq!(err.qualified_code(), "actor.action_timed_out");
            assert_eq!((err.message.as_str(), err.metadata, err.status), ("slow", Some(Value::Bool(true)), 408));
        }
        // The real status wins over the catalogue's.
        let body = Encoding::Bare.encode_error(&frame);
        assert_eq!(actor_error(parse_error_body(504, None, &body, Encoding::Bare)).status, 504);
    }

    #[test]
    fn unreadable_bodies_are_protocol_errors() {
        match parse_error_body(502, Some("text/html"), b"<html>Bad Gateway</html>", Encoding::Bare) {
            Error::Protocol(msg) => assert!(msg.contains("502") && msg.contains("Bad Gateway"), "{msg}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_error_body(500, Some("application/json"), b"{\"x\":1}", Encoding::Json),
            Error::Protocol(_)
        ));
        assert!(
            matches!(parse_error_body(500, None, b"", Encoding::Json), Error::Protocol(m) if m.contains("(empty)"))
        );
    }
}
