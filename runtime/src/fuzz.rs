//! One entry per fuzz target (tests/fuzz, docs/FUZZING.md): each takes
//! arbitrary bytes through one parser that a stranger (channel and REST
//! bodies, URLs a script fetches) or a bot author (bot YAML, templates, JSON
//! paths, conditions) reaches, the way the server does, and must neither
//! panic nor hang. The fuzz targets call these, and `tests/all/fuzz_corpora.rs`
//! runs every kept input through them in the test suite.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{LazyLock, Mutex};

use sandbot_host_api::JsonPath;
use sandbot_host_api::egress::{EgressPolicy, HostRule};
use serde_json::{Value, json};

use crate::api::types::{ActionsRequest, ExtractRequest};
use crate::flow::Bot;
use crate::flow::bot::model::{Condition, Rule};
use crate::flow::say::template;
use crate::flow::turn::{condition, postback};

/// A fuzz target's entry point.
pub type Entry = fn(&[u8]);

/// The targets, by name (the fuzz crate's binaries and the corpus folders).
pub const TARGETS: &[(&str, Entry)] = &[
    ("webhook", webhook),
    ("sinch", sinch),
    ("web_chat", web_chat),
    ("rest", rest),
    ("bot", bot),
    ("template", template_text),
    ("json_path", json_path),
    ("condition", conditions),
    ("egress", egress),
];

fn json(data: &[u8]) -> Option<Value> {
    serde_json::from_slice(data).ok()
}

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// A session with the shapes templates and conditions look at.
fn session() -> Value {
    json!({
        "name": "Ada", "count": 2, "price": 9.5, "vip": true, "tags": ["a", "b"],
        "order": {"id": "ORD-1", "items": [{"sku": "x", "qty": 1}]},
        "internal": {"channel": "web"}
    })
}

/// The webhook channel's body (`POST /v1/channels/webhook/{id}`).
pub fn webhook(data: &[u8]) {
    if let Some(v) = json(data) {
        let _ = crate::channels::webhook::parse(&v);
    }
}

/// A Sinch Conversation API callback body (after its signature).
pub fn sinch(data: &[u8]) {
    let _ = crate::channels::sinch::parse_callback(data);
}

/// A web chat visitor's message body.
pub fn web_chat(data: &[u8]) {
    if let Some(v) = json(data) {
        let _ = crate::channels::web::visitor_inbound(v, "web_fuzz");
    }
}

/// The REST API's bodies: conversation actions (templates made into
/// messages, session paths) and NLP extraction on the shop example.
pub fn rest(data: &[u8]) {
    if let Ok(req) = serde_json::from_slice::<ActionsRequest>(data) {
        for t in &req.send_messages {
            if let Ok(mut m) = crate::api::templates::to_message(t) {
                postback::make_opaque("fuzz", &mut m);
            }
        }
        for path in req.set_session_data.iter().flat_map(|m| m.keys()) {
            let _ = JsonPath::parse(path);
        }
    }
    if let Ok(req) = serde_json::from_slice::<ExtractRequest>(data) {
        let bot = &*SHOP;
        let language = bot.language(req.language.as_deref());
        bot.nlp
            .analyse(&req.expression, language, bot.primary_language());
    }
}

static SHOP: LazyLock<Bot> = LazyLock::new(|| {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/bots/shop");
    Bot::load(&dir).expect("the shop example loads")
});

/// A bot folder: `bot.yaml`, then after the first NUL byte `flows/main.yaml`
/// (a fixed folder per process, rewritten for each input), loaded and
/// checked as `sandbot validate` does.
pub fn bot(data: &[u8]) {
    static DIR: LazyLock<Mutex<PathBuf>> = LazyLock::new(|| {
        let dir = std::env::temp_dir().join(format!("sandbot-fuzz-bot-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("flows")).expect("a folder for the bot");
        Mutex::new(dir)
    });
    let (bot_yaml, flow) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"blocks: []"[..]),
    };
    let dir = DIR.lock().unwrap_or_else(|e| e.into_inner());
    let path = dir.as_path();
    std::fs::write(path.join("bot.yaml"), bot_yaml).expect("write bot.yaml");
    std::fs::write(path.join("flows/main.yaml"), flow).expect("write flows/main.yaml");
    let _ = Bot::load(path);
}

/// A message text or value with `{placeholders}` and filters.
pub fn template_text(data: &[u8]) {
    let Some(t) = text(data) else { return };
    let s = session();
    template::check(t);
    template::render(t, &s);
    template::resolve(&json!({"a": t, "b": [t]}), &s);
}

/// A session path (`order.items[0].sku`) read, written and removed.
pub fn json_path(data: &[u8]) {
    let Some(t) = text(data) else { return };
    if let Ok(p) = JsonPath::parse(t) {
        let mut doc = session();
        let _ = p.get(&doc);
        let _ = p.set(&mut doc, json!(1));
        let _ = p.remove(&mut doc);
    }
}

/// A condition block's rules (or one condition) against a session.
pub fn conditions(data: &[u8]) {
    let s = session();
    if let Ok(rules) = serde_json::from_slice::<Vec<Rule>>(data) {
        condition::first_match(&rules, &s);
    } else if let Ok(c) = serde_json::from_slice::<Condition>(data) {
        condition::holds(&c, &s);
    }
}

/// A URL a script fetches, against a policy that allows every host (so
/// only the address rules stand between it and the network).
pub fn egress(data: &[u8]) {
    static POLICY: LazyLock<EgressPolicy> = LazyLock::new(|| EgressPolicy {
        allow_hosts: vec![HostRule::from_str("*").expect("`*` is a host rule")],
        ..EgressPolicy::default()
    });
    let Some(t) = text(data) else { return };
    if let Ok(url) = url::Url::parse(t) {
        let _ = POLICY.check_url(&url);
        if let Some(url::Host::Ipv4(ip)) = url.host() {
            let _ = POLICY.check_ip(ip.into(), "fuzz");
        }
        if let Some(url::Host::Ipv6(ip)) = url.host() {
            let _ = POLICY.check_ip(ip.into(), "fuzz");
        }
    }
}
