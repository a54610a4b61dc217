//! `sandbot chat BOT_DIR`: talk to a bot in the terminal, or replay a script
//! (`--script FILE`) and print the transcript as JSON lines.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use serde_json::Value;

use super::limit_args::LimitArgs;
use crate::flow::turn::script::{Conversation, Line, parse_line};
use crate::flow::{Bot, FlowEngine, InboundKind, TurnOutput};
use crate::runner::SandboxRunner;
use crate::sandbox::{Sandbox, SandboxConfig};
use crate::store::{EmbeddedStore, Store};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The bot folder.
    bot: PathBuf,
    /// Replay inputs from FILE, one per line: plain text, `/intro`,
    /// `/postback TITLE`; `#` starts a comment. Prints JSON lines.
    #[arg(long, value_name = "FILE")]
    script: Option<PathBuf>,
    /// Where conversations are kept. Default: a fresh temporary folder with
    /// `--script`, `~/.local/share/sandbot/chat` otherwise (so a conversation
    /// continues after a restart).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Days of inactivity after which a conversation's session expires.
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    session_idle_days: u64,
    /// The conversation id.
    #[arg(long, default_value = "terminal")]
    conversation: String,
    /// The user's preferred language (`internal.preferredLanguage`).
    #[arg(long)]
    language: Option<String>,
    #[command(flatten)]
    limits: LimitArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let bot = match Bot::load(&args.bot) {
        Ok(bot) => bot,
        Err(problems) => {
            eprint!("{}: {problems}", args.bot.display());
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    };
    let limits = args.limits.to_limits()?;
    crate::sandbox::check_builtin_limits(&limits)?;
    let script = match &args.script {
        Some(path) => Some(
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        ),
        None => None,
    };
    let temp;
    let data = match (&args.data, &script) {
        (Some(d), _) => d.clone(),
        (None, Some(_)) => {
            temp = tempfile::tempdir().context("creating a temporary data folder")?;
            temp.path().to_path_buf()
        }
        (None, None) => default_data_dir(),
    };
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(
        &data.join("sandbot.redb"),
        std::time::Duration::from_secs(args.session_idle_days * 24 * 3600),
    )?);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let sandbox = Arc::new(Sandbox::new(SandboxConfig {
            max_instances: 8,
            ..SandboxConfig::default()
        })?);
        let runner = Arc::new(SandboxRunner::new(sandbox, limits));
        let engine = FlowEngine::new(store, runner, "DRAFT");
        let mut conv = Conversation::new(&engine, &bot, &args.conversation);
        conv.language = args.language.clone();
        match script {
            Some(text) => self::script(&mut conv, &text).await,
            None => interactive(&mut conv, &data).await,
        }
    })
}

fn default_data_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(|h| Path::new(&h).join(".local/share/sandbot/chat"))
        .unwrap_or_else(|| PathBuf::from(".sandbot/chat"))
}

async fn script(conv: &mut Conversation<'_>, text: &str) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    for event in conv.run_script(text).await? {
        writeln!(out, "{event}")?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn interactive(conv: &mut Conversation<'_>, data: &Path) -> anyhow::Result<ExitCode> {
    let (bot, store) = (conv.bot, conv.engine.store().clone());
    let key = conv.engine.key(bot).into_owned();
    println!(
        "Chatting with `{}` (conversation `{}`, kept in {}).\nType a message, or a choice's number or title; /intro restarts, /session shows the session, /reset forgets the conversation, /quit leaves.",
        bot.file.name,
        conv.id,
        data.display()
    );
    if store.load(&key, &conv.id).await?.is_none() {
        print_turn(&conv.send(InboundKind::Intro).await?);
    } else {
        println!("(continuing the conversation where it was)");
    }
    let stdin = std::io::stdin();
    loop {
        print!("you> ");
        std::io::stdout().flush()?;
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim();
        let number = line
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=conv.choices.len()).contains(n));
        let kind = match (line, number) {
            ("/quit" | "/exit", _) => break,
            ("/session", _) => {
                let session = store
                    .load(&key, &conv.id)
                    .await?
                    .map(|s| s.session)
                    .unwrap_or(Value::Null);
                println!("{}", serde_json::to_string_pretty(&session)?);
                continue;
            }
            ("/reset", _) => {
                store.delete(&key, &conv.id).await?;
                println!("(conversation forgotten)");
                InboundKind::Intro
            }
            (_, Some(n)) => {
                let title = conv.choices[n - 1].0.clone();
                conv.postback(&title).expect("offered")
            }
            _ => match parse_line(line) {
                Line::Nothing => continue,
                Line::Send(kind) => conv.postback(line).unwrap_or(kind),
                Line::Postback(title) => match conv.postback(&title) {
                    Some(kind) => kind,
                    None => {
                        println!("(no choice titled `{title}`)");
                        continue;
                    }
                },
            },
        };
        print_turn(&conv.send(kind).await?);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_turn(out: &TurnOutput) {
    let mut n = 0;
    for m in &out.messages {
        let c = &m["config"];
        for t in c["textMessages"].as_array().into_iter().flatten() {
            if let Some(text) = t["text"].as_str().filter(|t| !t.is_empty()) {
                println!("bot> {text}");
            }
        }
        let mut list = |buttons: &Value| {
            for b in buttons.as_array().into_iter().flatten() {
                let title = b["title"].as_str().unwrap_or("");
                match b["type"].as_str().unwrap_or("postback") {
                    "web_url" => println!("     ({title}: {})", b["url"].as_str().unwrap_or("")),
                    "phone_number" => {
                        println!("     ({title}: {})", b["payload"].as_str().unwrap_or(""))
                    }
                    _ => {
                        n += 1;
                        println!("     [{n}] {title}");
                    }
                }
            }
        };
        list(&c["buttons"]);
        list(&c["quickReplies"]);
        for e in c["elements"].as_array().into_iter().flatten() {
            println!(
                "     | {} {}",
                e["title"].as_str().unwrap_or(""),
                e["subTitle"].as_str().unwrap_or("")
            );
            list(&e["buttons"]);
        }
        if let Some(media) = c.get("media") {
            println!(
                "bot> [{}] {}",
                media["type"].as_str().unwrap_or("media"),
                media["url"].as_str().unwrap_or("")
            );
        }
        if let Some(html) = c.get("html").and_then(Value::as_str) {
            println!("bot> [html] {html}");
        }
    }
    for e in &out.events {
        if let Some(err) = e.get("error") {
            eprintln!(
                "  ! {}: {}",
                err["kind"].as_str().unwrap_or(""),
                err["message"].as_str().unwrap_or("")
            );
        }
    }
}
