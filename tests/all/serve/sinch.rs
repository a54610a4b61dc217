//! The Sinch Conversation API channel over real sockets: signed callbacks
//! (good, bad, stale, unsigned), Sinch's retries processed once, the
//! `internal.sinchConversationAPI` variables, `messages:send` captured by a
//! local stand-in for Sinch (OAuth token fetched, cached, refreshed after a
//! 401), rich choices, and numbered plain-text choices on SMS.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use sandbot::channels::sinch::signature::sign;
use sandbot::serve::Server;
use sandbot::serve::config::hash_token;
use serde_json::{Value, json};

use crate::flow::support::write_bot;

#[derive(Clone, Default)]
struct Sinch {
    sent: Arc<Mutex<Vec<(String, Value)>>>,
    /// Conversation metadata updates: (conversation, query, body).
    patched: Arc<Mutex<Vec<(String, String, Value)>>>,
    token_calls: Arc<Mutex<u32>>,
    reject_next: Arc<Mutex<u32>>,
    /// While set, `messages:send` answers 503 (counted in `failed`).
    down: Arc<Mutex<bool>>,
    failed: Arc<Mutex<u32>>,
}

async fn token(
    State(s): State<Sinch>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, Json<Value>) {
    // Basic auth with client id "cid" and secret "csecret".
    let ok = headers
        .get("authorization")
        .is_some_and(|v| v == "Basic Y2lkOmNzZWNyZXQ=")
        && body == "grant_type=client_credentials";
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "bad client"})),
        );
    }
    let mut n = s.token_calls.lock().unwrap();
    *n += 1;
    (
        StatusCode::OK,
        Json(json!({"access_token": format!("tok-{n}"), "expires_in": 3600})),
    )
}

async fn send(State(s): State<Sinch>, headers: HeaderMap, Json(body): Json<Value>) -> StatusCode {
    if *s.down.lock().unwrap() {
        *s.failed.lock().unwrap() += 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    {
        let mut reject = s.reject_next.lock().unwrap();
        if *reject > 0 {
            *reject -= 1;
            return StatusCode::UNAUTHORIZED;
        }
    }
    let auth = headers["authorization"].to_str().unwrap().to_string();
    s.sent.lock().unwrap().push((auth, body));
    StatusCode::OK
}

async fn patch_conversation(
    State(s): State<Sinch>,
    axum::extract::Path(id): axum::extract::Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> StatusCode {
    if headers.get("authorization").is_none() {
        return StatusCode::UNAUTHORIZED;
    }
    let query = uri.query().unwrap_or_default().to_string();
    s.patched.lock().unwrap().push((id, query, body));
    StatusCode::OK
}

impl Sinch {
    async fn start() -> (Sinch, String) {
        let s = Sinch::default();
        let app = axum::Router::new()
            .route(
                "/v1/projects/proj-1/conversations/{id}",
                axum::routing::patch(patch_conversation),
            )
            .route("/oauth2/token", axum::routing::post(token))
            .route(
                "/v1/projects/proj-1/messages:send",
                axum::routing::post(send),
            )
            .with_state(s.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (s, base)
    }

    async fn wait_for(&self, n: usize) -> Vec<(String, Value)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.sent.lock().unwrap().len() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.sent.lock().unwrap().clone()
    }
}

fn inbound(id: &str, channel: &str, contact_message: Value) -> String {
    json!({
        "app_id": "app-1", "project_id": "proj-1", "accepted_time": "2026-11-21T10:00:00Z",
        "message": {
            "id": id, "direction": "TO_APP", "contact_message": contact_message,
            "channel_identity": {"channel": channel, "identity": "+32470000000", "app_id": "app-1"},
            "conversation_id": format!("conv-{channel}"), "contact_id": format!("contact-{channel}"),
            "metadata": "{\"crm\":\"42\"}"
        }
    })
    .to_string()
}

async fn callback(base: &str, body: &str, secret: Option<&str>, timestamp: u64) -> u16 {
    callback_answer(base, body, secret, timestamp).await.0
}

/// The callback's status and answer.
async fn callback_answer(
    base: &str,
    body: &str,
    secret: Option<&str>,
    timestamp: u64,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/v1/channels/sinch/sinch-1/callback"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(secret) = secret {
        let ts = timestamp.to_string();
        req = req
            .header("x-sinch-webhook-signature-timestamp", &ts)
            .header("x-sinch-webhook-signature-nonce", "nonce-1")
            .header("x-sinch-webhook-signature-algorithm", "HmacSHA256")
            .header(
                "x-sinch-webhook-signature",
                sign(secret, body.as_bytes(), "nonce-1", &ts),
            );
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (
        status,
        serde_json::from_str(&res.text().await.unwrap()).unwrap_or(Value::Null),
    )
}

/// A server for `bot` with the Sinch channel `sinch-1` against the stand-in
/// at `sinch_base`; `more` is added to the bot's entry.
async fn serve(
    dir: &std::path::Path,
    bot: &std::path::Path,
    sinch_base: &str,
    more: &str,
) -> Server {
    let yaml = format!(
        r#"
listen: 127.0.0.1:0
data: {data}
tenants: [{{ id: one, tokens: ["{t}"] }}]
bots:
  - folder: {bot}
    tenant: one
    channels:
      sinch:
        - {{ id: sinch-1, projectId: proj-1, appId: app-1, clientId: cid, clientSecret: csecret, region: eu,
            webhookSecret: whsec, authUrl: "{sinch_base}/oauth2/token", apiUrl: "{sinch_base}" }}
{more}"#,
        data = dir.join("data").display(),
        bot = bot.display(),
        t = hash_token("x"),
    );
    crate::common::serve_yaml(dir, &yaml).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_callbacks_answered_with_messages_send() {
    let bot = write_bot(
        "nlp:\n  intents: [{ name: hello, goto: ask, expressions: { en: [hello there] } }]\n",
        r#"
  - { id: intro, system: introduction, type: message, messages: [{ text: "Hi" }] }
  - id: ask
    type: message
    messages:
      - text: "Coffee?"
        quickReplies: [{ title: "Yes please", goto: yes }, { title: "No", goto: no }]
  - { id: yes, type: message, messages: [{ text: "Yes on {internal.sinchConversationAPI.channelIdentifier} for {internal.sinchConversationAPI.metadata.crm}" }] }
  - { id: no, type: message, messages: [{ text: "OK" }] }
"#,
        &[],
    );
    let (sinch, sinch_base) = Sinch::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = serve(data.path(), bot.path(), &sinch_base, "").await;
    let base = format!("http://{}", server.addr);
    let now = sandbot::store::now_ms() / 1000;

    let hello = inbound(
        "m1",
        "WHATSAPP",
        json!({"text_message": {"text": "hello there"}}),
    );
    // Unsigned, wrongly signed, stale: 401, nothing processed.
    assert_eq!(callback(&base, &hello, None, now).await, 401);
    assert_eq!(callback(&base, &hello, Some("wrong"), now).await, 401);
    assert_eq!(
        callback(&base, &hello, Some("whsec"), now - 3600).await,
        401
    );
    assert_eq!(callback(&base, "{bad json", Some("whsec"), now).await, 400);
    // Signed and fresh; then Sinch retries the same message: processed once.
    assert_eq!(callback(&base, &hello, Some("whsec"), now).await, 200);
    // The retry is answered 200 and known as a duplicate at once, so it is
    // never processed again.
    assert_eq!(
        callback_answer(&base, &hello, Some("whsec"), now).await,
        (200, json!({"duplicate": true}))
    );
    let sent = sinch.wait_for(1).await;
    let (auth, body) = &sent[0];
    assert_eq!(auth, "Bearer tok-1");
    assert_eq!(body["app_id"], "app-1");
    assert_eq!(body["recipient"], json!({"contact_id": "contact-WHATSAPP"}));
    let choice = &body["message"]["choice_message"];
    assert_eq!(choice["text_message"]["text"], "Coffee?");
    let payload = choice["choices"][0]["postback_data"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(choice["choices"][0]["text_message"]["text"], "Yes please");

    // The choice comes back; the API refuses the cached token once: it is refreshed.
    *sinch.reject_next.lock().unwrap() = 1;
    let pick = inbound(
        "m2",
        "WHATSAPP",
        json!({"choice_response_message": {"message_id": "x", "postback_data": payload}}),
    );
    assert_eq!(callback(&base, &pick, Some("whsec"), now).await, 200);
    let sent = sinch.wait_for(2).await;
    assert_eq!(sent[1].0, "Bearer tok-2", "a fresh token after the 401");
    assert_eq!(
        sent[1].1["message"],
        json!({"text_message": {"text": "Yes on WHATSAPP for 42"}})
    );
    assert_eq!(*sinch.token_calls.lock().unwrap(), 2);

    // SMS: numbered plain-text choices, and a numbered reply.
    let sms = inbound(
        "m3",
        "SMS",
        json!({"text_message": {"text": "hello there"}}),
    );
    assert_eq!(callback(&base, &sms, Some("whsec"), now).await, 200);
    let sent = sinch.wait_for(3).await;
    assert_eq!(
        sent[2].1["message"],
        json!({"text_message": {"text": "Coffee?\n1. Yes please\n2. No"}})
    );
    let reply = inbound("m4", "SMS", json!({"text_message": {"text": "1"}}));
    assert_eq!(callback(&base, &reply, Some("whsec"), now).await, 200);
    let sent = sinch.wait_for(4).await;
    assert_eq!(
        sent[3].1["message"],
        json!({"text_message": {"text": "Yes on SMS for 42"}})
    );

    // The session carries the Sinch variables.
    let state = server
        .state
        .store
        .load("test", "conv-SMS")
        .await
        .unwrap()
        .unwrap();
    let s = &state.session["internal"]["sinchConversationAPI"];
    assert_eq!(s["channelIdentity"], "+32470000000");
    assert_eq!(s["contactId"], "contact-SMS");
    assert_eq!(s["appId"], "app-1");
    assert_eq!(s["conversationId"], "conv-SMS");
    assert_eq!(state.session["internal"]["channel"], "sinchConversationAPI");
    // An agent's message (REST) goes back on the conversation's own channel.
    let agent = reqwest::Client::new()
        .post(format!(
            "{base}/v1/bots/test/conversations/conv-SMS/actions"
        ))
        .header("authorization", "Bearer x")
        .header("content-type", "application/json")
        .body(json!({"sendMessages": [{"textMessageTemplate": {"text": "Ann here"}}]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(agent.status(), 200);
    let sent = sinch.wait_for(5).await;
    assert_eq!(sent[4].1["recipient"], json!({"contact_id": "contact-SMS"}));
    assert_eq!(
        sent[4].1["message"],
        json!({"text_message": {"text": "Ann here"}})
    );
    // A callback that is not an inbound message is acknowledged and ignored.
    let receipt =
        json!({"app_id": "app-1", "message_delivery_report": {"status": "DELIVERED"}}).to_string();
    assert_eq!(callback(&base, &receipt, Some("whsec"), now).await, 200);
    server.shutdown().await.unwrap();
}

/// Sinch Contact Pro against the stand-in: the offload writes the
/// sinchContactPro variables as the conversation's metadata and pauses the
/// bot; agent events are noted; the conversation's stop hands it back; a
/// custom field that is no XML name leads to offloadingDisabled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_pro_takes_over_and_the_stop_hands_back() {
    let bot = write_bot(
        "nlp:\n  intents:\n    - { name: human, goto: prep, expressions: { en: [talk to a human] } }\n    - { name: bad, goto: prep-bad, expressions: { en: [broken fields please] } }\n",
        r#"
  - { id: intro, system: introduction, type: message, messages: [{ text: "Hi" }] }
  - { id: prep, type: action, set: { sinchContactPro.firstName: Ann, sinchContactPro.customFields.orderId: "ORD-1" }, goto: human }
  - { id: prep-bad, type: action, set: { sinchContactPro.customFields.1st: "x" }, goto: human }
  - { id: human, type: action, offload: { provider: contactpro } }
  - { id: opened, system: offloadingOpened, type: message, messages: [{ text: "An agent will join" }] }
  - { id: closed, system: offloadingClosed, type: message, messages: [{ text: "Closed" }] }
  - { id: no-desk, system: offloadingDisabled, type: message, messages: [{ text: "Nobody can take over" }] }
"#,
        &[],
    );
    let (sinch, sinch_base) = Sinch::start().await;
    let data = tempfile::tempdir().unwrap();
    let offloading =
        "    offloading:\n      - { id: contactpro, sinchContactPro: { channel: sinch-1 } }\n";
    let server = serve(data.path(), bot.path(), &sinch_base, offloading).await;
    let base = format!("http://{}", server.addr);
    let now = sandbot::store::now_ms() / 1000;
    let text = |id: &str, channel: &str, t: &str| {
        inbound(id, channel, json!({"text_message": {"text": t}}))
    };
    let state = |conv: &'static str| {
        let store = server.state.store.clone();
        async move { store.load("test", conv).await.unwrap().unwrap() }
    };

    assert_eq!(
        callback(
            &base,
            &text("h1", "WHATSAPP", "talk to a human"),
            Some("whsec"),
            now
        )
        .await,
        200
    );
    let sent = sinch.wait_for(1).await;
    assert_eq!(
        sent[0].1["message"]["text_message"]["text"],
        "An agent will join"
    );
    let patched = sinch.patched.lock().unwrap().clone();
    assert_eq!(patched.len(), 1);
    assert_eq!(patched[0].0, "conv-WHATSAPP");
    assert_eq!(patched[0].1, "metadata_update_strategy=MERGE_PATCH");
    let metadata: Value = serde_json::from_str(patched[0].2["metadata"].as_str().unwrap()).unwrap();
    assert_eq!(metadata, json!({"firstName": "Ann", "orderId": "ORD-1"}));
    assert!(state("conv-WHATSAPP").await.paused);

    // While the agent has it the bot stays quiet; agent events are noted.
    assert_eq!(
        callback(&base, &text("h2", "WHATSAPP", "hello?"), Some("whsec"), now).await,
        200
    );
    let joined = json!({"app_id": "app-1", "event": {"conversation_id": "conv-WHATSAPP",
        "agent_joined_event": {"agent": {"display_name": "Ann", "type": "HUMAN"}}}})
    .to_string();
    assert_eq!(callback(&base, &joined, Some("whsec"), now).await, 200);
    assert_eq!(
        callback(&base, &joined, Some("whsec"), now).await,
        200,
        "a retry is processed once"
    );
    let left = json!({"app_id": "app-1", "event": {"conversation_id": "conv-WHATSAPP",
        "agent_left_event": {"agent": {"display_name": "Ann"}}}})
    .to_string();
    assert_eq!(callback(&base, &left, Some("whsec"), now).await, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while state("conv-WHATSAPP").await.transcript_len < 9 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let s = state("conv-WHATSAPP").await;
    assert!(s.paused, "agentLeft does not hand back unless configured");
    assert_eq!(s.offload.unwrap().agent.unwrap()["display_name"], "Ann");
    assert_eq!(
        sinch.sent.lock().unwrap().len(),
        1,
        "the bot does not answer"
    );

    // The conversation's stop hands it back to the bot.
    let stop = json!({"app_id": "app-1", "conversation_stop_notification":
        {"conversation": {"id": "conv-WHATSAPP"}}})
    .to_string();
    assert_eq!(callback(&base, &stop, Some("whsec"), now).await, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while state("conv-WHATSAPP").await.paused && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let s = state("conv-WHATSAPP").await;
    assert!(!s.paused && s.offload.is_none());
    assert_eq!(s.session["internal"]["isPaused"], false);
    assert_eq!(
        callback(
            &base,
            &text("h3", "WHATSAPP", "what now"),
            Some("whsec"),
            now
        )
        .await,
        200
    );
    let sent = sinch.wait_for(2).await;
    assert_eq!(sent[1].1["message"]["text_message"]["text"], "NU");

    // A custom field that is no XML name: refused, the bot says so.
    assert_eq!(
        callback(
            &base,
            &text("b1", "SMS", "broken fields please"),
            Some("whsec"),
            now
        )
        .await,
        200
    );
    let sent = sinch.wait_for(3).await;
    assert_eq!(
        sent[2].1["message"]["text_message"]["text"],
        "Nobody can take over"
    );
    assert!(!state("conv-SMS").await.paused);
    let events = server
        .state
        .store
        .transcript("test", "conv-SMS", 0, 100)
        .await
        .unwrap();
    let error = events.iter().find_map(|e| e.event.get("error")).unwrap();
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("`1st` is not a valid XML element name"),
        "{error}"
    );
    assert_eq!(sinch.patched.lock().unwrap().len(), 1);
    server.shutdown().await.unwrap();
}

/// With several nodes, a Sinch message is sent only by a node that has the
/// channel. Node A (the bot, with its Sinch channel) fails to send a reply
/// (Sinch down) and stops; node B, with no Sinch channel, leaves the retry
/// alone instead of failing it ("could not get a token") again and again
/// with a longer wait each time; A, started again, sends it once Sinch is
/// back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_the_sinch_channel_leaves_its_messages_alone() {
    let url = crate::pg::database().await;
    let bot = write_bot(
        "",
        "  - { id: intro, system: introduction, type: message, messages: [{ text: \"Hi\" }] }\n",
        &[],
    );
    let (sinch, sinch_base) = Sinch::start().await;
    *sinch.down.lock().unwrap() = true;
    let store =
        format!("store: {{ postgres: {{ url: \"{url}\", pool: 4, startWaitSeconds: 0 }} }}\n");
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = serve(dir_a.path(), bot.path(), &sinch_base, &store).await;
    let b = crate::common::serve_yaml(
        dir_b.path(),
        &format!(
            "listen: 127.0.0.1:0\ndata: {}\ntenants: [{{ id: one, tokens: [\"{}\"] }}]\nbots: []\n{store}",
            dir_b.path().join("data").display(),
            hash_token("x"),
        ),
    )
    .await;
    let now = sandbot::store::now_ms() / 1000;
    let hi = inbound("m1", "WHATSAPP", json!({"text_message": {"text": "hi"}}));
    let base = format!("http://{}", a.addr);
    assert_eq!(callback(&base, &hi, Some("whsec"), now).await, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while *sinch.failed.lock().unwrap() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.shutdown().await.unwrap();
    let failed = *sinch.failed.lock().unwrap();
    assert!(failed >= 1, "A tried and failed");
    // The retry comes due after 250 ms, 500 ms, … B looks every 100 ms.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let attempts: Vec<i32> = sqlx::query_scalar("SELECT attempts FROM outbox")
        .fetch_all(&sqlx::PgPool::connect(&url).await.unwrap())
        .await
        .unwrap();
    assert_eq!(
        attempts,
        [failed as i32],
        "B made no attempt of its own (each would fail without a token)"
    );
    *sinch.down.lock().unwrap() = false;
    let a = serve(dir_a.path(), bot.path(), &sinch_base, &store).await;
    let sent = sinch.wait_for(1).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1["message"]["text_message"]["text"], "NU");
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
