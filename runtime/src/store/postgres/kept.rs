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

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
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

use super::reach::Reach;

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
    /// How long a statement waits for a connection, and for its answer.
    wait: Duration,
    /// Statements run again by [`Kept::once_more`].
    retried: Arc<AtomicU64>,
    /// Whether the server can be reached (shared by a store's pools).
    reach: Arc<Reach>,
}

impl Kept {
    /// Statements on `pool`, which has `size` connections at most, wait at
    /// most `wait` for one (and fail at once, with the cause, when the
    /// server cannot be reached: see [`Reach`]), and at most `wait` for
    /// their answer: a server that stopped answering without closing the
    /// connection (the network cut, a host gone) fails the statement then,
    /// and the connection is closed, instead of hanging until the kernel
    /// gives the connection up (a quarter of an hour).
    pub fn new(pool: PgPool, size: u32, wait: Duration, reach: Arc<Reach>) -> Self {
        let keep = size >= 2;
        let permits = if keep { size - 1 } else { size.max(1) };
        Self {
            pool,
            idle: Arc::default(),
            permits: Arc::new(Semaphore::new(permits as usize)),
            keep,
            wait,
            retried: Arc::default(),
            reach,
        }
    }

    /// Runs `statement`, and once more when the server ended its connection
    /// before it ran: a kept connection's backend terminated while it waited
    /// (a PostgreSQL restart or fast shutdown, `pg_terminate_backend`) answers
    /// the next statement with `FATAL 57P01` and runs nothing, and one
    /// terminated while running it rolls back what it did. The connections
    /// kept with it were handed back to the pool, which tests them, so the
    /// second run gets a live one (or a new one) instead of the caller a 500.
    /// Any other error — the connection lost without a word, so maybe after
    /// the commit — is returned as it is.
    pub async fn once_more<T, F>(&self, statement: impl Fn() -> F) -> Result<T, Error>
    where
        F: Future<Output = Result<T, Error>>,
    {
        self.once_more_if(false, statement).await
    }

    /// Runs `statement` as [`Kept::once_more`] does and, when it is
    /// `repeatable` — a second run cannot do its work twice: an accept with
    /// the channel's message id finds the first run's id if that committed
    /// —, once more too when its connection was lost on the way (closed,
    /// reset), when the caller could not tell whether it ran. Not after the
    /// server's silence (`no answer from the server`): a second try would
    /// wait as long again.
    pub async fn once_more_if<T, F>(
        &self,
        repeatable: bool,
        statement: impl Fn() -> F,
    ) -> Result<T, Error>
    where
        F: Future<Output = Result<T, Error>>,
    {
        match statement().await {
            Err(e) if ended_by_the_server(&e) || (repeatable && lost_on_the_way(&e)) => {
                self.retried.fetch_add(1, Ordering::Relaxed);
                statement().await
            }
            done => done,
        }
    }

    /// `PostgreSQL at host:port`, for messages.
    pub fn server(&self) -> String {
        self.reach.server()
    }

    /// How long a statement waits for a connection, and for its answer.
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// Statements run a second time by [`Kept::once_more`].
    pub fn retried(&self) -> u64 {
        self.retried.load(Ordering::Relaxed)
    }

    /// A transaction, on a connection from the pool (given back to it,
    /// and tested, at the end).
    pub async fn begin(&self) -> Result<Transaction<'static, Postgres>, Error> {
        self.reach.patiently(self.pool.begin()).await
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
        let kept = self.idle.lock().expect("kept connections").pop();
        if let Some(mut k) = kept {
            if k.waits_since.elapsed() < FRESH
                || matches!(answered(self.wait, k.conn.ping()).await, Ok(()))
            {
                return Ok(self.held(k.conn, k.kept_since, permit));
            }
            // Broken: closed, not tested again by the pool; the others
            // kept with it most likely too (the server restarted, the
            // network is cut): back to the pool, which tests them.
            k.conn.close_on_drop();
            drop(std::mem::take(
                &mut *self.idle.lock().expect("kept connections"),
            ));
        }
        let conn = self.reach.patiently(self.pool.acquire()).await?;
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
            let rows = answered(kept.wait, conn.fetch_many(query).try_collect::<Vec<_>>()).await;
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
            let row = answered(kept.wait, conn.fetch_optional(query)).await;
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
            let statement = answered(kept.wait, conn.prepare_with(sql, parameters)).await;
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
            let described = answered(kept.wait, conn.describe(sql)).await;
            conn.done(described)
        })
    }
}

/// `work`'s outcome, or an I/O error (the connection is then broken: see
/// [`Held::done`]) when the server has not answered `within`.
pub(super) async fn answered<T>(
    within: Duration,
    work: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::time::timeout(within, work)
        .await
        .unwrap_or_else(|_| Err(no_answer(within)))
}

/// The error of a statement the server has not answered `within`.
pub(super) fn no_answer(within: Duration) -> Error {
    Error::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("no answer from the server in {} s", within.as_secs_f64()),
    ))
}

/// Whether `e` is PostgreSQL's `admin_shutdown` (`57P01`): the backend was
/// told to end (SIGTERM) and did before finishing a statement.
fn ended_by_the_server(e: &Error) -> bool {
    matches!(e, Error::Database(d) if d.code().as_deref() == Some("57P01"))
}

/// Whether `e` lost the connection during the statement (closed, reset, or
/// broken off mid-answer), so that it may or may not have run; not a
/// server that does not answer.
fn lost_on_the_way(e: &Error) -> bool {
    match e {
        Error::Io(io) => io.kind() != std::io::ErrorKind::TimedOut,
        Error::Protocol(_) => true,
        _ => false,
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

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::error::{DatabaseError, ErrorKind};
    use std::borrow::Cow;
    use std::sync::atomic::AtomicUsize;

    /// A database error with `code`, as PostgreSQL sends them.
    #[derive(Debug)]
    struct Coded(&'static str);

    impl std::fmt::Display for Coded {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "error {}", self.0)
        }
    }

    impl std::error::Error for Coded {}

    impl DatabaseError for Coded {
        fn message(&self) -> &str {
            "from the server"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(self.0.into())
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> ErrorKind {
            ErrorKind::Other
        }
    }

    /// How many times `once_more` ran a statement that fails with each of
    /// `errors` in turn (then succeeds), and what it returned.
    async fn runs(errors: Vec<fn() -> Error>) -> (usize, Result<(), String>, u64) {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://nobody@127.0.0.1:1/none")
            .unwrap();
        let reach = Arc::new(Reach::new(
            "postgres://nobody@127.0.0.1:1/none".parse().unwrap(),
        ));
        let kept = Kept::new(pool, 4, Duration::from_secs(1), reach);
        let calls = AtomicUsize::new(0);
        let result = kept
            .once_more(|| {
                let n = calls.fetch_add(1, Ordering::Relaxed);
                let outcome = errors.get(n).map_or(Ok(()), |e| Err(e()));
                async move { outcome }
            })
            .await
            .map_err(|e| e.to_string());
        (calls.into_inner(), result, kept.retried())
    }

    fn ended() -> Error {
        Error::Database(Box::new(Coded("57P01")))
    }

    #[tokio::test]
    async fn a_statement_whose_connection_the_server_ended_runs_once_more_and_only_once() {
        assert_eq!(runs(vec![]).await, (1, Ok(()), 0), "no error: run once");
        assert_eq!(runs(vec![ended]).await, (2, Ok(()), 1), "ended: run again");
        assert_eq!(
            runs(vec![ended, ended]).await,
            (
                2,
                Err("error returned from database: error 57P01".into()),
                1
            ),
            "ended twice: the second error is the caller's"
        );
    }

    #[tokio::test]
    async fn other_errors_are_not_run_again() {
        // A crash shutdown (the backend may have committed first), a
        // statement's own error, a connection lost without a word.
        let crash: fn() -> Error = || Error::Database(Box::new(Coded("57P02")));
        let unique: fn() -> Error = || Error::Database(Box::new(Coded("23505")));
        let io: fn() -> Error = || Error::Io(std::io::ErrorKind::ConnectionReset.into());
        for e in [crash, unique, io] {
            let (calls, result, retried) = runs(vec![e]).await;
            assert_eq!((calls, retried), (1, 0), "{result:?}");
            assert!(result.is_err());
        }
    }
}
