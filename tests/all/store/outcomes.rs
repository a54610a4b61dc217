//! The outcomes kept for REST actions sent with an `Idempotency-Key`, on
//! both backends: kept once (the first stays), found while the entry they
//! answer still waits, forgotten with the message ids seen.

use std::time::Duration;

use sandbot::store::{KeptOutcome, now_ms};
use serde_json::json;

use super::conformance::{Backend, ROOMY, embedded, entry, finish, parted, postgres, queued};

async fn outcomes_are_kept_for_retries(b: &Backend) {
    let store = b.open().await;
    let kept = "rest-aa";
    assert_eq!(
        store.kept_outcome("b", "c", kept).await.unwrap(),
        KeptOutcome::Unknown,
        "never accepted"
    );
    let mut e = entry("t", "c", "1", Some("rest\0b\0c\0k"));
    e.job = json!({"channel": "rest", "reply": "r1", "keep": kept});
    // Another entry of the conversation before it, keeping its outcome
    // elsewhere: only a job's `keep` counts, not its `reply`.
    let mut other = entry("t", "c", "0", None);
    other.job = json!({"channel": "rest", "reply": kept, "keep": "rest-bb"});
    let first = queued(store.as_ref(), other, ROOMY).await;
    let id = queued(store.as_ref(), e, ROOMY).await;
    assert_eq!(
        store.kept_outcome("b", "c", kept).await.unwrap(),
        KeptOutcome::Waiting
    );
    assert_eq!(
        store.kept_outcome("b", "other", kept).await.unwrap(),
        KeptOutcome::Unknown,
        "the entry is another conversation's"
    );
    finish(store.as_ref(), "c", first).await;
    finish(store.as_ref(), "c", id).await;
    assert_eq!(
        store.kept_outcome("b", "c", kept).await.unwrap(),
        KeptOutcome::Unknown,
        "done and not kept (yet)"
    );
    let outcome = json!({"done": {"messagesSent": 1, "paused": false, "flowMessages": []}});
    store.keep_outcome("b", "c", kept, &outcome).await.unwrap();
    let later = json!({"done": {"messagesSent": 7}});
    store.keep_outcome("b", "c", kept, &later).await.unwrap();
    assert_eq!(
        store.kept_outcome("b", "c", kept).await.unwrap(),
        KeptOutcome::Outcome(outcome.clone()),
        "the first outcome stays"
    );

    // A restart (or another node) finds it; the purge forgets it only once
    // it is older than the cut-off.
    drop(store);
    let store = b.open().await;
    assert_eq!(store.purge_seen(now_ms() - 60_000).await.unwrap(), 0);
    assert_eq!(
        store.kept_outcome("b", "c", kept).await.unwrap(),
        KeptOutcome::Outcome(outcome)
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    store.purge_seen(now_ms()).await.unwrap();
    assert_eq!(
        store.kept_outcome("b", "c", kept).await.unwrap(),
        KeptOutcome::Unknown
    );
}

#[tokio::test]
async fn embedded_outcomes_are_kept_for_retries() {
    let (_dir, b) = embedded();
    outcomes_are_kept_for_retries(&b).await;
    let (_dir, b) = parted(3);
    outcomes_are_kept_for_retries(&b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outcomes_are_kept_for_retries() {
    outcomes_are_kept_for_retries(&postgres(Duration::from_secs(30)).await).await;
}
