//! Each code action is a fresh instance of the pre-initialized runner: nothing
//! random or time-dependent is frozen into the snapshot, and nothing one
//! invocation does is visible to the next.

use sandbot::sandbox::{Invocation, Limits};
use serde_json::json;

use crate::common::SANDBOX;

async fn run(script: &str) -> serde_json::Value {
    let out = SANDBOX
        .invoke(
            &SANDBOX.js_runner().unwrap(),
            Invocation::js(script, json!({})),
            &Limits::deny_all(),
        )
        .await;
    assert!(out.is_ok(), "{out:?}");
    out.output
}

#[tokio::test]
async fn math_random_and_date_now_differ_between_invocations() {
    let script = "return { r: Math.random(), now: Date.now() };";
    let a = run(script).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let b = run(script).await;
    assert_ne!(a["r"], b["r"], "Math.random() was frozen into the snapshot");
    assert!(
        b["now"].as_f64().unwrap() > a["now"].as_f64().unwrap(),
        "{a} {b}"
    );
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as f64;
    assert!(
        (wall - b["now"].as_f64().unwrap()).abs() < 60_000.0,
        "Date.now() is not the current time: {b}"
    );
}

#[tokio::test]
async fn globals_set_by_one_invocation_are_gone_in_the_next() {
    let first =
        run("globalThis.leak = 42; _.leaked = true; Array.prototype.evil = 1; return typeof leak;")
            .await;
    assert_eq!(first, json!("number"));
    let second =
        run("return [typeof leak, typeof _.leaked, typeof [].evil, typeof _.groupBy];").await;
    assert_eq!(
        second,
        json!(["undefined", "undefined", "undefined", "function"])
    );
}
