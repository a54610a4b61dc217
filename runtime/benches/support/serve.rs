//! What the benches that load `sandbot serve` share: the server as its own
//! process, a receiver for the bot's deliveries counting answers per
//! conversation, and waiting for readiness.

use std::collections::HashMap;
use std::future::Future;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use serde_json::Value;
use tokio::sync::Notify;

/// Conversation → (answers received, notify).
pub type Inbox = Arc<Mutex<HashMap<String, (u64, Arc<Notify>)>>>;

/// A receiver on 127.0.0.1: its inbox and its URL for the webhook channel.
pub async fn receiver() -> (Inbox, String) {
    let inbox: Inbox = Arc::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (inbox, hook)
}

/// The notifier of `conversation`'s answers (created on first use).
pub fn notifier(inbox: &Inbox, conversation: &str) -> Arc<Notify> {
    let mut map = inbox.lock().unwrap();
    map.entry(conversation.to_string())
        .or_insert_with(|| (0, Arc::new(Notify::new())))
        .1
        .clone()
}

async fn receive(State(inbox): State<Inbox>, Json(body): Json<Value>) -> &'static str {
    let conv = body["senderId"].as_str().unwrap_or_default().to_string();
    let notify = {
        let mut map = inbox.lock().unwrap();
        let entry = map
            .entry(conv)
            .or_insert_with(|| (0, Arc::new(Notify::new())));
        entry.0 += 1;
        entry.1.clone()
    };
    notify.notify_one();
    "ok"
}

/// A `sandbot serve` process, stopped gracefully (SIGTERM) when dropped.
pub struct ServerProcess(pub Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let _ = self.0.wait();
    }
}

/// Waits (at most 10 s) until the server at `base` is ready.
pub async fn ready(client: &reqwest::Client, base: &str) {
    for _ in 0..200 {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `lanes` closed loops at once for `seconds`: each gets its index and
/// a stop flag, and returns its latencies. All of them, sorted.
pub async fn closed_loops<F, Fut>(lanes: usize, seconds: u64, lane: F) -> Vec<Duration>
where
    F: Fn(usize, Arc<AtomicBool>) -> Fut,
    Fut: Future<Output = Vec<Duration>> + Send + 'static,
{
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..lanes)
        .map(|i| tokio::spawn(lane(i, stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    all
}

/// One webhook turn of a closed loop: posts message `n` of `conversation`
/// to `url` (a webhook channel's messages URL) with `token`, then waits for
/// its answer at the receiver. Its POST→delivery latency.
pub async fn webhook_turn(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    inbox: &Inbox,
    conversation: &str,
    n: u64,
) -> Duration {
    let notify = notifier(inbox, conversation);
    let t = Instant::now();
    let body = serde_json::json!({"conversationId": conversation, "message": {"textMessage": {"text": format!("m{n}")}}});
    let res = client
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    while inbox.lock().unwrap()[conversation].0 <= n {
        let _ = tokio::time::timeout(Duration::from_millis(100), notify.notified()).await;
    }
    t.elapsed()
}
