//! `sandbot store copy` as an operator runs it: a stopped server's data
//! folder copied into a new folder with another part count (the folder's
//! other files with it), and the refusals: a running server's store, a
//! folder without a store, a target that already holds one, a bad count.

use std::process::{Command, Output};
use std::time::Duration;

use sandbot::store::{ConversationState, EmbeddedStore, Store, TurnCommit, now_ms};

fn sandbot(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sandbot"))
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &Output) -> (Option<i32>, String, String) {
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_data_folder_is_copied_with_another_part_count() {
    let dir = tempfile::tempdir().unwrap();
    let (data, to) = (dir.path().join("data"), dir.path().join("new"));
    let ttl = Duration::from_secs(3600);
    let store = EmbeddedStore::open(&data.join("sandbot.redb"), ttl).unwrap();
    for conv in ["a", "b", "c"] {
        store
            .commit(TurnCommit {
                bot: "bot".into(),
                conversation: conv.into(),
                state: ConversationState::new(now_ms()),
                transcript: Vec::new(),
                postbacks: Vec::new(),
                outbox: Vec::new(),
                inbox: None,
            })
            .await
            .unwrap();
    }
    std::fs::write(data.join("web-session.key"), "secret").unwrap();
    let (data_s, to_s) = (data.to_str().unwrap(), to.to_str().unwrap());

    // The server still has it open: refused, nothing written.
    let (code, _, err) = text(&sandbot(&[
        "store", "copy", "--data", data_s, "--to", to_s, "--parts", "3",
    ]));
    assert_eq!(code, Some(2));
    assert!(err.contains("is in use by another process"), "{err}");
    assert!(!to.join("sandbot.redb").exists());
    drop(store);

    let (code, out, err) = text(&sandbot(&[
        "store", "copy", "--data", data_s, "--to", to_s, "--parts", "3",
    ]));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out.trim(),
        format!(
            "copied 3 conversation(s), 0 waiting message(s), 0 queued deliver(ies) and 0 dead letter(s) into {to_s} (3 part(s)); point `data` at it to use it"
        )
    );
    assert_eq!(
        std::fs::read_to_string(to.join("web-session.key")).unwrap(),
        "secret"
    );
    let copy = EmbeddedStore::open(&to.join("sandbot.redb"), ttl).unwrap();
    assert_eq!(copy.part_count(), 3);
    assert_eq!(
        copy.conversations("bot", None, 10).await.unwrap(),
        ["a", "b", "c"]
    );
    drop(copy);

    for (args, error) in [
        (
            vec!["--data", data_s, "--to", to_s, "--parts", "2"],
            format!(
                "sandbot: store: {to_s}/sandbot.redb already exists: the copy goes to a folder without a store"
            ),
        ),
        (
            vec!["--data", to_s, "--to", data_s, "--parts", "0"],
            "sandbot: --parts must be between 1 and 64 (got 0)".to_string(),
        ),
        (
            vec!["--data", "/nonexistent", "--to", to_s, "--parts", "2"],
            "sandbot: /nonexistent holds no store (no sandbot.redb)".to_string(),
        ),
    ] {
        let mut all = vec!["store", "copy"];
        all.extend(args);
        let (code, _, err) = text(&sandbot(&all));
        assert_eq!((code, err.trim()), (Some(2), error.as_str()));
    }
}
