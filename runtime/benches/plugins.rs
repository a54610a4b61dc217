//! Plugins per language (issue: plugins in JS/TS, Python and C): each
//! kit's test guest (Rust, C, JavaScript, Python) measured the same way —
//! component size, compile time on first load (no cache), an empty call's
//! p50 and fuel, its peak memory, and a CPU-bound loop (`work`, 1,000,000
//! iterations) against the same loop in a code action on the Boa runner.
//!
//! `cargo bench -p sandbot --bench plugins -- --calls 200`

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sandbot::sandbox::{Invocation, Limits, Sandbox, SandboxConfig};
use serde_json::json;

const LOOP: u64 = 1_000_000;

fn main() {
    let calls = support::arg("--calls", 200);
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let guests = [
        ("Rust", "guest-sdk/artifacts/test-guest.wasm"),
        ("C", "guest-sdk/c/test-guest-c.wasm"),
        ("JavaScript", "guest-sdk/js-kit/test-guest-js.wasm"),
        ("Python", "guest-sdk/py-kit/test-guest-py.wasm"),
    ];
    let runtime = support::runtime();
    runtime.block_on(async {
        let sandbox = Sandbox::new(SandboxConfig {
            max_instances: 8,
            cache_dir: None,
            ..SandboxConfig::default()
        })
        .unwrap();
        let mut limits = Limits::deny_all();
        limits.fuel = 100_000_000_000;
        limits.timeout = Duration::from_secs(120);
        println!("| language | component | compile on first load | empty call p50 | empty call fuel | peak memory | loop of {LOOP} | loop fuel |");
        println!("|---|---|---|---|---|---|---|---|");
        for (name, path) in guests {
            let bytes = std::fs::read(repo.join(path)).unwrap();
            let started = Instant::now();
            let module = sandbox.load(&bytes).unwrap();
            let compile = started.elapsed();
            let noop = json!({"case": "noop"});
            let mut times = Vec::with_capacity(calls);
            let mut last = None;
            for i in 0..calls + 10 {
                let t = Instant::now();
                let out = sandbox.invoke(&module, Invocation::new(noop.clone()), &limits).await;
                assert!(out.is_ok(), "{name}: {out:?}");
                if i >= 10 {
                    times.push(t.elapsed());
                }
                last = Some(out);
            }
            times.sort();
            let stats = last.unwrap().stats;
            let t = Instant::now();
            let work = sandbox
                .invoke(&module, Invocation::new(json!({"case": "work", "n": LOOP})), &limits)
                .await;
            assert!(work.is_ok(), "{name}: {work:?}");
            let loop_time = t.elapsed();
            println!(
                "| {name} | {:.1} MB | {:.2} s | {:.2} ms | {} | {:.1} MiB | {:.0} ms | {} |",
                bytes.len() as f64 / 1e6,
                compile.as_secs_f64(),
                support::percentile_us(&times, 0.5) / 1000.0,
                stats.fuel,
                stats.memory_bytes as f64 / (1 << 20) as f64,
                loop_time.as_secs_f64() * 1000.0,
                work.stats.fuel,
            );
        }
        // The same loop as a code action on the built-in Boa runner.
        let js = sandbox.js_runner().unwrap();
        let script = format!("let x = 0; for (let i = 0; i < {LOOP}; i++) x = (x * 31 + i) % 1000003; return x;");
        let t = Instant::now();
        let out = sandbox.invoke(&js, Invocation::js(&script, json!({})), &limits).await;
        assert!(out.is_ok(), "boa: {out:?}");
        println!(
            "| Boa code action (built in) | — | — | — | — | — | {:.0} ms | {} |",
            t.elapsed().as_secs_f64() * 1000.0,
            out.stats.fuel
        );
    });
}
