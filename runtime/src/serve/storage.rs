//! Tenants' storage quotas: what a tenant's conversations hold in the store
//! (sessions and transcripts, [`crate::store::Store::stored_bytes`]) is read
//! once a second (less often where reading it takes over 10 ms: at most 1 %
//! of the time goes to it); while it is at or past the tenant's `storageQuotaMb`, new
//! messages from outside are refused with 507 and a message that says why
//! and what frees space. Messages already accepted still run, and the
//! tenant can still clear sessions and delete conversations.

use std::sync::Arc;

use axum::http::StatusCode;

use super::error::AppError;
use super::metrics::Storage;
use super::state::AppState;

/// Reads what every tenant stores now (at start, then once a second).
pub async fn refresh(state: &Arc<AppState>) {
    for tenant in state.tenants.keys() {
        refresh_tenant(state, tenant).await;
    }
}

/// Reads what `tenant` stores now (after it deleted a conversation).
pub async fn refresh_tenant(state: &AppState, tenant: &str) {
    let Some(t) = state.tenants.get(tenant) else {
        return;
    };
    let keys: Vec<String> = state
        .bots
        .values()
        .filter(|d| d.tenant == t.id)
        .map(|d| d.key.clone())
        .collect();
    match state.store.stored_bytes(&keys).await {
        Ok(bytes) => state.metrics.set_storage(
            &t.id,
            Storage {
                bytes,
                quota_bytes: t.storage_quota,
            },
        ),
        // An unavailable store is logged where the outage starts and ends.
        Err(e) if e.is_unavailable() => {}
        Err(e) => tracing::warn!(%e, tenant = t.id, "reading what the tenant stores"),
    }
}

/// Refuses a new message of `tenant` (for `bot`) while it is over its quota.
pub fn check(state: &AppState, tenant: &str, bot: &str) -> Result<(), AppError> {
    let s = state.metrics.storage(tenant);
    if s.quota_bytes == 0 || s.bytes < s.quota_bytes {
        return Ok(());
    }
    state.metrics.storage_refused(tenant, bot);
    Err(AppError::new(
        StatusCode::INSUFFICIENT_STORAGE,
        format!(
            "tenant `{tenant}` is over its storage quota: its conversations hold {} of {} (sessions and transcripts); new messages are refused until conversations are deleted (DELETE /v1/bots/{{botId}}/conversations/{{conversationId}}) or expire, or the operator raises `storageQuotaMb`",
            size(s.bytes),
            size(s.quota_bytes)
        ),
    ))
}

fn size(bytes: u64) -> String {
    match bytes {
        0..1_048_576 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}
