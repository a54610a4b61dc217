//! Connections kept between statements.
//!
//! sqlx's pool tests every connection given back to it with a round trip
//! (a `Sync` and its `ReadyForQuery`), one per statement: with three or four
//! statements a message, three or four more wake-ups of a PostgreSQL backend
//! and of the node, for nothing when the statement just finished cleanly.
//! A statement that finished — with rows or with an error from the database
//! — leaves its connection ready for the next, so it is kept here for the
//! next statement instead. A connection whose statement was cancelled (its
//! future dropped) goes back to the pool, which tests it; one kept for
//! longer than [`FRESH`] is tested before use, as the pool would, and one
//! kept for [`LIFETIME`] goes back to the pool after its statement. One whose
//! statement failed on the connection itself (I/O, protocol, or a `FATAL`
//! from the server: its backend was terminated, the server is restarting)
//! is closed, and the other kept connections go back to the pool to be
//! tested: they were most likely ended by the same event, so one failed
//! statement, not one per kept connection, finds out.
//!
//! Statements wait for a connection in arrival order (a fair semaphore):
//! a connection kept here never goes back to the pool, so a statement
//! waiting on the pool itself would wait until one happens to be closed.
//! One of the pool's connections is left to the pool, for transactions.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::TryStreamExt as _;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{
    PgConnection, PgDatabaseError, PgPool, PgQueryResult, PgRow, PgSeverity, PgStatement,
    PgTypeInfo, Postgres,
};
use sqlx::{Connection, Describe, Either, Error, Execute, Executor, Transaction};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a kept connection is used without a test first.
const FRESH: Duration = Duration::from_secs(1);

/// How long a connection is kept in all, after which it goes back to the
/// pool, which closes it once it is older than its `max_lifetime` (30
/// minutes by default): a backend's caches grow with its age.
const LIFETIME: Duration = Duration::from_secs(30 * 60);

/// A kept connection: since when it waits, and since when it is kept.
#[derive(Debug)]
struct KeptConnection {
    conn: PoolConnection<Postgres>,
    waits_since: Instant,
    kept_since: Instant,
}

type Idle = Arc<Mutex<Vec<KeptConnection>>>;

/// A pool's connections, kept between statements.
#[derive(Clone, Debug)]
pub struct Kept {
    pool: PgPool,
    idle: Idle,
    /// One per connection statements may hold at once.
    permits: Arc<Semaphore>,
    /// Whether finished connections are kept (not with a pool of one: the
    /// pool's transactions need it).
    keep: bool,
    /// How long a statement waits for a connection.
    wait: Duration,
}

impl Kept {
    /// Statements on `pool`, which has `size` connections at most, wait at
    /// most `wait` for one.
    pub fn new(pool: PgPool, size: u32, wait: Duration) -> Self {
        let keep = size >= 2;
        let permits = if keep { size - 1 } else { size.max(1) };
        Self {
            pool,
            idle: Arc::default(),
            permits: Arc::new(Semaphore::new(permits as usize)),
            keep,
            wait,
        }
    }

    /// A transaction, on a connection from the pool (given back to it,
    /// and tested, at the end).
    pub async fn begin(&self) -> Result<Transaction<'static, Postgres>, Error> {
        self.pool.begin().await
    }

    /// A connection, in turn: a kept one (tested first if it has waited
    /// longer than [`FRESH`]), else one from the pool.
    pub async fn get(&self) -> Result<Held, Error> {
        // A free permit needs no timer (the usual case: one per statement).
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => tokio::time::timeout(self.wait, self.permits.clone().acquire_owned())
                .await
                .map_err(|_| Error::PoolTimedOut)?
                .expect("the semaphore is never closed"),
        };
        loop {
            let kept = self.idle.lock().expect("kept connections").pop();
            let Some(mut k) = kept else { break };
            if k.waits_since.elapsed() < FRESH || k.conn.ping().await.is_ok() {
                return Ok(self.held(k.conn, k.kept_since, permit));
            }
            // Broken: closed, not tested again by the pool.
            k.conn.close_on_drop();
        }
        let conn = self.pool.acquire().await?;
        Ok(self.held(conn, Instant::now(), permit))
    }

    fn held(
        &self,
        conn: PoolConnection<Postgres>,
        kept_since: Instant,
        permit: OwnedSemaphorePermit,
    ) -> Held {
        let keep = self.keep && kept_since.elapsed() < LIFETIME;
        Held {
            conn: Some(conn),
            idle: keep.then(|| self.idle.clone()),
            kept_since,
            _permit: permit,
        }
    }
}

/// A connection in use; [`Held::done`] keeps it for the next statement.
pub struct Held {
    conn: Option<PoolConnection<Postgres>>,
    /// Where it is kept (`None`: back to the pool).
    idle: Option<Idle>,
    kept_since: Instant,
    /// Released after the connection is kept or given back.
    _permit: OwnedSemaphorePermit,
}

impl Held {
    /// Ends the statement that returned `result`: the connection is kept
    /// when the statement finished (rows, or an error from the database);
    /// when the connection failed it is closed, and the other kept ones go
    /// back to the pool to be tested. Past [`LIFETIME`], or with a pool of
    /// one, it goes back to the pool.
    pub fn done<T>(mut self, result: Result<T, Error>) -> Result<T, Error> {
        let Some(idle) = &self.idle else {
            return result;
        };
        let conn = self.conn.take().expect("held until done");
        match &result {
            Err(e) if is_broken(e) => {
                let mut conn = conn;
                conn.close_on_drop();
                let others = std::mem::take(&mut *idle.lock().expect("kept connections"));
                drop(others);
            }
            _ => idle.lock().expect("kept connections").push(KeptConnection {
                conn,
                waits_since: Instant::now(),
                kept_since: self.kept_since,
            }),
        }
        result
    }
}

/// Statements run as on the pool, on a kept connection.
impl<'p> Executor<'p> for &'_ Kept {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<PgQueryResult, PgRow>, Error>>
    where
        E: 'q + Execute<'q, Postgres>,
    {
        let kept = self.clone();
        // Read whole, then streamed: the store reads every result whole
        // (`fetch_all`, `fetch_one`, `execute`), so this costs nothing more
        // and the connection is done before the first row is handed out.
        let all = async move {
            let mut conn = kept.get().await?;
            let rows = conn.fetch_many(query).try_collect::<Vec<_>>().await;
            conn.done(rows)
        };
        Box::pin(
            futures_util::stream::once(all)
                .map_ok(|rows| futures_util::stream::iter(rows.into_iter().map(Ok)))
                .try_flatten(),
        )
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<PgRow>, Error>>
    where
        E: 'q + Execute<'q, Postgres>,
    {
        let kept = self.clone();
        Box::pin(async move {
            let mut conn = kept.get().await?;
            let row = conn.fetch_optional(query).await;
            conn.done(row)
        })
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, Result<PgStatement<'q>, Error>> {
        let kept = self.clone();
        Box::pin(async move {
            let mut conn = kept.get().await?;
            let statement = conn.prepare_with(sql, parameters).await;
            conn.done(statement)
        })
    }

    fn describe<'e, 'q: 'e>(
        self,
        sql: &'q str,
    ) -> BoxFuture<'e, Result<Describe<Postgres>, Error>> {
        let kept = self.clone();
        Box::pin(async move {
            let mut conn = kept.get().await?;
            let described = conn.describe(sql).await;
            conn.done(described)
        })
    }
}

/// Whether `e` ended the connection rather than the statement.
fn is_broken(e: &Error) -> bool {
    match e {
        Error::RowNotFound => false,
        Error::Database(d) => d
            .try_downcast_ref::<PgDatabaseError>()
            .is_some_and(|d| matches!(d.severity(), PgSeverity::Fatal | PgSeverity::Panic)),
        _ => true,
    }
}

impl Deref for Held {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        self.conn.as_ref().expect("held until done")
    }
}

impl DerefMut for Held {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.conn.as_mut().expect("held until done")
    }
}
