//! `budget.remaining` tells a guest what is left, within the limits it was given.

use std::time::Duration;

use sandbot::sandbox::{Invocation, Limits};
use serde_json::json;

use crate::common::{SANDBOX, guest};

#[tokio::test]
async fn the_guest_reads_its_remaining_budget() {
    let mut limits = Limits::deny_all();
    limits.fuel = 50_000_000;
    limits.memory_bytes = 32 << 20;
    limits.timeout = Duration::from_millis(3000);
    limits.host.max_http_calls = 7;
    let out = SANDBOX
        .invoke(
            &guest("test-guest"),
            Invocation::new(json!({"case": "budget"})),
            &limits,
        )
        .await;
    assert!(out.is_ok(), "{out:?}");
    let b = &out.output;
    let fuel = b["fuel"].as_u64().unwrap();
    assert!(fuel > 0 && fuel < 50_000_000, "{b}");
    assert!(b["wall_ms"].as_u64().unwrap() <= 3000, "{b}");
    assert_eq!(b["http_calls"], 7);
    let memory = b["memory_bytes"].as_u64().unwrap();
    assert!(memory > 0 && memory < 32 << 20, "{b}");
    assert_eq!(out.stats.host_calls, 1);
}
