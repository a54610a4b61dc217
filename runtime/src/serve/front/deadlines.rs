//! Every request within two deadlines, the same on every route: its body
//! must arrive within `body` once its headers have (408; one too large is
//! 413), and the whole request is answered within `request` (503). Both
//! answer with the project's JSON error: tower-http's body timeout surfaces
//! as each extractor's own 400, and its request timeout as an empty body.

use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::serve::app::MAX_BODY_BYTES;
use crate::serve::error::AppError;

#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    pub body: Duration,
    pub request: Duration,
}

pub async fn within(State(deadlines): State<Deadlines>, request: Request, next: Next) -> Response {
    let answer = async {
        let (parts, body) = request.into_parts();
        match tokio::time::timeout(deadlines.body, to_bytes(body, MAX_BODY_BYTES)).await {
            Ok(Ok(bytes)) => {
                next.run(Request::from_parts(parts, Body::from(bytes)))
                    .await
            }
            Ok(Err(_)) => AppError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is larger than {MAX_BODY_BYTES} bytes or broken off"),
            )
            .into_response(),
            Err(_) => AppError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} ms",
                    deadlines.body.as_millis()
                ),
            )
            .into_response(),
        }
    };
    match tokio::time::timeout(deadlines.request, answer).await {
        Ok(response) => response,
        Err(_) => AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "no answer within {} ms (http.requestTimeoutMs); an accepted message is still processed",
                deadlines.request.as_millis()
            ),
        )
        .into_response(),
    }
}
