//! `POST /v1/bots/{botId}/conversations/{conversationId}/actions`: send
//! messages as templates, set session data, pause or resume the bot, go to a
//! block. The action waits in the durable inbox for its turn like any
//! message (in order with the conversation's messages, under its lease).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use sandbot_host_api::JsonPath;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::auth::{TenantId, deployment};
use super::templates;
use super::types::{ActionsRequest, ActionsResponse, Page};
use crate::channels::{sinch, webhook};
use crate::flow::turn::postback;
use crate::flow::{Inbound, InboundKind};
use crate::serve::error::AppError;
use crate::serve::inbox::{ANSWER_WITHIN, Job, accept};
use crate::serve::state::{AppState, Deployment};
use crate::store::{Accepted, ConversationState, Delivery, InboxClaim, KeptOutcome, StoreError};

/// A REST conversation action as it waits in the inbox: checked, its
/// templates already messages.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestAction {
    pub messages: Vec<Value>,
    pub postbacks: Vec<(String, Value)>,
    /// (session path, value; null removes).
    pub writes: Vec<(String, Value)>,
    pub pause: Option<bool>,
    pub goto: Option<String>,
    /// Clears the session (keeping `internal`) and any pending input.
    #[serde(default)]
    pub clear_session: bool,
}

pub async fn post(
    State(state): State<Arc<AppState>>,
    Extension(tenant): Extension<TenantId>,
    Path((bot_id, conversation)): Path<(String, String)>,
    Query(page): Query<Page>,
    headers: HeaderMap,
    body: Result<Json<ActionsRequest>, JsonRejection>,
) -> Result<Json<ActionsResponse>, AppError> {
    let d = deployment(&state, &tenant, &bot_id, page.version.as_deref())?;
    let bot = d.bot();
    // A client's retry after a lost answer carries the same key: applied once
    // (per conversation, on any node, for `messageIdDays`).
    let dedupe =
        idempotency_key(&headers)?.map(|key| format!("rest\0{}\0{conversation}\0{key}", d.key));
    let Json(req) = body.map_err(|e| AppError::new(e.status(), e.body_text()))?;
    let mut messages = Vec::new();
    let mut postbacks = Vec::new();
    for (n, t) in req.send_messages.iter().enumerate() {
        let mut m = templates::to_message(t)
            .map_err(|e| AppError::bad_request(format!("sendMessages[{n}]: {e}")))?;
        postbacks.extend(postback::make_opaque(&d.key, &mut m));
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
        writes.push((path.clone(), value.clone()));
    }
    if let Some(target) = &req.go_to_dialogstate
        && bot.find(target).is_none()
    {
        return Err(AppError::bad_request(format!(
            "goToDialogstate: no block `{target}`"
        )));
    }
    let action = RestAction {
        messages,
        postbacks,
        writes,
        pause: req.pause,
        goto: req.go_to_dialogstate,
        clear_session: false,
    };
    run(&state, &d.key, &conversation, action, dedupe)
        .await
        .map(Json)
}

/// The optional `Idempotency-Key` header: at most 256 visible ASCII
/// characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, AppError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key) if (1..=256).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(key))
        }
        _ => Err(AppError::bad_request(
            "`Idempotency-Key` must be 1 to 256 visible ASCII characters",
        )),
    }
}

/// Puts `action` in the conversation's inbox and waits for its outcome;
/// with a `dedupe` key taken before (a client's retry), answers with the
/// first request's outcome, `duplicate: true`.
pub async fn run(
    state: &Arc<AppState>,
    bot_id: &str,
    conversation: &str,
    action: RestAction,
    dedupe: Option<String>,
) -> Result<ActionsResponse, AppError> {
    let Some(now) = state
        .store
        .load(bot_id, conversation)
        .await
        .map_err(AppError::from)?
    else {
        return Err(gone(conversation));
    };
    // With a key, the outcome is kept where the retries look for it.
    let kept = dedupe
        .as_deref()
        .map(|d| format!("rest-{}", hex::encode(Sha256::digest(d))));
    let mut waiting = state.replies.wait();
    let job = Job::Rest {
        conversation: conversation.to_string(),
        action,
        reply: waiting.key.clone(),
        keep: kept.clone(),
    };
    if accept(state, bot_id, dedupe, job).await? == Accepted::Duplicate {
        let first = match &kept {
            Some(k) => first_outcome(state, bot_id, conversation, k).await?,
            None => None,
        };
        let Some(first) = first else {
            // Not kept (its node stopped between the turn and keeping it).
            return Ok(ActionsResponse {
                messages_sent: 0,
                paused: now.paused,
                flow_messages: Vec::new(),
                duplicate: true,
            });
        };
        return response(Some(first), conversation).map(|r| ActionsResponse {
            duplicate: true,
            ..r
        });
    }
    let outcome = waiting.outcome(state.store.as_ref(), ANSWER_WITHIN).await;
    response(outcome, conversation)
}

fn gone(conversation: &str) -> AppError {
    AppError::not_found(format!("no conversation `{conversation}`"))
}

/// The answer to a request whose action had `outcome` (`None`: not within
/// the wait).
fn response(outcome: Option<Value>, conversation: &str) -> Result<ActionsResponse, AppError> {
    match outcome {
        Some(mut v) if v.get("done").is_some() => {
            serde_json::from_value(v["done"].take()).map_err(AppError::internal)
        }
        Some(_) => Err(gone(conversation)),
        None => Err(not_yet()),
    }
}

fn not_yet() -> AppError {
    AppError::new(
        StatusCode::GATEWAY_TIMEOUT,
        "the action is accepted but has not run yet; it will",
    )
}

/// The outcome the first request with a retry's key keeps under `kept`: at
/// once when kept, else awaited while its entry waits or runs (504 when the wait runs
/// out, as the first request's); `None` when it was not kept.
async fn first_outcome(
    state: &AppState,
    bot_id: &str,
    conversation: &str,
    kept: &str,
) -> Result<Option<Value>, AppError> {
    let deadline = tokio::time::Instant::now() + ANSWER_WITHIN;
    // Neither kept nor waiting may be the moment between the turn's commit
    // and the keeping of its outcome: looked at again for a second.
    let mut unknown_until = None;
    loop {
        let found = state
            .store
            .kept_outcome(bot_id, conversation, kept)
            .await
            .map_err(AppError::from)?;
        let now = tokio::time::Instant::now();
        match found {
            KeptOutcome::Outcome(v) => return Ok(Some(v)),
            KeptOutcome::Waiting => unknown_until = None,
            KeptOutcome::Unknown => {
                let until = *unknown_until.get_or_insert(now + Duration::from_secs(1));
                if now >= until {
                    return Ok(None);
                }
            }
        }
        if now >= deadline {
            return Err(not_yet());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Deliveries of `messages` (an agent's, or the flow's after a go-to) on
/// the conversation's own channel: Sinch when its messages came from Sinch,
/// else the bot's webhook channel (the web chat's page asks for them).
pub fn own_channel(
    state: &AppState,
    bot: &str,
    messages: &[Value],
    first_number: u64,
    s: &ConversationState,
) -> Vec<Delivery> {
    let conversation = s.session["internal"]["sessionId"]
        .as_str()
        .unwrap_or_default();
    if let Some((recipient, channel_name)) = sinch::recipient_of(&s.session)
        && let Some((_, channel)) = state.sinch.values().find(|(b, _)| b == bot)
    {
        return sinch::outbound(
            channel,
            messages,
            &recipient,
            &channel_name,
            bot,
            conversation,
        );
    }
    match state.bots.get(bot).and_then(|d| d.webhook.as_ref()) {
        Some(c) => webhook::deliveries(c, messages, first_number, None, s),
        None => Vec::new(),
    }
}

/// Runs a REST action's inbox entry under the conversation's lease: the
/// changes and messages in one commit, then the flow from the block asked
/// for (the entry is done with the last commit). `None` when the
/// conversation is gone.
pub async fn apply(
    state: &AppState,
    d: &Deployment,
    conversation: &str,
    a: RestAction,
    claim: InboxClaim,
) -> Result<Option<ActionsResponse>, StoreError> {
    let bot = d.bot();
    let sent = a.messages.len();
    // Session writes may fire *Variables changed*: a turn then follows, and
    // the last commit marks the entry done.
    let watching = !a.writes.is_empty() && !bot.file.events.variables_changed.is_empty();
    let first = InboxClaim {
        entry: if a.goto.is_some() || watching {
            None
        } else {
            claim.entry
        },
        ..claim
    };
    let messages = a.messages;
    let (writes, pause, clear) = (a.writes, a.pause, a.clear_session);
    let done = d
        .engine
        .update(
            &bot,
            conversation,
            Some(first),
            a.postbacks,
            |s| {
                if clear {
                    let internal = s.session.get("internal").cloned().unwrap_or(json!({}));
                    s.session = json!({ "internal": internal });
                    s.waiting = None;
                }
                let before = bot.watched(&s.session);
                for (path, v) in writes {
                    let Ok(p) = JsonPath::parse(&path) else {
                        continue;
                    };
                    if v.is_null() {
                        p.remove(&mut s.session);
                    } else {
                        let _ = p.set(&mut s.session, v);
                    }
                }
                let fired = bot
                    .first_change(&before, &bot.watched(&s.session))
                    .map(|(k, paths)| (bot.file.events.variables_changed[k].goto.clone(), paths));
                if let Some((_, paths)) = &fired
                    && let Some(root) = s.session.as_object_mut()
                {
                    let events = root.entry("events").or_insert_with(|| json!({}));
                    if events.is_object() {
                        events["variablesChanged"] = json!(paths);
                    }
                }
                s.message_counter += messages.len() as u64;
                if let Some(p) = pause {
                    s.paused = p;
                    if !p {
                        // Resuming hands an offloaded conversation back.
                        s.offload = None;
                    }
                    if let Some(internal) = s.session.get_mut("internal") {
                        internal["isPaused"] = json!(p);
                        if !p {
                            internal["offload"] = Value::Null;
                        }
                    }
                }
                let mut events: Vec<Value> = messages
                    .iter()
                    .map(|m| json!({ "bot": m, "agent": true }))
                    .collect();
                if let Some((_, paths)) = &fired {
                    events.push(json!({"event": {"variablesChanged": paths}}));
                }
                (events, (s.paused, fired.map(|f| f.0)))
            },
            |s| {
                let first_number = s.message_counter + 1 - messages.len() as u64;
                own_channel(state, &d.key, &messages, first_number, s)
            },
        )
        .await?;
    let Some((paused, event)) = done else {
        return Ok(None);
    };
    let mut flow_messages = Vec::new();
    let jumps: Vec<(String, bool)> = match (event, a.goto) {
        (Some(e), Some(g)) => vec![(e, false), (g, true)],
        (Some(e), None) => vec![(e, true)],
        (None, Some(g)) => vec![(g, true)],
        (None, None) => {
            if let (true, Some(id)) = (watching, claim.entry) {
                state.store.inbox_discard(&d.key, conversation, id).await?;
            }
            Vec::new()
        }
    };
    for (target, last) in jumps {
        let mut inbound = Inbound::new(
            conversation,
            "api",
            InboundKind::Goto {
                next: target,
                params: Default::default(),
            },
        );
        inbound.inbox = Some(if last {
            claim
        } else {
            InboxClaim {
                entry: None,
                ..claim
            }
        });
        let out = state
            .turn(d, inbound, |out, s| {
                own_channel(state, &d.key, &out.messages, out.first_message_number, s)
            })
            .await?;
        flow_messages.extend(out.messages);
    }
    Ok(Some(ActionsResponse {
        messages_sent: sent,
        paused,
        flow_messages,
        duplicate: false,
    }))
}
