//! `sandbot serve` on the embedded store, under load, killed with SIGKILL at
//! random moments (3 times) and restarted: every message that got a 2xx is
//! processed exactly once, in order per conversation, and every reply is
//! delivered at least once, in order. The load generator is a sender that
//! retries (same `messageId`) until it gets a 2xx, as Chatlayer's channels do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use sandbot::serve::config::hash_token;
use sandbot::store::{EmbeddedStore, Store};
use serde_json::{Value, json};

const CONVERSATIONS: usize = 8;
/// Messages per conversation at least; senders go on until the kills are over.
const MESSAGES: usize = 20;

fn random_below(n: u64) -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    u64::from_le_bytes(b) % n
}

fn write_bot(dir: &Path) {
    std::fs::create_dir_all(dir.join("flows")).unwrap();
    std::fs::write(dir.join("bot.yaml"), "id: echo\nname: Echo\n").unwrap();
    std::fs::write(
        dir.join("flows/main.yaml"),
        r#"blocks:
  - { id: intro, system: introduction, type: message, messages: [{ text: "Hi" }] }
  - { id: not-understood, system: notUnderstood, type: message, messages: [{ text: "echo {internal.messageContent}" }] }
  - { id: error, system: errorOccurred, type: message, messages: [{ text: "ERR" }] }
  - { id: disabled, system: botDisabled, type: message, messages: [{ text: "OFF" }] }
"#,
    )
    .unwrap();
}

/// (conversation, messageCounter, text) of every delivery, in arrival order.
type Got = Arc<Mutex<Vec<(String, u64, String)>>>;

async fn receive(State(got): State<Got>, Json(b): Json<Value>) -> &'static str {
    got.lock().unwrap().push((
        b["recipient"]["id"].as_str().unwrap().to_string(),
        b["messageCounter"].as_u64().unwrap(),
        b["message"]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    ));
    "ok"
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(config: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache");
    Command::new(env!("CARGO_BIN_EXE_sandbot"))
        .args(["serve", "--config"])
        .arg(config)
        .env("SANDBOT_CACHE_DIR", cache)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

async fn ready(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the server did not become ready");
}

/// Sends the conversation's messages in order, each until it gets a 2xx,
/// until the kills are over; returns how many it sent and how many sends
/// failed on the way.
async fn converse(
    client: reqwest::Client,
    base: String,
    c: usize,
    killing: Arc<AtomicBool>,
) -> (usize, usize) {
    let mut failed = 0;
    let mut n = 0;
    while n < MESSAGES || killing.load(Ordering::SeqCst) {
        let body = json!({
            "conversationId": format!("c{c}"),
            "messageId": format!("c{c}-m{n}"),
            "message": {"textMessage": {"text": format!("m{n}")}},
        });
        loop {
            let sent = client
                .post(format!("{base}/v1/channels/webhook/hook/messages"))
                .bearer_auth("token-one")
                .header("content-type", "application/json")
                .body(body.to_string())
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => break,
                Ok(r) => assert_eq!(r.status(), 429, "only refusals and crashes fail a send"),
                Err(_) => failed += 1,
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(5 + random_below(20))).await;
    }
    (n, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_and_repeats_no_message() {
    let dir = tempfile::tempdir().unwrap();
    write_bot(&dir.path().join("bot"));
    let got: Got = Default::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let port = free_port();
    let config = dir.path().join("serve.yaml");
    std::fs::write(
        &config,
        format!(
            r#"listen: 127.0.0.1:{port}
data: data
tenants:
  - {{ id: one, tokens: ["{token}"] }}
bots:
  - folder: bot
    tenant: one
    channels:
      webhook: [{{ id: hook, url: "{hook}", verifyToken: v }}]
"#,
            token = hash_token("token-one")
        ),
    )
    .unwrap();
    let log = dir.path().join("serve.log");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut server = start(&config, &log);
    ready(&client, &base).await;

    let killing = Arc::new(AtomicBool::new(true));
    let senders: Vec<_> = (0..CONVERSATIONS)
        .map(|c| tokio::spawn(converse(client.clone(), base.clone(), c, killing.clone())))
        .collect();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(200 + random_below(400))).await;
        server.kill().unwrap(); // SIGKILL
        server.wait().unwrap();
        server = start(&config, &log);
        ready(&client, &base).await;
    }
    killing.store(false, Ordering::SeqCst);
    let mut sent = Vec::new();
    let mut failed_sends = 0;
    for s in senders {
        let (n, failed) = s.await.unwrap();
        sent.push(n);
        failed_sends += failed;
    }
    eprintln!("sent {sent:?}, {failed_sends} sends failed during the kills");
    assert!(
        failed_sends > 0,
        "the kills happened while messages were being sent"
    );
    // Every reply arrives (at least once).
    let want: usize = sent.iter().sum();
    let deadline = Instant::now() + Duration::from_secs(60);
    let distinct = |got: &Got| {
        let mut seen: Vec<(String, u64)> = got
            .lock()
            .unwrap()
            .iter()
            .map(|(c, n, _)| (c.clone(), *n))
            .collect();
        seen.sort();
        seen.dedup();
        seen.len()
    };
    while distinct(&got) < want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A graceful stop, then read what the store holds.
    let pid = server.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    server.wait().unwrap();
    let log_text = std::fs::read_to_string(&log).unwrap();

    let mut replies: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
    for (c, n, text) in got.lock().unwrap().iter() {
        let mine = replies.entry(c.clone()).or_default();
        if !mine.iter().any(|(m, _)| m == n) {
            mine.push((*n, text.clone()));
        }
    }
    let store = EmbeddedStore::open(
        &dir.path().join("data/sandbot.redb"),
        Duration::from_secs(3600),
    )
    .unwrap();
    for (c, n) in sent.iter().enumerate() {
        let conv = format!("c{c}");
        let inputs: Vec<String> = (0..*n).map(|n| format!("m{n}")).collect();
        let users: Vec<String> = store
            .transcript("echo", &conv, 0, 10_000)
            .await
            .unwrap()
            .iter()
            .filter_map(|e| {
                e.event
                    .get("user")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .collect();
        assert_eq!(
            users, inputs,
            "{conv}: each accepted message processed once, in order\n{log_text}"
        );
        let mine = &replies[&conv];
        let counters: Vec<u64> = mine.iter().map(|(n, _)| *n).collect();
        let texts: Vec<String> = mine.iter().map(|(_, t)| t.clone()).collect();
        assert_eq!(
            counters,
            (1..=*n as u64).collect::<Vec<_>>(),
            "{conv}: replies in order"
        );
        assert_eq!(
            texts,
            inputs
                .iter()
                .map(|m| format!("echo {m}"))
                .collect::<Vec<_>>()
        );
    }
    assert!(
        store.inbox_conversations().await.unwrap().is_empty(),
        "nothing left waiting"
    );
}
