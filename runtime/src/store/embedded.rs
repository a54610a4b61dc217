//! The embedded store: one redb file. Commits go through one writer thread
//! that batches the turns waiting at that moment into one durable
//! transaction (group commit), so many conversations share each fsync.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::Value;
use tokio::sync::oneshot;

use super::{
    CommitFuture, ConversationState, Delivery, Store, StoreError, TranscriptEntry, TurnCommit,
    now_ms,
};

/// `bot \0 conversation` → ConversationState (JSON).
const CONVERSATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("conversations");
/// (`bot \0 conversation`, seq) → TranscriptEntry (JSON).
const TRANSCRIPTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("transcripts");
/// `bot \0 id` → postback target (JSON).
const POSTBACKS: TableDefinition<&str, &[u8]> = TableDefinition::new("postbacks");

/// Delivery id → Delivery (JSON): the durable outbound queue.
pub(super) const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");

/// Turns committed together at most.
const MAX_BATCH: usize = 512;

type Pending = (TurnCommit, oneshot::Sender<Result<(), StoreError>>);

pub struct EmbeddedStore {
    db: Arc<Database>,
    /// `None` once closing.
    writer: Option<mpsc::Sender<Pending>>,
    thread: Option<std::thread::JoinHandle<()>>,
    ttl: Duration,
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

fn key(bot: &str, conversation: &str) -> String {
    format!("{bot}\0{conversation}")
}

impl EmbeddedStore {
    /// Opens (or creates) `path`. Sessions idle longer than `ttl` expire.
    pub fn open(path: &Path, ttl: Duration) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(StoreError::new)?;
        }
        let db = Arc::new(
            Database::create(path)
                .map_err(|e| StoreError(format!("opening {}: {e}", path.display())))?,
        );
        let tx = db.begin_write().map_err(StoreError::new)?;
        tx.open_table(CONVERSATIONS).map_err(StoreError::new)?;
        tx.open_table(TRANSCRIPTS).map_err(StoreError::new)?;
        tx.open_table(POSTBACKS).map_err(StoreError::new)?;
        let next_id = {
            let outbox = tx.open_table(OUTBOX).map_err(StoreError::new)?;
            let last = outbox.last().map_err(StoreError::new)?;
            last.map_or(1, |(k, _)| k.value() + 1)
        };
        tx.commit().map_err(StoreError::new)?;
        let (writer, rx) = mpsc::channel::<Pending>();
        let wdb = db.clone();
        let thread = std::thread::Builder::new()
            .name("sandbot-store".into())
            .spawn(move || write_loop(&wdb, rx, next_id))
            .map_err(StoreError::new)?;
        Ok(Self {
            db,
            writer: Some(writer),
            thread: Some(thread),
            ttl,
        })
    }

    pub(super) fn db(&self) -> &Database {
        &self.db
    }

    fn expired(&self, state: &ConversationState) -> bool {
        now_ms().saturating_sub(state.updated_ms) > self.ttl.as_millis() as u64
    }
}

fn write_loop(db: &Database, rx: mpsc::Receiver<Pending>, mut next_id: u64) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let result = write_batch(db, batch.iter().map(|(c, _)| c), &mut next_id);
        for (_, done) in batch {
            let _ = done.send(result.clone().map_err(StoreError));
        }
    }
}

fn write_batch<'a>(
    db: &Database,
    commits: impl Iterator<Item = &'a TurnCommit>,
    next_id: &mut u64,
) -> Result<(), String> {
    let tx = db.begin_write().map_err(|e| e.to_string())?;
    let first_id = *next_id;
    {
        let mut outbox = tx.open_table(OUTBOX).map_err(|e| e.to_string())?;
        let mut conversations = tx.open_table(CONVERSATIONS).map_err(|e| e.to_string())?;
        let mut transcripts = tx.open_table(TRANSCRIPTS).map_err(|e| e.to_string())?;
        let mut postbacks = tx.open_table(POSTBACKS).map_err(|e| e.to_string())?;
        for c in commits {
            let k = key(&c.bot, &c.conversation);
            let state = serde_json::to_vec(&c.state).map_err(|e| e.to_string())?;
            conversations
                .insert(k.as_str(), state.as_slice())
                .map_err(|e| e.to_string())?;
            for entry in &c.transcript {
                let bytes = serde_json::to_vec(entry).map_err(|e| e.to_string())?;
                transcripts
                    .insert((k.as_str(), entry.seq), bytes.as_slice())
                    .map_err(|e| e.to_string())?;
            }
            for d in &c.outbox {
                let d = Delivery {
                    id: *next_id,
                    ..d.clone()
                };
                *next_id += 1;
                let bytes = serde_json::to_vec(&d).map_err(|e| e.to_string())?;
                outbox
                    .insert(d.id, bytes.as_slice())
                    .map_err(|e| e.to_string())?;
            }
            for (id, target) in &c.postbacks {
                let pk = key(&c.bot, id);
                let bytes = serde_json::to_vec(target).map_err(|e| e.to_string())?;
                postbacks
                    .insert(pk.as_str(), bytes.as_slice())
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    tx.commit().map_err(|e| {
        *next_id = first_id;
        e.to_string()
    })
}

impl Store for EmbeddedStore {
    fn load(&self, bot: &str, conversation: &str) -> Result<Option<ConversationState>, StoreError> {
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
        let (done, wait) = oneshot::channel();
        let sent = match &self.writer {
            Some(w) => w.send((commit, done)).is_ok(),
            None => false,
        };
        Box::pin(async move {
            if !sent {
                return Err(StoreError("the store's writer has stopped".into()));
            }
            wait.await
                .map_err(|_| StoreError("the store's writer has stopped".into()))?
        })
    }

    fn postback(&self, bot: &str, id: &str) -> Result<Option<Value>, StoreError> {
        let tx = self.db.begin_read().map_err(StoreError::new)?;
        let table = tx.open_table(POSTBACKS).map_err(StoreError::new)?;
        match table.get(key(bot, id).as_str()).map_err(StoreError::new)? {
            Some(bytes) => Ok(Some(
                serde_json::from_slice(bytes.value()).map_err(StoreError::new)?,
            )),
            None => Ok(None),
        }
    }

    fn transcript(
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

    fn conversations(
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

    fn delete(&self, bot: &str, conversation: &str) -> Result<bool, StoreError> {
        let k = key(bot, conversation);
        let tx = self.db.begin_write().map_err(StoreError::new)?;
        let existed = {
            let mut conversations = tx.open_table(CONVERSATIONS).map_err(StoreError::new)?;
            let mut transcripts = tx.open_table(TRANSCRIPTS).map_err(StoreError::new)?;
            transcripts
                .retain_in((k.as_str(), 0)..=(k.as_str(), u64::MAX), |_, _| false)
                .map_err(StoreError::new)?;
            conversations
                .remove(k.as_str())
                .map_err(StoreError::new)?
                .is_some()
        };
        tx.commit().map_err(StoreError::new)?;
        Ok(existed)
    }

    fn first_seen(&self, scope: &str, id: &str) -> Result<bool, StoreError> {
        self.mark_seen(scope, id)
    }

    fn outbox(&self, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.outbox_items(limit)
    }

    fn outbox_settle(&self, done: &[u64], retry: &[(u64, u32, u64)]) -> Result<(), StoreError> {
        self.settle(done, retry)
    }

    fn purge_expired(&self) -> Result<usize, StoreError> {
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
                self.delete(bot, conv)?;
            }
        }
        Ok(expired.len())
    }
}
