//! A copy of an embedded store into a new file with another part count
//! (`sandbot store copy`): every conversation goes to its part under the new
//! count, with its session, transcript, silence timer, waiting inbox entries
//! (ids kept), and queued deliveries and dead letters (renumbered for their
//! new part, in their old order). Message ids seen and the outcomes kept for
//! retries are copied to every part (a retry may now land in any); postback
//! ids, usage and failures go to part 0. The source is only read; the copy
//! is written in one transaction per part, so a copy that fails leaves
//! nothing to trust (delete it).

use std::path::Path;

use redb::{
    Key, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, TableError, Value,
    WriteTransaction,
};

use super::super::failures::FAILURES;
use super::super::inbox::{INBOX, SEEN};
use super::super::outcomes::OUTCOMES;
use super::super::usage::USAGE;
use super::super::{DeadLetter, Delivery, StoreError, sizes};
use super::outbox::DEAD;
use super::{
    CONVERSATIONS, EmbeddedStore, MAX_PARTS, OUTBOX, POSTBACKS, SILENCE, TRANSCRIPTS, layout, part,
};

/// What a copy holds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Copied {
    pub parts: usize,
    pub conversations: usize,
    pub inbox: usize,
    pub deliveries: usize,
    pub dead_letters: usize,
}

/// Where a row goes: one part, or every part.
enum To {
    Part(usize),
    All,
}

/// Copies `def` from `from` into the parts `to` picks for each key; returns
/// the rows read. A table the source never made is empty.
fn copy_table<K: Key + 'static, V: Value + 'static>(
    from: &ReadTransaction,
    def: TableDefinition<K, V>,
    into: &[WriteTransaction],
    to: impl Fn(&K::SelfType<'_>) -> To,
) -> Result<usize, StoreError> {
    let table = match from.open_table(def) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(StoreError::new(e)),
    };
    let mut outs = into
        .iter()
        .map(|tx| tx.open_table(def))
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::new)?;
    let mut rows = 0;
    for item in table.iter().map_err(StoreError::new)? {
        let (k, v) = item.map_err(StoreError::new)?;
        let key = k.value();
        let targets = match to(&key) {
            To::Part(i) => i..i + 1,
            To::All => 0..outs.len(),
        };
        for i in targets {
            outs[i].insert(&key, v.value()).map_err(StoreError::new)?;
        }
        rows += 1;
    }
    Ok(rows)
}

impl EmbeddedStore {
    /// Copies this store into a new store at `to` with `parts` parts.
    pub fn copy_to(&self, to: &Path, parts: usize) -> Result<Copied, StoreError> {
        if !(1..=MAX_PARTS).contains(&parts) {
            return Err(StoreError::new(format!(
                "the copy's parts must be between 1 and {MAX_PARTS} (got {parts})"
            )));
        }
        let files: Vec<_> = (0..parts).map(|i| layout::part_path(to, i)).collect();
        if let Some(f) = files.iter().find(|f| f.exists()) {
            return Err(StoreError::new(format!(
                "{} already exists: the copy goes to a folder without a store",
                f.display()
            )));
        }
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).map_err(StoreError::new)?;
        }
        let dbs = files
            .iter()
            .map(|f| part::create(f))
            .collect::<Result<Vec<_>, _>>()?;
        let into = dbs
            .iter()
            .map(|db| db.begin_write())
            .collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::new)?;
        layout::parts(&into[0], true, Some(parts), parts, to).map_err(StoreError::new)?;
        let home = |key: &str| To::Part(layout::home(key, parts));
        let mut copied = Copied {
            parts,
            ..Copied::default()
        };
        // Deliveries and dead letters of every part, renumbered below.
        let mut queued: Vec<(u64, bool, Vec<u8>)> = Vec::new();
        for (index, source) in self.parts.iter().enumerate() {
            let from = source.db.begin_read().map_err(StoreError::new)?;
            copied.conversations += copy_table(&from, CONVERSATIONS, &into, |k| home(k))?;
            copy_table(&from, TRANSCRIPTS, &into, |k| home(k.0))?;
            copy_table(&from, SILENCE, &into, |k| home(k))?;
            copied.inbox += copy_table(&from, INBOX, &into, |k| home(k.0))?;
            copy_table(&from, POSTBACKS, &into, |_| To::Part(0))?;
            copy_table(&from, SEEN, &into, |_| To::All)?;
            copy_table(&from, OUTCOMES, &into, |_| To::All)?;
            if index == 0 {
                copy_table(&from, USAGE, &into, |_| To::Part(0))?;
                copy_table(&from, FAILURES, &into, |_| To::Part(0))?;
            }
            for (def, dead) in [(OUTBOX, false), (DEAD, true)] {
                let table = from.open_table(def).map_err(StoreError::new)?;
                for item in table.iter().map_err(StoreError::new)? {
                    let (k, v) = item.map_err(StoreError::new)?;
                    queued.push((k.value(), dead, v.value().to_vec()));
                }
            }
        }
        // In their old order, each to its conversation's new part under the
        // next id of that part (ids of part `i` are `i` modulo `parts`).
        queued.sort_unstable_by_key(|q| q.0);
        let mut next: Vec<u64> = (0..parts as u64)
            .map(|i| if i == 0 { parts as u64 } else { i })
            .collect();
        for (_, dead, bytes) in queued {
            let (delivery, letter) = if dead {
                let l: DeadLetter = serde_json::from_slice(&bytes).map_err(StoreError::new)?;
                (l.delivery.clone(), Some(l))
            } else {
                let d: Delivery = serde_json::from_slice(&bytes).map_err(StoreError::new)?;
                (d, None)
            };
            let part = layout::home(&super::key(&delivery.bot, &delivery.conversation), parts);
            let id = next[part];
            next[part] += parts as u64;
            let (def, bytes) = match letter {
                Some(mut l) => {
                    l.delivery.id = id;
                    copied.dead_letters += 1;
                    (DEAD, serde_json::to_vec(&l).map_err(StoreError::new)?)
                }
                None => {
                    copied.deliveries += 1;
                    (OUTBOX, bytes)
                }
            };
            into[part]
                .open_table(def)
                .map_err(StoreError::new)?
                .insert(id, bytes.as_slice())
                .map_err(StoreError::new)?;
        }
        for tx in into {
            // Counted from the copied conversations and transcripts.
            sizes::open(&tx, CONVERSATIONS, TRANSCRIPTS).map_err(StoreError::new)?;
            tx.commit().map_err(StoreError::new)?;
        }
        Ok(copied)
    }
}
