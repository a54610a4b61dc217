//! *Silence detected* over real sockets: the event's message is delivered
//! once after the configured time, not when the user answered, and also
//! when the time passed while the server was down (the timer is durable).
//! A minute lasts 100 ms here (`silenceMinuteMs`).

use std::time::{Duration, Instant};

use sandbot::serve::Server;
use serde_json::{Value, json};

use crate::flow::support::write_bot;
use crate::serve::webhook::{Receiver, accepted};

const BOT: &str = "events:\n  silenceDetected: { minutes: 3, goto: nudge }\n";
const BLOCKS: &str = r#"
  - { id: intro, system: introduction, type: input, variable: name, question: "Your name?", nlp: false, goto: hello }
  - { id: hello, type: message, messages: [{ text: "Hello {name}" }] }
  - { id: nudge, type: message, messages: [{ text: "Still there?" }] }
"#;

async fn serve(bot: &std::path::Path, data: &std::path::Path, receiver: &str) -> Server {
    let setup = crate::common::Setup {
        top: "silenceMinuteMs: 100\n",
        hook_url: Some(receiver),
        ..Default::default()
    };
    crate::common::serve_bot(data, bot, setup).await
}

/// The texts delivered to `conversation`, in order.
fn texts(receiver: &Receiver, conversation: &str) -> Vec<String> {
    receiver
        .messages()
        .iter()
        .filter(|m| m["recipient"]["id"] == conversation)
        .filter_map(|m| m["message"]["text"].as_str().map(str::to_string))
        .collect()
}

/// Waits (at most 10 s) until `conversation` got `n` texts.
async fn wait_texts(receiver: &Receiver, conversation: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while texts(receiver, conversation).len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    texts(receiver, conversation)
}

fn intro(conversation: &str) -> Value {
    json!({"conversationId": conversation, "message": {"introMessage": {}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_detected_fires_once_not_after_an_answer_and_across_a_restart() {
    let bot = write_bot(BOT, BLOCKS, &[]);
    let data = tempfile::tempdir().unwrap();
    let (receiver, url) = Receiver::start(0).await;
    let server = serve(bot.path(), data.path(), &url).await;
    let addr = server.addr.to_string();

    // Silent: the nudge comes after 3 "minutes", once.
    accepted(&addr, intro("quiet")).await;
    // Answered at once: no nudge.
    accepted(&addr, intro("talker")).await;
    assert_eq!(wait_texts(&receiver, "talker", 1).await, ["Your name?"]);
    let answer = json!({"conversationId": "talker", "message": {"textMessage": {"text": "Ann"}}});
    accepted(&addr, answer).await;
    assert_eq!(
        wait_texts(&receiver, "quiet", 2).await,
        ["Your name?", "Still there?"]
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(texts(&receiver, "quiet"), ["Your name?", "Still there?"]);
    assert_eq!(texts(&receiver, "talker"), ["Your name?", "Hello Ann"]);

    // The time passes while the server is down: the next start fires it.
    accepted(&addr, intro("restart")).await;
    assert_eq!(wait_texts(&receiver, "restart", 1).await, ["Your name?"]);
    server.shutdown().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(texts(&receiver, "restart"), ["Your name?"]);
    let server = serve(bot.path(), data.path(), &url).await;
    assert_eq!(
        wait_texts(&receiver, "restart", 2).await,
        ["Your name?", "Still there?"]
    );
    server.shutdown().await.unwrap();
}

#[test]
fn silence_detected_minutes_are_checked() {
    let bot = write_bot(
        "events:\n  silenceDetected: { minutes: 0, goto: nowhere }\n",
        BLOCKS,
        &[],
    );
    let problems = sandbot::flow::Bot::load(bot.path())
        .err()
        .unwrap()
        .to_string();
    assert!(
        problems.contains("events.silenceDetected.minutes: 0 minutes: between 1 and 1440"),
        "{problems}"
    );
    assert!(
        problems.contains("events.silenceDetected.goto: unknown block `nowhere`"),
        "{problems}"
    );
    let ok = write_bot(
        "events:\n  silenceDetected: { minutes: 1440, goto: nudge }\n",
        BLOCKS,
        &[],
    );
    assert!(sandbot::flow::Bot::load(ok.path()).is_ok());
}

/// REST `setSessionData` fires *Variables changed* too: the event's block
/// runs and its messages go out; writing the same value again does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rest_session_write_fires_variables_changed_once() {
    let bot = write_bot(
        "events:\n  variablesChanged:\n    - { variables: [crm.status], goto: sync }\n",
        BLOCKS,
        &[],
    );
    let data = tempfile::tempdir().unwrap();
    let (receiver, url) = Receiver::start(0).await;
    let blocks = bot.path().join("flows/main.yaml");
    let flows = std::fs::read_to_string(&blocks).unwrap();
    std::fs::write(
        &blocks,
        flows + "  - { id: sync, type: message, messages: [{ text: \"CRM {crm.status}\" }] }\n",
    )
    .unwrap();
    let server = serve(bot.path(), data.path(), &url).await;
    let addr = server.addr.to_string();
    accepted(&addr, intro("c1")).await;
    assert_eq!(wait_texts(&receiver, "c1", 1).await, ["Your name?"]);
    let set = |status: &str| {
        let body = json!({"setSessionData": {"crm.status": status}}).to_string();
        let url = format!("http://{addr}/v1/bots/test/conversations/c1/actions");
        async move {
            let res = reqwest::Client::new()
                .post(url)
                .header("authorization", "Bearer token-one")
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            serde_json::from_str::<Value>(&res.text().await.unwrap()).unwrap()
        }
    };
    let out = set("gold").await;
    assert_eq!(
        out["flowMessages"][0]["config"]["textMessages"][0]["text"],
        "CRM gold"
    );
    assert_eq!(
        wait_texts(&receiver, "c1", 2).await,
        ["Your name?", "CRM gold"]
    );
    let out = set("gold").await;
    assert_eq!(out["flowMessages"], json!([]));
    let got: Vec<_> = receiver.drained(&addr, "c1").await;
    let got: Vec<_> = got.iter().map(|m| m["message"]["text"].clone()).collect();
    assert_eq!(
        got,
        ["Your name?", "CRM gold"],
        "nothing for the same value"
    );
    server.shutdown().await.unwrap();
}
