//! `GET /v1/channels/web/{botId}/messages[?after=CURSOR]`: the conversation
//! so far, for a page that was reloaded (or a widget opened again): what the
//! visitor said and the bot's messages, from the transcript of the session
//! token's conversation only. With `after`, only what came after that
//! cursor: the page asks so while an agent has the conversation (`paused`),
//! and shows the agent's messages as they come.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::web::{cors, visitor, web_bot};
use crate::serve::error::AppError;
use crate::serve::state::AppState;

/// Transcript entries a page gets back, at most (the latest).
const HISTORY: u64 = 200;

#[derive(serde::Deserialize)]
pub struct After {
    after: Option<u64>,
}

pub async fn history(
    State(state): State<Arc<AppState>>,
    Path(bot_id): Path<String>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Query(q): Query<After>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let d = web_bot(&state, &bot_id)?;
    let bot_id = d.key.clone();
    let web = d.web.as_ref().expect("web_bot checked");
    let claims = visitor(&state, web, &bot_id, client, &headers).await?;
    let conversation = state
        .store
        .load(&bot_id, &claims.c)
        .await
        .map_err(AppError::from)?;
    let len = conversation.as_ref().map_or(0, |s| s.transcript_len);
    let paused = conversation.as_ref().is_some_and(|s| s.paused);
    let wake = crate::serve::inbox::wake_in(conversation.as_ref().and_then(|s| s.silence_due_ms));
    let from = len.saturating_sub(HISTORY).max(q.after.unwrap_or(0));
    let events = state
        .store
        .transcript(&bot_id, &claims.c, from, HISTORY as usize)
        .await
        .map_err(AppError::from)?;
    let messages: Vec<Value> = events.iter().filter_map(|e| shown(&e.event)).collect();
    let mut response = Json(json!({
        "conversationId": claims.c,
        "messages": messages,
        "cursor": events.last().map_or(len, |e| (e.seq + 1).max(len)),
        "paused": paused,
        "wakeInMs": wake,
    }))
    .into_response();
    cors(web, &headers, &mut response);
    Ok(response)
}

/// A transcript event as the page shows it: `{from: "bot", message}` or
/// `{from: "user", text}`; nothing for what the visitor did not see (the
/// introduction, jumps).
fn shown(event: &Value) -> Option<Value> {
    if let Some(m) = event.get("bot") {
        return Some(json!({"from": "bot", "message": m}));
    }
    let text = match event.get("user")? {
        Value::String(text) => text.clone(),
        user => {
            if let Some(title) = user.get("postback").and_then(Value::as_str) {
                title.to_string()
            } else if let Some(url) = user.get("upload").and_then(Value::as_str) {
                format!("📎 {url}")
            } else if let Some(at) = user.get("location") {
                format!("📍 {}, {}", at["latitude"], at["longitude"])
            } else {
                return None;
            }
        }
    };
    Some(json!({"from": "user", "text": text}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_page_shows_again() {
        let bot = json!({"type": "text", "config": {"textMessages": [{"text": "Hi"}]}});
        assert_eq!(
            shown(&json!({ "bot": bot })),
            Some(json!({"from": "bot", "message": bot}))
        );
        assert_eq!(
            shown(&json!({"user": "june"})),
            Some(json!({"from": "user", "text": "june"}))
        );
        assert_eq!(
            shown(&json!({"user": {"postback": "Find a meetup"}})),
            Some(json!({"from": "user", "text": "Find a meetup"}))
        );
        assert_eq!(shown(&json!({"user": {"intro": true}})), None);
        assert_eq!(shown(&json!({"user": {"goto": "x"}})), None);
        assert_eq!(shown(&json!({"error": {}})), None);
    }
}
