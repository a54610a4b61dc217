//! `sandbot action run` as a user calls it: one JSON document on stdout, exit 0
//! when the action succeeded, 1 when it failed, 2 on a usage error.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn artifact(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../guest-sdk/artifacts/{name}.wasm"))
}

/// Runs the binary; compiled components are cached under the target folder.
fn sandbot(args: &[&str]) -> Output {
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache");
    Command::new(env!("CARGO_BIN_EXE_sandbot"))
        .args(args)
        .env("SANDBOT_CACHE_DIR", &cache)
        .output()
        .unwrap()
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The document of a run that must have succeeded (exit 0).
fn ok_doc(out: &Output) -> Value {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    json_of(out)
}

/// Each run must be a usage error: exit 2, `message` on stderr, nothing on stdout.
fn assert_usage_errors(cases: &[(&[&str], &str)]) {
    for (args, message) in cases {
        let out = sandbot(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn a_successful_plugin_prints_the_outcome_and_exits_0() {
    let out = sandbot(&[
        "action",
        "run",
        "--plugin",
        artifact("iban-plugin").to_str().unwrap(),
        "--input",
        r#"{"variable":"user.iban","onValid":"pay","onInvalid":"ask"}"#,
        "--session",
        r#"{"user":{"iban":"DE89 3704 0044 0532 0130 00"}}"#,
    ]);
    let doc = ok_doc(&out);
    assert_eq!(doc["status"], "ok");
    assert_eq!(doc["next"], "pay");
    assert_eq!(doc["session"]["payment.ibanCountry"], "DE");
    assert_eq!(doc["messages"], serde_json::json!([]));
    for key in ["fuel", "memory_bytes", "wall_us", "http_calls"] {
        assert!(doc["stats"][key].is_u64(), "stats.{key} missing: {doc}");
    }
    assert!(doc["stats"]["fuel"].as_u64().unwrap() > 0);
    assert!(doc.get("error").is_none());
}

#[test]
fn a_failing_action_prints_the_classified_error_and_exits_1() {
    let out = sandbot(&[
        "action",
        "run",
        "--plugin",
        artifact("test-guest").to_str().unwrap(),
        "--input",
        r#"{"case":"spin"}"#,
        "--fuel",
        "1000000",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let doc = json_of(&out);
    assert_eq!(doc["status"], "error");
    assert_eq!(doc["error"]["kind"], "out_of_fuel");
    assert_eq!(
        doc["error"]["message"],
        "the action used up its fuel budget of 1000000"
    );
    assert_eq!(doc["stats"]["fuel"], 1000000);

    let out = sandbot(&[
        "action",
        "run",
        "--plugin",
        artifact("test-guest").to_str().unwrap(),
        "--input",
        r#"{"case":"alloc"}"#,
        "--memory-mib",
        "8",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json_of(&out)["error"]["kind"], "memory_limit");
}

/// `--version` names the build: the version and, built from a git
/// checkout, its commit, so that two builds of one version differ (the
/// nodes of a shared store record it).
#[test]
fn the_version_names_the_commit_it_was_built_from() {
    let out = sandbot(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("sandbot {}\n", sandbot::VERSION)
    );
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    if let Ok(head) = head
        && head.status.success()
    {
        let commit = String::from_utf8_lossy(&head.stdout).trim().to_string();
        assert_eq!(
            sandbot::VERSION,
            format!("{} ({commit})", env!("CARGO_PKG_VERSION"))
        );
    }
}

#[test]
fn usage_errors_exit_2_with_a_message_and_no_json() {
    let plugin = artifact("test-guest");
    let plugin = plugin.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["action", "run", "--plugin", plugin, "--input", "{nope"],
            "--input is not valid JSON",
        ),
        (
            &["action", "run", "--plugin", plugin, "--session", "[1]"],
            "--session must be a JSON object",
        ),
        (
            &["action", "run", "--plugin", "/no/such.wasm"],
            "reading /no/such.wasm",
        ),
        (
            &[
                "action",
                "run",
                "--plugin",
                plugin,
                "--allow-host",
                "ex*mple.com",
            ],
            "invalid allowlist entry `ex*mple.com`",
        ),
        (
            &[
                "action",
                "run",
                "--plugin",
                plugin,
                "--allow-net",
                "10.0.0.0/99",
            ],
            "invalid network `10.0.0.0/99`",
        ),
        (
            &["action", "run", "--plugin", plugin, "--memory-mib", "0"],
            "--memory-mib must be between 1 and 512",
        ),
        (
            &["action", "run", "--plugin", env!("CARGO_MANIFEST_DIR")],
            "reading",
        ),
        (&["action", "run"], "--plugin"),
    ];
    assert_usage_errors(cases);
}

#[test]
fn a_file_that_is_not_wasm_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plugin.wasm");
    std::fs::write(&path, b"hello").unwrap();
    let out = sandbot(&["action", "run", "--plugin", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a WebAssembly module or component"));
}

/// A one-shot HTTP peer on 127.0.0.1 answering every request with `body`.
fn peer(body: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut s = stream.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn allow_host_and_allow_net_open_exactly_what_they_name() {
    let port = peer("pong");
    let plugin = artifact("test-guest");
    let url = format!("http://localhost:{port}/");
    let input = format!(r#"{{"case":"fetch","url":"{url}"}}"#);
    let host = format!("http://localhost:{port}");
    let base = [
        "action",
        "run",
        "--plugin",
        plugin.to_str().unwrap(),
        "--input",
        &input,
    ];

    // Listed host, but it resolves to loopback: refused at connect time.
    let mut args = base.to_vec();
    args.extend(["--allow-host", &host]);
    let out = sandbot(&args);
    assert_eq!(out.status.code(), Some(1));
    let doc = json_of(&out);
    assert_eq!(doc["error"]["kind"], "egress_denied");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`localhost` resolves to"),
        "{doc}"
    );

    // The operator opens 127.0.0.1: now it works.
    args.extend(["--allow-net", "127.0.0.1"]);
    let out = sandbot(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(json_of(&out)["output"]["body"], "pong");
}

#[test]
fn component_new_refuses_what_is_not_a_core_module() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("c.wasm");
    // Garbage in: a clear error, exit 2.
    let bad = dir.path().join("bad.wasm");
    std::fs::write(&bad, b"\0asm\x0d\0\x01\0").unwrap();
    let out = sandbot(&[
        "component",
        "new",
        bad.to_str().unwrap(),
        "-o",
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("componentizing"));
    assert!(!out_path.exists());
}

#[test]
fn a_code_action_runs_with_js_and_args() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("action.js");
    std::fs::write(
        &script,
        "const b = ChatlayerResponseBuilder();\nb.addMessage(`Hi ${args.name}`).setNextDialogState(args.next).send();\nreturn _.upperFirst(args.name);\n",
    )
    .unwrap();
    let out = sandbot(&[
        "action",
        "run",
        "--js",
        script.to_str().unwrap(),
        "--args",
        r#"{"name":"ann","next":"menu"}"#,
    ]);
    let doc = ok_doc(&out);
    assert_eq!(doc["output"], "Ann");
    assert_eq!(doc["next"], "menu");
    assert_eq!(
        doc["messages"][0]["config"]["textMessages"][0]["text"],
        "Hi ann"
    );

    std::fs::write(&script, "const x = 1;\nlet = ;\n").unwrap();
    let out = sandbot(&["action", "run", "--js", script.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let doc = json_of(&out);
    assert_eq!(doc["error"]["kind"], "js_error");
    assert!(
        doc["error"]["message"].as_str().unwrap().contains("line 2"),
        "{doc}"
    );
}

#[test]
fn an_api_action_runs_with_api() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("api.json");
    let port = peer(
        r#"{"session":{"namespace":"rates","data":{"eur":1}},"action":{"nextDialogstate":"show"}}"#,
    );
    std::fs::write(
        &config,
        format!(r#"{{"url":"http://127.0.0.1:{port}/rates"}}"#),
    )
    .unwrap();
    let allow = format!("http://127.0.0.1:{port}");
    let out = sandbot(&[
        "action",
        "run",
        "--api",
        config.to_str().unwrap(),
        "--allow-host",
        &allow,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let doc = json_of(&out);
    assert_eq!(doc["session"]["rates.eur"], 1);
    assert_eq!(doc["next"], "show");

    // Without the allowlist entry the same action is refused.
    let out = sandbot(&["action", "run", "--api", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json_of(&out)["error"]["kind"], "egress_denied");
}

#[test]
fn js_and_api_usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{not json").unwrap();
    let plugin = artifact("test-guest");
    let cases: &[(&[&str], &str)] = &[
        (
            &["action", "run", "--js", "/no/such.js"],
            "reading /no/such.js",
        ),
        (
            &["action", "run", "--api", bad.to_str().unwrap()],
            "is not valid JSON",
        ),
        (
            &[
                "action",
                "run",
                "--js",
                bad.to_str().unwrap(),
                "--args",
                "[oops",
            ],
            "--args is not valid JSON",
        ),
        (
            &[
                "action",
                "run",
                "--js",
                "a.js",
                "--plugin",
                plugin.to_str().unwrap(),
            ],
            "cannot be used with",
        ),
        (
            &["action", "run", "--js", "a.js", "--input", "{}"],
            "cannot be used with",
        ),
    ];
    assert_usage_errors(cases);
}

/// `sandbot serve`'s start-up lines up to the studio's, the last (then it
/// is stopped), or all it wrote if it ended; for a config with `top` lines
/// and no bots.
fn serve_start_lines(top: &str) -> String {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("serve.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:0\ndata: {}\n{top}tenants: []\nbots: []\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_sandbot"))
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("TOKIO_WORKER_THREADS")
        .env_remove("SANDBOT_DATABASE_URL")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = String::new();
    for line in std::io::BufReader::new(server.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        lines.push_str(&line);
        lines.push('\n');
        if line.contains("studio (code editor") {
            break;
        }
    }
    server.kill().unwrap();
    server.wait().unwrap();
    lines
}

#[test]
fn serve_runs_on_the_threads_its_config_gives() {
    let lines = serve_start_lines("threads: 1\n");
    assert!(lines.contains("  threads: 1 async worker(s)\n"), "{lines}");
    let cores = std::thread::available_parallelism().unwrap().get();
    let lines = serve_start_lines("");
    assert!(
        lines.contains(&format!("  threads: {cores} async worker(s)\n")),
        "one per core by default: {lines}"
    );
}
