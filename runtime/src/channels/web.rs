//! The web chat: a page at `/chat/{botId}` for people to talk to a bot in the
//! browser, and its endpoint `POST /v1/channels/web/{botId}/messages`, which
//! accepts the message into the durable inbox, waits for its turn and
//! answers with the bot's messages. For bots deployed as
//! DRAFT the answer also carries the emulator panel's data: the current
//! block, the session, and each action's outcome (kind, fuel, time).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Html;
use serde_json::{Value, json};

use super::webhook::parse;
use crate::serve::error::AppError;
use crate::serve::inbox::{Job, accept};
use crate::serve::state::{AppState, Deployment};

const PAGE: &str = include_str!("web_chat.html");

/// How long a web request waits for its turn (the message is durable either way).
const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

fn web_bot<'s>(state: &'s AppState, bot_id: &str) -> Result<&'s Deployment, AppError> {
    state
        .bots
        .get(bot_id)
        .filter(|d| d.web)
        .ok_or_else(|| AppError::not_found(format!("no web chat for bot `{bot_id}`")))
}

pub async fn page(
    State(state): State<Arc<AppState>>,
    Path(bot_id): Path<String>,
) -> Result<Html<String>, AppError> {
    let d = web_bot(&state, &bot_id)?;
    let name = d.bot().file.name.replace(['<', '>', '&', '"'], "");
    Ok(Html(
        PAGE.replace("{{BOT_ID}}", &bot_id)
            .replace("{{BOT_NAME}}", &name),
    ))
}

pub async fn message(
    State(state): State<Arc<AppState>>,
    Path(bot_id): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, AppError> {
    let d = web_bot(&state, &bot_id)?;
    let Json(body) = body.map_err(|e| AppError::new(e.status(), e.body_text()))?;
    let mut inbound = parse(&body)?;
    inbound.channel = "web".into();
    inbound.session_data.clear(); // people in a browser do not set session data
    let mut waiting = state.replies.wait();
    let job = Job::Web {
        inbound,
        reply: waiting.key.clone(),
    };
    accept(&state, &bot_id, None, job).await?;
    let out = match tokio::time::timeout(ANSWER_WITHIN, &mut waiting.answer).await {
        Ok(Ok(out)) => out,
        _ => {
            return Err(AppError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "the message is accepted but its turn has not finished yet; its answer will be in the conversation",
            ));
        }
    };
    let mut answer = json!({ "messages": out.messages });
    if d.version == "DRAFT" {
        answer["emulator"] = json!({
            "block": out.session["internal"]["currentDialogstate"],
            "waiting": out.waiting,
            "session": out.session,
            "actions": out.actions,
            "errors": out.events.iter().filter_map(|e| e.get("error")).collect::<Vec<_>>(),
            "nlp": out.nlp,
        });
    }
    Ok(Json(answer))
}
