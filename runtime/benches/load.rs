//! Load against `sandbot serve` from a separate load generator (this
//! process): the server runs as its own process (the `sandbot` binary) with
//! the webhook channel pointed at a receiver here; many conversations each
//! send a message, wait for the bot's answer to arrive at the receiver, and
//! send the next (closed loop). Measured: messages processed per second and
//! the latency from POST to the answer's delivery. At the end every message
//! is accounted for: turns counted by the server (`/v1/usage`) = messages
//! sent, deliveries received = answers expected, nothing left queued.
//!
//! `cargo bench -p sandbot --bench load -- --conversations 24 --seconds 8`
//!
//! With `SANDBOT_BENCH_DATABASE_URL=postgres://…` (a server's admin URL; a
//! Unix socket as `postgres://user@localhost:PORT?host=/run/postgresql`) the
//! nodes share a fresh PostgreSQL database; `--nodes N` starts N server
//! processes and sends each message to the next node in turn; `--threads N`
//! gives each its async worker threads.
//!
//! `runtime/benches/scaling.sh` runs it across core counts under `taskset`.

mod support;

use support::serve::{self, ServerProcess};

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

const NO_ACTION: &str = r#"blocks:
  - { id: intro, system: introduction, type: message, messages: [{ text: "Hi" }] }
  - { id: answer, system: notUnderstood, type: message, messages: [{ text: "You said {internal.messageContent}" }] }
  - { id: error, system: errorOccurred, type: message, messages: [{ text: "ERR" }] }
  - { id: disabled, system: botDisabled, type: message, messages: [{ text: "off" }] }
"#;

const JS_ACTION: &str = r#"blocks:
  - { id: intro, system: introduction, type: message, messages: [{ text: "Hi" }] }
  - { id: answer, system: notUnderstood, type: action, code: reply.js, args: { text: "{internal.messageContent}" } }
  - { id: error, system: errorOccurred, type: message, messages: [{ text: "ERR" }] }
  - { id: disabled, system: botDisabled, type: message, messages: [{ text: "off" }] }
"#;

const SCRIPT: &str = r#"const n = (session.get("count") || 0) + 1;
ChatlayerResponseBuilder()
  .addSessionVariable("count", n)
  .addSessionVariable("last", { text: args.text })
  .addMessage("You said " + args.text)
  .send();"#;

/// A database on the server at `admin` for one run: created fresh, dropped
/// when the run is over.
struct Database {
    admin: String,
    name: String,
}

impl Database {
    async fn fresh(admin: &str) -> Database {
        let db = Database {
            admin: admin.to_string(),
            name: format!("bench_{}", sandbot::store::now_ms()),
        };
        db.admin_sql(&format!("CREATE DATABASE {}", db.name)).await;
        db
    }

    /// Its URL: `…?host=/run/postgresql` (a Unix socket) keeps its options
    /// after the database name.
    fn url(&self) -> String {
        let (admin, options) = self.split();
        format!("{admin}/{}{options}", self.name)
    }

    fn split(&self) -> (&str, &str) {
        let (admin, options) = self
            .admin
            .split_at(self.admin.find('?').unwrap_or(self.admin.len()));
        (admin.trim_end_matches('/'), options)
    }

    async fn admin_sql(&self, sql: &str) {
        use sqlx::Connection;
        let (admin, options) = self.split();
        let mut c = sqlx::PgConnection::connect(&format!("{admin}/postgres{options}"))
            .await
            .unwrap();
        sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
    }

    async fn drop(self) {
        self.admin_sql(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .await;
    }
}

async fn run(name: &str, flow: &str, conversations: usize, seconds: u64, nodes: usize) {
    let dir = tempfile::tempdir().unwrap();
    let bot = dir.path().join("bot");
    std::fs::create_dir_all(bot.join("flows")).unwrap();
    std::fs::create_dir_all(bot.join("actions")).unwrap();
    std::fs::write(bot.join("bot.yaml"), "id: load\nname: Load\n").unwrap();
    std::fs::write(bot.join("flows/main.yaml"), flow).unwrap();
    std::fs::write(bot.join("actions/reply.js"), SCRIPT).unwrap();

    let (inbox, hook) = serve::receiver().await;

    // `--pool N`: each node's PostgreSQL pool (default 16, the serve default).
    let pool = support::arg("--pool", 16);
    let database = match std::env::var("SANDBOT_BENCH_DATABASE_URL") {
        Ok(admin) => Some(Database::fresh(&admin).await),
        Err(_) => None,
    };
    let store = match &database {
        Some(db) => format!(
            "store: {{ postgres: {{ url: \"{}\", pool: {pool} }} }}\nwebSessionSecret: \"one secret shared by the bench nodes\"\n",
            db.url()
        ),
        // `--parts N`: the embedded store's parts (default: the serve default).
        None => match support::arg("--parts", 0) {
            0 => String::new(),
            parts => format!("store: {{ embedded: {{ parts: {parts} }} }}\n"),
        },
    };
    // `--idle-mib N`: the servers' idleMemoryMib (default 32).
    let idle_mib = support::arg("--idle-mib", 32);
    // `--threads N`: each server's async worker threads (default: one per core).
    let threads = match support::arg("--threads", 0) {
        0 => String::new(),
        n => format!("threads: {n}\n"),
    };
    let mut servers = Vec::new();
    let mut bases = Vec::new();
    for n in 0..nodes {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = format!(
            "listen: 127.0.0.1:{port}\ndata: data{n}\nidleMemoryMib: {idle_mib}\n{threads}{store}tenants: [{{ id: t, tokens: [\"{}\"], rateLimit: {{ requests: 1000000, seconds: 60 }} }}]\n\
             bots:\n  - folder: bot\n    tenant: t\n    channels:\n      webhook: [{{ id: load, url: \"{hook}\", verifyToken: v }}]\n",
            sandbot::serve::config::hash_token("load-token"),
        );
        let file = dir.path().join(format!("serve{n}.yaml"));
        std::fs::write(&file, config).unwrap();
        servers.push(ServerProcess(
            // `SANDBOT_BIN`: the server binary where it is not where cargo
            // built it (a prepared run on another machine).
            Command::new(
                std::env::var("SANDBOT_BIN").unwrap_or(env!("CARGO_BIN_EXE_sandbot").into()),
            )
            .args(["serve", "--config"])
            .arg(&file)
            .env("SANDBOT_LOG", "warn")
            .env_remove("SANDBOT_DATABASE_URL")
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
        ));
        bases.push(format!("http://127.0.0.1:{port}"));
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(conversations)
        .build()
        .unwrap();
    for base in &bases {
        serve::ready(&client, base).await;
    }

    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let latencies = serve::closed_loops(conversations, seconds, |c, stop| {
        let (client, bases, inbox, sent) =
            (client.clone(), bases.clone(), inbox.clone(), sent.clone());
        async move {
            let conv = format!("c{c}");
            let (mut n, mut latencies) = (0u64, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                // Each message to the next node in turn.
                let base = &bases[(c + n as usize) % bases.len()];
                let url = format!("{base}/v1/channels/webhook/load/messages");
                latencies
                    .push(serve::webhook_turn(&client, &url, "load-token", &inbox, &conv, n).await);
                sent.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
            latencies
        }
    })
    .await;
    let elapsed = started.elapsed().as_secs_f64();

    // Accounting.
    let sent = sent.load(Ordering::Relaxed);
    let received: u64 = inbox.lock().unwrap().values().map(|v| v.0).sum();
    // With several nodes each records its figures every second; /v1/usage
    // on any node adds them up.
    if bases.len() > 1 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    // A turn is counted just after its commit, so the last answer can
    // arrive a moment before its turn is: look again for up to 3 s.
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    let (usage, turns) = loop {
        let usage: Value = serde_json::from_str(
            &client
                .get(format!("{}/v1/usage", bases[0]))
                .bearer_auth("load-token")
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        )
        .unwrap();
        let turns = usage["bots"]["load"]["turns"].as_u64().unwrap_or(0);
        if turns >= sent || std::time::Instant::now() > deadline {
            break (usage, turns);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let failures = &usage["bots"]["load"]["actionFailures"];
    let not_committed = usage["bots"]["load"]["turnsNotCommitted"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        failures.as_object().is_none_or(|f| f.is_empty()),
        "no action failed: {failures}"
    );
    assert_eq!(turns, sent, "every inbound message was processed");
    assert_eq!(received, sent, "every answer was delivered");
    let metrics = client
        .get(format!("{}/metrics", bases[0]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let releases = metrics
        .lines()
        .find_map(|l| l.strip_prefix("sandbot_sandbox_idle_releases_total "))
        .unwrap_or("?")
        .to_string();
    drop(servers);
    if let Some(db) = database {
        db.drop().await;
    }
    println!(
        "{name}: {:.0} messages/s ({sent} messages, {conversations} conversations, {elapsed:.1} s); POST→delivery p50 {:.1} ms, p99 {:.1} ms; accounted: {turns} turns, {received} deliveries, {not_committed} turns not committed; idle pool releases: {releases}",
        sent as f64 / elapsed,
        support::percentile_us(&latencies, 0.5) / 1000.0,
        support::percentile_us(&latencies, 0.99) / 1000.0,
    );
}

fn main() {
    let conversations = support::arg("--conversations", 24);
    let seconds = support::arg("--seconds", 10) as u64;
    let nodes = support::arg("--nodes", 1).max(1);
    // The generator gets one worker; the server process competes for the
    // same 2 cores, as it would with a real client on the machine.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        run(
            "webhook turn, no action",
            NO_ACTION,
            conversations,
            seconds,
            nodes,
        )
        .await;
        run(
            "webhook turn, one JS code action",
            JS_ACTION,
            conversations,
            seconds,
            nodes,
        )
        .await;
    });
}
