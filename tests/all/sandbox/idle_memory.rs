//! What the pool's idle slots keep resident is held to one budget for the
//! process: under it the warm slots stay; over it they are released (and the
//! JavaScript runner goes on working from a fresh copy).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sandbot::sandbox::{Invocation, Limits, Sandbox, SandboxConfig};
use serde_json::json;

use crate::common::repo;

fn sandbox(budget: u64) -> Sandbox {
    Sandbox::new(SandboxConfig {
        max_instances: 16,
        idle_memory_budget: budget,
        // The default cache folder, shared with the other tests: the runner
        // is compiled once.
        ..SandboxConfig::default()
    })
    .unwrap()
}

/// Runs `n` JavaScript actions at once, each touching a few MiB of heap.
async fn burst(sandbox: &Sandbox, n: usize) {
    let runner = sandbox.js_runner().unwrap();
    let mut limits = Limits::deny_all();
    limits.memory_bytes = 128 << 20;
    limits.timeout = Duration::from_secs(20);
    let script =
        "const a = []; for (let i = 0; i < 20000; i++) a.push({i, s: 'x' + i}); return a.length;";
    let runs = (0..n).map(|_| sandbox.invoke(&runner, Invocation::js(script, json!([])), &limits));
    for out in futures_util::future::join_all(runs).await {
        assert!(out.is_ok(), "{out:?}");
        assert_eq!(out.output, json!(20000));
    }
}

/// The pages this sandbox's idle slots dirtied and keep (wasmtime's
/// figure; the trimmer adds the process's shared image pages, which other
/// tests' sandboxes in this process also map), and its releases.
fn pool_idle(sandbox: &Sandbox) -> (u64, u64) {
    let pool = sandbox.engine().pooling_allocator_metrics().unwrap();
    (
        pool.unused_memory_bytes_resident() as u64,
        sandbox.idle_memory().1,
    )
}

/// Waits (up to 20 s) until `ok` holds for (idle bytes, releases).
async fn wait_for(sandbox: &Sandbox, what: &str, ok: impl Fn((u64, u64)) -> bool) -> (u64, u64) {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let now = pool_idle(sandbox);
        if ok(now) {
            return now;
        }
        assert!(
            Instant::now() < until,
            "{what}: idle bytes and releases still {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn idle_slots_under_the_budget_stay_warm() {
    let sandbox = sandbox(1 << 30);
    burst(&sandbox, 8).await;
    let (idle, _) = wait_for(&sandbox, "warm slots", |(idle, _)| idle > 1 << 20).await;
    // Read a few more times: nothing is released under the budget.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (still, releases) = pool_idle(&sandbox);
    assert_eq!(releases, 0);
    assert!(still >= idle, "{still} < {idle}");
}

#[tokio::test]
async fn idle_slots_over_the_budget_are_released() {
    let budget = 1 << 20;
    let sandbox = sandbox(budget);
    // A module loaded once and used by nothing any more (a bot's plugin
    // before a reload).
    let bytes = std::fs::read(repo().join("guest-sdk/artifacts/test-guest.wasm")).unwrap();
    let unused = Arc::downgrade(&sandbox.load(&bytes).unwrap());
    burst(&sandbox, 8).await;
    // Eight warm slots hold more than 1 MiB: they are released, and what
    // they kept goes once the old copies are gone.
    wait_for(&sandbox, "a release", |(_, releases)| releases >= 1).await;
    wait_for(&sandbox, "released", |(idle, _)| idle == 0).await;
    assert!(
        unused.upgrade().is_none(),
        "a module nothing uses is forgotten"
    );
    // The runner works from its fresh copy.
    burst(&sandbox, 2).await;
}
