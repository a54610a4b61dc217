//! `sandbot serve` processes for crash and multi-node tests: an echo bot, a
//! receiver for its webhook deliveries, senders that retry each message
//! (same `messageId`) until a 2xx, and the checks that every accepted
//! message was processed once, in order, and every reply delivered in order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use sandbot::store::Store;
use serde_json::{Value, json};

/// Messages per conversation at least; senders go on until told to stop.
pub const MESSAGES: usize = 20;

pub fn random_below(n: u64) -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    u64::from_le_bytes(b) % n
}

/// The echo bot (id `echo`) in `dir/bot`.
pub fn write_bot(dir: &Path) {
    let dir = dir.join("bot");
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

/// Every delivery, in arrival order.
#[derive(Clone, Default)]
pub struct Received(Arc<Mutex<Vec<Reply>>>);

/// One delivery as it arrived.
struct Reply {
    conversation: String,
    counter: u64,
    text: String,
    /// Milliseconds since the epoch.
    at_ms: u64,
}

async fn receive(State(got): State<Received>, Json(b): Json<Value>) -> &'static str {
    got.0.lock().unwrap().push(Reply {
        conversation: b["recipient"]["id"].as_str().unwrap().to_string(),
        counter: b["messageCounter"].as_u64().unwrap(),
        text: b["message"]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        at_ms: sandbot::store::now_ms(),
    });
    "ok"
}

impl Received {
    /// Starts the receiver; its URL.
    pub async fn start(&self) -> String {
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    fn distinct(&self) -> usize {
        let mut seen: Vec<(String, u64)> = self
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|r| (r.conversation.clone(), r.counter))
            .collect();
        seen.sort();
        seen.dedup();
        seen.len()
    }

    /// Waits until `n` distinct replies arrived (a minute at most).
    pub async fn wait_for(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.distinct() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// When the first of `conversation`'s replies arriving at or after
    /// `since_ms` arrived (ms since the epoch).
    #[allow(dead_code)] // not by every test binary that includes the cluster
    pub fn first_since(&self, conversation: &str, since_ms: u64) -> Option<u64> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .find(|r| r.conversation == conversation && r.at_ms >= since_ms)
            .map(|r| r.at_ms)
    }

    /// Per conversation: (messageCounter, text) in order of first arrival.
    fn per_conversation(&self) -> BTreeMap<String, Vec<(u64, String)>> {
        let mut replies: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
        for r in self.0.lock().unwrap().iter() {
            let mine = replies.entry(r.conversation.clone()).or_default();
            if !mine.iter().any(|(m, _)| *m == r.counter) {
                mine.push((r.counter, r.text.clone()));
            }
        }
        replies
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes a serve config for the echo bot in `dir/bot`: tenant `one`
/// (token `token-one`), its webhook channel `hook` delivering to `hook`;
/// `extra` is added as it is (a store, a secret).
pub fn write_config(path: &Path, port: u16, data: &str, extra: &str, hook: &str) {
    let token = sandbot::serve::config::hash_token("token-one");
    std::fs::write(
        path,
        format!(
            "listen: 127.0.0.1:{port}\ndata: {data}\n{extra}tenants:\n  - {{ id: one, tokens: [\"{token}\"] }}\n\
             bots:\n  - folder: bot\n    tenant: one\n    channels:\n      webhook: [{{ id: hook, url: \"{hook}\", verifyToken: v }}]\n"
        ),
    )
    .unwrap();
}

/// One sender per conversation (`converse`), until `finish`.
pub struct Load {
    going: Arc<AtomicBool>,
    senders: Vec<tokio::task::JoinHandle<(usize, usize)>>,
}

impl Load {
    pub fn start(client: &reqwest::Client, bases: &[String], conversations: usize) -> Load {
        Self::retrying(client, bases, conversations, &[429])
    }

    /// As [`Load::start`], the senders sending again on a 2xx-less answer
    /// with one of the `retried` statuses (any other fails the test).
    pub fn retrying(
        client: &reqwest::Client,
        bases: &[String],
        conversations: usize,
        retried: &'static [u16],
    ) -> Load {
        let going = Arc::new(AtomicBool::new(true));
        let senders = (0..conversations)
            .map(|c| {
                let (client, bases, going) = (client.clone(), bases.to_vec(), going.clone());
                tokio::spawn(converse(client, bases, c, going, retried))
            })
            .collect();
        Load { going, senders }
    }

    /// Stops the senders after their current message: messages sent per
    /// conversation, and how many sends failed on the way (all of them).
    pub async fn finish(self) -> (Vec<usize>, usize) {
        self.going.store(false, Ordering::SeqCst);
        let mut sent = Vec::new();
        let mut failed_sends = 0;
        for s in self.senders {
            let (n, failed) = s.await.unwrap();
            sent.push(n);
            failed_sends += failed;
        }
        (sent, failed_sends)
    }
}

/// Starts `sandbot serve --config config`, its stderr appended to `log`.
pub fn start(config: &Path, log: &Path) -> Child {
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
        .env_remove("SANDBOT_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Stops a server gracefully (SIGTERM) and waits for it: a server not gone
/// within 30 s is killed and the test fails (a stop that hangs would hang
/// the test run).
pub fn stop(mut server: Child) {
    let pid = server.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            server.kill().unwrap();
            server.wait().unwrap();
            panic!("the server (pid {pid}) did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub async fn ready(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the server at {base} did not become ready");
}

/// Sends conversation `c`'s messages in order, each (to a random one of
/// `bases`) until it gets a 2xx — sending again after a connection error or
/// a `retried` status —, until `stop` is set and `MESSAGES` are sent;
/// returns how many it sent and how many sends failed on the way.
pub async fn converse(
    client: reqwest::Client,
    bases: Vec<String>,
    c: usize,
    going: Arc<AtomicBool>,
    retried: &[u16],
) -> (usize, usize) {
    let mut failed = 0;
    let mut n = 0;
    while n < MESSAGES || going.load(Ordering::SeqCst) {
        let body = json!({
            "conversationId": format!("c{c}"),
            "messageId": format!("c{c}-m{n}"),
            "message": {"textMessage": {"text": format!("m{n}")}},
        });
        loop {
            let base = &bases[random_below(bases.len() as u64) as usize];
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
                Ok(r) => {
                    let status = r.status().as_u16();
                    assert!(
                        retried.contains(&status),
                        "{status}: only {retried:?} and crashes fail a send"
                    );
                    failed += 1;
                }
                Err(_) => failed += 1,
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(5 + random_below(20))).await;
    }
    (n, failed)
}

/// The user's messages in the echo bot's conversation `conv`, in order.
pub async fn users(store: &dyn Store, conv: &str) -> Vec<String> {
    store
        .transcript("echo", conv, 0, 100_000)
        .await
        .unwrap()
        .iter()
        .filter_map(|e| {
            e.event
                .get("user")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect()
}

/// Every conversation's transcript holds its inputs once each, in order;
/// its replies arrived in order (at least once), one per input.
pub async fn check(store: &dyn Store, sent: &[usize], received: &Received, log: &str) {
    let replies = received.per_conversation();
    for (c, n) in sent.iter().enumerate() {
        let conv = format!("c{c}");
        let inputs: Vec<String> = (0..*n).map(|n| format!("m{n}")).collect();
        let users = users(store, &conv).await;
        assert_eq!(
            users, inputs,
            "{conv}: each accepted message processed once, in order\n{log}"
        );
        let mine = &replies[&conv];
        let counters: Vec<u64> = mine.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            counters,
            (1..=*n as u64).collect::<Vec<_>>(),
            "{conv}: replies in order"
        );
        let texts: Vec<String> = mine.iter().map(|(_, t)| t.clone()).collect();
        let want: Vec<String> = inputs.iter().map(|m| format!("echo {m}")).collect();
        assert_eq!(texts, want);
    }
    assert!(
        store.inbox_conversations().await.unwrap().is_empty(),
        "nothing left waiting"
    );
}
