//! Conversations, their messages and their session data.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};

use super::actions::{self, RestAction};
use super::auth::{TenantId, deployment};
use super::types::{
    Actor, ConversationList, ConversationSummary, MessageItem, MessageList, Page, SessionData,
};
use crate::serve::error::AppError;
use crate::serve::state::AppState;

fn limit(page: &Page) -> Result<usize, AppError> {
    match page.limit {
        None => Ok(20),
        Some(n @ 1..=100) => Ok(n),
        Some(n) => Err(AppError::bad_request(format!(
            "limit {n}: between 1 and 100"
        ))),
    }
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Extension(tenant): Extension<TenantId>,
    Path(bot_id): Path<String>,
    Query(page): Query<Page>,
) -> Result<Json<ConversationList>, AppError> {
    let bot_id = &deployment(&state, &tenant, &bot_id, page.version.as_deref())?.key;
    let n = limit(&page)?;
    let ids = state
        .store
        .conversations(bot_id, page.after.as_deref(), n + 1)
        .await
        .map_err(AppError::from)?;
    let next = (ids.len() > n).then(|| ids[n - 1].clone());
    let mut data = Vec::new();
    for id in ids.into_iter().take(n) {
        if let Some(s) = state
            .store
            .load(bot_id, &id)
            .await
            .map_err(AppError::from)?
        {
            data.push(ConversationSummary {
                conversation_id: id,
                updated_at: s.updated_ms,
                paused: s.paused,
                offloaded_to: s.offload.map(|o| o.provider),
            });
        }
    }
    Ok(Json(ConversationList { data, next }))
}

pub async fn messages(
    State(state): State<Arc<AppState>>,
    Extension(tenant): Extension<TenantId>,
    Path((bot_id, conversation)): Path<(String, String)>,
    Query(page): Query<Page>,
) -> Result<Json<MessageList>, AppError> {
    let bot_id = &deployment(&state, &tenant, &bot_id, page.version.as_deref())?.key;
    let n = limit(&page)?;
    if state
        .store
        .load(bot_id, &conversation)
        .await
        .map_err(AppError::from)?
        .is_none()
    {
        return Err(AppError::not_found(format!(
            "no conversation `{conversation}`"
        )));
    }
    let mut from = match &page.after {
        None => 0,
        Some(a) => a
            .parse::<u64>()
            .map_err(|_| AppError::bad_request("`after` is a cursor from `next`"))?,
    };
    let mut data = Vec::new();
    let mut next = None;
    // Walk the transcript, keeping user and bot messages, until a page is full.
    'pages: loop {
        let entries = state
            .store
            .transcript(bot_id, &conversation, from, 200)
            .await
            .map_err(AppError::from)?;
        if entries.is_empty() {
            break;
        }
        for e in &entries {
            let (actor, message) = match (e.event.get("user"), e.event.get("bot")) {
                (Some(u), _) => (Actor::User, u.clone()),
                (_, Some(b)) => (Actor::Bot, b.clone()),
                _ => continue,
            };
            if data.len() == n {
                next = Some((e.seq).to_string());
                break 'pages;
            }
            data.push(MessageItem {
                message,
                timestamp: e.at_ms,
                actor,
            });
        }
        from = entries.last().map_or(from, |e| e.seq + 1);
    }
    Ok(Json(MessageList { data, next }))
}

pub async fn get_session(
    State(state): State<Arc<AppState>>,
    Extension(tenant): Extension<TenantId>,
    Path((bot_id, conversation)): Path<(String, String)>,
    Query(page): Query<Page>,
) -> Result<Json<SessionData>, AppError> {
    let bot_id = &deployment(&state, &tenant, &bot_id, page.version.as_deref())?.key;
    let s = state
        .store
        .load(bot_id, &conversation)
        .await
        .map_err(AppError::from)?
        .ok_or_else(|| AppError::not_found(format!("no conversation `{conversation}`")))?;
    Ok(Json(SessionData { data: s.session }))
}

/// Clears the session (keeping `internal`); the transcript stays. 204.
pub async fn delete_session(
    State(state): State<Arc<AppState>>,
    Extension(tenant): Extension<TenantId>,
    Path((bot_id, conversation)): Path<(String, String)>,
    Query(page): Query<Page>,
) -> Result<StatusCode, AppError> {
    let bot_id = &deployment(&state, &tenant, &bot_id, page.version.as_deref())?.key;
    let clear = RestAction {
        messages: Vec::new(),
        postbacks: Vec::new(),
        writes: Vec::new(),
        pause: None,
        goto: None,
        clear_session: true,
    };
    actions::run(&state, bot_id, &conversation, clear, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1/bots/{botId}/conversations/{conversationId}`: forgets the
/// conversation, its session and its transcript (what counts against the
/// tenant's storage quota); 404 when there is none.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    Extension(tenant): Extension<TenantId>,
    Path((bot_id, conversation)): Path<(String, String)>,
    Query(page): Query<Page>,
) -> Result<StatusCode, AppError> {
    let key = &deployment(&state, &tenant, &bot_id, page.version.as_deref())?.key;
    let gone = state
        .store
        .delete(key, &conversation)
        .await
        .map_err(AppError::from)?;
    if !gone {
        return Err(AppError::not_found(format!(
            "no conversation `{conversation}`"
        )));
    }
    crate::serve::storage::refresh_tenant(&state, &tenant.0).await;
    Ok(StatusCode::NO_CONTENT)
}
