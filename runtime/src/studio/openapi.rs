//! The studio's routes in the OpenAPI document (`/v1/openapi.json`): the
//! request bodies from their types, the answers as schemas written here.

use serde_json::{Value, json};

use crate::api::openapi::Doc;

/// What a run (or a replay) answers: the run panel's data.
fn run_report() -> Value {
    let any = json!({});
    json!({
        "type": "object",
        "required": ["status", "output", "args", "messages", "sessionDiff", "console", "fetches", "stats", "limits"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "error"]},
            "error": {"type": ["object", "null"], "description": "kind (out_of_fuel, timeout, memory_limit, js_error, …), message, and the script line when it names one", "properties": {
                "kind": {"type": "string"}, "message": {"type": "string"}, "line": {"type": ["integer", "null"]}}},
            "output": any,
            "args": {"type": "object", "description": "the args as run (templated against the session)"},
            "messages": {"type": "array", "items": {"type": "object"}, "description": "Chatlayer messages"},
            "sessionDiff": {"type": "array", "items": {"type": "object", "properties": {
                "path": {"type": "string"}, "before": any, "after": any}}},
            "next": {"type": ["string", "null"], "description": "the block to continue with"},
            "console": {"type": "array", "items": {"type": "object", "properties": {"level": {"type": "string"}, "text": {"type": "string"}}}},
            "fetches": {"type": "array", "items": {"type": "object", "properties": {
                "method": {"type": "string"}, "url": {"type": "string"}, "status": {"type": "integer"},
                "error": {"type": "string", "description": "`denied: …` when the egress policy refused it"},
                "bytes": {"type": "integer"}, "ms": {"type": "integer"}}}},
            "stats": {"type": "object", "properties": {
                "fuel": {"type": "integer"}, "memoryBytes": {"type": "integer"}, "wallUs": {"type": "integer"}}},
            "limits": {"type": "object", "description": "the tenant's limits and egress allowlist", "properties": {
                "fuel": {"type": "integer"}, "memoryBytes": {"type": "integer"}, "timeoutMs": {"type": "integer"},
                "maxHttpCalls": {"type": "integer"}, "egress": {"type": "array", "items": {"type": "string"}}}},
            "replayed": {"type": "object", "description": "replays only: the failure's id, which code ran (failed, current, given) and the recorded error"}
        }
    })
}

/// Method, path, summary, request body, (status, answer).
type Route = (
    &'static str,
    String,
    &'static str,
    Option<Value>,
    (u16, Option<Value>),
);

pub(crate) fn routes(doc: &mut Doc) {
    let base = "/v1/studio/bots/{botId}";
    let object = json!({"type": "object"});
    let check = doc.schema::<super::run::Check>();
    let run = doc.schema::<super::run::Run>();
    let save = doc.schema::<super::api::Save>();
    let publish = doc.schema::<super::api::Publish>();
    let replay = doc.schema::<super::replay::Replay>();
    let sign_in = doc.schema::<super::auth::SignIn>();
    let version = json!({"type": "object", "properties": {"version": {"type": "object", "properties": {
        "number": {"type": "integer"}, "author": {"type": "string"}, "message": {"type": "string"},
        "atMs": {"type": "integer"}, "fingerprint": {"type": "string"}}}, "live": {"type": "boolean"}}});
    let routes: [Route; 15] = [
        (
            "post",
            "/v1/studio/session".into(),
            "Studio sign-in: a tenant token for a session cookie (HttpOnly, SameSite=Strict)",
            Some(sign_in),
            (200, Some(object.clone())),
        ),
        (
            "delete",
            "/v1/studio/session".into(),
            "Studio sign-out",
            None,
            (204, None),
        ),
        (
            "get",
            "/v1/studio/bots".into(),
            "The tenant's bots, their versions and code actions (with the blocks and args that use them)",
            None,
            (200, Some(object.clone())),
        ),
        (
            "get",
            base.into(),
            "A bot's DRAFT: its text files and code actions",
            None,
            (200, Some(object.clone())),
        ),
        (
            "post",
            "/v1/studio/check".into(),
            "Syntax diagnostics of a script (line, column, message)",
            Some(check),
            (
                200,
                Some(
                    json!({"type": "object", "properties": {"diagnostics": {"type": "array", "items": {"type": "object", "properties": {"line": {"type": "integer"}, "column": {"type": "integer"}, "message": {"type": "string"}}}}}}),
                ),
            ),
        ),
        (
            "post",
            format!("{base}/run"),
            "Run a code action once under the tenant's limits and egress policy",
            Some(run),
            (200, Some(run_report())),
        ),
        (
            "get",
            format!("{base}/conversations"),
            "The DRAFT's latest conversations (to run over a real session)",
            None,
            (200, Some(object.clone())),
        ),
        (
            "get",
            format!("{base}/versions"),
            "The bot's versions, newest first, and the LIVE one",
            None,
            (200, Some(object.clone())),
        ),
        (
            "post",
            format!("{base}/versions"),
            "Save a change as a new DRAFT version (422 with every problem, nothing written, when the bot would not load)",
            Some(save),
            (201, Some(version.clone())),
        ),
        (
            "get",
            format!("{base}/versions/{{n}}"),
            "One version's metadata and text files",
            None,
            (200, Some(object.clone())),
        ),
        (
            "get",
            format!("{base}/versions/{{n}}/diff"),
            "Unified diffs per file from `against` (default: the version before) to n",
            None,
            (200, Some(object.clone())),
        ),
        (
            "post",
            format!("{base}/versions/{{n}}/restore"),
            "Make version n's files the DRAFT again, as a new version",
            None,
            (201, Some(version.clone())),
        ),
        (
            "post",
            format!("{base}/publish"),
            "Make the DRAFT the LIVE version",
            Some(publish),
            (200, Some(version)),
        ),
        (
            "get",
            format!("{base}/failures"),
            "Recent failed code actions in production (24 hours, on this node)",
            None,
            (200, Some(object)),
        ),
        (
            "post",
            format!("{base}/failures/{{id}}/replay"),
            "Replay a failure against what it recorded, on the failing code, the saved code or given source",
            Some(replay),
            (200, Some(run_report())),
        ),
    ];
    for (method, path, summary, request, ok) in routes {
        doc.route(method, &path, summary, request, ok);
    }
}
