//! Three `sandbot serve` processes on 127.0.0.1 sharing one PostgreSQL: a
//! load generator sends each message to a random node; one node is killed
//! with SIGKILL mid-load and restarted. Every accepted message is processed
//! once, in order per conversation, across the nodes; replies arrive in
//! order. (That a node whose lease ran out cannot commit is tested in the
//! store conformance suite.) And a deploy: each node in turn stopped
//! gracefully and started again, no conversation waiting for a lease; a node
//! killed for good, its conversations going on once its leases run out; and
//! the database gone for a while under load.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/pg.rs"]
mod pg;
#[path = "support/relay.rs"]
mod relay;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cluster::*;
use sandbot::store::{PostgresOptions, PostgresStore, Store, now_ms};
use serde_json::json;

const NODES: usize = 3;
const CONVERSATIONS: usize = 12;

/// `NODES` nodes' (config, log, base URL) in `dir`, on the PostgreSQL at
/// `url` with leases of `lease_seconds`, delivering to `hook`.
fn cluster(
    dir: &std::path::Path,
    url: &str,
    lease_seconds: u64,
    hook: &str,
) -> Vec<(PathBuf, PathBuf, String)> {
    write_bot(dir);
    (0..NODES)
        .map(|n| {
            let port = free_port();
            let config = dir.join(format!("node{n}.yaml"));
            let store = format!(
                "store: {{ postgres: {{ url: \"{url}\", pool: 8, leaseSeconds: {lease_seconds} }} }}\n\
                 webSessionSecret: \"one secret for every node of this deployment\"\n"
            );
            write_config(&config, port, &format!("data{n}"), &store, hook);
            let log = dir.join(format!("node{n}.log"));
            (config, log, format!("http://127.0.0.1:{port}"))
        })
        .collect()
}

/// `NODES` nodes started on the database at `url` (leases of
/// `lease_seconds`) and ready, delivering to `received`.
struct Up {
    /// Their folders: gone when this is dropped.
    dir: tempfile::TempDir,
    received: Received,
    /// (config, log, base URL) of each.
    nodes: Vec<(PathBuf, PathBuf, String)>,
    servers: Vec<std::process::Child>,
    client: reqwest::Client,
    bases: Vec<String>,
}

async fn up(url: &str, lease_seconds: u64) -> Up {
    let dir = tempfile::tempdir().unwrap();
    let received = Received::default();
    let hook = received.start().await;
    let nodes = cluster(dir.path(), url, lease_seconds, &hook);
    let client = reqwest::Client::new();
    let servers = nodes.iter().map(|(c, l, _)| start(c, l)).collect();
    for (_, _, base) in &nodes {
        ready(&client, base).await;
    }
    let bases = nodes.iter().map(|(_, _, b)| b.clone()).collect();
    Up {
        dir,
        received,
        nodes,
        servers,
        client,
        bases,
    }
}

/// The nodes' logs, for a failed check.
fn logs(nodes: &[(PathBuf, PathBuf, String)]) -> String {
    nodes
        .iter()
        .map(|(_, l, _)| std::fs::read_to_string(l).unwrap_or_default())
        .collect()
}

async fn store(url: String, lease: Duration) -> PostgresStore {
    PostgresStore::connect(&PostgresOptions {
        url,
        pool: 2,
        lease,
        session_ttl: Duration::from_secs(3600),
        start_wait: Duration::ZERO,
        wait: PostgresOptions::WAIT,
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_one_killed_lose_and_repeat_no_message() {
    let url = pg::database().await;
    let Up {
        dir: _dir,
        received,
        nodes,
        mut servers,
        client,
        bases,
    } = up(&url, 2).await;
    let load = Load::start(&client, &bases, CONVERSATIONS);
    // Mid-load, one node dies (its leases and claims run out: the others
    // take its conversations and deliveries over) and comes back.
    tokio::time::sleep(Duration::from_millis(800 + random_below(400))).await;
    let victim = random_below(NODES as u64) as usize;
    servers[victim].kill().unwrap(); // SIGKILL
    servers[victim].wait().unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (config, log, base) = &nodes[victim];
    servers[victim] = start(config, log);
    ready(&client, base).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (sent, failed_sends) = load.finish().await;
    eprintln!("sent {sent:?}, {failed_sends} sends failed while node {victim} was down");
    received.wait_for(sent.iter().sum()).await;
    for s in servers {
        stop(s);
    }
    let store = store(url, Duration::from_secs(2)).await;
    check(&store, &sent, &received, &logs(&nodes)).await;
}

/// A deploy: under load, each node in turn is stopped gracefully (SIGTERM)
/// and started again. A stopping node finishes the turns of the
/// conversations it holds (messages other nodes accept for them meanwhile
/// included), gives their leases up and its deliveries not started back,
/// so the others go on with its conversations at once. The leases here are
/// long (30 s): a conversation left waiting for a stopped node's lease to
/// run out would hold its replies back for tens of seconds after the load.
/// Every message is processed once, in order; replies arrive in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_restarted_one_by_one_wait_for_no_lease() {
    one_by_one(Stop::Gracefully).await;
}

/// The same with each node killed (SIGKILL) and started again at once, as
/// a supervisor would: the node started on the dead one's data folder gives
/// up what that run held (`serve::predecessor`), so its conversations wait
/// for the start, not for their leases (30 s) to run out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_killed_one_by_one_and_started_again_wait_for_no_lease() {
    one_by_one(Stop::Kill).await;
}

enum Stop {
    Gracefully,
    Kill,
}

async fn one_by_one(how: Stop) {
    let url = pg::database().await;
    let Up {
        dir: _dir,
        received,
        nodes,
        servers,
        client,
        bases,
    } = up(&url, 30).await;
    let mut servers: Vec<_> = servers.into_iter().map(Some).collect();
    // Twice the conversations: more leases held at any moment.
    let load = Load::start(&client, &bases, 2 * CONVERSATIONS);
    for (n, (config, log, base)) in nodes.iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(500 + random_below(300))).await;
        let server = servers[n].take().unwrap();
        let stopping = Instant::now();
        tokio::task::block_in_place(|| match how {
            Stop::Gracefully => stop(server),
            Stop::Kill => {
                let mut server = server;
                server.kill().unwrap();
                server.wait().unwrap();
            }
        });
        let gone = stopping.elapsed();
        eprintln!("node {n} gone in {gone:?}");
        // The other nodes go on accepting the messages of the conversations
        // it holds: it hands them on after their turns in progress.
        assert!(
            gone < Duration::from_secs(10),
            "node {n} took {gone:?} to stop\n{}",
            logs(&nodes)
        );
        servers[n] = Some(start(config, log));
        ready(&client, base).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (sent, failed_sends) = load.finish().await;
    eprintln!("sent {sent:?}, {failed_sends} sends failed while a node restarted");
    let waiting = Instant::now();
    received.wait_for(sent.iter().sum()).await;
    let waited = waiting.elapsed();
    for s in servers.into_iter().flatten() {
        stop(s);
    }
    assert!(
        waited < Duration::from_secs(10),
        "the last replies came {waited:?} after the load: a stopped node's lease held a conversation\n{}",
        logs(&nodes)
    );
    let logs = logs(&nodes);
    eprintln!(
        "{} restarts gave up their last run's leases or claims",
        logs.matches("gave up what this node's last run held")
            .count()
    );
    let store = store(url, Duration::from_secs(30)).await;
    check(&store, &sent, &received, &logs).await;
}

/// A node killed for good (nothing starts it again): the conversations it
/// held wait for its leases (and its deliveries for their claims) to run
/// out, then go on on the other nodes within about a second — each node
/// looks every second for conversations nobody holds — rather than at the
/// next sweep of every conversation (up to 10 s later). Measured per
/// conversation, to its first reply after that: clearing the backlogs that
/// piled up meanwhile takes what a slow machine needs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_one_killed_for_good_go_on_once_its_leases_run_out() {
    let url = pg::database().await;
    let Up {
        dir,
        received,
        nodes,
        mut servers,
        client,
        bases,
    } = up(&url, 10).await;
    let load = Load::start(&client, &bases, 2 * CONVERSATIONS);
    let db = sqlx::PgPool::connect(&url).await.unwrap();
    let name = |n: usize| {
        std::fs::read_to_string(dir.path().join(format!("data{n}/node")))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    // The node holding the most leases dies; when what it held runs out.
    let (victim, until, held) = loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let busiest: Option<(String,)> = sqlx::query_as(
            "SELECT node FROM leases WHERE until_ms > $1 GROUP BY node ORDER BY count(*) DESC LIMIT 1",
        )
        .bind(now_ms() as i64)
        .fetch_optional(&db)
        .await
        .unwrap();
        let Some(victim) = busiest.and_then(|(b,)| (0..NODES).find(|n| name(*n) == b)) else {
            continue;
        };
        servers[victim].kill().unwrap(); // SIGKILL
        servers[victim].wait().unwrap();
        let held: Vec<(String,)> =
            sqlx::query_as("SELECT conversation FROM leases WHERE node = $1")
                .bind(name(victim))
                .fetch_all(&db)
                .await
                .unwrap();
        let (until,): (Option<i64>,) = sqlx::query_as(
            "SELECT greatest((SELECT max(until_ms) FROM leases WHERE node = $1),
                             (SELECT max(claimed_until) FROM outbox WHERE claimed_by = $1))",
        )
        .bind(name(victim))
        .fetch_one(&db)
        .await
        .unwrap();
        if let Some(until) = until {
            break (victim, until as u64, held);
        }
        // It let everything go just before: start it again, try again.
        servers[victim] = start(&nodes[victim].0, &nodes[victim].1);
        ready(&client, &nodes[victim].2).await;
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (sent, failed_sends) = load.finish().await;
    eprintln!("sent {sent:?}, {failed_sends} sends to the dead node {victim} went to another");
    received.wait_for(sent.iter().sum()).await;
    for (n, s) in servers.into_iter().enumerate() {
        if n != victim {
            stop(s);
        }
    }
    // How long each conversation the dead node held waited, once its leases
    // and claims ran out, for its next reply (the conversations' backlogs
    // then take as long as the machine needs; not measured).
    let waits: Vec<(String, u64)> = held
        .iter()
        .filter_map(|(c,)| Some((c.clone(), received.first_since(c, until)? - until)))
        .collect();
    eprintln!("node {victim} held {held:?}; their first replies after it ran out: {waits:?} ms");
    assert!(
        !waits.is_empty(),
        "the dead node held conversations with messages waiting: {held:?}"
    );
    assert!(
        waits.iter().all(|(_, ms)| *ms < 2500),
        "a conversation of the dead node waited long after its leases ran out: {waits:?}\n{}",
        logs(&nodes)
    );
    let store = store(url, Duration::from_secs(10)).await;
    check(&store, &sent, &received, &logs(&nodes)).await;
}

/// Bots spread over nodes, or a deploy under way: a node never drops the
/// messages of a bot it does not serve. Node 0 serves the echo bot, node 1
/// another bot only. Node 0 is killed with a burst of messages waiting;
/// once its leases run out node 1 sees them waiting with nobody holding
/// them and leaves them; node 0 started again runs them, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_leaves_the_messages_of_a_bot_it_does_not_serve() {
    let url = pg::database().await;
    let dir = tempfile::tempdir().unwrap();
    let received = Received::default();
    let hook = received.start().await;
    write_bot(dir.path());
    let other = dir.path().join("elsewhere");
    write_bot(&other);
    std::fs::rename(other.join("bot"), dir.path().join("other")).unwrap();
    std::fs::write(
        dir.path().join("other/bot.yaml"),
        "id: other\nname: Other\n",
    )
    .unwrap();
    let section =
        format!("store: {{ postgres: {{ url: \"{url}\", pool: 8, leaseSeconds: 1 }} }}\n");
    let nodes: Vec<(PathBuf, PathBuf, String)> = (0..2)
        .map(|n| {
            let port = free_port();
            let config = dir.path().join(format!("node{n}.yaml"));
            write_config(&config, port, &format!("data{n}"), &section, &hook);
            if n == 1 {
                let text = std::fs::read_to_string(&config).unwrap();
                std::fs::write(&config, text.replace("folder: bot", "folder: other")).unwrap();
            }
            let log = dir.path().join(format!("node{n}.log"));
            (config, log, format!("http://127.0.0.1:{port}"))
        })
        .collect();
    let client = reqwest::Client::new();
    let mut servers: Vec<_> = nodes.iter().map(|(c, l, _)| start(c, l)).collect();
    for (_, _, base) in &nodes {
        ready(&client, base).await;
    }
    // A burst to one conversation on node 0 (only it has the echo bot's
    // channel), all accepted; node 0 dies before it has run them all.
    const BURST: usize = 40;
    let sends = (0..BURST).map(|n| {
        let body = json!({
            "conversationId": "burst",
            "messageId": format!("b{n}"),
            "message": {"textMessage": {"text": format!("b{n}")}},
        });
        client
            .post(format!("{}/v1/channels/webhook/hook/messages", nodes[0].2))
            .bearer_auth("token-one")
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    });
    for answer in futures_util::future::join_all(sends).await {
        assert!(answer.unwrap().status().is_success());
    }
    servers[0].kill().unwrap(); // SIGKILL
    servers[0].wait().unwrap();
    let check_store = store(url, Duration::from_secs(1)).await;
    let waiting = check_store.inbox_conversations().await.unwrap();
    assert_eq!(
        waiting,
        [("echo".to_string(), "burst".to_string())],
        "messages left waiting"
    );
    // Its leases (1 s) run out; node 1 looks every second.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    servers[0] = start(&nodes[0].0, &nodes[0].1);
    received.wait_for(BURST).await;
    for s in servers {
        stop(s);
    }
    let logs = logs(&nodes);
    assert!(!logs.contains("dropping a message"), "{logs}");
    let mut users = users(&check_store, "burst").await;
    users.sort();
    let mut sent: Vec<String> = (0..BURST).map(|n| format!("b{n}")).collect();
    sent.sort();
    assert_eq!(users, sent, "each accepted message processed once\n{logs}");
    assert!(check_store.inbox_conversations().await.unwrap().is_empty());
}

/// The database gone mid-load for two seconds (every connection closed,
/// the port refusing new ones, as while a server restarts): the three nodes
/// answer 503 meanwhile and the senders send again (same `messageId`);
/// turns and deliveries that fail are tried again. Once it is back every
/// accepted message is processed once, in order, and every reply arrives,
/// in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_lose_their_database_for_a_while_and_lose_nothing() {
    let url = pg::database().await;
    let (relay, through) = relay::Relay::start(&url).await;
    let Up {
        dir: _dir,
        received,
        nodes,
        servers,
        client,
        bases,
    } = up(&through, 5).await;
    let load = Load::retrying(&client, &bases, CONVERSATIONS, &[429, 503]);
    tokio::time::sleep(Duration::from_millis(800 + random_below(400))).await;
    relay.cut().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    relay.mend().await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (sent, failed_sends) = load.finish().await;
    eprintln!("sent {sent:?}, {failed_sends} sends failed while the database was away");
    assert!(failed_sends > 0, "the outage was not seen");
    received.wait_for(sent.iter().sum()).await;
    for s in servers {
        stop(s);
    }
    let store = store(url, Duration::from_secs(5)).await;
    check(&store, &sent, &received, &logs(&nodes)).await;
}
