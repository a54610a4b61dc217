//! The PostgreSQL store keeps its connections between statements (sqlx's
//! pool would test each one given back with a round trip). When the server
//! ends them — its backends terminated, a restart — one statement finds
//! out, not one per kept connection, and the store goes on with new ones;
//! what it accepted before is still there.

use std::time::Duration;

use sandbot::store::{Accepted, PostgresOptions, PostgresStore, Store};
use sqlx::Connection;

use crate::store_conformance::{ROOMY, entry};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_ended_by_the_server_cost_one_statement() {
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

    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    let ended: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(ended >= 2, "the store's connections: {ended}");

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
    match failed.as_slice() {
        [] => {}
        [(0, why)] => assert_eq!(
            why,
            "store: postgres: error returned from database: terminating connection due to administrator command"
        ),
        more => panic!("more than the first statement failed: {more:?}"),
    }
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(
        kept as usize,
        12 + 10 - failed.len(),
        "nothing accepted is lost"
    );
}
