//! Two nodes (in this process) on one PostgreSQL: REST rate limits, usage
//! figures, channel duplicates and REST actions' idempotency keys (with the
//! first answer for a retry) hold across the nodes, not per node.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sandbot::serve::Server;
use sandbot::serve::config::PostgresConfig;
use sandbot::store::{InboxEntry, PostgresStore, Store, now_ms};
use serde_json::{Value, json};

use crate::flow::support::write_bot;
use crate::serve::webhook::{BLOCKS, Receiver, config_with_rate, post};
use crate::store::conformance::{ROOMY, entry, options};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_usage_and_duplicates_hold_across_nodes() {
    let url = crate::pg::database().await;
    let bot = write_bot("", BLOCKS, &[]);
    let data = tempfile::tempdir().unwrap();
    let (receiver, hook) = Receiver::start(0).await;
    let mut config = config_with_rate(bot.path(), &data.path().join("data"), &hook, 8);
    on_postgres(&mut config, &url, 5);
    let one = Server::start(&config).await.unwrap();
    let two = Server::start(&config).await.unwrap();
    let (a, b) = (one.addr.to_string(), two.addr.to_string());

    // A message on one node and its retry on the other: processed once.
    let body = json!({"conversationId": "c1", "messageId": "m1", "message": {"introMessage": {}}})
        .to_string();
    assert_eq!(post(&a, "hook", Some("token-one"), &body).await.0, 202);
    let (status, again) = post(&b, "hook", Some("token-one"), &body).await;
    assert_eq!((status, &again["duplicate"]), (202, &json!(true)));
    let other = json!({"conversationId": "c2", "message": {"introMessage": {}}}).to_string();
    assert_eq!(post(&b, "hook", Some("token-one"), &other).await.0, 202);
    receiver.wait_for(4).await;
    // A REST action on one node and its retry with the same key on the other.
    let action = |addr: &str| {
        reqwest::Client::new()
            .post(format!(
                "http://{addr}/v1/bots/test/conversations/c1/actions"
            ))
            .bearer_auth("token-one")
            .header("idempotency-key", "agent-1")
            .header("content-type", "application/json")
            .body(
                json!({"sendMessages": [{"textMessageTemplate": {"text": "An agent here"}}]})
                    .to_string(),
            )
            .send()
    };
    let answer = |res: reqwest::Response| async move {
        serde_json::from_str::<Value>(&res.text().await.unwrap()).unwrap()
    };
    let first = answer(action(&a).await.unwrap()).await;
    assert_eq!(first["messagesSent"], 1, "{first}");
    let again = answer(action(&b).await.unwrap()).await;
    let mut expected = first.clone();
    expected["duplicate"] = json!(true);
    assert_eq!(again, expected, "the first answer, from the other node");
    let got = receiver.drained(&b, "c1").await;
    assert_eq!(
        got.len(),
        3,
        "one intro of two messages and the agent's, once: {got:?}"
    );

    // Usage adds up every node's figures (each records its own every second).
    tokio::time::sleep(Duration::from_millis(1300)).await;
    // 8 REST requests an hour for the token, wherever they land (the two
    // actions and the marker above took three).
    let get = |addr: &str| {
        reqwest::Client::new()
            .get(format!("http://{addr}/v1/usage"))
            .bearer_auth("token-one")
            .send()
    };
    let usage: Value = serde_json::from_str(&get(&b).await.unwrap().text().await.unwrap()).unwrap();
    assert_eq!(
        usage["bots"]["test"]["turns"], 2,
        "both nodes' turns: {usage}"
    );
    let usage: Value = serde_json::from_str(&get(&a).await.unwrap().text().await.unwrap()).unwrap();
    assert_eq!(
        usage["bots"]["test"]["turns"], 2,
        "the same on the other node: {usage}"
    );
    let mut statuses = Vec::new();
    for addr in [&a, &b, &a, &b] {
        let res = get(addr).await.unwrap();
        statuses.push((
            res.status().as_u16(),
            res.headers()["x-ratelimit-remaining"]
                .to_str()
                .unwrap()
                .to_string(),
        ));
    }
    assert_eq!(
        statuses,
        [
            (200, "2".into()),
            (200, "1".into()),
            (200, "0".into()),
            (429, "0".into())
        ],
        "one window shared by the nodes"
    );
    one.shutdown().await.unwrap();
    two.shutdown().await.unwrap();
}

/// A REST action on one node whose flow waits 1,500 ms on a slow peer, and
/// its retry on the other node 200 ms later: the retry finds the action
/// waiting or running in the database, waits, and gets the first answer
/// (1,500 ms: longer than a retry looks for an outcome it cannot find).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_on_another_node_while_the_first_runs_gets_its_answer() {
    let url = crate::pg::database().await;
    let peer = crate::peer::start().await;
    let blocks = format!(
        "{BLOCKS}  - {{ id: slow, type: action, api: {{ method: GET, url: \"http://{peer}/slow?ms=1500\" }}, goto: yes }}\n"
    );
    let bot = write_bot("", &blocks, &[]);
    let data = tempfile::tempdir().unwrap();
    let (receiver, hook) = Receiver::start(0).await;
    let mut config = config_with_rate(bot.path(), &data.path().join("data"), &hook, 100);
    config.tenants[0].limits.allow_hosts = vec![format!("http://{peer}")];
    on_postgres(&mut config, &url, 5);
    let one = Server::start(&config).await.unwrap();
    let two = Server::start(&config).await.unwrap();
    let (a, b) = (one.addr.to_string(), two.addr.to_string());
    let intro = json!({"conversationId": "c1", "message": {"introMessage": {}}}).to_string();
    assert_eq!(post(&a, "hook", Some("token-one"), &intro).await.0, 202);
    receiver.wait_for(2).await;
    let action = |addr: String| async move {
        let res = reqwest::Client::new()
            .post(format!(
                "http://{addr}/v1/bots/test/conversations/c1/actions"
            ))
            .bearer_auth("token-one")
            .header("idempotency-key", "slow-1")
            .header("content-type", "application/json")
            .body(
                json!({
                    "sendMessages": [{"textMessageTemplate": {"text": "An agent here"}}],
                    "goToDialogstate": "slow"
                })
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body: Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
        (status, body)
    };
    let (first, again) = tokio::join!(action(a.clone()), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        action(b.clone()).await
    });
    assert_eq!(first.0, 200, "{first:?}");
    assert_eq!(first.1.get("duplicate"), None, "{first:?}");
    assert_eq!(
        first.1["flowMessages"][0]["config"]["textMessages"][0]["text"],
        "You said yes"
    );
    let mut expected = first.1.clone();
    expected["duplicate"] = json!(true);
    assert_eq!(
        again,
        (200, expected),
        "the first answer, from the other node"
    );
    let got = receiver.drained(&b, "c1").await;
    assert_eq!(
        got.len(),
        4,
        "the intro's two messages, the agent's and the flow's, once: {got:?}"
    );
    one.shutdown().await.unwrap();
    two.shutdown().await.unwrap();
}

/// Puts `config` on the PostgreSQL at `url`: a pool of 4, leases of
/// `lease_seconds`, no wait at start.
fn on_postgres(config: &mut sandbot::serve::ServeConfig, url: &str, lease_seconds: u64) {
    config.store.postgres = Some(PostgresConfig {
        url: Some(url.to_string()),
        pool: 4,
        lease_seconds,
        start_wait_seconds: 0,
        ..Default::default()
    });
}

/// A node serving the test bot on its web channel, its data in `data`, on
/// the PostgreSQL at `url` (pool of 4, no wait at start, leases of
/// `lease_seconds`), without a `webSessionSecret`.
fn web_node(
    bot: &std::path::Path,
    data: &std::path::Path,
    url: &str,
    lease_seconds: u64,
) -> sandbot::serve::ServeConfig {
    let mut config = config_with_rate(bot, &data.join("data"), "http://127.0.0.1:9/", 100);
    config.bots[0].channels.web = Some(Default::default());
    config.web_session_secret = None;
    on_postgres(&mut config, url, lease_seconds);
    config
}

/// A web message accepted by one node while another holds the
/// conversation's lease: the other runs it, and the answer reaches the
/// request through the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_answer_comes_back_from_the_node_that_ran_the_turn() {
    let url = crate::pg::database().await;
    let bot = write_bot("", BLOCKS, &[]);
    let data = tempfile::tempdir().unwrap();
    let config = web_node(bot.path(), data.path(), &url, 1);
    let one = Server::start(&config).await.unwrap();
    let two = Server::start(&config).await.unwrap();
    let mut web = crate::serve::web::Web::new(&format!("http://{}", one.addr), None);
    let session = web.session("test").await;
    let claims = sandbot::channels::web_session::verify(
        &one.state.web_key,
        "test",
        &session,
        sandbot::store::now_ms() / 1000,
    )
    .unwrap();
    // Node two holds the conversation for a minute.
    let held = two
        .state
        .store
        .lease("test", &claims.c, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(held.is_some());
    let (status, answer) = web.send("test", json!({"introMessage": {}})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["messages"][0]["config"]["textMessages"][0]["text"],
        "Hi"
    );
    let usage = |s: &Server| {
        s.state
            .metrics
            .tenant("one")
            .get("test")
            .map_or(0, |u| u.turns)
    };
    assert_eq!((usage(&one), usage(&two)), (0, 1), "node two ran the turn");
    one.shutdown().await.unwrap();
    two.shutdown().await.unwrap();
}

/// Nodes with data folders of their own and no `webSessionSecret` share the
/// web session key through the database (the first node makes it): a
/// session opened on one node is accepted by the others. Before, each node
/// signed with a key of its own data folder and the others answered 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_sessions_hold_on_every_node_without_a_configured_secret() {
    let url = crate::pg::database().await;
    let bot = write_bot("", BLOCKS, &[]);
    let (data_one, data_two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let node = |data: &std::path::Path| web_node(bot.path(), data, &url, 30);
    let one = Server::start(&node(data_one.path())).await.unwrap();
    let two = Server::start(&node(data_two.path())).await.unwrap();
    assert_eq!(one.state.web_key, two.state.web_key);
    assert_eq!(one.state.web_key.len(), 32);
    let mut web = crate::serve::web::Web::new(&format!("http://{}", one.addr), None);
    let session = web.session("test").await;
    let on_two = crate::serve::web::Web::new(&format!("http://{}", two.addr), None);
    let (status, answer) = on_two
        .post("test", &session, json!({"introMessage": {}}))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["messages"][0]["config"]["textMessages"][0]["text"],
        "Hi"
    );
    // A node started later gets the same key.
    let data_three = tempfile::tempdir().unwrap();
    let three = Server::start(&node(data_three.path())).await.unwrap();
    assert_eq!(three.state.web_key, one.state.web_key);
    for s in [one, two, three] {
        s.shutdown().await.unwrap();
    }
}

/// A local HTTP peer that counts the requests it gets, answering each
/// after `delay`.
async fn counting_peer(delay: Duration) -> (Arc<AtomicU64>, std::net::SocketAddr) {
    let calls = Arc::new(AtomicU64::new(0));
    let counted = calls.clone();
    let app = axum::Router::new().route(
        "/count",
        axum::routing::get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(delay).await;
                "{}"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (calls, addr)
}

/// One node on PostgreSQL with 1 s leases, its bot's introduction an API
/// action against a counting peer (answering after the given delay), then
/// a message ("done") to the webhook receiver.
struct CountingNode {
    server: Server,
    receiver: Receiver,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl CountingNode {
    async fn start(delay: Duration) -> (CountingNode, Arc<AtomicU64>) {
        let url = crate::pg::database().await;
        let (calls, peer) = counting_peer(delay).await;
        let blocks = format!(
            r#"
  - {{ id: intro, system: introduction, type: action, api: {{ method: GET, url: "http://{peer}/count" }}, goto: said }}
  - {{ id: said, type: message, messages: [{{ text: "done" }}] }}
"#
        );
        let bot = write_bot("", &blocks, &[]);
        let data = tempfile::tempdir().unwrap();
        let (receiver, hook) = Receiver::start(0).await;
        let mut config = config_with_rate(bot.path(), &data.path().join("data"), &hook, 1000);
        config.tenants[0].limits.allow_hosts = vec![format!("http://{peer}")];
        on_postgres(&mut config, &url, 1);
        let server = Server::start(&config).await.unwrap();
        let node = CountingNode {
            server,
            receiver,
            _dirs: (bot, data),
        };
        (node, calls)
    }
}

/// Every message's turn runs once on a node whose sweep keeps waking its
/// conversations while their next messages are accepted: the turn's API
/// action calls the peer once per message.
/// Before, a conversation woken by the sweep asked the database for its next
/// message at the moment an accept on the same node took the conversation's
/// lease: both handed that message to the worker, which ran it twice (the
/// second run's commit refused: "lease ran out").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_runs_once_while_the_sweep_wakes_its_conversation() {
    let (node, calls) = CountingNode::start(Duration::ZERO).await;
    let (server, receiver) = (&node.server, &node.receiver);
    let addr = server.addr.to_string();
    let answered = |c: &str| {
        receiver
            .messages()
            .iter()
            .filter(|m| m["recipient"]["id"] == c)
            .count()
    };
    // Conversations in a closed loop (each message's answer awaited before
    // the next) for 3.5 s: three sweeps.
    let until = std::time::Instant::now() + Duration::from_millis(3500);
    let loops = (0..12).map(|c| {
        let (addr, answered) = (addr.clone(), &answered);
        async move {
            let conversation = format!("c{c}");
            let mut sent = 0;
            while std::time::Instant::now() < until {
                let body = json!({"conversationId": conversation, "message": {"introMessage": {}}});
                let (status, answer) =
                    post(&addr, "hook", Some("token-one"), &body.to_string()).await;
                assert_eq!(status, 202, "{answer}");
                sent += 1;
                let deadline = std::time::Instant::now() + Duration::from_secs(20);
                while answered(&conversation) < sent {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "{conversation}: answer {sent} missing"
                    );
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
            sent
        }
    });
    // The sweep, far more often than its 1 s: wakes every conversation
    // with a message waiting, as it does after a crash or a store failure.
    let sweeping = {
        let state = server.state.clone();
        tokio::spawn(async move {
            while std::time::Instant::now() < until {
                sandbot::serve::inbox::wake_all(&state).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let sent: usize = futures_util::future::join_all(loops)
        .await
        .into_iter()
        .sum();
    sweeping.await.unwrap();
    assert!(sent > 100, "{sent} messages");
    assert_eq!(receiver.messages().len(), sent, "one answer a message");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        sent as u64,
        "one API call a message"
    );
    let figures = server.state.metrics.tenant("one");
    assert_eq!(figures["test"].turns_not_committed, 0);
    node.server.shutdown().await.unwrap();
}

/// A turn that takes longer than the conversation's lease (its API action
/// waits 2.5 s; leases last 1 s) renews the lease while it runs: it commits
/// once, its call made once. Before, the lease ran out under the turn, its
/// commit was refused and the message ran again, and again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_longer_than_the_lease_commits_once() {
    let (node, calls) = CountingNode::start(Duration::from_millis(2500)).await;
    let (server, receiver) = (&node.server, &node.receiver);
    let addr = server.addr.to_string();
    let body = json!({"conversationId": "slow", "message": {"introMessage": {}}});
    assert_eq!(
        post(&addr, "hook", Some("token-one"), &body.to_string())
            .await
            .0,
        202
    );
    assert_eq!(receiver.wait_for(1).await.len(), 1);
    // Time for a second run to show, were there one.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1, "one API call");
    assert_eq!(receiver.messages().len(), 1, "one answer");
    let figures = server.state.metrics.tenant("one");
    assert_eq!(
        (figures["test"].turns, figures["test"].turns_not_committed),
        (1, 0)
    );
    node.server.shutdown().await.unwrap();
}

/// A message this node cannot run — a job written by a newer version, met
/// while a deploy is under way — is left, with a shared store, for a node
/// that can, for 15 minutes after it was accepted: the store keeps it and the
/// node gives the conversation's lease up. One older than that is dropped,
/// as a lone node drops it, so that a conversation cannot wait for ever.
/// Before, both were dropped at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_from_a_newer_version_is_left_for_a_node_that_can_run_it() {
    let url = crate::pg::database().await;
    let options = options(&url, Duration::from_secs(1), Duration::from_secs(3600));
    let store = PostgresStore::connect(&options).await.unwrap();
    let newer = |conversation: &str, accepted_ms: u64| InboxEntry {
        bot: "test".into(),
        accepted_ms,
        job: json!({"fromANewerVersion": {"text": "hello"}}),
        ..entry("one", conversation, "", None)
    };
    let sixteen_minutes = 16 * 60 * 1000;
    for (conversation, accepted_ms) in [("fresh", now_ms()), ("stale", now_ms() - sixteen_minutes)]
    {
        store
            .enqueue(newer(conversation, accepted_ms), ROOMY)
            .await
            .unwrap();
    }
    let bot = write_bot("", BLOCKS, &[]);
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(&web_node(bot.path(), data.path(), &url, 1))
        .await
        .unwrap();
    let fresh_only = vec![("test".to_string(), "fresh".to_string())];
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let waiting = store.inbox_conversations().await.unwrap();
        if waiting == fresh_only {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the stale one dropped, the fresh one kept; waiting: {waiting:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Looked at again every second (its lease given up each time): kept.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(store.inbox_conversations().await.unwrap(), fresh_only);
    assert_eq!(
        store.inbox_unheld().await.unwrap(),
        fresh_only,
        "its lease given up"
    );
    server.shutdown().await.unwrap();
}
