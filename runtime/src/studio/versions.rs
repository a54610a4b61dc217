//! A bot folder's versions: every save (and every publish of a changed
//! folder) is a numbered snapshot of the bot's files with its author, time
//! and message, under `.sandbot/versions/N/` in the folder itself; the
//! published one is named in `.sandbot/LIVE`. The folder stays the DRAFT a
//! git user edits; LIVE is served from its snapshot, so a conversation on
//! LIVE never sees an unpublished change. Until something is published, LIVE
//! is the folder (as before versions existed).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::flow::bot::bot_files;

/// Where a version's metadata and files are kept, inside the bot folder.
const ROOT: &str = ".sandbot";

/// One saved version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionMeta {
    pub number: u64,
    pub author: String,
    pub message: String,
    pub at_ms: u64,
    /// The bot's fingerprint (`Bot::fingerprint`) of these files.
    pub fingerprint: String,
}

/// The files of a bot: relative path → bytes.
pub type Files = BTreeMap<String, Vec<u8>>;

/// The versions of the bot in `folder`.
pub struct Versions {
    folder: PathBuf,
}

impl Versions {
    pub fn of(folder: &Path) -> Self {
        Self {
            folder: folder.to_path_buf(),
        }
    }

    fn root(&self) -> PathBuf {
        self.folder.join(ROOT)
    }

    fn version_dir(&self, n: u64) -> PathBuf {
        self.root().join("versions").join(format!("{n:06}"))
    }

    /// The folder a version's bot files are in (what LIVE loads).
    pub fn bot_dir(&self, n: u64) -> PathBuf {
        self.version_dir(n).join("bot")
    }

    /// Every version, newest first.
    pub fn list(&self) -> io::Result<Vec<VersionMeta>> {
        let dir = self.root().join("versions");
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut all = Vec::new();
        for entry in entries {
            let entry = entry?;
            let Some(n) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            if let Some(meta) = self.get(n)? {
                all.push(meta);
            }
        }
        all.sort_by_key(|v| std::cmp::Reverse(v.number));
        Ok(all)
    }

    /// Version `n`, if it exists (a half-written one does not).
    pub fn get(&self, n: u64) -> io::Result<Option<VersionMeta>> {
        match std::fs::read(self.version_dir(n).join("meta.json")) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The files of version `n`.
    pub fn files(&self, n: u64) -> io::Result<Files> {
        read_files(&self.bot_dir(n))
    }

    /// Keeps the folder's current files as a new version.
    pub fn snapshot(&self, author: &str, message: &str) -> io::Result<VersionMeta> {
        let files = read_files(&self.folder)?;
        let fingerprint = crate::flow::bot::fingerprint(&self.folder);
        std::fs::create_dir_all(self.root().join("versions"))?;
        ignore_in_git(&self.root())?;
        let mut n = self.list()?.first().map_or(1, |v| v.number + 1);
        // Another node sharing the folder may take a number first.
        let dir = loop {
            let dir = self.version_dir(n);
            match std::fs::create_dir(&dir) {
                Ok(()) => break dir,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => n += 1,
                Err(e) => return Err(e),
            }
        };
        write_files(&dir.join("bot"), &files, false)?;
        let meta = VersionMeta {
            number: n,
            author: author.to_string(),
            message: message.to_string(),
            at_ms: crate::store::now_ms(),
            fingerprint,
        };
        // The metadata last: a version without it does not exist.
        write_atomic(
            &dir.join("meta.json"),
            &serde_json::to_vec_pretty(&meta).map_err(io::Error::other)?,
        )?;
        Ok(meta)
    }

    /// The published version, if any.
    pub fn live(&self) -> Option<u64> {
        std::fs::read_to_string(self.root().join("LIVE"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .filter(|n| self.bot_dir(*n).is_dir())
    }

    /// Makes version `n` the published one.
    pub fn set_live(&self, n: u64) -> io::Result<()> {
        if self.get(n)?.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no version {n}"),
            ));
        }
        write_atomic(&self.root().join("LIVE"), format!("{n}\n").as_bytes())
    }

    /// Where LIVE is loaded from: the published version, else the folder.
    pub fn live_dir(&self) -> PathBuf {
        match self.live() {
            Some(n) => self.bot_dir(n),
            None => self.folder.clone(),
        }
    }
}

/// A `.gitignore` that keeps versions out of the user's repository unless
/// they remove it (versions are the server's history, git has its own).
fn ignore_in_git(root: &Path) -> io::Result<()> {
    let path = root.join(".gitignore");
    if !path.exists() {
        std::fs::write(path, "*\n")?;
    }
    Ok(())
}

/// The bot files of `dir` (as `Bot::load` reads them).
pub fn read_files(dir: &Path) -> io::Result<Files> {
    bot_files(dir)
        .into_iter()
        .map(|rel| std::fs::read(dir.join(&rel)).map(|b| (rel, b)))
        .collect()
}

/// Writes `files` into `dir`, each atomically; with `exact`, bot files of
/// `dir` not in `files` are removed.
pub fn write_files(dir: &Path, files: &Files, exact: bool) -> io::Result<()> {
    if exact {
        for rel in bot_files(dir) {
            if !files.contains_key(&rel) {
                std::fs::remove_file(dir.join(&rel))?;
            }
        }
    }
    for (rel, bytes) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if std::fs::read(&path).ok().as_deref() != Some(bytes.as_slice()) {
            write_atomic(&path, bytes)?;
        }
    }
    Ok(())
}

/// Writes a file through a temporary one and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    io::Write::write_all(&mut tmp, bytes)?;
    // A replaced file keeps its permissions; a new one is readable by all
    // (a temporary file is the owner's only).
    let permissions = match std::fs::metadata(path) {
        Ok(m) => m.permissions(),
        Err(_) => {
            #[cfg(unix)]
            {
                std::os::unix::fs::PermissionsExt::from_mode(0o644)
            }
            #[cfg(not(unix))]
            {
                tmp.as_file().metadata()?.permissions()
            }
        }
    };
    tmp.as_file().set_permissions(permissions)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bot(dir: &Path, text: &str) {
        std::fs::create_dir_all(dir.join("flows")).unwrap();
        std::fs::write(dir.join("bot.yaml"), "id: b\nname: B\n").unwrap();
        std::fs::write(dir.join("flows/main.yaml"), text).unwrap();
    }

    #[test]
    fn snapshots_are_numbered_and_live_is_the_published_one() {
        let tmp = tempfile::tempdir().unwrap();
        let v = Versions::of(tmp.path());
        bot(tmp.path(), "blocks: []\n");
        assert_eq!(v.live(), None);
        assert_eq!(v.live_dir(), tmp.path());
        let one = v.snapshot("ann", "first").unwrap();
        bot(tmp.path(), "blocks: [1]\n");
        let two = v.snapshot("bob", "second").unwrap();
        assert_eq!((one.number, two.number), (1, 2));
        assert_ne!(one.fingerprint, two.fingerprint);
        let list = v.list().unwrap();
        assert_eq!(list.iter().map(|m| m.number).collect::<Vec<_>>(), [2, 1]);
        assert_eq!(list[0].author, "bob");
        assert_eq!(v.files(1).unwrap()["flows/main.yaml"], b"blocks: []\n");
        v.set_live(1).unwrap();
        assert_eq!(v.live(), Some(1));
        assert_eq!(v.live_dir(), v.bot_dir(1));
        assert!(v.set_live(9).is_err());
        assert_eq!(v.live(), Some(1));
        // The snapshots are not bot files of the folder.
        assert_eq!(read_files(tmp.path()).unwrap().len(), 2);
    }

    #[test]
    fn exact_writes_remove_other_bot_files_only() {
        let tmp = tempfile::tempdir().unwrap();
        bot(tmp.path(), "blocks: []\n");
        std::fs::create_dir_all(tmp.path().join("actions")).unwrap();
        std::fs::write(tmp.path().join("actions/a.js"), "1").unwrap();
        std::fs::write(tmp.path().join("README.md"), "mine").unwrap();
        let mut files = read_files(tmp.path()).unwrap();
        files.remove("actions/a.js");
        write_files(tmp.path(), &files, true).unwrap();
        assert!(!tmp.path().join("actions/a.js").exists());
        assert!(tmp.path().join("README.md").exists());
    }
}
