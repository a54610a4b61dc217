//! Failed invocations kept for the studio's replay (see
//! `studio::failures`), per tenant and bounded: the embedded store's table.
//! Keys sort a tenant's failures by time: `tenant \0 at_ms(20 digits) \0 id`.

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::Value;

use super::{FailureBounds, StoreError, StoredFailure};

pub(super) const FAILURES: TableDefinition<&str, &[u8]> = TableDefinition::new("failures");

fn key(tenant: &str, at_ms: u64, id: &str) -> String {
    format!("{tenant}\0{at_ms:020}\0{id}")
}

fn range(tenant: &str) -> (String, String) {
    (format!("{tenant}\0"), format!("{tenant}\u{1}"))
}

/// Keeps `f`, then drops the tenant's failures past `bounds` (newest kept).
pub(super) fn put(
    db: &Database,
    f: &StoredFailure,
    bounds: FailureBounds,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(&f.record).map_err(StoreError::new)?;
    let tx = db.begin_write().map_err(StoreError::new)?;
    {
        let mut table = tx.open_table(FAILURES).map_err(StoreError::new)?;
        table
            .insert(key(&f.tenant, f.at_ms, &f.id).as_str(), bytes.as_slice())
            .map_err(StoreError::new)?;
        let (from, to) = range(&f.tenant);
        let oldest = f.at_ms.saturating_sub(bounds.max_age_ms);
        let (mut count, mut total, mut drop) = (0usize, 0usize, Vec::new());
        for item in table
            .range(from.as_str()..to.as_str())
            .map_err(StoreError::new)?
            .rev()
        {
            let (k, v) = item.map_err(StoreError::new)?;
            count += 1;
            total += v.value().len();
            let at: u64 = k
                .value()
                .split('\0')
                .nth(1)
                .and_then(|a| a.parse().ok())
                .unwrap_or(0);
            if count > bounds.keep || total > bounds.max_bytes || at < oldest {
                drop.push(k.value().to_string());
            }
        }
        for k in drop {
            table.remove(k.as_str()).map_err(StoreError::new)?;
        }
    }
    tx.commit().map_err(StoreError::new)
}

/// The tenant's failures of `bots` since `since_ms`, newest first.
pub(super) fn list(
    db: &Database,
    tenant: &str,
    bots: &[String],
    since_ms: u64,
    limit: usize,
) -> Result<Vec<Value>, StoreError> {
    let tx = db.begin_read().map_err(StoreError::new)?;
    let table = tx.open_table(FAILURES).map_err(StoreError::new)?;
    let (from, to) = range(tenant);
    let mut out = Vec::new();
    for item in table
        .range(key(tenant, since_ms, "").as_str()..to.as_str())
        .map_err(StoreError::new)?
        .rev()
    {
        let (k, v) = item.map_err(StoreError::new)?;
        debug_assert!(k.value() >= from.as_str());
        let record: Value = serde_json::from_slice(v.value()).map_err(StoreError::new)?;
        if bots.iter().any(|b| record["bot"] == b.as_str()) {
            out.push(record);
            if out.len() == limit {
                break;
            }
        }
    }
    Ok(out)
}

/// One failure of the tenant by id.
pub(super) fn get(db: &Database, tenant: &str, id: &str) -> Result<Option<Value>, StoreError> {
    let tx = db.begin_read().map_err(StoreError::new)?;
    let table = tx.open_table(FAILURES).map_err(StoreError::new)?;
    let (from, to) = range(tenant);
    let suffix = format!("\0{id}");
    for item in table
        .range(from.as_str()..to.as_str())
        .map_err(StoreError::new)?
    {
        let (k, v) = item.map_err(StoreError::new)?;
        if k.value().ends_with(&suffix) {
            return serde_json::from_slice(v.value())
                .map(Some)
                .map_err(StoreError::new);
        }
    }
    Ok(None)
}
