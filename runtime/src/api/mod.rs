//! The v1 REST API (COMPAT §7): tenant-scoped bearer tokens, per-token rate
//! limits, conversations, messages, session data, conversation actions, NLP
//! extract, and its OpenAPI document.

pub mod actions;
pub mod auth;
pub mod conversations;
pub mod deliveries;
pub mod nlp;
pub mod openapi;
pub mod templates;
pub mod types;

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use serde_json::{Value, json};

use auth::TenantId;

use std::collections::BTreeMap;

use crate::serve::error::AppError;
use crate::serve::metrics::Usage;
use crate::serve::state::AppState;

pub fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let bots = Router::new()
        .route("/v1/bots/{bot_id}/conversations", get(conversations::list))
        .route(
            "/v1/bots/{bot_id}/conversations/{conversation_id}/messages",
            get(conversations::messages),
        )
        .route(
            "/v1/bots/{bot_id}/conversations/{conversation_id}/session-data",
            get(conversations::get_session).delete(conversations::delete_session),
        )
        .route(
            "/v1/bots/{bot_id}/conversations/{conversation_id}",
            delete(conversations::delete),
        )
        .route(
            "/v1/bots/{bot_id}/conversations/{conversation_id}/actions",
            post(actions::post),
        )
        .route("/v1/bots/{bot_id}/nlp/extract", post(nlp::extract))
        .route("/v1/usage", get(usage))
        .route("/v1/deliveries/dead", get(deliveries::list))
        .route(
            "/v1/deliveries/dead/{id}/requeue",
            post(deliveries::requeue),
        )
        .layer(axum::middleware::from_fn_with_state(
            state,
            auth::authenticate,
        ));
    bots.route(
        "/v1/openapi.json",
        get(|| async { Json(openapi::document()) }),
    )
}

/// `GET /v1/usage`: the token's tenant's figures, per bot (the same as
/// `/metrics` shows for every tenant).
async fn usage(
    State(state): State<Arc<AppState>>,
    Extension(tenant): Extension<TenantId>,
) -> Result<Json<Value>, AppError> {
    // Several nodes: this node's figures recorded now, then every node's added up.
    let store = state.store.as_ref();
    store
        .record_usage(&state.metrics.snapshot())
        .await
        .map_err(AppError::from)?;
    let bots = match store.usage(&tenant.0).await.map_err(AppError::from)? {
        None => state.metrics.tenant(&tenant.0),
        Some(rows) => {
            let mut bots: BTreeMap<String, Usage> = BTreeMap::new();
            for (bot, figures) in rows {
                let u: Usage = serde_json::from_value(figures).unwrap_or_default();
                bots.entry(bot).or_default().add(&u);
            }
            bots
        }
    };
    let storage = state.metrics.storage(&tenant.0);
    Ok(Json(
        json!({ "tenant": tenant.0, "bots": bots, "storage": storage }),
    ))
}
