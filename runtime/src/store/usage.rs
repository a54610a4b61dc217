//! The embedded store's usage figures, so `/v1/usage` survives a restart:
//! each run of the process keeps its own (tenant, bot) rows up to date; when
//! the store opens, the rows of earlier runs are added into one `past` row
//! per (tenant, bot). Figures are JSON counters (numbers, maps of numbers).

use std::collections::BTreeMap;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde_json::{Value, json};

use super::StoreError;

pub(super) const USAGE: TableDefinition<&str, &[u8]> = TableDefinition::new("usage");
const PAST: &str = "past";

fn key(tenant: &str, bot: &str, run: &str) -> String {
    format!("{tenant}\0{bot}\0{run}")
}

/// Adds every earlier run's rows into one `past` row per (tenant, bot).
pub(super) fn compact(tx: &WriteTransaction) -> Result<(), String> {
    let mut table = tx.open_table(USAGE).map_err(|e| e.to_string())?;
    let mut sums: BTreeMap<(String, String), Value> = BTreeMap::new();
    for item in table.iter().map_err(|e| e.to_string())? {
        let (k, v) = item.map_err(|e| e.to_string())?;
        let mut parts = k.value().splitn(3, '\0');
        let (Some(tenant), Some(bot)) = (parts.next(), parts.next()) else {
            continue;
        };
        let figures: Value = serde_json::from_slice(v.value()).unwrap_or(Value::Null);
        let sum = sums
            .entry((tenant.to_string(), bot.to_string()))
            .or_insert_with(|| json!({}));
        add(sum, &figures);
    }
    table.retain(|_, _| false).map_err(|e| e.to_string())?;
    for ((tenant, bot), figures) in sums {
        let bytes = serde_json::to_vec(&figures).map_err(|e| e.to_string())?;
        table
            .insert(key(&tenant, &bot, PAST).as_str(), bytes.as_slice())
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Writes this run's figures per (tenant, bot, figures).
pub(super) fn record(
    db: &Database,
    run: &str,
    figures: &[(String, String, Value)],
) -> Result<(), StoreError> {
    let tx = db.begin_write().map_err(StoreError::new)?;
    {
        let mut table = tx.open_table(USAGE).map_err(StoreError::new)?;
        for (tenant, bot, f) in figures {
            let bytes = serde_json::to_vec(f).map_err(StoreError::new)?;
            table
                .insert(key(tenant, bot, run).as_str(), bytes.as_slice())
                .map_err(StoreError::new)?;
        }
    }
    tx.commit().map_err(StoreError::new)
}

/// Every row of `tenant` (earlier runs and this one) as (bot, figures).
pub(super) fn read(db: &Database, tenant: &str) -> Result<Vec<(String, Value)>, StoreError> {
    let tx = db.begin_read().map_err(StoreError::new)?;
    let table = tx.open_table(USAGE).map_err(StoreError::new)?;
    let from = format!("{tenant}\0");
    let to = format!("{tenant}\u{1}");
    let mut rows = Vec::new();
    for item in table
        .range(from.as_str()..to.as_str())
        .map_err(StoreError::new)?
    {
        let (k, v) = item.map_err(StoreError::new)?;
        let bot = k.value().split('\0').nth(1).unwrap_or_default().to_string();
        rows.push((
            bot,
            serde_json::from_slice(v.value()).map_err(StoreError::new)?,
        ));
    }
    Ok(rows)
}

/// Adds the counters of `b` into `a`: numbers add up, objects key by key.
fn add(a: &mut Value, b: &Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                add(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (a @ Value::Null, b) => *a = b.clone(),
        (Value::Number(x), Value::Number(y)) => {
            let sum = x.as_u64().unwrap_or(0) + y.as_u64().unwrap_or(0);
            *x = sum.into();
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up_key_by_key() {
        let mut a = json!({"turns": 2, "action_failures": {"timeout": 1}});
        add(
            &mut a,
            &json!({"turns": 3, "action_failures": {"timeout": 1, "js_error": 4}, "fuel": 9}),
        );
        assert_eq!(
            a,
            json!({"turns": 5, "action_failures": {"timeout": 2, "js_error": 4}, "fuel": 9})
        );
    }
}
