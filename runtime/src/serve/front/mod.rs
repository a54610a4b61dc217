//! The HTTP front's connections: accepted under a cap (in total and per
//! client address, refused with a 503 that says so), headers read within a
//! deadline (hyper's `header_read_timeout`, which also closes a keep-alive
//! connection left idle that long), bodies within another, every request
//! answered within a third (503), and failed
//! authentications throttled per address. Running out of file descriptors
//! pauses accepting instead of failing.

pub mod deadlines;
pub mod forwarded;
pub mod slots;
pub mod throttle;

use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

use slots::{Refused, Slots};
use throttle::AuthThrottle;

/// The front's limits (`http:` in the serve config).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpLimits {
    /// A request's headers must arrive within this (and a keep-alive
    /// connection may stay idle this long).
    #[serde(default = "default_header_timeout_ms")]
    pub header_timeout_ms: u64,
    /// A request's body must arrive within this once its headers have (408).
    #[serde(default = "default_body_timeout_ms")]
    pub body_timeout_ms: u64,
    /// A request is answered within this (503), body included.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Open connections at most (also kept below the file descriptor limit).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Open connections from one client address at most.
    #[serde(default = "default_max_connections_per_address")]
    pub max_connections_per_address: usize,
    /// Answers of 401 one address may get in a minute before it is answered
    /// 429 until the minute ends.
    #[serde(default = "default_auth_failures_per_minute")]
    pub auth_failures_per_minute: u32,
    /// Reverse proxies (addresses or networks) whose `X-Forwarded-For` names
    /// the client; none by default (the TCP peer is the client).
    #[serde(default, deserialize_with = "forwarded::networks")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

fn default_header_timeout_ms() -> u64 {
    10_000
}
fn default_body_timeout_ms() -> u64 {
    15_000
}
fn default_request_timeout_ms() -> u64 {
    60_000
}
fn default_max_connections() -> usize {
    10_000
}
fn default_max_connections_per_address() -> usize {
    256
}
fn default_auth_failures_per_minute() -> u32 {
    30
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_timeout_ms: default_header_timeout_ms(),
            body_timeout_ms: default_body_timeout_ms(),
            request_timeout_ms: default_request_timeout_ms(),
            max_connections: default_max_connections(),
            max_connections_per_address: default_max_connections_per_address(),
            auth_failures_per_minute: default_auth_failures_per_minute(),
            trusted_proxies: Vec::new(),
        }
    }
}

/// File descriptors kept free of connections: the store, bot files,
/// outbound deliveries and fetches.
const RESERVED_FDS: u64 = 256;

impl HttpLimits {
    pub fn check(&self) -> anyhow::Result<()> {
        let times = [
            ("headerTimeoutMs", self.header_timeout_ms),
            ("bodyTimeoutMs", self.body_timeout_ms),
            ("requestTimeoutMs", self.request_timeout_ms),
        ];
        for (name, ms) in times {
            if ms == 0 {
                anyhow::bail!("http.{name} must be at least 1 ms");
            }
        }
        if self.max_connections == 0 || self.max_connections_per_address == 0 {
            anyhow::bail!(
                "http.maxConnections and http.maxConnectionsPerAddress must be at least 1"
            );
        }
        Ok(())
    }

    /// The connection cap this process can hold: raises the soft file
    /// descriptor limit to the hard one and keeps [`RESERVED_FDS`] free.
    fn connection_cap(&self) -> usize {
        let fds = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
        let cap = (fds.saturating_sub(RESERVED_FDS) as usize).clamp(1, self.max_connections);
        if cap < self.max_connections {
            tracing::warn!(
                cap,
                file_descriptors = fds,
                "http.maxConnections lowered to what the file descriptor limit allows"
            );
        }
        cap
    }
}

/// The router with the request-level limits: the body deadline, the
/// request deadline and failed-auth throttling.
pub fn guard(router: Router, limits: &HttpLimits) -> Router {
    let deadlines = deadlines::Deadlines {
        body: Duration::from_millis(limits.body_timeout_ms),
        request: Duration::from_millis(limits.request_timeout_ms),
    };
    router
        .layer(axum::middleware::from_fn_with_state(
            deadlines,
            deadlines::within,
        ))
        .layer(axum::middleware::from_fn_with_state(
            AuthThrottle::new(limits.auth_failures_per_minute),
            throttle::throttle,
        ))
}

/// Serves `router` on `listener` until `stop`; then lets the requests in
/// flight finish (at most one request timeout).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let slots = Slots::new(limits.connection_cap(), limits.max_connections_per_address);
    let trusted: std::sync::Arc<[ipnet::IpNet]> = limits.trusted_proxies.clone().into();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_timeout_ms));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(100)
        .keep_alive_interval(Duration::from_millis(limits.header_timeout_ms))
        .keep_alive_timeout(Duration::from_millis(limits.header_timeout_ms));
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (stream, client) = match accepted {
            Ok(a) => a,
            Err(e) => {
                accept_failed(e).await;
                continue;
            }
        };
        let slot = match slots.take(client.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                tokio::spawn(refuse(stream, why));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let trusted = trusted.clone();
        let service = router
            .clone()
            .map_request(move |request: Request<Incoming>| {
                let mut request = request.map(axum::body::Body::new);
                let client = forwarded::client(client, request.headers(), &trusted);
                request.extensions_mut().insert(ConnectInfo(client));
                request
            });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%client, %e, "connection ended");
            }
            drop(slot);
        });
    }
    drop(listener);
    let wait = Duration::from_millis(limits.request_timeout_ms);
    if tokio::time::timeout(wait, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the request timeout; closing them");
    }
    Ok(())
}

/// Accepting failed: out of file descriptors (or memory) pauses accepting a
/// moment so connections can close; a connection reset before it was
/// accepted is nothing.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted) {
        return;
    }
    tracing::warn!(%e, "accepting a connection failed; pausing 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Answers a connection over the cap with a 503 saying why, then closes it.
async fn refuse(mut stream: TcpStream, why: Refused) {
    let body = serde_json::json!({ "error": why.message() }).to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let write = async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}
