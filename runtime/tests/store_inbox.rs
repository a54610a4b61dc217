//! `sandbot store inbox` as an operator runs it: what waits per bot and who
//! serves it (the running nodes, the config), and `--drop` of a removed
//! bot's waiting messages — refused while a running node or the config
//! serves the bot. On PostgreSQL beside a running node, and on a stopped
//! server's embedded store.

// The cluster's servers and receiver, not its load.
#[allow(dead_code)]
#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/pg.rs"]
mod pg;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use cluster::*;
use sandbot::store::{
    Backlog, EmbeddedStore, InboxEntry, NodeSeen, PostgresOptions, PostgresStore, Store, now_ms,
};
use serde_json::json;

/// `sandbot store inbox --config config [extra…]`: (exit code, stdout, stderr).
fn inbox(config: &Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sandbot"))
        .args(["store", "inbox", "--config"])
        .arg(config)
        .args(extra)
        .env_remove("SANDBOT_DATABASE_URL")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The error of `sandbot store inbox` refused (exit 2), as printed.
fn refused(config: &Path, extra: &[&str]) -> String {
    let (code, _, err) = inbox(config, extra);
    assert_eq!(code, Some(2), "{err}");
    err.trim().to_string()
}

/// Accepts `n` messages of bot `gone` (a bot no config serves any more),
/// the first of them two and a half hours ago.
async fn waiting_for_gone(store: &dyn Store, n: usize) {
    let backlog = Backlog {
        conversation: 100,
        tenant: 100,
    };
    for i in 0..n {
        let entry = InboxEntry {
            id: 0,
            tenant: "one".into(),
            bot: "gone".into(),
            conversation: format!("c{}", i % 2),
            dedupe: None,
            accepted_ms: now_ms() - if i == 0 { 9_000_000 } else { 0 },
            job: json!({"text": i}),
        };
        store.enqueue(entry, backlog).await.unwrap();
    }
}

/// The node on `store` once one recorded itself (within a second of its
/// start), other than one given up at its next start.
async fn recorded(store: &PostgresStore) -> NodeSeen {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let [n] = &store.nodes().await.unwrap()[..] {
            return n.clone();
        }
        assert!(Instant::now() < deadline, "no node recorded itself");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A config on the same store serving no bot (an operator's copy).
fn bare_config(path: &Path, store: &str) {
    std::fs::write(
        path,
        format!(
            "data: data-bare\n{store}tenants: [{{ id: one, tokens: [\"{}\"] }}]\nbots: []\n",
            sandbot::serve::config::hash_token("x")
        ),
    )
    .unwrap();
}

const REFUSED: &str = "its waiting messages are run, not dropped (remove the bot from the config of every node first)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_the_running_nodes_say_what_they_serve() {
    let url = pg::database().await;
    let dir = tempfile::tempdir().unwrap();
    write_bot(dir.path());
    let hook = Received::default().start().await;
    let store_yaml = format!("store: {{ postgres: {{ url: \"{url}\", pool: 4 }} }}\n");
    let (config, bare) = (dir.path().join("node.yaml"), dir.path().join("bare.yaml"));
    let port = free_port();
    write_config(&config, port, "data", &store_yaml, &hook);
    bare_config(&bare, &store_yaml);
    let server = start(&config, &dir.path().join("node.log"));
    ready(&reqwest::Client::new(), &format!("http://127.0.0.1:{port}")).await;

    let store = PostgresStore::connect(&PostgresOptions {
        url: url.clone(),
        pool: 2,
        lease: Duration::from_secs(30),
        session_ttl: Duration::from_secs(3600),
        start_wait: Duration::ZERO,
        wait: PostgresOptions::WAIT,
    })
    .await
    .unwrap();
    waiting_for_gone(&store, 3).await;
    let node = recorded(&store).await;
    assert_eq!(node.bots, ["echo"]);

    let (code, out, err) = inbox(&config, &[]);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("store: {}", store.server()), "{out}");
    assert_eq!(lines[1], "nodes:", "{out}");
    let prefix = format!("  {}  sandbot {}  running for ", node.name, node.version);
    assert!(
        lines[2].starts_with(&prefix) && lines[2].ends_with(" s  serves: echo"),
        "{out}"
    );
    assert_eq!(
        &lines[3..],
        [
            "waiting (messages to run, replies to deliver), per bot:",
            "  gone  3 message(s) (the oldest 2 h old), 0 repl(ies)  served by nothing: its messages wait until a node serves it again, or `--drop` them",
        ],
        "{out}"
    );

    // The config serves `echo`; so does the running node.
    assert_eq!(
        refused(&config, &["--drop", "echo"]),
        format!("sandbot: `echo` is served by this config: {REFUSED}")
    );
    assert_eq!(
        refused(&bare, &["--drop", "echo"]),
        format!(
            "sandbot: `echo` is served by the running node(s) {}: {REFUSED}",
            node.name
        )
    );

    // The node's metrics count them too (every node does: none serves it).
    let metrics = || async move {
        reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let unserved = "sandbot_inbox_unserved_messages{bot=\"gone\"} 3";
    assert!(metrics().await.lines().any(|l| l == unserved), "{unserved}");

    let (code, out, err) = inbox(&bare, &["--drop", "gone"]);
    assert_eq!(
        (code, out.trim()),
        (Some(0), "dropped 3 waiting message(s) of `gone`"),
        "{err}"
    );
    assert_eq!(store.inbox_conversations().await.unwrap(), []);
    assert!(store.queued().await.unwrap().values().all(|q| q.inbox == 0));
    let (_, out, _) = inbox(&config, &[]);
    assert_eq!(out.lines().last(), Some("nothing waits"), "{out}");
    let text = metrics().await;
    assert!(!text.contains("sandbot_inbox_unserved_messages{"), "{text}");

    // A node killed stays listed; started again on its data folder, its
    // new run takes the old one's place.
    let mut server = server;
    server.kill().unwrap();
    server.wait().unwrap();
    let names = |nodes: Vec<NodeSeen>| nodes.into_iter().map(|n| n.name).collect::<Vec<_>>();
    assert_eq!(
        names(store.nodes().await.unwrap()),
        std::slice::from_ref(&node.name)
    );
    let server = start(&config, &dir.path().join("node.log"));
    ready(&reqwest::Client::new(), &format!("http://127.0.0.1:{port}")).await;
    let again = recorded(&store).await;
    assert_ne!(again.name, node.name);
    assert_eq!(names(store.nodes().await.unwrap()), [again.name]);

    // A node that stops leaves the list; then nothing serves `echo` but the
    // config.
    stop(server);
    assert_eq!(store.nodes().await.unwrap(), []);
    let (code, out, _) = inbox(&bare, &[]);
    assert_eq!(
        (code, out),
        (
            Some(0),
            format!("store: {}\nnothing waits\n", store.server())
        )
    );
    let (code, out, err) = inbox(&bare, &["--drop", "echo"]);
    assert_eq!(
        (code, out.trim()),
        (Some(0), "dropped 0 waiting message(s) of `echo`"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_stopped_servers_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    write_bot(dir.path());
    let config = dir.path().join("node.yaml");
    write_config(&config, free_port(), "data", "", "http://127.0.0.1:9/hook");

    assert_eq!(
        refused(&config, &[]),
        format!(
            "sandbot: {} holds no store (no sandbot.redb): nothing waits",
            dir.path().join("data").display()
        )
    );

    let path = dir.path().join("data/sandbot.redb");
    let store = EmbeddedStore::open(&path, Duration::from_secs(3600)).unwrap();
    waiting_for_gone(&store, 2).await;
    // The server (here: the store) still has it open.
    let err = refused(&config, &[]);
    assert!(err.contains("is in use by another process"), "{err}");
    drop(store);

    let (code, out, err) = inbox(&config, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out,
        format!(
            "store: embedded, {}\nwaiting (messages to run, replies to deliver), per bot:\n  \
             gone  2 message(s) (the oldest 2 h old), 0 repl(ies)  served by nothing: its messages wait until a node serves it again, or `--drop` them\n",
            path.display()
        )
    );
    assert_eq!(
        refused(&config, &["--drop", "echo"]),
        format!("sandbot: `echo` is served by this config: {REFUSED}")
    );
    let (code, out, err) = inbox(&config, &["--drop", "gone"]);
    assert_eq!(
        (code, out.trim()),
        (Some(0), "dropped 2 waiting message(s) of `gone`"),
        "{err}"
    );
    let (_, out, _) = inbox(&config, &[]);
    assert_eq!(
        out,
        format!("store: embedded, {}\nnothing waits\n", path.display())
    );
}
