//! The Sinch Conversation API channel (COMPAT §8). In: signed
//! `MESSAGE_INBOUND` callbacks at `POST /v1/channels/sinch/{id}/callback`
//! (bad signature or stale timestamp → 401; Sinch's retries processed once),
//! `internal.sinchConversationAPI.*` and `internal.channel` set. Out:
//! `messages:send` with an OAuth token (`oauth.rs`), through the durable outbox.

pub mod oauth;
pub mod render;
pub mod signature;

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};

use crate::flow::{Inbound, InboundKind};
use crate::serve::config::SinchChannel;
use crate::serve::error::AppError;
use crate::serve::inbox::{Job, accept};
use crate::serve::state::AppState;
use crate::store::{Accepted, Delivery, Store, now_ms};

pub async fn callback(
    State(state): State<Arc<AppState>>,
    Path(channel_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let (bot_id, channel) = state
        .sinch
        .get(&channel_id)
        .cloned()
        .ok_or_else(|| AppError::not_found(format!("no sinch channel `{channel_id}`")))?;
    if let Some(secret) = &channel.webhook_secret {
        signature::verify(secret, &headers, &body, now_ms() / 1000)
            .map_err(|e| AppError::new(StatusCode::UNAUTHORIZED, e))?;
    }
    let (inbound, id, recipient, channel_name) = match parse_callback(&body)? {
        Callback::Ignored => {
            return Ok((
                StatusCode::OK,
                Json(json!({"ignored": "not an inbound message"})),
            ));
        }
        Callback::AgentEvent(event) => {
            // Sinch's retries of the same callback are processed once.
            let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body));
            let dedupe = Some(format!("sinch-event\0{channel_id}\0{digest}"));
            let job = Job::AgentEvent {
                conversation: event.conversation,
                kind: event.kind,
                agent: event.agent,
            };
            accept(&state, &bot_id, dedupe, job).await?;
            return Ok((StatusCode::OK, Json(json!({"accepted": true}))));
        }
        Callback::Message {
            inbound,
            id,
            recipient,
            channel_name,
        } => (inbound, id, recipient, channel_name),
    };
    let job = Job::Sinch {
        channel_id: channel_id.clone(),
        inbound: *inbound,
        recipient,
        channel_name,
    };
    let dedupe = Some(format!("sinch\0{channel_id}\0{id}"));
    if accept(&state, &bot_id, dedupe, job).await? == Accepted::Duplicate {
        return Ok((StatusCode::OK, Json(json!({"duplicate": true}))));
    }
    Ok((StatusCode::OK, Json(json!({"accepted": true}))))
}

/// What a Sinch callback body asks for.
pub enum Callback {
    /// Not an inbound message (delivery reports, other events): answered 200.
    Ignored,
    /// Sinch Contact Pro's agent joined or left, or the conversation stopped.
    AgentEvent(crate::channels::offloading::contact_pro::AgentEvent),
    Message {
        inbound: Box<Inbound>,
        /// Sinch's message id: its retries are processed once.
        id: String,
        recipient: Value,
        channel_name: String,
    },
}

/// Reads a callback body (after its signature is checked).
pub fn parse_callback(body: &[u8]) -> Result<Callback, AppError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| AppError::bad_request(format!("invalid JSON: {e}")))?;
    if let Some(event) = crate::channels::offloading::contact_pro::agent_event(&v) {
        return Ok(Callback::AgentEvent(event));
    }
    let message = match v.get("message") {
        Some(m) if m["direction"] == "TO_APP" => m,
        _ => return Ok(Callback::Ignored),
    };
    let id = message["id"]
        .as_str()
        .ok_or_else(|| AppError::bad_request("`message.id` is required"))?;
    let conversation = message["conversation_id"]
        .as_str()
        .or_else(|| message["contact_id"].as_str())
        .ok_or_else(|| {
            AppError::bad_request("`message.conversation_id` or `message.contact_id` is required")
        })?
        .to_string();
    let kind = contact_message(&message["contact_message"])?;
    let ident = &message["channel_identity"];
    let channel_name = ident["channel"]
        .as_str()
        .unwrap_or("CHANNEL_UNSPECIFIED")
        .to_string();
    let metadata = match message["metadata"].as_str() {
        Some(m) => serde_json::from_str::<Value>(m)
            .ok()
            .filter(Value::is_object)
            .unwrap_or(json!(m)),
        None => message.get("metadata").cloned().unwrap_or(json!("")),
    };
    let sinch = json!({
        "channelIdentifier": channel_name,
        "channelIdentity": ident["identity"],
        "contactId": message["contact_id"],
        "appId": v.get("app_id").or_else(|| ident.get("app_id")).cloned().unwrap_or(Value::Null),
        "conversationId": message["conversation_id"],
        "metadata": metadata,
    });
    let recipient = recipient(
        message["contact_id"].as_str(),
        &channel_name,
        &ident["identity"],
    );
    let mut inbound = Inbound::new(&conversation, "sinchConversationAPI", kind);
    inbound.internal = Map::from_iter([("sinchConversationAPI".to_string(), sinch)]);
    Ok(Callback::Message {
        inbound: Box::new(inbound),
        id: id.to_string(),
        recipient,
        channel_name,
    })
}

/// `contact_message` → what the user did.
fn contact_message(m: &Value) -> Result<InboundKind, AppError> {
    if let Some(t) = m.get("text_message") {
        return Ok(InboundKind::Text {
            text: t["text"].as_str().unwrap_or_default().to_string(),
        });
    }
    if let Some(c) = m.get("choice_response_message") {
        let payload = c["postback_data"].as_str().ok_or_else(|| {
            AppError::bad_request("`choice_response_message.postback_data` is required")
        })?;
        return Ok(InboundKind::Postback {
            title: None,
            payload: payload.to_string(),
        });
    }
    if let Some(media) = m.get("media_message") {
        return Ok(InboundKind::Upload {
            url: media["url"].as_str().unwrap_or_default().to_string(),
        });
    }
    if let Some(l) = m.get("location_message") {
        let c = &l["coordinates"];
        return Ok(InboundKind::Location {
            latitude: c["latitude"].as_f64().unwrap_or_default(),
            longitude: c["longitude"].as_f64().unwrap_or_default(),
        });
    }
    if m.get("fallback_message").is_some() {
        return Ok(InboundKind::Text {
            text: String::new(),
        });
    }
    Err(AppError::bad_request(
        "`contact_message` must hold text_message, choice_response_message, media_message, location_message or fallback_message",
    ))
}

/// On channels with plain-text choices, a reply `N` picks the N-th numbered
/// choice of the bot's last answer.
pub async fn numbered_reply(
    store: &dyn Store,
    bot: &str,
    conversation: &str,
    channel: &str,
    kind: InboundKind,
) -> InboundKind {
    let InboundKind::Text { text } = &kind else {
        return kind;
    };
    let Ok(n) = text.trim().trim_end_matches('.').parse::<usize>() else {
        return kind;
    };
    if !render::plain_only(channel) || n == 0 {
        return kind;
    }
    let Ok(Some(state)) = store.load(bot, conversation).await else {
        return kind;
    };
    let from = state.transcript_len.saturating_sub(50);
    let Ok(entries) = store.transcript(bot, conversation, from, 50).await else {
        return kind;
    };
    let last_user = entries
        .iter()
        .rposition(|e| e.event.get("user").is_some())
        .map_or(0, |i| i + 1);
    let shown: Vec<Value> = entries[last_user..]
        .iter()
        .filter_map(|e| e.event.get("bot").cloned())
        .collect();
    match render::numbered_payloads(&shown).get(n - 1) {
        Some(Some(payload)) => InboundKind::Postback {
            title: Some(text.clone()),
            payload: payload.clone(),
        },
        _ => kind,
    }
}

/// Where a conversation's later messages (an agent's, a REST go-to's) go
/// on Sinch: the recipient and channel its last inbound message came from,
/// kept in `internal.sinchConversationAPI`.
pub fn recipient_of(session: &Value) -> Option<(Value, String)> {
    let sinch = session["internal"].get("sinchConversationAPI")?;
    let channel = sinch["channelIdentifier"].as_str()?.to_string();
    let to = recipient(
        sinch["contactId"].as_str(),
        &channel,
        &sinch["channelIdentity"],
    );
    Some((to, channel))
}

/// The contact, or else the channel identity.
fn recipient(contact: Option<&str>, channel: &str, identity: &Value) -> Value {
    match contact {
        Some(c) => json!({"contact_id": c}),
        None => {
            json!({"identified_by": {"channel_identities": [{"channel": channel, "identity": identity}]}})
        }
    }
}

/// One `messages:send` per bot message.
pub fn outbound(
    channel: &SinchChannel,
    messages: &[Value],
    recipient: &Value,
    channel_name: &str,
    bot: &str,
    conversation: &str,
) -> Vec<Delivery> {
    let url = format!(
        "{}/v1/projects/{}/messages:send",
        channel.api_url().trim_end_matches('/'),
        channel.project_id
    );
    messages
        .iter()
        .map(|m| render::render(m, channel_name))
        .filter(|rendered| rendered["text_message"]["text"] != "")
        .map(|rendered| Delivery {
            id: 0,
            bot: bot.to_string(),
            conversation: conversation.to_string(),
            url: url.clone(),
            headers: Vec::new(),
            auth: Some(channel.id.clone()),
            body: json!({"app_id": channel.app_id, "recipient": recipient, "message": rendered}),
            attempts: 0,
            not_before_ms: 0,
        })
        .collect()
}
