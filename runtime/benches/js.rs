//! JavaScript code-action benchmarks, each beside the same script run by Boa
//! natively in-process (the floor no sandbox can beat), in the same run:
//!
//! 1. a builder action (two session variables, one message), fresh sandbox
//!    instance per call: p50/p90/p99;
//!    (for scale: `return 1` and a lodash action, sandbox only);
//! 2. a 100,000-iteration numeric loop, with fuel metering on: median wall time,
//!    and the ratio to native Boa.
//!
//! `cargo bench -p sandbot --features native-floor --bench js [-- --calls N --loops N]`; figures in
//! docs/BENCHMARKS.md.

use std::time::Instant;

mod support;

use boa_engine::{Context, Source};
use sandbot::sandbox::{Invocation, Limits, Sandbox, SandboxConfig};
use serde_json::json;

const BUILDER: &str = r#"ChatlayerResponseBuilder()
  .addSessionVariable("order", { id: args.id, total: 42.5 })
  .addSessionVariable("customer", "Ann")
  .addMessage(`Order ${args.id} is confirmed.`)
  .send();"#;

const LOOP: &str = r#"let s = 0;
for (let i = 0; i < 100000; i++) { s = (s + i * 7) % 1000003; }
return s;"#;

/// A typical lodash use: group 100 records and store the counts (sandbox only:
/// lodash is not in the repository, so there is no native figure).
const LODASH_ACTION: &str = r#"const rows = [];
for (let i = 0; i < 100; i++) rows.push({ id: i, city: i % 3 === 0 ? "Ghent" : "Antwerp" });
const counts = _.mapValues(_.groupBy(rows, "city"), (group) => group.length);
ChatlayerResponseBuilder().addSessionVariable("counts", counts).send();"#;

const PRELUDE: &str = include_str!("../../guest-sdk/js-runner/js/prelude.js");
/// Natives for the native floor: do nothing, as cheaply as possible.
const STUB_NATIVES: &str = r#"globalThis.__sandbot = {
  sessionGet() {}, sessionSet() {}, sessionRemove() {}, say() {}, goto() {}, log() {},
  fetch() { throw new TypeError("no fetch"); }, setTimeout() {}, clearTimeout() {},
};"#;

fn native_context() -> Context {
    let mut ctx = Context::default();
    ctx.eval(Source::from_bytes(STUB_NATIVES)).unwrap();
    ctx.eval(Source::from_bytes(PRELUDE)).unwrap();
    ctx
}

fn native_run(ctx: &mut Context, script: &str) {
    let wrapped = format!("var args = {{ id: 7 }}; (async function () {{{script}\n}})()");
    ctx.eval(Source::from_bytes(wrapped.as_bytes())).unwrap();
    ctx.run_jobs().unwrap();
}

fn main() {
    let calls = support::arg("--calls", 5000);
    let loops = support::arg("--loops", 21);
    let runtime = support::runtime();
    let sandbox = Sandbox::new(SandboxConfig {
        cache_dir: None,
        ..SandboxConfig::default()
    })
    .unwrap();
    let runner = sandbox.js_runner().unwrap();
    let limits = Limits::deny_all();
    let run = |script: &str| {
        let out = runtime.block_on(sandbox.invoke(
            &runner,
            Invocation::js(script, json!({"id": 7})),
            &limits,
        ));
        assert!(out.is_ok(), "{out:?}");
        out
    };
    let mut ctx = native_context();

    // 1. Builder action.
    for _ in 0..200 {
        run(BUILDER);
        native_run(&mut ctx, BUILDER);
    }
    // `calls` fresh-sandbox runs of `script`: sorted times, and its fuel.
    let timed = |script: &str| {
        let mut times = Vec::with_capacity(calls);
        let mut fuel = 0;
        for _ in 0..calls {
            let t = Instant::now();
            fuel = run(script).stats.fuel;
            times.push(t.elapsed());
        }
        times.sort();
        (times, fuel)
    };
    let (sandboxed, fuel) = timed(BUILDER);
    let mut native = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        native_run(&mut ctx, BUILDER);
        native.push(t.elapsed());
    }
    native.sort();
    println!(
        "builder action, fresh sandbox per call: {calls} calls, p50 {:.0} µs, p90 {:.0} µs, p99 {:.0} µs, {fuel} fuel; native Boa (one warm context): p50 {:.0} µs",
        support::percentile_us(&sandboxed, 0.5),
        support::percentile_us(&sandboxed, 0.9),
        support::percentile_us(&sandboxed, 0.99),
        support::percentile_us(&native, 0.5),
    );

    // For scale: the fixed cost of a code action (`return 1`).
    let (trivial, _) = timed("return 1;");
    println!(
        "trivial code action (`return 1`), fresh sandbox per call: p50 {:.0} µs",
        support::percentile_us(&trivial, 0.5)
    );

    // For scale: a lodash action.
    let (grouped, fuel) = timed(LODASH_ACTION);
    println!(
        "lodash action (`_.groupBy` of 100 records), fresh sandbox per call: p50 {:.0} µs, p99 {:.0} µs, {fuel} fuel",
        support::percentile_us(&grouped, 0.5),
        support::percentile_us(&grouped, 0.99),
    );

    // 2. Numeric loop, metering on in the sandbox.
    let mut sandboxed = Vec::new();
    let mut native = Vec::new();
    let mut fuel = 0;
    for _ in 0..loops {
        let t = Instant::now();
        fuel = run(LOOP).stats.fuel;
        sandboxed.push(t.elapsed());
        let t = Instant::now();
        native_run(&mut ctx, LOOP);
        native.push(t.elapsed());
    }
    sandboxed.sort();
    native.sort();
    let (s, n) = (
        support::percentile_us(&sandboxed, 0.5),
        support::percentile_us(&native, 0.5),
    );
    println!(
        "100,000-iteration loop: sandbox median {:.1} ms ({fuel} fuel), native Boa median {:.1} ms, ratio {:.2}x",
        s / 1000.0,
        n / 1000.0,
        s / n
    );
}
