//! A real PostgreSQL for tests (Debian's `postgresql-15`), started once per
//! test binary on a free 127.0.0.1 port with its data in a temp folder, as
//! the `postgres` user when run as root (`initdb` refuses root). It stops
//! when the test process ends. `SANDBOT_TEST_DATABASE_URL` (a server's admin
//! URL) uses a running server instead. Each caller gets a fresh database.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

struct Server {
    /// `postgres://postgres@127.0.0.1:PORT`, without a database.
    admin: String,
}

fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").is_file())
        .collect();
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL is not installed: `apt-get install postgresql-15` (tests start their own server), or set SANDBOT_TEST_DATABASE_URL"
        )
    })
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
}

/// `sh -c script`, as the postgres user when root.
fn shell(script: &str) -> Command {
    let mut c = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", "sh", "-c", script]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    };
    c.stdin(Stdio::null());
    c
}

static SERVER: LazyLock<Server> = LazyLock::new(|| {
    if let Ok(url) = std::env::var("SANDBOT_TEST_DATABASE_URL") {
        return Server {
            admin: url.trim_end_matches('/').to_string(),
        };
    }
    let bin = bin_dir();
    let dir = std::env::temp_dir().join(format!("sandbot-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    if is_root() {
        let ok = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "chown of the PostgreSQL test folder");
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let d = dir.display();
    let b = bin.display();
    let init = shell(&format!(
        "{b}/initdb -D {d}/data -A trust -U postgres --no-sync >{d}/initdb.log 2>&1"
    ))
    .status()
    .unwrap();
    assert!(init.success(), "initdb failed: see {d}/initdb.log");
    // The server lives as long as this test process: its watcher stops it
    // once the process is gone (nothing here waits for the watcher).
    let me = std::process::id();
    let watcher = shell(&format!(
        "{b}/postgres -D {d}/data -p {port} -k {d} -c listen_addresses=127.0.0.1 -c max_connections=300 >{d}/server.log 2>&1 & pg=$!; \
         while [ -d /proc/{me} ]; do sleep 0.5; done; kill -INT $pg; wait $pg; rm -rf {d}"
    ))
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    std::mem::forget(watcher);
    let admin = format!("postgres://postgres@127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "PostgreSQL did not start: see {d}/server.log"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Server { admin }
});

/// The URL of a new, empty database on the test server.
pub async fn database() -> String {
    let admin = &SERVER.admin;
    let name = format!("t{}", {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).unwrap();
        u64::from_le_bytes(b)
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // The server accepts connections shortly after its port opens.
        match sqlx_admin(admin, &format!("CREATE DATABASE {name}")).await {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("creating a test database: {e}"),
        }
    }
    format!("{admin}/{name}")
}

async fn sqlx_admin(admin: &str, sql: &str) -> Result<(), String> {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&format!("{admin}/postgres"))
        .await
        .map_err(|e| e.to_string())?;
    sqlx::raw_sql(sql)
        .execute(&mut c)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}
