//! The web chat's endpoint and page over a real socket (the browser test is
//! `tests/web/chat.test.mjs`, run by `.ci/run`).

use std::collections::HashMap;

use sandbot::serve::{ServeConfig, Server};
use serde_json::{Value, json};

use crate::common::repo;
use crate::flow::conversations::example_backend;

/// A browser's side of the web chat: a session per bot, its token sent
/// with every message (and the tenant's token, for the emulator).
pub struct Web {
    pub base: String,
    pub tenant: Option<String>,
    pub sessions: HashMap<String, String>,
}

/// (status, the JSON body — or the text when it is not JSON).
async fn answer(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

impl Web {
    pub fn new(base: &str, tenant: Option<&str>) -> Self {
        Self {
            base: base.to_string(),
            tenant: tenant.map(str::to_string),
            sessions: HashMap::new(),
        }
    }

    /// `POST …/sessions` with `body`: (status, answer).
    pub async fn open(&self, bot: &str, body: Value) -> (u16, Value) {
        let res = reqwest::Client::new()
            .post(format!("{}/v1/channels/web/{bot}/sessions", self.base))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        answer(res).await
    }

    /// The bot's session token, opening one the first time.
    pub async fn session(&mut self, bot: &str) -> String {
        if !self.sessions.contains_key(bot) {
            let (status, answer) = self.open(bot, json!({})).await;
            assert_eq!(status, 201, "{answer}");
            self.sessions
                .insert(bot.into(), answer["session"].as_str().unwrap().into());
        }
        self.sessions[bot].clone()
    }

    /// Posts `body` with `session` as the token: (status, answer).
    pub async fn post(&self, bot: &str, session: &str, body: Value) -> (u16, Value) {
        let mut req = reqwest::Client::new()
            .post(format!("{}/v1/channels/web/{bot}/messages", self.base))
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {session}"))
            .body(body.to_string());
        if let Some(t) = &self.tenant {
            req = req.header("x-sandbot-tenant-token", t);
        }
        answer(req.send().await.unwrap()).await
    }

    /// `GET …/messages` with `session` as the token: the conversation so far.
    pub async fn history(&self, bot: &str, session: &str) -> (u16, Value) {
        let res = reqwest::Client::new()
            .get(format!("{}/v1/channels/web/{bot}/messages", self.base))
            .header("authorization", format!("Bearer {session}"))
            .send()
            .await
            .unwrap();
        answer(res).await
    }

    /// Sends `message` in the bot's conversation: (status, answer).
    pub async fn send(&mut self, bot: &str, message: Value) -> (u16, Value) {
        let session = self.session(bot).await;
        self.post(bot, &session, json!({"message": message})).await
    }
}

/// `sandbot serve` with the example bots (and their backend), on a fresh
/// data folder: the server, the folder, its base URL.
async fn examples() -> (Server, tempfile::TempDir, String) {
    example_backend();
    let data = tempfile::tempdir().unwrap();
    let mut config = ServeConfig::examples(&repo()).unwrap();
    config.listen = "127.0.0.1:0".into();
    config.data = data.path().to_path_buf();
    let server = Server::start(&config).await.unwrap();
    let base = format!("http://{}", server.addr);
    (server, data, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_chat_answers_with_messages_and_the_emulator() {
    let (server, _data, base) = examples().await;
    let mut web = Web::new(&base, Some("demo-token"));

    let page = reqwest::get(format!("{base}/chat/meetups")).await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("const BOT = \"meetups\"") && html.contains("<title>Meetup finder"));
    let index = reqwest::get(format!("{base}/")).await.unwrap();
    assert_eq!(index.status(), 200);
    assert!(
        index
            .text()
            .await
            .unwrap()
            .contains("<a href=\"/chat/meetups\">Meetup finder</a>")
    );
    let icon = reqwest::get(format!("{base}/favicon.ico")).await.unwrap();
    assert_eq!(icon.status(), 204);
    assert_eq!(
        reqwest::get(format!("{base}/chat/nope"))
            .await
            .unwrap()
            .status(),
        404
    );

    let (s, intro) = web.send("meetups@DRAFT", json!({"introMessage": {}})).await;
    assert_eq!(s, 200, "{intro}");
    assert_eq!(intro["messages"][0]["type"], "buttons");
    assert_eq!(intro["emulator"]["block"]["id"], "intro");
    assert_eq!(intro["emulator"]["session"]["internal"]["channel"], "web");
    let payload = intro["messages"][0]["config"]["buttons"][0]["payload"].clone();
    let (_, asked) = web
        .send(
            "meetups@DRAFT",
            json!({"postbackMessage": {"title": "Find a meetup", "payload": payload}}),
        )
        .await;
    assert_eq!(asked["emulator"]["waiting"], "ask-month");
    let (_, found) = web
        .send("meetups@DRAFT", json!({"textMessage": {"text": "june"}}))
        .await;
    assert_eq!(found["messages"][0]["type"], "carousel");
    let action = &found["emulator"]["actions"][0];
    assert_eq!(
        (
            action["action"].as_str(),
            action["name"].as_str(),
            action["ok"].as_bool()
        ),
        (Some("code"), Some("meetups.js"), Some(true))
    );
    assert!(action["stats"]["fuel"].as_u64().unwrap() > 0);
    let (s, bad) = web.send("meetups@DRAFT", json!({"nope": 1})).await;
    assert_eq!(s, 400, "{bad}");

    // A failing API action (unknown order → 404) is counted by kind.
    web.send("shop@DRAFT", json!({"introMessage": {}})).await;
    let (_, failed) = web
        .send(
            "shop@DRAFT",
            json!({"textMessage": {"text": "where is my order ORD-9999"}}),
        )
        .await;
    assert_eq!(
        failed["emulator"]["actions"][0]["error"]["kind"],
        "guest_error"
    );
    crate::common::assert_metrics(
        &base,
        &[
            "sandbot_turns_total{tenant=\"demo\",bot=\"meetups\"} 3",
            "sandbot_action_invocations_total{tenant=\"demo\",bot=\"meetups\"} 1",
            "sandbot_action_failures_total{tenant=\"demo\",bot=\"shop\",kind=\"guest_error\"} 1",
            "sandbot_turn_duration_seconds_count{tenant=\"demo\",bot=\"shop\"} 2",
        ],
    )
    .await;
    let usage: Value = serde_json::from_str(
        &reqwest::Client::new()
            .get(format!("{base}/v1/usage"))
            .header("authorization", "Bearer demo-token")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(usage["tenant"], "demo");
    assert_eq!(usage["bots"]["shop"]["actionFailures"]["guest_error"], 1);
    assert!(usage["bots"]["meetups"]["fuel"].as_u64().unwrap() > 0);
    server.shutdown().await.unwrap();
}

/// The page sends each message with an id and sends it again with the same
/// id when its answer was lost: the server takes it once. Ids are the
/// conversation's own: the same id in another conversation is a message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_again_with_its_id_is_taken_once() {
    let (server, _data, base) = examples().await;
    let mut web = Web::new(&base, None);
    let session = web.session("meetups").await;
    let send = |id: Value, text: &str| json!({"message": {"textMessage": {"text": text}}, "messageId": id});

    let (s, intro) = web
        .post(
            "meetups",
            &session,
            json!({"message": {"introMessage": {}}, "messageId": "m1"}),
        )
        .await;
    assert_eq!(
        (s, intro["messages"][0]["type"].as_str()),
        (200, Some("buttons")),
        "{intro}"
    );
    let (s, first) = web
        .post("meetups", &session, send(json!("m2"), "hello"))
        .await;
    assert_eq!(s, 200, "{first}");
    assert!(!first["messages"].as_array().unwrap().is_empty(), "{first}");
    // Its turn's entries: from `since` (after the introduction's) to `cursor`.
    let since = first["since"].as_u64().unwrap();
    assert!(
        since > 0 && since < first["cursor"].as_u64().unwrap(),
        "{first}"
    );
    assert_eq!(first["duplicate"], Value::Null);
    let (s, again) = web
        .post("meetups", &session, send(json!("m2"), "hello"))
        .await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["messages"], json!([]));
    assert!(again["session"].is_string(), "{again}");
    let (_, history) = web.history("meetups", &session).await;
    let users: Vec<&str> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["from"] == "user")
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert_eq!(
        users.iter().filter(|t| **t == "hello").count(),
        1,
        "{history}"
    );

    // Another conversation's "m2" is its own message.
    let mut other = Web::new(&base, None);
    let other_session = other.session("meetups").await;
    let (s, theirs) = other
        .post("meetups", &other_session, send(json!("m2"), "hello"))
        .await;
    assert_eq!(
        (s, theirs["duplicate"].clone()),
        (200, Value::Null),
        "{theirs}"
    );

    // An id at the limit is taken; past it, or not a string, refused.
    let (s, long) = web
        .post("meetups", &session, send(json!("x".repeat(256)), "june"))
        .await;
    assert_eq!(s, 200, "{long}");
    for bad in [json!("x".repeat(257)), json!(""), json!(7)] {
        let (s, refused) = web.post("meetups", &session, send(bad, "july")).await;
        assert_eq!(
            (s, refused["error"].as_str()),
            (
                400,
                Some("`messageId` must be a non-empty string of at most 256 characters")
            )
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_bot_is_picked_up_and_a_broken_change_refused() {
    let bot = crate::flow::support::write_bot(
        "",
        r#"
  - { id: intro, system: introduction, type: message, messages: [{ text: "Version one" }], goto: ask }
  - { id: ask, type: input, variable: name, question: "Name?", goto: done }
  - { id: done, type: message, messages: [{ text: "Bye {name}" }] }
"#,
        &[],
    );
    let data = tempfile::tempdir().unwrap();
    let mut config = crate::serve::webhook::config(bot.path(), &data.path().join("data"), "");
    config.reload_ms = 100;
    config.bots[0].channels.web = Some(Default::default());
    config.bots[0].channels.webhook.clear();
    let server = Server::start(&config).await.unwrap();
    let base = format!("http://{}", server.addr);
    let mut web = Web::new(&base, None);
    let text = |v: &Value, n: usize| {
        v["messages"][n]["config"]["textMessages"][0]["text"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let (_, first) = web.send("test", json!({"introMessage": {}})).await;
    assert_eq!(text(&first, 0), "Version one");

    // Mid-conversation (waiting for the name), the flow changes.
    let flows = bot.path().join("flows/main.yaml");
    let original = std::fs::read_to_string(&flows).unwrap();
    std::fs::write(
        &flows,
        original.replace("Bye {name}", "Goodbye {name}, from version two"),
    )
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while server.state.bots["test"]
        .bot()
        .blocks
        .iter()
        .all(|b| !format!("{:?}", b.kind).contains("version two"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the change was not picked up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (_, answer) = web
        .send("test", json!({"textMessage": {"text": "Ada"}}))
        .await;
    assert_eq!(
        text(&answer, 0),
        "Goodbye Ada, from version two",
        "the conversation continued"
    );

    // A broken change is refused; the previous version keeps serving.
    std::fs::write(&flows, original.replace("goto: done", "goto: nowhere")).unwrap();
    // Wait until the reloader has seen and refused it (a metric says so).
    let refused = "sandbot_bot_reloads_refused_total{tenant=\"one\",bot=\"test\"} 1";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !server
        .state
        .metrics
        .render(server.state.sandbox.idle_memory(), None)
        .contains(refused)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the change was not refused"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (_, again) = web.send("test", json!({"introMessage": {}})).await;
    assert_eq!(text(&again, 0), "Version one");
    // `name` is set, so the input is skipped and version two's `done` answers.
    assert_eq!(text(&again, 1), "Goodbye Ada, from version two");
    server.shutdown().await.unwrap();
}
