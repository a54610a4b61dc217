//! Data-driven cases: `tests/cases/<area>/<name>/case.json` holds the input,
//! session and limits, and the expected outcome; a `script.js` beside it makes
//! it a JavaScript code action (run by the built-in JS runner, with `args`), an
//! `api.json` an API action (its configuration); otherwise `guest` names the
//! artifact to run with `input`. Every case runs;
//! all mismatches are reported together.
//!
//! `{{peer}}` in a case becomes the local HTTP peer's `127.0.0.1:PORT`, `{{port}}` its port.

use serde::Deserialize;
use serde_json::Value;

use crate::common::{CaseLimits, SANDBOX, guest, repo};
use sandbot::sandbox::Invocation;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// Why the case exists, for readers.
    #[allow(dead_code)]
    about: String,
    #[serde(default = "default_guest")]
    guest: String,
    #[serde(default)]
    input: Value,
    /// A code action's `args` (cases with a `script.js`).
    #[serde(default)]
    args: Value,
    #[serde(default)]
    session: Option<Value>,
    #[serde(default)]
    limits: CaseLimits,
    expect: Expect,
}

fn default_guest() -> String {
    "test-guest".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    status: String,
    kind: Option<String>,
    message: Option<String>,
    message_contains: Option<String>,
    code: Option<String>,
    output: Option<Value>,
    session: Option<Value>,
    messages: Option<Value>,
    next: Option<Value>,
    http_calls: Option<u32>,
    log_contains: Option<String>,
    /// JSON pointer → the length of the string there (big outputs and
    /// messages, checked without writing them out).
    lengths: Option<std::collections::BTreeMap<String, usize>>,
    /// JSON pointers that must hold a number (a result each guest kit
    /// computes its own way, e.g. the `work` loop's).
    numbers: Option<Vec<String>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_cases() {
    run_cases("sandbox", 40).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_cases() {
    run_cases("js", 28).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_action_cases() {
    run_cases("api", 9).await;
}

/// The cases every language's guest kit must pass as the Rust one does:
/// session reads and writes, say and goto, a refused fetch handled as a
/// value, its own error, `internal.*` refused, and each limit both ways.
const KIT_CASES: [&str; 10] = [
    "session-effects",
    "internal-read-only",
    "set-then-fail",
    "egress-handled-denial",
    "fuel-crossed",
    "fuel-inside",
    "memory-crossed",
    "memory-inside",
    "timeout-crossed",
    "timeout-inside",
];

/// Runs `KIT_CASES` against a kit's committed test guest; `swap` replaces a
/// case by another (a runtime that starts bigger needs a roomier "inside").
async fn kit_cases(path: &str, swap: &[(&str, &str)]) {
    let bytes = std::fs::read(repo().join(path)).unwrap();
    let module = SANDBOX
        .load(&bytes)
        .unwrap_or_else(|e| panic!("{path}: {e:#}"));
    let names = KIT_CASES
        .iter()
        .map(|c| swap.iter().find(|(a, _)| a == c).map_or(*c, |(_, b)| *b))
        .map(String::from)
        .collect();
    run_named("sandbox", names, Some(module)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_c_kit_passes_the_rust_guests_cases() {
    kit_cases("guest-sdk/c/test-guest-c.wasm", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_javascript_kit_passes_the_rust_guests_cases() {
    kit_cases("guest-sdk/js-kit/test-guest-js.wasm", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_kit_passes_the_rust_guests_cases() {
    kit_cases(
        "guest-sdk/py-kit/test-guest-py.wasm",
        &[("memory-inside", "memory-inside-roomy")],
    )
    .await;
}

async fn run_cases(area: &str, at_least: usize) {
    let dir = repo().join("tests/cases").join(area);
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert!(
        names.len() >= at_least,
        "cases went missing from {}",
        dir.display()
    );
    run_named(area, names, None).await;
}

/// Runs the cases `names` of `area`; guest cases on `guest` when given.
async fn run_named(
    area: &str,
    names: Vec<String>,
    guest_module: Option<std::sync::Arc<sandbot::sandbox::ActionModule>>,
) {
    let peer = crate::peer::start().await.to_string();
    let dir = repo().join("tests/cases").join(area);
    let mut failures = Vec::new();
    for name in &names {
        let text = std::fs::read_to_string(dir.join(name).join("case.json"))
            .unwrap()
            .replace("{{peer}}", &peer)
            .replace("{{port}}", peer.rsplit(':').next().unwrap());
        let case: Case = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let read = |file: &str| {
            std::fs::read_to_string(dir.join(name).join(file))
                .ok()
                .map(|t| t.replace("{{peer}}", &peer))
        };
        let (module, mut invocation) = match (read("script.js"), read("api.json")) {
            (Some(script), _) => (
                SANDBOX.js_runner().unwrap(),
                Invocation::js(&script, case.args),
            ),
            (None, Some(api)) => (
                SANDBOX.api_action().unwrap(),
                Invocation::new(serde_json::from_str(&api).unwrap()),
            ),
            (None, None) => (
                guest_module.clone().unwrap_or_else(|| guest(&case.guest)),
                Invocation::new(case.input),
            ),
        };
        if let Some(s) = case.session {
            invocation = invocation.with_session(s);
        }
        let outcome = SANDBOX
            .invoke(&module, invocation, &case.limits.build())
            .await;
        let mut got = serde_json::to_value(&outcome).unwrap();
        // A kit's runtime may catch the failure first (SpiderMonkey's and
        // CPython's out-of-memory exceptions): the host's message then adds
        // what the guest did, "(the action then failed: …)".
        if guest_module.is_some()
            && let (Some(want), Some(have)) =
                (&case.expect.message, got["error"]["message"].as_str())
            && have.starts_with(&format!("{want} (the action then failed: "))
        {
            got["error"]["message"] = Value::from(want.clone());
        }
        let problems = compare(&case.expect, &got);
        if !problems.is_empty() {
            failures.push(format!(
                "{name}:\n  {}\n  got: {got}",
                problems.join("\n  ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}

fn compare(expect: &Expect, got: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let mut check = |what: &str, want: Option<&Value>, have: &Value| {
        if let Some(want) = want.filter(|w| *w != have) {
            problems.push(format!("{what}: want {want}, have {have}"));
        }
    };
    check(
        "status",
        Some(&Value::from(expect.status.clone())),
        &got["status"],
    );
    check(
        "kind",
        expect.kind.clone().map(Value::from).as_ref(),
        &got["error"]["kind"],
    );
    check(
        "message",
        expect.message.clone().map(Value::from).as_ref(),
        &got["error"]["message"],
    );
    check(
        "code",
        expect.code.clone().map(Value::from).as_ref(),
        &got["error"]["code"],
    );
    check("output", expect.output.as_ref(), &got["output"]);
    check("session", expect.session.as_ref(), &got["session"]);
    check("messages", expect.messages.as_ref(), &got["messages"]);
    check("next", expect.next.as_ref(), &got["next"]);
    check(
        "http_calls",
        expect.http_calls.map(Value::from).as_ref(),
        &got["stats"]["http_calls"],
    );
    for (pointer, want) in expect.lengths.iter().flatten() {
        let have = got.pointer(pointer).and_then(Value::as_str).map(str::len);
        if have != Some(*want) {
            problems.push(format!("length of {pointer}: want {want}, have {have:?}"));
        }
    }
    for pointer in expect.numbers.iter().flatten() {
        if !got.pointer(pointer).is_some_and(Value::is_number) {
            problems.push(format!(
                "{pointer}: want a number, have {:?}",
                got.pointer(pointer)
            ));
        }
    }
    if let Some(part) = &expect.message_contains {
        let msg = got["error"]["message"].as_str().unwrap_or_default();
        if !msg.contains(part.as_str()) {
            problems.push(format!("message should contain {part:?}: {msg:?}"));
        }
    }
    if let Some(part) = expect
        .log_contains
        .as_ref()
        .filter(|p| !got["logs"].to_string().contains(p.as_str()))
    {
        problems.push(format!("logs should contain {part:?}"));
    }
    problems
}
