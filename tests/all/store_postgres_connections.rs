//! The PostgreSQL store keeps its connections between statements (sqlx's
//! pool would test each one given back with a round trip). When the server
//! ends them — its backends terminated, a restart — while the node is busy,
//! one statement finds out, not one per kept connection, and runs again on
//! a live one; after a quiet second, none does (a kept connection that
//! waited is tested first). The store goes on with new connections, and
//! what it accepted is still there.

use std::time::Duration;

use sandbot::store::{Accepted, PostgresOptions, PostgresStore, Store};
use sqlx::Connection;

use crate::store_conformance::{ROOMY, entry};

/// A store that has kept several connections, and an admin connection to
/// its database.
async fn busy_store() -> (PostgresStore, sqlx::PgConnection) {
    let url = crate::pg::database().await;
    let store = PostgresStore::connect(&PostgresOptions {
        url: url.clone(),
        pool: 8,
        lease: Duration::from_secs(30),
        session_ttl: Duration::from_secs(3600),
    })
    .await
    .unwrap();
    // Several statements at once, so that several connections are kept.
    let accepted = futures_util::future::join_all(
        (0..12).map(|i| store.enqueue(entry("t", &format!("c{i}"), "before", None), ROOMY)),
    )
    .await;
    assert!(
        accepted
            .iter()
            .all(|a| matches!(a, Ok(Accepted::Queued(_))))
    );
    (store, sqlx::PgConnection::connect(&url).await.unwrap())
}

/// Ends every connection to the database but `admin`'s.
async fn terminate_others(admin: &mut sqlx::PgConnection) {
    let ended: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_one(admin)
    .await
    .unwrap();
    assert!(ended >= 2, "the store's connections: {ended}");
}

/// Ten accepts after the connections were ended: those that failed, and
/// how many messages the inbox holds then.
async fn accept_ten(
    store: &PostgresStore,
    admin: &mut sqlx::PgConnection,
) -> (Vec<(usize, String)>, usize) {
    let mut failed = Vec::new();
    for i in 0..10 {
        match store
            .enqueue(entry("t", "after", &format!("m{i}"), None), ROOMY)
            .await
        {
            Ok(Accepted::Queued(_)) => {}
            Ok(other) => panic!("message {i}: {other:?}"),
            Err(e) => failed.push((i, e.to_string())),
        }
    }
    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox")
        .fetch_one(admin)
        .await
        .unwrap();
    (failed, held as usize)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_ended_by_the_server_cost_no_message() {
    let (store, mut admin) = busy_store().await;
    terminate_others(&mut admin).await;
    let (failed, held) = accept_ten(&store, &mut admin).await;
    // The first accept found its kept connection ended and ran again on a
    // live one; the connections kept with it went back to the pool, so no
    // other statement found out.
    assert_eq!(failed, []);
    assert_eq!(store.statements_retried(), 1);
    assert_eq!(held, 12 + 10, "every message accepted, each once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_ended_while_the_store_was_quiet_cost_nothing() {
    let (store, mut admin) = busy_store().await;
    terminate_others(&mut admin).await;
    // Longer than a kept connection is used without a test (a second).
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let (failed, held) = accept_ten(&store, &mut admin).await;
    assert_eq!(failed, []);
    assert_eq!(
        store.statements_retried(),
        0,
        "tested before use, none ran twice"
    );
    assert_eq!(held, 12 + 10);
}
