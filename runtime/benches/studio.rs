//! The studio's endpoints over HTTP on loopback, one request at a time:
//!
//! 1. diagnostics (`POST /v1/studio/check`) of a 200-line code action, valid
//!    and with a syntax error on its last line;
//! 2. a run of a builder action (`POST /v1/studio/bots/{bot}/run`: two
//!    session variables and a message, the tenant's default limits).
//!
//! `cargo bench -p sandbot --bench studio -- --iterations 300`

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ACTION: &str = "ChatlayerResponseBuilder()\n  .addSessionVariable(\"answer\", {})\n  .addSessionVariable(\"turns\", Number(args.n || 0) + 1)\n  .addMessage(\"step \" + args.n)\n  .send();\n";

/// A 200-line script of the kind builders write: requests, parsing,
/// branches, a builder.
fn script_200() -> String {
    let mut lines = vec![
        "const base = args.baseUrl || 'http://127.0.0.1:8787';".to_string(),
        "const builder = ChatlayerResponseBuilder();".to_string(),
    ];
    let mut n = 0;
    while lines.len() + 6 <= 196 {
        lines.push(format!("async function step{n}(input) {{"));
        lines.push(format!(
            "  const res = await fetch(`${{base}}/items/${{input.id}}?page={n}`);"
        ));
        lines.push(
            "  if (!res.ok) { console.warn('lookup failed', res.status); return null; }".into(),
        );
        lines.push("  const { records = [] } = await res.json();".into());
        lines.push(format!("  return _.sortBy(records.filter((r) => r.score > {n}), 'date').map((r) => ({{ title: r.title, n: {n} }}));"));
        lines.push("}".into());
        n += 1;
    }
    while lines.len() < 196 {
        lines.push("// the steps above run in order".into());
    }
    lines.push("const found = await step0({ id: args.id });".into());
    lines.push("builder.addSessionVariable('found', found ? found.length : 0);".into());
    lines.push(
        "builder.addMessage(found && found.length ? 'Found ' + found.length : 'Nothing found');"
            .into(),
    );
    lines.push("builder.send();".into());
    lines.join("\n") + "\n"
}

fn main() {
    let iterations = support::arg("--iterations", 300);
    let dir = tempfile::tempdir().unwrap();
    let bot = dir.path().join("bot");
    std::fs::create_dir_all(bot.join("flows")).unwrap();
    std::fs::create_dir_all(bot.join("actions")).unwrap();
    std::fs::write(bot.join("bot.yaml"), "id: bench\nname: Bench\n").unwrap();
    std::fs::write(
        bot.join("flows/main.yaml"),
        "blocks:\n  - { id: intro, system: introduction, type: action, code: step.js, args: { n: \"{turns}\" } }\n  - { id: nu, system: notUnderstood, type: message, messages: [{ text: NU }] }\n  - { id: err, system: errorOccurred, type: message, messages: [{ text: E }] }\n  - { id: off, system: botDisabled, type: message, messages: [{ text: O }] }\n",
    )
    .unwrap();
    std::fs::write(bot.join("actions/step.js"), ACTION).unwrap();
    let yaml = format!(
        "listen: 127.0.0.1:0\ndata: data\ntenants:\n  - {{ id: t, tokens: [\"{}\"], rateLimit: {{ requests: 1000000, seconds: 60 }} }}\nbots:\n  - {{ folder: bot, tenant: t, version: DRAFT }}\n",
        sandbot::serve::config::hash_token("bench-token")
    );
    std::fs::write(dir.path().join("serve.yaml"), yaml).unwrap();
    let rt = support::runtime();
    rt.block_on(async {
        let config = sandbot::serve::ServeConfig::load(&dir.path().join("serve.yaml")).unwrap();
        let server = sandbot::serve::Server::start(&config).await.unwrap();
        let base = format!("http://{}", server.addr);
        let client = reqwest::Client::new();
        let post = |path: &str, body: Value| {
            client
                .post(format!("{base}{path}"))
                .bearer_auth("bench-token")
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
        };
        let script = script_200();
        assert_eq!(script.lines().count(), 200);
        let broken = format!("{script}const x = {{;\n");
        let unterminated = format!("{script}say(\"open);\n");
        let cases: [(&str, &str, Value); 4] = [
            (
                "diagnostics, 200 lines, valid",
                "/v1/studio/check",
                json!({ "source": script }),
            ),
            (
                "diagnostics, 200 lines, an error on the last",
                "/v1/studio/check",
                json!({ "source": broken }),
            ),
            (
                "diagnostics, 200 lines, an unterminated string on the last",
                "/v1/studio/check",
                json!({ "source": unterminated }),
            ),
            (
                "run of the builder action",
                "/v1/studio/bots/bench/run",
                json!({ "action": "step.js", "args": { "n": 1 } }),
            ),
        ];
        for (name, path, body) in cases {
            let mut times: Vec<Duration> = Vec::with_capacity(iterations);
            for i in 0..iterations + 20 {
                let started = Instant::now();
                let res = post(path, body.clone()).await.unwrap();
                assert!(res.status().is_success(), "{name}: {}", res.status());
                let answer: Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
                if i >= 20 {
                    times.push(started.elapsed());
                }
                if path.ends_with("/run") {
                    assert_eq!(answer["status"], "ok", "{answer}");
                }
            }
            times.sort();
            println!(
                "{name}: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms ({iterations} requests)",
                support::percentile_us(&times, 0.50) / 1000.0,
                support::percentile_us(&times, 0.90) / 1000.0,
                support::percentile_us(&times, 0.99) / 1000.0,
            );
        }
        server.shutdown().await.unwrap();
    });
}
