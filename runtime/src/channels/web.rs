//! The web chat: a page at `/chat/{botId}` for people to talk to a bot in the
//! browser. `POST /v1/channels/web/{botId}/sessions` issues a conversation
//! and its signed token (`web_session`); `POST …/messages` with that token
//! accepts a message into the durable inbox, waits for its turn and answers
//! with the bot's messages. A visitor reaches only the token's conversation,
//! may click only buttons the bot showed there, and is rate-limited per
//! address and conversation; other sites only if the bot lists them. For
//! DRAFT bots, with the tenant's token (`X-Sandbot-Tenant-Token`), the answer
//! carries the emulator panel's data: block, session, each action's outcome.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::web_session::{self, Claims};
use super::webhook::{bearer, message_id, parse};
use crate::flow::turn::postback;
use crate::flow::{Inbound, InboundKind};
use crate::serve::config::{RateLimit, WebChannel};
use crate::serve::error::AppError;
use crate::serve::inbox::{ANSWER_WITHIN, Job, accept, random_id};
use crate::serve::state::{AppState, Deployment};
use crate::store::Accepted;
use crate::store::now_ms;

const PAGE: &str = include_str!("web_chat.html");

/// Characters in one visitor's message, at most (a person types less; the
/// NLP reads no more).
pub const MAX_TEXT_CHARS: usize = crate::flow::understand::nlp::MAX_NLP_CHARS;
const WIDGET: &str = include_str!("widget.js");

/// `GET /widget.js`: the embeddable launcher (see the README).
pub async fn widget() -> impl IntoResponse {
    (
        [
            ("content-type", "text/javascript; charset=utf-8"),
            ("cache-control", "public, max-age=300"),
        ],
        WIDGET,
    )
}

/// The web chat of `bot_ref` (`shop`: LIVE when deployed, else DRAFT;
/// `shop@DRAFT`: that version).
pub(super) fn web_bot<'s>(state: &'s AppState, bot_ref: &str) -> Result<&'s Deployment, AppError> {
    web_bot_on(state, bot_ref, None)
}

fn web_bot_on<'s>(
    state: &'s AppState,
    bot_ref: &str,
    version: Option<&str>,
) -> Result<&'s Deployment, AppError> {
    let with_web = |v: Option<&str>| state.resolve(bot_ref, v).ok().filter(|d| d.web.is_some());
    with_web(version)
        // A bot whose LIVE has no web chat: its DRAFT's.
        .or_else(|| version.is_none().then(|| with_web(Some("DRAFT"))).flatten())
        .ok_or_else(|| AppError::not_found(format!("no web chat for bot `{bot_ref}`")))
}

/// `GET /`: a page linking the web chats this server offers.
pub async fn index(State(state): State<Arc<AppState>>) -> Html<String> {
    let clean = |s: &str| s.replace(['<', '>', '&', '"'], "");
    let mut bots: Vec<(String, String)> = state
        .bots
        .iter()
        .filter(|(_, d)| d.web.is_some())
        .map(|(key, d)| {
            let name = clean(&d.bot().file.name);
            let id = clean(&d.id);
            // DRAFT beside a LIVE web chat: named apart.
            if key.contains('@') && state.bots.get(&d.id).is_some_and(|l| l.web.is_some()) {
                (format!("{id}?version=DRAFT"), format!("{name} (DRAFT)"))
            } else {
                (id, name)
            }
        })
        .collect();
    bots.sort();
    let items: String = bots
        .iter()
        .map(|(href, name)| format!("<li><a href=\"/chat/{href}\">{name}</a></li>"))
        .collect();
    Html(format!(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Sandbot</title>\
         <body style=\"font-family:system-ui,sans-serif;margin:40px\"><h1>Sandbot</h1>\
         <p>Web chats on this server:</p><ul>{items}</ul></body></html>"
    ))
}

/// The chat page; other sites may frame it only when the bot lists them.
pub async fn page(
    State(state): State<Arc<AppState>>,
    Path(bot_id): Path<String>,
    axum::extract::Query(query): axum::extract::Query<crate::api::types::VersionQuery>,
) -> Result<Response, AppError> {
    let d = web_bot_on(&state, &bot_id, query.version.as_deref())?;
    // The page's requests name the same deployment.
    let bot_id = match query.version {
        Some(_) => d.key.clone(),
        None => bot_id,
    };
    let web = d.web.as_ref().expect("web_bot checked");
    let name = d.bot().file.name.replace(['<', '>', '&', '"'], "");
    let ancestors = if web.origins.iter().any(|o| o == "*") {
        "*".to_string()
    } else {
        std::iter::once("'self'")
            .chain(web.origins.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let csp = format!("frame-ancestors {ancestors}");
    let page = Html(
        PAGE.replace("{{BOT_ID}}", &bot_id)
            .replace("{{BOT_NAME}}", &name)
            .replace(
                "{{DRAFT}}",
                if d.version == "DRAFT" {
                    "true"
                } else {
                    "false"
                },
            ),
    );
    let mut response = page.into_response();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        response.headers_mut().insert("content-security-policy", v);
    }
    Ok(response)
}

/// Web session requests per client address and minute.
const SESSIONS_PER_ADDRESS: u32 = 30;
/// Web messages per client address and minute.
const MESSAGES_PER_ADDRESS: u32 = 120;
/// Web messages per conversation and minute.
const MESSAGES_PER_CONVERSATION: u32 = 30;

/// Counts a request against `key`'s window of `requests` a minute; 429 with
/// `Retry-After` once it is spent.
async fn limit(state: &AppState, key: String, requests: u32, what: &str) -> Result<(), AppError> {
    let now = now_ms() / 1000;
    let limit = RateLimit {
        requests,
        seconds: 60,
    };
    let rate = state
        .rate
        .count(state.store.as_ref(), &key, limit, now)
        .await;
    if rate.allowed {
        return Ok(());
    }
    Err(AppError::too_many(
        format!("too many web chat requests {what} ({requests} a minute); retry later"),
        rate.reset.saturating_sub(now).max(1),
    ))
}

/// Refuses a call from a site the bot does not list (the server's own
/// pages always may call).
fn check_origin(web: &WebChannel, headers: &HeaderMap) -> Result<(), AppError> {
    let Some(origin) = headers.get("origin").and_then(|o| o.to_str().ok()) else {
        return Ok(());
    };
    let host = headers.get("host").and_then(|h| h.to_str().ok());
    let same = host.is_some_and(|h| {
        origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            == Some(h)
    });
    if same || web.origins.iter().any(|o| o == origin || o == "*") {
        return Ok(());
    }
    Err(AppError::new(
        StatusCode::FORBIDDEN,
        format!("origin `{origin}` may not use this bot's web chat (not in its `origins`)"),
    ))
}

/// CORS headers for a listed origin.
pub(super) fn cors(web: &WebChannel, headers: &HeaderMap, response: &mut Response) {
    if let Some(origin) = headers.get("origin")
        && web
            .origins
            .iter()
            .any(|o| o == "*" || o.as_bytes() == origin.as_bytes())
    {
        let h = response.headers_mut();
        h.insert("access-control-allow-origin", origin.clone());
        h.insert("vary", HeaderValue::from_static("origin"));
    }
}

/// The CORS preflight of the web endpoints, for the origins the bot lists.
pub async fn preflight(
    State(state): State<Arc<AppState>>,
    Path(bot_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let d = web_bot(&state, &bot_id)?;
    let web = d.web.as_ref().expect("web_bot checked");
    check_origin(web, &headers)?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    cors(web, &headers, &mut response);
    let h = response.headers_mut();
    h.insert(
        "access-control-allow-methods",
        HeaderValue::from_static("GET, POST"),
    );
    h.insert(
        "access-control-allow-headers",
        HeaderValue::from_static("content-type, authorization, x-sandbot-tenant-token"),
    );
    h.insert("access-control-max-age", HeaderValue::from_static("600"));
    Ok(response)
}

/// A session token for `conversation`, valid for the channel's session hours.
fn session_token(
    state: &AppState,
    web: &WebChannel,
    bot: &str,
    conversation: &str,
    data: Map<String, Value>,
) -> (String, u64) {
    let expires = now_ms() / 1000 + web.session_hours * 3600;
    let claims = Claims {
        b: bot.to_string(),
        c: conversation.to_string(),
        e: expires,
        d: data,
    };
    (web_session::issue(&state.web_key, &claims), expires)
}

/// `POST /v1/channels/web/{botId}/sessions`: a new web conversation (its id
/// issued here) and its token; with `{"token": JWT}` from the embedding
/// page's server, the conversation of that page's user, with its session data.
pub async fn session(
    State(state): State<Arc<AppState>>,
    Path(bot_id): Path<String>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Result<Response, AppError> {
    let d = web_bot(&state, &bot_id)?;
    let bot_id = d.key.clone();
    let web = d.web.as_ref().expect("web_bot checked");
    check_origin(web, &headers)?;
    limit(
        &state,
        format!("web-session\0{}", client.ip()),
        SESSIONS_PER_ADDRESS,
        "from this address",
    )
    .await?;
    let embed = body
        .as_ref()
        .and_then(|Json(b)| b.get("token"))
        .and_then(Value::as_str);
    let (conversation, data) = match embed {
        None => (
            format!("{}{}", web_session::PREFIX, random_id(16)),
            Map::new(),
        ),
        Some(jwt) => {
            let secret = web.secret.as_ref().ok_or_else(|| {
                AppError::bad_request(
                    "this bot's web chat has no `secret`: embed tokens cannot be checked",
                )
            })?;
            // A JWT (header.payload.signature), else Chatlayer's encrypted token.
            let check = if jwt.contains('.') {
                web_session::verify_jwt
            } else {
                web_session::decrypt_token
            };
            let e = check(secret.as_bytes(), jwt, now_ms() / 1000)
                .map_err(|e| AppError::new(StatusCode::UNAUTHORIZED, e))?;
            let id = hex::encode(&Sha256::digest(e.session_id.as_bytes())[..16]);
            (format!("{}u{id}", web_session::PREFIX), e.session)
        }
    };
    let (token, expires) = session_token(&state, web, &bot_id, &conversation, data);
    let mut response = (
        StatusCode::CREATED,
        Json(json!({"conversationId": conversation, "session": token, "expiresAt": expires})),
    )
        .into_response();
    cors(web, &headers, &mut response);
    Ok(response)
}

/// Whether `payload` is a button the bot showed in this conversation (the
/// public channel accepts nothing else).
async fn issued(
    state: &AppState,
    bot: &str,
    conversation: &str,
    payload: &str,
) -> Result<bool, AppError> {
    if !postback::is_id(payload) {
        return Ok(false);
    }
    let Some(s) = state
        .store
        .load(bot, conversation)
        .await
        .map_err(AppError::from)?
    else {
        return Ok(false);
    };
    let quoted = format!("\"{payload}\"");
    let recent = state
        .store
        .transcript(bot, conversation, s.transcript_len.saturating_sub(200), 200)
        .await
        .map_err(AppError::from)?;
    Ok(recent
        .iter()
        .filter_map(|e| e.event.get("bot"))
        .any(|m| m.to_string().contains(&quoted)))
}

/// The visitor's conversation (from the session token), once the origin
/// is allowed and the address is within its rate.
pub(super) async fn visitor(
    state: &AppState,
    web: &WebChannel,
    bot_id: &str,
    client: SocketAddr,
    headers: &HeaderMap,
) -> Result<Claims, AppError> {
    check_origin(web, headers)?;
    let token = bearer(headers).ok_or_else(|| {
        AppError::new(
            StatusCode::UNAUTHORIZED,
            "a web session token is required (Authorization: Bearer <session>, from POST /v1/channels/web/{botId}/sessions)",
        )
    })?;
    let claims = web_session::verify(&state.web_key, bot_id, token, now_ms() / 1000)
        .map_err(|e| AppError::new(StatusCode::UNAUTHORIZED, e))?;
    limit(
        state,
        format!("web-message\0{}", client.ip()),
        MESSAGES_PER_ADDRESS,
        "from this address",
    )
    .await?;
    Ok(claims)
}

/// A visitor's message body, for the conversation their session token names:
/// another conversation id, an over-long text or a jump to a block
/// (`nextDialogstateId`) is refused. (Whether a postback's payload was shown
/// in this conversation is checked against the store afterwards.)
pub fn visitor_inbound(mut body: Value, conversation: &str) -> Result<Inbound, AppError> {
    // Found by fuzzing: a body that is JSON but not an object (`"x"`, `[1]`)
    // made the assignment below panic.
    if !body.is_object() {
        return Err(AppError::bad_request("the body must be a JSON object"));
    }
    match body.get("conversationId").and_then(Value::as_str) {
        Some(c) if c != conversation => {
            return Err(AppError::new(
                StatusCode::FORBIDDEN,
                "this session token belongs to another conversation",
            ));
        }
        _ => {}
    }
    body["conversationId"] = json!(conversation);
    let inbound = parse(&body)?;
    match &inbound.kind {
        InboundKind::Text { text } if text.chars().count() > MAX_TEXT_CHARS => {
            Err(AppError::bad_request(format!(
                "a web chat message has at most {MAX_TEXT_CHARS} characters"
            )))
        }
        InboundKind::Goto { .. } => Err(AppError::bad_request(
            "the web chat takes only the payload of a button the bot showed (no `nextDialogstateId`)",
        )),
        _ => Ok(inbound),
    }
}

pub async fn message(
    State(state): State<Arc<AppState>>,
    Path(bot_id): Path<String>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, AppError> {
    let d = web_bot(&state, &bot_id)?;
    let bot_id = d.key.clone();
    let web = d.web.as_ref().expect("web_bot checked");
    let claims = visitor(&state, web, &bot_id, client, &headers).await?;
    limit(
        &state,
        format!("web-conversation\0{bot_id}\0{}", claims.c),
        MESSAGES_PER_CONVERSATION,
        "in this conversation",
    )
    .await?;
    let Json(body) = body.map_err(|e| AppError::new(e.status(), e.body_text()))?;
    // The page sends each message with an id of its own, the same when it
    // sends it again: a retry after a lost answer is not a second message.
    // (Per conversation: a visitor's ids cannot touch another's messages.)
    let dedupe = message_id(&body)?.map(|id| format!("web\0{bot_id}\0{}\0{id}", claims.c));
    let mut inbound = visitor_inbound(body, &claims.c)?;
    if let InboundKind::Postback { payload, .. } = &inbound.kind
        && !issued(&state, &bot_id, &claims.c, payload).await?
    {
        return Err(AppError::bad_request(
            "the web chat takes only the payload of a button the bot showed in this conversation",
        ));
    }
    inbound.channel = "web".into();
    // People in a browser set no session data; the embedding site's server may.
    inbound.session_data = claims.d.clone();
    let mut waiting = state.replies.wait();
    let job = Job::Web {
        inbound,
        reply: waiting.key.clone(),
    };
    let (session, expires) = session_token(&state, web, &bot_id, &claims.c, claims.d);
    if accept(&state, &bot_id, dedupe, job).await? == Accepted::Duplicate {
        // The first copy's answer went to the request that sent it; what the
        // bot said is in the conversation (`GET …/messages?after=`).
        let mut response = Json(json!({
            "messages": [],
            "duplicate": true,
            "session": session,
            "expiresAt": expires,
        }))
        .into_response();
        cors(web, &headers, &mut response);
        return Ok(response);
    }
    let Some(mut out) = waiting.outcome(state.store.as_ref(), ANSWER_WITHIN).await else {
        return Err(AppError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "the message is accepted but its turn has not finished yet; its answer will be in the conversation",
        ));
    };
    let mut answer = json!({
        "messages": out["messages"].take(),
        "session": session,
        "expiresAt": expires,
        // While an agent has the conversation the page asks for what comes
        // after `cursor` (their messages) now and then.
        "cursor": out["cursor"].take(),
        "since": out["since"].take(),
        // A *Silence detected* timer: the page looks for its message then.
        "wakeInMs": out["wakeInMs"].take(),
        "paused": out["paused"].take(),
    });
    let tenant_token = headers
        .get("x-sandbot-tenant-token")
        .and_then(|t| t.to_str().ok());
    if d.version == "DRAFT" && state.authorized(&bot_id, tenant_token) {
        answer["emulator"] = out["emulator"].take();
    }
    let mut response = Json(answer).into_response();
    cors(web, &headers, &mut response);
    Ok(response)
}
