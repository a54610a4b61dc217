//! Chatlayer's webhook channel (COMPAT §6). In: `POST
//! /v1/channels/webhook/{channelId}/messages` with the tenant's bearer token,
//! answered at once and processed in the background, in order per
//! conversation. Out: one POST per bot message to the channel's URL, queued
//! durably with the turn and retried (see `delivery`).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};

use super::messenger;
use crate::flow::{Inbound, InboundKind, TurnOutput, UserInfo};
use crate::serve::config::WebhookChannel;
use crate::serve::error::AppError;
use crate::serve::inbox::{Job, accept};
use crate::serve::state::AppState;
use crate::store::{Accepted, ConversationState, Delivery};

/// `Authorization: Bearer <token>`.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

pub async fn inbound(
    State(state): State<Arc<AppState>>,
    Path(channel_id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    // An unknown channel and a wrong token answer alike: channel ids cannot
    // be found out by probing (they used to be 404 against 401).
    let bot_id = state
        .webhooks
        .get(&channel_id)
        .map(|(bot, _)| bot.clone())
        .filter(|bot| state.authorized(bot, bearer(&headers)))
        .ok_or_else(|| {
            AppError::new(
                StatusCode::UNAUTHORIZED,
                "unknown webhook channel, or a missing or invalid bearer token for it (Authorization: Bearer <token>)",
            )
        })?;
    let Json(body) = body.map_err(|e| AppError::new(e.status(), e.body_text()))?;
    let inbound = parse(&body)?;
    let conversation = inbound.conversation.clone();
    if conversation.starts_with(super::web_session::PREFIX) {
        return Err(AppError::bad_request(format!(
            "conversation ids starting with `{}` belong to the web chat",
            super::web_session::PREFIX
        )));
    }
    let dedupe = message_id(&body)?.map(|id| format!("webhook\0{channel_id}\0{id}"));
    let job = Job::Webhook {
        channel_id,
        inbound,
    };
    let accepted = accept(&state, &bot_id, dedupe, job).await?;
    let mut answer = json!({ "accepted": true, "conversationId": conversation });
    if accepted == Accepted::Duplicate {
        answer["duplicate"] = json!(true);
    }
    Ok((StatusCode::ACCEPTED, Json(answer)))
}

/// The body's optional `messageId`: a message sent again with the same id
/// (the sender's retry after a lost answer) is a duplicate, accepted once.
pub fn message_id(body: &Value) -> Result<Option<&str>, AppError> {
    match &body["messageId"] {
        Value::Null => Ok(None),
        Value::String(id) if !id.is_empty() && id.len() <= 256 => Ok(Some(id)),
        _ => Err(AppError::bad_request(
            "`messageId` must be a non-empty string of at most 256 characters",
        )),
    }
}

/// The inbound body: `conversationId` (or `user.id`), one of `textMessage`,
/// `introMessage`, `postbackMessage` (under `message` or at the top level),
/// optional `sessionData` (and `messageId`, read by the channel).
pub fn parse(body: &Value) -> Result<Inbound, AppError> {
    let user = body.get("user");
    let conversation = body["conversationId"]
        .as_str()
        .or_else(|| user.and_then(|u| u["id"].as_str()))
        .filter(|c| !c.is_empty())
        .ok_or_else(|| AppError::bad_request("`conversationId` (or `user.id`) is required"))?;
    let message = body.get("message").unwrap_or(body);
    let kind = if let Some(t) = message.get("textMessage") {
        let text = t["text"]
            .as_str()
            .ok_or_else(|| AppError::bad_request("`textMessage.text` must be a string"))?;
        InboundKind::Text {
            text: text.to_string(),
        }
    } else if message.get("introMessage").is_some() {
        InboundKind::Intro
    } else if let Some(p) = message.get("postbackMessage") {
        postback(p)?
    } else {
        return Err(AppError::bad_request(
            "expected `message.textMessage`, `message.introMessage` or `message.postbackMessage`",
        ));
    };
    let mut inbound = Inbound::new(conversation, "webHook", kind);
    if let Some(data) = body.get("sessionData") {
        inbound.session_data = data
            .as_object()
            .cloned()
            .ok_or_else(|| AppError::bad_request("`sessionData` must be an object"))?;
    }
    if let Some(u) = user {
        inbound.user = Some(UserInfo {
            first_name: u["firstName"].as_str().map(str::to_string),
            last_name: u["lastName"].as_str().map(str::to_string),
            preferred_language: u["preferredLanguage"].as_str().map(str::to_string),
            locale: u["locale"].as_str().map(str::to_string),
        });
    }
    Ok(inbound)
}

fn postback(p: &Value) -> Result<InboundKind, AppError> {
    if let Some(next) = p["nextDialogstateId"].as_str() {
        // Session values to set: `sessionDataToSet` or (as in button
        // payloads) `params`; `[{key, value}]` or an object.
        let mut params = Map::new();
        for field in ["sessionDataToSet", "params"] {
            match &p[field] {
                Value::Array(items) => {
                    for i in items {
                        let k = i["key"].as_str().ok_or_else(|| {
                            AppError::bad_request(format!(
                                "`postbackMessage.{field}` items need a string `key` (and a `value`)"
                            ))
                        })?;
                        params.insert(k.to_string(), i["value"].clone());
                    }
                }
                Value::Object(m) => params.extend(m.clone()),
                Value::Null => {}
                _ => {
                    return Err(AppError::bad_request(format!(
                        "`postbackMessage.{field}` must be a list of {{key, value}} or an object"
                    )));
                }
            }
        }
        return Ok(InboundKind::Goto {
            next: next.to_string(),
            params,
        });
    }
    let payload = match &p["payload"] {
        Value::String(s) => s.clone(),
        Value::Null => {
            return Err(AppError::bad_request(
                "`postbackMessage` needs `payload` or `nextDialogstateId`",
            ));
        }
        other => other.to_string(),
    };
    Ok(InboundKind::Postback {
        title: p["title"].as_str().map(str::to_string),
        payload,
    })
}

/// One delivery per bot message, in the Messenger-like format.
pub fn outbound(
    channel: &WebhookChannel,
    out: &TurnOutput,
    state: &ConversationState,
) -> Vec<Delivery> {
    let intent = out
        .nlp
        .as_ref()
        .and_then(|a| a.intent.as_ref())
        .map(|i| json!({"name": i.name, "score": i.score}));
    deliveries(
        channel,
        &out.messages,
        out.first_message_number,
        intent,
        state,
    )
}

/// Deliveries for `messages`, numbered from `first_number`.
pub fn deliveries(
    channel: &WebhookChannel,
    messages: &[Value],
    first_number: u64,
    intent: Option<Value>,
    state: &ConversationState,
) -> Vec<Delivery> {
    let Some(url) = &channel.url else {
        return Vec::new();
    };
    let conversation = state.session["internal"]["sessionId"]
        .as_str()
        .unwrap_or_default();
    let bot = crate::flow::session_key(&state.session);
    let intent = intent.unwrap_or(json!({"name": null, "score": 0}));
    // A message with nothing to show as text (an empty `addHtml`) is not
    // sent; the others keep their numbers.
    messages
        .iter()
        .enumerate()
        .map(|(n, m)| (n, messenger::render(m)))
        .filter(|(_, rendered)| !messenger::is_empty(rendered))
        .map(|(n, rendered)| Delivery {
            id: 0,
            bot: bot.clone(),
            conversation: conversation.to_string(),
            url: url.clone(),
            headers: Vec::new(),
            auth: None,
            body: json!({
                "senderId": conversation,
                "recipient": {"id": conversation},
                "verifyToken": channel.verify_token,
                "messageCounter": first_number + n as u64,
                "message": rendered,
                "nlp": {"intent": intent},
            }),
            attempts: 0,
            not_before_ms: 0,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbound_bodies_and_their_errors() {
        let p = |v: Value| parse(&v);
        let i = p(json!({"conversationId": "c", "message": {"textMessage": {"text": "hi"}}, "sessionData": {"a": 1}})).unwrap();
        assert_eq!(i.kind, InboundKind::Text { text: "hi".into() });
        assert_eq!(i.session_data["a"], 1);
        assert_eq!(
            p(json!({"conversationId": "c", "introMessage": {}}))
                .unwrap()
                .kind,
            InboundKind::Intro
        );
        let i = p(json!({"user": {"id": "u1", "firstName": "Ada", "preferredLanguage": "nl"}, "message": {"postbackMessage": {"title": "Yes", "payload": "pb_x"}}})).unwrap();
        assert_eq!(i.conversation, "u1");
        assert_eq!(i.user.unwrap().preferred_language.as_deref(), Some("nl"));
        let i = p(json!({"conversationId": "c", "message": {"postbackMessage": {"nextDialogstateId": "b", "sessionDataToSet": [{"key": "k", "value": 2}]}}})).unwrap();
        assert!(
            matches!(i.kind, InboundKind::Goto { ref next, ref params } if next == "b" && params["k"] == 2)
        );
        // `params` as in button payloads (they used to be dropped).
        let i = p(json!({"conversationId": "c", "postbackMessage": {"nextDialogstateId": "b", "params": [{"key": "size", "value": "L"}]}})).unwrap();
        assert!(matches!(i.kind, InboundKind::Goto { ref params, .. } if params["size"] == "L"));
        let bad = p(
            json!({"conversationId": "c", "postbackMessage": {"nextDialogstateId": "b", "params": "size=L"}}),
        );
        assert!(
            bad.unwrap_err()
                .message
                .contains("`postbackMessage.params` must be a list")
        );
        let bad = p(
            json!({"conversationId": "c", "postbackMessage": {"nextDialogstateId": "b", "params": [{"value": 1}]}}),
        );
        assert!(bad.unwrap_err().message.contains("need a string `key`"));
        for (bad, why) in [
            (
                json!({"message": {"textMessage": {"text": "x"}}}),
                "conversationId",
            ),
            (
                json!({"conversationId": "c", "message": {}}),
                "expected `message.textMessage`",
            ),
            (
                json!({"conversationId": "c", "message": {"textMessage": {"text": 3}}}),
                "must be a string",
            ),
            (
                json!({"conversationId": "c", "introMessage": {}, "sessionData": []}),
                "must be an object",
            ),
        ] {
            let e = p(bad).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            assert!(e.message.contains(why), "{}", e.message);
        }
    }
}
