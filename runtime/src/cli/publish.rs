//! `sandbot publish BOT_DIR`: makes the folder as it is the LIVE version
//! (a new version unless the newest one has the same files), as the
//! studio's Publish does; `sandbot versions BOT_DIR` lists the versions.
//! A running server picks the change up with its reload.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::studio::edit::{self, EditError};
use crate::studio::versions::Versions;

#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    /// The bot folder.
    bot: PathBuf,
    /// What the version is about.
    #[arg(short, long, default_value = "published")]
    message: String,
    /// Who publishes (default: $USER).
    #[arg(long)]
    author: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct VersionsArgs {
    /// The bot folder.
    bot: PathBuf,
}

pub fn publish(args: PublishArgs) -> anyhow::Result<ExitCode> {
    let author = args
        .author
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "cli".into());
    match edit::publish(&args.bot, &author, &args.message) {
        Ok((meta, bot)) => {
            println!(
                "{}: version {} of bot `{}` is LIVE",
                args.bot.display(),
                meta.number,
                bot.id()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(EditError::Invalid(problems)) => {
            print!("{}: not published, {problems}", args.bot.display());
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}

pub fn versions(args: VersionsArgs) -> anyhow::Result<ExitCode> {
    let v = Versions::of(&args.bot);
    let live = v.live();
    let list = v.list()?;
    if list.is_empty() {
        println!(
            "{}: no versions yet (LIVE is the folder as it is)",
            args.bot.display()
        );
    }
    for m in list {
        let at = time::OffsetDateTime::from_unix_timestamp((m.at_ms / 1000) as i64)
            .map(|t| {
                format!(
                    "{:04}-{:02}-{:02} {:02}:{:02}",
                    t.year(),
                    t.month() as u8,
                    t.day(),
                    t.hour(),
                    t.minute()
                )
            })
            .unwrap_or_default();
        let mark = if live == Some(m.number) { " LIVE" } else { "" };
        println!(
            "{:>4}{mark:5}  {at} UTC  {}  {}",
            m.number, m.author, m.message
        );
    }
    Ok(ExitCode::SUCCESS)
}
