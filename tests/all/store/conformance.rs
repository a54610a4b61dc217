//! One conformance suite for every `Store` backend: the same checks of the
//! durable inbox, turns and the outbox, run against each backend that this
//! machine can start (the embedded store always).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use sandbot::store::{
    Accepted, Backlog, ConversationState, Delivery, EmbeddedStore, FailureBounds, InboxClaim,
    InboxEntry, KeptOutcome, Next, PostgresOptions, PostgresStore, Queued, Store, StoredFailure,
    TranscriptEntry, TurnCommit, json_len, now_ms,
};
use serde_json::json;

type Opened = Pin<Box<dyn Future<Output = Arc<dyn Store>>>>;

/// Opens a store on the backend's data: called again, it is a restart (or,
/// for PostgreSQL, another node).
pub struct Backend {
    open: Box<dyn Fn() -> Opened>,
    /// Several nodes on one database, each claiming deliveries on the way
    /// (a turn's commit, a settlement): PostgreSQL.
    shared: bool,
}

impl Backend {
    pub async fn open(&self) -> Arc<dyn Store> {
        (self.open)().await
    }

    fn local(open: Box<dyn Fn() -> Opened>) -> Self {
        Backend {
            open,
            shared: false,
        }
    }
}

pub fn embedded() -> (tempfile::TempDir, Backend) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let open = Box::new(move || {
        let store = EmbeddedStore::open(&path, Duration::from_secs(3600)).unwrap();
        Box::pin(async move { Arc::new(store) as Arc<dyn Store> }) as Opened
    });
    (dir, Backend::local(open))
}

/// The embedded store split into `parts` parts (each conversation in one).
pub fn parted(parts: usize) -> (tempfile::TempDir, Backend) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let open = Box::new(move || {
        let store =
            EmbeddedStore::open_parts(&path, Duration::from_secs(3600), None, parts).unwrap();
        assert_eq!(store.part_count(), parts);
        Box::pin(async move { Arc::new(store) as Arc<dyn Store> }) as Opened
    });
    (dir, Backend::local(open))
}

/// A fresh database on the test server; leases of `lease`.
pub async fn postgres(lease: Duration) -> Backend {
    postgres_with(lease, Duration::from_secs(3600)).await
}

/// A store on the database at `url`: a pool of 4, not waiting at start.
pub fn options(url: &str, lease: Duration, session_ttl: Duration) -> PostgresOptions {
    PostgresOptions {
        url: url.to_string(),
        pool: 4,
        lease,
        session_ttl,
        start_wait: Duration::ZERO,
        wait: PostgresOptions::WAIT,
    }
}

/// The same, sessions expiring after `ttl`.
async fn postgres_with(lease: Duration, session_ttl: Duration) -> Backend {
    let url = crate::pg::database().await;
    let open = Box::new(move || {
        let options = options(&url, lease, session_ttl);
        Box::pin(async move {
            Arc::new(PostgresStore::connect(&options).await.unwrap()) as Arc<dyn Store>
        }) as Opened
    });
    Backend { open, shared: true }
}

/// What a delivery round may start: the deliveries the store claimed on
/// the way and the queue's heads (as the delivery worker takes them).
async fn heads(store: &dyn Store) -> Vec<Delivery> {
    let mut all = store.take_claimed().deliveries;
    all.extend(store.outbox(10).await.unwrap());
    all.sort_by_key(|d| d.id);
    all
}

pub const ROOMY: Backlog = Backlog {
    conversation: 100,
    tenant: 1000,
};

pub fn entry(tenant: &str, conv: &str, text: &str, dedupe: Option<&str>) -> InboxEntry {
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
        inbox: Some(InboxClaim {
            entry: Some(inbox),
            epoch: 0,
        }),
    }
}

/// Entry `id`'s turn, committed under the conversation's lease `epoch`.
fn commit_leased(conv: &str, id: u64, epoch: u64) -> TurnCommit {
    TurnCommit {
        inbox: Some(InboxClaim {
            entry: Some(id),
            epoch,
        }),
        ..commit_done(conv, id)
    }
}

/// A delivery of bot `b` to a closed local port, with `body`.
pub fn delivery(conversation: &str, body: serde_json::Value) -> Delivery {
    Delivery {
        id: 0,
        bot: "b".into(),
        conversation: conversation.into(),
        url: "http://127.0.0.1:9/hook".into(),
        headers: Vec::new(),
        auth: None,
        body,
        attempts: 0,
        not_before_ms: 0,
    }
}

/// Runs entry `id`'s turn as a node does: under the conversation's lease.
pub async fn finish(store: &dyn Store, conv: &str, id: u64) {
    let epoch = store
        .lease("b", conv, Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    store.commit(commit_leased(conv, id, epoch)).await.unwrap();
    store.release("b", conv, epoch).await.unwrap();
}

pub async fn queued(store: &dyn Store, e: InboxEntry, backlog: Backlog) -> u64 {
    match store.enqueue(e, backlog).await.unwrap() {
        Accepted::Queued(id) => id,
        other => panic!("expected Queued, got {other:?}"),
    }
}

/// What waits, per bot (for `/metrics`): entries not yet done, deliveries
/// not yet delivered; a bot with nothing waiting is not listed.
async fn queues_per_bot(b: &Backend) {
    let store = b.open().await;
    assert!(store.queued().await.unwrap().is_empty());
    // Accepted at given times: the oldest of each bot is the one counted,
    // whichever conversation it is in.
    let at = |ms: u64, e: InboxEntry| InboxEntry {
        accepted_ms: ms,
        ..e
    };
    let later = queued(
        store.as_ref(),
        at(3_000, entry("t", "c0", "m0", None)),
        ROOMY,
    )
    .await;
    let first = queued(
        store.as_ref(),
        at(1_000, entry("t", "c1", "m1", None)),
        ROOMY,
    )
    .await;
    let second = queued(
        store.as_ref(),
        at(2_000, entry("t", "c1", "m2", None)),
        ROOMY,
    )
    .await;
    let elsewhere = InboxEntry {
        bot: "b2".into(),
        ..entry("t", "c9", "x", None)
    };
    queued(store.as_ref(), at(5_000, elsewhere), ROOMY).await;
    let replies = TurnCommit {
        inbox: None,
        outbox: vec![
            delivery("c2", json!({"n": 1})),
            delivery("c2", json!({"n": 2})),
        ],
        ..commit_done("c2", 0)
    };
    store.commit(replies).await.unwrap();
    let q = store.queued().await.unwrap();
    assert_eq!(q.len(), 2, "{q:?}");
    assert_eq!(
        q["b"],
        Queued {
            inbox: 3,
            outbox: 2,
            oldest_ms: Some(1_000),
        }
    );
    assert_eq!(
        q["b2"],
        Queued {
            inbox: 1,
            outbox: 0,
            oldest_ms: Some(5_000),
        }
    );
    // A turn done, a delivery delivered: the oldest waiting is the next one.
    finish(store.as_ref(), "c1", first).await;
    let out = heads(store.as_ref()).await;
    store.outbox_settle(&[out[0].id], &[]).await.unwrap();
    let q = store.queued().await.unwrap();
    assert_eq!(
        q["b"],
        Queued {
            inbox: 2,
            outbox: 1,
            oldest_ms: Some(2_000),
        }
    );
    finish(store.as_ref(), "c1", second).await;
    assert_eq!(store.queued().await.unwrap()["b"].oldest_ms, Some(3_000));
    // Nothing waits in the inbox: no oldest.
    finish(store.as_ref(), "c0", later).await;
    assert_eq!(store.queued().await.unwrap()["b"].oldest_ms, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_queues_per_bot() {
    queues_per_bot(&embedded().1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_queues_per_bot() {
    queues_per_bot(&postgres(Duration::from_secs(30)).await).await;
}

/// Entries come back per conversation in acceptance order, survive a
/// restart, and leave only with the commit of their turn.
async fn inbox_order_and_done(b: &Backend) {
    let store = b.open().await;
    let a1 = queued(store.as_ref(), entry("t", "a", "1", None), ROOMY).await;
    let b1 = queued(store.as_ref(), entry("t", "z", "1", None), ROOMY).await;
    let a2 = queued(store.as_ref(), entry("t", "a", "2", None), ROOMY).await;
    assert!(a1 < b1 && b1 < a2, "ids increase in acceptance order");
    drop(store);
    let store = b.open().await;
    let next = store.inbox_next("b", "a").await.unwrap().unwrap();
    assert_eq!((next.id, next.job["text"].as_str()), (a1, Some("1")));
    let mut pending = store.inbox_conversations().await.unwrap();
    pending.sort();
    assert_eq!(
        pending,
        [("b".into(), "a".into()), ("b".into(), "z".into())]
    );
    finish(store.as_ref(), "a", a1).await;
    assert_eq!(store.inbox_next("b", "a").await.unwrap().unwrap().id, a2);
    finish(store.as_ref(), "a", a2).await;
    assert!(store.inbox_next("b", "a").await.unwrap().is_none());
    store.inbox_discard("b", "z", b1).await.unwrap();
    assert!(store.inbox_conversations().await.unwrap().is_empty());
    // Ids keep increasing after everything is done and the store restarts.
    drop(store);
    let store = b.open().await;
    let later = queued(store.as_ref(), entry("t", "a", "3", None), ROOMY).await;
    assert!(later > 0);
    assert_eq!(store.inbox_next("b", "a").await.unwrap().unwrap().id, later);
}

/// The worker's step: the next entry under the lease, in order, the same
/// epoch while it holds on; `Empty` (lease given up) once none is waiting.
async fn take_next_in_order(b: &Backend) {
    let store = b.open().await;
    let ttl = Duration::from_secs(30);
    let first = queued(store.as_ref(), entry("t", "n", "1", None), ROOMY).await;
    let second = queued(store.as_ref(), entry("t", "n", "2", None), ROOMY).await;
    let mut epochs = Vec::new();
    for id in [first, second] {
        let Next::Entry {
            epoch,
            entry,
            state,
        } = store.take_next("b", "n", ttl).await.unwrap()
        else {
            panic!("entry {id} is waiting");
        };
        assert_eq!((entry.id, entry.tenant.as_str()), (id, "t"));
        // A store that reads the state with the entry reads the latest commit.
        if let Some(read) = state {
            assert_eq!(read.is_some(), id == second, "state read with entry {id}");
        }
        store.commit(commit_leased("n", id, epoch)).await.unwrap();
        epochs.push(epoch);
    }
    assert_eq!(epochs[0], epochs[1], "the lease is kept between turns");
    assert!(matches!(
        store.take_next("b", "n", ttl).await.unwrap(),
        Next::Empty
    ));
    assert!(matches!(
        store.take_next("b", "other", ttl).await.unwrap(),
        Next::Empty
    ));
}

/// A message id accepted once is a duplicate afterwards, also after its turn
/// and after a restart; other scopes are separate.
async fn dedupe(b: &Backend) {
    let store = b.open().await;
    let id = queued(store.as_ref(), entry("t", "c", "x", Some("s\0m1")), ROOMY).await;
    let again = store
        .enqueue(entry("t", "c", "x", Some("s\0m1")), ROOMY)
        .await;
    assert_eq!(again.unwrap(), Accepted::Duplicate);
    finish(store.as_ref(), "c", id).await;
    drop(store);
    let store = b.open().await;
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
    let store = b.open().await;
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
    finish(store.as_ref(), "c", first).await;
    drop(store);
    let store = b.open().await;
    queued(store.as_ref(), entry("t", "c", "3", Some("s\0m3")), tight).await;
    let full = store.enqueue(entry("t", "c", "4", None), tight).await;
    assert_eq!(full.unwrap(), Accepted::Full { conversation: true });
}

/// A turn's commit: state, transcript, postback ids and deliveries together;
/// the outbox in order, settled; listings and deletion.
async fn turns_and_outbox(b: &Backend) {
    let store = b.open().await;
    let mut state = ConversationState::new(now_ms());
    state.session = json!({"a": 1});
    state.transcript_len = 2;
    let entry = |seq| TranscriptEntry {
        seq,
        at_ms: 5,
        event: json!({"user": format!("x{seq}")}),
    };
    let delivery = |text: &str| Delivery {
        headers: vec![("x-a".into(), "1".into())],
        ..delivery("c", json!({"message": {"text": text}}))
    };
    let commit = TurnCommit {
        bot: "b".into(),
        conversation: "c".into(),
        state: state.clone(),
        transcript: vec![entry(0), entry(1)],
        postbacks: vec![(
            "pb_x".into(),
            json!({"nextDialogstateId": "n", "params": []}),
        )],
        outbox: vec![delivery("one"), delivery("two")],
        inbox: None,
    };
    store.commit(commit).await.unwrap();
    // A store that claims on the way (PostgreSQL: the turn's commit claims
    // its conversation's oldest delivery for this node): given back (as at
    // shutdown), the next node takes it at once.
    if b.shared {
        let other = b.open().await;
        assert!(
            other.outbox(10).await.unwrap().is_empty(),
            "a claim on the way is this node's"
        );
    }
    sandbot::channels::delivery::give_back(store.as_ref())
        .await
        .unwrap();
    drop(store);
    let store = b.open().await;
    assert_eq!(store.load("b", "c").await.unwrap().unwrap(), state);
    assert!(store.load("b", "other").await.unwrap().is_none());
    assert_eq!(store.transcript("b", "c", 1, 10).await.unwrap(), [entry(1)]);
    assert_eq!(
        store.postback("b", "pb_x").await.unwrap().unwrap()["nextDialogstateId"],
        "n"
    );
    assert!(
        store.postback("other", "pb_x").await.unwrap().is_none(),
        "postback ids are per bot"
    );
    // Only a conversation's oldest delivery goes at a time.
    let queued = heads(store.as_ref()).await;
    assert_eq!(queued.len().min(1), 1);
    assert_eq!(queued[0].body["message"]["text"], "one");
    assert_eq!(queued[0].headers, [("x-a".to_string(), "1".to_string())]);
    let first = queued[0].id;
    store.outbox_settle(&[], &[(first, 1, 42)]).await.unwrap();
    let again = heads(store.as_ref()).await;
    assert_eq!(
        (again[0].id, again[0].attempts, again[0].not_before_ms),
        (first, 1, 42)
    );
    store.outbox_settle(&[first], &[]).await.unwrap();
    let next = heads(store.as_ref()).await;
    assert_eq!(next[0].body["message"]["text"], "two");
    assert!(next[0].id > first);
    store.outbox_settle(&[next[0].id], &[]).await.unwrap();
    assert!(heads(store.as_ref()).await.is_empty());
    // Listings page in id order, after the cursor.
    for c in ["c2", "c1"] {
        let mut commit_c = commit_done(c, 0);
        commit_c.inbox = None;
        store.commit(commit_c).await.unwrap();
    }
    assert_eq!(
        store.conversations("b", None, 10).await.unwrap(),
        ["c", "c1", "c2"]
    );
    assert_eq!(
        store.conversations("b", Some("c"), 1).await.unwrap(),
        ["c1"]
    );
    assert!(store.delete("b", "c").await.unwrap());
    assert!(!store.delete("b", "c").await.unwrap());
    assert!(store.transcript("b", "c", 0, 10).await.unwrap().is_empty());
    store.ping().await.unwrap();
}

/// A given-up delivery leaves the queue (the next of its conversation may
/// go) for the dead letters, listed per bot and re-queued in its place.
async fn dead_letters(b: &Backend) {
    let store = b.open().await;
    let delivery = |text: &str| delivery("c", json!({"text": text}));
    let mut c = commit_done("c", 0);
    c.inbox = None;
    c.outbox = vec![delivery("one"), delivery("two")];
    store.commit(c).await.unwrap();
    let head = heads(store.as_ref()).await[0].clone();
    store
        .outbox_dead(&[(head.id, 9, "answered 500".into())])
        .await
        .unwrap();
    let next = heads(store.as_ref()).await;
    assert_eq!(next[0].body["text"], "two", "the next one may go");
    let dead = store.dead_letters(&["b".into()], 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].delivery.id, dead[0].delivery.attempts),
        (head.id, 9)
    );
    assert_eq!(dead[0].reason, "answered 500");
    assert!(
        store
            .dead_letters(&["other".into()], 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !store.requeue(&["other".into()], head.id).await.unwrap(),
        "another tenant's bots"
    );
    assert!(store.requeue(&["b".into()], head.id).await.unwrap());
    assert!(
        !store.requeue(&["b".into()], head.id).await.unwrap(),
        "once"
    );
    let back = heads(store.as_ref()).await;
    assert_eq!(
        (back[0].id, back[0].attempts),
        (head.id, 0),
        "back in its place"
    );
    assert!(
        store
            .dead_letters(&["b".into()], 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// *Silence detected* timers: found when due, not before; gone once a
/// commit clears them; they survive reopening the store.
async fn silence_timers(b: &Backend) {
    let store = b.open().await;
    let commit = |conv: &str, due: Option<u64>| {
        let mut state = ConversationState::new(now_ms());
        state.silence_due_ms = due;
        TurnCommit {
            bot: "b".into(),
            conversation: conv.into(),
            state,
            transcript: Vec::new(),
            postbacks: Vec::new(),
            outbox: Vec::new(),
            inbox: None,
        }
    };
    store.commit(commit("early", Some(1_000))).await.unwrap();
    store.commit(commit("late", Some(5_000))).await.unwrap();
    store.commit(commit("none", None)).await.unwrap();
    drop(store);
    let store = b.open().await;
    let due = |v: Vec<(String, String, u64)>| v.into_iter().map(|d| (d.1, d.2)).collect::<Vec<_>>();
    assert_eq!(due(store.silence_due(999, 10).await.unwrap()), []);
    assert_eq!(
        due(store.silence_due(1_000, 10).await.unwrap()),
        [("early".to_string(), 1_000)]
    );
    assert_eq!(due(store.silence_due(9_000, 10).await.unwrap()).len(), 2);
    assert_eq!(
        due(store.silence_due(9_000, 1).await.unwrap()).len(),
        1,
        "limit"
    );
    store.commit(commit("early", None)).await.unwrap();
    assert_eq!(
        due(store.silence_due(9_000, 10).await.unwrap()),
        [("late".to_string(), 5_000)]
    );
}

/// Failures kept for replay: per tenant, by deployment, newest first, found
/// by id after reopening (another node), and bounded by count, bytes and age.
async fn failures_kept_for_replay(b: &Backend) {
    let store = b.open().await;
    let wide = FailureBounds {
        keep: 10,
        max_bytes: 1 << 20,
        max_age_ms: 3_600_000,
    };
    let failure = |tenant: &str, id: &str, bot: &str, at: u64, size: usize| StoredFailure {
        tenant: tenant.into(),
        id: id.into(),
        bot: bot.into(),
        at_ms: at,
        record: json!({"id": id, "bot": bot, "atMs": at, "pad": "x".repeat(size)}),
    };
    let t0 = now_ms();
    for (id, bot, at) in [
        ("f1", "a", t0),
        ("f2", "a@DRAFT", t0 + 1),
        ("f3", "b", t0 + 2),
        ("f4", "a", t0 + 3),
    ] {
        store
            .put_failure(failure("t", id, bot, at, 10), wide)
            .await
            .unwrap();
    }
    store
        .put_failure(failure("u", "g1", "a", t0, 10), wide)
        .await
        .unwrap();
    drop(store);
    let store = b.open().await;
    let ids = |v: Vec<serde_json::Value>| {
        v.iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let a = ["a".to_string(), "a@DRAFT".to_string()];
    assert_eq!(
        ids(store.failures("t", &a, 0, 10).await.unwrap()),
        ["f4", "f2", "f1"]
    );
    assert_eq!(
        ids(store.failures("t", &a, 0, 2).await.unwrap()),
        ["f4", "f2"],
        "limit"
    );
    assert_eq!(
        ids(store.failures("t", &a, t0 + 1, 10).await.unwrap()),
        ["f4", "f2"],
        "since"
    );
    assert_eq!(ids(store.failures("u", &a, 0, 10).await.unwrap()), ["g1"]);
    assert_eq!(store.failure("t", "f3").await.unwrap().unwrap()["bot"], "b");
    assert_eq!(
        store.failure("u", "f3").await.unwrap(),
        None,
        "another tenant's"
    );
    assert_eq!(store.failure("t", "nope").await.unwrap(), None);
    // Past the count: the oldest go.
    let two = FailureBounds { keep: 2, ..wide };
    store
        .put_failure(failure("t", "f5", "a", t0 + 4, 10), two)
        .await
        .unwrap();
    let all = ["a".to_string(), "a@DRAFT".to_string(), "b".to_string()];
    assert_eq!(
        ids(store.failures("t", &all, 0, 10).await.unwrap()),
        ["f5", "f4"]
    );
    // Past the bytes: only what fits, newest first.
    let small = FailureBounds {
        max_bytes: 1_100,
        ..wide
    };
    store
        .put_failure(failure("t", "f6", "a", t0 + 5, 1_000), small)
        .await
        .unwrap();
    assert_eq!(ids(store.failures("t", &all, 0, 10).await.unwrap()), ["f6"]);
    // Past the age.
    let short = FailureBounds {
        max_age_ms: 10,
        ..wide
    };
    store
        .put_failure(failure("t", "f7", "a", t0 + 100, 10), short)
        .await
        .unwrap();
    assert_eq!(ids(store.failures("t", &all, 0, 10).await.unwrap()), ["f7"]);
    // The other tenant's were never touched.
    assert_eq!(ids(store.failures("u", &a, 0, 10).await.unwrap()), ["g1"]);
}

/// What a deployment's conversations hold: the JSON of each state and
/// transcript entry, kept up to date by commits and deletes (storage quotas),
/// per deployment, across a restart.
async fn stored_bytes(b: &Backend) {
    let store = b.open().await;
    let bots = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    assert_eq!(store.stored_bytes(&bots(&["b"])).await.unwrap(), 0);
    let mut state = ConversationState::new(now_ms());
    let line = |seq: u64, text: &str| TranscriptEntry {
        seq,
        at_ms: 7,
        event: json!({"user": text}),
    };
    let mut commit = commit_done("c", 0);
    commit.inbox = None;
    commit.state = state.clone();
    commit.transcript = vec![line(0, "hello"), line(1, &"x".repeat(1000))];
    store.commit(commit.clone()).await.unwrap();
    let lines = json_len(&commit.transcript[0]) + json_len(&commit.transcript[1]);
    let first = json_len(&state) + lines;
    assert_eq!(store.stored_bytes(&bots(&["b"])).await.unwrap(), first);
    // The next turn replaces the state and adds to the transcript.
    state.session = json!({"big": "y".repeat(500)});
    state.transcript_len = 2;
    commit.state = state.clone();
    commit.transcript = vec![line(2, "again")];
    store.commit(commit.clone()).await.unwrap();
    let second = lines + json_len(&state) + json_len(&commit.transcript[0]);
    let other = {
        let mut c = commit_done("d", 0);
        c.inbox = None;
        c.bot = "b2".into();
        c
    };
    store.commit(other.clone()).await.unwrap();
    drop(store);
    let store = b.open().await;
    let held = store.stored_bytes(&bots(&["b"])).await.unwrap();
    assert_eq!(held, second);
    assert_eq!(
        store
            .stored_bytes(&bots(&["b", "b2", "nobody"]))
            .await
            .unwrap(),
        held + json_len(&other.state)
    );
    assert!(store.delete("b", "c").await.unwrap());
    assert_eq!(store.stored_bytes(&bots(&["b"])).await.unwrap(), 0);
    assert_eq!(
        store.stored_bytes(&bots(&["b2"])).await.unwrap(),
        json_len(&other.state)
    );
}

#[tokio::test]
async fn embedded_stored_bytes() {
    let (_dir, b) = embedded();
    stored_bytes(&b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stored_bytes() {
    stored_bytes(&postgres(Duration::from_secs(30)).await).await;
}

#[tokio::test]
async fn embedded_failures_kept_for_replay() {
    let (_dir, b) = embedded();
    failures_kept_for_replay(&b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_failures_kept_for_replay() {
    failures_kept_for_replay(&postgres(Duration::from_secs(30)).await).await;
}

#[tokio::test]
async fn embedded_silence_timers() {
    let (_dir, b) = embedded();
    silence_timers(&b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_silence_timers() {
    silence_timers(&postgres(Duration::from_secs(30)).await).await;
}

#[tokio::test]
async fn embedded_dead_letters() {
    let (_dir, b) = embedded();
    dead_letters(&b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_dead_letters() {
    dead_letters(&postgres(Duration::from_secs(30)).await).await;
}

#[tokio::test]
async fn embedded_turns_and_outbox() {
    let (_dir, b) = embedded();
    turns_and_outbox(&b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_turns_and_outbox() {
    turns_and_outbox(&postgres(Duration::from_secs(30)).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_inbox_order_and_done() {
    let b = postgres(Duration::from_secs(30)).await;
    inbox_order_and_done(&b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_take_next_in_order() {
    take_next_in_order(&postgres(Duration::from_secs(30)).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_take_next_in_order() {
    let (_dir, b) = embedded();
    take_next_in_order(&b).await;
}

/// Two nodes: the one that holds the lease gets the entries (also those
/// accepted by the other), the other is `Busy`; once it finds nothing
/// waiting the lease is free for the other at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_take_next_between_nodes() {
    let ttl = Duration::from_secs(30);
    let b = postgres(ttl).await;
    let (one, two) = (b.open().await, b.open().await);
    let id = queued(two.as_ref(), entry("t", "c", "1", None), ROOMY).await;
    let Next::Entry {
        epoch,
        entry: taken,
        ..
    } = one.take_next("b", "c", ttl).await.unwrap()
    else {
        panic!("one takes the conversation");
    };
    assert_eq!(taken.id, id);
    assert!(matches!(
        two.take_next("b", "c", ttl).await.unwrap(),
        Next::Busy
    ));
    let c = commit_leased("c", id, epoch);
    let later = queued(two.as_ref(), entry("t", "c", "2", None), ROOMY).await;
    one.commit(c).await.unwrap();
    let Next::Entry {
        entry: taken,
        epoch: same,
        ..
    } = one.take_next("b", "c", ttl).await.unwrap()
    else {
        panic!("accepted by two, run by one while it holds the lease");
    };
    assert_eq!((taken.id, same), (later, epoch));
    two.inbox_discard("b", "c", later).await.unwrap();
    assert!(matches!(
        one.take_next("b", "c", ttl).await.unwrap(),
        Next::Empty
    ));
    let Some(e2) = two.lease("b", "c", ttl).await.unwrap() else {
        panic!("given up: free for two at once");
    };
    assert!(e2 > epoch, "a new holder, a new epoch");
}

/// Accepting on a node that runs the worker next: the message's turn then
/// starts from the accept's step. Wherever the store took the lease with the
/// accept, the worker's `take_next` finds the entry under it and its commit
/// applies; a refused or duplicate message leaves the lease free.
async fn enqueue_and_take_runs_the_entry(b: &Backend) {
    let store = b.open().await;
    let ttl = Duration::from_secs(30);
    let accepted = store
        .enqueue_and_take(entry("t", "k", "1", Some("s\0k1")), ROOMY, ttl)
        .await
        .unwrap();
    let Accepted::Queued(id) = accepted else {
        panic!("expected Queued, got {accepted:?}");
    };
    let Next::Entry {
        epoch,
        entry: taken,
        state,
    } = store.take_next("b", "k", ttl).await.unwrap()
    else {
        panic!("the accepted entry is waiting");
    };
    assert_eq!(taken.id, id);
    if let Some(read) = state {
        assert!(read.is_none(), "no session yet");
    }
    store.commit(commit_leased("k", id, epoch)).await.unwrap();
    assert!(matches!(
        store.take_next("b", "k", ttl).await.unwrap(),
        Next::Empty
    ));
    // A retry of the same message id: nothing queued, nothing taken.
    let again = store
        .enqueue_and_take(entry("t", "k", "1", Some("s\0k1")), ROOMY, ttl)
        .await
        .unwrap();
    assert_eq!(again, Accepted::Duplicate);
    assert!(matches!(
        store.take_next("b", "k", ttl).await.unwrap(),
        Next::Empty
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_enqueue_and_take_runs_the_entry() {
    enqueue_and_take_runs_the_entry(&postgres(Duration::from_secs(30)).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_enqueue_and_take_runs_the_entry() {
    let (_dir, b) = embedded();
    enqueue_and_take_runs_the_entry(&b).await;
}

/// PostgreSQL takes an idle conversation's lease with the accept: another
/// node finds it `Busy`; a conversation another node holds is left to that
/// node (the accept takes nothing, the holder runs the entry); a message
/// refused for the backlog or seen before leaves the lease free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_accept_takes_only_a_free_lease() {
    let ttl = Duration::from_secs(30);
    let b = postgres(ttl).await;
    let (one, two) = (b.open().await, b.open().await);
    let taken = |store: &Arc<dyn Store>, conv: &'static str| {
        let store = store.clone();
        async move { store.take_next("b", conv, ttl).await.unwrap() }
    };
    // Idle: one takes it with the accept.
    let Accepted::Queued(id) = one
        .enqueue_and_take(entry("t", "c", "1", None), ROOMY, ttl)
        .await
        .unwrap()
    else {
        panic!("queued");
    };
    assert!(matches!(taken(&two, "c").await, Next::Busy));
    let Next::Entry {
        epoch, entry: got, ..
    } = taken(&one, "c").await
    else {
        panic!("one runs what it accepted");
    };
    assert_eq!(got.id, id);
    // Held by one: an accept on two takes nothing; one runs it after its turn.
    let Accepted::Queued(later) = two
        .enqueue_and_take(entry("t", "c", "2", None), ROOMY, ttl)
        .await
        .unwrap()
    else {
        panic!("queued");
    };
    assert!(matches!(taken(&two, "c").await, Next::Busy));
    one.commit(commit_leased("c", id, epoch)).await.unwrap();
    let Next::Entry {
        entry: got,
        epoch: same,
        ..
    } = taken(&one, "c").await
    else {
        panic!("one holds on while entries wait");
    };
    assert_eq!((got.id, same), (later, epoch));
    one.inbox_discard("b", "c", later).await.unwrap();
    assert!(matches!(taken(&one, "c").await, Next::Empty));
    // Refused for the backlog: the lease stays free for any node.
    let tight = Backlog {
        conversation: 1,
        tenant: 100,
    };
    queued(two.as_ref(), entry("t", "d", "1", None), tight).await;
    let full = one
        .enqueue_and_take(entry("t", "d", "2", None), tight, ttl)
        .await
        .unwrap();
    assert_eq!(full, Accepted::Full { conversation: true });
    assert!(two.lease("b", "d", ttl).await.unwrap().is_some());
}

/// A commit with nothing else waiting gives the lease up in the same
/// transaction (`sandbot_commit_next`): another node may take the
/// conversation at once, and the worker's next step needs no round trip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_commit_with_nothing_waiting_gives_the_lease_up() {
    let ttl = Duration::from_secs(30);
    let b = postgres(ttl).await;
    let (one, two) = (b.open().await, b.open().await);
    let id = queued(two.as_ref(), entry("t", "c", "1", None), ROOMY).await;
    let Next::Entry { epoch, .. } = one.take_next("b", "c", ttl).await.unwrap() else {
        panic!("one takes the conversation");
    };
    one.commit(commit_leased("c", id, epoch)).await.unwrap();
    let Some(e2) = two.lease("b", "c", ttl).await.unwrap() else {
        panic!("given up by the commit: free for two at once");
    };
    assert!(e2 > epoch);
    assert!(matches!(
        one.take_next("b", "c", ttl).await.unwrap(),
        Next::Empty
    ));
    assert!(matches!(
        one.take_next("b", "c", ttl).await.unwrap(),
        Next::Busy
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_inbox_dedupe() {
    dedupe(&postgres(Duration::from_secs(30)).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_inbox_backlog() {
    backlog_both_ways(&postgres(Duration::from_secs(30)).await).await;
}

/// What every node looks for each second: conversations with entries
/// waiting that no node holds — never taken, or the lease ran out (its node
/// died) — and not those whose lease is held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_conversations_nobody_holds_are_found_once_the_lease_runs_out() {
    let lease = Duration::from_millis(1500);
    let b = postgres(lease).await;
    let (one, two) = (b.open().await, b.open().await);
    let unheld = async |store: &dyn Store| {
        let mut found = store.inbox_unheld().await.unwrap();
        found.sort();
        found
    };
    let (c, d) = (
        ("b".to_string(), "c".to_string()),
        ("b".to_string(), "d".to_string()),
    );
    assert!(unheld(two.as_ref()).await.is_empty(), "nothing waits");
    queued(one.as_ref(), entry("t", "c", "1", None), ROOMY).await;
    queued(one.as_ref(), entry("t", "d", "1", None), ROOMY).await;
    assert_eq!(unheld(two.as_ref()).await, [c.clone(), d.clone()]);
    one.lease("b", "c", lease).await.unwrap().unwrap();
    assert_eq!(
        unheld(two.as_ref()).await,
        std::slice::from_ref(&d),
        "c is one's"
    );
    // One dies: its lease runs out.
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    assert_eq!(unheld(two.as_ref()).await, [c.clone(), d.clone()]);
    two.lease("b", "c", lease).await.unwrap().unwrap();
    assert_eq!(unheld(one.as_ref()).await, [d], "c is two's now");
}

/// Two nodes on one database: one lease per conversation at a time; a node
/// whose lease ran out commits nothing, whether or not another took it; a
/// delivery claimed by one node is not handed to the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_leases_fence_a_node_that_lost_its_lease() {
    // Long enough that the steps below finish within it on a loaded machine.
    let lease = Duration::from_millis(1500);
    let b = postgres(lease).await;
    let (one, two) = (b.open().await, b.open().await);
    let id = queued(one.as_ref(), entry("t", "c", "1", None), ROOMY).await;
    let e1 = one.lease("b", "c", lease).await.unwrap().unwrap();
    assert_eq!(
        two.lease("b", "c", lease).await.unwrap(),
        None,
        "held by one"
    );
    assert_eq!(
        one.lease("b", "c", lease).await.unwrap(),
        Some(e1),
        "renewed"
    );
    // One's lease runs out, nobody takes it: one's late commit applies nothing.
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    let mut late = commit_done("c", id);
    late.inbox = Some(InboxClaim {
        entry: Some(id),
        epoch: e1,
    });
    let err = one.commit(late.clone()).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("lease on the conversation ran out"),
        "{err}"
    );
    // Two takes the conversation (a new epoch); one still cannot commit.
    let e2 = two.lease("b", "c", lease).await.unwrap().unwrap();
    assert!(e2 > e1);
    assert!(one.commit(late).await.is_err());
    assert!(
        one.load("b", "c").await.unwrap().is_none(),
        "nothing of it applied"
    );
    assert_eq!(one.inbox_next("b", "c").await.unwrap().unwrap().id, id);
    let mut mine = commit_done("c", id);
    mine.inbox = Some(InboxClaim {
        entry: Some(id),
        epoch: e2,
    });
    two.commit(mine.clone()).await.unwrap();
    assert!(two.inbox_next("b", "c").await.unwrap().is_none());
    // Done once: the same entry cannot be committed again.
    assert!(two.commit(mine).await.is_err());
    two.release("b", "c", e2).await.unwrap();
    assert!(
        one.lease("b", "c", lease).await.unwrap().is_some(),
        "released: free at once"
    );

    // Deliveries: claimed by one node, not handed to the other until the claim runs out.
    let mut with_delivery = commit_done("d", 0);
    with_delivery.inbox = None;
    with_delivery.outbox = vec![delivery("d", json!({}))];
    one.commit(with_delivery).await.unwrap();
    assert_eq!(heads(one.as_ref()).await.len(), 1, "claimed by its commit");
    assert!(two.outbox(10).await.unwrap().is_empty(), "claimed by one");
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    let taken = two.outbox(10).await.unwrap();
    assert_eq!(taken.len(), 1, "taken over after the claim ran out");
    // One's late settlement of a delivery it no longer holds changes nothing.
    one.outbox_settle(&[taken[0].id], &[]).await.unwrap();
    two.outbox_settle(&[], &[]).await.unwrap();
    assert!(one.outbox(10).await.unwrap().is_empty(), "still two's");
    // Two gives it back (due at once): still queued, one takes it.
    two.outbox_settle(&[], &[(taken[0].id, 0, 0)])
        .await
        .unwrap();
    assert_eq!(one.outbox(10).await.unwrap()[0].id, taken[0].id);
    one.outbox_settle(&[taken[0].id], &[]).await.unwrap();
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    assert!(two.outbox(10).await.unwrap().is_empty(), "delivered once");
}

/// On PostgreSQL a delivery costs no claim of its own in the steady state:
/// a turn's commit claims the delivery it queued when its conversation has
/// none older; a settlement claims the conversation's next one. What is not
/// claimed on the way (an older delivery in flight or waiting for its
/// retry) makes the node look at the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_deliveries_are_claimed_on_the_way() {
    let b = postgres(Duration::from_secs(30)).await;
    let (one, two) = (b.open().await, b.open().await);
    let started = one.take_claimed();
    assert!(
        started.look && started.deliveries.is_empty(),
        "a new node looks first"
    );
    let turn = |texts: &[&str]| {
        let mut c = commit_done("c", 0);
        c.inbox = None;
        c.outbox = texts
            .iter()
            .map(|t| delivery("c", json!({"text": t})))
            .collect();
        c
    };
    one.commit(turn(&["one", "two"])).await.unwrap();
    let claimed = one.take_claimed();
    assert!(!claimed.look, "nothing left unclaimed");
    assert_eq!(
        claimed.deliveries.len(),
        1,
        "only the conversation's oldest"
    );
    let first = &claimed.deliveries[0];
    assert_eq!(first.body["text"], "one");
    assert!(two.outbox(10).await.unwrap().is_empty(), "one's claim");
    // A later turn while the first is in flight: not claimed, look.
    one.commit(turn(&["three"])).await.unwrap();
    let later = one.take_claimed();
    assert!(later.look && later.deliveries.is_empty());
    // Delivered: the settlement claims the next one ("two"), not "three".
    one.outbox_settle(&[first.id], &[]).await.unwrap();
    let next = one.take_claimed();
    assert_eq!(next.deliveries.len(), 1);
    assert_eq!(next.deliveries[0].body["text"], "two");
    assert!(two.outbox(10).await.unwrap().is_empty(), "one's claim");
    // Failed: rescheduled, its claim let go; nothing else is claimed.
    let (id, due) = (next.deliveries[0].id, now_ms() + 60_000);
    one.outbox_settle(&[], &[(id, 1, due)]).await.unwrap();
    assert!(one.take_claimed().deliveries.is_empty());
    assert!(two.outbox(10).await.unwrap().is_empty(), "not due yet");
    // Due now and given back: any node may take it, and only the head.
    one.outbox_settle(&[], &[(id, 1, 0)]).await.unwrap();
    let taken = two.outbox(10).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!((taken[0].id, taken[0].attempts), (id, 1));
    // Two delivers it; its settlement claims "three" for two. Two stops
    // before its worker takes it: given back, the other node takes it.
    two.outbox_settle(&[id], &[]).await.unwrap();
    assert!(one.outbox(10).await.unwrap().is_empty(), "two's claim");
    sandbot::channels::delivery::give_back(two.as_ref())
        .await
        .unwrap();
    assert!(two.take_claimed().deliveries.is_empty(), "handed out once");
    let back = one.outbox(10).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].body["text"], "three");
}

/// With several nodes a delivery that needs a token source (a Sinch
/// channel) is claimed only by a node that has it, until it has waited
/// long enough for one (then by any node, which fails it and retries it as
/// a lone node would); deliveries that need none go to any node. A lone
/// node takes them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_node_leaves_deliveries_it_has_no_token_for() {
    let b = postgres(Duration::from_secs(30)).await;
    let (one, two) = (b.open().await, b.open().await);
    let sinch = Delivery {
        auth: Some("sinch-1".into()),
        ..delivery("s", json!({"text": "by sinch"}))
    };
    for (conv, d) in [("s", sinch), ("w", delivery("w", json!({"text": "plain"})))] {
        let mut c = commit_done(conv, 0);
        c.inbox = None;
        c.outbox = vec![d];
        one.commit(c).await.unwrap();
    }
    // Its commits claimed both for one; it stops and gives them back.
    sandbot::channels::delivery::give_back(one.as_ref())
        .await
        .unwrap();
    let waited = now_ms() - 15 * 60 * 1000;
    // What `store` takes with `sources`, given back at once (due now).
    let takes = |store: Arc<dyn Store>, sources: &'static [&'static str], before: u64| async move {
        let sources: Vec<String> = sources.iter().map(|s| s.to_string()).collect();
        let taken = store.outbox_for(10, &sources, before).await.unwrap();
        let back: Vec<_> = taken.iter().map(|d| (d.id, 0, 0)).collect();
        store.outbox_settle(&[], &back).await.unwrap();
        taken
            .iter()
            .map(|d| d.body["text"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        takes(two.clone(), &[], waited).await,
        ["plain"],
        "no channel"
    );
    assert_eq!(
        takes(two.clone(), &["sinch-2"], waited).await,
        ["plain"],
        "another channel only"
    );
    assert_eq!(
        takes(one.clone(), &["sinch-1"], waited).await,
        ["by sinch", "plain"],
        "a node with it"
    );
    // Waited past the time given: any node takes it.
    assert_eq!(
        takes(two.clone(), &[], now_ms() + 1).await,
        ["by sinch", "plain"],
        "waited"
    );
}

#[tokio::test]
async fn embedded_a_lone_node_takes_every_delivery() {
    let (_dir, b) = embedded();
    let store = b.open().await;
    let mut c = commit_done("s", 0);
    c.inbox = None;
    c.outbox = vec![Delivery {
        auth: Some("sinch-1".into()),
        ..delivery("s", json!({}))
    }];
    store.commit(c).await.unwrap();
    let taken = store.outbox_for(10, &[], 0).await.unwrap();
    assert_eq!(taken.len(), 1, "no other node to leave it for");
}

/// A commit inserts its first delivery claimed only when the conversation
/// has none older; with an older one due and nobody's (its retry came due,
/// or its node gave it back), the commit claims that one, the head, and
/// leaves its own for the settlement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_commit_claims_the_older_head_not_its_own() {
    let b = postgres(Duration::from_secs(30)).await;
    let one = b.open().await;
    one.take_claimed();
    let turn = |text: &str| {
        let mut c = commit_done("c", 0);
        c.inbox = None;
        c.outbox = vec![delivery("c", json!({ "text": text }))];
        c
    };
    one.commit(turn("old")).await.unwrap();
    let old = one.take_claimed().deliveries.remove(0);
    assert_eq!(old.body["text"], "old", "inserted claimed: none older");
    // Failed once, due again at once: its claim let go.
    one.outbox_settle(&[], &[(old.id, 1, 0)]).await.unwrap();
    assert!(one.take_claimed().deliveries.is_empty());
    one.commit(turn("new")).await.unwrap();
    let claimed = one.take_claimed();
    assert_eq!(claimed.deliveries.len(), 1, "{:?}", claimed.deliveries);
    assert_eq!(
        (claimed.deliveries[0].id, claimed.deliveries[0].attempts),
        (old.id, 1),
        "the head, not the commit's own"
    );
    assert!(!claimed.look, "the new one waits for the head's settlement");
    one.outbox_settle(&[old.id], &[]).await.unwrap();
    let next = one.take_claimed();
    assert_eq!(next.deliveries[0].body["text"], "new");
}

/// Nodes are upgraded one at a time: once a new node has applied the
/// migrations, a node of the version before still commits through the
/// function it calls (`sandbot_commit_next` with 18 parameters, migration
/// 0011), and a new node sees that turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_node_of_the_version_before_still_commits() {
    use sqlx::Connection;
    let url = crate::pg::database().await;
    let options = options(&url, Duration::from_secs(30), Duration::from_secs(3600));
    let new = PostgresStore::connect(&options).await.unwrap();
    let mut old = sqlx::PgConnection::connect(&url).await.unwrap();
    let state = ConversationState::new(now_ms());
    let outcome: i32 = sqlx::query_scalar(
        "SELECT o_outcome FROM sandbot_commit_next($1, $2, FALSE, 'old-node', 0, NULL, $3, $4, $3,
             '{}'::bigint[], '{}'::bigint[], '{}'::jsonb[], '{}'::text[], '{}'::jsonb[],
             $5, 2, 0, $3)",
    )
    .bind("b")
    .bind("c")
    .bind(now_ms() as i64)
    .bind(sqlx::types::Json(&state))
    .bind(vec![sqlx::types::Json(delivery("c", json!({})))])
    .fetch_one(&mut old)
    .await
    .unwrap();
    assert_eq!(outcome, 0, "applied");
    assert!(new.load("b", "c").await.unwrap().is_some());
    assert_eq!(
        new.outbox(10).await.unwrap().len(),
        1,
        "queued, not claimed"
    );
}

/// A node of the version before starts on a database that a newer version
/// migrated further (a deploy rolled back, or an old node restarting
/// mid-deploy; here a migration it does not know, recorded as applied) and
/// works. Before, it refused to start: "migration 9999 was previously
/// applied but is missing in the resolved migrations".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_node_of_the_version_before_starts_on_a_newer_database() {
    use sqlx::Connection;
    let url = crate::pg::database().await;
    let options = options(&url, Duration::from_secs(30), Duration::from_secs(3600));
    drop(PostgresStore::connect(&options).await.unwrap());
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (9999, 'from a newer version', TRUE, '\\x00', 1)",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    let store = PostgresStore::connect(&options).await.unwrap();
    queued(&store, entry("t", "c", "m1", None), ROOMY).await;
    assert_eq!(store.inbox_conversations().await.unwrap().len(), 1);
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

/// One process per embedded store file: a second open says why, and what to do.
#[test]
fn a_second_process_on_the_same_data_folder_is_told_why() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sandbot.redb");
    let _first = EmbeddedStore::open(&path, Duration::from_secs(60)).unwrap();
    let Err(e) = EmbeddedStore::open(&path, Duration::from_secs(60)) else {
        panic!("opened twice");
    };
    let message = e.to_string();
    assert!(
        message.contains("is in use by another process (another `sandbot serve` or `sandbot chat` on the same data folder)")
            && message.contains("run several nodes on PostgreSQL"),
        "{message}"
    );
}

/// The whole suite on an embedded store of three parts: conversations spread
/// over the parts, listings merged from all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parted_embedded_store_passes_the_suite() {
    queues_per_bot(&parted(3).1).await;
    inbox_order_and_done(&parted(3).1).await;
    take_next_in_order(&parted(3).1).await;
    dedupe(&parted(3).1).await;
    backlog_both_ways(&parted(3).1).await;
    turns_and_outbox(&parted(3).1).await;
    dead_letters(&parted(3).1).await;
    silence_timers(&parted(3).1).await;
    failures_kept_for_replay(&parted(3).1).await;
    stored_bytes(&parted(3).1).await;
    enqueue_and_take_runs_the_entry(&parted(3).1).await;
}

/// A tenant's backlog counts its entries in every part (at the limit: the
/// next is refused whichever part it lands in; also after a restart), and
/// each conversation's deliveries keep their order and their part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_share_the_tenant_backlog_and_keep_deliveries_apart() {
    let (dir, b) = parted(4);
    let tight = Backlog {
        conversation: 10,
        tenant: 6,
    };
    let store = b.open().await;
    let convs: Vec<String> = (0..8).map(|i| format!("u{i}")).collect();
    let mut ids = Vec::new();
    for conv in &convs[..6] {
        ids.push(queued(store.as_ref(), entry("t", conv, "hi", None), tight).await);
    }
    for conv in &convs[6..] {
        let full = store.enqueue(entry("t", conv, "hi", None), tight).await;
        assert_eq!(
            full.unwrap(),
            Accepted::Full {
                conversation: false
            }
        );
    }
    for i in 1..4 {
        assert!(dir.path().join(format!("s.part{i}.redb")).exists());
    }
    drop(store);
    let store = b.open().await;
    let full = store
        .enqueue(entry("t", &convs[7], "hi", None), tight)
        .await;
    assert_eq!(
        full.unwrap(),
        Accepted::Full {
            conversation: false
        }
    );
    finish(store.as_ref(), &convs[0], ids[0]).await;
    queued(store.as_ref(), entry("t", &convs[7], "hi", None), tight).await;

    // Two deliveries for each of eight conversations: the first of each is
    // offered, settling it offers the second, ids never repeat.
    for conv in &convs {
        let mut c = commit_done(conv, 0);
        c.inbox = None;
        c.outbox = ["one", "two"]
            .map(|t| delivery(conv, json!({"text": t})))
            .to_vec();
        store.commit(c).await.unwrap();
    }
    let first = store.outbox(100).await.unwrap();
    assert_eq!(first.len(), 8);
    assert!(first.iter().all(|d| d.body["text"] == "one"));
    let done: Vec<u64> = first.iter().map(|d| d.id).collect();
    store.outbox_settle(&done, &[]).await.unwrap();
    let second = store.outbox(100).await.unwrap();
    assert_eq!(second.len(), 8);
    assert!(second.iter().all(|d| d.body["text"] == "two"));
    let mut all: Vec<u64> = done
        .iter()
        .chain(second.iter().map(|d| &d.id))
        .copied()
        .collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 16, "ids are unique across parts");
    assert_eq!(store.outbox(3).await.unwrap().len(), 3, "the limit holds");
}

/// A store keeps the part count it was created with: opened without one it
/// has it, asked for another it refuses with the reason; a store from
/// before parts is a one-part store.
#[test]
fn a_store_keeps_its_part_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sandbot.redb");
    let ttl = Duration::from_secs(60);
    drop(EmbeddedStore::open_parts(&path, ttl, Some(3), 1).unwrap());
    assert_eq!(
        EmbeddedStore::open_parts(&path, ttl, None, 8)
            .unwrap()
            .part_count(),
        3
    );
    assert_eq!(
        EmbeddedStore::open_parts(&path, ttl, Some(3), 1)
            .unwrap()
            .part_count(),
        3
    );
    let Err(e) = EmbeddedStore::open_parts(&path, ttl, Some(2), 1) else {
        panic!("opened with another count");
    };
    assert_eq!(
        e.to_string(),
        format!(
            "store: {} was created with 3 part(s) and `store.embedded.parts` asks for 2: a data folder keeps the count it was created with — remove the setting (or set it to 3), or copy the stopped store into a new data folder with `sandbot store copy --data OLD --to NEW --parts 2` and point `data` at it",
            path.display()
        )
    );
    let Err(e) = EmbeddedStore::open_parts(&dir.path().join("new.redb"), ttl, Some(65), 1) else {
        panic!("65 parts");
    };
    assert_eq!(
        e.to_string(),
        "store: store.embedded.parts must be between 1 and 64 (got 65)"
    );
    // A file from before parts (its tables, no count recorded) has one part.
    let old = dir.path().join("old.redb");
    {
        let db = redb::Database::create(&old).unwrap();
        let tx = db.begin_write().unwrap();
        let conversations: redb::TableDefinition<&str, &[u8]> =
            redb::TableDefinition::new("conversations");
        tx.open_table(conversations).unwrap();
        tx.commit().unwrap();
    }
    assert_eq!(
        EmbeddedStore::open_parts(&old, ttl, None, 4)
            .unwrap()
            .part_count(),
        1
    );
    assert!(!dir.path().join("old.part1.redb").exists());
    // A creation cut short before its count was recorded (no tables yet)
    // is a new store.
    let cut = dir.path().join("cut.redb");
    drop(redb::Database::create(&cut).unwrap());
    assert_eq!(
        EmbeddedStore::open_parts(&cut, ttl, None, 4)
            .unwrap()
            .part_count(),
        4
    );
    // A part's file gone: refused, not silently made anew and empty.
    std::fs::remove_file(dir.path().join("sandbot.part2.redb")).unwrap();
    let Err(e) = EmbeddedStore::open_parts(&path, ttl, None, 1) else {
        panic!("opened without a part");
    };
    assert_eq!(
        e.to_string(),
        format!(
            "store: {} is missing: the store at {} has 3 parts and each holds its own conversations (restore the file from a backup)",
            dir.path().join("sandbot.part2.redb").display(),
            path.display()
        )
    );
    assert!(!dir.path().join("sandbot.part2.redb").exists());
}

/// A batch that fails gives back the backlog places its entries took: the
/// tenant's next message (in another part) is accepted, and the one after
/// it is refused at the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_gives_its_backlog_places_back() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        EmbeddedStore::open_parts(&dir.path().join("s.redb"), Duration::from_secs(60), None, 2)
            .unwrap();
    let one = Backlog {
        conversation: 5,
        tenant: 1,
    };
    store.fail_next_write("b", "x");
    let failed = store.enqueue(entry("t", "x", "1", None), one).await;
    assert_eq!(
        failed.unwrap_err().to_string(),
        "store: a write failure injected by a test"
    );
    queued(&store, entry("t", "y", "1", None), one).await;
    let full = store.enqueue(entry("t", "x", "1", None), one).await;
    assert_eq!(
        full.unwrap(),
        Accepted::Full {
            conversation: false
        }
    );
}

/// Message ids are forgotten once older than the cut-off (a retry after
/// that is a new message), not before (a retry is a duplicate).
async fn message_ids_are_forgotten(b: &Backend) {
    let store = b.open().await;
    let old = entry("t", "c", "1", Some("hook\0old"));
    finish(
        store.as_ref(),
        "c",
        queued(store.as_ref(), old.clone(), ROOMY).await,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let cutoff = now_ms();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut new = entry("t", "c", "2", Some("hook\0new"));
    new.accepted_ms = now_ms();
    finish(
        store.as_ref(),
        "c",
        queued(store.as_ref(), new.clone(), ROOMY).await,
    )
    .await;
    assert_eq!(store.purge_seen(cutoff).await.unwrap(), 1);
    assert_eq!(store.purge_seen(cutoff).await.unwrap(), 0);
    let mut again = new.clone();
    again.accepted_ms = now_ms();
    assert_eq!(
        store.enqueue(again, ROOMY).await.unwrap(),
        Accepted::Duplicate,
        "inside the window"
    );
    let mut again = old.clone();
    again.accepted_ms = now_ms();
    queued(store.as_ref(), again, ROOMY).await;
}

#[tokio::test]
async fn embedded_message_ids_are_forgotten() {
    message_ids_are_forgotten(&embedded().1).await;
    message_ids_are_forgotten(&parted(3).1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_message_ids_are_forgotten() {
    message_ids_are_forgotten(&postgres(Duration::from_secs(30)).await).await;
}

/// Sessions idle past the expiry (here 300 ms) are deleted with their
/// transcripts, and their bytes leave the tenant's total; a fresh one stays.
async fn expired_conversations_are_deleted(b: &Backend) {
    let store = b.open().await;
    let commit = |conv: &str| {
        let mut state = ConversationState::new(now_ms());
        state.transcript_len = 1;
        TurnCommit {
            bot: "b".into(),
            conversation: conv.into(),
            state,
            transcript: vec![TranscriptEntry {
                seq: 0,
                at_ms: now_ms(),
                event: json!({"user": conv}),
            }],
            postbacks: Vec::new(),
            outbox: Vec::new(),
            inbox: None,
        }
    };
    store.commit(commit("old")).await.unwrap();
    let old = store.stored_bytes(&["b".into()]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    store.commit(commit("new")).await.unwrap();
    let both = store.stored_bytes(&["b".into()]).await.unwrap();
    assert!(both > old && old > 0);
    assert_eq!(store.purge_expired().await.unwrap(), 1);
    assert_eq!(store.purge_expired().await.unwrap(), 0);
    assert!(
        store
            .transcript("b", "old", 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.transcript("b", "new", 0, 10).await.unwrap().len(), 1);
    assert!(store.load("b", "new").await.unwrap().is_some());
    assert_eq!(store.stored_bytes(&["b".into()]).await.unwrap(), both - old);
}

#[tokio::test]
async fn embedded_expired_conversations_are_deleted() {
    for parts in [1, 3] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let open = Box::new(move || {
            let store =
                EmbeddedStore::open_parts(&path, Duration::from_millis(300), None, parts).unwrap();
            Box::pin(async move { Arc::new(store) as Arc<dyn Store> }) as Opened
        });
        expired_conversations_are_deleted(&Backend::local(open)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_expired_conversations_are_deleted() {
    let b = postgres_with(Duration::from_secs(30), Duration::from_millis(300)).await;
    expired_conversations_are_deleted(&b).await;
}

/// `copy_to` another part count keeps everything a server would use:
/// sessions and transcripts, waiting inbox entries in order, queued
/// deliveries in order per conversation (renumbered, settled by their new
/// ids), dead letters (re-queueable), seen message ids (a retry is still a
/// duplicate, whichever part it lands in), postback ids, failures, the
/// stored bytes — from 1 part to 4 and back to 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_copies_into_another_part_count() {
    let dir = tempfile::tempdir().unwrap();
    let ttl = Duration::from_secs(3600);
    let one = dir.path().join("one/sandbot.redb");
    let convs: Vec<String> = (0..8).map(|i| format!("u{i}")).collect();
    {
        let store = EmbeddedStore::open(&one, ttl).unwrap();
        for conv in &convs {
            let mut c = commit_done(conv, 0);
            c.inbox = None;
            c.state.transcript_len = 1;
            c.transcript = vec![TranscriptEntry {
                seq: 0,
                at_ms: 1,
                event: json!({"user": conv}),
            }];
            c.postbacks = vec![(format!("pb_{conv}"), json!({"nextDialogstateId": conv}))];
            c.outbox = ["one", "two"]
                .map(|t| delivery(conv, json!({"text": t})))
                .to_vec();
            store.commit(c).await.unwrap();
        }
        for text in ["first", "second"] {
            queued(&store, entry("t", "u3", text, None), ROOMY).await;
        }
        queued(&store, entry("t", "u5", "x", Some("hook\0m-9")), ROOMY).await;
        store
            .record_usage(&[("t".into(), "b".into(), json!({"turns": 5}))])
            .await
            .unwrap();
        for conv in ["u2", "u6"] {
            let outcome = json!({"done": {"messagesSent": conv}});
            store.keep_outcome("b", conv, conv, &outcome).await.unwrap();
        }
        // u7's first delivery is given up.
        let head = store.outbox(100).await.unwrap();
        let u7 = head.iter().find(|d| d.conversation == "u7").unwrap().id;
        store
            .outbox_dead(&[(u7, 3, "answered 500".into())])
            .await
            .unwrap();
        store
            .put_failure(
                StoredFailure {
                    tenant: "t".into(),
                    id: "f1".into(),
                    bot: "b".into(),
                    at_ms: now_ms(),
                    record: json!({"id": "f1", "bot": "b"}),
                },
                FailureBounds {
                    keep: 10,
                    max_bytes: 1 << 20,
                    max_age_ms: 3_600_000,
                },
            )
            .await
            .unwrap();
    }
    let before = {
        let store = EmbeddedStore::open(&one, ttl).unwrap();
        store.stored_bytes(&["b".into()]).await.unwrap()
    };
    let four = dir.path().join("four/sandbot.redb");
    let two = dir.path().join("two/sandbot.redb");
    let copied = EmbeddedStore::open(&one, ttl)
        .unwrap()
        .copy_to(&four, 4)
        .unwrap();
    assert_eq!(
        copied,
        sandbot::store::Copied {
            parts: 4,
            conversations: 8,
            inbox: 3,
            deliveries: 15,
            dead_letters: 1
        }
    );
    EmbeddedStore::open(&four, ttl)
        .unwrap()
        .copy_to(&two, 2)
        .unwrap();
    for (path, parts) in [(&four, 4), (&two, 2)] {
        let store = EmbeddedStore::open(path, ttl).unwrap();
        assert_eq!(store.part_count(), parts);
        assert_eq!(store.stored_bytes(&["b".into()]).await.unwrap(), before);
        let mut listed = store.conversations("b", None, 100).await.unwrap();
        listed.sort();
        assert_eq!(listed, convs);
        for conv in &convs {
            assert!(store.load("b", conv).await.unwrap().is_some());
            assert_eq!(
                store.transcript("b", conv, 0, 10).await.unwrap()[0].event,
                json!({"user": conv})
            );
            assert_eq!(
                store
                    .postback("b", &format!("pb_{conv}"))
                    .await
                    .unwrap()
                    .unwrap()["nextDialogstateId"],
                json!(conv)
            );
        }
        let next = store.inbox_next("b", "u3").await.unwrap().unwrap();
        assert_eq!(next.job["text"], "first");
        finish(&store, "u3", next.id).await;
        assert_eq!(
            store.inbox_next("b", "u3").await.unwrap().unwrap().job["text"],
            "second"
        );
        assert_eq!(
            store
                .enqueue(entry("t", "u5", "x", Some("hook\0m-9")), ROOMY)
                .await
                .unwrap(),
            Accepted::Duplicate
        );
        // One head per conversation: u7's second, the others' first.
        let heads = store.outbox(100).await.unwrap();
        assert_eq!(heads.len(), 8);
        for d in &heads {
            let want = if d.conversation == "u7" { "two" } else { "one" };
            assert_eq!(d.body["text"], want, "{}", d.conversation);
        }
        let ids: Vec<u64> = heads.iter().map(|d| d.id).collect();
        store.outbox_settle(&ids, &[]).await.unwrap();
        let rest = store.outbox(100).await.unwrap();
        assert_eq!(rest.len(), 7);
        assert!(rest.iter().all(|d| d.body["text"] == "two"));
        let dead = store.dead_letters(&["b".into()], 10).await.unwrap();
        assert_eq!((dead.len(), dead[0].reason.as_str()), (1, "answered 500"));
        let usage = store.usage("t").await.unwrap().unwrap();
        assert_eq!(usage, [("b".to_string(), json!({"turns": 5}))]);
        for conv in ["u2", "u6"] {
            let outcome = json!({"done": {"messagesSent": conv}});
            assert_eq!(
                store.kept_outcome("b", conv, conv).await.unwrap(),
                KeptOutcome::Outcome(outcome)
            );
        }
        assert!(
            store
                .requeue(&["b".into()], dead[0].delivery.id)
                .await
                .unwrap()
        );
        assert_eq!(
            store
                .failures("t", &["b".into()], 0, 10)
                .await
                .unwrap()
                .len(),
            1
        );
    }
    let Err(e) = EmbeddedStore::open(&one, ttl).unwrap().copy_to(&two, 3) else {
        panic!("copied over a store");
    };
    assert_eq!(
        e.to_string(),
        format!(
            "store: {} already exists: the copy goes to a folder without a store",
            two.display()
        )
    );
}

/// Nodes on one database see each other with the bots they serve; one that
/// stops leaves the list; a record again replaces the bots, not the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_nodes_record_themselves_and_what_they_serve() {
    let b = postgres(Duration::from_secs(30)).await;
    let (one, two) = (b.open().await, b.open().await);
    assert_eq!(one.nodes().await.unwrap(), []);
    let before = now_ms();
    one.heartbeat(&["echo".into(), "echo@DRAFT".into()])
        .await
        .unwrap();
    two.heartbeat(&[]).await.unwrap();
    let seen = two.nodes().await.unwrap();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let first = seen.iter().find(|n| n.bots.len() == 2).unwrap().clone();
    assert_eq!(first.bots, ["echo", "echo@DRAFT"]);
    assert_eq!(first.version, sandbot::VERSION);
    assert!(first.started_ms >= before && first.seen_ms == first.started_ms);

    tokio::time::sleep(Duration::from_millis(5)).await;
    one.heartbeat(&["other".into()]).await.unwrap();
    let again = two.nodes().await.unwrap();
    let first_again = again.iter().find(|n| n.name == first.name).unwrap();
    assert_eq!(first_again.bots, ["other"]);
    assert_eq!(first_again.started_ms, first.started_ms);
    assert!(first_again.seen_ms > first.seen_ms);

    one.leave().await.unwrap();
    let left = two.nodes().await.unwrap();
    assert_eq!(left.len(), 1);
    assert_ne!(left[0].name, first.name);
}

/// One process uses an embedded store: there are no other nodes to list.
#[tokio::test]
async fn embedded_lists_no_nodes() {
    let (_dir, b) = embedded();
    let store = b.open().await;
    store.heartbeat(&["echo".into()]).await.unwrap();
    assert_eq!(store.nodes().await.unwrap(), []);
}
