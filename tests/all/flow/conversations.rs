//! Scripted conversations kept as data, run through the real sandbox: each
//! folder in `tests/cases/conversations/` has `case.json` (`bot`: a folder
//! relative to the repository or the case, optional `language` and
//! `limits`), `script.txt` (one input per line, as `sandbot chat --script`)
//! and `expected.jsonl` (the transcript, then `{"session": …}` without
//! `internal`). `SANDBOT_BLESS=1` rewrites the expectations.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, LazyLock, OnceLock};

use sandbot::flow::Bot;
use sandbot::flow::turn::script::Conversation;
use sandbot::runner::SandboxRunner;
use sandbot::sandbox::{Sandbox, SandboxConfig};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::common::{CaseLimits, repo};
use crate::flow::support::engine;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    bot: String,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    limits: Option<CaseLimits>,
}

/// A sandbox of its own for the flow tests (the runner holds an `Arc`).
pub static SANDBOX: LazyLock<Arc<Sandbox>> = LazyLock::new(|| {
    Arc::new(
        Sandbox::new(SandboxConfig {
            max_instances: 64,
            cache_dir: Some(Path::new(env!("CARGO_TARGET_TMPDIR")).join("component-cache")),
            ..SandboxConfig::default()
        })
        .unwrap(),
    )
});

/// The example backend on its fixed address (the example bots call it there),
/// started once; one already running there (a developer's) is used as is.
pub fn example_backend() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let addr = sandbot_example_backend::DEFAULT_ADDR;
        match std::net::TcpListener::bind(addr) {
            Ok(listener) => {
                listener.set_nonblocking(true).unwrap();
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                        sandbot_example_backend::serve(listener).await.unwrap();
                    });
                });
            }
            Err(_) => {
                let mut s = std::net::TcpStream::connect(addr)
                    .expect("something holds the example backend's port");
                s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").unwrap();
                let mut answer = String::new();
                s.read_to_string(&mut answer).unwrap();
                assert!(
                    answer.ends_with("ok"),
                    "{addr} is taken by something other than the example backend"
                );
            }
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_conversations() {
    example_backend();
    let root = repo().join("tests/cases/conversations");
    let bless = std::env::var_os("SANDBOT_BLESS").is_some();
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let case: Case =
            serde_json::from_str(&std::fs::read_to_string(dir.join("case.json")).unwrap()).unwrap();
        let bot_dir = if dir.join(&case.bot).is_dir() {
            dir.join(&case.bot)
        } else {
            repo().join(&case.bot)
        };
        let bot = Bot::load(&bot_dir).unwrap_or_else(|p| panic!("{name}: {p}"));
        let mut limits = case.limits.unwrap_or_default();
        limits
            .allow_hosts
            .push(format!("http://{}", sandbot_example_backend::DEFAULT_ADDR));
        let runner = Arc::new(SandboxRunner::new(SANDBOX.clone(), limits.build()));
        let data = tempfile::tempdir().unwrap();
        let engine = engine(data.path(), runner);
        let mut conv = Conversation::new(&engine, &bot, &name);
        conv.language = case.language.clone();
        let script = std::fs::read_to_string(dir.join("script.txt")).unwrap();
        let mut events = conv.run_script(&script).await.unwrap();
        let mut session = engine
            .store()
            .load(bot.id(), &name)
            .await
            .unwrap()
            .unwrap()
            .session;
        session.as_object_mut().unwrap().remove("internal");
        events.push(json!({ "session": session }));
        let got: String = events.iter().map(|e| format!("{}\n", scrub(e))).collect();
        let path = dir.join("expected.jsonl");
        if bless {
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        if got != want {
            failures.push(format!("{name}:\n--- expected\n{want}--- got\n{got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Error messages that carry machine-dependent figures (fuel used, addresses
/// resolved) are compared by kind and their first words.
fn scrub(event: &Value) -> Value {
    let mut e = event.clone();
    if let Some(msg) = e.pointer_mut("/error/message")
        && let Some(text) = msg.as_str()
    {
        let cut = text.find(" after ").unwrap_or(text.len());
        *msg = json!(&text[..cut]);
    }
    e
}
