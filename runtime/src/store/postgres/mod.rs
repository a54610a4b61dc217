//! The PostgreSQL store: several Sandbot nodes on one database (sqlx, a
//! pool of async connections; migrations embedded and applied at connect).
//! PostgreSQL groups concurrent commits into shared WAL flushes itself, so
//! turns commit in parallel on the pool. Turns of a conversation run only
//! under that conversation's lease (`leases`), and a commit checks the lease
//! in its transaction: a node that lost its lease commits nothing.
//!
//! Accepting a message and committing a turn wait for the WAL flush (the 2xx
//! and the turn's outcome are promises). Writes whose loss in a database
//! crash costs only a repeat — leases, delivery claims and outcomes (a
//! delivery can go out again: at least once), shared rate counts, usage
//! figures, replies between nodes — go through a second, smaller pool with
//! `synchronous_commit = off`, and wait for no disk.

mod kept;
mod reach;
mod steps;
mod write;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::types::Json;

use super::{
    Backlog, Claimed, CommitFuture, ConversationState, DeadLetter, Delivery, EnqueueFuture,
    InboxEntry, KeptOutcome, Next, Queued, Store, StoreError, TranscriptEntry, TurnCommit, now_ms,
};
use kept::Kept;
use reach::Reach;
use steps::Steps;

/// This version's migrations. A database that a newer version already
/// migrated further is fine: migrations only add (new functions beside
/// the ones older nodes call, new tables), so a node of the version before
/// runs beside newer ones during a deploy, and may start again — after a
/// crash, or when a deploy is rolled back — instead of refusing with
/// "migration N was previously applied but is missing".
fn migrator() -> sqlx::migrate::Migrator {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.set_ignore_missing(true);
    migrator
}

/// Conversations deleted per transaction when purging (message ids: ten
/// times as many).
const PURGE_CHUNK: i64 = 1000;

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    pub url: String,
    /// Connections per node, in all: a quarter of them (at least one) for
    /// the writes that need not wait for the disk.
    pub pool: u32,
    /// How long a node's lease on a conversation (and its claim on a
    /// delivery) lasts without renewal: how soon another node takes over
    /// from one that died.
    pub lease: Duration,
    /// Idle time after which a session expires.
    pub session_ttl: Duration,
    /// How long a node starting waits for a server that cannot be reached
    /// yet (or is starting up) before it gives up.
    pub start_wait: Duration,
    /// How long a statement waits for a connection, and for its answer
    /// (`store.postgres.answerWaitSeconds` in `sandbot serve`, by default
    /// [`PostgresOptions::WAIT`]).
    pub wait: Duration,
}

impl PostgresOptions {
    /// By default statements wait 10 s for a connection, and for their
    /// answer.
    pub const WAIT: Duration = Duration::from_secs(10);
}

pub struct PostgresStore {
    pool: Kept,
    /// The same database, for writes that need not wait for the disk.
    relaxed: Kept,
    /// This process's name in leases and claims (new at every start).
    node: String,
    lease: Duration,
    ttl: Duration,
    /// Conversations' next steps, taken on the way by accepts and commits.
    steps: Arc<Mutex<Steps>>,
    /// Deliveries claimed by commits and settlements, not yet handed out;
    /// `look`: something may wait unclaimed (see [`Store::take_claimed`]).
    claimed: Arc<Mutex<Claimed>>,
}

/// Keeps deliveries claimed on the way for the delivery worker; `look`
/// asks it to look at the queue too.
fn keep_claimed(claimed: &Mutex<Claimed>, deliveries: Vec<Delivery>, look: bool) {
    let mut c = claimed.lock().expect("not poisoned");
    c.deliveries.extend(deliveries);
    c.look |= look;
}

/// A statement's error; one that says the database could not be reached
/// is the store's being unavailable (the request may be sent again).
fn db(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e
        && gave_up(d.as_ref())
    {
        return StoreError::unavailable(format!("the database is unavailable: {}", d.message()));
    }
    if reach::is_unreachable(&e) {
        return StoreError::unavailable(format!(
            "the database is unavailable: {}",
            reach::cause(&e)
        ));
    }
    StoreError::new(format!("postgres: {e}"))
}

/// Whether the server gave the statement up because it waited on a lock
/// past its `lock_timeout` (`lock_not_available`, `55P03`; see
/// [`lock_wait`]), or was canceled (`query_canceled`, `57014`): nothing it
/// did was kept.
fn gave_up(e: &dyn sqlx::error::DatabaseError) -> bool {
    matches!(e.code().as_deref(), Some("55P03" | "57014"))
}

/// The `lock_timeout` of the store's connections: a little less than the
/// node's wait for an answer, so that a statement waiting on a lock (another
/// session's long transaction, a table locked by hand) is given up by the
/// server, which then keeps nothing of it, before the node stops waiting
/// and answers 503. Otherwise the server would finish it after the 503 —
/// an accept committed that the sender was told to send again, and
/// without a `messageId` the retry would be a second message. (A
/// `statement_timeout` would cover a slow statement too, but it arms a
/// timer for every statement: 9 % fewer messages a second in `pgbench`
/// with `runtime/benches/pg-message.sql`; `lock_timeout` only when a
/// statement waits.)
fn lock_wait(wait: Duration) -> Duration {
    wait.mul_f64(0.9)
}

/// PostgreSQL text cannot hold NUL: scope separators become U+001F.
fn text(s: &str) -> String {
    s.replace('\0', "\u{1f}")
}

impl PostgresStore {
    /// Connects, then applies the migrations this version needs.
    pub async fn connect(o: &PostgresOptions) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(&o.url)
            .map_err(|e| StoreError::new(format!("the PostgreSQL URL: {e}")))?;
        let reach = Arc::new(Reach::new(options.clone()));
        reach.wait_at_start(o.start_wait).await.map_err(|e| {
            StoreError::new(format!(
                "connecting to {}: {}",
                reach.server(),
                reach::cause(&e)
            ))
        })?;
        // Migrations on a connection of their own, without the statements'
        // time limit (an index built on a large table may take minutes).
        // (A pool of one: `Migrator::run` on a bare connection makes a
        // future that is not `Send` for every lifetime.)
        let migrating = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(o.wait)
            .connect_with(options.clone())
            .await
            .map_err(|e| StoreError::new(format!("connecting to PostgreSQL: {e}")))?;
        let migrator = migrator();
        migrator
            .run(&migrating)
            .await
            .map_err(|e| StoreError::new(format!("applying the PostgreSQL migrations: {e}")))?;
        let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
        let applied: Option<i64> = sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations")
            .fetch_one(&migrating)
            .await
            .map_err(|e| StoreError::new(format!("reading the PostgreSQL migrations: {e}")))?;
        if let Some(applied) = applied.filter(|a| *a > known) {
            tracing::warn!(
                applied,
                known,
                "the database was migrated by a newer version of sandbot; this node runs with it (as during a deploy, or after one rolled back)"
            );
        }
        migrating.close().await;
        let limit = lock_wait(o.wait).as_millis().max(1).to_string();
        let options = options.options([("lock_timeout", limit.as_str())]);
        let mut id = [0u8; 6];
        getrandom::fill(&mut id).map_err(StoreError::new)?;
        let node = format!("node-{}", hex::encode(id));
        // Named after the node, so that its next run can end what this one
        // left running (see `take_over`).
        let options = options.application_name(&node);
        let relaxed_size = (o.pool / 4).max(1);
        let connect = |size: u32, options: PgConnectOptions| {
            PgPoolOptions::new()
                .max_connections(size)
                .acquire_timeout(o.wait)
                .connect_with(options)
        };
        let size = o.pool.saturating_sub(relaxed_size).max(1);
        let pool = connect(size, options.clone())
            .await
            .map_err(|e| StoreError::new(format!("connecting to PostgreSQL: {e}")))?;
        let relaxed = connect(
            relaxed_size,
            options.options([("synchronous_commit", "off")]),
        )
        .await
        .map_err(|e| StoreError::new(format!("connecting to PostgreSQL: {e}")))?;
        Ok(Self {
            pool: Kept::new(pool, size, o.wait, reach.clone()),
            relaxed: Kept::new(relaxed, relaxed_size, o.wait, reach),
            node,
            lease: o.lease,
            ttl: o.session_ttl,
            steps: Arc::default(),
            // What a node that stopped left claimed or queued: looked for first.
            claimed: Arc::new(Mutex::new(Claimed {
                deliveries: Vec::new(),
                look: true,
            })),
        })
    }

    /// `PostgreSQL at host:port`, for messages.
    pub fn server(&self) -> String {
        self.pool.server()
    }

    /// This process's name in leases and claims.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Gives up at once what the process named `previous` still holds —
    /// its conversations' leases and its deliveries' claims — when that
    /// process is known to be gone (this node's last run: see
    /// `serve::predecessor`), instead of leaving them until they run out.
    /// The next to take such a lease gets a new epoch, which fences a
    /// commit of `previous` should it still be running after all; it leaves
    /// the list of nodes. Returns (leases, claims) given up.
    pub async fn take_over(&self, previous: &str) -> Result<(u64, u64), StoreError> {
        // A statement of the run that died may still be running in its
        // backend (the server notices a closed connection only when it
        // answers): it could take a lease after the update below. Its
        // backends are ended first (waiting up to 5 s for each); what they
        // had not committed is rolled back.
        sqlx::query(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
             WHERE application_name = $1 AND pid <> pg_backend_pid()",
        )
        .bind(previous)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let row = sqlx::query(
            "WITH leases_given_up AS (
                 UPDATE leases SET until_ms = 0 WHERE node = $1 AND until_ms >= $2 RETURNING 1),
             claims_given_up AS (
                 UPDATE outbox SET claimed_until = 0 WHERE claimed_by = $1 AND claimed_until >= $2
                 RETURNING 1),
             gone AS (DELETE FROM nodes WHERE name = $1)
             SELECT (SELECT count(*) FROM leases_given_up), (SELECT count(*) FROM claims_given_up)",
        )
        .bind(previous)
        .bind(now_ms() as i64)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        Ok((row.get::<i64, _>(0) as u64, row.get::<i64, _>(1) as u64))
    }

    /// The secret `name` every node of the deployment shares: the one
    /// stored, or `proposed` when this node is the first to ask.
    pub async fn shared_secret(&self, name: &str, proposed: &str) -> Result<String, StoreError> {
        // Two nodes asking at once: the second's insert waits for the
        // first's and does nothing, and its snapshot, taken before, may not
        // see the row yet — the next try does.
        for _ in 0..3 {
            let stored: Option<String> = sqlx::query_scalar(
                "WITH made AS (
                     INSERT INTO secrets (name, value) VALUES ($1, $2)
                     ON CONFLICT (name) DO NOTHING RETURNING value)
                 SELECT value FROM made UNION ALL SELECT value FROM secrets WHERE name = $1
                 LIMIT 1",
            )
            .bind(name)
            .bind(proposed)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
            if let Some(value) = stored {
                return Ok(value);
            }
        }
        Err(StoreError::new(format!(
            "the shared secret `{name}` could not be read"
        )))
    }

    /// Statements (accepts and commits) run a second time because the
    /// server had ended their connection before they ran (see
    /// `Kept::once_more`).
    pub fn statements_retried(&self) -> u64 {
        self.pool.retried()
    }

    /// A transaction's outcome, or the store unavailable when the server has
    /// not answered in the store's wait (each statement on a kept
    /// connection waits so too; a transaction runs on a connection of its
    /// own). Dropped, the transaction is rolled back.
    async fn answered<T>(
        &self,
        transaction: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let wait = self.pool.wait();
        tokio::time::timeout(wait, transaction)
            .await
            .unwrap_or_else(|_| Err(db(kept::no_answer(wait))))
    }

    fn cutoff(&self) -> i64 {
        now_ms().saturating_sub(self.ttl.as_millis() as u64) as i64
    }
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    async fn load(
        &self,
        bot: &str,
        conversation: &str,
    ) -> Result<Option<ConversationState>, StoreError> {
        let row = sqlx::query(
            "SELECT state FROM conversations WHERE bot = $1 AND conversation = $2 AND updated_ms >= $3",
        )
        .bind(bot)
        .bind(conversation)
        .bind(self.cutoff())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        Ok(row.map(|r| r.get::<Json<ConversationState>, _>(0).0))
    }

    fn commit(&self, commit: TurnCommit) -> CommitFuture {
        let (pool, node, lease) = (self.pool.clone(), self.node.clone(), self.lease);
        let (steps, claimed) = (self.steps.clone(), self.claimed.clone());
        Box::pin(async move {
            let key = (commit.bot.clone(), commit.conversation.clone());
            let queued = !commit.outbox.is_empty();
            let done = write::commit(&pool, &node, commit, lease).await?;
            if let Some(next) = done.next {
                steps.lock().expect("not poisoned").remember(key, next);
            }
            if queued {
                // Not claimed: an older delivery of the conversation is in
                // flight (its settlement claims the next) or waits for its
                // retry. Look anyway: a settlement running at the same time
                // as this commit cannot see this delivery to claim it.
                let look = done.claimed.is_none();
                keep_claimed(&claimed, done.claimed.into_iter().collect(), look);
            }
            Ok(())
        })
    }

    async fn postback(&self, bot: &str, id: &str) -> Result<Option<Value>, StoreError> {
        let row = sqlx::query("SELECT target FROM postbacks WHERE bot = $1 AND id = $2")
            .bind(bot)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        Ok(row.map(|r| r.get::<Json<Value>, _>(0).0))
    }

    async fn transcript(
        &self,
        bot: &str,
        conversation: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<TranscriptEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at_ms, event FROM transcripts WHERE bot = $1 AND conversation = $2 AND seq >= $3 ORDER BY seq LIMIT $4",
        )
        .bind(bot)
        .bind(conversation)
        .bind(from as i64)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| TranscriptEntry {
                seq: r.get::<i64, _>(0) as u64,
                at_ms: r.get::<i64, _>(1) as u64,
                event: r.get::<Json<Value>, _>(2).0,
            })
            .collect())
    }

    async fn conversations(
        &self,
        bot: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT conversation FROM conversations WHERE bot = $1 AND ($2::text IS NULL OR conversation > $2) AND updated_ms >= $3 ORDER BY conversation LIMIT $4",
        )
        .bind(bot)
        .bind(after)
        .bind(self.cutoff())
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn delete(&self, bot: &str, conversation: &str) -> Result<bool, StoreError> {
        self.answered(async {
            let mut tx = self.pool.begin().await.map_err(db)?;
            sqlx::query("DELETE FROM transcripts WHERE bot = $1 AND conversation = $2")
                .bind(bot)
                .bind(conversation)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            let gone =
                sqlx::query("DELETE FROM conversations WHERE bot = $1 AND conversation = $2")
                    .bind(bot)
                    .bind(conversation)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?
                    .rows_affected();
            tx.commit().await.map_err(db)?;
            Ok(gone > 0)
        })
        .await
    }

    /// In transactions of at most `PURGE_CHUNK` conversations, so a first
    /// purge of a large backlog holds no lock for long.
    async fn purge_expired(&self) -> Result<usize, StoreError> {
        let mut purged = 0;
        loop {
            let mut tx = self.pool.begin().await.map_err(db)?;
            let gone = sqlx::query(
                "DELETE FROM conversations WHERE (bot, conversation) IN (
                     SELECT bot, conversation FROM conversations WHERE updated_ms < $1 LIMIT $2
                 ) RETURNING bot, conversation",
            )
            .bind(self.cutoff())
            .bind(PURGE_CHUNK)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
            let bots: Vec<String> = gone.iter().map(|r| r.get(0)).collect();
            let conversations: Vec<String> = gone.iter().map(|r| r.get(1)).collect();
            sqlx::query(
                "DELETE FROM transcripts t USING UNNEST($1::text[], $2::text[]) AS g(bot, conversation) WHERE t.bot = g.bot AND t.conversation = g.conversation",
            )
            .bind(&bots)
            .bind(&conversations)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            tx.commit().await.map_err(db)?;
            purged += gone.len();
            if (gone.len() as i64) < PURGE_CHUNK {
                return Ok(purged);
            }
        }
    }

    async fn purge_seen(&self, before_ms: u64) -> Result<usize, StoreError> {
        let mut purged = 0;
        loop {
            let gone: i64 = sqlx::query(
                "WITH gone AS (
                     DELETE FROM seen WHERE key IN (SELECT key FROM seen WHERE at_ms < $1 LIMIT $2)
                     RETURNING 1
                 ) SELECT count(*) FROM gone",
            )
            .bind(before_ms as i64)
            .bind(PURGE_CHUNK * 10)
            .fetch_one(&self.relaxed)
            .await
            .map_err(db)?
            .get(0);
            purged += gone as usize;
            if gone < PURGE_CHUNK * 10 {
                break;
            }
        }
        sqlx::query("DELETE FROM outcomes WHERE at_ms < $1")
            .bind(before_ms as i64)
            .execute(&self.relaxed)
            .await
            .map_err(db)?;
        sqlx::query("DELETE FROM rate_windows WHERE window_start < $1")
            .bind((before_ms / 1000) as i64)
            .execute(&self.relaxed)
            .await
            .map_err(db)?;
        Ok(purged)
    }

    async fn stored_bytes(&self, bots: &[String]) -> Result<u64, StoreError> {
        let total: i64 = sqlx::query(
            "SELECT coalesce(sum(state_bytes + transcript_bytes), 0)::bigint FROM conversations WHERE bot = ANY($1)",
        )
        .bind(bots)
        .fetch_one(&self.relaxed)
        .await
        .map_err(db)?
        .get(0);
        Ok(total as u64)
    }

    async fn outbox(&self, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        write::claim_deliveries(&self.relaxed, &self.node, self.lease, limit, None).await
    }

    async fn outbox_for(
        &self,
        limit: usize,
        sources: &[String],
        left_before_ms: u64,
    ) -> Result<Vec<Delivery>, StoreError> {
        let only = Some((sources, left_before_ms));
        write::claim_deliveries(&self.relaxed, &self.node, self.lease, limit, only).await
    }

    fn take_claimed(&self) -> Claimed {
        let mut c = self.claimed.lock().expect("not poisoned");
        std::mem::take(&mut *c)
    }

    async fn outbox_settle(
        &self,
        done: &[u64],
        retry: &[(u64, u32, u64)],
    ) -> Result<(), StoreError> {
        let next = write::settle(&self.relaxed, &self.node, done, retry, self.lease).await;
        let next = next.inspect_err(|_| keep_claimed(&self.claimed, Vec::new(), true))?;
        keep_claimed(&self.claimed, next, false);
        Ok(())
    }

    async fn outbox_dead(&self, dead: &[(u64, u32, String)]) -> Result<(), StoreError> {
        write::bury(&self.relaxed, &self.node, dead).await?;
        // The next delivery of each of those conversations is free to go.
        keep_claimed(&self.claimed, Vec::new(), !dead.is_empty());
        Ok(())
    }

    async fn dead_letters(
        &self,
        bots: &[String],
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, delivery, reason, dead_ms FROM dead_letters WHERE bot = ANY($1) ORDER BY id LIMIT $2",
        )
        .bind(bots)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| {
                let mut delivery = r.get::<Json<Delivery>, _>(1).0;
                delivery.id = r.get::<i64, _>(0) as u64;
                DeadLetter {
                    delivery,
                    reason: r.get(2),
                    dead_ms: r.get::<i64, _>(3) as u64,
                }
            })
            .collect())
    }

    async fn requeue(&self, bots: &[String], id: u64) -> Result<bool, StoreError> {
        self.answered(async {
            let mut tx = self.pool.begin().await.map_err(db)?;
            let moved = sqlx::query(
                "WITH gone AS (DELETE FROM dead_letters WHERE id = $1 AND bot = ANY($2) RETURNING id, bot, conversation, delivery)
                 INSERT INTO outbox (id, bot, conversation, delivery) SELECT id, bot, conversation, delivery FROM gone",
            )
            .bind(id as i64)
            .bind(bots)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
            tx.commit().await.map_err(db)?;
            keep_claimed(&self.claimed, Vec::new(), moved == 1);
            Ok(moved == 1)
        })
        .await
    }

    fn enqueue(&self, entry: InboxEntry, backlog: Backlog) -> EnqueueFuture {
        let pool = self.pool.clone();
        Box::pin(async move { write::enqueue(&pool, entry, backlog).await })
    }

    fn enqueue_and_take(
        &self,
        entry: InboxEntry,
        backlog: Backlog,
        ttl: Duration,
    ) -> EnqueueFuture {
        let (pool, node, cutoff) = (self.pool.clone(), self.node.clone(), self.cutoff());
        let steps = self.steps.clone();
        Box::pin(async move {
            let key = (entry.bot.clone(), entry.conversation.clone());
            let (accepted, next) =
                write::enqueue_take(&pool, &node, entry, backlog, ttl, cutoff).await?;
            if let Some(next) = next {
                steps.lock().expect("not poisoned").remember(key, next);
            }
            Ok(accepted)
        })
    }

    async fn inbox_next(
        &self,
        bot: &str,
        conversation: &str,
    ) -> Result<Option<InboxEntry>, StoreError> {
        let row = sqlx::query(
            "SELECT id, tenant, accepted_ms, job FROM inbox WHERE bot = $1 AND conversation = $2 ORDER BY id LIMIT 1",
        )
        .bind(bot)
        .bind(conversation)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        Ok(row.map(|r| write::inbox_entry(&r, 0, bot, conversation)))
    }

    async fn inbox_conversations(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT DISTINCT bot, conversation FROM inbox")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn inbox_unheld(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT i.bot, i.conversation FROM inbox i
             WHERE NOT EXISTS (SELECT 1 FROM leases l
                               WHERE l.bot = i.bot AND l.conversation = i.conversation
                                 AND l.until_ms > $1)",
        )
        .bind(now_ms() as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn queued(&self) -> Result<BTreeMap<String, Queued>, StoreError> {
        let rows = sqlx::query(
            "SELECT bot, sum(inbox)::bigint, sum(outbox)::bigint, min(oldest) FROM (
                 SELECT bot, count(*) AS inbox, 0 AS outbox, min(accepted_ms) AS oldest
                 FROM inbox GROUP BY bot
                 UNION ALL
                 SELECT bot, 0, count(*), NULL FROM outbox GROUP BY bot) q
             GROUP BY bot",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| {
                let queued = Queued {
                    inbox: r.get::<i64, _>(1) as u64,
                    outbox: r.get::<i64, _>(2) as u64,
                    oldest_ms: r.get::<Option<i64>, _>(3).map(|ms| ms as u64),
                };
                (r.get(0), queued)
            })
            .collect())
    }

    fn inbox_discard(&self, _bot: &str, _conversation: &str, id: u64) -> CommitFuture {
        let pool = self.pool.clone();
        Box::pin(async move {
            sqlx::query("DELETE FROM inbox WHERE id = $1")
                .bind(id as i64)
                .execute(&pool)
                .await
                .map(drop)
                .map_err(db)
        })
    }

    async fn lease(
        &self,
        bot: &str,
        conversation: &str,
        ttl: Duration,
    ) -> Result<Option<u64>, StoreError> {
        write::lease(&self.relaxed, &self.node, bot, conversation, ttl).await
    }

    async fn take_next(
        &self,
        bot: &str,
        conversation: &str,
        ttl: Duration,
    ) -> Result<Next, StoreError> {
        let key = (bot.to_string(), conversation.to_string());
        if let Some(next) = self.steps.lock().expect("not poisoned").take(&key) {
            return Ok(next);
        }
        let next = write::take_next(
            &self.relaxed,
            &self.node,
            bot,
            conversation,
            ttl,
            self.cutoff(),
        )
        .await?;
        self.steps.lock().expect("not poisoned").handed(&key, &next);
        Ok(next)
    }

    async fn release(&self, bot: &str, conversation: &str, epoch: u64) -> Result<bool, StoreError> {
        // A commit may have kept the next entry under this lease.
        let key = (bot.to_string(), conversation.to_string());
        self.steps.lock().expect("not poisoned").forget(&key, epoch);
        let waiting: bool = sqlx::query(
            "WITH released AS (
                 UPDATE leases SET until_ms = 0
                 WHERE bot = $1 AND conversation = $2 AND node = $3 AND epoch = $4 RETURNING 1)
             SELECT EXISTS (SELECT 1 FROM inbox WHERE bot = $1 AND conversation = $2)",
        )
        .bind(bot)
        .bind(conversation)
        .bind(&self.node)
        .bind(epoch as i64)
        .fetch_one(&self.relaxed)
        .await
        .map_err(db)?
        .get(0);
        Ok(waiting)
    }

    async fn record_usage(&self, figures: &[(String, String, Value)]) -> Result<(), StoreError> {
        if figures.is_empty() {
            return Ok(());
        }
        let tenants: Vec<&str> = figures.iter().map(|f| f.0.as_str()).collect();
        let bots: Vec<&str> = figures.iter().map(|f| f.1.as_str()).collect();
        let values: Vec<Json<&Value>> = figures.iter().map(|f| Json(&f.2)).collect();
        sqlx::query(
            "INSERT INTO usage (node, tenant, bot, figures)
             SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::jsonb[])
             ON CONFLICT (node, tenant, bot) DO UPDATE SET figures = EXCLUDED.figures",
        )
        .bind(&self.node)
        .bind(&tenants)
        .bind(&bots)
        .bind(&values)
        .execute(&self.relaxed)
        .await
        .map(drop)
        .map_err(db)
    }

    async fn usage(&self, tenant: &str) -> Result<Option<Vec<(String, Value)>>, StoreError> {
        let rows = sqlx::query("SELECT bot, figures FROM usage WHERE tenant = $1")
            .bind(tenant)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        Ok(Some(
            rows.iter()
                .map(|r| (r.get(0), r.get::<Json<Value>, _>(1).0))
                .collect(),
        ))
    }

    async fn put_reply(&self, key: &str, outcome: &Value) -> Result<(), StoreError> {
        // Replies nobody took within a minute (their request gave up) go.
        sqlx::query(
            "WITH stale AS (DELETE FROM replies WHERE at_ms < $3)
             INSERT INTO replies (key, outcome, at_ms) VALUES ($1, $2, $4)
             ON CONFLICT (key) DO UPDATE SET outcome = EXCLUDED.outcome",
        )
        .bind(key)
        .bind(Json(outcome))
        .bind(now_ms() as i64 - 60_000)
        .bind(now_ms() as i64)
        .execute(&self.relaxed)
        .await
        .map(drop)
        .map_err(db)
    }

    async fn take_reply(&self, key: &str) -> Result<Option<Value>, StoreError> {
        let row = sqlx::query("DELETE FROM replies WHERE key = $1 RETURNING outcome")
            .bind(key)
            .fetch_optional(&self.relaxed)
            .await
            .map_err(db)?;
        Ok(row.map(|r| r.get::<Json<Value>, _>(0).0))
    }

    async fn keep_outcome(
        &self,
        _: &str,
        _: &str,
        kept: &str,
        outcome: &Value,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO outcomes (key, outcome, at_ms) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(kept)
        .bind(Json(outcome))
        .bind(now_ms() as i64)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(db)
    }

    async fn kept_outcome(
        &self,
        bot: &str,
        conversation: &str,
        kept: &str,
    ) -> Result<KeptOutcome, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT outcome FROM outcomes WHERE key = $3),
                    EXISTS (SELECT 1 FROM inbox
                            WHERE bot = $1 AND conversation = $2 AND job->>'keep' = $3)",
        )
        .bind(bot)
        .bind(conversation)
        .bind(kept)
        .fetch_one(&self.relaxed)
        .await
        .map_err(db)?;
        Ok(match row.get::<Option<Json<Value>>, _>(0) {
            Some(Json(outcome)) => KeptOutcome::Outcome(outcome),
            None if row.get::<bool, _>(1) => KeptOutcome::Waiting,
            None => KeptOutcome::Unknown,
        })
    }

    async fn count_request(&self, key: &str, window: u64) -> Result<Option<u64>, StoreError> {
        let n: i64 = sqlx::query(
            "INSERT INTO rate_windows (key, window_start, count) VALUES ($1, $2, 1)
             ON CONFLICT (key) DO UPDATE SET
                 count = CASE WHEN rate_windows.window_start = $2 THEN rate_windows.count + 1 ELSE 1 END,
                 window_start = $2
             RETURNING count",
        )
        .bind(key)
        .bind(window as i64)
        .fetch_one(&self.relaxed)
        .await
        .map_err(db)?
        .get(0);
        Ok(Some(n as u64))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(db)
    }

    async fn heartbeat(&self, bots: &[String]) -> Result<(), StoreError> {
        // Nodes unseen for a day (they died) go.
        let now = now_ms() as i64;
        sqlx::query(
            "WITH gone AS (DELETE FROM nodes WHERE seen_ms < $5 AND name <> $1)
             INSERT INTO nodes (name, version, bots, started_ms, seen_ms)
             VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT (name) DO UPDATE SET bots = EXCLUDED.bots, seen_ms = EXCLUDED.seen_ms",
        )
        .bind(&self.node)
        .bind(crate::VERSION)
        .bind(bots)
        .bind(now)
        .bind(now - 24 * 3600 * 1000)
        .execute(&self.relaxed)
        .await
        .map(drop)
        .map_err(db)
    }

    async fn leave(&self) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM nodes WHERE name = $1")
            .bind(&self.node)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(db)
    }

    async fn nodes(&self) -> Result<Vec<super::NodeSeen>, StoreError> {
        let rows =
            sqlx::query("SELECT name, version, bots, started_ms, seen_ms FROM nodes ORDER BY name")
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| super::NodeSeen {
                name: r.get(0),
                version: r.get(1),
                bots: r.get(2),
                started_ms: r.get::<i64, _>(3) as u64,
                seen_ms: r.get::<i64, _>(4) as u64,
            })
            .collect())
    }

    async fn put_failure(
        &self,
        f: super::StoredFailure,
        bounds: super::FailureBounds,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(&f.record)
            .map_err(StoreError::new)?
            .len();
        self.answered(async {
            let mut tx = self.pool.begin().await.map_err(db)?;
            sqlx::query(
                "INSERT INTO failures (tenant, id, bot, at_ms, bytes, record) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (tenant, id) DO NOTHING",
            )
            .bind(&f.tenant)
            .bind(&f.id)
            .bind(&f.bot)
            .bind(f.at_ms as i64)
            .bind(bytes as i32)
            .bind(&f.record)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            sqlx::query(
                "DELETE FROM failures f USING (
                     SELECT id, row_number() OVER w AS n, sum(bytes) OVER w AS total
                     FROM failures WHERE tenant = $1
                     WINDOW w AS (ORDER BY at_ms DESC, id DESC)
                 ) t
                 WHERE f.tenant = $1 AND f.id = t.id AND (t.n > $2 OR t.total > $3 OR f.at_ms < $4)",
            )
            .bind(&f.tenant)
            .bind(bounds.keep as i64)
            .bind(bounds.max_bytes as i64)
            .bind(f.at_ms.saturating_sub(bounds.max_age_ms) as i64)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            tx.commit().await.map_err(db)
        })
        .await
    }

    async fn failures(
        &self,
        tenant: &str,
        bots: &[String],
        since_ms: u64,
        limit: usize,
    ) -> Result<Vec<Value>, StoreError> {
        let rows: Vec<(Value,)> = sqlx::query_as(
            "SELECT record FROM failures WHERE tenant = $1 AND bot = ANY($2) AND at_ms >= $3
             ORDER BY at_ms DESC, id DESC LIMIT $4",
        )
        .bind(tenant)
        .bind(bots)
        .bind(since_ms as i64)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows.into_iter().map(|(r,)| r).collect())
    }

    async fn failure(&self, tenant: &str, id: &str) -> Result<Option<Value>, StoreError> {
        let row: Option<(Value,)> =
            sqlx::query_as("SELECT record FROM failures WHERE tenant = $1 AND id = $2")
                .bind(tenant)
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        Ok(row.map(|(r,)| r))
    }

    async fn silence_due(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<(String, String, u64)>, StoreError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT bot, conversation, (state->>'silenceDueMs')::bigint FROM conversations
             WHERE state ? 'silenceDueMs' AND (state->>'silenceDueMs')::bigint <= $1
             ORDER BY 3 LIMIT $2",
        )
        .bind(now_ms as i64)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|(b, c, due)| (b, c, due as u64))
            .collect())
    }
}
