//! Turning catalogue errors into HTTP responses.
//!
//! Error bodies are always JSON (`{group, code, message, metadata}`): RivetKit clients read JSON whenever the
//! response's content type says so, whatever encoding they asked for. Retryable server-side conditions (503)
//! also carry `x-rivet-error`, which RivetKit's edge uses as its retry signal.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tern_proto::{ClientError, value};

/// A catalogue error as an HTTP response.
#[derive(Debug)]
pub struct ErrorResponse(pub ClientError);

impl From<ClientError> for ErrorResponse {
    fn from(err: ClientError) -> Self {
        ErrorResponse(err)
    }
}

/// The JSON body of an error.
pub fn error_json(err: &ClientError) -> serde_json::Value {
    serde_json::json!({
        "group": err.group,
        "code": err.code,
        "message": err.message,
        "metadata": err.metadata.as_ref().map(value::to_json),
    })
}

impl IntoResponse for ErrorResponse {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(error_json(&self.0))).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE
            && let Ok(v) = HeaderValue::from_str(&self.0.qualified_code())
        {
            response.headers_mut().insert("x-rivet-error", v);
        }
        response
    }
}
