//! Three `sandbot serve` processes on 127.0.0.1 sharing one PostgreSQL: a
//! load generator sends each message to a random node; one node is killed
//! with SIGKILL mid-load and restarted. Every accepted message is processed
//! once, in order per conversation, across the nodes; replies arrive in
//! order. (That a node whose lease ran out cannot commit is tested in the
//! store conformance suite.)

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/pg.rs"]
mod pg;

use std::time::Duration;

use cluster::*;
use sandbot::store::{PostgresOptions, PostgresStore};

const NODES: usize = 3;
const CONVERSATIONS: usize = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_one_killed_lose_and_repeat_no_message() {
    let url = pg::database().await;
    let dir = tempfile::tempdir().unwrap();
    write_bot(dir.path());
    let received = Received::default();
    let hook = received.start().await;
    let mut nodes = Vec::new();
    for n in 0..NODES {
        let port = free_port();
        let config = dir.path().join(format!("node{n}.yaml"));
        let store = format!(
            "store: {{ postgres: {{ url: \"{url}\", pool: 8, leaseSeconds: 2 }} }}\n\
             webSessionSecret: \"one secret for every node of this deployment\"\n"
        );
        write_config(&config, port, &format!("data{n}"), &store, &hook);
        let log = dir.path().join(format!("node{n}.log"));
        nodes.push((config, log, format!("http://127.0.0.1:{port}")));
    }
    let client = reqwest::Client::new();
    let mut servers: Vec<_> = nodes.iter().map(|(c, l, _)| start(c, l)).collect();
    for (_, _, base) in &nodes {
        ready(&client, base).await;
    }
    let bases: Vec<String> = nodes.iter().map(|(_, _, b)| b.clone()).collect();
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
    let logs: String = nodes
        .iter()
        .map(|(_, l, _)| std::fs::read_to_string(l).unwrap_or_default())
        .collect();
    let store = PostgresStore::connect(&PostgresOptions {
        url,
        pool: 2,
        lease: Duration::from_secs(2),
        session_ttl: Duration::from_secs(3600),
        start_wait: Duration::ZERO,
        wait: PostgresOptions::WAIT,
    })
    .await
    .unwrap();
    check(&store, &sent, &received, &logs).await;
}
