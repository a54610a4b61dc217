//! The public web chat's security, each point both ways: server-issued
//! conversations bound to signed, expiring tokens; embed tokens from the
//! bot's site; only the buttons the bot showed; the emulator only with the
//! tenant's token; other origins only when listed; rate limits.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use sandbot::channels::web_session::{self, Claims};
use sandbot::serve::Server;
use sandbot::serve::config::{Version, WebChannel};
use sandbot::store::now_ms;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::flow::support::write_bot;
use crate::serve::web::Web;
use crate::serve::webhook::{BLOCKS, config, post};

async fn server(bot: &std::path::Path, data: &std::path::Path) -> Server {
    server_with_secret(bot, data, "site-secret").await
}

async fn server_with_secret(bot: &std::path::Path, data: &std::path::Path, secret: &str) -> Server {
    let mut config = config(bot, &data.join("data"), "http://127.0.0.1:9/");
    config.bots[0].version = Version::Draft;
    config.bots[0].channels.web = Some(WebChannel {
        secret: Some(secret.into()),
        origins: vec!["https://shop.example.com".into()],
        ..WebChannel::default()
    });
    Server::start(&config).await.unwrap()
}

fn jwt(secret: &str, claims: Value) -> String {
    let h = B64.encode(json!({"alg": "HS256", "typ": "JWT"}).to_string());
    let p = B64.encode(claims.to_string());
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(format!("{h}.{p}").as_bytes());
    format!("{h}.{p}.{}", B64.encode(m.finalize().into_bytes()))
}

fn error(v: &Value) -> &str {
    v["error"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_request_reaches_only_its_own_conversation() {
    let bot = write_bot("", BLOCKS, &[]);
    let data = tempfile::tempdir().unwrap();
    let server = server(bot.path(), data.path()).await;
    let addr = server.addr.to_string();
    let mut web = Web::new(&format!("http://{addr}"), None);

    // A webhook conversation `c1` exists; the web chat cannot reach it.
    let intro = r#"{"conversationId": "c1", "message": {"introMessage": {}}}"#;
    assert_eq!(post(&addr, "hook", Some("token-one"), intro).await.0, 202);
    let (s, a) = web.send("test", json!({"introMessage": {}})).await;
    assert_eq!(s, 200, "{a}");
    let mine = web.sessions["test"].clone();
    let claims =
        web_session::verify(&server.state.web_key, "test@DRAFT", &mine, now_ms() / 1000).unwrap();
    assert!(
        claims.c.starts_with("web_") && claims.c.len() > 20,
        "{}",
        claims.c
    );
    let (s, a) = web
        .post(
            "test",
            &mine,
            json!({"conversationId": "c1", "message": {"introMessage": {}}}),
        )
        .await;
    assert_eq!(
        (s, error(&a)),
        (403, "this session token belongs to another conversation")
    );
    // Nor can a webhook sender pick a web conversation.
    let body = json!({"conversationId": claims.c, "message": {"introMessage": {}}}).to_string();
    let (s, a) = post(&addr, "hook", Some("token-one"), &body).await;
    assert_eq!(
        (s, error(&a)),
        (
            400,
            "conversation ids starting with `web_` belong to the web chat"
        )
    );

    // No token, a forged one, another bot's, an expired one.
    let (s, a) = web
        .post("test", "", json!({"message": {"introMessage": {}}}))
        .await;
    assert_eq!(s, 401);
    assert!(
        error(&a).starts_with("a web session token is required"),
        "{a}"
    );
    let forged = web_session::issue(b"not the server's key", &Claims { ..claims.clone() });
    let (s, a) = web
        .post("test", &forged, json!({"message": {"introMessage": {}}}))
        .await;
    assert_eq!(
        (s, error(&a)),
        (401, "the web session token's signature is invalid")
    );
    let key = server.state.web_key.clone();
    let other = web_session::issue(
        &key,
        &Claims {
            b: "other".into(),
            ..claims.clone()
        },
    );
    let (s, a) = web
        .post("test", &other, json!({"message": {"introMessage": {}}}))
        .await;
    assert_eq!(
        (s, error(&a)),
        (401, "the web session token is for another bot")
    );
    let expired = web_session::issue(
        &key,
        &Claims {
            e: now_ms() / 1000 - 1,
            ..claims.clone()
        },
    );
    let (s, a) = web
        .post("test", &expired, json!({"message": {"introMessage": {}}}))
        .await;
    assert_eq!(
        (s, error(&a)),
        (
            401,
            "the web session token has expired; start a new session"
        )
    );
    // Each answer renews the token (same conversation, later expiry).
    let (s, a) = web
        .post("test", &mine, json!({"message": {"introMessage": {}}}))
        .await;
    assert_eq!(s, 200, "{a}");
    let renewed = web_session::verify(
        &key,
        "test@DRAFT",
        a["session"].as_str().unwrap(),
        now_ms() / 1000,
    )
    .unwrap();
    assert_eq!(renewed.c, claims.c);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_can_only_press_the_buttons_the_bot_showed() {
    let bot = write_bot("", BLOCKS, &[]);
    let data = tempfile::tempdir().unwrap();
    let server = server(bot.path(), data.path()).await;
    let mut web = Web::new(&format!("http://{}", server.addr), None);
    let (_, intro) = web.send("test", json!({"introMessage": {}})).await;
    let payload = intro["messages"][1]["config"]["quickReplies"][0]["payload"].clone();
    for (bad, why) in [
        (
            json!({"postbackMessage": {"nextDialogstateId": "yes", "sessionDataToSet": [{"key": "verified", "value": true}]}}),
            "the web chat takes only the payload of a button the bot showed (no `nextDialogstateId`)",
        ),
        (
            json!({"postbackMessage": {"payload": "{\"nextDialogstateId\": \"yes\"}"}}),
            "the web chat takes only the payload of a button the bot showed in this conversation",
        ),
    ] {
        let (s, a) = web.send("test", bad).await;
        assert_eq!((s, error(&a)), (400, why));
    }
    // A real payload id, shown in another conversation only, is refused here.
    let mut stranger = Web::new(&web.base, None);
    let (s, a) = stranger
        .send(
            "test",
            json!({"postbackMessage": {"title": "Yes", "payload": payload}}),
        )
        .await;
    assert_eq!(
        (s, error(&a)),
        (
            400,
            "the web chat takes only the payload of a button the bot showed in this conversation"
        )
    );
    let (s, a) = web
        .send(
            "test",
            json!({"postbackMessage": {"title": "Yes", "payload": payload}}),
        )
        .await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(
        a["messages"][0]["config"]["textMessages"][0]["text"],
        "You said yes"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_needs_the_tenants_token_and_embeds_need_the_sites_signature() {
    let bot = write_bot("", BLOCKS, &[]);
    let data = tempfile::tempdir().unwrap();
    let server = server(bot.path(), data.path()).await;
    let base = format!("http://{}", server.addr);
    for (tenant, shown) in [
        (None, false),
        (Some("token-two"), false),
        (Some("token-one"), true),
    ] {
        let mut web = Web::new(&base, tenant);
        let (s, a) = web.send("test", json!({"introMessage": {}})).await;
        assert_eq!(s, 200);
        assert_eq!(a.get("emulator").is_some(), shown, "{tenant:?}: {a}");
    }

    // The site's server vouches for its user: the conversation follows the
    // user, the session data is set; a forged or expired token is refused.
    let exp = now_ms() / 1000 + 60;
    let good = jwt(
        "site-secret",
        json!({"sessionId": "user-42", "session": {"plan": "gold"}, "exp": exp}),
    );
    let web = Web::new(&base, Some("token-one"));
    let (s, first) = web.open("test", json!({"token": good})).await;
    assert_eq!(s, 201, "{first}");
    let (_, again) = web.open("test", json!({"token": good})).await;
    assert_eq!(first["conversationId"], again["conversationId"]);
    let session = first["session"].as_str().unwrap();
    let (_, a) = web
        .post("test", session, json!({"message": {"introMessage": {}}}))
        .await;
    assert_eq!(a["emulator"]["session"]["plan"], "gold");
    for (token, why) in [
        (
            jwt("guess", json!({"sessionId": "user-42", "exp": exp})),
            "the embed token's signature is invalid",
        ),
        (
            jwt("site-secret", json!({"sessionId": "user-42", "exp": 1})),
            "the embed token has expired",
        ),
    ] {
        let (s, a) = web.open("test", json!({"token": token})).await;
        assert_eq!((s, error(&a)), (401, why));
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_origins_only_when_listed_and_rate_limits() {
    let bot = write_bot("", BLOCKS, &[]);
    let data = tempfile::tempdir().unwrap();
    let server = server(bot.path(), data.path()).await;
    let base = format!("http://{}", server.addr);
    let client = reqwest::Client::new();
    // The rate windows are minutes on the clock: what this test counts
    // (sessions from its start, then messages) must fall in one. Under load
    // the 30 messages crossed into the next minute, and the 31st was taken.
    crate::common::inside_one_minute(20).await;
    let open = |origin: &'static str| {
        client
            .post(format!("{base}/v1/channels/web/test/sessions"))
            .header("origin", origin)
            .send()
    };
    // Only the listed site may frame the chat page; the widget is served.
    let page = reqwest::get(format!("{base}/chat/test")).await.unwrap();
    assert_eq!(
        page.headers()["content-security-policy"],
        "frame-ancestors 'self' https://shop.example.com"
    );
    let widget = reqwest::get(format!("{base}/widget.js")).await.unwrap();
    assert_eq!(widget.status(), 200);
    assert!(
        widget
            .text()
            .await
            .unwrap()
            .contains("window.sandbot = { open: open, close: close")
    );
    let res = open("https://evil.example").await.unwrap();
    assert_eq!(res.status(), 403);
    let res = open("https://shop.example.com").await.unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://shop.example.com"
    );
    let pre = client
        .request(
            reqwest::Method::OPTIONS,
            format!("{base}/v1/channels/web/test/messages"),
        )
        .header("origin", "https://shop.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 204);
    assert!(
        pre.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );

    // 30 messages a minute per conversation, then 429 with Retry-After.
    let mut web = Web::new(&base, None);
    for n in 0..30 {
        let (s, a) = web
            .send("test", json!({"textMessage": {"text": format!("m{n}")}}))
            .await;
        assert_eq!(s, 200, "message {n}: {a}");
    }
    let session = web.session("test").await;
    let res = client
        .post(format!("{base}/v1/channels/web/test/messages"))
        .header("authorization", format!("Bearer {session}"))
        .header("content-type", "application/json")
        .body(json!({"message": {"textMessage": {"text": "one more"}}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
    assert_eq!(
        error(&body),
        "too many web chat requests in this conversation (30 a minute); retry later"
    );
    // 30 new sessions a minute per address: one was opened above, 2 by `open`.
    let mut statuses = Vec::new();
    for _ in 0..28 {
        statuses.push(Web::new(&base, None).open("test", json!({})).await.0);
    }
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let (s, a) = Web::new(&base, None).open("test", json!({})).await;
    assert_eq!(
        (s, error(&a)),
        (
            429,
            "too many web chat requests from this address (30 a minute); retry later"
        )
    );
    server.shutdown().await.unwrap();
}

/// After a reload the page gets its conversation back: what the visitor said
/// and the bot's messages, only with that conversation's token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reloaded_page_gets_back_only_its_own_conversation() {
    let bot = write_bot("", BLOCKS, &[]);
    let data = tempfile::tempdir().unwrap();
    let server = server(bot.path(), data.path()).await;
    let mut web = Web::new(&format!("http://{}", server.addr), None);
    let (s, a) = web.send("test", json!({"introMessage": {}})).await;
    assert_eq!(s, 200, "{a}");
    let (s, a) = web
        .send("test", json!({"textMessage": {"text": "hello there"}}))
        .await;
    assert_eq!(s, 200, "{a}");
    let mine = web.sessions["test"].clone();
    let (s, got) = web.history("test", &mine).await;
    assert_eq!(s, 200, "{got}");
    let said: Vec<String> = got["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| match m["from"].as_str().unwrap() {
            "user" => format!("user: {}", m["text"].as_str().unwrap()),
            _ => format!(
                "bot: {}",
                m["message"]["config"]["textMessages"][0]["text"]
                    .as_str()
                    .unwrap()
            ),
        })
        .collect();
    assert_eq!(said[..2], ["bot: Hi", "bot: Pick"]);
    assert_eq!(said[2], "user: hello there");
    // Another visitor's token reads only its own (empty) conversation.
    let (s, other) = web.open("test", json!({})).await;
    assert_eq!(s, 201);
    let (s, theirs) = web
        .history("test", other["session"].as_str().unwrap())
        .await;
    assert_eq!((s, theirs["messages"].as_array().unwrap().len()), (200, 0));
    assert_ne!(theirs["conversationId"], got["conversationId"]);
    // No token, a forged one: refused.
    let (s, a) = web.history("test", "").await;
    assert_eq!(s, 401);
    assert!(
        error(&a).starts_with("a web session token is required"),
        "{a}"
    );
    let claims =
        web_session::verify(&server.state.web_key, "test@DRAFT", &mine, now_ms() / 1000).unwrap();
    let forged = web_session::issue(b"not the server's key", &claims);
    let (s, a) = web.history("test", &forged).await;
    assert_eq!(
        (s, error(&a)),
        (401, "the web session token's signature is invalid")
    );
    server.shutdown().await.unwrap();
}

/// Chatlayer's encrypted embed tokens (AES-256-CBC, made with `openssl enc`
/// as Chatlayer's Node snippet does) open the page user's conversation;
/// expired or wrongly keyed ones are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chatlayer_encrypted_embed_tokens_both_ways() {
    let bot = write_bot("", BLOCKS, &[]);
    let data = tempfile::tempdir().unwrap();
    let server =
        server_with_secret(bot.path(), data.path(), "0123456789abcdef0123456789abcdef").await;
    let web = Web::new(&format!("http://{}", server.addr), None);
    let good = "a1b2c3d4e5f6071884ec7721497443d5dee28149eb28cfcdc98877120ab2ccd2a4047f55358d801f91e6b831fcf2d30ce6fd2cd98c4d92d43bc5c0504f39c5aded01e3b40aae91182663d45e859008d9ab92f7aa43496e51";
    let (s, a) = web.open("test", json!({ "token": good })).await;
    assert_eq!(s, 201, "{a}");
    let (s, again) = web.open("test", json!({ "token": good })).await;
    assert_eq!(s, 201);
    assert_eq!(
        a["conversationId"], again["conversationId"],
        "the same user, the same conversation"
    );
    let (s, answer) = web
        .post(
            "test",
            a["session"].as_str().unwrap(),
            json!({"message": {"introMessage": {}}}),
        )
        .await;
    assert_eq!(s, 200, "{answer}");
    let expired = "a1b2c3d4e5f6071878263a8e102fad1483861696abf7c3709044bb6181d98c2696dee423afbbd22018d7770b433fcd731269373c79002214";
    let (s, e) = web.open("test", json!({ "token": expired })).await;
    assert_eq!((s, error(&e)), (401, "the embed token has expired"));
    let tampered = format!("{}00", &good[..good.len() - 2]);
    let (s, e) = web.open("test", json!({ "token": tampered })).await;
    assert_eq!(
        (s, error(&e)),
        (
            401,
            "the embed token does not decrypt with this bot's secret"
        )
    );
    server.shutdown().await.unwrap();
}

/// A visitor's message has at most 2,000 characters: at the limit it is
/// answered, one more is refused and nothing is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_message_longer_than_the_limit_is_refused() {
    let bot = write_bot("", BLOCKS, &[]);
    let data = tempfile::tempdir().unwrap();
    let server = server(bot.path(), data.path()).await;
    let mut web = Web::new(&format!("http://{}", server.addr), None);
    let (s, a) = web
        .send("test", json!({"textMessage": {"text": "é".repeat(2000)}}))
        .await;
    assert_eq!(s, 200, "{a}");
    let (s, a) = web
        .send("test", json!({"textMessage": {"text": "é".repeat(2001)}}))
        .await;
    assert_eq!(
        (s, error(&a)),
        (400, "a web chat message has at most 2000 characters")
    );
    server.shutdown().await.unwrap();
}

/// Found by fuzzing: a body that is JSON but not an object dropped the
/// connection (the handler panicked); it is a 400 that says why, and the
/// conversation goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_message_that_is_not_an_object_is_refused() {
    let bot = write_bot("", BLOCKS, &[]);
    let data = tempfile::tempdir().unwrap();
    let server = server(bot.path(), data.path()).await;
    let mut web = Web::new(&format!("http://{}", server.addr), None);
    let session = web.session("test").await;
    for body in [
        json!("sessionDataToSet"),
        json!([1, 2]),
        json!(7),
        json!(null),
    ] {
        let (s, a) = web.post("test", &session, body.clone()).await;
        assert_eq!(
            (s, error(&a)),
            (400, "the body must be a JSON object"),
            "{body}"
        );
    }
    let (s, a) = web
        .send("test", json!({"textMessage": {"text": "hi"}}))
        .await;
    assert_eq!(s, 200, "{a}");
    server.shutdown().await.unwrap();
}
