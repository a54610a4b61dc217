//! The embedded store's commit path alone, without turns or HTTP: many
//! conversations each doing what a served message does to the store — accept
//! it into the inbox, commit its turn (session, two transcript entries, one
//! delivery, the entry done) and settle the delivery — in a closed loop, on
//! the 2-worker runtime. Prints messages per second and the CPU each thread
//! of this process used per message (read from `/proc/self/task`), so the
//! writers' share and the busiest writer show where the ceiling is.
//!
//! `cargo bench -p sandbot --bench commits -- --conversations 64 --seconds 5 --parts 1`

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sandbot::store::{
    Accepted, Backlog, ConversationState, Delivery, EmbeddedStore, InboxClaim, InboxEntry, Store,
    TranscriptEntry, TurnCommit, now_ms,
};
use serde_json::json;

const ROOMY: Backlog = Backlog {
    conversation: 1000,
    tenant: 1_000_000,
};

/// CPU time (user + system, clock ticks) per thread name of this process.
fn threads() -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_string();
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        *out.entry(name).or_default() += ticks;
    }
    out
}

/// One message of conversation `conv`, number `n`, through the store.
async fn message(store: &dyn Store, conv: &str, n: u64, state: &mut ConversationState) {
    let entry = InboxEntry {
        id: 0,
        tenant: "t".into(),
        bot: "bench".into(),
        conversation: conv.into(),
        dedupe: Some(format!("hook\0{conv}-{n}")),
        accepted_ms: now_ms(),
        job: json!({"text": format!("message {n}")}),
    };
    let Accepted::Queued(id) = store.enqueue(entry, ROOMY).await.unwrap() else {
        panic!("not queued");
    };
    state.session = json!({"last": {"text": format!("message {n}")}, "turns": n});
    state.updated_ms = now_ms();
    let seq = state.transcript_len;
    state.transcript_len += 2;
    let line = |seq, event| TranscriptEntry {
        seq,
        at_ms: now_ms(),
        event,
    };
    let commit = TurnCommit {
        bot: "bench".into(),
        conversation: conv.into(),
        state: state.clone(),
        transcript: vec![
            line(seq, json!({"user": {"text": format!("message {n}")}})),
            line(
                seq + 1,
                json!({"bot": [{"text": format!("You said message {n}")}]}),
            ),
        ],
        postbacks: Vec::new(),
        outbox: vec![Delivery {
            id: 0,
            bot: "bench".into(),
            conversation: conv.into(),
            url: "http://127.0.0.1:9/hook".into(),
            headers: Vec::new(),
            auth: None,
            body: json!({"senderId": conv, "message": {"text": format!("You said message {n}")}}),
            attempts: 0,
            not_before_ms: 0,
        }],
        inbox: Some(InboxClaim {
            entry: Some(id),
            epoch: 0,
        }),
    };
    store.commit(commit).await.unwrap();
    let queued = store.outbox(1000).await.unwrap();
    let mine: Vec<u64> = queued
        .iter()
        .filter(|d| d.conversation == conv)
        .map(|d| d.id)
        .collect();
    store.outbox_settle(&mine, &[]).await.unwrap();
}

fn main() {
    let conversations = support::arg("--conversations", 64);
    let seconds = support::arg("--seconds", 5) as u64;
    let parts = support::arg("--parts", 1);
    let runtime = support::runtime();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            EmbeddedStore::open_parts(
                &dir.path().join("sandbot.redb"),
                Duration::from_secs(3600),
                None,
                parts,
            )
            .unwrap(),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for c in 0..conversations {
            let (store, stop, done) = (store.clone(), stop.clone(), done.clone());
            tasks.push(tokio::spawn(async move {
                let conv = format!("user-{c}");
                let mut state = ConversationState::new(now_ms());
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    message(store.as_ref(), &conv, n, &mut state).await;
                    n += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        // Warm up, then measure.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (before, count, start) = (threads(), done.load(Ordering::Relaxed), Instant::now());
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let (after, messages, elapsed) = (
            threads(),
            done.load(Ordering::Relaxed) - count,
            start.elapsed().as_secs_f64(),
        );
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        let tick = 1e6 / 100.0; // µs per clock tick (USER_HZ = 100)
        let mut writers = 0.0;
        let mut busiest: f64 = 0.0;
        let mut rows = Vec::new();
        for (name, ticks) in &after {
            let used = (ticks - before.get(name).copied().unwrap_or(0)) as f64 * tick;
            if used == 0.0 {
                continue;
            }
            if name.starts_with("sandbot-store") {
                writers += used;
                busiest = busiest.max(used);
            }
            rows.push(format!(
                "{name} {:.0} % of a core",
                used / (elapsed * 1e6) * 100.0
            ));
        }
        println!(
            "store commit path, {parts} part(s): {:.0} messages/s ({messages} messages, {conversations} conversations, {elapsed:.1} s); writers {:.0} µs CPU per message, busiest writer {:.0} % of a core; {}",
            messages as f64 / elapsed,
            writers / messages as f64,
            busiest / (elapsed * 1e6) * 100.0,
            rows.join(", ")
        );
    });
}
