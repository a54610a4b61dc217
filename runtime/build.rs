//! Rebuilds the crate when a PostgreSQL migration is added or changed:
//! `sqlx::migrate!` embeds the `migrations` folder at compile time, and
//! cargo does not otherwise know the folder is an input.
//!
//! Also names the commit the binary is built from (`SANDBOT_COMMIT_SUFFIX`:
//! ` (1a2b3c4d5e6f)`, or empty outside a git checkout or without git), so
//! that `sandbot --version` and the list of nodes in a shared store tell two
//! builds of the same version apart. Rerun when the checkout's HEAD moves.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    let git = Path::new("../.git");
    let head = git.join("HEAD");
    if head.is_file() {
        println!("cargo:rerun-if-changed=../.git/HEAD");
        // A branch's commit moves in its ref file (or in packed-refs).
        if let Ok(text) = std::fs::read_to_string(&head)
            && let Some(name) = text.trim().strip_prefix("ref: ")
        {
            for watched in [name, "packed-refs"] {
                if git.join(watched).is_file() {
                    println!("cargo:rerun-if-changed=../.git/{watched}");
                }
            }
        }
    }
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir("..")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit()));
    let suffix = commit.map(|c| format!(" ({c})")).unwrap_or_default();
    println!("cargo:rustc-env=SANDBOT_COMMIT_SUFFIX={suffix}");
}
