//! The README's walkthroughs, run as written: the pizza tutorial (its files
//! and its transcript, second order included) and the first code action
//! (`hello.js` against the example backend).

use std::sync::Arc;

use sandbot::flow::Bot;
use sandbot::flow::turn::script::Conversation;
use sandbot::runner::SandboxRunner;
use serde_json::Value;

use crate::common::{CaseLimits, repo};
use crate::flow::conversations::{SANDBOX, example_backend};
use crate::flow::support::{engine, said};

/// The README's section under `## {heading}`, up to the next `## `.
fn section(heading: &str) -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let start = readme
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("no section `{heading}` in the README"));
    let rest = &readme[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |e| e + 3);
    rest[..end].to_string()
}

/// The fenced blocks of `text`: (language, code), each dedented by its
/// fence's indentation.
fn fenced(text: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(lang) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        let indent = line.len() - line.trim_start().len();
        let mut code = String::new();
        for l in lines.by_ref() {
            if l.trim_start().starts_with("```") {
                break;
            }
            code.push_str(l.get(indent..).unwrap_or("").trim_end());
            code.push('\n');
        }
        blocks.push((lang.to_string(), code));
    }
    blocks
}

fn runner() -> Arc<SandboxRunner> {
    let mut limits = CaseLimits::default();
    limits
        .allow_hosts
        .push(format!("http://{}", sandbot_example_backend::DEFAULT_ADDR));
    Arc::new(SandboxRunner::new(SANDBOX.clone(), limits.build()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pizza_tutorial_runs_as_written_second_order_included() {
    let blocks = fenced(&section("Build your first bot"));
    let code = |lang: &str, n: usize| {
        blocks
            .iter()
            .filter(|b| b.0 == lang)
            .nth(n)
            .unwrap_or_else(|| panic!("no {lang} block {n}"))
            .1
            .clone()
    };
    let dir = tempfile::tempdir().unwrap();
    let pizza = dir.path().join("pizza");
    std::fs::create_dir_all(pizza.join("flows")).unwrap();
    std::fs::create_dir_all(pizza.join("actions")).unwrap();
    std::fs::write(pizza.join("bot.yaml"), code("yaml", 0)).unwrap();
    std::fs::write(pizza.join("flows/main.yaml"), code("yaml", 1)).unwrap();
    std::fs::write(pizza.join("actions/price.js"), code("js", 0)).unwrap();
    let bot = Bot::load(&pizza).unwrap_or_else(|p| panic!("{p}"));

    // The transcript the README shows: `you>` lines in, `bot>` lines out
    // (a number picks the last answer's choice, as in `sandbot chat`).
    let transcript = blocks
        .iter()
        .find(|b| b.0.is_empty() && b.1.contains("bot> Hi! Hungry?"))
        .expect("the tutorial's transcript")
        .1
        .clone();
    let mut script = String::from("/intro\n");
    let mut expected = Vec::new();
    let mut choices: Vec<String> = Vec::new();
    for line in transcript.lines() {
        let line = line.trim();
        if let Some(said) = line.strip_prefix("bot> ") {
            expected.push(said.to_string());
            choices.clear();
        } else if let Some(choice) = line.strip_prefix('[') {
            let (_, title) = choice.split_once("] ").unwrap();
            choices.push(title.to_string());
        } else if let Some(input) = line.strip_prefix("you> ") {
            match input.parse::<usize>() {
                Ok(n) => script.push_str(&format!("/postback {}\n", choices[n - 1])),
                Err(_) => script.push_str(&format!("{input}\n")),
            }
        }
    }
    let data = tempfile::tempdir().unwrap();
    let engine = engine(data.path(), runner());
    let mut conv = Conversation::new(&engine, &bot, "readme");
    let events = conv.run_script(&script).await.unwrap();
    let errors: Vec<&Value> = events.iter().filter_map(|e| e.get("error")).collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(said(&events), expected);
    assert!(expected.contains(&"One small pizza: 9 euro. Enjoy!".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_code_action_runs_against_the_example_backend() {
    example_backend();
    let text = section("Code actions (JavaScript) for bot builders");
    let source = text
        .split_once("cat > hello.js <<'JS'\n")
        .and_then(|(_, rest)| rest.split_once("\nJS\n"))
        .expect("hello.js in the README")
        .0;
    let args = text
        .split_once("--args '")
        .and_then(|(_, rest)| rest.split_once('\''))
        .expect("its --args")
        .0;
    let args: Value = serde_json::from_str(args).unwrap();
    assert!(
        text.contains(&format!(
            "--allow-host http://{}",
            sandbot_example_backend::DEFAULT_ADDR
        )),
        "the README allows the backend it calls"
    );
    // The README's command runs it as a code action with these args; here it
    // is the introduction's action (the `list` block it names follows).
    let blocks = format!(
        "  - {{ id: intro, system: introduction, type: action, code: hello.js, args: {args} }}\n  - {{ id: list, type: message, messages: [{{ text: \"{{meetups.0.title}}\" }}] }}\n"
    );
    let dir = crate::flow::support::write_bot("", &blocks, &[("hello.js", source)]);
    let bot = crate::flow::support::load(&dir);
    let data = tempfile::tempdir().unwrap();
    let engine = engine(data.path(), runner());
    let mut conv = Conversation::new(&engine, &bot, "hello");
    let events = conv.run_script("/intro").await.unwrap();
    let errors: Vec<&Value> = events.iter().filter_map(|e| e.get("error")).collect();
    assert!(errors.is_empty(), "{errors:?}");
    let session = engine
        .store()
        .load(bot.id(), "hello")
        .await
        .unwrap()
        .unwrap()
        .session;
    assert_eq!(
        session["meetups"].as_array().map(Vec::len),
        Some(3),
        "{session}"
    );
    assert_eq!(said(&events).len(), 1, "the list block follows: {events:?}");
}
