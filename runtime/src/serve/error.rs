//! One error type for every route: the status and a JSON body saying what is wrong.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug)]
pub struct AppError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds for a `Retry-After` header (429, 503).
    pub retry_after: Option<u64>,
    /// More fields for the body (a refused save's `problems`).
    pub details: Option<serde_json::Value>,
}

impl AppError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
            details: None,
        }
    }
    /// 429 with `Retry-After: seconds`.
    pub fn too_many(message: impl Into<String>, seconds: u64) -> Self {
        Self {
            retry_after: Some(seconds),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, message)
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "missing or invalid bearer token (Authorization: Bearer <token>)",
        )
    }
    /// A fault on our side (the store), with its message.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
}

/// How long a sender is asked to wait while the store is unavailable.
const UNAVAILABLE_RETRY_S: u64 = 5;

/// The store's error: 503 with `Retry-After` while it cannot be reached
/// (nothing was done; the same request may succeed later), else 500.
impl From<crate::store::StoreError> for AppError {
    fn from(e: crate::store::StoreError) -> Self {
        if !e.is_unavailable() {
            return Self::internal(e);
        }
        Self {
            retry_after: Some(UNAVAILABLE_RETRY_S),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{}; retry later", e.message()),
            )
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.message });
        if let Some(serde_json::Value::Object(more)) = self.details {
            body.as_object_mut().expect("an object").extend(more);
        }
        let mut response = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after {
            response.headers_mut().insert("retry-after", s.into());
        }
        response
    }
}
