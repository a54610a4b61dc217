//! The studio's API (`/v1/studio`), every endpoint both ways: valid,
//! invalid, another tenant's, refused saves; DRAFT and LIVE of one bot
//! served side by side, LIVE never seeing an unpublished change.

use reqwest::{Client, Method};
use serde_json::{Value, json};

use crate::common::serve_yaml;
use crate::flow::support::write_bot;
use crate::serve::web::Web;

const BLOCKS: &str = "  - { id: intro, system: introduction, type: action, code: greet.js, args: { name: \"{user.name}\", greeting: Hello } }\n";
const GREET: &str = "say(`${args.greeting}, ${args.name || 'stranger'}!`);\n";

struct Studio {
    base: String,
    client: Client,
    token: Option<&'static str>,
    _server: sandbot::serve::Server,
    dir: tempfile::TempDir,
    bot: tempfile::TempDir,
}

impl Studio {
    async fn start() -> Self {
        let bot = write_bot("", BLOCKS, &[("greet.js", GREET)]);
        let dir = tempfile::tempdir().unwrap();
        let yaml = format!(
            "listen: 127.0.0.1:0\ndata: data\ntenants:\n  - {{ id: one, tokens: [\"{}\"] }}\n  - {{ id: two, tokens: [\"{}\"] }}\n\
             bots:\n  - {{ folder: {b}, tenant: one, version: LIVE, channels: {{ web: true }} }}\n  - {{ folder: {b}, tenant: one, version: DRAFT, channels: {{ web: true }} }}\n",
            sandbot::serve::config::hash_token("token-one"),
            sandbot::serve::config::hash_token("token-two"),
            b = bot.path().display(),
        );
        let server = serve_yaml(dir.path(), &yaml).await;
        Studio {
            base: format!("http://{}", server.addr),
            client: Client::new(),
            token: Some("token-one"),
            _server: server,
            dir,
            bot,
        }
    }

    fn as_tenant(&self, token: Option<&'static str>) -> Studio2<'_> {
        Studio2 { s: self, token }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.as_tenant(self.token).call(method, path, body).await
    }
}

struct Studio2<'a> {
    s: &'a Studio,
    token: Option<&'static str>,
}

impl Studio2<'_> {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .s
            .client
            .request(method, format!("{}{path}", self.s.base));
        if let Some(t) = self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// What the bot says to a new web visitor on `version`.
async fn greeting(s: &Studio, bot: &str) -> String {
    let mut web = Web::new(&s.base, None);
    let (status, answer) = web.send(bot, json!({"introMessage": {}})).await;
    assert_eq!(status, 200, "{answer}");
    answer["messages"][0]["config"]["textMessages"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_actions_and_another_tenant() {
    let s = Studio::start().await;
    let (status, list) = s.call(Method::GET, "/v1/studio/bots", None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["tenant"], "one");
    let bot = &list["bots"][0];
    assert_eq!(bot["id"], "test");
    assert_eq!(bot["deployed"], json!(["DRAFT", "LIVE"]));
    assert_eq!(bot["live"], Value::Null);
    assert_eq!(bot["actions"][0]["name"], "greet.js");
    assert_eq!(bot["actions"][0]["blocks"][0]["id"], "intro");
    assert_eq!(
        bot["actions"][0]["blocks"][0]["args"],
        json!({"name": "{user.name}", "greeting": "Hello"})
    );
    let (status, detail) = s.call(Method::GET, "/v1/studio/bots/test", None).await;
    assert_eq!(status, 200);
    assert_eq!(detail["files"]["actions/greet.js"], GREET);
    assert!(detail["files"]["flows/main.yaml"].is_string());

    // Without a token, or with a wrong one: 401 that says how to sign in.
    let (status, e) = s
        .as_tenant(None)
        .call(Method::GET, "/v1/studio/bots", None)
        .await;
    assert_eq!(status, 401);
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("POST /v1/studio/session")
    );
    let (status, _) = s
        .as_tenant(Some("nope"))
        .call(Method::GET, "/v1/studio/bots", None)
        .await;
    assert_eq!(status, 401);

    // Tenant two sees no bot of tenant one's, on any route.
    let two = s.as_tenant(Some("token-two"));
    let (status, list) = two.call(Method::GET, "/v1/studio/bots", None).await;
    assert_eq!((status, list["bots"].clone()), (200, json!([])));
    let save = json!({"files": {"actions/greet.js": "say('mine');"}, "message": "x"});
    let run = json!({"action": "greet.js"});
    for (method, path, body) in [
        (Method::GET, "/v1/studio/bots/test", None),
        (Method::GET, "/v1/studio/bots/test/versions", None),
        (Method::GET, "/v1/studio/bots/test/versions/1", None),
        (Method::GET, "/v1/studio/bots/test/versions/1/diff", None),
        (Method::GET, "/v1/studio/bots/test/conversations", None),
        (Method::POST, "/v1/studio/bots/test/versions", Some(save)),
        (
            Method::POST,
            "/v1/studio/bots/test/versions/1/restore",
            None,
        ),
        (
            Method::POST,
            "/v1/studio/bots/test/publish",
            Some(json!({})),
        ),
        (Method::POST, "/v1/studio/bots/test/run", Some(run)),
    ] {
        let (status, e) = two.call(method.clone(), path, body).await;
        assert_eq!(
            (status, e["error"].as_str()),
            (404, Some("no bot `test`")),
            "{method} {path}"
        );
    }
    // Nothing of it was written.
    assert_eq!(
        std::fs::read_to_string(s.bot.path().join("actions/greet.js")).unwrap(),
        GREET
    );
    assert!(!s.bot.path().join(".sandbot").exists());

    // The OpenAPI document describes the studio's endpoints.
    let (_, doc) = s.call(Method::GET, "/v1/openapi.json", None).await;
    for path in [
        "/v1/studio/session",
        "/v1/studio/bots",
        "/v1/studio/check",
        "/v1/studio/bots/{botId}/run",
        "/v1/studio/bots/{botId}/versions",
        "/v1/studio/bots/{botId}/versions/{n}/diff",
        "/v1/studio/bots/{botId}/publish",
        "/v1/studio/bots/{botId}/failures/{id}/replay",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path}");
    }
    let run = &doc["paths"]["/v1/studio/bots/{botId}/run"]["post"];
    assert!(run["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["sessionDiff"].is_object());
    assert!(doc["components"]["schemas"].get("Run").is_some());
    drop(s.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_sets_a_cookie_and_changes_need_the_csrf_header() {
    let s = Studio::start().await;
    let sign_in = |token: &str| {
        s.client
            .post(format!("{}/v1/studio/session", s.base))
            .header("content-type", "application/json")
            .body(json!({ "token": token }).to_string())
            .send()
    };
    let res = sign_in("token-one").await.unwrap();
    assert_eq!(res.status(), 200);
    let set = res.headers()["set-cookie"].to_str().unwrap().to_string();
    for part in ["sandbot_studio=", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(part), "{set}");
    }
    assert!(
        !set.contains("token-one"),
        "the token itself is not the cookie"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    assert_eq!(sign_in("wrong").await.unwrap().status(), 401);

    let with_cookie = |method: Method, path: &str, csrf: bool| {
        let mut r = s
            .client
            .request(method, format!("{}{path}", s.base))
            .header("cookie", &cookie);
        if csrf {
            r = r.header("x-sandbot-studio", "1");
        }
        r.header("content-type", "application/json")
            .body(json!({"source": "return 1;"}).to_string())
            .send()
    };
    // Reading works with the cookie alone.
    let r = with_cookie(Method::GET, "/v1/studio/bots", false)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A change without the header (another site's form) is refused…
    let r = with_cookie(Method::POST, "/v1/studio/check", false)
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let e: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(
        e["error"],
        "a studio change needs the `x-sandbot-studio: 1` header (CSRF protection)"
    );
    // …and accepted with it.
    let r = with_cookie(Method::POST, "/v1/studio/check", true)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A forged cookie is no sign-in.
    let forged = cookie.replace(".one", ".two");
    let r = s
        .client
        .get(format!("{}/v1/studio/bots", s.base))
        .header("cookie", forged)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Signing out clears the cookie.
    let r = s
        .client
        .delete(format!("{}/v1/studio/session", s.base))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostics_and_runs() {
    let s = Studio::start().await;
    let (status, ok) = s
        .call(
            Method::POST,
            "/v1/studio/check",
            Some(json!({"source": GREET})),
        )
        .await;
    assert_eq!((status, ok["diagnostics"].clone()), (200, json!([])));
    let (_, bad) = s
        .call(
            Method::POST,
            "/v1/studio/check",
            Some(json!({"source": "say('a');\nconst x = {;\n"})),
        )
        .await;
    let d = &bad["diagnostics"][0];
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(2), Some(12)),
        "{d}"
    );
    let (status, _) = s
        .call(Method::POST, "/v1/studio/check", Some(json!({"text": 1})))
        .await;
    assert_eq!(status, 422);

    // A run with the block's args templated against a given session.
    let source = "console.log('hi', args.name);\nChatlayerResponseBuilder().addMessage(`Hello ${args.name}`).addSessionVariable('seen', true).send();\nconst r = await fetch('http://10.0.0.1/x').catch((e) => e.message);\nreturn 7;";
    let (status, r) = s
        .call(
            Method::POST,
            "/v1/studio/bots/test/run",
            Some(json!({"action": "greet.js", "source": source, "session": {"user": {"name": "Ada"}}})),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(r["output"], 7);
    assert_eq!(r["args"], json!({"name": "Ada", "greeting": "Hello"}));
    assert_eq!(
        r["messages"][0]["config"]["textMessages"][0]["text"],
        "Hello Ada"
    );
    assert_eq!(
        r["sessionDiff"],
        json!([{"path": "seen", "before": null, "after": true}])
    );
    assert_eq!(r["console"][0]["text"], "hi Ada");
    let f = &r["fetches"][0];
    assert_eq!(
        (f["method"].as_str(), f["url"].as_str()),
        (Some("GET"), Some("http://10.0.0.1/x"))
    );
    assert!(f["error"].as_str().unwrap().starts_with("denied: "), "{f}");
    assert!(r["stats"]["fuel"].as_u64().unwrap() > 0);
    assert!(r["stats"]["memoryBytes"].as_u64().unwrap() > 0);
    assert_eq!(r["limits"]["fuel"], 1_000_000_000u64);
    assert_eq!(r["limits"]["timeoutMs"], 5000);
    // The saved script when none is given.
    let (_, saved) = s
        .call(
            Method::POST,
            "/v1/studio/bots/test/run",
            Some(json!({"action": "greet.js"})),
        )
        .await;
    assert_eq!(
        saved["messages"][0]["config"]["textMessages"][0]["text"],
        "Hello, stranger!"
    );
    // A failure names its kind and line.
    let (_, failed) = s
        .call(
            Method::POST,
            "/v1/studio/bots/test/run",
            Some(json!({"action": "greet.js", "source": "const a = 1;\nnull.x;"})),
        )
        .await;
    assert_eq!(failed["status"], "error");
    assert_eq!(failed["error"]["kind"], "js_error");
    assert_eq!(failed["error"]["line"], 2);
    // Out of fuel: the tenant's real limit.
    let (_, spun) = s
        .call(
            Method::POST,
            "/v1/studio/bots/test/run",
            Some(json!({"action": "greet.js", "source": "for (;;) {}"})),
        )
        .await;
    assert_eq!(spun["error"]["kind"], "out_of_fuel", "{spun}");
    // Bad requests.
    for (body, status, error) in [
        (
            json!({"action": "nope.js"}),
            404,
            "no code action `nope.js`",
        ),
        (
            json!({"action": "greet.js", "session": [1]}),
            400,
            "`session` must be a JSON object",
        ),
        (
            json!({"action": "greet.js", "conversation": "c9"}),
            404,
            "no conversation `c9`",
        ),
    ] {
        let (got, e) = s
            .call(Method::POST, "/v1/studio/bots/test/run", Some(body))
            .await;
        assert_eq!((got, e["error"].as_str()), (status, Some(error)));
    }
    // A DRAFT conversation's session.
    let mut web = Web::new(&s.base, None);
    web.send("test@DRAFT", json!({"introMessage": {}})).await;
    let (_, convs) = s
        .call(Method::GET, "/v1/studio/bots/test/conversations", None)
        .await;
    let conversation = convs["data"][0]["conversationId"].as_str().unwrap();
    assert_eq!(convs["data"][0]["session"]["internal"]["version"], "DRAFT");
    let (status, over) = s
        .call(
            Method::POST,
            "/v1/studio/bots/test/run",
            Some(json!({"action": "greet.js", "conversation": conversation})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(over["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saves_versions_publishing_and_live_beside_draft() {
    let s = Studio::start().await;
    assert_eq!(greeting(&s, "test").await, "Hello, stranger!");
    // A refused save: every problem, nothing written, no version.
    let (status, e) = s
        .call(
            Method::POST,
            "/v1/studio/bots/test/versions",
            Some(json!({"files": {"actions/greet.js": "say('x';"}, "message": "broken"})),
        )
        .await;
    assert_eq!(status, 422, "{e}");
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .starts_with("refused, nothing was changed")
    );
    assert_eq!(e["problems"][0]["file"], "actions/greet.js");
    assert_eq!(
        std::fs::read_to_string(s.bot.path().join("actions/greet.js")).unwrap(),
        GREET
    );
    let (_, versions) = s
        .call(Method::GET, "/v1/studio/bots/test/versions", None)
        .await;
    assert_eq!(versions["data"], json!([]));
    for (body, error) in [
        (
            json!({"files": {"../escape.js": "1"}}),
            "`../escape.js` is not a file the studio writes (bot.yaml, flows/NAME.yaml, actions/NAME.js)",
        ),
        (json!({"files": {}}), "`files` names no change"),
    ] {
        let (status, e) = s
            .call(Method::POST, "/v1/studio/bots/test/versions", Some(body))
            .await;
        assert_eq!((status, e["error"].as_str()), (400, Some(error)));
    }
    // A flow that points at a missing block is refused too.
    let (status, _) = s
        .call(
            Method::POST,
            "/v1/studio/bots/test/versions",
            Some(json!({"files": {"flows/more.yaml": "blocks:\n  - { id: x, type: message, messages: [{ text: a }], goto: nowhere }\n"}})),
        )
        .await;
    assert_eq!(status, 422);

    // A save: a new DRAFT version, served by DRAFT at once; LIVE unchanged.
    let new = "say(`Howdy, ${args.name || 'partner'}!`);\n";
    let (status, saved) = s
        .call(
            Method::POST,
            "/v1/studio/bots/test/versions",
            Some(json!({"files": {"actions/greet.js": new}, "message": "friendlier"})),
        )
        .await;
    assert_eq!(status, 201, "{saved}");
    assert_eq!(saved["version"]["number"], 2);
    assert_eq!(saved["version"]["author"], "one");
    assert_eq!(saved["version"]["message"], "friendlier");
    assert_eq!(greeting(&s, "test@DRAFT").await, "Howdy, partner!");
    assert_eq!(greeting(&s, "test").await, "Hello, stranger!");
    let (_, versions) = s
        .call(Method::GET, "/v1/studio/bots/test/versions", None)
        .await;
    assert_eq!(
        versions["live"], 1,
        "the folder as it was is published first"
    );
    assert_eq!(versions["data"][1]["message"], "as it was on disk");
    let (status, v1) = s
        .call(Method::GET, "/v1/studio/bots/test/versions/1", None)
        .await;
    assert_eq!(
        (status, v1["files"]["actions/greet.js"].as_str()),
        (200, Some(GREET))
    );
    let (status, _) = s
        .call(Method::GET, "/v1/studio/bots/test/versions/9", None)
        .await;
    assert_eq!(status, 404);
    let (_, diff) = s
        .call(Method::GET, "/v1/studio/bots/test/versions/2/diff", None)
        .await;
    assert_eq!(diff["files"][0]["file"], "actions/greet.js");
    let text = diff["files"][0]["diff"].as_str().unwrap();
    assert!(
        text.contains("-say(`${args.greeting}") && text.contains("+say(`Howdy"),
        "{text}"
    );
    let (status, _) = s
        .call(
            Method::GET,
            "/v1/studio/bots/test/versions/2/diff?against=7",
            None,
        )
        .await;
    assert_eq!(status, 404);

    // Publish: LIVE takes the new code; a conversation on LIVE gets it.
    let (status, published) = s
        .call(
            Method::POST,
            "/v1/studio/bots/test/publish",
            Some(json!({"message": "go"})),
        )
        .await;
    assert_eq!(status, 200, "{published}");
    assert_eq!(published["version"]["number"], 2);
    assert_eq!(greeting(&s, "test").await, "Howdy, partner!");
    // Restore version 1 in the DRAFT: LIVE keeps version 2.
    let (status, restored) = s
        .call(
            Method::POST,
            "/v1/studio/bots/test/versions/1/restore",
            None,
        )
        .await;
    assert_eq!(status, 201, "{restored}");
    assert_eq!(restored["version"]["message"], "restored version 1");
    assert_eq!(greeting(&s, "test@DRAFT").await, "Hello, stranger!");
    assert_eq!(greeting(&s, "test").await, "Howdy, partner!");
    let (status, _) = s
        .call(
            Method::POST,
            "/v1/studio/bots/test/versions/9/restore",
            None,
        )
        .await;
    assert_eq!(status, 400);
    // The REST API reads each version's conversations apart.
    let rest = |version: &str| {
        s.client
            .get(format!(
                "{}/v1/bots/test/conversations?version={version}",
                s.base
            ))
            .bearer_auth("token-one")
            .send()
    };
    let read = |r: reqwest::Response| async move {
        serde_json::from_str::<Value>(&r.text().await.unwrap()).unwrap()
    };
    let live = read(rest("LIVE").await.unwrap()).await;
    let draft = read(rest("DRAFT").await.unwrap()).await;
    assert_eq!(live["data"].as_array().unwrap().len(), 4);
    assert_eq!(draft["data"].as_array().unwrap().len(), 2);
    let live_ids: Vec<&Value> = live["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["conversationId"])
        .collect();
    assert!(
        draft["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| !live_ids.contains(&&c["conversationId"]))
    );
    assert_eq!(rest("BETA").await.unwrap().status(), 400);
}
