//! The durable inbox through the webhook channel: a retried `messageId` is
//! processed once, and past a backlog the channel answers 429 with
//! `Retry-After` while everything accepted is still processed.

use sandbot::serve::Server;
use serde_json::{Value, json};

use crate::flow::support::write_bot;
use crate::serve::webhook::{BLOCKS, Receiver, accepted, config, post};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_message_id_is_processed_once() {
    let bot = write_bot("", BLOCKS, &[]);
    let data = tempfile::tempdir().unwrap();
    let (receiver, url) = Receiver::start(0).await;
    let server = Server::start(&config(bot.path(), &data.path().join("data"), &url))
        .await
        .unwrap();
    let addr = server.addr.to_string();
    let intro =
        json!({"conversationId": "c1", "messageId": "m-1", "message": {"introMessage": {}}});
    let (status, first) = post(&addr, "hook", Some("token-one"), &intro.to_string()).await;
    assert_eq!((status, first.get("duplicate")), (202, None), "{first}");
    let (status, again) = post(&addr, "hook", Some("token-one"), &intro.to_string()).await;
    assert_eq!(
        (status, &again["duplicate"]),
        (202, &json!(true)),
        "{again}"
    );
    // Another id, or none, is a new message.
    accepted(
        &addr,
        json!({"conversationId": "c1", "messageId": "m-2", "message": {"introMessage": {}}}),
    )
    .await;
    let got = receiver.drained(&addr, "c1").await;
    assert_eq!(got.len(), 4, "two intros of two messages each: {got:?}");
    for bad in [json!(""), json!(7), json!("x".repeat(257))] {
        let body =
            json!({"conversationId": "c1", "messageId": bad, "message": {"introMessage": {}}});
        let (status, e) = post(&addr, "hook", Some("token-one"), &body.to_string()).await;
        assert_eq!(status, 400);
        assert_eq!(
            e["error"],
            "`messageId` must be a non-empty string of at most 256 characters"
        );
    }
    server.shutdown().await.unwrap();
}

/// Turns take 300 ms (an API action against a slow local peer), so messages
/// wait in the inbox: the conversation's backlog (2) and then the tenant's
/// (3) refuse more with 429 + `Retry-After`, another tenant is unaffected,
/// and every accepted message is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_backlog_429_with_retry_after_and_nothing_accepted_is_lost() {
    let peer = crate::peer::start().await;
    let blocks = format!(
        r#"
  - {{ id: intro, system: introduction, type: action, api: {{ method: GET, url: "http://{peer}/slow?ms=300" }}, goto: said }}
  - {{ id: said, type: message, messages: [{{ text: "done" }}] }}
"#
    );
    let bot = write_bot("", &blocks, &[]);
    let data = tempfile::tempdir().unwrap();
    let (receiver, url) = Receiver::start(0).await;
    let mut config = config(bot.path(), &data.path().join("data"), &url);
    config.tenants[0].limits.allow_hosts = vec![format!("http://{peer}")];
    config.tenants[0].backlog.conversation = 2;
    config.tenants[0].backlog.tenant = 3;
    let server = Server::start(&config).await.unwrap();
    let addr = server.addr.to_string();
    let intro = |c: &str| json!({"conversationId": c, "message": {"introMessage": {}}}).to_string();
    let send = |c: &'static str| {
        let addr = addr.clone();
        async move {
            let res = reqwest::Client::new()
                .post(format!("http://{addr}/v1/channels/webhook/hook/messages"))
                .bearer_auth("token-one")
                .header("content-type", "application/json")
                .body(intro(c))
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let retry = res
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            let body: Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
            (status, retry, body)
        }
    };
    assert_eq!(send("c1").await.0, 202);
    assert_eq!(send("c1").await.0, 202);
    let (status, retry, body) = send("c1").await;
    assert_eq!((status, retry.as_deref()), (429, Some("1")));
    assert_eq!(
        body["error"],
        "conversation `c1` has 2 messages waiting for their turn; retry later"
    );
    assert_eq!(send("c2").await.0, 202);
    let (status, retry, body) = send("c3").await;
    assert_eq!((status, retry.as_deref()), (429, Some("1")));
    assert_eq!(
        body["error"],
        "tenant `one` has 3 messages waiting for their turn; retry later"
    );
    // What waits shows in the metrics.
    crate::common::assert_metrics(
        &format!("http://{addr}"),
        &[
            "sandbot_store_up 1",
            "sandbot_inbox_messages{tenant=\"one\",bot=\"test\"} 3",
        ],
    )
    .await;
    // Everything accepted is answered; then there is room again.
    let got = receiver.wait_for(3).await;
    assert_eq!(got.len(), 3);
    let (status, _) = post(&addr, "hook", Some("token-one"), &intro("c3")).await;
    assert_eq!(status, 202);
    assert_eq!(receiver.wait_for(4).await.len(), 4);
    crate::common::assert_metrics(
        &format!("http://{addr}"),
        &[
            "sandbot_refused_messages_total{tenant=\"one\",bot=\"test\"} 2",
            "sandbot_inbox_messages{tenant=\"one\",bot=\"test\"} 0",
        ],
    )
    .await;
    server.shutdown().await.unwrap();
}
