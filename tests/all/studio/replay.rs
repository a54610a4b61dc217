//! A production failure replayed in the studio: a code action fails on a
//! fetch answer; the studio lists it, replays it against the recorded answer
//! (the network is not asked again, the clock and randomness repeat), the
//! fix passes on the same data. Request credentials and cookies are never
//! recorded.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::header;
use axum::routing::get;
use reqwest::Client;
use serde_json::{Value, json};

use crate::common::serve_yaml;
use crate::flow::support::write_bot;
use crate::serve::web::Web;

const BLOCKS: &str = "  - { id: intro, system: introduction, type: action, code: total.js, args: { url: \"{api}\" }, goto: done }\n  - { id: done, type: message, messages: [{ text: \"done\" }] }\n";

/// Fails when the price comes as a string (the bug).
const BUGGY: &str = "const res = await fetch(args.url, { headers: { Authorization: 'Bearer secret-123' } });\nconst d = await res.json();\nif (typeof d.price !== 'number') throw new Error('price is not a number: ' + JSON.stringify(d.price));\nsay('Total ' + (d.price * 2).toFixed(2));\n";
const FIXED: &str = "const res = await fetch(args.url, { headers: { Authorization: 'Bearer secret-123' } });\nconst d = await res.json();\nsay('Total ' + (Number(d.price) * 2).toFixed(2));\n";

async fn price_api(hits: Arc<AtomicUsize>) -> std::net::SocketAddr {
    let app = Router::new().route(
        "/price",
        get(move || {
            hits.fetch_add(1, Ordering::SeqCst);
            async {
                (
                    [
                        (header::CONTENT_TYPE, "application/json"),
                        (header::SET_COOKIE, "session=s3cr3t-cookie"),
                    ],
                    r#"{"price":"12.50"}"#,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn call(client: &Client, url: String, body: Option<Value>) -> (u16, Value) {
    let req = match body {
        Some(b) => client
            .post(url)
            .header("content-type", "application/json")
            .body(b.to_string()),
        None => client.get(url),
    };
    let res = req.bearer_auth("token-one").send().await.unwrap();
    let status = res.status().as_u16();
    (
        status,
        serde_json::from_str(&res.text().await.unwrap()).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_production_failure_is_replayed_fixed_and_passes() {
    let hits = Arc::new(AtomicUsize::new(0));
    let api = price_api(hits.clone()).await;
    let bot = write_bot("", BLOCKS, &[("total.js", BUGGY)]);
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "listen: 127.0.0.1:0\ndata: data\ntenants:\n  - {{ id: one, tokens: [\"{}\"], limits: {{ allowHosts: [\"http://{api}\"] }} }}\n  - {{ id: two, tokens: [\"{}\"] }}\n\
         bots:\n  - {{ folder: {b}, tenant: one, channels: {{ web: true }} }}\n",
        sandbot::serve::config::hash_token("token-one"),
        sandbot::serve::config::hash_token("token-two"),
        b = bot.path().display(),
    );
    let server = serve_yaml(dir.path(), &yaml).await;
    let base = format!("http://{}", server.addr);
    let client = Client::new();

    // In production the action fails: the bot says its error message.
    let mut web = Web::new(&base, None);
    let (status, first) = web.send("test", json!({"introMessage": {}})).await;
    assert_eq!(status, 200, "{first}");
    let (_, session) = web
        .send("test", json!({"textMessage": {"text": "hi"}}))
        .await;
    let _ = session;
    assert_eq!(hits.load(Ordering::SeqCst), 0, "no url in the session yet");
    // A session with the API's address, then the failing turn.
    let rest = format!(
        "{base}/v1/bots/test/conversations/{}/actions",
        web_conversation(&server, &web)
    );
    let (s, _) = call(
        &client,
        rest,
        Some(json!({"setSessionData": {"api": format!("http://{api}/price")}, "goToDialogstate": "intro"})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // The studio lists the failure with what it recorded.
    let (status, list) = call(
        &client,
        format!("{base}/v1/studio/bots/test/failures"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    let f = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["fetches"] == 1)
        .unwrap_or_else(|| panic!("{list}"))
        .clone();
    assert_eq!(f["action"], "total.js");
    assert_eq!(f["version"], "LIVE");
    assert_eq!(f["error"]["kind"], "js_error");
    assert!(
        f["error"]["message"]
            .as_str()
            .unwrap()
            .contains("price is not a number: \"12.50\"")
    );
    let id = f["id"].as_str().unwrap();
    let (_, record) = call(
        &client,
        format!("{base}/v1/studio/bots/test/failures/{id}"),
        None,
    )
    .await;
    let answer = &record["recording"]["answers"][0];
    assert_eq!(answer["response"]["body"], r#"{"price":"12.50"}"#);
    assert_eq!(record["args"]["url"], format!("http://{api}/price"));
    // The request's Authorization header and the answer's cookie are not
    // in the recording (the script's own text is, as written).
    let text = record["recording"].to_string();
    for secret in ["secret-123", "authorization", "s3cr3t-cookie", "set-cookie"] {
        assert!(
            !text.to_lowercase().contains(secret),
            "{secret} recorded: {text}"
        );
    }
    assert!(!record.to_string().contains("s3cr3t-cookie"));

    // Replayed on the failing code: the same error, from the recorded answer.
    let replay = format!("{base}/v1/studio/bots/test/failures/{id}/replay");
    let (status, again) = call(&client, replay.clone(), Some(json!({}))).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["status"], "error");
    assert_eq!(again["error"]["message"], f["error"]["message"]);
    assert_eq!(again["error"]["line"], 3);
    assert_eq!(again["replayed"]["code"], "failed");
    assert_eq!(again["fetches"][0]["status"], 200);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "a replay does not reach the network"
    );

    // The fix, replayed with the same data: it passes.
    let (_, fixed) = call(&client, replay.clone(), Some(json!({"source": FIXED}))).await;
    assert_eq!(fixed["status"], "ok", "{fixed}");
    assert_eq!(
        fixed["messages"][0]["config"]["textMessages"][0]["text"],
        "Total 25.00"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // Clock and randomness repeat: two replays see the same values, and the
    // clock starts where the production run did.
    let probe = "const res = await fetch(args.url); say(String(Math.random()) + ' ' + crypto.randomUUID()); return Date.now();";
    let (_, a) = call(&client, replay.clone(), Some(json!({"source": probe}))).await;
    let (_, b) = call(&client, replay.clone(), Some(json!({"source": probe}))).await;
    assert_eq!(a["status"], "ok", "{a}");
    assert_eq!(a["messages"], b["messages"]);
    let started = record["recording"]["clockMs"].as_u64().unwrap();
    let now = a["output"].as_u64().unwrap();
    assert!(now >= started && now - started < 5_000, "{started} {now}");
    // A replay that fetches something else is told so.
    let other = "await fetch(args.url + '?x=1');";
    let (_, c) = call(&client, replay.clone(), Some(json!({"source": other}))).await;
    assert_eq!(c["status"], "error");
    assert!(
        c["error"]["message"]
            .as_str()
            .unwrap()
            .contains("replay: the recorded run fetched GET"),
        "{c}"
    );

    // Saving the fix and replaying on the current code: it passes too.
    let (status, _) = call(
        &client,
        format!("{base}/v1/studio/bots/test/versions"),
        Some(json!({"files": {"actions/total.js": FIXED}, "message": "price may be a string"})),
    )
    .await;
    assert_eq!(status, 201);
    let (_, current) = call(&client, replay.clone(), Some(json!({"current": true}))).await;
    assert_eq!(current["status"], "ok");
    assert_eq!(current["replayed"]["code"], "current");

    // Another tenant neither lists nor replays it; an unknown id is a 404.
    let two = |url: String| client.get(url).bearer_auth("token-two").send();
    let r = two(format!("{base}/v1/studio/bots/test/failures"))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let (status, _) = call(
        &client,
        format!("{base}/v1/studio/bots/test/failures/nope/replay"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 404);
    server.shutdown().await.unwrap();
}

/// The web visitor's conversation id (from its signed session token).
fn web_conversation(server: &sandbot::serve::Server, web: &Web) -> String {
    let token = &web.sessions["test"];
    sandbot::channels::web_session::verify(
        &server.state.web_key,
        "test",
        token,
        sandbot::store::now_ms() / 1000,
    )
    .unwrap()
    .c
}
