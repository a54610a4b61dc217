//! One part of the embedded store: a redb file and the one writer thread
//! that batches the writes waiting at that moment into one durable
//! transaction (group commit), so many conversations share each fsync.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;

use redb::{Database, ReadableTable};
use tokio::sync::oneshot;

use super::super::inbox::{self, Counts, INBOX, SEEN, TenantCounts};
use super::super::sizes::{self, Growth, SIZES};
use super::super::{Accepted, Backlog, StoreError, TurnCommit, now_ms};
use super::outbox::{self, DEAD};
use super::{CONVERSATIONS, OUTBOX, POSTBACKS, SILENCE, TRANSCRIPTS, key};

/// Writes committed together at most.
const MAX_BATCH: usize = 512;

pub(super) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// A turn's commit, serialized on the caller's thread so the one writer
/// thread only inserts (the commit path's CPU spreads over the workers).
pub(super) struct Encoded {
    pub(super) key: String,
    pub(super) bot: String,
    pub(super) state: Vec<u8>,
    pub(super) transcript: Vec<(u64, Vec<u8>)>,
    pub(super) postbacks: Vec<(String, Vec<u8>)>,
    /// Deliveries without their id (the key is the id).
    pub(super) outbox: Vec<Vec<u8>>,
    pub(super) entry: Option<u64>,
    pub(super) silence_due_ms: Option<u64>,
}

impl Encoded {
    pub(super) fn new(c: &TurnCommit) -> Result<Self, StoreError> {
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
pub(super) struct EncodedEntry {
    pub(super) key: String,
    pub(super) tenant: String,
    pub(super) dedupe: Option<String>,
    pub(super) bytes: Vec<u8>,
}

fn json(v: &impl serde::Serialize) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(StoreError::new)
}

/// A write for the writer thread.
pub(super) enum Op {
    Commit(Encoded, Reply<()>),
    Enqueue(EncodedEntry, Backlog, Reply<Accepted>),
    Discard(String, u64, Reply<()>),
    /// Delivery outcomes: (delivered or given up, (id, attempts, not before)).
    Settle(Vec<u64>, Vec<(u64, u32, u64)>, Reply<()>),
}

/// What the parts' writers share: the tenants' backlog counts and the next
/// inbox entry id (at least 1).
pub(super) struct Shared {
    pub(super) tenants: TenantCounts,
    pub(super) entries: Arc<AtomicU64>,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            tenants: TenantCounts::default(),
            entries: Arc::new(AtomicU64::new(1)),
        }
    }
}

/// A part: its file and its writer.
pub(super) struct Part {
    pub(super) db: Arc<Database>,
    /// `None` once closing.
    writer: Option<mpsc::Sender<Op>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Tests: fail the writer's next batch after its writes, before its commit.
    pub(super) fail_next: Arc<AtomicBool>,
}

/// Closing waits for the writer to finish the commits already handed to it,
/// so the file can be opened again at once (a restart in the same process).
impl Drop for Part {
    fn drop(&mut self) {
        self.writer.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Opens (or creates) a part's file.
pub(super) fn create(path: &Path) -> Result<Database, StoreError> {
    Database::create(path).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::new(format!(
            "{} is in use by another process (another `sandbot serve` or `sandbot chat` on the same data folder): one process per data folder — stop the other one, give this one another `--data`, or run several nodes on PostgreSQL (README: Run several nodes)",
            path.display()
        )),
        e => StoreError::new(format!("opening {}: {e}", path.display())),
    })
}

impl Part {
    /// Part `index` of `parts`, on `db`: its tables made, its writer started.
    /// The tenants' backlog counts are shared by all parts.
    pub(super) fn start(
        db: Database,
        index: usize,
        parts: usize,
        shared: &Shared,
    ) -> Result<Self, StoreError> {
        let db = Arc::new(db);
        let tx = db.begin_write().map_err(StoreError::new)?;
        tx.open_table(CONVERSATIONS).map_err(StoreError::new)?;
        tx.open_table(TRANSCRIPTS).map_err(StoreError::new)?;
        tx.open_table(POSTBACKS).map_err(StoreError::new)?;
        tx.open_table(SILENCE).map_err(StoreError::new)?;
        tx.open_table(SEEN).map_err(StoreError::new)?;
        tx.open_table(super::super::outcomes::OUTCOMES)
            .map_err(StoreError::new)?;
        tx.open_table(DEAD).map_err(StoreError::new)?;
        sizes::open(&tx, CONVERSATIONS, TRANSCRIPTS).map_err(StoreError::new)?;
        let state = Writer::read(
            &tx,
            index,
            parts,
            shared.tenants.clone(),
            shared.entries.clone(),
        )
        .map_err(StoreError::new)?;
        if index == 0 {
            tx.open_table(super::super::failures::FAILURES)
                .map_err(StoreError::new)?;
            super::super::usage::compact(&tx).map_err(StoreError::new)?;
        }
        tx.commit().map_err(StoreError::new)?;
        let fail_next = state.fail_next.clone();
        let (writer, rx) = mpsc::channel::<Op>();
        let wdb = db.clone();
        let thread = std::thread::Builder::new()
            .name(format!("sandbot-store-{index}"))
            .spawn(move || write_loop(&wdb, rx, state))
            .map_err(StoreError::new)?;
        Ok(Self {
            db,
            writer: Some(writer),
            thread: Some(thread),
            fail_next,
        })
    }

    /// Hands `op` to the writer thread; resolves with its answer.
    pub(super) fn write<T: Send + 'static>(
        &self,
        op: impl FnOnce(Reply<T>) -> Op,
    ) -> Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send>> {
        let (done, wait) = oneshot::channel();
        let sent = match &self.writer {
            Some(w) => w.send(op(done)).is_ok(),
            None => false,
        };
        Box::pin(async move {
            let stopped = || StoreError::new("the store's writer has stopped");
            if !sent {
                return Err(stopped());
            }
            wait.await.map_err(|_| stopped())?
        })
    }
}

/// What only the writer thread changes.
struct Writer {
    /// The next delivery id: ids of part `i` of `n` are `i` modulo `n`, so
    /// an id names its part.
    next_delivery: u64,
    /// The store's part count: the step between this part's delivery ids.
    step: u64,
    /// The next inbox entry id, shared by all parts: ids increase in
    /// acceptance order across the store.
    next_entry: Arc<AtomicU64>,
    counts: Counts,
    fail_next: Arc<AtomicBool>,
}

impl Writer {
    fn read(
        tx: &redb::WriteTransaction,
        index: usize,
        parts: usize,
        tenants: TenantCounts,
        entries: Arc<AtomicU64>,
    ) -> Result<Self, String> {
        let outbox = tx.open_table(OUTBOX).map_err(|e| e.to_string())?;
        let dead = tx.open_table(DEAD).map_err(|e| e.to_string())?;
        let inbox = tx.open_table(INBOX).map_err(|e| e.to_string())?;
        // A dead letter keeps its id (it can be re-queued under it).
        let last = [outbox.last(), dead.last()]
            .into_iter()
            .map(|l| l.map(|l| l.map_or(0, |(k, _)| k.value())))
            .collect::<Result<Vec<u64>, _>>()
            .map_err(|e| e.to_string())?
            .into_iter()
            .max()
            .unwrap_or(0);
        let step = parts as u64;
        let first = if index == 0 { step } else { index as u64 };
        let next_delivery = if last == 0 { first } else { last + step };
        for item in inbox.iter().map_err(|e| e.to_string())? {
            let (k, _) = item.map_err(|e| e.to_string())?;
            entries.fetch_max(k.value().1 + 1, Ordering::SeqCst);
        }
        Ok(Self {
            next_delivery,
            step,
            next_entry: entries,
            counts: Counts::read(&inbox, tenants)?,
            fail_next: Arc::default(),
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
        let before = w.next_delivery;
        match write_batch(db, &batch, &mut w) {
            Ok(accepted) => {
                w.counts.keep();
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
                w.next_delivery = before;
                w.counts.undo();
                for op in batch {
                    match op {
                        Op::Commit(_, done) | Op::Discard(_, _, done) | Op::Settle(_, _, done) => {
                            let _ = done.send(Err(StoreError::new(e.clone())));
                        }
                        Op::Enqueue(_, _, done) => {
                            let _ = done.send(Err(StoreError::new(e.clone())));
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
                        w.next_delivery += w.step;
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
                    if let Some(full) = w.counts.take(k, &entry.tenant, *backlog) {
                        accepted.push(full);
                        continue;
                    }
                    if let Some(d) = &entry.dedupe
                        && seen
                            .insert(d.as_str(), now_ms())
                            .map_err(|e| e.to_string())?
                            .is_some()
                    {
                        w.counts.remove(k, &entry.tenant);
                        accepted.push(Accepted::Duplicate);
                        continue;
                    }
                    let id = w.next_entry.fetch_add(1, Ordering::SeqCst);
                    inbox
                        .insert((k, id), entry.bytes.as_slice())
                        .map_err(|e| e.to_string())?;
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
