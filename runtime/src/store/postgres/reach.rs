//! Whether PostgreSQL can be reached, and why not.
//!
//! sqlx's pool hides why it cannot connect: a statement waits for a
//! connection for the whole `acquire_timeout` (10 s), the pool trying to
//! connect again and again, then fails with "pool timed out while waiting
//! for an open connection". While the server is down (stopped, restarting,
//! the network cut) every request would hang 10 s and then get that
//! message. Here a statement that waits for a connection longer than
//! [`PROBE_AFTER`] connects once directly, outside the pool: when that
//! fails the statement fails at once with the real cause (connection
//! refused, no answer, the server starting up), and the outage is noted so
//! that the statements of the next [`PROBE_EVERY`] fail at once too — one of
//! them, the first after it, tries again. The first connection that works
//! ends the outage.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Error};

/// How long a statement waits for a connection before one is tried
/// directly to learn why none comes.
const PROBE_AFTER: Duration = Duration::from_millis(500);

/// How long an outage found stands before the next statement tries again.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// How long a direct connection may take (a server that does not answer:
/// the network cut, a host down).
const CONNECT_WITHIN: Duration = Duration::from_secs(3);

/// What the node knows of the server's reachability.
#[derive(Debug)]
pub struct Reach {
    options: PgConnectOptions,
    down: Mutex<Option<Down>>,
}

#[derive(Debug)]
struct Down {
    cause: String,
    since: Instant,
    tried: Instant,
}

impl Reach {
    pub fn new(options: PgConnectOptions) -> Self {
        Self {
            options,
            down: Mutex::new(None),
        }
    }

    /// `host:port` (or the socket's folder), for messages.
    pub fn server(&self) -> String {
        format!(
            "PostgreSQL at {}:{}",
            self.options.get_host(),
            self.options.get_port()
        )
    }

    /// The outage's error while one found less than [`PROBE_EVERY`] ago
    /// stands; else `None`, and the caller is the one that tries again.
    fn known_down(&self) -> Option<Error> {
        let mut down = self.down.lock().expect("not poisoned");
        let d = down.as_mut()?;
        if d.tried.elapsed() >= PROBE_EVERY {
            d.tried = Instant::now();
            return None;
        }
        Some(unreachable(&self.server(), d))
    }

    fn up(&self) {
        let mut down = self.down.lock().expect("not poisoned");
        if let Some(d) = down.take() {
            tracing::info!(
                "{} answers again (unreachable for {:.1} s)",
                self.server(),
                d.since.elapsed().as_secs_f64()
            );
        }
    }

    /// Connects once, directly: the outage ends, or is noted (or goes on)
    /// with this cause.
    async fn probe(&self) -> Result<(), Error> {
        match connect_once(&self.options).await {
            Ok(()) => {
                self.up();
                Ok(())
            }
            Err(e) => {
                let mut down = self.down.lock().expect("not poisoned");
                let now = Instant::now();
                let d = down.get_or_insert_with(|| {
                    tracing::warn!("{} cannot be reached: {}", self.server(), cause(&e));
                    Down {
                        cause: String::new(),
                        since: now,
                        tried: now,
                    }
                });
                d.cause = cause(&e);
                d.tried = now;
                Err(unreachable(&self.server(), d))
            }
        }
    }

    /// Runs `work` (taking a connection): at once fails while an outage
    /// stands; when `work` takes longer than [`PROBE_AFTER`], connects
    /// directly and fails with the cause if that fails too.
    pub async fn patiently<T>(
        &self,
        work: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        if let Some(e) = self.known_down() {
            return Err(e);
        }
        let mut work = std::pin::pin!(work);
        let done = tokio::select! {
            done = &mut work => done,
            _ = tokio::time::sleep(PROBE_AFTER) => {
                self.probe().await?;
                work.await
            }
        };
        if done.is_ok() {
            self.up();
        }
        done
    }

    /// At start: waits up to `wait` for the server while it cannot be
    /// reached or is starting up (a node started with its database, or
    /// before it); fails at once on what waiting cannot mend (a wrong
    /// password, no such database).
    pub async fn wait_at_start(&self, wait: Duration) -> Result<(), Error> {
        let start = Instant::now();
        loop {
            match connect_once(&self.options).await {
                Ok(()) => return Ok(()),
                Err(e) if is_unreachable(&e) && start.elapsed() + PROBE_EVERY < wait => {
                    tracing::warn!(
                        "waiting for {} ({:.0} s of {} s): {}",
                        self.server(),
                        start.elapsed().as_secs_f64(),
                        wait.as_secs(),
                        cause(&e)
                    );
                    tokio::time::sleep(PROBE_EVERY).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

async fn connect_once(options: &PgConnectOptions) -> Result<(), Error> {
    let conn = tokio::time::timeout(CONNECT_WITHIN, PgConnection::connect_with(options))
        .await
        .map_err(|_| {
            Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer in {} s", CONNECT_WITHIN.as_secs()),
            ))
        })??;
    let _ = conn.close().await;
    Ok(())
}

fn unreachable(server: &str, d: &Down) -> Error {
    Error::Io(std::io::Error::new(
        std::io::ErrorKind::NotConnected,
        format!(
            "{server} unreachable for {:.0} s: {}",
            d.since.elapsed().as_secs_f64(),
            d.cause
        ),
    ))
}

/// Whether `e` says the database could not be reached, or is starting up,
/// shutting down or out of connections — what waiting may mend — rather than
/// that a statement failed.
pub fn is_unreachable(e: &Error) -> bool {
    match e {
        Error::Io(_) | Error::Tls(_) | Error::PoolTimedOut | Error::PoolClosed => true,
        Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("57P") || c == "53300"),
        _ => false,
    }
}

/// `e`'s own words (an I/O error without sqlx's "error communicating with
/// database" around it).
pub fn cause(e: &Error) -> String {
    match e {
        Error::Io(io) => io.to_string(),
        e => e.to_string(),
    }
}
