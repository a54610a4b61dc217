//! `sandbot validate`, `sandbot chat --script` and `sandbot schema` as a bot
//! builder runs them.

use std::path::PathBuf;
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn sandbot(args: &[&str]) -> Output {
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache");
    Command::new(env!("CARGO_BIN_EXE_sandbot"))
        .args(args)
        .current_dir(repo())
        .env("SANDBOT_CACHE_DIR", &cache)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn validate_exits_0_on_a_good_bot_and_1_listing_every_problem() {
    let out = sandbot(&["validate", "examples/bots/shop"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("bot `shop` is valid"));

    let out = sandbot(&["validate", "tests/cases/validate/broken"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("21 problem(s)"), "{stdout}");
    assert!(
        stdout.contains(
            "flows/main.yaml: blocks[0] (intro).goto: unknown block `ask-email` in a go-to"
        )
    );

    let out = sandbot(&["validate", "tests/cases/validate/broken", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["problems"].as_array().unwrap().len(), 21);

    let out = sandbot(&["validate", "no/such/bot"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("bot.yaml: cannot read"));
}

#[test]
fn chat_script_prints_the_transcript_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script.txt");
    std::fs::write(&script, "/intro\nthrow an error\n/postback Nope\n").unwrap();
    let out = sandbot(&[
        "chat",
        "tests/cases/conversations/action-failures/bot",
        "--script",
        script.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0], serde_json::json!({"user": {"intro": true}}));
    assert_eq!(lines[1], serde_json::json!({"block": "intro"}));
    assert_eq!(
        lines[2]["bot"]["config"]["textMessages"][0]["text"],
        "Ready."
    );
    let error = lines.iter().find_map(|l| l.get("error")).unwrap();
    assert_eq!(error["kind"], "js_error");
    assert!(error["message"].as_str().unwrap().contains("line 3"));
    let last = &lines.last().unwrap()["error"];
    assert_eq!(last["kind"], "script");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("no button or quick reply titled `Nope`")
    );
}

#[test]
fn chat_refuses_a_broken_bot_with_its_problems() {
    let out = sandbot(&[
        "chat",
        "tests/cases/validate/broken",
        "--script",
        "/dev/null",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("missing system block `botDisabled`"));
}

#[test]
fn schema_prints_the_published_schema() {
    let out = sandbot(&["schema"]);
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let published: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("docs/bot.schema.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(printed, published);
}

#[test]
fn chat_refuses_a_memory_limit_the_js_runner_cannot_start_in() {
    let bot = repo().join("examples/bots/shop");
    let out = sandbot(&["chat", bot.to_str().unwrap(), "--memory-mib", "16"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the memory limit of 16 MiB is below the")
            && stderr.contains("MiB the JavaScript runner needs to start"),
        "{stderr}"
    );
}

#[test]
fn publish_makes_the_folder_live_and_refuses_a_broken_bot() {
    let tmp = tempfile::tempdir().unwrap();
    let bot = tmp.path().join("meetups");
    let copy = Command::new("cp")
        .args(["-r"])
        .arg(repo().join("examples/bots/meetups"))
        .arg(&bot)
        .status()
        .unwrap();
    assert!(copy.success());
    let dir = bot.to_str().unwrap();
    let out = sandbot(&["versions", dir]);
    assert!(text(&out.stdout).contains("no versions yet (LIVE is the folder as it is)"));
    let out = sandbot(&["publish", dir, "-m", "first", "--author", "ann"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).ends_with("version 1 of bot `meetups` is LIVE\n"));
    // Unchanged: the same version again.
    let out = sandbot(&["publish", dir]);
    assert!(text(&out.stdout).contains("version 1 of bot `meetups` is LIVE"));
    // Broken: refused with the problems, LIVE stays.
    std::fs::write(bot.join("actions/meetups.js"), "say('x';").unwrap();
    let out = sandbot(&["publish", dir]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("not published, 1 problem(s)"));
    let out = sandbot(&["versions", dir]);
    let listed = text(&out.stdout);
    assert!(
        listed.contains("   1 LIVE") && listed.contains("ann  first"),
        "{listed}"
    );
    assert!(!listed.contains("   2"), "{listed}");
}
