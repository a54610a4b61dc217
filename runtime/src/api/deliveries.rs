//! Dead letters: deliveries given up after their retry period, for the
//! token's tenant's bots. `GET /v1/deliveries/dead` lists them;
//! `POST /v1/deliveries/dead/{id}/requeue` puts one back in its
//! conversation's queue (attempts reset).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::{Extension, Json};

use super::auth::TenantId;
use super::types::{DeadLetterItem, DeadLetterList, Page, Requeued};
use crate::serve::error::AppError;
use crate::serve::state::AppState;

fn tenant_bots(state: &AppState, tenant: &TenantId) -> Vec<String> {
    state
        .bots
        .iter()
        .filter(|(_, d)| d.tenant == tenant.0)
        .map(|(id, _)| id.clone())
        .collect()
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Extension(tenant): Extension<TenantId>,
    Query(page): Query<Page>,
) -> Result<Json<DeadLetterList>, AppError> {
    let limit = page.limit.unwrap_or(50).clamp(1, 100);
    let letters = state
        .store
        .dead_letters(&tenant_bots(&state, &tenant), limit)
        .await
        .map_err(AppError::from)?;
    let data = letters
        .into_iter()
        .map(|l| DeadLetterItem {
            id: l.delivery.id,
            bot_id: l.delivery.bot,
            conversation_id: l.delivery.conversation,
            url: l.delivery.url,
            body: l.delivery.body,
            attempts: l.delivery.attempts,
            reason: l.reason,
            dead_at: l.dead_ms,
        })
        .collect();
    Ok(Json(DeadLetterList { data }))
}

pub async fn requeue(
    State(state): State<Arc<AppState>>,
    Extension(tenant): Extension<TenantId>,
    Path(id): Path<u64>,
) -> Result<Json<Requeued>, AppError> {
    let found = state
        .store
        .requeue(&tenant_bots(&state, &tenant), id)
        .await
        .map_err(AppError::from)?;
    if !found {
        return Err(AppError::not_found(format!("no dead letter {id}")));
    }
    state.deliveries.notify_one();
    Ok(Json(Requeued { requeued: id }))
}
