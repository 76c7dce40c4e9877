//! Limits on a request's head, checked before any route: a URI (path and query) over [`MAX_URI_BYTES`] is
//! `guard.uri_too_long` (414), headers over [`MAX_HEADER_BYTES`] are `guard.headers_too_large` (431), each with
//! the JSON error body every other error has.
//!
//! They lie well below the HTTP server's own limits: hyper itself refuses a request target over 64 KiB, and a
//! head over about 400 KiB or with more than 100 headers, before any of Tern's code runs, and answers those
//! with a bare status. Everything short of that reaches this check.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tern_proto::ClientError;

use crate::error_response::ErrorResponse;

/// Longest URI (path and query) of a request, in bytes: several times the longest URL a RivetKit client builds (a
/// gateway query route with a 1 KiB key and 4 KiB of input, percent-encoded).
const MAX_URI_BYTES: usize = 16 * 1024;
/// Most bytes of header names and values a request may carry.
const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Refuses a request whose URI or headers are over the limits; passes any other on.
pub(crate) async fn check(request: Request, next: Next) -> Response {
    let uri = request.uri().path_and_query().map_or(0, |target| target.as_str().len());
    if uri > MAX_URI_BYTES {
        return ErrorResponse(ClientError::uri_too_long(uri, MAX_URI_BYTES)).into_response();
    }
    let headers = request.headers().iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
    if headers > MAX_HEADER_BYTES {
        return ErrorResponse(ClientError::headers_too_large(headers, MAX_HEADER_BYTES)).into_response();
    }
    next.run(request).await
}
