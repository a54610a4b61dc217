//! The PostgreSQL store keeps its connections between statements (sqlx's
//! pool would test each one given back with a round trip). When the server
//! ends them — its backends terminated, a restart — while the node is busy,
//! one statement finds out, not one per kept connection, and runs again on
//! a live one; after a quiet second, none does (a kept connection that
//! waited is tested first). The store goes on with new connections, and
//! what it accepted is still there. While the database cannot be reached at
//! all, statements fail at once with the cause (a channel answers 503), and
//! the store goes on once it is back.

use std::time::Duration;

use sandbot::serve::config::PostgresConfig;
use sandbot::store::{Accepted, Next, PostgresOptions, PostgresStore, Store};
use sqlx::Connection;

use crate::relay::Relay;

use crate::store::conformance::{ROOMY, entry};

/// A store that has kept several connections, and an admin connection to
/// its database.
async fn busy_store() -> (PostgresStore, sqlx::PgConnection) {
    let url = crate::pg::database().await;
    let store = PostgresStore::connect(&PostgresOptions {
        url: url.clone(),
        pool: 8,
        lease: Duration::from_secs(30),
        session_ttl: Duration::from_secs(3600),
        start_wait: Duration::ZERO,
        wait: PostgresOptions::WAIT,
    })
    .await
    .unwrap();
    // Several statements at once, so that several connections are kept.
    let accepted = futures_util::future::join_all(
        (0..12).map(|i| store.enqueue(entry("t", &format!("c{i}"), "before", None), ROOMY)),
    )
    .await;
    assert!(
        accepted
            .iter()
            .all(|a| matches!(a, Ok(Accepted::Queued(_))))
    );
    (store, sqlx::PgConnection::connect(&url).await.unwrap())
}

/// Ends every connection to the database but `admin`'s.
async fn terminate_others(admin: &mut sqlx::PgConnection) {
    let ended: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_one(admin)
    .await
    .unwrap();
    assert!(ended >= 2, "the store's connections: {ended}");
}

/// Ten accepts after the connections were ended: those that failed, and
/// how many messages the inbox holds then.
async fn accept_ten(
    store: &PostgresStore,
    admin: &mut sqlx::PgConnection,
) -> (Vec<(usize, String)>, usize) {
    let mut failed = Vec::new();
    for i in 0..10 {
        match store
            .enqueue(entry("t", "after", &format!("m{i}"), None), ROOMY)
            .await
        {
            Ok(Accepted::Queued(_)) => {}
            Ok(other) => panic!("message {i}: {other:?}"),
            Err(e) => failed.push((i, e.to_string())),
        }
    }
    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox")
        .fetch_one(admin)
        .await
        .unwrap();
    (failed, held as usize)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_ended_by_the_server_cost_no_message() {
    let (store, mut admin) = busy_store().await;
    terminate_others(&mut admin).await;
    let (failed, held) = accept_ten(&store, &mut admin).await;
    // The first accept found its kept connection ended and ran again on a
    // live one; the connections kept with it went back to the pool, so no
    // other statement found out.
    assert_eq!(failed, []);
    assert_eq!(store.statements_retried(), 1);
    assert_eq!(held, 12 + 10, "every message accepted, each once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_ended_while_the_store_was_quiet_cost_nothing() {
    let (store, mut admin) = busy_store().await;
    terminate_others(&mut admin).await;
    // Longer than a kept connection is used without a test (a second).
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let (failed, held) = accept_ten(&store, &mut admin).await;
    assert_eq!(failed, []);
    assert_eq!(
        store.statements_retried(),
        0,
        "tested before use, none ran twice"
    );
    assert_eq!(held, 12 + 10);
}

/// A store through a relay, pool of 4, not waiting at start.
async fn store_through(url: &str, start_wait: Duration) -> Result<PostgresStore, String> {
    store_waiting(url, start_wait, PostgresOptions::WAIT).await
}

async fn store_waiting(
    url: &str,
    start_wait: Duration,
    wait: Duration,
) -> Result<PostgresStore, String> {
    PostgresStore::connect(&PostgresOptions {
        url: url.to_string(),
        pool: 4,
        lease: Duration::from_secs(30),
        session_ttl: Duration::from_secs(3600),
        start_wait,
        wait,
    })
    .await
    .map_err(|e| e.to_string())
}

/// While the database cannot be reached, a statement fails at once (not
/// after the pool's 10 s wait) with the cause, as an unavailable store; once
/// it can be reached again the store goes on, and nothing it accepted before
/// is lost. Before, every statement waited 10 s and failed with "pool timed
/// out while waiting for an open connection".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unreachable_fails_at_once_with_its_cause_and_recovers() {
    let url = crate::pg::database().await;
    let (relay, through) = Relay::start(&url).await;
    let store = store_through(&through, Duration::ZERO).await.unwrap();
    let accept = |m: &str| store.enqueue(entry("t", "c", m, None), ROOMY);
    assert!(matches!(accept("before").await, Ok(Accepted::Queued(_))));

    relay.cut().await;
    for m in ["during-1", "during-2", "during-3"] {
        let started = std::time::Instant::now();
        let e = accept(m).await.unwrap_err();
        assert!(e.is_unavailable(), "{e}");
        let message = e.to_string();
        // The first finds its kept connection closed (lost without a word:
        // read at EOF, or reset); the others cannot connect.
        let causes: &[&str] = match m {
            "during-1" => &["at EOF", "Connection reset by peer (os error 104)"],
            _ => &["Connection refused (os error 111)"],
        };
        assert!(
            message.starts_with("store: the database is unavailable: ")
                && causes.iter().any(|c| message.ends_with(c)),
            "the cause, not the pool's time-out: {message}"
        );
        // Well inside the pool's 10 s wait.
        assert!(started.elapsed() < Duration::from_secs(5), "{m}");
    }
    let e = store.ping().await.unwrap_err();
    assert!(
        e.is_unavailable() && e.to_string().contains("unreachable for"),
        "{e}"
    );

    relay.mend().await;
    // The outage stands for a second after it was last seen, then the next
    // statement tries again.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let after = loop {
        match accept("after").await {
            Ok(a) => break a,
            Err(e) if e.is_unavailable() && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("the store did not recover: {e}"),
        }
    };
    assert!(matches!(after, Accepted::Queued(_)), "{after:?}");
    store.ping().await.unwrap();
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    let held: Vec<String> = sqlx::query_scalar("SELECT job->>'text' FROM inbox ORDER BY id")
        .fetch_all(&mut admin)
        .await
        .unwrap();
    assert_eq!(held.len(), 2, "the one before and the one after: {held:?}");
}

/// A node starting while its database cannot be reached waits for it (up
/// to `start_wait`), says why while it waits, and fails with the cause when
/// it gives up — at once on what waiting cannot mend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_node_starting_waits_for_its_database_and_says_why_it_gives_up() {
    let url = crate::pg::database().await;
    let (relay, through) = Relay::start(&url).await;
    relay.cut().await;
    let e = store_through(&through, Duration::ZERO).await.err().unwrap();
    let server = format!("PostgreSQL at 127.0.0.1:{}", relay.addr.port());
    assert_eq!(
        e,
        format!("store: connecting to {server}: Connection refused (os error 111)")
    );

    // Mended while the node waits: it starts.
    let waiting = tokio::spawn({
        let through = through.clone();
        async move { store_through(&through, Duration::from_secs(20)).await }
    });
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(!waiting.is_finished(), "waits for the database");
    relay.mend().await;
    let store = waiting.await.unwrap().unwrap();
    store.ping().await.unwrap();

    // No such database: no waiting mends it.
    let mut missing = reqwest::Url::parse(&url).unwrap();
    missing.set_path("/no_such_database");
    let started = std::time::Instant::now();
    let e = store_through(missing.as_str(), Duration::from_secs(20))
        .await
        .err()
        .unwrap();
    assert!(e.contains("\"no_such_database\" does not exist"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5), "did not wait");
}

/// A node whose database cannot be reached answers a channel's message at
/// once with 503 and `Retry-After` (nothing accepted: the sender sends it
/// again), and `/readyz` says why; once the database is back, the same
/// message is accepted and answered, and what was accepted before the
/// outage is answered too. Before: 500 after 10 s, "pool timed out".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_node_without_its_database_answers_503_and_goes_on_after() {
    let url = crate::pg::database().await;
    let (relay, through) = Relay::start(&url).await;
    let node = WebhookNode::start(PostgresConfig {
        url: Some(through),
        lease_seconds: 5,
        ..WebhookNode::SETTINGS
    })
    .await;
    let (base, client, receiver) = (&node.base, reqwest::Client::new(), &node.receiver);
    let send = |conversation: &str, id: &str| node.send(&client, conversation, Some(id));
    // Each message's turn sends two messages (the introduction's).
    assert_eq!(send("c1", "m1").await.unwrap().status(), 202);
    receiver.wait_for(2).await;

    relay.cut().await;
    let res = send("c2", "m2").await.unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "5");
    let body: serde_json::Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
    let error = body["error"].as_str().unwrap();
    assert!(
        error.starts_with("the database is unavailable: ") && error.ends_with("; retry later"),
        "{error}"
    );
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let why = ready.text().await.unwrap();
    assert!(
        why.starts_with("store unavailable: the database is unavailable: PostgreSQL at 127.0.0.1:"),
        "{why}"
    );
    crate::common::assert_metrics(base, &["sandbot_store_up 0"]).await;

    relay.mend().await;
    // The sender's retry, as `Retry-After` asks (sooner here).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = send("c2", "m2").await.unwrap().status();
        if status == 202 {
            break;
        }
        assert_eq!(status, 503);
        assert!(std::time::Instant::now() < deadline, "not back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    receiver.wait_for(4).await;
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    crate::common::assert_metrics(base, &["sandbot_store_up 1"]).await;
    // Processed once each: no duplicate answers.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.messages().len(), 4);
    node.server.shutdown().await.unwrap();
}

/// A node on PostgreSQL serving the webhook tests' bot, delivering to its
/// own receiver.
struct WebhookNode {
    server: sandbot::serve::Server,
    base: String,
    receiver: crate::serve::webhook::Receiver,
    _folders: (tempfile::TempDir, tempfile::TempDir),
}

impl WebhookNode {
    /// Small and impatient: a pool of 4, no wait at start.
    const SETTINGS: PostgresConfig = PostgresConfig {
        url: None,
        pool: 4,
        lease_seconds: 30,
        start_wait_seconds: 0,
        answer_wait_seconds: 10,
    };

    async fn start(settings: PostgresConfig) -> Self {
        use crate::serve::webhook::{BLOCKS, Receiver, config_with_rate};
        let bot = crate::flow::support::write_bot("", BLOCKS, &[]);
        let data = tempfile::tempdir().unwrap();
        let (receiver, hook) = Receiver::start(0).await;
        let mut config = config_with_rate(bot.path(), &data.path().join("data"), &hook, 1000);
        config.store.postgres = Some(settings);
        let server = sandbot::serve::Server::start(&config).await.unwrap();
        let base = format!("http://{}", server.addr);
        Self {
            server,
            base,
            receiver,
            _folders: (bot, data),
        }
    }

    /// A user's first message to `conversation` through the webhook.
    fn send(
        &self,
        client: &reqwest::Client,
        conversation: &str,
        id: Option<&str>,
    ) -> impl Future<Output = reqwest::Result<reqwest::Response>> + use<> {
        let mut body =
            serde_json::json!({"conversationId": conversation, "message": {"introMessage": {}}});
        if let Some(id) = id {
            body["messageId"] = id.into();
        }
        client
            .post(format!("{}/v1/channels/webhook/hook/messages", self.base))
            .bearer_auth("token-one")
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    }
}

/// A node's statements wait `answerWaitSeconds` for the database. One that
/// waits on a lock that long (here the inbox is locked by another session)
/// is given up by the server just before the node stops waiting,
/// so the 503 the sender gets is true: nothing of the message was kept, and
/// its retry — without a `messageId` — is processed once. Before, the
/// server went on with the abandoned accept and committed it once the lock
/// was gone: the message answered 503 was processed, and its retry again.
/// Inside the wait (the lock held half a second) the message is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_node_waits_answer_wait_seconds_and_its_503_kept_nothing() {
    let url = crate::pg::database().await;
    let node = WebhookNode::start(PostgresConfig {
        url: Some(url.clone()),
        answer_wait_seconds: 2,
        ..WebhookNode::SETTINGS
    })
    .await;
    let (client, receiver) = (reqwest::Client::new(), &node.receiver);
    let send = |conversation: &str| node.send(&client, conversation, None);
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    let lock = "BEGIN; LOCK TABLE inbox IN ACCESS EXCLUSIVE MODE;";

    // Inside the wait: accepted once the lock is gone (two messages a turn).
    sqlx::raw_sql(lock).execute(&mut admin).await.unwrap();
    let (res, ()) = tokio::join!(send("c1"), async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        sqlx::raw_sql("ROLLBACK").execute(&mut admin).await.unwrap();
    });
    assert_eq!(res.unwrap().status(), 202);
    receiver.wait_for(2).await;

    // Past it: 503, and nothing kept once the lock is gone.
    sqlx::raw_sql(lock).execute(&mut admin).await.unwrap();
    let started = std::time::Instant::now();
    let res = send("c2").await.unwrap();
    assert_eq!(res.status(), 503);
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(res.headers()["retry-after"], "5");
    let body: serde_json::Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
    assert_eq!(
        body["error"],
        "the database is unavailable: canceling statement due to lock timeout; retry later"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    sqlx::raw_sql("ROLLBACK").execute(&mut admin).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(waiting, 0, "the message answered 503 was accepted");
    assert_eq!(receiver.messages().len(), 2);

    // The sender's retry: processed once.
    assert_eq!(send("c2").await.unwrap().status(), 202);
    receiver.wait_for(4).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.messages().len(), 4);
    node.server.shutdown().await.unwrap();
}

/// A silent network (nothing passes, nothing is closed): a statement on a
/// connection the node kept fails once the server has not answered in the
/// store's wait, instead of hanging until the kernel gives the connection up
/// (a quarter of an hour); the next ones fail at once, saying the server does
/// not answer; once the network is back the store goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_silent_network_fails_statements_in_the_wait_not_never() {
    let url = crate::pg::database().await;
    let (relay, through) = Relay::start(&url).await;
    let wait = Duration::from_secs(2);
    let store = store_waiting(&through, Duration::ZERO, wait).await.unwrap();
    let accept = |m: &str| store.enqueue(entry("t", "c", m, None), ROOMY);
    assert!(matches!(accept("before").await, Ok(Accepted::Queued(_))));

    relay.silence();
    let started = std::time::Instant::now();
    let e = accept("during-1").await.unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    assert_eq!(
        e.to_string(),
        "store: the database is unavailable: no answer from the server in 2 s"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    // The next: a new connection, which the silent network does not answer
    // either (the direct try gives up after 3 s), then at once.
    for m in ["during-2", "during-3"] {
        let e = accept(m).await.unwrap_err();
        assert!(e.is_unavailable(), "{e}");
        assert!(e.to_string().ends_with("no answer in 3 s"), "{e}");
    }

    relay.cut().await;
    relay.mend().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        match accept("after").await {
            Ok(a) => {
                assert!(matches!(a, Accepted::Queued(_)), "{a:?}");
                break;
            }
            Err(e) if e.is_unavailable() && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("the store did not recover: {e}"),
        }
    }
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    let held: Vec<String> = sqlx::query_scalar("SELECT job->>'text' FROM inbox ORDER BY id")
        .fetch_all(&mut admin)
        .await
        .unwrap();
    assert_eq!(held, ["before", "after"]);
}

/// A transaction (the REST API's conversation delete) whose statement
/// waits on a lock another session holds is given up by the server just
/// before the store's wait is over, fails
/// as the store unavailable, and is rolled back: nothing it did stays.
/// Before, it waited as long as the lock was held (on a silent network:
/// until the kernel gave the connection up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_transaction_without_an_answer_fails_in_the_wait_and_leaves_nothing() {
    let url = crate::pg::database().await;
    let store = store_waiting(&url, Duration::ZERO, Duration::from_secs(2))
        .await
        .unwrap();
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(
        "INSERT INTO conversations VALUES ('b', 'c', '{}', 0);
         INSERT INTO transcripts VALUES ('b', 'c', 0, 0, '{}');",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    // The delete's first statement waits for this lock.
    sqlx::raw_sql("BEGIN; LOCK TABLE transcripts IN ACCESS EXCLUSIVE MODE;")
        .execute(&mut admin)
        .await
        .unwrap();
    let e = store.delete("b", "c").await.unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    assert_eq!(
        e.to_string(),
        "store: the database is unavailable: canceling statement due to lock timeout"
    );
    sqlx::raw_sql("ROLLBACK").execute(&mut admin).await.unwrap();
    // The abandoned delete is rolled back once its statement runs.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let left: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM conversations), (SELECT count(*) FROM transcripts)",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(left, (1, 1), "nothing deleted");
    // And the store goes on: the same delete, unhindered.
    assert!(store.delete("b", "c").await.unwrap());
}

/// The answer to an accept is lost on the way back (the connection closes
/// after the server committed). With the channel's message id the store
/// runs it once more, which finds the id: the sender gets an answer
/// (`Duplicate`: kept once) instead of a 503 that cannot say whether the
/// message was kept, and the conversation's lease the lost try took for
/// this node is this node's worker's at once. Without an id the error stands
/// (the message was kept: a retry would be a second copy).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accept_whose_answer_is_lost_runs_again_when_it_has_a_message_id() {
    let url = crate::pg::database().await;
    let (relay, through) = Relay::start(&url).await;
    let store = store_through(&through, Duration::ZERO).await.unwrap();
    let lease = Duration::from_secs(30);
    let accept = |c: &str, m: &str, id: Option<&str>| {
        store.enqueue_and_take(entry("t", c, m, id), ROOMY, lease)
    };
    assert!(matches!(
        accept("c", "first", None).await,
        Ok(Accepted::Queued(_))
    ));

    relay.lose_answer_to("with an id");
    assert_eq!(
        accept("c2", "with an id", Some("m-1")).await.unwrap(),
        Accepted::Duplicate
    );
    assert_eq!(store.statements_retried(), 1);
    let Next::Entry { entry, .. } = store.take_next("b", "c2", lease).await.unwrap() else {
        panic!("the lost try's lease is this node's")
    };
    assert_eq!(entry.job["text"], "with an id");

    relay.lose_answer_to("without an id");
    let e = accept("c3", "without an id", None).await.unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    assert_eq!(store.statements_retried(), 1, "not run again");

    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    let kept: Vec<(String, i64)> = sqlx::query_as(
        "SELECT conversation, count(*) FROM inbox GROUP BY conversation ORDER BY conversation",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    let kept: Vec<(&str, i64)> = kept.iter().map(|(c, n)| (c.as_str(), *n)).collect();
    assert_eq!(kept, [("c", 1), ("c2", 1), ("c3", 1)], "each kept once");
}

/// The same through a node: a webhook message with a `messageId` whose
/// accept's answer is lost is answered 202 (`duplicate`: kept once, by the
/// try whose answer was lost) instead of 503, and its turn runs at once —
/// the lost try took the idle conversation's lease for this node, and the
/// node's worker is woken for it — not at the next sweep of every
/// conversation (10 s) or once the lease runs out (30 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_node_whose_accept_lost_its_answer_answers_202_and_runs_the_turn() {
    let url = crate::pg::database().await;
    let (relay, through) = Relay::start(&url).await;
    let node = WebhookNode::start(PostgresConfig {
        url: Some(through),
        ..WebhookNode::SETTINGS
    })
    .await;
    let (client, receiver) = (reqwest::Client::new(), &node.receiver);
    assert_eq!(
        node.send(&client, "c1", Some("m1")).await.unwrap().status(),
        202
    );
    // Each message's turn sends two messages (the introduction's).
    receiver.wait_for(2).await;

    relay.lose_answer_to("m-answer-lost");
    let sent = std::time::Instant::now();
    let res = node
        .send(&client, "c2", Some("m-answer-lost"))
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let body: serde_json::Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
    assert_eq!(body["duplicate"], true, "{body}");
    receiver.wait_for(4).await;
    let took = sent.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "the turn ran {took:?} after the message: at the sweep, not at once"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.messages().len(), 4, "processed once");
    node.server.shutdown().await.unwrap();
}
