//! What the last run of a node left behind. A node's data folder keeps the
//! name its last `sandbot serve` had in the shared database (`node`), under
//! a lock only one running process holds (`node.lock`, released by the
//! kernel when the process ends, however it ends). A node starting there
//! takes the lock, so the run before it is gone, and can give up at once
//! what that run still held — its conversations' leases, its deliveries'
//! claims — instead of leaving them until they run out (`leaseSeconds`):
//! a node killed and started again goes on with its conversations in the
//! time it takes to start, not half a minute later.
//!
//! Nodes that share a data folder (one volume for several) find it locked
//! by another running node: they neither take over nor record anything,
//! and a node of theirs that dies leaves its leases until they run out.
//!
//! Giving a lease up early is safe even when the name is wrong (a data
//! folder copied from a node still running): the next turn on that
//! conversation takes the lease with a new epoch, which fences the other
//! process's commit, as when its lease runs out.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The data folder's lock, held while the process runs, and the name of
/// the run before.
#[derive(Debug)]
pub struct Predecessor {
    _lock: File,
    name_file: PathBuf,
    name: Option<String>,
}

impl Predecessor {
    /// Takes `data`'s lock (creating the folder); `None` when another
    /// running process holds it.
    pub fn take(data: &Path) -> anyhow::Result<Option<Self>> {
        std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
        let path = data.join("node.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()));
            }
        }
        let name_file = data.join("node");
        let name = std::fs::read_to_string(&name_file)
            .ok()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty());
        Ok(Some(Self {
            _lock: lock,
            name_file,
            name,
        }))
    }

    /// The name the last run on this data folder had, if it recorded one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Records `name`, this run's, for the next.
    pub fn record(&self, name: &str) -> anyhow::Result<()> {
        let new = self.name_file.with_extension("new");
        std::fs::write(&new, format!("{name}\n"))
            .and_then(|()| std::fs::rename(&new, &self.name_file))
            .with_context(|| format!("writing {}", self.name_file.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_run_s_name_is_kept_for_the_one_node_holding_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = Predecessor::take(&data).unwrap().unwrap();
        assert_eq!(first.name(), None, "a new folder has no predecessor");
        first.record("node-aaa").unwrap();
        // Another node running on the same folder (here: another open file
        // description) does not get it.
        assert!(Predecessor::take(&data).unwrap().is_none());
        drop(first);
        let second = Predecessor::take(&data).unwrap().unwrap();
        assert_eq!(second.name(), Some("node-aaa"));
        second.record("node-bbb").unwrap();
        drop(second);
        let third = Predecessor::take(&data).unwrap().unwrap();
        assert_eq!(third.name(), Some("node-bbb"));
    }
}
