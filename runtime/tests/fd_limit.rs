//! `sandbot serve` under a low file descriptor limit (`ulimit -n 330`): it
//! keeps its connection cap below the limit (330 less 256 kept free), so
//! 120 connections held open neither crash it nor exhaust its descriptors —
//! those over the cap get a 503 that says why — and once they close it
//! serves again.

// Shared with the crash and multi-node tests; this one uses a part of it.
#[allow(dead_code)]
#[path = "support/cluster.rs"]
mod cluster;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cluster::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_a_low_descriptor_limit_the_cap_holds_and_the_server_recovers() {
    let dir = tempfile::tempdir().unwrap();
    write_bot(dir.path());
    let port = free_port();
    let config = dir.path().join("serve.yaml");
    write_config(&config, port, "data", "", "http://127.0.0.1:9/hook");
    let cache = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache");
    let mut server = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 330 && exec {} serve --config {}",
            env!("CARGO_BIN_EXE_sandbot"),
            config.display()
        ))
        .env("SANDBOT_CACHE_DIR", cache)
        .env_remove("SANDBOT_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("serve.log")).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    // No pooled connection of ours holds a slot.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    ready(&client, &base).await;
    // The readiness probes' connections close on the server's side a little
    // after their answers; let them, so each slot of the cap is free.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // 120 half-sent requests: the first 74 are held, the rest refused.
    let mut held = Vec::new();
    for _ in 0..120 {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
            .await
            .unwrap();
        held.push(s);
    }
    // Read what each got, all at once (a held one gets nothing yet).
    let reads: Vec<_> = held
        .into_iter()
        .map(|mut s| {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 512];
                let read = tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await;
                let refused = matches!(read, Ok(Ok(n)) if String::from_utf8_lossy(&buf[..n])
                    .contains("too many open connections to this server"));
                (refused, s)
            })
        })
        .collect();
    let mut refused = 0;
    let mut held = Vec::new();
    for r in reads {
        let (was_refused, s) = r.await.unwrap();
        refused += usize::from(was_refused);
        held.push(s);
    }
    assert_eq!(
        refused,
        120 - 74,
        "connections over the cap are refused, saying why"
    );
    assert!(server.try_wait().unwrap().is_none(), "the server is alive");

    // Once they close, it serves again.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await
            && r.status() == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "the server did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop(server);
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(log.contains("http.maxConnections lowered"), "{log}");
    assert!(!log.contains("Too many open files"), "{log}");
}
