//! The router factory: every route the server answers, over one shared state.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, post};

use super::state::AppState;
use crate::channels::{sinch, web, webhook};

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 256 << 10;

pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(web::index))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route(
            "/v1/channels/webhook/{channel_id}/messages",
            post(webhook::inbound),
        )
        .route(
            "/v1/channels/sinch/{channel_id}/callback",
            post(sinch::callback),
        )
        .route("/chat/{bot_id}", get(web::page))
        .route("/widget.js", get(web::widget))
        .route(
            "/v1/channels/web/{bot_id}/sessions",
            post(web::session).options(web::preflight),
        )
        .route(
            "/v1/channels/web/{bot_id}/messages",
            post(web::message)
                .get(crate::channels::web_history::history)
                .options(web::preflight),
        )
        .merge(crate::api::routes(state.clone()))
        .fallback(|| async { super::error::AppError::not_found("no such route") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Prometheus text exposition (operators: keep this port internal).
async fn metrics(
    State(state): State<Arc<AppState>>,
) -> ([(&'static str, &'static str); 1], String) {
    (
        [("content-type", "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// Ready once the bots are loaded and the store answers.
async fn ready(State(state): State<Arc<AppState>>) -> (StatusCode, &'static str) {
    match state.store.ping().await {
        Ok(_) => (StatusCode::OK, "ready"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "store unavailable"),
    }
}
