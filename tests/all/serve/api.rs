//! The v1 REST API over real sockets: the auth matrix, rate limits, paging,
//! session data, conversation actions, NLP extract and the OpenAPI document.

use serde_json::{Value, json};

use sandbot::serve::Server;

use crate::flow::support::write_bot;
use crate::serve::webhook::{BLOCKS, Receiver, accepted, config_with_rate};

struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        self.call_with(method, path, token, body, None).await
    }

    /// As [`Api::call`], with one more request header when `extra` is given.
    async fn call_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        extra: Option<(&str, &str)>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let url = format!("{}{path}", self.base);
        let mut req = self.client.request(method.parse().unwrap(), url);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        if let Some((name, value)) = extra {
            req = req.header(name, value);
        }
        let res = req.send().await.unwrap();
        let (status, headers) = (res.status().as_u16(), res.headers().clone());
        let text = res.text().await.unwrap();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A conversation action, with an `Idempotency-Key` when `key` is given.
    async fn action(&self, conversation: &str, key: Option<&str>, body: &Value) -> (u16, Value) {
        let path = format!("/v1/bots/test/conversations/{conversation}/actions");
        let key = key.map(|k| ("idempotency-key", k));
        let (status, _, out) = self
            .call_with("POST", &path, Some("token-one"), Some(body.clone()), key)
            .await;
        (status, out)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let (s, _, v) = self.call("GET", path, Some("token-one"), None).await;
        (s, v)
    }
}

async fn start(rate: u32) -> (Server, Api, Receiver, tempfile::TempDir, tempfile::TempDir) {
    start_with(rate, "", None).await
}

/// [`start`] with `blocks` more, and API actions allowed to `peer`.
async fn start_with(
    rate: u32,
    blocks: &str,
    peer: Option<&str>,
) -> (Server, Api, Receiver, tempfile::TempDir, tempfile::TempDir) {
    let bot = write_bot(
        "nlp:\n  intents: [{ name: hello, goto: yes, expressions: { en: [good morning] } }]\n  systemEntities: [email]\n",
        &format!(
            "{BLOCKS}  - {{ id: second, label: later, type: message, messages: [{{ text: \"Second {{flag}}\" }}] }}\n{blocks}"
        ),
        &[],
    );
    let data = tempfile::tempdir().unwrap();
    let (receiver, url) = Receiver::start(0).await;
    let mut config = config_with_rate(bot.path(), &data.path().join("data"), &url, rate);
    if let Some(peer) = peer {
        config.tenants[0].limits.allow_hosts = vec![format!("http://{peer}")];
    }
    let server = Server::start(&config).await.unwrap();
    let api = Api {
        base: format!("http://{}", server.addr),
        client: reqwest::Client::new(),
    };
    (server, api, receiver, bot, data)
}

/// A conversation action sent again with its `Idempotency-Key` (a client's
/// retry after a lost answer) is applied once, per conversation, and the
/// retry is answered with the first request's answer; a key past the limit
/// or with spaces is refused and applies nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_sent_again_with_its_idempotency_key_is_applied_once() {
    let (server, api, receiver, _b, _d) = start(1000).await;
    let addr = server.addr.to_string();
    for c in ["a", "b"] {
        accepted(
            &addr,
            json!({"conversationId": c, "message": {"introMessage": {}}}),
        )
        .await;
    }
    receiver.wait_for(4).await;
    let agent = json!({"sendMessages": [{"textMessageTemplate": {"text": "An agent here"}}]});
    let mut agent_then_later = agent.clone();
    agent_then_later["goToDialogstate"] = json!("later");

    let (s, first) = api.action("a", Some("k-1"), &agent_then_later).await;
    assert_eq!((s, &first["messagesSent"]), (200, &json!(1)), "{first}");
    assert_eq!(first.get("duplicate"), None, "{first}");
    assert_eq!(
        first["flowMessages"][0]["config"]["textMessages"][0]["text"],
        "Second "
    );
    let (s, again) = api.action("a", Some("k-1"), &agent_then_later).await;
    let mut expected = first.clone();
    expected["duplicate"] = json!(true);
    assert_eq!((s, again), (200, expected), "the first answer, once more");
    // Keys are per conversation; another key is another action.
    let (s, other) = api.action("b", Some("k-1"), &agent).await;
    assert_eq!((s, &other["messagesSent"]), (200, &json!(1)), "{other}");
    let longest = "k".repeat(256);
    for key in ["k-2", longest.as_str()] {
        let (s, out) = api.action("a", Some(key), &agent).await;
        assert_eq!((s, &out["messagesSent"]), (200, &json!(1)), "{out}");
    }
    let refused = json!({"error": "`Idempotency-Key` must be 1 to 256 visible ASCII characters"});
    for bad in ["k".repeat(257), "k 3".to_string(), String::new()] {
        assert_eq!(
            api.action("a", Some(&bad), &agent).await,
            (400, refused.clone())
        );
    }

    // a: k-1 (and its flow message), k-2 and the 256-character key; b:
    // k-1. Nothing else comes.
    receiver.wait_for(9).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(receiver.messages().len(), 9);
    let (_, page) = api
        .get("/v1/bots/test/conversations/a/messages?limit=100")
        .await;
    let sent = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["message"]["config"]["textMessages"][0]["text"] == "An agent here")
        .count();
    assert_eq!(sent, 3, "{page}");
    server.shutdown().await.unwrap();
}

/// A retry that comes while the first request's action still runs (its
/// flow waits 1,500 ms on a slow peer) waits for it and gets its answer; the
/// action is applied once. (Longer than the second a retry keeps looking for
/// an outcome it cannot find: the retry must see the entry waiting.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_while_the_first_runs_gets_its_answer() {
    let peer = crate::peer::start().await;
    let slow = format!(
        "  - {{ id: slow, type: action, api: {{ method: GET, url: \"http://{peer}/slow?ms=1500\" }}, goto: second }}\n"
    );
    let (server, api, receiver, _b, _d) = start_with(1000, &slow, Some(&peer.to_string())).await;
    accepted(
        &server.addr.to_string(),
        json!({"conversationId": "a", "message": {"introMessage": {}}}),
    )
    .await;
    receiver.wait_for(2).await;
    let body = json!({
        "sendMessages": [{"textMessageTemplate": {"text": "An agent here"}}],
        "goToDialogstate": "slow"
    });
    let (first, again) = tokio::join!(api.action("a", Some("k-slow"), &body), async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        api.action("a", Some("k-slow"), &body).await
    });
    assert_eq!(first.0, 200, "{first:?}");
    assert_eq!(first.1.get("duplicate"), None, "{first:?}");
    assert_eq!(
        first.1["flowMessages"][0]["config"]["textMessages"][0]["text"],
        "Second "
    );
    let mut expected = first.1.clone();
    expected["duplicate"] = json!(true);
    assert_eq!(again, (200, expected));
    // The agent's message and the flow's, once each.
    receiver.wait_for(4).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(receiver.messages().len(), 4);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_matrix_and_rate_limit_headers() {
    let (server, api, _r, _b, _d) = start(3).await;
    let path = "/v1/bots/test/conversations";
    assert_eq!(api.call("GET", path, None, None).await.0, 401);
    assert_eq!(api.call("GET", path, Some("wrong"), None).await.0, 401);
    let (status, _, body) = api.call("GET", path, Some("token-two"), None).await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (404, "no bot `test`"),
        "another tenant's bot is not found"
    );
    let (status, headers, body) = api.call("GET", path, Some("token-one"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"data": []}));
    assert_eq!(headers["x-ratelimit-limit"], "3");
    assert_eq!(headers["x-ratelimit-remaining"], "2");
    let reset: u64 = headers["x-ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        reset > sandbot::store::now_ms() / 1000,
        "the window ends in the future (epoch seconds)"
    );
    assert_eq!(api.call("GET", path, Some("token-one"), None).await.0, 200);
    assert_eq!(api.call("GET", path, Some("token-one"), None).await.0, 200);
    let (status, headers, body) = api.call("GET", path, Some("token-one"), None).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(
        (1..=3600).contains(&retry),
        "Retry-After in seconds: {retry}"
    );
    // Another token has its own window.
    assert_eq!(api.call("GET", path, Some("token-two"), None).await.0, 404);
    assert_eq!(
        api.call(
            "GET",
            "/v1/bots/test/conversations?version=DRAFT",
            Some("token-three"),
            None
        )
        .await
        .0,
        401
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversations_messages_session_actions_and_extract() {
    let (server, api, receiver, _b, _d) = start(1000).await;
    let addr = server.addr.to_string();
    for c in ["a", "b", "c"] {
        accepted(
            &addr,
            json!({"conversationId": c, "message": {"introMessage": {}}}),
        )
        .await;
    }
    receiver.wait_for(6).await;

    let (s, page1) = api.get("/v1/bots/test/conversations?limit=2").await;
    assert_eq!(s, 200);
    let ids: Vec<&str> = page1["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["conversationId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b"]);
    let (_, page2) = api
        .get(&format!(
            "/v1/bots/test/conversations?limit=2&after={}",
            page1["next"].as_str().unwrap()
        ))
        .await;
    assert_eq!(page2["data"][0]["conversationId"], "c");
    assert!(page2.get("next").is_none());
    assert_eq!(api.get("/v1/bots/test/conversations?limit=0").await.0, 400);
    assert_eq!(
        api.get("/v1/bots/test/conversations?version=DRAFT").await.0,
        404,
        "deployed LIVE"
    );
    let (s, bad) = api.get("/v1/bots/test/conversations?version=FOO").await;
    assert_eq!(
        (s, bad["error"].as_str()),
        (400, Some("`version` is DRAFT or LIVE, not `FOO`"))
    );

    let (s, msgs) = api
        .get("/v1/bots/test/conversations/a/messages?limit=2")
        .await;
    assert_eq!(s, 200);
    assert_eq!(msgs["data"][0]["actor"], "user");
    assert_eq!(msgs["data"][1]["actor"], "bot");
    assert_eq!(
        msgs["data"][1]["message"]["config"]["textMessages"][0]["text"],
        "Hi"
    );
    let (_, rest) = api
        .get(&format!(
            "/v1/bots/test/conversations/a/messages?after={}",
            msgs["next"].as_str().unwrap()
        ))
        .await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        api.get("/v1/bots/test/conversations/zzz/messages").await.0,
        404
    );

    // Actions: session data, agent messages (delivered to the webhook too), pause, go to a block.
    let actions = "/v1/bots/test/conversations/a/actions";
    let body = json!({
        "setSessionData": {"flag": "on", "order.id": 7},
        "sendMessages": [{"textMessageTemplate": {"text": "An agent here"}},
                         {"quickReplyTemplate": {"text": "Go?", "quickReplies": [{"title": "Go", "payload": {"nextDialogstateId": "second"}}]}}],
        "goToDialogstate": "later"
    });
    let (s, _, out) = api
        .call("POST", actions, Some("token-one"), Some(body))
        .await;
    assert_eq!(s, 200, "{out}");
    assert_eq!(out["messagesSent"], 2);
    assert_eq!(
        out["flowMessages"][0]["config"]["textMessages"][0]["text"],
        "Second on"
    );
    let got = receiver.wait_for(9).await;
    let texts: Vec<Value> = got[6..].iter().map(|m| m["message"].clone()).collect();
    assert_eq!(texts[0], json!({"text": "An agent here"}));
    assert_eq!(texts[2], json!({"text": "Second on"}));
    assert_eq!(got[8]["messageCounter"], 5);
    // The agent's quick reply works as a postback.
    let payload = texts[1]["quick_replies"][0]["payload"].clone();
    accepted(
        &addr,
        json!({"conversationId": "a", "message": {"postbackMessage": {"payload": payload}}}),
    )
    .await;
    assert_eq!(
        receiver.wait_for(10).await[9]["message"],
        json!({"text": "Second on"})
    );

    let (_, session) = api.get("/v1/bots/test/conversations/a/session-data").await;
    assert_eq!(session["data"]["order"]["id"], 7);
    assert_eq!(session["data"]["internal"]["channel"], "webHook");
    // Pause: the user's message is recorded, not answered; resume answers again.
    let (s, _, out) = api
        .call(
            "POST",
            actions,
            Some("token-one"),
            Some(json!({"pause": true})),
        )
        .await;
    assert_eq!((s, out["paused"].clone()), (200, json!(true)));
    accepted(
        &addr,
        json!({"conversationId": "a", "message": {"textMessage": {"text": "hello?"}}}),
    )
    .await;
    // Its turn is committed once the transcript shows it: nothing after it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let lines = loop {
        let (_, page) = api
            .get("/v1/bots/test/conversations/a/messages?limit=100")
            .await;
        let lines = page["data"].as_array().unwrap().clone();
        let seen = lines.iter().any(|l| l["message"] == "hello?");
        if seen || std::time::Instant::now() > deadline {
            break lines;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    let last = lines.last().unwrap();
    assert_eq!(
        (&last["actor"], &last["message"]),
        (&json!("user"), &json!("hello?")),
        "{lines:?}"
    );
    assert_eq!(receiver.messages().len(), 10);
    api.call(
        "POST",
        actions,
        Some("token-one"),
        Some(json!({"pause": false})),
    )
    .await;
    accepted(
        &addr,
        json!({"conversationId": "a", "message": {"textMessage": {"text": "good morning"}}}),
    )
    .await;
    assert_eq!(
        receiver.wait_for(11).await[10]["message"],
        json!({"text": "You said yes"})
    );

    // Bad actions.
    for (bad, why) in [
        (
            json!({"setSessionData": {"internal.botId": "x"}}),
            "read-only",
        ),
        (json!({"sendMessages": [{"nope": 1}]}), "unknown template"),
        (json!({"goToDialogstate": "nowhere"}), "no block"),
        (json!({"unknownAction": 1}), "unknown field"),
    ] {
        let (s, _, out) = api
            .call("POST", actions, Some("token-one"), Some(bad))
            .await;
        assert!(s == 400 || s == 422, "{s} {out}");
        assert!(out.to_string().contains(why), "{out}");
    }
    assert_eq!(
        api.call(
            "POST",
            "/v1/bots/test/conversations/zzz/actions",
            Some("token-one"),
            Some(json!({"pause": true}))
        )
        .await
        .0,
        404
    );

    // Session delete: 204, internal kept, transcript kept.
    let (s, _, _) = api
        .call(
            "DELETE",
            "/v1/bots/test/conversations/a/session-data",
            Some("token-one"),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (_, session) = api.get("/v1/bots/test/conversations/a/session-data").await;
    assert!(session["data"].get("order").is_none());
    assert_eq!(session["data"]["internal"]["botId"], "test");

    // NLP extract.
    let (s, _, out) = api
        .call(
            "POST",
            "/v1/bots/test/nlp/extract",
            Some("token-one"),
            Some(json!({"language": "en", "expression": "good mornin, ada@example.com"})),
        )
        .await;
    assert_eq!(s, 200, "{out}");
    assert_eq!(out["extract"]["intents"][0]["intent"], "hello");
    assert_eq!(
        out["extract"]["entities"][0],
        json!({"name": "sys.email", "value": "ada@example.com", "score": 1.0})
    );

    // The OpenAPI document.
    let doc: Value = reqwest::get(format!("{}/v1/openapi.json", api.base))
        .await
        .unwrap()
        .json_text()
        .await;
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/v1/bots/{botId}/conversations",
        "/v1/bots/{botId}/conversations/{conversationId}/actions",
        "/v1/bots/{botId}/conversations/{conversationId}",
        "/v1/bots/{botId}/nlp/extract",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path}");
    }
    assert!(doc["components"]["schemas"].get("ActionsRequest").is_some());
    server.shutdown().await.unwrap();
}

trait JsonText {
    async fn json_text(self) -> Value;
}

impl JsonText for reqwest::Response {
    async fn json_text(self) -> Value {
        serde_json::from_str(&self.text().await.unwrap()).unwrap()
    }
}

/// Every REST route × every kind of caller: no token and a wrong one are
/// 401; the other tenant's token finds no bot of this tenant (404, the same
/// as a bot that does not exist) and sees none of its data; the owner gets
/// through. Then every channel: a wrong token or signature is 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_and_channel_refuses_strangers_and_other_tenants() {
    let (server, api, receiver, _b, _d) = start(1000).await;
    let addr = server.addr.to_string();
    accepted(
        &addr,
        json!({"conversationId": "a", "message": {"introMessage": {}}}),
    )
    .await;
    receiver.wait_for(1).await;
    let extract = json!({"language": "en", "expression": "good morning"});
    let actions = json!({"setSessionData": {"k": 1}});
    // (method, path, body, the owner's status, the other tenant's status)
    let routes: [(&str, &str, Option<Value>, u16, u16); 10] = [
        ("GET", "/v1/bots/test/conversations", None, 200, 404),
        (
            "GET",
            "/v1/bots/test/conversations/a/messages",
            None,
            200,
            404,
        ),
        (
            "GET",
            "/v1/bots/test/conversations/a/session-data",
            None,
            200,
            404,
        ),
        (
            "POST",
            "/v1/bots/test/conversations/a/actions",
            Some(actions),
            200,
            404,
        ),
        ("POST", "/v1/bots/test/nlp/extract", Some(extract), 200, 404),
        (
            "DELETE",
            "/v1/bots/test/conversations/a/session-data",
            None,
            204,
            404,
        ),
        ("DELETE", "/v1/bots/test/conversations/a", None, 204, 404),
        ("GET", "/v1/usage", None, 200, 200),
        ("GET", "/v1/deliveries/dead", None, 200, 200),
        ("POST", "/v1/deliveries/dead/1/requeue", None, 404, 404),
    ];
    for (method, path, body, owner, other) in routes {
        // Two wrong credentials per route keep this address under the failed-auth
        // throttle (30 a minute).
        for token in [None, Some("Token-one")] {
            let (status, _, answer) = api.call(method, path, token, body.clone()).await;
            assert_eq!(status, 401, "{method} {path} with {token:?}: {answer}");
        }
        let (status, _, answer) = api
            .call(method, path, Some("token-two"), body.clone())
            .await;
        assert_eq!(status, other, "{method} {path} as tenant two: {answer}");
        assert!(
            !answer.to_string().contains("\"a\""),
            "{method} {path} leaks: {answer}"
        );
        if other == 404 && path.starts_with("/v1/bots/") {
            assert_eq!(answer["error"], "no bot `test`", "{method} {path}");
        }
        let (status, _, answer) = api.call(method, path, Some("token-one"), body).await;
        assert_eq!(status, owner, "{method} {path} as the owner: {answer}");
    }
    // Tenant two's usage and dead letters name none of tenant one's bots.
    let (_, _, usage) = api.call("GET", "/v1/usage", Some("token-two"), None).await;
    assert!(!usage.to_string().contains("test"), "{usage}");

    // Channels: the webhook's bearer token, the web chat's session token.
    let intro = r#"{"conversationId": "c9", "message": {"introMessage": {}}}"#;
    for token in [None, Some("wrong"), Some("token-two")] {
        let (status, _) = crate::serve::webhook::post(&addr, "hook", token, intro).await;
        assert_eq!(status, 401, "webhook with {token:?}");
    }
    server.shutdown().await.unwrap();
}

/// `/v1/usage` survives a restart on the embedded store: the figures of
/// earlier runs are kept in the store and added to this run's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_survives_a_restart() {
    let bot = write_bot("", BLOCKS, &[]);
    let data = tempfile::tempdir().unwrap();
    let (receiver, url) = Receiver::start(0).await;
    let config = config_with_rate(bot.path(), &data.path().join("data"), &url, 1000);
    // Waits (at most 10 s) until the usage shows `n` turns; what it shows.
    let turns = |server: &Server, n: u64| {
        let api = Api {
            base: format!("http://{}", server.addr),
            client: reqwest::Client::new(),
        };
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let (status, usage) = api.get("/v1/usage").await;
                assert_eq!(status, 200, "{usage}");
                let got = usage["bots"]["test"]["turns"].as_u64().unwrap_or(0);
                if got == n || std::time::Instant::now() > deadline {
                    return got;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    };
    // Each run: what it shows at start, then one conversation's turn.
    for (conversation, before) in [("a", 0u64), ("b", 1)] {
        let server = Server::start(&config).await.unwrap();
        assert_eq!(turns(&server, before).await, before, "kept across restarts");
        let addr = server.addr.to_string();
        let intro = json!({"conversationId": conversation, "message": {"introMessage": {}}});
        accepted(&addr, intro).await;
        assert_eq!(turns(&server, before + 1).await, before + 1);
        // Delivered before the shutdown (two messages per introduction).
        let delivered = 2 * (before as usize + 1);
        assert_eq!(receiver.wait_for(delivered).await.len(), delivered);
        server.shutdown().await.unwrap();
    }
}

/// A tenant over its storage quota: new messages are refused with 507 and
/// a message that says why; clearing a session still works; deleting a
/// conversation frees the space and messages are accepted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_over_its_storage_quota_is_refused_until_space_is_freed() {
    let bot = write_bot("", BLOCKS, &[]);
    let data = tempfile::tempdir().unwrap();
    let (receiver, url) = Receiver::start(0).await;
    let mut config = config_with_rate(bot.path(), &data.path().join("data"), &url, 1000);
    config.tenants[0].storage_quota_mb = 0.02; // 20,971 bytes
    let server = Server::start(&config).await.unwrap();
    let addr = server.addr.to_string();
    let api = Api {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
    };
    let quota = 20_971u64;
    // Inside the quota: 8 messages of 3,000 characters are accepted.
    let long = "x".repeat(3000);
    for n in 0..8 {
        let text = json!({"conversationId": "big", "message": {"textMessage": {"text": long}}});
        accepted(&addr, text).await;
        receiver.wait_for(n + 1).await;
    }
    // Once a second the server reads what the tenant stores.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let held = loop {
        let (_, usage) = api.get("/v1/usage").await;
        let held = usage["storage"]["bytes"].as_u64().unwrap();
        assert_eq!(usage["storage"]["quotaBytes"], quota);
        if held >= quota || std::time::Instant::now() > deadline {
            break held;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(held >= 24_000, "8 × 3,000 characters at least: {held}");
    // Over it: the exact refusal, on the webhook and on REST actions.
    let refusal = format!(
        "tenant `one` is over its storage quota: its conversations hold {:.1} KiB of 20.5 KiB (sessions and transcripts); new messages are refused until conversations are deleted (DELETE /v1/bots/{{botId}}/conversations/{{conversationId}}) or expire, or the operator raises `storageQuotaMb`",
        held as f64 / 1024.0
    );
    let other = r#"{"conversationId": "new", "message": {"textMessage": {"text": "hi"}}}"#;
    let (status, answer) =
        crate::serve::webhook::post(&addr, "hook", Some("token-one"), other).await;
    assert_eq!(
        (status, answer["error"].as_str().unwrap()),
        (507, refusal.as_str())
    );
    let say = json!({"sendMessages": [{"textMessageTemplate": {"text": "from the API"}}]});
    let (status, _, answer) = api
        .call(
            "POST",
            "/v1/bots/test/conversations/big/actions",
            Some("token-one"),
            Some(say),
        )
        .await;
    assert_eq!(
        (status, answer["error"].as_str().unwrap()),
        (507, refusal.as_str())
    );
    // Clearing a session is still allowed (it frees space).
    let (status, _, answer) = api
        .call(
            "DELETE",
            "/v1/bots/test/conversations/big/session-data",
            Some("token-one"),
            None,
        )
        .await;
    assert_eq!(status, 204, "{answer}");
    let quota_line = format!("sandbot_tenant_storage_quota_bytes{{tenant=\"one\"}} {quota}");
    crate::common::assert_metrics(
        &api.base,
        &[
            "sandbot_storage_refused_messages_total{tenant=\"one\",bot=\"test\"} 2",
            &quota_line,
        ],
    )
    .await;
    // Deleting the conversation frees its space: accepted again.
    let path = "/v1/bots/test/conversations/big";
    let (status, _, answer) = api.call("DELETE", path, Some("token-one"), None).await;
    assert_eq!(status, 204, "{answer}");
    let (status, _, answer) = api.call("DELETE", path, Some("token-one"), None).await;
    assert_eq!(
        (status, answer["error"].as_str().unwrap()),
        (404, "no conversation `big`")
    );
    let (status, messages) = api.get("/v1/bots/test/conversations/big/messages").await;
    assert_eq!(status, 404, "the transcript is gone: {messages}");
    let (_, usage) = api.get("/v1/usage").await;
    assert!(
        usage["storage"]["bytes"].as_u64().unwrap() < 1000,
        "{usage}"
    );
    let (status, answer) =
        crate::serve::webhook::post(&addr, "hook", Some("token-one"), other).await;
    assert_eq!(status, 202, "{answer}");
    server.shutdown().await.unwrap();
}

/// The janitor (here every second, sessions idle for 4.3 s expire, message
/// ids kept 4.3 s): inside the window a retried `messageId` is a duplicate
/// and the conversation holds its bytes; past it the expired conversation
/// is deleted (the tenant's stored bytes drop to 0, its transcript is gone)
/// and the same `messageId` is a new message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_janitor_deletes_expired_sessions_and_forgets_old_message_ids() {
    let bot = write_bot("", BLOCKS, &[]);
    let data = tempfile::tempdir().unwrap();
    let (receiver, url) = Receiver::start(0).await;
    let mut config = config_with_rate(bot.path(), &data.path().join("data"), &url, 1000);
    config.session_idle_days = 0.00005;
    config.message_id_days = 0.00005;
    config.purge_every_seconds = 1;
    let server = Server::start(&config).await.unwrap();
    let addr = server.addr.to_string();
    let api = Api {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
    };
    let intro =
        json!({"conversationId": "old", "messageId": "m-1", "message": {"introMessage": {}}});
    accepted(&addr, intro.clone()).await;
    receiver.wait_for(2).await;
    let (status, again) =
        crate::serve::webhook::post(&addr, "hook", Some("token-one"), &intro.to_string()).await;
    assert_eq!(
        (status, &again["duplicate"]),
        (202, &json!(true)),
        "{again}"
    );
    let transcript = "/v1/bots/test/conversations/old/messages";
    let (status, _) = api.get(transcript).await;
    assert_eq!(status, 200, "inside the window the conversation is kept");

    // The stored figure is read once a second: first it counts the
    // conversation, then (once the janitor deleted it) nothing.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    for held in [true, false] {
        loop {
            let (_, usage) = api.get("/v1/usage").await;
            if (usage["storage"]["bytes"].as_u64().unwrap() > 0) == held {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{held}: {usage}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    let (status, gone) = api.get(transcript).await;
    assert_eq!(status, 404, "{gone}");
    // The id is forgotten too: the same message is new again.
    let (status, fresh) =
        crate::serve::webhook::post(&addr, "hook", Some("token-one"), &intro.to_string()).await;
    assert_eq!((status, fresh.get("duplicate")), (202, None), "{fresh}");
    receiver.wait_for(4).await;
    server.shutdown().await.unwrap();
}
