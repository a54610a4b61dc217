//! The embedded store: one redb file. Commits go through one writer thread
//! that batches the turns waiting at that moment into one durable
//! transaction (group commit), so many conversations share each fsync.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::Value;
use tokio::sync::oneshot;

use std::future::Future;
use std::pin::Pin;

use super::inbox::{self, Counts, INBOX, SEEN};
use super::outbox::{self, DEAD};
use super::sizes::{self, Growth, SIZES};
use super::{
    Accepted, Backlog, CommitFuture, ConversationState, DeadLetter, Delivery, EnqueueFuture,
    InboxEntry, Store, StoreError, TranscriptEntry, TurnCommit, now_ms,
};

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

/// Writes committed together at most.
const MAX_BATCH: usize = 512;

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// A turn's commit, serialized on the caller's thread so the one writer
/// thread only inserts (the commit path's CPU spreads over the workers).
struct Encoded {
    key: String,
    bot: String,
    state: Vec<u8>,
    transcript: Vec<(u64, Vec<u8>)>,
    postbacks: Vec<(String, Vec<u8>)>,
    /// Deliveries without their id (the key is the id).
    outbox: Vec<Vec<u8>>,
    entry: Option<u64>,
    silence_due_ms: Option<u64>,
}

impl Encoded {
    fn new(c: &TurnCommit) -> Result<Self, StoreError> {
        Ok(Self {
            key: key(&c.bot, &c.conversation),
            bot: c.bot.clone(),
            state: json(&c.state)?,
            transcript: c
                .transcript
                .iter()
                .map(|e| Ok((e.seq, json(e)?)))
                .collect::<Result<_, StoreError>>()?,
            postbacks: c
                .postbacks
                .iter()
                .map(|(id, t)| Ok((id.clone(), json(t)?)))
                .collect::<Result<_, StoreError>>()?,
            outbox: c
                .outbox
                .iter()
                .map(json)
                .collect::<Result<_, StoreError>>()?,
            entry: c.inbox.and_then(|claim| claim.entry),
            silence_due_ms: c.state.silence_due_ms,
        })
    }
}

/// An inbound message, serialized on the caller's thread (id 0: the key is the id).
struct EncodedEntry {
    key: String,
    tenant: String,
    dedupe: Option<String>,
    bytes: Vec<u8>,
}

fn json(v: &impl serde::Serialize) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(StoreError::new)
}

/// A write for the writer thread.
enum Op {
    Commit(Encoded, Reply<()>),
    Enqueue(EncodedEntry, Backlog, Reply<Accepted>),
    Discard(String, u64, Reply<()>),
    /// Delivery outcomes: (delivered or given up, (id, attempts, not before)).
    Settle(Vec<u64>, Vec<(u64, u32, u64)>, Reply<()>),
}

pub struct EmbeddedStore {
    db: Arc<Database>,
    /// `None` once closing.
    writer: Option<mpsc::Sender<Op>>,
    thread: Option<std::thread::JoinHandle<()>>,
    ttl: Duration,
    /// This run's key for its usage rows, and the figures last written.
    run: String,
    recorded: std::sync::Mutex<Vec<(String, String, Value)>>,
    /// Tests: fail the writer's next batch after its writes, before its commit.
    fail_next: Arc<AtomicBool>,
}

/// Closing waits for the writer to finish the commits already handed to it,
/// so the file can be opened again at once (a restart in the same process).
impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        self.writer.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
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

/// What only the writer thread changes.
struct Writer {
    next_delivery: u64,
    next_entry: u64,
    counts: Counts,
    fail_next: Arc<AtomicBool>,
}

impl Writer {
    fn read(tx: &redb::WriteTransaction) -> Result<Self, String> {
        let outbox = tx.open_table(OUTBOX).map_err(|e| e.to_string())?;
        let inbox = tx.open_table(INBOX).map_err(|e| e.to_string())?;
        let last_delivery = outbox.last().map_err(|e| e.to_string())?;
        let mut next_entry = 1;
        for item in inbox.iter().map_err(|e| e.to_string())? {
            let (k, _) = item.map_err(|e| e.to_string())?;
            next_entry = next_entry.max(k.value().1 + 1);
        }
        Ok(Self {
            next_delivery: last_delivery.map_or(1, |(k, _)| k.value() + 1),
            next_entry,
            counts: Counts::read(&inbox)?,
            fail_next: Arc::default(),
        })
    }
}

impl EmbeddedStore {
    /// Opens (or creates) `path`. Sessions idle longer than `ttl` expire.
    pub fn open(path: &Path, ttl: Duration) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(StoreError::new)?;
        }
        let db = Arc::new(Database::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError(format!(
                "{} is in use by another process (another `sandbot serve` or `sandbot chat` on the same data folder): one process per data folder — stop the other one, give this one another `--data`, or run several nodes on PostgreSQL (README: Run several nodes)",
                path.display()
            )),
            e => StoreError(format!("opening {}: {e}", path.display())),
        })?);
        let tx = db.begin_write().map_err(StoreError::new)?;
        tx.open_table(CONVERSATIONS).map_err(StoreError::new)?;
        tx.open_table(TRANSCRIPTS).map_err(StoreError::new)?;
        tx.open_table(POSTBACKS).map_err(StoreError::new)?;
        tx.open_table(SILENCE).map_err(StoreError::new)?;
        tx.open_table(SEEN).map_err(StoreError::new)?;
        tx.open_table(DEAD).map_err(StoreError::new)?;
        tx.open_table(super::failures::FAILURES)
            .map_err(StoreError::new)?;
        sizes::open(&tx, CONVERSATIONS, TRANSCRIPTS).map_err(StoreError)?;
        let writer_state = Writer::read(&tx).map_err(StoreError)?;
        let fail_next = writer_state.fail_next.clone();
        super::usage::compact(&tx).map_err(StoreError)?;
        tx.commit().map_err(StoreError::new)?;
        let (writer, rx) = mpsc::channel::<Op>();
        let wdb = db.clone();
        let thread = std::thread::Builder::new()
            .name("sandbot-store".into())
            .spawn(move || write_loop(&wdb, rx, writer_state))
            .map_err(StoreError::new)?;
        Ok(Self {
            db,
            writer: Some(writer),
            thread: Some(thread),
            ttl,
            run: run_id(),
            recorded: std::sync::Mutex::new(Vec::new()),
            fail_next,
        })
    }

    /// For tests of failed commits: the writer's next batch does all its
    /// writes, then fails instead of committing (as a full disk would).
    #[doc(hidden)]
    pub fn fail_next_write(&self) {
        self.fail_next.store(true, Ordering::SeqCst);
    }

    pub(super) fn db(&self) -> &Database {
        &self.db
    }

    fn expired(&self, state: &ConversationState) -> bool {
        now_ms().saturating_sub(state.updated_ms) > self.ttl.as_millis() as u64
    }

    /// Hands `op` to the writer thread; resolves with its answer.
    fn write<T: Send + 'static>(
        &self,
        op: impl FnOnce(Reply<T>) -> Op,
    ) -> Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send>> {
        let (done, wait) = oneshot::channel();
        let sent = match &self.writer {
            Some(w) => w.send(op(done)).is_ok(),
            None => false,
        };
        Box::pin(async move {
            let stopped = || StoreError("the store's writer has stopped".into());
            if !sent {
                return Err(stopped());
            }
            wait.await.map_err(|_| stopped())?
        })
    }
}

fn write_loop(db: &Database, rx: mpsc::Receiver<Op>, mut w: Writer) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let before = (w.next_delivery, w.next_entry);
        match write_batch(db, &batch, &mut w) {
            Ok(accepted) => {
                let mut accepted = accepted.into_iter();
                for op in batch {
                    match op {
                        Op::Commit(_, done) | Op::Discard(_, _, done) | Op::Settle(_, _, done) => {
                            let _ = done.send(Ok(()));
                        }
                        Op::Enqueue(_, _, done) => {
                            let _ = done.send(Ok(accepted.next().expect("one per entry")));
                        }
                    }
                }
            }
            Err(e) => {
                (w.next_delivery, w.next_entry) = before;
                if let Ok(again) = db
                    .begin_write()
                    .map_err(|e| e.to_string())
                    .and_then(|tx| Writer::read(&tx))
                {
                    w.counts = again.counts;
                }
                for op in batch {
                    match op {
                        Op::Commit(_, done) | Op::Discard(_, _, done) | Op::Settle(_, _, done) => {
                            let _ = done.send(Err(StoreError(e.clone())));
                        }
                        Op::Enqueue(_, _, done) => {
                            let _ = done.send(Err(StoreError(e.clone())));
                        }
                    }
                }
            }
        }
    }
}

/// Applies a batch in one durable transaction; the answers to its enqueues.
fn write_batch(db: &Database, batch: &[Op], w: &mut Writer) -> Result<Vec<Accepted>, String> {
    let tx = db.begin_write().map_err(|e| e.to_string())?;
    let mut accepted = Vec::new();
    {
        let mut outbox = tx.open_table(OUTBOX).map_err(|e| e.to_string())?;
        let mut conversations = tx.open_table(CONVERSATIONS).map_err(|e| e.to_string())?;
        let mut transcripts = tx.open_table(TRANSCRIPTS).map_err(|e| e.to_string())?;
        let mut postbacks = tx.open_table(POSTBACKS).map_err(|e| e.to_string())?;
        let mut inbox = tx.open_table(INBOX).map_err(|e| e.to_string())?;
        let mut seen = tx.open_table(SEEN).map_err(|e| e.to_string())?;
        let mut silence = tx.open_table(SILENCE).map_err(|e| e.to_string())?;
        let mut growth = Growth::default();
        for op in batch {
            match op {
                Op::Commit(c, _) => {
                    let k = c.key.as_str();
                    let old = conversations
                        .insert(k, c.state.as_slice())
                        .map_err(|e| e.to_string())?
                        .map_or(0, |v| v.value().len());
                    growth.change(&c.bot, old, c.state.len());
                    match c.silence_due_ms {
                        Some(due) => silence.insert(k, due).map(drop),
                        None => silence.remove(k).map(drop),
                    }
                    .map_err(|e| e.to_string())?;
                    for (seq, bytes) in &c.transcript {
                        let old = transcripts
                            .insert((k, *seq), bytes.as_slice())
                            .map_err(|e| e.to_string())?
                            .map_or(0, |v| v.value().len());
                        growth.change(&c.bot, old, bytes.len());
                    }
                    for bytes in &c.outbox {
                        outbox
                            .insert(w.next_delivery, bytes.as_slice())
                            .map_err(|e| e.to_string())?;
                        w.next_delivery += 1;
                    }
                    for (id, bytes) in &c.postbacks {
                        let pk = key(&c.bot, id);
                        postbacks
                            .insert(pk.as_str(), bytes.as_slice())
                            .map_err(|e| e.to_string())?;
                    }
                    if let Some(entry) = c.entry {
                        inbox::done(&mut inbox, &mut w.counts, k, entry)?;
                    }
                }
                Op::Discard(k, id, _) => inbox::done(&mut inbox, &mut w.counts, k, *id)?,
                Op::Settle(done, retry, _) => outbox::settle(&mut outbox, done, retry)?,
                Op::Enqueue(entry, backlog, _) => {
                    let k = entry.key.as_str();
                    if let Some(full) = w.counts.full(k, &entry.tenant, *backlog) {
                        accepted.push(full);
                        continue;
                    }
                    if let Some(d) = &entry.dedupe
                        && seen
                            .insert(d.as_str(), now_ms())
                            .map_err(|e| e.to_string())?
                            .is_some()
                    {
                        accepted.push(Accepted::Duplicate);
                        continue;
                    }
                    let id = w.next_entry;
                    w.next_entry += 1;
                    inbox
                        .insert((k, id), entry.bytes.as_slice())
                        .map_err(|e| e.to_string())?;
                    w.counts.add(k, &entry.tenant);
                    accepted.push(Accepted::Queued(id));
                }
            }
        }
        let mut sizes = tx.open_table(SIZES).map_err(|e| e.to_string())?;
        growth.apply(&mut sizes)?;
    }
    if w.fail_next.swap(false, Ordering::SeqCst) {
        return Err("a write failure injected by a test".into());
    }
    tx.commit().map_err(|e| e.to_string())?;
    Ok(accepted)
}

#[async_trait::async_trait]
impl Store for EmbeddedStore {
    async fn load(
        &self,
        bot: &str,
        conversation: &str,
    ) -> Result<Option<ConversationState>, StoreError> {
        let tx = self.db.begin_read().map_err(StoreError::new)?;
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
            Ok(encoded) => self.write(|done| Op::Commit(encoded, done)),
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
        self.write(|done| Op::Enqueue(encoded, backlog, done))
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
        super::usage::record(&self.db, &self.run, figures)?;
        *recorded = figures.to_vec();
        Ok(())
    }

    async fn usage(&self, tenant: &str) -> Result<Option<Vec<(String, Value)>>, StoreError> {
        super::usage::read(&self.db, tenant).map(Some)
    }

    async fn put_reply(&self, _: &str, _: &Value) -> Result<(), StoreError> {
        Ok(())
    }

    async fn take_reply(&self, _: &str) -> Result<Option<Value>, StoreError> {
        Ok(None)
    }

    async fn count_request(&self, _: &str, _: u64) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.db.begin_read().map(drop).map_err(StoreError::new)
    }

    async fn put_failure(
        &self,
        f: super::StoredFailure,
        bounds: super::FailureBounds,
    ) -> Result<(), StoreError> {
        super::failures::put(&self.db, &f, bounds)
    }

    async fn failures(
        &self,
        tenant: &str,
        bots: &[String],
        since_ms: u64,
        limit: usize,
    ) -> Result<Vec<Value>, StoreError> {
        super::failures::list(&self.db, tenant, bots, since_ms, limit)
    }

    async fn failure(&self, tenant: &str, id: &str) -> Result<Option<Value>, StoreError> {
        super::failures::get(&self.db, tenant, id)
    }

    async fn silence_due(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<(String, String, u64)>, StoreError> {
        let tx = self.db.begin_read().map_err(StoreError::new)?;
        let table = tx.open_table(SILENCE).map_err(StoreError::new)?;
        let mut due = Vec::new();
        for item in table.iter().map_err(StoreError::new)? {
            let (k, at) = item.map_err(StoreError::new)?;
            if at.value() <= now_ms
                && let Some((bot, conv)) = k.value().split_once('\0')
            {
                due.push((bot.to_string(), conv.to_string(), at.value()));
                if due.len() == limit {
                    break;
                }
            }
        }
        Ok(due)
    }

    fn inbox_discard(&self, bot: &str, conversation: &str, id: u64) -> CommitFuture {
        let k = key(bot, conversation);
        self.write(|done| Op::Discard(k, id, done))
    }

    async fn inbox_next(
        &self,
        bot: &str,
        conversation: &str,
    ) -> Result<Option<InboxEntry>, StoreError> {
        let k = key(bot, conversation);
        let tx = self.db.begin_read().map_err(StoreError::new)?;
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
        let tx = self.db.begin_read().map_err(StoreError::new)?;
        let table = tx.open_table(INBOX).map_err(StoreError::new)?;
        let mut out: Vec<(String, String)> = Vec::new();
        for item in table.iter().map_err(StoreError::new)? {
            let (k, _) = item.map_err(StoreError::new)?;
            if let Some((bot, conv)) = k.value().0.split_once('\0')
                && out.last().is_none_or(|(b, c)| b != bot || c != conv)
            {
                out.push((bot.to_string(), conv.to_string()));
            }
        }
        Ok(out)
    }

    async fn postback(&self, bot: &str, id: &str) -> Result<Option<Value>, StoreError> {
        let tx = self.db.begin_read().map_err(StoreError::new)?;
        let table = tx.open_table(POSTBACKS).map_err(StoreError::new)?;
        match table.get(key(bot, id).as_str()).map_err(StoreError::new)? {
            Some(bytes) => Ok(Some(
                serde_json::from_slice(bytes.value()).map_err(StoreError::new)?,
            )),
            None => Ok(None),
        }
    }

    async fn transcript(
        &self,
        bot: &str,
        conversation: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<TranscriptEntry>, StoreError> {
        let k = key(bot, conversation);
        let tx = self.db.begin_read().map_err(StoreError::new)?;
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
        let tx = self.db.begin_read().map_err(StoreError::new)?;
        let table = tx.open_table(CONVERSATIONS).map_err(StoreError::new)?;
        let mut out = Vec::new();
        for item in table.range(start.as_str()..).map_err(StoreError::new)? {
            let (k, v) = item.map_err(StoreError::new)?;
            let Some(conv) = k.value().strip_prefix(&prefix) else {
                break;
            };
            let state: ConversationState =
                serde_json::from_slice(v.value()).map_err(StoreError::new)?;
            if !self.expired(&state) {
                out.push(conv.to_string());
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    async fn delete(&self, bot: &str, conversation: &str) -> Result<bool, StoreError> {
        let k = key(bot, conversation);
        let tx = self.db.begin_write().map_err(StoreError::new)?;
        let existed = {
            let mut conversations = tx.open_table(CONVERSATIONS).map_err(StoreError::new)?;
            let mut transcripts = tx.open_table(TRANSCRIPTS).map_err(StoreError::new)?;
            let mut held = 0;
            transcripts
                .retain_in((k.as_str(), 0)..=(k.as_str(), u64::MAX), |_, v| {
                    held += v.len();
                    false
                })
                .map_err(StoreError::new)?;
            let mut silence = tx.open_table(SILENCE).map_err(StoreError::new)?;
            silence.remove(k.as_str()).map_err(StoreError::new)?;
            let state = conversations
                .remove(k.as_str())
                .map_err(StoreError::new)?
                .map(|v| v.value().len());
            let mut growth = Growth::default();
            growth.change(bot, held + state.unwrap_or(0), 0);
            growth
                .apply(&mut tx.open_table(SIZES).map_err(StoreError::new)?)
                .map_err(StoreError)?;
            state.is_some()
        };
        tx.commit().map_err(StoreError::new)?;
        Ok(existed)
    }

    async fn stored_bytes(&self, bots: &[String]) -> Result<u64, StoreError> {
        sizes::read(&self.db, bots).map_err(StoreError)
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
        let (done, retry) = (done.to_vec(), retry.to_vec());
        self.write(|reply| Op::Settle(done, retry, reply)).await
    }

    async fn purge_expired(&self) -> Result<usize, StoreError> {
        let expired: Vec<String> = {
            let tx = self.db.begin_read().map_err(StoreError::new)?;
            let table = tx.open_table(CONVERSATIONS).map_err(StoreError::new)?;
            let mut keys = Vec::new();
            for item in table.iter().map_err(StoreError::new)? {
                let (k, v) = item.map_err(StoreError::new)?;
                let state: ConversationState =
                    serde_json::from_slice(v.value()).map_err(StoreError::new)?;
                if self.expired(&state) {
                    keys.push(k.value().to_string());
                }
            }
            keys
        };
        for k in &expired {
            if let Some((bot, conv)) = k.split_once('\0') {
                self.delete(bot, conv).await?;
            }
        }
        Ok(expired.len())
    }
}
