//! Deliveries that isolate tenants and never silently drop: a slow or
//! failing receiver of one tenant holds back only its own conversations; an
//! outage far longer than a few attempts loses nothing; what is finally
//! given up is a dead letter, listed and re-queueable.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use sandbot::serve::config::hash_token;
use sandbot::serve::{ServeConfig, Server};
use serde_json::{Value, json};

use crate::flow::support::write_bot;
use crate::serve::webhook::{BLOCKS, post};

/// A receiver per tenant path (`/a`, `/b`): records arrivals, answers after
/// `delay`, fails while `failing`.
#[derive(Clone, Default)]
struct Hooks(Arc<Mutex<HookState>>);

#[derive(Default)]
struct HookState {
    got: Vec<(String, Value, Instant)>,
    answered: Vec<(String, Instant)>,
    failing: Vec<String>,
    delay: Option<(String, Duration)>,
}

async fn hook(State(h): State<Hooks>, Path(who): Path<String>, Json(b): Json<Value>) -> StatusCode {
    let (delay, failing) = {
        let mut s = h.0.lock().unwrap();
        s.got.push((who.clone(), b, Instant::now()));
        let delay = s.delay.clone().filter(|(w, _)| *w == who).map(|(_, d)| d);
        (delay, s.failing.contains(&who))
    };
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    h.0.lock().unwrap().answered.push((who, Instant::now()));
    if failing {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

impl Hooks {
    async fn start(&self) -> String {
        let app = axum::Router::new()
            .route("/{who}", axum::routing::post(hook))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        base
    }

    fn count(&self, who: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .got
            .iter()
            .filter(|(w, _, _)| w == who)
            .count()
    }

    async fn wait_for(&self, who: &str, n: usize, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while self.count(who) < n {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }
}

/// Tenants `a` and `b` (tokens `token-a`, `token-b`), one bot each, whose
/// webhook channels deliver to `{base}/a` and `{base}/b`.
/// The config, and the bot folders (kept as long as the returned guards).
fn config(
    dir: &std::path::Path,
    base: &str,
    delivery: &str,
) -> (ServeConfig, [tempfile::TempDir; 2]) {
    let (a, b) = (write_bot("", BLOCKS, &[]), write_bot("", BLOCKS, &[]));
    for (bot, id) in [(&a, "bot-a"), (&b, "bot-b")] {
        std::fs::write(
            bot.path().join("bot.yaml"),
            format!("id: {id}\nname: {id}\n"),
        )
        .unwrap();
    }
    let yaml = format!(
        r#"
listen: 127.0.0.1:0
data: {data}
delivery: {delivery}
tenants:
  - {{ id: a, tokens: ["{ta}"], backlog: {{ conversation: 1000 }} }}
  - {{ id: b, tokens: ["{tb}"] }}
bots:
  - {{ folder: {fa}, tenant: a, channels: {{ webhook: [{{ id: hook-a, url: "{base}/a", verifyToken: v }}] }} }}
  - {{ folder: {fb}, tenant: b, channels: {{ webhook: [{{ id: hook-b, url: "{base}/b", verifyToken: v }}] }} }}
"#,
        data = dir.join("data").display(),
        ta = hash_token("token-a"),
        tb = hash_token("token-b"),
        fa = a.path().display(),
        fb = b.path().display(),
    );
    let path = dir.join("serve.yaml");
    std::fs::write(&path, yaml).unwrap();
    (ServeConfig::load(&path).unwrap(), [a, b])
}

/// The JSON body of an answer.
async fn body(res: reqwest::Response) -> Value {
    serde_json::from_str(&res.text().await.unwrap()).unwrap()
}

async fn intro(addr: &str, channel: &str, token: &str, conversation: &str) {
    let body = json!({"conversationId": conversation, "message": {"introMessage": {}}}).to_string();
    let (status, answer) = post(addr, channel, Some(token), &body).await;
    assert_eq!(status, 202, "{answer}");
}

/// Tenant a's receiver takes 3 s per message; tenant b's messages are all
/// delivered while a's first is still being answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_holds_back_only_its_own_conversations() {
    let hooks = Hooks::default();
    let base = hooks.start().await;
    hooks.0.lock().unwrap().delay = Some(("a".into(), Duration::from_secs(3)));
    let dir = tempfile::tempdir().unwrap();
    let (serve, _bots) = config(dir.path(), &base, "{}");
    let server = Server::start(&serve).await.unwrap();
    let addr = server.addr.to_string();
    for c in 0..3 {
        intro(&addr, "hook-a", "token-a", &format!("a{c}")).await;
    }
    assert!(hooks.wait_for("a", 3, Duration::from_secs(5)).await);
    let started = Instant::now();
    for c in 0..5 {
        intro(&addr, "hook-b", "token-b", &format!("b{c}")).await;
    }
    assert!(
        hooks.wait_for("b", 10, Duration::from_secs(10)).await,
        "b's 10 messages"
    );
    let took = started.elapsed();
    let answered_a = hooks
        .0
        .lock()
        .unwrap()
        .answered
        .iter()
        .filter(|(w, _)| w == "a")
        .count();
    assert_eq!(
        answered_a, 0,
        "b was delivered while a's receiver still held its first messages"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
    server.shutdown().await.unwrap();
}

/// Tenant a's receiver fails with a backlog of 1,200 deliveries in one
/// conversation; tenant b's are delivered at once all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receiver_with_a_backlog_does_not_stop_other_tenants() {
    let hooks = Hooks::default();
    let base = hooks.start().await;
    hooks.0.lock().unwrap().failing.push("a".into());
    let dir = tempfile::tempdir().unwrap();
    let (serve, _bots) = config(dir.path(), &base, "{}");
    let server = Server::start(&serve).await.unwrap();
    let addr = server.addr.to_string();
    for _ in 0..600 {
        intro(&addr, "hook-a", "token-a", "a-backlog").await;
    }
    // Wait for a's turns: 1,200 deliveries queued behind a failing first one.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server
        .state
        .store
        .inbox_conversations()
        .await
        .unwrap()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "a's turns did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The backlog shows in the metrics: every delivery of a's still queued.
    crate::common::assert_metrics(
        &format!("http://{addr}"),
        &[
            "sandbot_inbox_messages{tenant=\"a\",bot=\"bot-a\"} 0",
            "sandbot_outbox_deliveries{tenant=\"a\",bot=\"bot-a\"} 1200",
            "sandbot_outbox_deliveries{tenant=\"b\",bot=\"bot-b\"} 0",
        ],
    )
    .await;
    for c in 0..5 {
        intro(&addr, "hook-b", "token-b", &format!("b{c}")).await;
    }
    assert!(
        hooks.wait_for("b", 10, Duration::from_secs(5)).await,
        "b delivered despite a's backlog"
    );
    assert!(hooks.count("a") >= 1, "a is being retried");
    server.shutdown().await.unwrap();
}

/// Retries go on far past a few attempts (the clock shortened: 10 ms
/// doubling to 40 ms): a 1.5 s outage, ~40 failed attempts, loses nothing.
/// With a retry period of 0, a failure is a dead letter at once: listed,
/// counted, and re-queued once the receiver is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_outage_loses_nothing_and_dead_letters_can_be_requeued() {
    let hooks = Hooks::default();
    let base = hooks.start().await;
    hooks.0.lock().unwrap().failing.push("a".into());
    let dir = tempfile::tempdir().unwrap();
    let delivery = "{ firstRetryMs: 10, maxRetryMs: 40, giveUpAfterSeconds: 60 }";
    let (serve, _bots) = config(dir.path(), &base, delivery);
    let server = Server::start(&serve).await.unwrap();
    let addr = server.addr.to_string();
    intro(&addr, "hook-a", "token-a", "a1").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let failed = hooks.count("a");
    assert!(failed > 8, "more attempts than the old cut-off: {failed}");
    hooks.0.lock().unwrap().failing.clear();
    assert!(
        hooks
            .wait_for("a", failed + 2, Duration::from_secs(5))
            .await
    );
    let texts: Vec<Value> = hooks
        .0
        .lock()
        .unwrap()
        .got
        .iter()
        .rev()
        .take(2)
        .map(|(_, b, _)| b["message"]["text"].clone())
        .collect();
    assert_eq!(texts[1], "Hi", "both messages, in order, after the outage");
    server.shutdown().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let delivery = "{ giveUpAfterSeconds: 0 }";
    let (serve, _bots) = config(dir.path(), &base, delivery);
    let server = Server::start(&serve).await.unwrap();
    let addr = server.addr.to_string();
    hooks.0.lock().unwrap().failing.push("b".into());
    intro(&addr, "hook-b", "token-b", "b1").await;
    let api = |path: &str, token: &str, method: reqwest::Method| {
        reqwest::Client::new()
            .request(method, format!("http://{addr}{path}"))
            .bearer_auth(token)
            .send()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let listed: Value = loop {
        let res = api("/v1/deliveries/dead", "token-b", reqwest::Method::GET)
            .await
            .unwrap();
        let v = body(res).await;
        if v["data"].as_array().unwrap().len() == 2 {
            break v;
        }
        assert!(Instant::now() < deadline, "two dead letters: {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let first = &listed["data"][0];
    assert_eq!(
        (first["botId"].as_str(), first["conversationId"].as_str()),
        (Some("bot-b"), Some("b1"))
    );
    assert_eq!(first["reason"], "answered 500 Internal Server Error");
    assert_eq!(first["body"]["message"]["text"], "Hi");
    // Another tenant sees none of them and cannot re-queue them.
    let other = body(
        api("/v1/deliveries/dead", "token-a", reqwest::Method::GET)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(other["data"], json!([]));
    let id = first["id"].as_u64().unwrap();
    let path = format!("/v1/deliveries/dead/{id}/requeue");
    assert_eq!(
        api(&path, "token-a", reqwest::Method::POST)
            .await
            .unwrap()
            .status(),
        404
    );
    crate::common::assert_metrics(
        &format!("http://{addr}"),
        &["sandbot_dead_letters_total{tenant=\"b\",bot=\"bot-b\"} 2"],
    )
    .await;
    // The receiver is back: re-queued, delivered.
    hooks.0.lock().unwrap().failing.clear();
    let before = hooks.count("b");
    let res = api(&path, "token-b", reqwest::Method::POST).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        hooks
            .wait_for("b", before + 1, Duration::from_secs(5))
            .await
    );
    let last = hooks.0.lock().unwrap().got.last().unwrap().1.clone();
    assert_eq!(last["message"]["text"], "Hi");
    let left = body(
        api("/v1/deliveries/dead", "token-b", reqwest::Method::GET)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(left["data"].as_array().unwrap().len(), 1);
    server.shutdown().await.unwrap();
}
