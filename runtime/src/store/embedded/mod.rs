//! The embedded store: redb files in the data folder, no set-up. Each
//! conversation lives in one part (`layout.rs`), and each part has one writer
//! thread that group-commits its turns (`part.rs`), so the commit path uses
//! as many cores as the store has parts. What is not a conversation's (usage,
//! failures kept for replay, the part count) lives in part 0.

mod copy;
mod layout;
mod outbox;
mod part;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::Value;

use super::inbox::{INBOX, SEEN};
use super::outcomes::OUTCOMES;
use super::sizes::{self, Growth, SIZES};
use super::{
    Backlog, CommitFuture, ConversationState, DeadLetter, Delivery, EnqueueFuture, InboxEntry,
    KeptOutcome, Queued, Store, StoreError, TranscriptEntry, TurnCommit, now_ms,
};
pub use copy::Copied;
pub use layout::{MAX_PARTS, default_parts};
use part::{Encoded, EncodedEntry, Op, Part, Shared};

/// `bot \0 conversation` → ConversationState (JSON).
const CONVERSATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("conversations");
/// (`bot \0 conversation`, seq) → TranscriptEntry (JSON).
const TRANSCRIPTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("transcripts");
/// `bot \0 id` → postback target (JSON).
const POSTBACKS: TableDefinition<&str, &[u8]> = TableDefinition::new("postbacks");
/// Conversation key → when its *Silence detected* event is due.
const SILENCE: TableDefinition<&str, u64> = TableDefinition::new("silence");

/// Delivery id → Delivery (JSON): the durable outbound queue.
pub(super) const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");

pub struct EmbeddedStore {
    /// A conversation's part is `layout::home` of its key.
    parts: Vec<Part>,
    ttl: Duration,
    /// This run's key for its usage rows, and the figures last written.
    run: String,
    recorded: std::sync::Mutex<Vec<(String, String, Value)>>,
}

/// A fresh id for this run's usage rows.
fn run_id() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the OS random source");
    hex::encode(bytes)
}

pub(super) fn key(bot: &str, conversation: &str) -> String {
    format!("{bot}\0{conversation}")
}

impl EmbeddedStore {
    /// Opens (or creates, with one part) the store at `path`. Sessions idle
    /// longer than `ttl` expire.
    pub fn open(path: &Path, ttl: Duration) -> Result<Self, StoreError> {
        Self::open_parts(path, ttl, None, 1)
    }

    /// Opens the store at `path`, or creates it with `parts` parts (`new`
    /// if `None`). An existing store keeps the count it was created with; a
    /// `parts` that differs from it is refused.
    pub fn open_parts(
        path: &Path,
        ttl: Duration,
        parts: Option<usize>,
        new: usize,
    ) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(StoreError::new)?;
        }
        let first = part::create(path)?;
        let tx = first.begin_write().map_err(StoreError::new)?;
        // New: no tables yet (also a creation cut short before its count
        // was recorded).
        let created = tx.list_tables().map_err(StoreError::new)?.next().is_none();
        let count = layout::parts(&tx, created, parts, new, path).map_err(StoreError::new)?;
        let mut dbs = vec![first];
        for index in 1..count {
            let file = layout::part_path(path, index);
            if !created && !file.exists() {
                return Err(StoreError::new(format!(
                    "{} is missing: the store at {} has {count} parts and each holds its own conversations (restore the file from a backup)",
                    file.display(),
                    path.display()
                )));
            }
            dbs.push(part::create(&file)?);
        }
        // The count is recorded once every part's file exists.
        tx.commit().map_err(StoreError::new)?;
        let shared = Shared::default();
        let mut opened = Vec::with_capacity(count);
        for (index, db) in dbs.into_iter().enumerate() {
            opened.push(Part::start(db, index, count, &shared)?);
        }
        Ok(Self {
            parts: opened,
            ttl,
            run: run_id(),
            recorded: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// How many parts (files and writers) the store has.
    pub fn part_count(&self) -> usize {
        self.parts.len()
    }

    /// For tests of failed commits: the next batch of the writer of
    /// conversation `bot`/`conversation` does all its writes, then fails
    /// instead of committing (as a full disk would).
    #[doc(hidden)]
    pub fn fail_next_write(&self, bot: &str, conversation: &str) {
        self.home(bot, conversation)
            .fail_next
            .store(true, Ordering::SeqCst);
    }

    /// Part 0: what is not a conversation's.
    fn main(&self) -> &Part {
        &self.parts[0]
    }

    fn home(&self, bot: &str, conversation: &str) -> &Part {
        self.home_of(&key(bot, conversation))
    }

    fn home_of(&self, key: &str) -> &Part {
        &self.parts[layout::home(key, self.parts.len())]
    }

    /// The part a delivery (or dead letter) id belongs to.
    fn part_of_delivery(&self, id: u64) -> usize {
        (id % self.parts.len() as u64) as usize
    }

    fn expired(&self, state: &ConversationState) -> bool {
        now_ms().saturating_sub(state.updated_ms) > self.ttl.as_millis() as u64
    }
}

#[async_trait::async_trait]
impl Store for EmbeddedStore {
    async fn load(
        &self,
        bot: &str,
        conversation: &str,
    ) -> Result<Option<ConversationState>, StoreError> {
        let tx = self
            .home(bot, conversation)
            .db
            .begin_read()
            .map_err(StoreError::new)?;
        let table = tx.open_table(CONVERSATIONS).map_err(StoreError::new)?;
        let Some(bytes) = table
            .get(key(bot, conversation).as_str())
            .map_err(StoreError::new)?
        else {
            return Ok(None);
        };
        let state: ConversationState =
            serde_json::from_slice(bytes.value()).map_err(StoreError::new)?;
        Ok((!self.expired(&state)).then_some(state))
    }

    fn commit(&self, commit: TurnCommit) -> CommitFuture {
        match Encoded::new(&commit) {
            Ok(encoded) => self
                .home_of(&encoded.key)
                .write(|done| Op::Commit(encoded, done)),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn enqueue(&self, entry: InboxEntry, backlog: Backlog) -> EnqueueFuture {
        let bytes = match serde_json::to_vec(&entry) {
            Ok(b) => b,
            Err(e) => return Box::pin(async move { Err(StoreError::new(e)) }),
        };
        let encoded = EncodedEntry {
            key: key(&entry.bot, &entry.conversation),
            tenant: entry.tenant,
            dedupe: entry.dedupe,
            bytes,
        };
        self.home_of(&encoded.key)
            .write(|done| Op::Enqueue(encoded, backlog, done))
    }

    /// One process owns the file: its dispatcher runs a conversation's turns
    /// one at a time, so the lease is always this process's.
    async fn lease(&self, _: &str, _: &str, _: Duration) -> Result<Option<u64>, StoreError> {
        Ok(Some(0))
    }

    async fn release(&self, bot: &str, conversation: &str, _: u64) -> Result<bool, StoreError> {
        Ok(self.inbox_next(bot, conversation).await?.is_some())
    }

    async fn record_usage(&self, figures: &[(String, String, Value)]) -> Result<(), StoreError> {
        let mut recorded = self.recorded.lock().expect("not poisoned");
        if figures.is_empty() || *recorded == figures {
            return Ok(());
        }
        super::usage::record(&self.main().db, &self.run, figures)?;
        *recorded = figures.to_vec();
        Ok(())
    }

    async fn usage(&self, tenant: &str) -> Result<Option<Vec<(String, Value)>>, StoreError> {
        super::usage::read(&self.main().db, tenant).map(Some)
    }

    async fn put_reply(&self, _: &str, _: &Value) -> Result<(), StoreError> {
        Ok(())
    }

    async fn take_reply(&self, _: &str) -> Result<Option<Value>, StoreError> {
        Ok(None)
    }

    async fn keep_outcome(
        &self,
        bot: &str,
        conversation: &str,
        kept: &str,
        outcome: &Value,
    ) -> Result<(), StoreError> {
        let db = &self.home(bot, conversation).db;
        super::outcomes::put(db, kept, outcome, now_ms())
    }

    async fn kept_outcome(
        &self,
        bot: &str,
        conversation: &str,
        kept: &str,
    ) -> Result<KeptOutcome, StoreError> {
        let k = key(bot, conversation);
        super::outcomes::get(&self.home_of(&k).db, &k, kept)
    }

    async fn count_request(&self, _: &str, _: u64) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        for part in &self.parts {
            part.db.begin_read().map(drop).map_err(StoreError::new)?;
        }
        Ok(())
    }

    async fn put_failure(
        &self,
        f: super::StoredFailure,
        bounds: super::FailureBounds,
    ) -> Result<(), StoreError> {
        super::failures::put(&self.main().db, &f, bounds)
    }

    async fn failures(
        &self,
        tenant: &str,
        bots: &[String],
        since_ms: u64,
        limit: usize,
    ) -> Result<Vec<Value>, StoreError> {
        super::failures::list(&self.main().db, tenant, bots, since_ms, limit)
    }

    async fn failure(&self, tenant: &str, id: &str) -> Result<Option<Value>, StoreError> {
        super::failures::get(&self.main().db, tenant, id)
    }

    async fn silence_due(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<(String, String, u64)>, StoreError> {
        let mut due = Vec::new();
        for part in &self.parts {
            let tx = part.db.begin_read().map_err(StoreError::new)?;
            let table = tx.open_table(SILENCE).map_err(StoreError::new)?;
            for item in table.iter().map_err(StoreError::new)? {
                if due.len() == limit {
                    return Ok(due);
                }
                let (k, at) = item.map_err(StoreError::new)?;
                if at.value() <= now_ms
                    && let Some((bot, conv)) = k.value().split_once('\0')
                {
                    due.push((bot.to_string(), conv.to_string(), at.value()));
                }
            }
        }
        Ok(due)
    }

    fn inbox_discard(&self, bot: &str, conversation: &str, id: u64) -> CommitFuture {
        let k = key(bot, conversation);
        self.home_of(&k).write(|done| Op::Discard(k, id, done))
    }

    async fn inbox_next(
        &self,
        bot: &str,
        conversation: &str,
    ) -> Result<Option<InboxEntry>, StoreError> {
        let k = key(bot, conversation);
        let tx = self.home_of(&k).db.begin_read().map_err(StoreError::new)?;
        let table = tx.open_table(INBOX).map_err(StoreError::new)?;
        let mut range = table
            .range((k.as_str(), 0)..=(k.as_str(), u64::MAX))
            .map_err(StoreError::new)?;
        match range.next() {
            Some(item) => {
                let (k, v) = item.map_err(StoreError::new)?;
                let mut entry: InboxEntry =
                    serde_json::from_slice(v.value()).map_err(StoreError::new)?;
                entry.id = k.value().1;
                Ok(Some(entry))
            }
            None => Ok(None),
        }
    }

    async fn inbox_conversations(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut out: Vec<(String, String)> = Vec::new();
        for part in &self.parts {
            let tx = part.db.begin_read().map_err(StoreError::new)?;
            let table = tx.open_table(INBOX).map_err(StoreError::new)?;
            for item in table.iter().map_err(StoreError::new)? {
                let (k, _) = item.map_err(StoreError::new)?;
                if let Some((bot, conv)) = k.value().0.split_once('\0')
                    && out.last().is_none_or(|(b, c)| b != bot || c != conv)
                {
                    out.push((bot.to_string(), conv.to_string()));
                }
            }
        }
        Ok(out)
    }

    async fn inbox_unheld(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(Vec::new())
    }

    /// Reads every part's inbox keys and outbox rows (the outbox's bot is
    /// in its value): at a scrape, not on a message's path.
    async fn queued(&self) -> Result<BTreeMap<String, Queued>, StoreError> {
        #[derive(serde::Deserialize)]
        struct Of {
            bot: String,
        }
        /// The one field of an `InboxEntry` read here.
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Accepted {
            accepted_ms: u64,
        }
        let mut out: BTreeMap<String, Queued> = BTreeMap::new();
        for part in &self.parts {
            let tx = part.db.begin_read().map_err(StoreError::new)?;
            let inbox = tx.open_table(INBOX).map_err(StoreError::new)?;
            // Per conversation, entries in order: its first is its oldest.
            let mut conversation = String::new();
            for item in inbox.iter().map_err(StoreError::new)? {
                let (k, v) = item.map_err(StoreError::new)?;
                let Some((bot, _)) = k.value().0.split_once('\0') else {
                    continue;
                };
                let q = out.entry(bot.to_string()).or_default();
                q.inbox += 1;
                if k.value().0 != conversation {
                    conversation = k.value().0.to_string();
                    let a: Accepted = serde_json::from_slice(v.value()).map_err(StoreError::new)?;
                    q.add(&Queued {
                        oldest_ms: Some(a.accepted_ms),
                        ..Queued::default()
                    });
                }
            }
            let outbox = tx.open_table(OUTBOX).map_err(StoreError::new)?;
            for item in outbox.iter().map_err(StoreError::new)? {
                let (_, v) = item.map_err(StoreError::new)?;
                let of: Of = serde_json::from_slice(v.value()).map_err(StoreError::new)?;
                out.entry(of.bot).or_default().outbox += 1;
            }
        }
        Ok(out)
    }

    /// A postback id is kept in its conversation's part: any part may hold it.
    async fn postback(&self, bot: &str, id: &str) -> Result<Option<Value>, StoreError> {
        let k = key(bot, id);
        for part in &self.parts {
            let tx = part.db.begin_read().map_err(StoreError::new)?;
            let table = tx.open_table(POSTBACKS).map_err(StoreError::new)?;
            if let Some(bytes) = table.get(k.as_str()).map_err(StoreError::new)? {
                return Ok(Some(
                    serde_json::from_slice(bytes.value()).map_err(StoreError::new)?,
                ));
            }
        }
        Ok(None)
    }

    async fn transcript(
        &self,
        bot: &str,
        conversation: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<TranscriptEntry>, StoreError> {
        let k = key(bot, conversation);
        let tx = self.home_of(&k).db.begin_read().map_err(StoreError::new)?;
        let table = tx.open_table(TRANSCRIPTS).map_err(StoreError::new)?;
        let range = table
            .range((k.as_str(), from)..=(k.as_str(), u64::MAX))
            .map_err(StoreError::new)?;
        let mut out = Vec::new();
        for item in range.take(limit) {
            let (_, v) = item.map_err(StoreError::new)?;
            out.push(serde_json::from_slice(v.value()).map_err(StoreError::new)?);
        }
        Ok(out)
    }

    async fn conversations(
        &self,
        bot: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let prefix = format!("{bot}\0");
        let start = match after {
            Some(a) => format!("{prefix}{a}\0"),
            None => prefix.clone(),
        };
        // Each part's first `limit` after `after`, merged in name order.
        let mut out = Vec::new();
        for part in &self.parts {
            let tx = part.db.begin_read().map_err(StoreError::new)?;
            let table = tx.open_table(CONVERSATIONS).map_err(StoreError::new)?;
            let mut taken = 0;
            for item in table.range(start.as_str()..).map_err(StoreError::new)? {
                let (k, v) = item.map_err(StoreError::new)?;
                let Some(conv) = k.value().strip_prefix(&prefix) else {
                    break;
                };
                let state: ConversationState =
                    serde_json::from_slice(v.value()).map_err(StoreError::new)?;
                if !self.expired(&state) {
                    out.push(conv.to_string());
                    taken += 1;
                    if taken == limit {
                        break;
                    }
                }
            }
        }
        out.sort_unstable();
        out.truncate(limit);
        Ok(out)
    }

    async fn delete(&self, bot: &str, conversation: &str) -> Result<bool, StoreError> {
        let k = key(bot, conversation);
        Ok(remove_conversations(self.home_of(&k), &[k])? == 1)
    }

    async fn stored_bytes(&self, bots: &[String]) -> Result<u64, StoreError> {
        let mut total = 0;
        for part in &self.parts {
            total += sizes::read(&part.db, bots).map_err(StoreError::new)?;
        }
        Ok(total)
    }

    async fn outbox(&self, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.outbox_items(limit)
    }

    async fn outbox_dead(&self, dead: &[(u64, u32, String)]) -> Result<(), StoreError> {
        self.bury(dead)
    }

    async fn dead_letters(
        &self,
        bots: &[String],
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        self.dead_items(bots, limit)
    }

    async fn requeue(&self, bots: &[String], id: u64) -> Result<bool, StoreError> {
        self.revive(bots, id)
    }

    async fn outbox_settle(
        &self,
        done: &[u64],
        retry: &[(u64, u32, u64)],
    ) -> Result<(), StoreError> {
        if done.is_empty() && retry.is_empty() {
            return Ok(());
        }
        // Each id to the writer of its part, all parts at once.
        let n = self.parts.len();
        let mut done_of = vec![Vec::new(); n];
        let mut retry_of = vec![Vec::new(); n];
        for id in done {
            done_of[self.part_of_delivery(*id)].push(*id);
        }
        for r in retry {
            retry_of[self.part_of_delivery(r.0)].push(*r);
        }
        let waits: Vec<_> = done_of
            .into_iter()
            .zip(retry_of)
            .enumerate()
            .filter(|(_, (d, r))| !d.is_empty() || !r.is_empty())
            .map(|(i, (d, r))| self.parts[i].write(|reply| Op::Settle(d, r, reply)))
            .collect();
        for wait in waits {
            wait.await?;
        }
        Ok(())
    }

    async fn purge_expired(&self) -> Result<usize, StoreError> {
        let mut purged = 0;
        for part in &self.parts {
            let mut expired: Vec<String> = Vec::new();
            {
                let tx = part.db.begin_read().map_err(StoreError::new)?;
                let table = tx.open_table(CONVERSATIONS).map_err(StoreError::new)?;
                for item in table.iter().map_err(StoreError::new)? {
                    let (k, v) = item.map_err(StoreError::new)?;
                    let state: ConversationState =
                        serde_json::from_slice(v.value()).map_err(StoreError::new)?;
                    if self.expired(&state) {
                        expired.push(k.value().to_string());
                    }
                }
            }
            // In transactions of a few hundred: the part's writer waits
            // for each, not for the whole purge.
            for chunk in expired.chunks(256) {
                purged += remove_conversations(part, chunk)?;
            }
        }
        Ok(purged)
    }

    async fn purge_seen(&self, before_ms: u64) -> Result<usize, StoreError> {
        let mut purged = 0;
        for part in &self.parts {
            purged += purge_before(&part.db, SEEN, |at| at, before_ms)?;
            purge_before(&part.db, OUTCOMES, |(at, _)| at, before_ms)?;
        }
        Ok(purged)
    }
}

/// Deletes the rows of `def` whose time (`at` of the value, ms) is before
/// `before_ms`: found in a read, deleted in write transactions of a few
/// thousand (the part's writer waits for each, not for the whole purge);
/// returns how many.
fn purge_before<V: redb::Value + 'static>(
    db: &redb::Database,
    def: TableDefinition<&str, V>,
    at: impl for<'a> Fn(V::SelfType<'a>) -> u64,
    before_ms: u64,
) -> Result<usize, StoreError> {
    let mut old: Vec<String> = Vec::new();
    {
        let tx = db.begin_read().map_err(StoreError::new)?;
        let table = tx.open_table(def).map_err(StoreError::new)?;
        for item in table.iter().map_err(StoreError::new)? {
            let (k, v) = item.map_err(StoreError::new)?;
            if at(v.value()) < before_ms {
                old.push(k.value().to_string());
            }
        }
    }
    for chunk in old.chunks(4096) {
        let tx = db.begin_write().map_err(StoreError::new)?;
        {
            let mut table = tx.open_table(def).map_err(StoreError::new)?;
            for k in chunk {
                table.remove(k.as_str()).map_err(StoreError::new)?;
            }
        }
        tx.commit().map_err(StoreError::new)?;
    }
    Ok(old.len())
}

/// Deletes conversations `keys` of `part` (state, transcript, silence
/// timer) in one transaction, their bytes off the part's totals; returns how
/// many existed.
fn remove_conversations(part: &Part, keys: &[String]) -> Result<usize, StoreError> {
    let tx = part.db.begin_write().map_err(StoreError::new)?;
    let mut existed = 0;
    {
        let mut conversations = tx.open_table(CONVERSATIONS).map_err(StoreError::new)?;
        let mut transcripts = tx.open_table(TRANSCRIPTS).map_err(StoreError::new)?;
        let mut silence = tx.open_table(SILENCE).map_err(StoreError::new)?;
        let mut growth = Growth::default();
        for k in keys {
            let mut held = 0;
            transcripts
                .retain_in((k.as_str(), 0)..=(k.as_str(), u64::MAX), |_, v| {
                    held += v.len();
                    false
                })
                .map_err(StoreError::new)?;
            silence.remove(k.as_str()).map_err(StoreError::new)?;
            let state = conversations
                .remove(k.as_str())
                .map_err(StoreError::new)?
                .map(|v| v.value().len());
            existed += usize::from(state.is_some());
            let bot = k.split('\0').next().unwrap_or_default();
            growth.change(bot, held + state.unwrap_or(0), 0);
        }
        growth
            .apply(&mut tx.open_table(SIZES).map_err(StoreError::new)?)
            .map_err(StoreError::new)?;
    }
    tx.commit().map_err(StoreError::new)?;
    Ok(existed)
}
