//! One conformance suite for every `Store` backend: the same checks of the
//! durable inbox, turns and the outbox, run against each backend that this
//! machine can start (the embedded store always).

use std::sync::Arc;
use std::time::Duration;

use sandbot::store::{
    Accepted, Backlog, ConversationState, EmbeddedStore, InboxEntry, Store, TurnCommit, now_ms,
};
use serde_json::json;

/// Opens a store on the backend's data: called again, it is a restart.
pub struct Backend {
    pub open: Box<dyn Fn() -> Arc<dyn Store>>,
}

fn embedded() -> (tempfile::TempDir, Backend) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let open = Box::new(move || {
        Arc::new(EmbeddedStore::open(&path, Duration::from_secs(3600)).unwrap()) as Arc<dyn Store>
    });
    (dir, Backend { open })
}

const ROOMY: Backlog = Backlog {
    conversation: 100,
    tenant: 1000,
};

fn entry(tenant: &str, conv: &str, text: &str, dedupe: Option<&str>) -> InboxEntry {
    InboxEntry {
        id: 0,
        tenant: tenant.into(),
        bot: "b".into(),
        conversation: conv.into(),
        dedupe: dedupe.map(str::to_string),
        accepted_ms: now_ms(),
        job: json!({"text": text}),
    }
}

fn commit_done(conv: &str, inbox: u64) -> TurnCommit {
    TurnCommit {
        bot: "b".into(),
        conversation: conv.into(),
        state: ConversationState::new(now_ms()),
        transcript: Vec::new(),
        postbacks: Vec::new(),
        outbox: Vec::new(),
        inbox: Some(inbox),
    }
}

async fn queued(store: &dyn Store, e: InboxEntry, backlog: Backlog) -> u64 {
    match store.enqueue(e, backlog).await.unwrap() {
        Accepted::Queued(id) => id,
        other => panic!("expected Queued, got {other:?}"),
    }
}

/// Entries come back per conversation in acceptance order, survive a
/// restart, and leave only with the commit of their turn.
async fn inbox_order_and_done(b: &Backend) {
    let store = (b.open)();
    let a1 = queued(store.as_ref(), entry("t", "a", "1", None), ROOMY).await;
    let b1 = queued(store.as_ref(), entry("t", "z", "1", None), ROOMY).await;
    let a2 = queued(store.as_ref(), entry("t", "a", "2", None), ROOMY).await;
    assert!(a1 < b1 && b1 < a2, "ids increase in acceptance order");
    drop(store);
    let store = (b.open)();
    let next = store.inbox_next("b", "a").await.unwrap().unwrap();
    assert_eq!((next.id, next.job["text"].as_str()), (a1, Some("1")));
    let mut pending = store.inbox_conversations().await.unwrap();
    pending.sort();
    assert_eq!(
        pending,
        [("b".into(), "a".into()), ("b".into(), "z".into())]
    );
    store.commit(commit_done("a", a1)).await.unwrap();
    assert_eq!(store.inbox_next("b", "a").await.unwrap().unwrap().id, a2);
    store.commit(commit_done("a", a2)).await.unwrap();
    assert!(store.inbox_next("b", "a").await.unwrap().is_none());
    store.inbox_discard("b", "z", b1).await.unwrap();
    assert!(store.inbox_conversations().await.unwrap().is_empty());
    // Ids keep increasing after everything is done and the store restarts.
    drop(store);
    let store = (b.open)();
    let later = queued(store.as_ref(), entry("t", "a", "3", None), ROOMY).await;
    assert!(later > 0);
    assert_eq!(store.inbox_next("b", "a").await.unwrap().unwrap().id, later);
}

/// A message id accepted once is a duplicate afterwards, also after its turn
/// and after a restart; other scopes are separate.
async fn dedupe(b: &Backend) {
    let store = (b.open)();
    let id = queued(store.as_ref(), entry("t", "c", "x", Some("s\0m1")), ROOMY).await;
    let again = store
        .enqueue(entry("t", "c", "x", Some("s\0m1")), ROOMY)
        .await;
    assert_eq!(again.unwrap(), Accepted::Duplicate);
    store.commit(commit_done("c", id)).await.unwrap();
    drop(store);
    let store = (b.open)();
    let again = store
        .enqueue(entry("t", "c", "x", Some("s\0m1")), ROOMY)
        .await;
    assert_eq!(again.unwrap(), Accepted::Duplicate);
    queued(
        store.as_ref(),
        entry("t", "c", "x", Some("other\0m1")),
        ROOMY,
    )
    .await;
    // Duplicates in one group commit.
    let (x, y) = tokio::join!(
        store.enqueue(entry("t", "c", "y", Some("s\0m2")), ROOMY),
        store.enqueue(entry("t", "c", "y", Some("s\0m2")), ROOMY)
    );
    let mut got = [x.unwrap(), y.unwrap()];
    got.sort_by_key(|a| matches!(a, Accepted::Duplicate));
    assert!(matches!(got[0], Accepted::Queued(_)) && got[1] == Accepted::Duplicate);
}

/// Under the backlog a message is accepted; at it, refused (conversation
/// first, then tenant), and a refused message is not kept.
async fn backlog_both_ways(b: &Backend) {
    let store = (b.open)();
    let tight = Backlog {
        conversation: 2,
        tenant: 3,
    };
    let first = queued(store.as_ref(), entry("t", "c", "1", None), tight).await;
    queued(store.as_ref(), entry("t", "c", "2", None), tight).await;
    let full = store
        .enqueue(entry("t", "c", "3", Some("s\0m3")), tight)
        .await;
    assert_eq!(full.unwrap(), Accepted::Full { conversation: true });
    queued(store.as_ref(), entry("t", "d", "1", None), tight).await;
    let full = store.enqueue(entry("t", "e", "1", None), tight).await;
    assert_eq!(
        full.unwrap(),
        Accepted::Full {
            conversation: false
        }
    );
    // Another tenant is not held back by this one's backlog.
    queued(store.as_ref(), entry("u", "e", "1", None), tight).await;
    // A refused message's id was not recorded: its retry is accepted later.
    store.commit(commit_done("c", first)).await.unwrap();
    drop(store);
    let store = (b.open)();
    queued(store.as_ref(), entry("t", "c", "3", Some("s\0m3")), tight).await;
    let full = store.enqueue(entry("t", "c", "4", None), tight).await;
    assert_eq!(full.unwrap(), Accepted::Full { conversation: true });
}

#[tokio::test]
async fn embedded_inbox_order_and_done() {
    let (_dir, b) = embedded();
    inbox_order_and_done(&b).await;
}

#[tokio::test]
async fn embedded_inbox_dedupe() {
    let (_dir, b) = embedded();
    dedupe(&b).await;
}

#[tokio::test]
async fn embedded_inbox_backlog() {
    let (_dir, b) = embedded();
    backlog_both_ways(&b).await;
}
