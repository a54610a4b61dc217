//! The kept outcomes of REST actions sent with an `Idempotency-Key`: a
//! client's retry is answered with the first request's answer. An outcome
//! is kept under a digest of the key (the `keep` of the action's inbox
//! job), in the conversation's part on the embedded store, and forgotten
//! with the message ids seen (`messageIdDays`).

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::Value;

use super::StoreError;
use super::inbox::{INBOX, InboxEntry};

/// Keep key → (kept at, ms; the outcome as JSON).
pub(super) const OUTCOMES: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("outcomes");

/// What a store knows of a kept outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum KeptOutcome {
    /// The outcome of the request that ran.
    Outcome(Value),
    /// Its entry still waits in the conversation's inbox (or runs now).
    Waiting,
    /// Neither: never accepted, forgotten, or done and not kept (its node
    /// stopped between the turn's commit and keeping the outcome).
    Unknown,
}

/// Keeps `outcome` under `kept`; a second one for the same key changes
/// nothing (the first answer stays the answer).
pub(super) fn put(
    db: &Database,
    kept: &str,
    outcome: &Value,
    at_ms: u64,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(outcome).map_err(StoreError::new)?;
    let tx = db.begin_write().map_err(StoreError::new)?;
    {
        let mut table = tx.open_table(OUTCOMES).map_err(StoreError::new)?;
        if table.get(kept).map_err(StoreError::new)?.is_none() {
            table
                .insert(kept, (at_ms, bytes.as_slice()))
                .map_err(StoreError::new)?;
        }
    }
    tx.commit().map_err(StoreError::new)
}

/// The outcome kept under `kept`, else whether an entry of the
/// conversation `key` (`bot \0 conversation`) waiting in the inbox will
/// keep its outcome under it.
pub(super) fn get(db: &Database, key: &str, kept: &str) -> Result<KeptOutcome, StoreError> {
    let tx = db.begin_read().map_err(StoreError::new)?;
    let table = tx.open_table(OUTCOMES).map_err(StoreError::new)?;
    if let Some(row) = table.get(kept).map_err(StoreError::new)? {
        let outcome = serde_json::from_slice(row.value().1).map_err(StoreError::new)?;
        return Ok(KeptOutcome::Outcome(outcome));
    }
    let inbox = tx.open_table(INBOX).map_err(StoreError::new)?;
    for item in inbox
        .range((key, 0)..=(key, u64::MAX))
        .map_err(StoreError::new)?
    {
        let (_, bytes) = item.map_err(StoreError::new)?;
        let entry: InboxEntry = serde_json::from_slice(bytes.value()).map_err(StoreError::new)?;
        if entry.job["keep"] == kept {
            return Ok(KeptOutcome::Waiting);
        }
    }
    Ok(KeptOutcome::Unknown)
}
