//! The router factory: every route the server answers, over one shared state.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};

use super::error::AppError;
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
        .merge(crate::studio::routes(state.clone()))
        .fallback(|| async { super::error::AppError::not_found("no such route") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Prometheus text exposition. It names every tenant's bots and failures:
/// with a `metricsToken` only for that bearer token, without one only for
/// this machine (a Prometheus elsewhere needs the token).
async fn metrics(
    State(state): State<Arc<AppState>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<([(&'static str, &'static str); 1], String), AppError> {
    let given = crate::channels::webhook::bearer(&headers);
    metrics_access(client.ip(), state.metrics_token.as_deref(), given)?;
    Ok((
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state
            .metrics
            .render(state.sandbox.idle_memory(), state.queued().await),
    ))
}

/// Who may read `/metrics`.
fn metrics_access(
    client: IpAddr,
    token: Option<&str>,
    given: Option<&str>,
) -> Result<(), AppError> {
    match token {
        Some(t) if given.is_some_and(|g| constant_time_eq(g.as_bytes(), t.as_bytes())) => Ok(()),
        Some(_) => Err(AppError::new(
            StatusCode::UNAUTHORIZED,
            "/metrics needs its bearer token (`metricsToken`): Authorization: Bearer <token>",
        )),
        None if client.is_loopback() || client.to_canonical().is_loopback() => Ok(()),
        None => Err(AppError::new(
            StatusCode::FORBIDDEN,
            "/metrics answers only this machine; set `metricsToken` (or SANDBOT_METRICS_TOKEN) to scrape it from elsewhere",
        )),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Ready once the bots are loaded and the store answers; else 503 and why.
async fn ready(State(state): State<Arc<AppState>>) -> (StatusCode, String) {
    match state.store.ping().await {
        Ok(_) => (StatusCode::OK, "ready".into()),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("store unavailable: {}", e.message()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_may_read_metrics() {
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let remote: IpAddr = "203.0.113.9".parse().unwrap();
        // No token: this machine only.
        assert!(metrics_access(local, None, None).is_ok());
        assert!(metrics_access(mapped, None, None).is_ok());
        let e = metrics_access(remote, None, None).unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        assert!(e.message.starts_with("/metrics answers only this machine"));
        // A token: required from everywhere, the machine included.
        assert!(metrics_access(remote, Some("m"), Some("m")).is_ok());
        for given in [None, Some("x"), Some("mm")] {
            let e = metrics_access(local, Some("m"), given).unwrap_err();
            assert_eq!(e.status, StatusCode::UNAUTHORIZED);
        }
    }
}
