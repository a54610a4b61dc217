//! Human handover through Chatlayer's offloading webhook, end to end over
//! real sockets: a stand-in agent desk answers the health check, receives
//! `messages` and `offload` events, opens or refuses; agents answer and hand
//! back through the REST API; a desk that is down leads to
//! *Offloading disabled*.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use sandbot::serve::Server;
use serde_json::{Value, json};

use crate::flow::support::write_bot;
use crate::serve::webhook::{Receiver, accepted};

const BLOCKS: &str = r#"
  - { id: intro, system: introduction, type: input, variable: ask, question: "What is it about?", nlp: false, goto: human }
  - { id: human, type: action, offload: { provider: desk, payload: { reason: "{ask}", team: support } } }
  - { id: opened, system: offloadingOpened, type: message, messages: [{ text: "An agent will take over" }] }
  - { id: closed, system: offloadingClosed, type: message, messages: [{ text: "No agent is free now" }] }
  - { id: no-desk, system: offloadingDisabled, type: message, messages: [{ text: "Nobody can take over" }] }
  - { id: back, type: message, messages: [{ text: "The bot is back" }] }
"#;

/// The stand-in desk: what it received, and how it answers offloads.
#[derive(Clone, Default)]
struct Desk {
    got: Arc<Mutex<Vec<Value>>>,
    /// Answer to `offload`: `open` or `closed`.
    mode: Arc<Mutex<&'static str>>,
}

impl Desk {
    async fn start(mode: &'static str) -> (Desk, String) {
        let desk = Desk::default();
        *desk.mode.lock().unwrap() = mode;
        let app = axum::Router::new()
            .route("/desk", axum::routing::get(health).post(event))
            .with_state(desk.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/desk", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (desk, url)
    }

    fn events(&self, kind: &str) -> Vec<Value> {
        let got = self.got.lock().unwrap();
        got.iter().filter(|e| e["event"] == kind).cloned().collect()
    }

    /// Waits until `check` holds for the received events (at most 10 s).
    async fn wait(&self, check: impl Fn(&Desk) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !check(self) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(check(self), "{:#?}", self.got.lock().unwrap());
    }

    /// The user texts the desk got in `messages` events, in order.
    fn user_texts(&self) -> Vec<String> {
        self.events("messages")
            .iter()
            .flat_map(|e| e["messages"].as_array().cloned().unwrap_or_default())
            .filter(|m| m["actor"] == "user")
            .filter_map(|m| m["message"]["text"].as_str().map(str::to_string))
            .collect()
    }
}

async fn health(
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> (StatusCode, Json<Value>) {
    if q.get("challenge.verifyToken").map(String::as_str) == Some("desk-secret") {
        (StatusCode::OK, Json(json!({"status": "ok"})))
    } else {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({"status": "bad token"})),
        )
    }
}

async fn event(
    State(desk): State<Desk>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    if q.get("challenge.verifyToken").map(String::as_str) != Some("desk-secret") {
        return (StatusCode::UNAUTHORIZED, Json(json!({})));
    }
    desk.got.lock().unwrap().push(body.clone());
    if body["event"] != "offload" {
        return (StatusCode::OK, Json(json!({})));
    }
    let open = *desk.mode.lock().unwrap() == "open";
    (
        StatusCode::OK,
        Json(json!({"offloadSuccess": open, "pauseBot": open})),
    )
}

/// A server with the bot on a webhook channel delivering to `receiver`,
/// offloading to `desk_url`.
async fn serve(
    bot: &std::path::Path,
    data: &std::path::Path,
    receiver: &str,
    desk_url: &str,
) -> Server {
    let offloading = format!(
        "    offloading:\n      - {{ id: desk, webhook: {{ url: \"{desk_url}\", verifyToken: desk-secret }} }}\n"
    );
    let setup = crate::common::Setup {
        hook_url: Some(receiver),
        bot: &offloading,
        ..Default::default()
    };
    crate::common::serve_bot(data, bot, setup).await
}

fn text(conversation: &str, text: &str) -> Value {
    json!({"conversationId": conversation, "message": {"textMessage": {"text": text}}})
}

fn intro(conversation: &str) -> Value {
    json!({"conversationId": conversation, "message": {"introMessage": {}}})
}

/// The texts the user's channel received, in order.
fn texts(receiver: &Receiver) -> Vec<String> {
    receiver
        .messages()
        .iter()
        .filter_map(|m| m["message"]["text"].as_str().map(str::to_string))
        .collect()
}

async fn rest(addr: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let client = reqwest::Client::new();
    let url = format!("http://{addr}{path}");
    let mut req = match method {
        "POST" => client.post(url),
        _ => client.get(url),
    }
    .header("authorization", "Bearer token-one");
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (
        status,
        serde_json::from_str(&res.text().await.unwrap()).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_takes_over_answers_and_hands_back() {
    let bot = write_bot("", BLOCKS, &[]);
    let data = tempfile::tempdir().unwrap();
    let (receiver, receiver_url) = Receiver::start(0).await;
    let (desk, desk_url) = Desk::start("open").await;
    let server = serve(bot.path(), data.path(), &receiver_url, &desk_url).await;
    let addr = server.addr.to_string();

    accepted(&addr, intro("c1")).await;
    receiver.wait_for(1).await;
    accepted(&addr, text("c1", "my parcel is late")).await;
    receiver.wait_for(2).await;
    assert_eq!(
        texts(&receiver),
        ["What is it about?", "An agent will take over"]
    );

    // The desk got the offload with the templated payload and the transcript.
    desk.wait(|d| !d.events("offload").is_empty()).await;
    let offload = &desk.events("offload")[0];
    assert_eq!(offload["botId"], "test");
    assert_eq!(offload["sessionId"], "c1");
    assert_eq!(offload["channel"], "webHook");
    assert_eq!(
        offload["payload"],
        json!({"reason": "my parcel is late", "team": "support"})
    );
    let transcript = offload["transcript"].as_array().unwrap();
    assert_eq!(transcript[0]["message"]["messageType"], "intro");
    assert_eq!(transcript[1]["actor"], "bot");
    assert_eq!(transcript[1]["message"]["text"], "What is it about?");
    assert_eq!(
        transcript[2]["message"],
        json!({"messageType": "text", "text": "my parcel is late", "sender": {"id": "c1"}})
    );
    assert!(offload["timestamp"].as_str().unwrap().ends_with('Z'));

    // While offloaded the user's messages reach the desk, and the bot is quiet.
    accepted(&addr, text("c1", "hello? anyone?")).await;
    desk.wait(|d| d.user_texts().contains(&"hello? anyone?".to_string()))
        .await;
    assert_eq!(desk.user_texts(), ["my parcel is late", "hello? anyone?"]);
    assert_eq!(receiver.messages().len(), 2, "the bot does not answer");
    let (_, list) = rest(&addr, "GET", "/v1/bots/test/conversations", None).await;
    assert_eq!(list["data"][0]["paused"], true);
    assert_eq!(list["data"][0]["offloadedTo"], "desk");
    let (_, session) = rest(
        &addr,
        "GET",
        "/v1/bots/test/conversations/c1/session-data",
        None,
    )
    .await;
    assert_eq!(session["data"]["internal"]["isPaused"], true, "{session}");
    assert_eq!(session["data"]["internal"]["offload"]["provider"], "desk");

    // The agent answers on the user's channel, then hands back to the bot.
    let agent = json!({"sendMessages": [{"textMessageTemplate": {"text": "Hi, Ann here"}}]});
    let actions = "/v1/bots/test/conversations/c1/actions";
    assert_eq!(rest(&addr, "POST", actions, Some(agent)).await.0, 200);
    let back = json!({"pause": false, "goToDialogstate": "back"});
    let (s, out) = rest(&addr, "POST", actions, Some(back)).await;
    assert_eq!((s, &out["paused"]), (200, &json!(false)), "{out}");
    receiver.wait_for(4).await;
    assert_eq!(texts(&receiver)[2..], ["Hi, Ann here", "The bot is back"]);
    let (_, list) = rest(&addr, "GET", "/v1/bots/test/conversations", None).await;
    assert_eq!(list["data"][0].get("offloadedTo"), None);
    // Every bot and user message reached the desk, in order.
    desk.wait(|d| {
        d.events("messages")
            .iter()
            .any(|e| e["messages"].to_string().contains("The bot is back"))
    })
    .await;
    let bot_texts: Vec<Value> = desk
        .events("messages")
        .iter()
        .flat_map(|e| e["messages"].as_array().cloned().unwrap_or_default())
        .filter(|m| m["actor"] == "bot")
        .map(|m| m["message"]["text"].clone())
        .collect();
    assert_eq!(
        bot_texts[..2],
        [json!("What is it about?"), json!("An agent will take over")]
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desk_without_agents_closes_and_a_desk_that_is_down_disables() {
    let bot = write_bot("", BLOCKS, &[]);
    let (receiver, receiver_url) = Receiver::start(0).await;

    // No agent free: offloadingClosed, and the bot keeps answering.
    let data = tempfile::tempdir().unwrap();
    let (desk, desk_url) = Desk::start("closed").await;
    let server = serve(bot.path(), data.path(), &receiver_url, &desk_url).await;
    let addr = server.addr.to_string();
    accepted(&addr, intro("c1")).await;
    receiver.wait_for(1).await;
    accepted(&addr, text("c1", "help")).await;
    receiver.wait_for(2).await;
    assert_eq!(texts(&receiver)[1], "No agent is free now");
    assert_eq!(desk.events("offload").len(), 1);
    let (_, session) = rest(
        &addr,
        "GET",
        "/v1/bots/test/conversations/c1/session-data",
        None,
    )
    .await;
    assert_eq!(session["data"]["internal"]["isPaused"], false);
    server.shutdown().await.unwrap();

    // A desk that does not answer its health check: offloadingDisabled.
    let data = tempfile::tempdir().unwrap();
    let down = "http://127.0.0.1:9/desk";
    let server = serve(bot.path(), data.path(), &receiver_url, down).await;
    let addr = server.addr.to_string();
    accepted(&addr, intro("c2")).await;
    receiver.wait_for(3).await;
    accepted(&addr, text("c2", "help")).await;
    receiver.wait_for(4).await;
    assert_eq!(texts(&receiver)[3], "Nobody can take over");
    let (_, msgs) = rest(
        &addr,
        "GET",
        "/v1/bots/test/conversations/c2/session-data",
        None,
    )
    .await;
    assert_eq!(msgs["data"]["internal"]["isPaused"], false);
    server.shutdown().await.unwrap();
}

#[test]
fn validate_knows_the_offload_action_and_its_blocks() {
    // With the three system blocks: valid.
    let bot = write_bot("", BLOCKS, &[]);
    assert!(sandbot::flow::Bot::load(bot.path()).is_ok());
    // Without them: refused, naming what is missing.
    let without = r#"
  - { id: intro, system: introduction, type: message, messages: [{ text: "Hi" }], goto: human }
  - { id: human, type: action, offload: { provider: desk } }
  - { id: opened, system: offloadingOpened, type: message, messages: [{ text: "An agent will take over" }] }
"#;
    let bot = write_bot("", without, &[]);
    let problems = sandbot::flow::Bot::load(bot.path())
        .err()
        .unwrap()
        .to_string();
    assert!(
        problems.contains("an offload action needs the system blocks offloadingOpened, offloadingClosed and offloadingDisabled (missing: offloadingClosed, offloadingDisabled)"),
        "{problems}"
    );
}
