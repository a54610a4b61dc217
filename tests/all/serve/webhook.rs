//! `sandbot serve` over real sockets on 127.0.0.1: the webhook channel's
//! round trip, its auth matrix and bad input, ordered processing, and the
//! durable delivery queue across a receiver that fails and a restart.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use sandbot::serve::config::hash_token;
use sandbot::serve::{ServeConfig, Server};
use serde_json::{Value, json};

use crate::flow::support::write_bot;

/// Records every POST; answers 500 to the first `fail` of them.
#[derive(Clone, Default)]
pub struct Receiver {
    got: Arc<Mutex<Vec<Value>>>,
    fail: Arc<Mutex<u32>>,
    failed: Arc<Mutex<u32>>,
}

impl Receiver {
    pub async fn start(fail: u32) -> (Receiver, String) {
        let r = Receiver::default();
        *r.fail.lock().unwrap() = fail;
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (r, url)
    }

    pub fn messages(&self) -> Vec<Value> {
        self.got.lock().unwrap().clone()
    }

    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.messages().len() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.messages()
    }

    /// What was delivered to `conversation` for the messages it had before now:
    /// a REST action queues a marker message behind them (turns run in
    /// order, and the call returns once its turn is committed), then waits
    /// for the marker's delivery (deliveries go out in order). What came
    /// before the marker, instead of a fixed sleep that cannot tell
    /// "refused" from "not run yet".
    /// A conversation whose first turn has not committed yet is unknown to
    /// the REST API (404): the marker is sent again until it is known.
    pub async fn drained(&self, addr: &str, conversation: &str) -> Vec<Value> {
        let marker = format!("marker {}", self.messages().len());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let res = reqwest::Client::new()
                .post(format!(
                    "http://{addr}/v1/bots/test/conversations/{conversation}/actions"
                ))
                .header("authorization", "Bearer token-one")
                .header("content-type", "application/json")
                .body(
                    serde_json::json!({"sendMessages": [{"textMessageTemplate": {"text": marker}}]})
                        .to_string(),
                )
                .send()
                .await
                .unwrap();
            if res.status() == 404 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
            break;
        }
        loop {
            let got: Vec<Value> = self
                .messages()
                .into_iter()
                .filter(|m| m["recipient"]["id"] == conversation)
                .collect();
            if let Some(at) = got
                .iter()
                .position(|m| m["message"]["text"] == marker.as_str())
            {
                return got[..at].to_vec();
            }
            assert!(Instant::now() < deadline, "no {marker} delivered: {got:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn receive(State(r): State<Receiver>, Json(body): Json<Value>) -> StatusCode {
    {
        let mut fail = r.fail.lock().unwrap();
        if *fail > 0 {
            *fail -= 1;
            *r.failed.lock().unwrap() += 1;
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
    }
    r.got.lock().unwrap().push(body);
    StatusCode::OK
}

pub const BLOCKS: &str = r#"
  - { id: intro, system: introduction, type: message, messages: [{ text: "Hi" }, { text: "Pick", quickReplies: [{ title: Yes, goto: yes }] }] }
  - { id: yes, type: message, messages: [{ text: "You said yes" }] }
"#;

pub fn config(bot: &Path, data: &Path, url: &str) -> ServeConfig {
    config_with_rate(bot, data, url, 1000)
}

/// Tenant `one` (token `token-one`, `rate` REST requests an hour) owns the
/// bot; tenant `two` (token `token-two`) owns nothing.
pub fn config_with_rate(bot: &Path, data: &Path, url: &str, rate: u32) -> ServeConfig {
    let yaml = format!(
        r#"
listen: 127.0.0.1:0
data: {data}
tenants:
  - {{ id: one, tokens: ["{t1}"], rateLimit: {{ requests: {rate}, seconds: 3600 }} }}
  - {{ id: two, tokens: ["{t2}"] }}
bots:
  - folder: {bot}
    tenant: one
    channels:
      webhook: [{{ id: hook, url: "{url}", verifyToken: vt-123 }}]
"#,
        data = data.display(),
        bot = bot.display(),
        t1 = hash_token("token-one"),
        t2 = hash_token("token-two"),
    );
    let dir = data.parent().unwrap().join("serve.yaml");
    std::fs::write(&dir, yaml).unwrap();
    ServeConfig::load(&dir).unwrap()
}

pub async fn post(addr: &str, channel: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!(
            "http://{addr}/v1/channels/webhook/{channel}/messages"
        ))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A server for the bot in `bot`, delivering to a fresh receiver; the data
/// folder lives as long as the returned guard.
async fn serve_with_receiver(bot: &Path) -> (Server, Receiver, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let (receiver, url) = Receiver::start(0).await;
    let server = Server::start(&config(bot, &data.path().join("data"), &url))
        .await
        .unwrap();
    (server, receiver, data)
}

/// Posts `body` with the right token; it must be accepted.
pub async fn accepted(addr: &str, body: Value) {
    let (status, answer) = post(addr, "hook", Some("token-one"), &body.to_string()).await;
    assert_eq!(status, 202, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_round_trip_auth_and_bad_input() {
    let bot = write_bot("", BLOCKS, &[]);
    let (server, receiver, _data) = serve_with_receiver(bot.path()).await;
    let addr = server.addr.to_string();

    let intro = r#"{"conversationId": "c1", "message": {"introMessage": {}}}"#;
    // Auth matrix: no token, a wrong one, another tenant's, the right one.
    // An unknown channel answers exactly as a wrong token (no enumeration).
    let refused = post(&addr, "hook", None, intro).await;
    assert_eq!(refused.0, 401);
    assert_eq!(post(&addr, "hook", Some("nope"), intro).await, refused);
    assert_eq!(post(&addr, "hook", Some("token-two"), intro).await, refused);
    assert_eq!(post(&addr, "nope", None, intro).await, refused);
    assert_eq!(post(&addr, "nope", Some("token-one"), intro).await, refused);
    let (status, body) = post(&addr, "hook", Some("token-one"), "{not json").await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("JSON"), "{body}");
    let (status, body) = post(
        &addr,
        "hook",
        Some("token-one"),
        r#"{"conversationId": "c1"}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("message.textMessage")
    );
    let big = format!(
        r#"{{"conversationId": "c1", "message": {{"textMessage": {{"text": "{}"}}}}}}"#,
        "x".repeat(300 << 10)
    );
    assert_eq!(post(&addr, "hook", Some("token-one"), &big).await.0, 413);
    assert!(receiver.messages().is_empty(), "nothing was processed");

    let (status, body) = post(&addr, "hook", Some("token-one"), intro).await;
    assert_eq!((status, body["accepted"].clone()), (202, json!(true)));
    let got = receiver.wait_for(2).await;
    assert_eq!(
        got[0],
        json!({
            "senderId": "c1", "recipient": {"id": "c1"}, "verifyToken": "vt-123", "messageCounter": 1,
            "message": {"text": "Hi"}, "nlp": {"intent": {"name": null, "score": 0}}
        })
    );
    assert_eq!(got[1]["messageCounter"], 2);
    let reply = &got[1]["message"]["quick_replies"][0];
    assert_eq!(reply["title"], "Yes");
    // The opaque payload comes back as a postback.
    let postback = json!({"conversationId": "c1", "message": {"postbackMessage": {"title": "Yes", "payload": reply["payload"]}}});
    accepted(&addr, postback).await;
    let got = receiver.wait_for(3).await;
    assert_eq!(got[2]["message"], json!({"text": "You said yes"}));
    assert_eq!(got[2]["messageCounter"], 3);

    let health = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        reqwest::get(format!("http://{addr}/readyz"))
            .await
            .unwrap()
            .status(),
        200
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_of_a_conversation_are_processed_in_order() {
    let blocks = r#"
  - { id: intro, system: introduction, type: message, messages: [{ text: "Hi" }] }
"#;
    let bot = write_bot("", blocks, &[]);
    // Not understood answers every text: make it echo.
    let flows = std::fs::read_to_string(bot.path().join("flows/main.yaml")).unwrap();
    std::fs::write(
        bot.path().join("flows/main.yaml"),
        flows.replace("text: \"NU\"", "text: \"echo {internal.messageContent}\""),
    )
    .unwrap();
    let (server, receiver, _data) = serve_with_receiver(bot.path()).await;
    let addr = server.addr.to_string();
    for n in 0..20 {
        let body =
            json!({"conversationId": "c1", "message": {"textMessage": {"text": format!("m{n}")}}});
        accepted(&addr, body).await;
    }
    let got = receiver.wait_for(20).await;
    let texts: Vec<&str> = got
        .iter()
        .map(|m| m["message"]["text"].as_str().unwrap())
        .collect();
    let want: Vec<String> = (0..20).map(|n| format!("echo m{n}")).collect();
    assert_eq!(texts, want);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_retry_survive_a_restart_and_are_not_repeated() {
    let bot = write_bot("", BLOCKS, &[]);
    let data = tempfile::tempdir().unwrap();
    let (receiver, url) = Receiver::start(2).await;
    let config = config(bot.path(), &data.path().join("data"), &url);
    let server = Server::start(&config).await.unwrap();
    let intro = r#"{"conversationId": "c1", "message": {"introMessage": {}}}"#;
    assert_eq!(
        post(&server.addr.to_string(), "hook", Some("token-one"), intro)
            .await
            .0,
        202
    );
    // The first attempt fails; restart before the retry is due.
    let deadline = Instant::now() + Duration::from_secs(10);
    while *receiver.failed.lock().unwrap() < 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.shutdown().await.unwrap();
    assert!(receiver.messages().is_empty());

    let server = Server::start(&config).await.unwrap();
    let got = receiver.wait_for(2).await;
    assert_eq!(
        *receiver.failed.lock().unwrap(),
        2,
        "failed twice, then delivered"
    );
    let counters: Vec<u64> = got
        .iter()
        .map(|m| m["messageCounter"].as_u64().unwrap())
        .collect();
    assert_eq!(counters, [1, 2], "in order, once each");
    tokio::time::sleep(Duration::from_millis(600)).await;
    server.shutdown().await.unwrap();
    // Another restart delivers nothing again.
    let server = Server::start(&config).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(receiver.messages().len(), 2);
    assert!(server.state.store.outbox(10).await.unwrap().is_empty());
    server.shutdown().await.unwrap();
}

/// A tenant whose memory limit cannot even start the JS runner is refused when
/// the server starts, saying why; at the runner's size it starts.
#[tokio::test]
async fn a_tenant_memory_limit_below_the_js_runner_is_refused_at_start() {
    let bot = write_bot("", BLOCKS, &[]);
    let data = tempfile::tempdir().unwrap();
    let start = |mib: u64| {
        let mut config = config(bot.path(), &data.path().join("data"), "http://127.0.0.1:9/");
        config.tenants[0].limits.memory_mib = Some(mib);
        async move { Server::start(&config).await }
    };
    let err = match start(16).await {
        Ok(_) => panic!("a 16 MiB tenant must be refused"),
        Err(e) => format!("{e:#}"),
    };
    let needed = sandbot::sandbox::initial_memory_bytes(sandbot::sandbox::JS_RUNNER);
    let expected = format!(
        "tenant `one` limits: the memory limit of 16 MiB is below the {:.1} MiB the JavaScript runner needs to start",
        needed as f64 / f64::from(1 << 20)
    );
    assert!(err.contains(&expected), "{err}");
    let server = start(needed.div_ceil(1 << 20)).await.unwrap();
    server.shutdown().await.unwrap();
}

/// With a `metricsToken`, `/metrics` (every tenant's figures) needs it, on
/// this machine too; without one it answers this machine only (unit test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_their_token_when_one_is_set() {
    let bot = write_bot("", BLOCKS, &[]);
    let data = tempfile::tempdir().unwrap();
    let mut config = config(bot.path(), &data.path().join("data"), "http://127.0.0.1:9/");
    config.metrics_token = Some("m-secret".into());
    let server = Server::start(&config).await.unwrap();
    let url = format!("http://{}/metrics", server.addr);
    let get = |token: Option<&'static str>| {
        let mut req = reqwest::Client::new().get(url.clone());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move {
            let res = req.send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    for token in [None, Some("wrong")] {
        let (status, body) = get(token).await;
        assert_eq!(status, 401, "{body}");
        assert!(body.contains("/metrics needs its bearer token"), "{body}");
    }
    let (status, body) = get(Some("m-secret")).await;
    assert_eq!(status, 200);
    assert!(body.contains("# TYPE"), "{body}");
    server.shutdown().await.unwrap();
}
