//! The HTTP front cannot be held open or burned for free: connection caps
//! (in total and per address), header, idle and body deadlines, and
//! failed-auth throttling, each both ways, over raw sockets on 127.0.0.x.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sandbot::serve::Server;
use sandbot::serve::config::hash_token;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::flow::support::write_bot;
use crate::serve::webhook::BLOCKS;

/// A server whose front has small limits: 8 connections per address, 400 ms
/// for headers and for bodies, 5 failed authentications a minute.
async fn serve(bot: &std::path::Path, data: &std::path::Path) -> Server {
    serve_with(bot, data, "").await
}

/// The same, with more of tenant `one`'s settings (`key: value, `).
async fn serve_with(bot: &std::path::Path, data: &std::path::Path, tenant: &str) -> Server {
    let top = "http:\n  headerTimeoutMs: 400\n  bodyTimeoutMs: 400\n  maxConnections: 40\n  maxConnectionsPerAddress: 8\n  authFailuresPerMinute: 5\n";
    let setup = crate::common::Setup {
        top,
        tenant,
        ..Default::default()
    };
    crate::common::serve_bot(data, bot, setup).await
}

/// A connection to `to` from the loopback address `from` (127.0.0.x).
async fn connect(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

/// Everything the server sends until it closes the connection, within 5 s.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&out).into_owned()
}

/// One request on a fresh connection from `from`; the whole answer.
async fn request(from: &str, to: SocketAddr, text: &str) -> String {
    let mut stream = connect(from, to).await;
    stream.write_all(text.as_bytes()).await.unwrap();
    read_to_close(&mut stream).await
}

const HEALTH: &str = "GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";

fn webhook(token: &str, body: &str) -> String {
    format!(
        "POST /v1/channels/webhook/hook/messages HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

const INTRO: &str = r#"{"conversationId": "c1", "message": {"introMessage": {}}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_from_one_address_leaves_healthz_answering() {
    let bot = write_bot("", BLOCKS, &[]);
    let data = tempfile::tempdir().unwrap();
    let server = serve(bot.path(), data.path()).await;
    let addr = server.addr;

    // Inside: headers that arrive in pieces within 400 ms are served.
    let mut slow = connect("127.0.0.1", addr).await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    slow.write_all(b"host: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut slow).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // Eight half-sent requests from one address hold its eight slots ...
    let mut held = Vec::new();
    for _ in 0..8 {
        let mut s = connect("127.0.0.1", addr).await;
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
            .await
            .unwrap();
        held.push(s);
    }
    // ... so a ninth from it is refused at once, saying why ...
    let refused = request("127.0.0.1", addr, HEALTH).await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("retry-after: 1"), "{refused}");
    assert!(
        refused.contains("too many open connections from your address"),
        "{refused}"
    );
    // ... while another address is served.
    let other = request("127.0.0.2", addr, HEALTH).await;
    assert!(other.starts_with("HTTP/1.1 200"), "{other}");

    // Past the header deadline the server closes the held connections.
    let started = Instant::now();
    for s in &mut held {
        read_to_close(s).await;
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    let mut served = String::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !served.starts_with("HTTP/1.1 200") && Instant::now() < deadline {
        served = request("127.0.0.1", addr, HEALTH).await;
    }
    assert!(served.starts_with("HTTP/1.1 200"), "{served}");

    // A keep-alive connection left idle is closed after the same deadline.
    let mut idle = connect("127.0.0.3", addr).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut idle).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_slower_than_its_deadline_is_408() {
    let bot = write_bot("", BLOCKS, &[]);
    let data = tempfile::tempdir().unwrap();
    let server = serve(bot.path(), data.path()).await;
    let addr = server.addr;
    let whole = webhook("token-one", INTRO);
    let (head, body) = whole.split_at(whole.len() - INTRO.len() + 10);

    // Inside: the body in two pieces, 150 ms apart.
    let mut s = connect("127.0.0.1", addr).await;
    s.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    s.write_all(body.as_bytes()).await.unwrap();
    let answer = read_to_close(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");

    // Over: the rest of the body never comes.
    let mut s = connect("127.0.0.1", addr).await;
    s.write_all(head.as_bytes()).await.unwrap();
    let answer = read_to_close(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains(r#"{"error":"the request body did not arrive within 400 ms"}"#),
        "{answer}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentication_is_throttled_per_address() {
    let bot = write_bot("", BLOCKS, &[]);
    let data = tempfile::tempdir().unwrap();
    let server = serve(bot.path(), data.path()).await;
    let addr = server.addr;
    // The window is a minute on the clock: start well inside one.
    crate::common::inside_one_minute(10).await;

    // Inside: five wrong tokens are each told so.
    for _ in 0..5 {
        let answer = request("127.0.0.1", addr, &webhook("wrong", INTRO)).await;
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    }
    // Over: the address waits for the next minute, even with the right token.
    let answer = request("127.0.0.1", addr, &webhook("token-one", INTRO)).await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(answer.contains("retry-after: "), "{answer}");
    assert!(
        answer.contains("too many failed authentications from your address (5 a minute)"),
        "{answer}"
    );
    // Health checks and other addresses are not affected.
    let health = request("127.0.0.1", addr, HEALTH).await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let other = request("127.0.0.2", addr, &webhook("token-one", INTRO)).await;
    assert!(other.starts_with("HTTP/1.1 202"), "{other}");
    server.shutdown().await.unwrap();
}

/// A webhook request that arrived through a proxy which says its client is `client`.
fn forwarded(client: &str, token: &str) -> String {
    webhook(token, INTRO).replacen(
        "host: x\r\n",
        &format!("host: x\r\nx-forwarded-for: {client}\r\n"),
        1,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_client_is_counted_apart_and_no_one_else_may_say_so() {
    let bot = write_bot("", BLOCKS, &[]);
    let data = tempfile::tempdir().unwrap();
    let top = "http:\n  authFailuresPerMinute: 2\n  trustedProxies: [127.0.0.1]\n";
    let setup = crate::common::Setup {
        top,
        ..Default::default()
    };
    let server = crate::common::serve_bot(data.path(), bot.path(), setup).await;
    let addr = server.addr;
    crate::common::inside_one_minute(10).await;

    // Through the proxy (127.0.0.1), client 203.0.113.5 uses up its failures…
    for _ in 0..2 {
        let answer = request("127.0.0.1", addr, &forwarded("203.0.113.5", "wrong")).await;
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    }
    let answer = request("127.0.0.1", addr, &forwarded("203.0.113.5", "token-one")).await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    // …which neither another client of the proxy nor the proxy itself pays for.
    let answer = request("127.0.0.1", addr, &forwarded("203.0.113.6", "token-one")).await;
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    let answer = request("127.0.0.1", addr, &webhook("token-one", INTRO)).await;
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    // A client cannot hide behind a made-up hop: the proxy appends the
    // address it saw, and that one counts.
    let answer = request(
        "127.0.0.1",
        addr,
        &forwarded("198.51.100.1, 203.0.113.5", "token-one"),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    // From an address that is not a trusted proxy the header is ignored:
    // 127.0.0.2 fails twice under other names and is still throttled.
    for name in ["192.0.2.1", "192.0.2.2"] {
        let answer = request("127.0.0.2", addr, &forwarded(name, "wrong")).await;
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    }
    let answer = request("127.0.0.2", addr, &forwarded("192.0.2.3", "token-one")).await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    // /metrics answers this machine only: a client outside, forwarded by the
    // local proxy, is not this machine.
    let metrics = "GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n";
    let answer = request(
        "127.0.0.1",
        addr,
        &format!("{metrics}x-forwarded-for: 203.0.113.9\r\n\r\n"),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    let answer = request("127.0.0.1", addr, &format!("{metrics}\r\n")).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    server.shutdown().await.unwrap();
}

#[test]
fn a_trusted_proxy_that_is_not_an_address_is_refused_at_start() {
    let e = serde_norway::from_str::<sandbot::serve::front::HttpLimits>(
        "trustedProxies: [\"proxy.local\"]",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("trustedProxies: `proxy.local` is not an address or a network (`10.0.0.0/8`)"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_not_answered_within_its_deadline_is_503() {
    let blocks = r#"
  - { id: intro, system: introduction, type: input, variable: what, question: "What?", nlp: false, goto: spin }
  - { id: spin, type: action, code: spin.js }
"#;
    let bot = write_bot("", blocks, &[("spin.js", "while (true) {}")]);
    let data = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"
listen: 127.0.0.1:0
data: {data}
http: {{ requestTimeoutMs: 800 }}
tenants:
  - {{ id: one, tokens: ["{t1}"], limits: {{ timeoutMs: 3000, fuel: 1000000000000 }} }}
bots:
  - folder: {bot}
    tenant: one
    channels: {{ web: {{}} }}
"#,
        data = data.path().join("data").display(),
        bot = bot.path().display(),
        t1 = hash_token("token-one"),
    );
    let server = crate::common::serve_yaml(data.path(), &yaml).await;
    let mut web = crate::serve::web::Web::new(&format!("http://{}", server.addr), None);

    // Inside: the question comes back at once.
    let (s, a) = web.send("test", json!({"introMessage": {}})).await;
    assert_eq!(s, 200, "{a}");
    // Over: the action spins for 3 s; the request is answered at 800 ms.
    let started = Instant::now();
    let (s, a) = web
        .send("test", json!({"textMessage": {"text": "go"}}))
        .await;
    assert_eq!(
        (s, a["error"].as_str().unwrap_or_default()),
        (
            503,
            "no answer within 800 ms (http.requestTimeoutMs); an accepted message is still processed"
        )
    );
    assert!(started.elapsed() < Duration::from_millis(2500));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_past_its_inbound_rate_is_429_on_its_channels() {
    let bot = write_bot("", BLOCKS, &[]);
    let data = tempfile::tempdir().unwrap();
    let tenant = "inboundRate: { requests: 3, seconds: 3600 }, ";
    let server = serve_with(bot.path(), data.path(), tenant).await;
    let addr = server.addr;
    // Inside: three messages are accepted.
    for i in 0..3 {
        let body = format!(r#"{{"conversationId": "c{i}", "message": {{"introMessage": {{}}}}}}"#);
        let answer = request("127.0.0.1", addr, &webhook("token-one", &body)).await;
        assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    }
    // Over: the fourth is refused, with when to retry.
    let answer = request("127.0.0.1", addr, &webhook("token-one", INTRO)).await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(answer.contains("retry-after: "), "{answer}");
    assert!(
        answer
            .contains("tenant `one` is past its inbound rate (3 messages per 3600 s); retry later"),
        "{answer}"
    );
    server.shutdown().await.unwrap();
}
