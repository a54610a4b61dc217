//! Bearer tokens and rate limits for every `/v1/bots/...` route: a missing or
//! unknown token → 401; past the token's window → 429. Every answer carries
//! the `x-ratelimit-*` headers. Bots of another tenant are 404 (see
//! [`deployment`]).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::channels::webhook::bearer;
use crate::serve::error::AppError;
use crate::serve::rate::RateState;
use crate::serve::state::{AppState, Deployment};

/// The authenticated tenant, put in the request's extensions.
#[derive(Clone)]
pub struct TenantId(pub String);

pub async fn authenticate(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let token = bearer(req.headers()).map(str::to_string);
    let Some((token, tenant)) = token.and_then(|t| state.tenant_of(&t).map(|ten| (t.clone(), ten)))
    else {
        return AppError::unauthorized().into_response();
    };
    let now = crate::store::now_ms() / 1000;
    let rate = state
        .rate
        .count(state.store.as_ref(), &token, tenant.rate_limit, now)
        .await;
    let mut response = if rate.allowed {
        req.extensions_mut().insert(TenantId(tenant.id.clone()));
        next.run(req).await
    } else {
        AppError::too_many(
            format!(
                "rate limit of {} requests per window reached; retry after {}",
                rate.limit, rate.reset
            ),
            rate.reset.saturating_sub(now).max(1),
        )
        .into_response()
    };
    rate_headers(response.headers_mut(), rate);
    response
}

fn rate_headers(headers: &mut HeaderMap, rate: RateState) {
    for (name, value) in [
        ("x-ratelimit-limit", rate.limit as u64),
        ("x-ratelimit-remaining", rate.remaining as u64),
        ("x-ratelimit-reset", rate.reset),
    ] {
        headers.insert(name, HeaderValue::from(value));
    }
}

/// The tenant's bot `bot_id` (404 when unknown or another tenant's) on
/// `?version=` (without it, LIVE when deployed, else DRAFT).
pub fn deployment<'s>(
    state: &'s AppState,
    tenant: &TenantId,
    bot_id: &str,
    version: Option<&str>,
) -> Result<&'s Deployment, AppError> {
    let owned = state
        .bots
        .values()
        .any(|d| d.id == bot_id.split('@').next().unwrap_or(bot_id) && d.tenant == tenant.0);
    if !owned {
        return Err(AppError::not_found(format!("no bot `{bot_id}`")));
    }
    state.resolve(bot_id, version)
}
