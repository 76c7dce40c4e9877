//! Raw HTTP for actors: the `on_request` handler and the request and response it works with.
//!
//! A client reaches the handler at `/gateway/{actor}/request/{path}` with any method (the JS client's
//! `handle.fetch(path, init)`). The handler sees the path after `/request` (`/` when nothing follows) and the
//! query without the gateway's `rvt-*` parameters.
//!
//! The handler runs like an action: inside the actor's turn, as one atomic unit. Its state and SQL changes commit
//! before the response is sent (the output gate); if it fails, they are rolled back and the client gets the error
//! as an action's (`user.*` with metadata, masked internal errors), and if it runs past the action timeout the
//! client gets `actor.action_timed_out` (408). The before-connect and create-conn-state hooks run first with the
//! connection parameters (`x-rivet-conn-params`), so `c.conn()` is an ephemeral connection, as for a stateless
//! action. An actor without a handler answers `handler.request_not_defined` (404).
//!
//! ```ignore
//! Actor::<Counter>::new("web").on_request(|c, request| async move {
//!     match (request.method.as_str(), request.path.as_str()) {
//!         ("GET", "/count") => Response::json(StatusCode::OK, &c.read(|s| s.count)),
//!         _ => Ok(Response::text(StatusCode::NOT_FOUND, "no such route")),
//!     }
//! })
//! ```

use std::future::Future;
use std::sync::Arc;

pub use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
pub use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tern_gateway::backend::{RawRequest, RawResponse};
use tern_proto::ClientError;

use super::context::Ctx;
use super::definition::{Actor, BoxFuture};
use super::error::{ActorError, ActorResult};

pub(crate) type RequestFn<S, V> = Arc<dyn Fn(Ctx<S, V>, Request) -> BoxFuture<ActorResult<Response>> + Send + Sync>;

/// An HTTP request for the actor's `on_request` handler.
#[derive(Debug, Clone)]
pub struct Request {
    /// The request method.
    pub method: Method,
    /// The path after `/request`, starting with `/` (still percent-encoded, as sent).
    pub path: String,
    /// The query string without `?` and without the gateway's `rvt-*` parameters, if any remain.
    pub query: Option<String>,
    /// The request headers, as the client sent them.
    pub headers: HeaderMap,
    /// The whole body (at most the incoming message size limit).
    pub body: Bytes,
}

impl Request {
    pub(crate) fn from_raw(request: RawRequest) -> Request {
        let (parts, body) = request.into_parts();
        Request {
            method: parts.method,
            path: parts.uri.path().to_string(),
            query: parts.uri.query().map(str::to_string),
            headers: parts.headers,
            body,
        }
    }

    /// The value of header `name`, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as UTF-8 text; `actor.invalid_request` if it is not.
    pub fn text(&self) -> ActorResult<&str> {
        std::str::from_utf8(&self.body).map_err(|e| invalid(format!("the request body is not UTF-8: {e}")))
    }

    /// The body parsed as JSON into `T`; `actor.invalid_request` if it does not fit.
    pub fn json<T: DeserializeOwned>(&self) -> ActorResult<T> {
        serde_json::from_slice(&self.body)
            .map_err(|e| invalid(format!("the request body is not the expected JSON: {e}")))
    }
}

fn invalid(message: String) -> ActorError {
    ActorError::from(ClientError::invalid_request(message))
}

/// The handler's answer: a status, headers and a body.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: StatusCode,
    /// The response headers (the gateway adds `x-rivet-actor`).
    pub headers: HeaderMap,
    /// The body (at most the outgoing message size limit, else the client gets `message.outgoing_too_long`).
    pub body: Bytes,
}

impl Response {
    /// An empty response with `status`.
    pub fn new(status: StatusCode) -> Response {
        Response { status, headers: HeaderMap::new(), body: Bytes::new() }
    }

    /// A `text/plain` response.
    pub fn text(status: StatusCode, text: impl Into<String>) -> Response {
        Response::new(status).with_body(text.into()).with_content_type("text/plain; charset=utf-8")
    }

    /// An `application/json` response with `value` serialized.
    pub fn json<T: Serialize>(status: StatusCode, value: &T) -> ActorResult<Response> {
        let body = serde_json::to_vec(value).map_err(|e| ActorError::internal(format!("response body: {e}")))?;
        Ok(Response::new(status).with_body(body).with_content_type("application/json"))
    }

    /// Replaces the body.
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Response {
        self.body = body.into();
        self
    }

    /// Sets header `name`; an invalid name or value is an internal error.
    pub fn with_header(mut self, name: &str, value: &str) -> ActorResult<Response> {
        let name = HeaderName::try_from(name).map_err(|e| ActorError::internal(format!("header name {name}: {e}")))?;
        let value = HeaderValue::try_from(value).map_err(|e| ActorError::internal(format!("header {name}: {e}")))?;
        self.headers.insert(name, value);
        Ok(self)
    }

    fn with_content_type(mut self, content_type: &'static str) -> Response {
        self.headers.insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        self
    }

    pub(crate) fn into_raw(self) -> RawResponse {
        let mut response = RawResponse::new(self.body);
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        response
    }
}

impl<S, V> Actor<S, V>
where
    S: Serialize + DeserializeOwned + Send + 'static,
    V: Send + 'static,
{
    /// Handles raw HTTP requests to `/request/...` (see the module docs): runs in the actor's turn as one atomic
    /// unit, like an action, and its response is sent once its changes are committed.
    pub fn on_request<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Ctx<S, V>, Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ActorResult<Response>> + Send + 'static,
    {
        self.on_request = Some(Arc::new(move |ctx, request| Box::pin(f(ctx, request))));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_convert() {
        let mut raw = RawRequest::new(Bytes::from_static(b"{\"n\":5}"));
        *raw.method_mut() = Method::POST;
        *raw.uri_mut() = "/inc?by=2".parse().unwrap();
        let request = Request::from_raw(raw);
        assert_eq!((request.path.as_str(), request.query.as_deref()), ("/inc", Some("by=2")));
        assert_eq!(request.json::<serde_json::Value>().unwrap()["n"], 5);
        assert!(request.json::<Vec<u8>>().is_err());
        let response = Response::json(StatusCode::CREATED, &[1, 2]).unwrap().with_header("x-a", "b").unwrap();
        let raw = response.into_raw();
        assert_eq!(raw.status(), StatusCode::CREATED);
        assert_eq!(raw.headers()["content-type"], "application/json");
        assert_eq!(raw.headers()["x-a"], "b");
        assert_eq!(raw.body().as_ref(), b"[1,2]");
        assert!(Response::new(StatusCode::OK).with_header("bad name", "x").is_err());
    }
}
