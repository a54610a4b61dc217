//! The embedded store under the engine: restarts, expiry, atomic turns,
//! transcripts and listings.

use std::sync::Arc;
use std::time::Duration;

use sandbot::flow::turn::script::Conversation;
use sandbot::flow::{ActionEffects, ActionFailure, FlowEngine};
use sandbot::store::{ConversationState, EmbeddedStore, Store, TranscriptEntry, TurnCommit};
use serde_json::json;

use crate::flow::support::*;

fn ask_bot() -> tempfile::TempDir {
    write_bot(
        "",
        r#"
  - { id: intro, system: introduction, type: message, messages: [{ text: Hi }], goto: name }
  - { id: name, type: input, variable: name, question: "Name?", goto: age }
  - { id: age, type: input, variable: age, inputType: number, question: "Age?", goto: done }
  - { id: done, type: message, messages: [{ text: "{name} is {age}" }] }
"#,
        &[],
    )
}

#[tokio::test]
async fn a_restart_mid_conversation_continues_where_it_was() {
    let dir = ask_bot();
    let bot = load(&dir);
    let data = tempfile::tempdir().unwrap();
    {
        let engine = engine(data.path(), FakeRunner::ok());
        let mut conv = Conversation::new(&engine, &bot, "c1");
        let events = conv.run_script("/intro\nAda").await.unwrap();
        assert_eq!(said(&events), ["Hi", "Name?", "Age?"]);
    } // engine and store dropped: the "process" ends
    let engine = engine(data.path(), FakeRunner::ok());
    let mut conv = Conversation::new(&engine, &bot, "c1");
    let events = conv.run_script("36").await.unwrap();
    assert_eq!(said(&events), ["Ada is 36"]);
    let transcript = engine
        .store()
        .transcript("test", "c1", 0, 100)
        .await
        .unwrap();
    let seqs: Vec<u64> = transcript.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (0..transcript.len() as u64).collect::<Vec<_>>());
    assert_eq!(transcript[0].event, json!({"user": {"intro": true}}));
    assert_eq!(
        transcript.last().unwrap().event["bot"]["config"]["textMessages"][0]["text"],
        "Ada is 36"
    );
    assert_eq!(
        engine
            .store()
            .transcript("test", "c1", 3, 2)
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn idle_sessions_expire() {
    let dir = ask_bot();
    let bot = load(&dir);
    let data = tempfile::tempdir().unwrap();
    let short: Arc<dyn Store> = Arc::new(
        EmbeddedStore::open(&data.path().join("s.redb"), Duration::from_millis(300)).unwrap(),
    );
    let engine = FlowEngine::new(short.clone(), FakeRunner::ok(), "LIVE");
    let mut conv = Conversation::new(&engine, &bot, "c1");
    conv.run_script("/intro\nAda").await.unwrap();
    // Within the idle time the conversation goes on…
    assert!(short.load("test", "c1").await.unwrap().is_some());
    assert_eq!(short.conversations("test", None, 10).await.unwrap(), ["c1"]);
    // …past it the session is gone, and the conversation starts over.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(short.load("test", "c1").await.unwrap().is_none());
    assert!(
        short
            .conversations("test", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let events = conv.run_script("36").await.unwrap();
    assert_eq!(said(&events), ["NU"]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(short.purge_expired().await.unwrap(), 1);
    assert!(
        short
            .transcript("test", "c1", 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_failed_action_leaves_the_stored_session_as_it_was() {
    let dir = write_bot(
        "",
        "  - { id: intro, system: introduction, type: message, messages: [{ text: Hi }], goto: { block: act, set: { step: 1 } } }\n  - { id: act, type: action, code: a.js }\n",
        &[("a.js", "")],
    );
    let bot = load(&dir);
    let data = tempfile::tempdir().unwrap();
    let fail = FakeRunner::new(|_, _| {
        Err(ActionFailure {
            kind: "timeout".into(),
            message: "the action ran past its 5000 ms deadline".into(),
        })
    });
    let engine = engine(data.path(), fail);
    Conversation::new(&engine, &bot, "c1")
        .run_script("/intro")
        .await
        .unwrap();
    let state = engine.store().load("test", "c1").await.unwrap().unwrap();
    assert_eq!(state.session["step"], 1);
    assert!(state.session.get("written").is_none());
    drop(engine);
    let ok = FakeRunner::new(|_, _| {
        Ok(ActionEffects {
            session: [("written".to_string(), json!(true))].into_iter().collect(),
            ..Default::default()
        })
    });
    let engine = self::engine(data.path(), ok);
    Conversation::new(&engine, &bot, "c1")
        .run_script("/intro")
        .await
        .unwrap();
    assert_eq!(
        engine
            .store()
            .load("test", "c1")
            .await
            .unwrap()
            .unwrap()
            .session["written"],
        true
    );
}

#[tokio::test]
async fn many_conversations_commit_in_parallel_and_list_in_pages() {
    let dir = ask_bot();
    let bot = Arc::new(load(&dir));
    let data = tempfile::tempdir().unwrap();
    let engine = Arc::new(engine(data.path(), FakeRunner::ok()));
    let mut tasks = Vec::new();
    for n in 0..50 {
        let (engine, bot) = (engine.clone(), bot.clone());
        tasks.push(tokio::spawn(async move {
            let mut conv = Conversation::new(&engine, &bot, &format!("c{n:02}"));
            conv.run_script(&format!("/intro\nUser {n}\n{n}"))
                .await
                .unwrap()
        }));
    }
    for (n, t) in tasks.into_iter().enumerate() {
        assert_eq!(
            said(&t.await.unwrap()).last().unwrap(),
            &format!("User {n} is {n}")
        );
    }
    let store = engine.store();
    let first = store.conversations("test", None, 20).await.unwrap();
    assert_eq!(first.len(), 20);
    let second = store
        .conversations("test", Some(first.last().unwrap()), 100)
        .await
        .unwrap();
    assert_eq!(second.len(), 30);
    assert_eq!(second[0], "c20");
    assert!(store.delete("test", "c00").await.unwrap());
    assert!(!store.delete("test", "c00").await.unwrap());
    assert!(store.load("test", "c00").await.unwrap().is_none());
}

#[tokio::test]
async fn a_commit_is_all_or_nothing() {
    let data = tempfile::tempdir().unwrap();
    let path = data.path().join("s.redb");
    let store = EmbeddedStore::open(&path, Duration::from_secs(60)).unwrap();
    let mut state = ConversationState::new(sandbot::store::now_ms());
    state.session = json!({"a": 1});
    state.transcript_len = 2;
    let entry = |seq| TranscriptEntry {
        seq,
        at_ms: 0,
        event: json!({"user": "x"}),
    };
    store
        .commit(TurnCommit {
            bot: "b".into(),
            conversation: "c".into(),
            state: state.clone(),
            transcript: vec![entry(0), entry(1)],
            postbacks: vec![(
                "pb_x".into(),
                json!({"nextDialogstateId": "n", "params": []}),
            )],
            outbox: vec![crate::store::conformance::delivery(
                "c",
                json!({"message": {"text": "hi"}}),
            )],
            inbox: None,
        })
        .await
        .unwrap();
    drop(store);
    let store = EmbeddedStore::open(&path, Duration::from_secs(60)).unwrap();
    assert_eq!(store.load("b", "c").await.unwrap().unwrap(), state);
    assert_eq!(store.transcript("b", "c", 0, 10).await.unwrap().len(), 2);
    assert_eq!(
        store.postback("b", "pb_x").await.unwrap().unwrap()["nextDialogstateId"],
        "n"
    );
    let queued = store.outbox(10).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].id, 1);
    store.outbox_settle(&[], &[(1, 1, 42)]).await.unwrap();
    assert_eq!(store.outbox(10).await.unwrap()[0].not_before_ms, 42);
    store.outbox_settle(&[1], &[]).await.unwrap();
    assert!(store.outbox(10).await.unwrap().is_empty());
    // Postback ids are scoped to their bot.
    assert!(store.postback("other", "pb_x").await.unwrap().is_none());
}

/// A commit that fails (here: the writer's batch fails after its writes, as
/// a full disk would) leaves nothing of the turn: not the state, transcript,
/// postbacks or deliveries, and its inbox entry still waits; the store goes
/// on, the retried commit applies once, and delivery ids are not skipped.
#[tokio::test]
async fn a_failed_commit_leaves_nothing_and_the_store_goes_on() {
    use crate::store::conformance::{ROOMY, delivery, entry};
    use sandbot::store::{Accepted, InboxClaim};
    let data = tempfile::tempdir().unwrap();
    let path = data.path().join("s.redb");
    let store = EmbeddedStore::open(&path, Duration::from_secs(60)).unwrap();
    let bots = ["b".to_string()];
    let line = |seq| TranscriptEntry {
        seq,
        at_ms: 0,
        event: json!({"user": format!("m{seq}")}),
    };
    let mut first = ConversationState::new(sandbot::store::now_ms());
    first.transcript_len = 1;
    let turn = |state: &ConversationState, seq, text: &str, inbox| TurnCommit {
        bot: "b".into(),
        conversation: "c".into(),
        state: state.clone(),
        transcript: vec![line(seq)],
        postbacks: vec![(format!("pb_{text}"), json!({"nextDialogstateId": text}))],
        outbox: vec![delivery("c", json!({"text": text}))],
        inbox,
    };
    store.commit(turn(&first, 0, "one", None)).await.unwrap();
    let held = store.stored_bytes(&bots).await.unwrap();
    let Accepted::Queued(id) = store
        .enqueue(entry("t", "c", "two", None), ROOMY)
        .await
        .unwrap()
    else {
        panic!("queued");
    };
    let mut second = first.clone();
    second.session = json!({"step": 2});
    second.transcript_len = 2;
    let claim = Some(InboxClaim {
        entry: Some(id),
        epoch: 0,
    });

    store.fail_next_write("b", "c");
    let failed = store
        .commit(turn(&second, 1, "two", claim))
        .await
        .unwrap_err();
    assert_eq!(
        failed.to_string(),
        "store: a write failure injected by a test"
    );
    assert_eq!(store.load("b", "c").await.unwrap().unwrap(), first);
    assert_eq!(store.transcript("b", "c", 0, 10).await.unwrap(), [line(0)]);
    assert!(store.postback("b", "pb_two").await.unwrap().is_none());
    let queued = store.outbox(10).await.unwrap();
    assert_eq!((queued.len(), queued[0].id), (1, 1));
    assert_eq!(store.inbox_next("b", "c").await.unwrap().unwrap().id, id);
    assert_eq!(store.stored_bytes(&bots).await.unwrap(), held);

    // The store goes on: the same turn commits once, in full.
    store.commit(turn(&second, 1, "two", claim)).await.unwrap();
    store.outbox_settle(&[1], &[]).await.unwrap();
    drop(store);
    let store = EmbeddedStore::open(&path, Duration::from_secs(60)).unwrap();
    assert_eq!(store.load("b", "c").await.unwrap().unwrap(), second);
    assert_eq!(
        store.transcript("b", "c", 0, 10).await.unwrap(),
        [line(0), line(1)]
    );
    assert_eq!(
        store.postback("b", "pb_two").await.unwrap().unwrap()["nextDialogstateId"],
        "two"
    );
    let queued = store.outbox(10).await.unwrap();
    assert_eq!(
        (queued.len(), queued[0].id),
        (1, 2),
        "the next id, none skipped"
    );
    assert!(store.inbox_next("b", "c").await.unwrap().is_none());
    assert!(store.stored_bytes(&bots).await.unwrap() > held);
}
