//! Whole turns on the embedded store with durable commits, many conversations
//! in parallel on 2 workers:
//!
//! 1. a 5-block turn without a sandboxed action (message, condition,
//!    message, set variables, collect input);
//! 2. the same turn with one JavaScript code action (two session variables
//!    and one message) in place of the set-variables block.
//!
//! `cargo bench -p sandbot --bench turns -- --conversations 200 --seconds 5 [--parts N]`
//! (`--parts`: the store's parts, each with its own writer; default 1)

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sandbot::flow::{Bot, FlowEngine, Inbound, InboundKind};
use sandbot::runner::SandboxRunner;
use sandbot::sandbox::{Limits, Sandbox, SandboxConfig};
use sandbot::store::{DEFAULT_SESSION_TTL, EmbeddedStore, Store};

const BOT: &str = "id: bench\nname: Bench\n";

fn flow(fourth: &str) -> String {
    format!(
        r#"blocks:
  - {{ id: intro, system: introduction, type: message, messages: [{{ text: "Hi" }}], goto: ask }}
  - {{ id: ask, type: input, variable: answer.text, question: "Say something", goto: b1 }}
  - {{ id: b1, type: message, messages: [{{ text: "You said {{answer.text}}" }}], goto: b2 }}
  - id: b2
    type: condition
    rules: [{{ conditions: [{{ variable: answer.text, operator: contains, value: "zzz" }}], goto: intro }}]
    else: b3
  - {{ id: b3, type: message, messages: [{{ text: "Turn {{turns|increment}}" }}], goto: b4 }}
  - {fourth}
  - {{ id: not-understood, system: notUnderstood, type: message, messages: [{{ text: "?" }}] }}
  - {{ id: error, system: errorOccurred, type: message, messages: [{{ text: "ERR" }}] }}
  - {{ id: disabled, system: botDisabled, type: message, messages: [{{ text: "off" }}] }}
"#
    )
}

const SET: &str =
    r#"{ id: b4, type: action, set: { answer: {}, turns: "{turns|increment}" }, goto: ask }"#;
const CODE: &str = r#"{ id: b4, type: action, code: step.js, args: { n: "{turns}" }, goto: ask }"#;
const SCRIPT: &str = r#"ChatlayerResponseBuilder()
  .addSessionVariable("answer", {})
  .addSessionVariable("turns", Number(args.n || 0) + 1)
  .addMessage("step " + args.n)
  .send();"#;

fn write_bot(dir: &Path, fourth: &str) -> Bot {
    std::fs::create_dir_all(dir.join("flows")).unwrap();
    std::fs::create_dir_all(dir.join("actions")).unwrap();
    std::fs::write(dir.join("bot.yaml"), BOT).unwrap();
    std::fs::write(dir.join("flows/main.yaml"), flow(fourth)).unwrap();
    std::fs::write(dir.join("actions/step.js"), SCRIPT).unwrap();
    Bot::load(dir).unwrap_or_else(|p| panic!("{p}"))
}

async fn measure(
    name: &str,
    bot: Bot,
    engine: FlowEngine,
    messages: usize,
    conversations: usize,
    seconds: u64,
) {
    let (bot, engine) = (Arc::new(bot), Arc::new(engine));
    for c in 0..conversations {
        let out = engine
            .turn(
                &bot,
                Inbound::new(format!("c{c}"), "bench", InboundKind::Intro),
            )
            .await
            .unwrap();
        assert_eq!(out.waiting.as_deref(), Some("ask"));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let started = Instant::now();
    for c in 0..conversations {
        let (bot, engine, stop, done) = (bot.clone(), engine.clone(), stop.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let out = engine
                    .turn(&bot, Inbound::text(format!("c{c}"), "bench", "hello there"))
                    .await
                    .unwrap();
                times.push(t.elapsed());
                assert_eq!(out.messages.len(), messages, "{:?}", out.events);
                assert_eq!(
                    out.events
                        .iter()
                        .filter(|e| e.get("block").is_some())
                        .count(),
                    5
                );
                done.fetch_add(1, Ordering::Relaxed);
            }
            times
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut times = Vec::new();
    for t in tasks {
        times.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    times.sort();
    println!(
        "{name}: {:.0} turns/s ({} turns, {conversations} conversations, {elapsed:.1} s); latency p50 {:.2} ms, p99 {:.2} ms",
        times.len() as f64 / elapsed,
        times.len(),
        support::percentile_us(&times, 0.5) / 1000.0,
        support::percentile_us(&times, 0.99) / 1000.0,
    );
}

fn main() {
    let conversations = support::arg("--conversations", 200);
    let seconds = support::arg("--seconds", 5) as u64;
    let parts = support::arg("--parts", 1);
    let runtime = support::runtime();
    runtime.block_on(async {
        let sandbox = Arc::new(
            Sandbox::new(SandboxConfig {
                max_instances: 256,
                ..SandboxConfig::default()
            })
            .unwrap(),
        );
        let runner = Arc::new(SandboxRunner::new(sandbox, Limits::deny_all()));
        for (name, fourth, messages) in [
            ("5-block turn, no action", SET, 3),
            ("5-block turn, one JS code action", CODE, 4),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let bot = write_bot(&dir.path().join("bot"), fourth);
            let store: Arc<dyn Store> = Arc::new(
                EmbeddedStore::open_parts(
                    &dir.path().join("data/sandbot.redb"),
                    DEFAULT_SESSION_TTL,
                    None,
                    parts,
                )
                .unwrap(),
            );
            let engine = FlowEngine::new(store, runner.clone(), "LIVE");
            measure(name, bot, engine, messages, conversations, seconds).await;
        }
    });
}
