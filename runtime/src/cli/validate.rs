//! `sandbot validate BOT_DIR`: every problem at once, with file, path and hint.
//! Exit 0 when the bot is valid, 1 when it has problems.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::flow::Bot;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The bot folder (bot.yaml, flows/, actions/, plugins/).
    bot: PathBuf,
    /// Print the problems as one JSON document.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match Bot::load(&args.bot) {
        Ok(bot) => {
            let notes: Vec<String> = crate::flow::bot::intl::note(&bot).into_iter().collect();
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"ok": true, "problems": [], "notes": notes})
                );
            } else {
                println!(
                    "{}: bot `{}` is valid ({} blocks, {} intents, {} scripts, {} plugins)",
                    args.bot.display(),
                    bot.id(),
                    bot.blocks.len(),
                    bot.file.nlp.intents.len(),
                    bot.scripts.len(),
                    bot.plugins.len()
                );
                for note in &notes {
                    println!("note: {note}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(problems) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"ok": false, "problems": problems.0})
                );
            } else {
                print!("{}: {problems}", args.bot.display());
            }
            Ok(ExitCode::from(1))
        }
    }
}
