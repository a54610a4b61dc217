//! The PostgreSQL store's writes: a turn's commit (fenced by the lease),
//! accepting into the inbox (backlog, duplicates), leases, and claiming and
//! settling deliveries.

use std::time::Duration;

use serde_json::Value;
use serde_json::value::to_raw_value;
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::types::Json;

use super::kept::Kept;
use super::{db, text};
use crate::store::{
    Accepted, Backlog, ConversationState, Delivery, InboxEntry, Next, StoreError, TurnCommit,
    json_len, now_ms,
};

/// Why a commit was refused: the lease moved on (or ran out).
pub const LEASE_LOST: &str = "this node's lease on the conversation ran out; the turn is not committed (another node takes the message)";

/// What a commit took besides the turn.
pub struct Committed {
    /// For a fenced commit of an inbox entry, the worker's next step.
    pub next: Option<Next>,
    /// The conversation's oldest delivery, claimed for this node, when the
    /// turn queued deliveries and that one was due and nobody's.
    pub claimed: Option<Delivery>,
}

/// Commits a turn (`sandbot_commit_next`); for a fenced commit of an inbox
/// entry, also the worker's next step: the conversation's next waiting
/// entry under the renewed lease, or `Empty` with the lease given up. A
/// turn that queued deliveries claims its conversation's oldest one (for
/// the lease's time, as the claim query does) when it is free.
pub async fn commit(
    pool: &Kept,
    node: &str,
    c: TurnCommit,
    lease: Duration,
) -> Result<Committed, StoreError> {
    let seqs: Vec<i64> = c.transcript.iter().map(|e| e.seq as i64).collect();
    let ats: Vec<i64> = c.transcript.iter().map(|e| e.at_ms as i64).collect();
    let events: Vec<Json<&Value>> = c.transcript.iter().map(|e| Json(&e.event)).collect();
    // Serialized once: bound as it is, and its length counted.
    let state = to_raw_value(&c.state)
        .map_err(|e| StoreError::new(format!("serializing the conversation state: {e}")))?;
    let ids: Vec<&str> = c.postbacks.iter().map(|(id, _)| id.as_str()).collect();
    let targets: Vec<Json<&Value>> = c.postbacks.iter().map(|(_, t)| Json(t)).collect();
    let deliveries: Vec<Json<&Delivery>> = c.outbox.iter().map(Json).collect();
    let now = now_ms() as i64;
    let transcript_bytes = c.transcript.iter().map(json_len).sum::<u64>() as i64;
    let row = pool.once_more(|| sqlx::query(
        "SELECT * FROM sandbot_commit_next($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $18)",
    )
    .bind(&c.bot)
    .bind(&c.conversation)
    .bind(c.inbox.is_some())
    .bind(node)
    .bind(c.inbox.map_or(0, |claim| claim.epoch as i64))
    .bind(c.inbox.and_then(|claim| claim.entry).map(|e| e as i64))
    .bind(now)
    .bind(Json(&*state))
    .bind(c.state.updated_ms as i64)
    .bind(&seqs)
    .bind(&ats)
    .bind(&events)
    .bind(&ids)
    .bind(&targets)
    .bind(&deliveries)
    .bind(state.get().len() as i64)
    .bind(transcript_bytes)
    .bind(now + lease.as_millis() as i64)
    .fetch_one(pool))
    .await
    .map_err(db)?;
    match row.get::<i32, _>(0) {
        0 => {}
        1 => return Err(StoreError::new(LEASE_LOST)),
        _ => {
            return Err(StoreError::new("the message's turn was already committed"));
        }
    }
    let claimed = row
        .get::<Option<i64>, _>(6)
        .is_some()
        .then(|| claimed_delivery(&row, 6));
    let next = if !row.get::<bool, _>(1) {
        None
    } else if row.get::<Option<i64>, _>(2).is_none() {
        Some(Next::Empty)
    } else {
        Some(Next::Entry {
            epoch: c.inbox.map_or(0, |claim| claim.epoch),
            entry: inbox_entry(&row, 2, &c.bot, &c.conversation),
            state: Some(Some(c.state)),
        })
    };
    Ok(Committed { next, claimed })
}

/// A claimed delivery from its columns at `at`: id, delivery, attempts,
/// not before.
fn claimed_delivery(r: &PgRow, at: usize) -> Delivery {
    let mut d = r.get::<Json<Delivery>, _>(at + 1).0;
    d.id = r.get::<i64, _>(at) as u64;
    d.attempts = r.get::<i32, _>(at + 2) as u32;
    d.not_before_ms = r.get::<i64, _>(at + 3) as u64;
    d
}

pub async fn enqueue(pool: &Kept, e: InboxEntry, backlog: Backlog) -> Result<Accepted, StoreError> {
    let query = "SELECT sandbot_enqueue($1, $2, $3, $4, $5, $6, $7, $8)";
    let id: i64 = pool
        .once_more_if(e.dedupe.is_some(), || {
            bind_entry(sqlx::query(query), &e, backlog).fetch_one(pool)
        })
        .await
        .map_err(db)?
        .get(0);
    Ok(accepted(id))
}

/// Binds `sandbot_enqueue`'s parameters, `$1` to `$8`.
fn bind_entry<'q>(query: PgQuery<'q>, e: &'q InboxEntry, backlog: Backlog) -> PgQuery<'q> {
    query
        .bind(&e.tenant)
        .bind(&e.bot)
        .bind(&e.conversation)
        .bind(e.dedupe.as_deref().map(text))
        .bind(e.accepted_ms as i64)
        .bind(Json(&e.job))
        .bind(backlog.conversation as i64)
        .bind(backlog.tenant as i64)
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// What `sandbot_enqueue` answered.
fn accepted(id: i64) -> Accepted {
    match id {
        -1 => Accepted::Full { conversation: true },
        -2 => Accepted::Full {
            conversation: false,
        },
        0 => Accepted::Duplicate,
        id => Accepted::Queued(id as u64),
    }
}

/// Accepts as [`enqueue`] does and, when the conversation is idle, takes its
/// lease for `node` in the same transaction (`sandbot_enqueue_take`): the
/// worker's first step (the oldest waiting entry and the state), or `None`
/// when the lease was not free (its holder takes the entry).
pub async fn enqueue_take(
    pool: &Kept,
    node: &str,
    e: InboxEntry,
    backlog: Backlog,
    ttl: Duration,
    cutoff: i64,
) -> Result<(Accepted, Option<Next>), StoreError> {
    let query =
        "SELECT * FROM sandbot_enqueue_take($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
    let row = pool
        .once_more_if(e.dedupe.is_some(), || {
            bind_step(
                bind_entry(sqlx::query(query), &e, backlog),
                node,
                ttl,
                cutoff,
            )
            .fetch_one(pool)
        })
        .await
        .map_err(db)?;
    let result = accepted(row.get(0));
    if row.get::<Option<i64>, _>(1).is_none() {
        return Ok((result, None));
    }
    Ok((result, Some(step(&row, 1, &e.bot, &e.conversation))))
}

/// Binds a step's lease parameters: the node, the lease's end, now, and
/// the cutoff before which a conversation's state has expired.
fn bind_step<'q>(query: PgQuery<'q>, node: &'q str, ttl: Duration, cutoff: i64) -> PgQuery<'q> {
    let now = now_ms() as i64;
    query
        .bind(node)
        .bind(now + ttl.as_millis() as i64)
        .bind(now)
        .bind(cutoff)
}

/// The entry to run from `r`'s columns `at..at + 6`: the lease's epoch, the
/// inbox entry (id, tenant, accepted_ms, job) and the conversation's state.
fn step(r: &PgRow, at: usize, bot: &str, conversation: &str) -> Next {
    Next::Entry {
        epoch: r.get::<i64, _>(at) as u64,
        entry: inbox_entry(r, at + 1, bot, conversation),
        state: Some(
            r.get::<Option<Json<ConversationState>>, _>(at + 5)
                .map(|j| j.0),
        ),
    }
}

/// Takes the conversation's lease if it is free (or this node's); a lease
/// that changes hands gets a new epoch.
pub async fn lease(
    pool: &Kept,
    node: &str,
    bot: &str,
    conversation: &str,
    ttl: Duration,
) -> Result<Option<u64>, StoreError> {
    let now = now_ms() as i64;
    let row = sqlx::query(
        "INSERT INTO leases (bot, conversation, node, until_ms, epoch) VALUES ($1, $2, $3, $4, 1)
         ON CONFLICT (bot, conversation) DO UPDATE SET
             node = EXCLUDED.node,
             until_ms = EXCLUDED.until_ms,
             epoch = CASE WHEN leases.node = EXCLUDED.node AND leases.until_ms >= $5
                          THEN leases.epoch ELSE leases.epoch + 1 END
         WHERE leases.until_ms < $5 OR leases.node = EXCLUDED.node
         RETURNING epoch",
    )
    .bind(bot)
    .bind(conversation)
    .bind(node)
    .bind(now + ttl.as_millis() as i64)
    .bind(now)
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    Ok(row.map(|r| r.get::<i64, _>(0) as u64))
}

/// The worker's step before a turn (`sandbot_take_next`): lease taken or
/// renewed, then the oldest waiting entry or the lease given up.
pub async fn take_next(
    pool: &Kept,
    node: &str,
    bot: &str,
    conversation: &str,
    ttl: Duration,
    cutoff: i64,
) -> Result<Next, StoreError> {
    let query = sqlx::query("SELECT * FROM sandbot_take_next($1, $2, $3, $4, $5, $6)")
        .bind(bot)
        .bind(conversation);
    let row = bind_step(query, node, ttl, cutoff)
        .fetch_optional(pool)
        .await
        .map_err(db)?;
    let Some(r) = row else {
        return Ok(Next::Busy);
    };
    if r.get::<Option<i64>, _>(1).is_none() {
        return Ok(Next::Empty);
    }
    Ok(step(&r, 0, bot, conversation))
}

/// The inbox entry in `r`'s columns `at..at + 4` (id, tenant, accepted_ms, job).
pub fn inbox_entry(r: &PgRow, at: usize, bot: &str, conversation: &str) -> InboxEntry {
    InboxEntry {
        id: r.get::<i64, _>(at) as u64,
        tenant: r.get(at + 1),
        bot: bot.to_string(),
        conversation: conversation.to_string(),
        dedupe: None,
        accepted_ms: r.get::<i64, _>(at + 2) as u64,
        job: r.get::<Json<Value>, _>(at + 3).0,
    }
}

/// Claims, for `claim` time, the oldest delivery of each conversation that
/// is due and nobody's; at most `limit`, in id order. This node's own
/// claims are not offered again: they were handed to its worker when taken
/// (a commit's or a settlement's claim is handed over just after its
/// transaction, so offering it here too could start it twice); one left
/// behind is free again when its claim runs out. With `only` (token
/// sources, a time in ms), a head that needs another token source is
/// skipped unless it was queued before that time.
pub async fn claim_deliveries(
    pool: &Kept,
    node: &str,
    claim: Duration,
    limit: usize,
    only: Option<(&[String], u64)>,
) -> Result<Vec<Delivery>, StoreError> {
    let now = now_ms() as i64;
    let rows = sqlx::query(
        // Rows another node is claiming right now are skipped, not waited
        // for (no lock waits, no deadlocks between nodes).
        "WITH heads AS (
             SELECT id FROM (
                 SELECT DISTINCT ON (bot, conversation) id, not_before_ms, claimed_until, auth, queued_ms
                 FROM outbox ORDER BY bot, conversation, id) h
             WHERE h.not_before_ms <= $3 AND h.claimed_until < $3
               AND ($5::text[] IS NULL OR h.auth IS NULL OR h.auth = ANY($5) OR h.queued_ms < $6)
             ORDER BY h.id LIMIT $4),
         free AS (
             SELECT o.id FROM outbox o
             WHERE o.id IN (SELECT id FROM heads) AND o.claimed_until < $3
             ORDER BY o.id FOR UPDATE SKIP LOCKED)
         UPDATE outbox o SET claimed_by = $1, claimed_until = $2 FROM free WHERE o.id = free.id
         RETURNING o.id, o.delivery, o.attempts, o.not_before_ms",
    )
    .bind(node)
    .bind(now + claim.as_millis() as i64)
    .bind(now)
    .bind(limit as i64)
    .bind(only.map(|(sources, _)| sources))
    .bind(only.map_or(0, |(_, before)| before as i64))
    .fetch_all(pool)
    .await
    .map_err(db)?;
    let mut out: Vec<Delivery> = rows.iter().map(|r| claimed_delivery(r, 0)).collect();
    out.sort_by_key(|d| d.id);
    out.truncate(limit);
    Ok(out)
}

/// Moves given-up deliveries this node holds to the dead letters.
pub async fn bury(pool: &Kept, node: &str, dead: &[(u64, u32, String)]) -> Result<(), StoreError> {
    if dead.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = dead.iter().map(|d| d.0 as i64).collect();
    let attempts: Vec<i32> = dead.iter().map(|d| d.1 as i32).collect();
    let reasons: Vec<&str> = dead.iter().map(|d| d.2.as_str()).collect();
    sqlx::query(
        "WITH gone AS (
             DELETE FROM outbox o USING UNNEST($1::bigint[], $2::int[], $3::text[]) AS r(id, attempts, reason)
             WHERE o.id = r.id AND o.claimed_by = $4
             RETURNING o.id, o.bot, o.conversation, o.delivery, r.attempts, r.reason)
         INSERT INTO dead_letters (id, bot, conversation, delivery, reason, dead_ms)
         SELECT id, bot, conversation, jsonb_set(delivery, '{attempts}', to_jsonb(attempts)), reason, $5 FROM gone",
    )
    .bind(&ids)
    .bind(&attempts)
    .bind(&reasons)
    .bind(node)
    .bind(now_ms() as i64)
    .execute(pool)
    .await
    .map(drop)
    .map_err(db)
}

/// Removes the delivered ones, reschedules the failed ones and lets their
/// claims go (only this node's claims); then claims, for `claim`, the next
/// delivery of each conversation whose delivery left the queue, if it is
/// due and free, and returns those. One round trip, one transaction.
pub async fn settle(
    pool: &Kept,
    node: &str,
    done: &[u64],
    retry: &[(u64, u32, u64)],
    claim: Duration,
) -> Result<Vec<Delivery>, StoreError> {
    if done.is_empty() && retry.is_empty() {
        return Ok(Vec::new());
    }
    let done: Vec<i64> = done.iter().map(|d| *d as i64).collect();
    let ids: Vec<i64> = retry.iter().map(|r| r.0 as i64).collect();
    let attempts: Vec<i32> = retry.iter().map(|r| r.1 as i32).collect();
    let due: Vec<i64> = retry.iter().map(|r| r.2 as i64).collect();
    let now = now_ms() as i64;
    // One statement: its parts share a snapshot, so the next head of a
    // conversation is the oldest delivery that is not one just delivered.
    let rows = sqlx::query(
        "WITH retried AS (
             UPDATE outbox o SET attempts = r.attempts, not_before_ms = r.due, claimed_until = 0
             FROM UNNEST($2::bigint[], $3::int[], $4::bigint[]) AS r(id, attempts, due)
             WHERE o.id = r.id AND o.claimed_by = $5 RETURNING 1),
         gone AS (
             DELETE FROM outbox WHERE id = ANY($1) AND claimed_by = $5
             RETURNING bot, conversation),
         free AS (
             SELECT x.id FROM outbox x
             WHERE x.id IN (
                     SELECT (SELECT h.id FROM outbox h
                             WHERE h.bot = g.bot AND h.conversation = g.conversation
                               AND h.id <> ALL($1)
                             ORDER BY h.id LIMIT 1)
                     FROM (SELECT DISTINCT bot, conversation FROM gone) g)
               AND x.not_before_ms <= $6 AND x.claimed_until < $6
             FOR UPDATE SKIP LOCKED)
         UPDATE outbox o SET claimed_by = $5, claimed_until = $7 FROM free WHERE o.id = free.id
         RETURNING o.id, o.delivery, o.attempts, o.not_before_ms",
    )
    .bind(&done)
    .bind(&ids)
    .bind(&attempts)
    .bind(&due)
    .bind(node)
    .bind(now)
    .bind(now + claim.as_millis() as i64)
    .fetch_all(pool)
    .await
    .map_err(db)?;
    Ok(rows.iter().map(|r| claimed_delivery(r, 0)).collect())
}
