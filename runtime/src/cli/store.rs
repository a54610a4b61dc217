//! `sandbot store copy`: copies a stopped server's embedded store into a new
//! data folder with another part count (a data folder keeps the count it was
//! created with; this is how to change it), and the folder's other files
//! (the web chat's session key) with it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::store::{EmbeddedStore, MAX_PARTS};

#[derive(Debug, clap::Args)]
pub struct CopyArgs {
    /// The data folder to copy (the server using it must be stopped).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// The new data folder (created; must not hold a store yet).
    #[arg(long, value_name = "DIR")]
    to: PathBuf,
    /// Parts of the copy (1–64): files and writer threads, by conversation.
    #[arg(long, value_name = "N")]
    parts: usize,
}

pub fn copy(args: CopyArgs) -> anyhow::Result<ExitCode> {
    let from = args.data.join("sandbot.redb");
    if !from.exists() {
        bail!("{} holds no store (no sandbot.redb)", args.data.display());
    }
    if !(1..=MAX_PARTS).contains(&args.parts) {
        bail!(
            "--parts must be between 1 and {MAX_PARTS} (got {})",
            args.parts
        );
    }
    // Expiry plays no part in a copy: everything is copied.
    let store = EmbeddedStore::open(&from, Duration::from_secs(100 * 365 * 24 * 3600))?;
    let copied = store.copy_to(&args.to.join("sandbot.redb"), args.parts)?;
    // The folder's other files (not the store's parts).
    for entry in std::fs::read_dir(&args.data).context("reading the data folder")? {
        let entry = entry?;
        let name = entry.file_name();
        let text = name.to_string_lossy();
        let is_store = text.starts_with("sandbot.") && text.ends_with(".redb");
        if entry.file_type()?.is_file() && !is_store {
            std::fs::copy(entry.path(), args.to.join(&name))
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    println!(
        "copied {} conversation(s), {} waiting message(s), {} queued deliver(ies) and {} dead letter(s) into {} ({} part(s)); point `data` at it to use it",
        copied.conversations,
        copied.inbox,
        copied.deliveries,
        copied.dead_letters,
        args.to.display(),
        copied.parts
    );
    Ok(ExitCode::SUCCESS)
}
