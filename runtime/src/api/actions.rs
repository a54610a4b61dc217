//! `POST /v1/bots/{botId}/conversations/{conversationId}/actions`: send
//! messages as templates, set session data, pause or resume the bot, go to a
//! block.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use sandbot_host_api::JsonPath;
use serde_json::{Value, json};

use super::auth::{TenantId, deployment};
use super::templates;
use super::types::{ActionsRequest, ActionsResponse, Page};
use crate::channels::webhook;
use crate::flow::postback;
use crate::flow::{Inbound, InboundKind};
use crate::serve::error::AppError;
use crate::serve::state::AppState;

pub async fn post(
    State(state): State<Arc<AppState>>,
    Extension(tenant): Extension<TenantId>,
    Path((bot_id, conversation)): Path<(String, String)>,
    Query(page): Query<Page>,
    body: Result<Json<ActionsRequest>, JsonRejection>,
) -> Result<Json<ActionsResponse>, AppError> {
    let d = deployment(&state, &tenant, &bot_id, page.version.as_deref())?;
    let bot = d.bot();
    let Json(req) = body.map_err(|e| AppError::new(e.status(), e.body_text()))?;
    let mut messages = Vec::new();
    let mut postbacks = Vec::new();
    for (n, t) in req.send_messages.iter().enumerate() {
        let mut m = templates::to_message(t)
            .map_err(|e| AppError::bad_request(format!("sendMessages[{n}]: {e}")))?;
        postbacks.extend(postback::make_opaque(bot.id(), &mut m));
        messages.push(m);
    }
    let mut writes = Vec::new();
    for (path, value) in req.set_session_data.iter().flatten() {
        let p = JsonPath::parse(path)
            .map_err(|e| AppError::bad_request(format!("setSessionData `{path}`: {e}")))?;
        if p.root_key() == Some("internal") {
            return Err(AppError::bad_request(format!(
                "setSessionData `{path}`: internal.* is read-only"
            )));
        }
        writes.push((p, value.clone()));
    }
    if let Some(target) = &req.go_to_dialogstate
        && bot.find(target).is_none()
    {
        return Err(AppError::bad_request(format!(
            "goToDialogstate: no block `{target}`"
        )));
    }
    let sent = messages.len();
    let channel = d.webhook.clone();
    let done = d
        .engine
        .update(
            &bot,
            &conversation,
            postbacks,
            |s| {
                for (p, v) in writes {
                    if v.is_null() {
                        p.remove(&mut s.session);
                    } else {
                        let _ = p.set(&mut s.session, v);
                    }
                }
                s.message_counter += messages.len() as u64;
                if let Some(p) = req.pause {
                    s.paused = p;
                }
                let events: Vec<Value> = messages
                    .iter()
                    .map(|m| json!({ "bot": m, "agent": true }))
                    .collect();
                (events, s.paused)
            },
            |s| match &channel {
                Some(c) => webhook::deliveries(
                    c,
                    &messages,
                    s.message_counter + 1 - messages.len() as u64,
                    None,
                    s,
                ),
                None => Vec::new(),
            },
        )
        .await
        .map_err(AppError::internal)?;
    let Some(paused) = done else {
        return Err(AppError::not_found(format!(
            "no conversation `{conversation}`"
        )));
    };
    let mut flow_messages = Vec::new();
    if let Some(target) = req.go_to_dialogstate {
        let inbound = Inbound::new(
            &conversation,
            "api",
            InboundKind::Goto {
                next: target,
                params: Default::default(),
            },
        );
        let out = state
            .turn(d, inbound, |out, s| match &channel {
                Some(c) => webhook::outbound(c, out, s),
                None => Vec::new(),
            })
            .await
            .map_err(AppError::internal)?;
        flow_messages = out.messages;
    }
    state.deliveries.notify_one();
    Ok(Json(ActionsResponse {
        messages_sent: sent,
        paused,
        flow_messages,
    }))
}
