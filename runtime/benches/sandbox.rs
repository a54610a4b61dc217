//! Sandbox benchmarks (a bench binary, not a test):
//!
//! 1. the per-invocation cost of an empty action (fresh store, instantiate,
//!    call, drop), over many sequential invocations: p50/p90/p99;
//! 2. peak RSS while 500 invocations are suspended at once on a slow local
//!    HTTP peer.
//!
//! `cargo bench -p sandbot --bench sandbox [-- --invocations N --suspended N]`
//! Figures are recorded in docs/BENCHMARKS.md.

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sandbot::sandbox::{Invocation, Limits, Sandbox, SandboxConfig};
use sandbot_host_api::egress::EgressPolicy;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let invocations = support::arg("--invocations", 20_000);
    let suspended = support::arg("--suspended", 500);
    let runtime = support::runtime();
    runtime.block_on(async {
        let sandbox = Arc::new(
            Sandbox::new(SandboxConfig {
                max_instances: (suspended as u32).max(16) + 16,
                cache_dir: None,
                ..SandboxConfig::default()
            })
            .unwrap(),
        );
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk/artifacts/test-guest.wasm");
        let module = sandbox.load(&std::fs::read(path).unwrap()).unwrap();
        let rss_before = rss_kib("VmRSS:");

        // 1. Empty action, sequential, fresh store each time.
        let limits = Limits::deny_all();
        let noop = json!({"case": "noop"});
        for _ in 0..1000 {
            let out = sandbox.invoke(&module, Invocation::new(noop.clone()), &limits).await;
            assert!(out.is_ok(), "{out:?}");
        }
        let mut times = Vec::with_capacity(invocations);
        let started = Instant::now();
        for _ in 0..invocations {
            let t = Instant::now();
            let out = sandbox.invoke(&module, Invocation::new(noop.clone()), &limits).await;
            times.push(t.elapsed());
            assert!(out.is_ok());
        }
        let total = started.elapsed();
        times.sort();
        println!(
            "empty action: {invocations} invocations, p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, {:.0} invocations/s",
            support::percentile_us(&times, 0.50),
            support::percentile_us(&times, 0.90),
            support::percentile_us(&times, 0.99),
            invocations as f64 / total.as_secs_f64(),
        );

        // 2. Many invocations suspended at once on a slow HTTP peer.
        let hold = Duration::from_secs(3);
        let port = slow_peer(hold).await;
        let peer = format!("http://127.0.0.1:{port}");
        let mut limits = Limits::with_egress(EgressPolicy {
            allow_hosts: vec![peer.parse().unwrap()],
            ..EgressPolicy::default()
        })
        .unwrap();
        limits.timeout = Duration::from_secs(30);
        let input = json!({"case": "fetch", "url": format!("{peer}/slow")});
        let rss_idle = rss_kib("VmRSS:");
        let started = Instant::now();
        let tasks: Vec<_> = (0..suspended)
            .map(|_| {
                let (sandbox, module, limits, input) =
                    (sandbox.clone(), module.clone(), limits.clone(), input.clone());
                tokio::spawn(async move { sandbox.invoke(&module, Invocation::new(input), &limits).await })
            })
            .collect();
        tokio::time::sleep(hold / 2).await;
        let rss_suspended = rss_kib("VmRSS:");
        let mut ok = 0;
        for t in tasks {
            let out = t.await.unwrap();
            if out.is_ok() {
                ok += 1;
            } else {
                eprintln!("{:?}", out.error);
            }
        }
        println!(
            "suspended: {suspended} invocations held {:?} by a slow peer, {ok} ok in {:.2} s; RSS before any invocation {} MiB, idle {} MiB, while suspended {} MiB, peak (VmHWM) {} MiB",
            hold,
            started.elapsed().as_secs_f64(),
            rss_before / 1024,
            rss_idle / 1024,
            rss_suspended / 1024,
            rss_kib("VmHWM:") / 1024,
        );
    });
}

/// Answers every request after `hold`, on 127.0.0.1.
async fn slow_peer(hold: Duration) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf).await;
                tokio::time::sleep(hold).await;
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\nslow",
                    )
                    .await;
            });
        }
    });
    port
}
