//! What each deployment's conversations hold in the store (sessions and
//! transcripts), for the tenants' storage quotas. A conversation holds the
//! JSON of its state plus the JSON of each transcript entry; both backends
//! count the same bytes. The embedded store keeps a running total per
//! deployment (`SIZES`), changed in the same transaction as the data.

use std::collections::HashMap;

use redb::{ReadableTable, Table, TableDefinition, TableHandle, WriteTransaction};

/// Deployment (`bot` as stored) → bytes its conversations hold.
pub(super) const SIZES: TableDefinition<&str, u64> = TableDefinition::new("sizes");

/// The length of `v`'s JSON, without building it.
pub fn json_len(v: &impl serde::Serialize) -> u64 {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

/// Changes per deployment gathered over a write transaction.
#[derive(Default)]
pub(super) struct Growth(HashMap<String, i64>);

impl Growth {
    /// `bot`'s conversations hold `new` bytes where they held `old`.
    pub fn change(&mut self, bot: &str, old: usize, new: usize) {
        if old == new {
            return;
        }
        let delta = new as i64 - old as i64;
        // A batch touches few bots: look up before allocating the key.
        match self.0.get_mut(bot) {
            Some(total) => *total += delta,
            None => {
                self.0.insert(bot.to_string(), delta);
            }
        }
    }

    /// Applies the changes to the running totals.
    pub fn apply(self, sizes: &mut Table<&str, u64>) -> Result<(), String> {
        for (bot, delta) in self.0 {
            let now = sizes
                .get(bot.as_str())
                .map_err(|e| e.to_string())?
                .map_or(0, |v| v.value());
            let next = (now as i64).saturating_add(delta).max(0) as u64;
            sizes
                .insert(bot.as_str(), next)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Opens the totals; a store from before they existed gets them counted
/// once from its conversations and transcripts.
pub(super) fn open(
    tx: &WriteTransaction,
    conversations: TableDefinition<&str, &[u8]>,
    transcripts: TableDefinition<(&str, u64), &[u8]>,
) -> Result<(), String> {
    let exists = tx
        .list_tables()
        .map_err(|e| e.to_string())?
        .any(|t| t.name() == SIZES.name());
    let mut sizes = tx.open_table(SIZES).map_err(|e| e.to_string())?;
    if exists {
        return Ok(());
    }
    let mut growth = Growth::default();
    let bot_of = |k: &str| k.split('\0').next().unwrap_or_default().to_string();
    let table = tx.open_table(conversations).map_err(|e| e.to_string())?;
    for item in table.iter().map_err(|e| e.to_string())? {
        let (k, v) = item.map_err(|e| e.to_string())?;
        growth.change(&bot_of(k.value()), 0, v.value().len());
    }
    let table = tx.open_table(transcripts).map_err(|e| e.to_string())?;
    for item in table.iter().map_err(|e| e.to_string())? {
        let (k, v) = item.map_err(|e| e.to_string())?;
        growth.change(&bot_of(k.value().0), 0, v.value().len());
    }
    growth.apply(&mut sizes)
}

/// The bytes `bots`' conversations hold together.
pub(super) fn read(db: &redb::Database, bots: &[String]) -> Result<u64, String> {
    use redb::ReadableDatabase;
    let tx = db.begin_read().map_err(|e| e.to_string())?;
    let sizes = tx.open_table(SIZES).map_err(|e| e.to_string())?;
    let mut total = 0u64;
    for bot in bots {
        if let Some(v) = sizes.get(bot.as_str()).map_err(|e| e.to_string())? {
            total += v.value();
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store from before the totals: they are counted once when it opens,
    /// then kept (not counted again).
    #[test]
    fn an_older_store_gets_its_totals_counted_once() {
        let conversations: TableDefinition<&str, &[u8]> = TableDefinition::new("c");
        let transcripts: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("t");
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("s.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut c = tx.open_table(conversations).unwrap();
            c.insert("a\0one", [0u8; 10].as_slice()).unwrap();
            c.insert("b\0two", [0u8; 7].as_slice()).unwrap();
            let mut t = tx.open_table(transcripts).unwrap();
            t.insert(("a\0one", 0), [0u8; 100].as_slice()).unwrap();
            t.insert(("a\0one", 1), [0u8; 5].as_slice()).unwrap();
        }
        tx.commit().unwrap();
        for _ in 0..2 {
            let tx = db.begin_write().unwrap();
            open(&tx, conversations, transcripts).unwrap();
            tx.commit().unwrap();
            assert_eq!(read(&db, &["a".into()]).unwrap(), 115);
            assert_eq!(
                read(&db, &["a".into(), "b".into(), "c".into()]).unwrap(),
                122
            );
        }
    }

    #[test]
    fn json_len_is_the_length_of_the_json() {
        let v = serde_json::json!({"a": [1, "é", null], "b": {"c": true}});
        assert_eq!(json_len(&v), serde_json::to_vec(&v).unwrap().len() as u64);
    }
}
