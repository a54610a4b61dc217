//! The OpenAPI 3.1 document of the REST API, served at `/v1/openapi.json`,
//! built from the request and response types (`types.rs`) with schemars.

use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value, json};

use super::types::*;

pub(crate) struct Doc {
    generator: SchemaGenerator,
    paths: Map<String, Value>,
}

impl Doc {
    pub(crate) fn schema<T: JsonSchema>(&mut self) -> Value {
        serde_json::to_value(self.generator.subschema_for::<T>()).expect("a schema")
    }

    pub(crate) fn route(
        &mut self,
        method: &str,
        path: &str,
        summary: &str,
        request: Option<Value>,
        ok: (u16, Option<Value>),
    ) {
        let error = self.schema::<ErrorBody>();
        let mut responses = Map::new();
        let ok_body = match ok.1 {
            Some(s) => json!({"description": "OK", "content": {"application/json": {"schema": s}}}),
            None => json!({"description": "Done"}),
        };
        responses.insert(ok.0.to_string(), ok_body);
        for (code, why) in [
            ("400", "Malformed input"),
            ("401", "Missing or wrong bearer token"),
            (
                "404",
                "Unknown bot (or another tenant's), or unknown conversation",
            ),
            ("429", "Rate limit reached"),
            (
                "507",
                "The tenant is over its storage quota (actions that add messages)",
            ),
        ] {
            responses.insert(
                code.into(),
                json!({"description": why, "content": {"application/json": {"schema": error}}}),
            );
        }
        let mut op = json!({
            "summary": summary,
            "parameters": parameters(path),
            "responses": responses,
        });
        if let Some(r) = request {
            op["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": r}}});
        }
        let entry = self.paths.entry(path.to_string()).or_insert(json!({}));
        entry[method] = op;
    }
}

fn parameters(path: &str) -> Vec<Value> {
    let mut p: Vec<Value> = path
        .split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    p.push(json!({"name": "version", "in": "query", "schema": {"type": "string", "enum": ["DRAFT", "LIVE"]}}));
    if path.ends_with("/actions") {
        p.push(json!({"name": "Idempotency-Key", "in": "header", "description": "A retry with the same key (per conversation) is not applied again: answered with the first request's answer and `duplicate: true`", "schema": {"type": "string", "minLength": 1, "maxLength": 256}}));
    }
    if path.ends_with("conversations") || path.ends_with("messages") {
        p.push(json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}}));
        p.push(json!({"name": "after", "in": "query", "schema": {"type": "string"}}));
    }
    p
}

pub fn document() -> Value {
    let mut doc = Doc {
        generator: SchemaGenerator::new(schemars::generate::SchemaSettings::openapi3()),
        paths: Map::new(),
    };
    let base = "/v1/bots/{botId}";
    let conv = format!("{base}/conversations/{{conversationId}}");
    let (list, msgs, session, req, resp, ext_req, ext_resp) = (
        doc.schema::<ConversationList>(),
        doc.schema::<MessageList>(),
        doc.schema::<SessionData>(),
        doc.schema::<ActionsRequest>(),
        doc.schema::<ActionsResponse>(),
        doc.schema::<ExtractRequest>(),
        doc.schema::<ExtractResponse>(),
    );
    doc.route(
        "get",
        &format!("{base}/conversations"),
        "List conversations",
        None,
        (200, Some(list)),
    );
    doc.route(
        "get",
        &format!("{conv}/messages"),
        "A conversation's messages",
        None,
        (200, Some(msgs)),
    );
    doc.route(
        "get",
        &format!("{conv}/session-data"),
        "A conversation's session",
        None,
        (200, Some(session)),
    );
    doc.route(
        "delete",
        &format!("{conv}/session-data"),
        "Clear a conversation's session",
        None,
        (204, None),
    );
    doc.route(
        "delete",
        &conv,
        "Delete a conversation: its session and transcript (frees storage quota)",
        None,
        (204, None),
    );
    doc.route(
        "post",
        &format!("{conv}/actions"),
        "Send messages, set session data, pause/resume, go to a block",
        Some(req),
        (200, Some(resp)),
    );
    doc.route(
        "post",
        &format!("{base}/nlp/extract"),
        "Intents and entities in an expression",
        Some(ext_req),
        (200, Some(ext_resp)),
    );
    let (dead, requeued) = (doc.schema::<DeadLetterList>(), doc.schema::<Requeued>());
    doc.route(
        "get",
        "/v1/deliveries/dead",
        "Deliveries given up after their retry period (the tenant's bots)",
        None,
        (200, Some(dead)),
    );
    doc.route(
        "post",
        "/v1/deliveries/dead/{id}/requeue",
        "Put a dead letter back in its conversation's queue",
        None,
        (200, Some(requeued)),
    );
    crate::studio::openapi::routes(&mut doc);
    let schemas = doc.generator.take_definitions(true);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Sandbot v1 REST API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Conversations, messages, session data and actions (/v1/bots), dead letters, and the studio's API (/v1/studio: code actions, runs, versions, publishing, replays; a tenant token as bearer, or the studio's session cookie with the X-Sandbot-Studio: 1 header on changes)."
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": doc.paths,
    })
}
