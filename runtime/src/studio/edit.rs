//! Changes to a bot folder as the studio (and `sandbot publish`) makes them:
//! the whole bot is checked first (a refused change writes nothing), then
//! the files are written in the folder (the DRAFT) and kept as a version.

use std::path::Path;
use std::sync::Mutex;

use super::versions::{Files, VersionMeta, Versions, read_files, write_files};
use crate::flow::{Bot, Problems};

/// Why a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The bot would not load: every problem, as `sandbot validate` says.
    #[error("{0}")]
    Invalid(Problems),
    /// Something the request names is wrong (a path, a version).
    #[error("{0}")]
    Bad(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Folders being changed in this process, one change at a time.
static EDITING: Mutex<()> = Mutex::new(());

/// Whether `rel` is a file the studio may write: `bot.yaml`,
/// `flows/NAME.yaml` or `actions/NAME.js`.
pub fn writable(rel: &str) -> bool {
    let name_ok = |name: &str, ext: &[&str]| {
        ext.iter().any(|x| {
            name.strip_suffix(x).is_some_and(|stem| {
                !stem.is_empty()
                    && !stem.starts_with('.')
                    && stem
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            })
        })
    };
    match rel.split_once('/') {
        None => rel == "bot.yaml",
        Some(("flows", name)) => name_ok(name, &[".yaml", ".yml"]),
        Some(("actions", name)) => name_ok(name, &[".js"]),
        _ => false,
    }
}

/// Writes `changes` (path → new text, `None` deletes) into the bot in
/// `folder` as a new version by `author`. Until something is published, the
/// folder as it was is published first, so LIVE does not change with it.
pub fn save(
    folder: &Path,
    changes: &[(String, Option<String>)],
    author: &str,
    message: &str,
) -> Result<(VersionMeta, Bot), EditError> {
    if let Some((rel, _)) = changes.iter().find(|(rel, _)| !writable(rel)) {
        return Err(EditError::Bad(format!(
            "`{rel}` is not a file the studio writes (bot.yaml, flows/NAME.yaml, actions/NAME.js)"
        )));
    }
    let _one = EDITING.lock().unwrap_or_else(|e| e.into_inner());
    let mut files = read_files(folder)?;
    for (rel, text) in changes {
        match text {
            Some(t) => {
                files.insert(rel.clone(), t.clone().into_bytes());
            }
            None => {
                files.remove(rel);
            }
        }
    }
    replace(folder, &files, author, message)
}

/// Makes the folder's files those of version `n` again, as a new version.
pub fn restore(folder: &Path, n: u64, author: &str) -> Result<(VersionMeta, Bot), EditError> {
    let versions = Versions::of(folder);
    if versions.get(n)?.is_none() {
        return Err(EditError::Bad(format!("no version {n}")));
    }
    let _one = EDITING.lock().unwrap_or_else(|e| e.into_inner());
    let files = versions.files(n)?;
    replace(folder, &files, author, &format!("restored version {n}"))
}

/// Publishes the folder as it is: its newest version when that has the
/// folder's files, else a new one. Refused when the bot does not load.
pub fn publish(
    folder: &Path,
    author: &str,
    message: &str,
) -> Result<(VersionMeta, Bot), EditError> {
    let _one = EDITING.lock().unwrap_or_else(|e| e.into_inner());
    Bot::load(folder).map_err(EditError::Invalid)?;
    let versions = Versions::of(folder);
    let fingerprint = crate::flow::bot::fingerprint(folder);
    let meta = match versions.list()?.into_iter().next() {
        Some(v) if v.fingerprint == fingerprint => v,
        _ => versions.snapshot(author, message)?,
    };
    versions.set_live(meta.number)?;
    let bot = Bot::load(&versions.bot_dir(meta.number)).map_err(EditError::Invalid)?;
    Ok((meta, bot))
}

/// Checks `files` as a whole bot, then writes them as the folder's files.
fn replace(
    folder: &Path,
    files: &Files,
    author: &str,
    message: &str,
) -> Result<(VersionMeta, Bot), EditError> {
    let scratch = tempfile::tempdir()?;
    write_files(scratch.path(), files, true)?;
    let candidate = Bot::load(scratch.path()).map_err(EditError::Invalid)?;
    let current = Bot::load(folder).ok();
    if let Some(current) = &current
        && current.id() != candidate.id()
    {
        return Err(EditError::Bad(format!(
            "the bot id cannot change (`{}` → `{}`); a renamed bot is a new deployment",
            current.id(),
            candidate.id()
        )));
    }
    let versions = Versions::of(folder);
    if versions.live().is_none() && current.is_some() {
        let fingerprint = crate::flow::bot::fingerprint(folder);
        let before = match versions.list()?.into_iter().next() {
            Some(v) if v.fingerprint == fingerprint => v,
            _ => versions.snapshot("sandbot", "as it was on disk")?,
        };
        versions.set_live(before.number)?;
    }
    write_files(folder, files, true)?;
    let meta = versions.snapshot(author, message)?;
    let bot = Bot::load(folder).map_err(EditError::Invalid)?;
    Ok((meta, bot))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLOW: &str = "blocks:\n  - { id: intro, system: introduction, type: action, code: a.js }\n  - { id: nu, system: notUnderstood, type: message, messages: [{ text: NU }] }\n  - { id: err, system: errorOccurred, type: message, messages: [{ text: E }] }\n  - { id: off, system: botDisabled, type: message, messages: [{ text: O }] }\n";

    fn bot() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::create_dir_all(dir.join("flows")).unwrap();
        std::fs::create_dir_all(dir.join("actions")).unwrap();
        std::fs::write(dir.join("bot.yaml"), "id: b\nname: B\n").unwrap();
        std::fs::write(dir.join("flows/main.yaml"), FLOW).unwrap();
        std::fs::write(dir.join("actions/a.js"), "say('one');").unwrap();
        tmp
    }

    #[test]
    fn writable_paths() {
        for ok in [
            "bot.yaml",
            "flows/main.yaml",
            "flows/x-1.yml",
            "actions/a_b.js",
        ] {
            assert!(writable(ok), "{ok}");
        }
        for bad in [
            "plugins/p.wasm",
            "actions/../bot.yaml",
            "actions/.js",
            "actions/a.ts",
            "flows/sub/x.yaml",
            "/etc/passwd",
            ".sandbot/LIVE",
            "actions/a b.js",
        ] {
            assert!(!writable(bad), "{bad}");
        }
    }

    #[test]
    fn a_save_keeps_live_and_a_refused_save_changes_nothing() {
        if let Err(p) = crate::flow::Bot::load(bot().path()) {
            panic!("the fixture must load: {p}");
        }
        let tmp = bot();
        let dir = tmp.path();
        let change = |t: &str| vec![("actions/a.js".to_string(), Some(t.to_string()))];
        let (v, _) = save(dir, &change("say('two');"), "ann", "second").unwrap();
        let versions = Versions::of(dir);
        // Version 1 is the folder as it was, published; 2 the save.
        assert_eq!(v.number, 2);
        assert_eq!(versions.live(), Some(1));
        assert_eq!(versions.files(1).unwrap()["actions/a.js"], b"say('one');");
        assert_eq!(
            std::fs::read(dir.join("actions/a.js")).unwrap(),
            b"say('two');"
        );
        // A syntax error: refused with the problem, nothing written.
        let e = save(dir, &change("say('three';"), "ann", "broken")
            .err()
            .unwrap();
        assert!(
            matches!(&e, EditError::Invalid(p) if p.to_string().contains("actions/a.js")),
            "{e}"
        );
        assert_eq!(
            std::fs::read(dir.join("actions/a.js")).unwrap(),
            b"say('two');"
        );
        assert_eq!(versions.list().unwrap().len(), 2);
        // A path outside the bot's files.
        let e = save(dir, &[("../x.js".into(), Some("1".into()))], "ann", "x")
            .err()
            .unwrap();
        assert!(matches!(e, EditError::Bad(_)), "{e}");
        // Publish the folder: version 2 (no new one), then restore 1.
        let (p, live) = publish(dir, "ann", "go").unwrap();
        assert_eq!(p.number, 2);
        assert_eq!(live.scripts["a.js"].as_ref(), "say('two');");
        let (r, _) = restore(dir, 1, "bob").unwrap();
        assert_eq!((r.number, r.message.as_str()), (3, "restored version 1"));
        assert_eq!(
            std::fs::read(dir.join("actions/a.js")).unwrap(),
            b"say('one');"
        );
        assert_eq!(versions.live(), Some(2));
        assert!(matches!(restore(dir, 9, "bob"), Err(EditError::Bad(_))));
    }
}
