//! `sandbot serve` on the embedded store, under load, killed with SIGKILL at
//! random moments (3 times) and restarted: every message that got a 2xx is
//! processed exactly once, in order per conversation, and every reply is
//! delivered at least once, in order. The senders retry (same `messageId`)
//! until they get a 2xx, as Chatlayer's channels do.

#[path = "support/cluster.rs"]
mod cluster;

use std::time::Duration;

use cluster::*;
use sandbot::store::EmbeddedStore;

const CONVERSATIONS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_and_repeats_no_message() {
    sigkill_under_load("", 1).await;
}

/// The same with the store split into three parts (three writers, three
/// files, each committing on its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_with_three_store_parts() {
    sigkill_under_load("store: { embedded: { parts: 3 } }\n", 3).await;
}

async fn sigkill_under_load(extra: &str, parts: usize) {
    let dir = tempfile::tempdir().unwrap();
    write_bot(dir.path());
    let received = Received::default();
    let hook = received.start().await;
    let port = free_port();
    let config = dir.path().join("serve.yaml");
    write_config(&config, port, "data", extra, &hook);
    let log = dir.path().join("serve.log");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut server = start(&config, &log);
    ready(&client, &base).await;

    let load = Load::start(&client, std::slice::from_ref(&base), CONVERSATIONS);
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(200 + random_below(400))).await;
        server.kill().unwrap(); // SIGKILL
        server.wait().unwrap();
        server = start(&config, &log);
        ready(&client, &base).await;
    }
    let (sent, failed_sends) = load.finish().await;
    eprintln!("sent {sent:?}, {failed_sends} sends failed during the kills");
    assert!(
        failed_sends > 0,
        "the kills happened while messages were being sent"
    );
    received.wait_for(sent.iter().sum()).await;
    stop(server);
    let log = std::fs::read_to_string(&log).unwrap();
    // `serve` logs a line per turn by default, without colours in a file.
    assert!(
        log.lines()
            .any(|l| l.contains(" INFO ") && l.contains("turn") && l.contains("conversation=")),
        "no turn lines in the log"
    );
    assert!(!log.contains('\x1b'), "ANSI colours in a log file");
    let store = EmbeddedStore::open(
        &dir.path().join("data/sandbot.redb"),
        Duration::from_secs(3600),
    )
    .unwrap();
    assert_eq!(store.part_count(), parts);
    check(&store, &sent, &received, &log).await;
}
