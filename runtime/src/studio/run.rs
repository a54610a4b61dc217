//! The studio's run panel and diagnostics: a code action run once in the
//! tenant's sandbox, under its real limits and egress policy, over `args`
//! and a session (a DRAFT conversation's, or given), with everything the
//! sandbox saw; and syntax errors with their line and column as you type.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::api::owned;
use crate::api::auth::TenantId;
use crate::flow::ActionCall;
use crate::flow::bot::script_check::diagnose;
use crate::flow::say::template;
use crate::sandbox::Outcome;
use crate::serve::error::AppError;
use crate::serve::state::AppState;
use sandbot_host_api::JsonPath;

/// Characters of script the diagnostics read, at most.
pub const MAX_SOURCE_CHARS: usize = 200_000;

#[derive(Deserialize, schemars::JsonSchema)]
pub struct Check {
    source: String,
}

/// `POST /v1/studio/check` `{source}`: the script's syntax errors (none, or
/// the first, with line and column).
pub async fn check(body: Result<Json<Check>, JsonRejection>) -> Result<Json<Value>, AppError> {
    let Json(Check { source }) = body.map_err(|e| AppError::new(e.status(), e.body_text()))?;
    if source.chars().count() > MAX_SOURCE_CHARS {
        return Err(AppError::bad_request(format!(
            "the script has more than {MAX_SOURCE_CHARS} characters"
        )));
    }
    let started = Instant::now();
    let found = tokio::task::spawn_blocking(move || diagnose(&source))
        .await
        .map_err(AppError::internal)?;
    Ok(Json(json!({
        "diagnostics": found.into_iter().collect::<Vec<_>>(),
        "tookUs": started.elapsed().as_micros() as u64,
    })))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Run {
    /// The code action (`actions/NAME.js`), as `NAME.js`.
    action: String,
    /// The script to run (unsaved editor text); default: the saved one.
    #[serde(default)]
    source: Option<String>,
    /// `args` (strings templated against the session, as a block does);
    /// default: the first block's that uses the action.
    #[serde(default)]
    args: Option<Map<String, Value>>,
    /// A session; default: the DRAFT conversation's, else empty.
    #[serde(default)]
    session: Option<Value>,
    /// A conversation of the DRAFT bot whose session to run over.
    #[serde(default)]
    conversation: Option<String>,
}

/// `POST /v1/studio/bots/{bot}/run`: one run of a code action.
pub async fn run(
    State(state): State<Arc<AppState>>,
    Extension(tenant): Extension<TenantId>,
    Path(bot_id): Path<String>,
    body: Result<Json<Run>, JsonRejection>,
) -> Result<Json<Value>, AppError> {
    let Json(req) = body.map_err(|e| AppError::new(e.status(), e.body_text()))?;
    let ds = owned(&state, &tenant, &bot_id)?;
    let d = ds[0];
    // The saved code: the DRAFT deployment's, else the folder's as it is.
    let bot = match d.version {
        "DRAFT" => d.bot(),
        _ => Arc::new(super::api::draft(d)?),
    };
    let source = match req.source {
        Some(s) => s,
        None => bot
            .scripts
            .get(&req.action)
            .map(|s| s.to_string())
            .ok_or_else(|| AppError::not_found(format!("no code action `{}`", req.action)))?,
    };
    let session = match (req.session, &req.conversation) {
        (Some(s), _) if !s.is_object() => {
            return Err(AppError::bad_request("`session` must be a JSON object"));
        }
        (Some(s), _) => s,
        (None, Some(c)) => {
            state
                .store
                .load(&d.key, c)
                .await
                .map_err(AppError::from)?
                .ok_or_else(|| AppError::not_found(format!("no conversation `{c}`")))?
                .session
        }
        (None, None) => json!({}),
    };
    let args = req.args.unwrap_or_else(|| block_args(&bot, &req.action));
    let args = Value::Object(template::resolve_map(&args, &session));
    let runner = state.runners[&tenant.0].clone();
    let call = ActionCall::Code {
        name: req.action.clone(),
        source: source.as_str().into(),
        args: args.clone(),
    };
    let outcome = runner.outcome(call, &session).await;
    Ok(Json(report(
        &outcome,
        &session,
        args,
        limits(&state, &tenant, &runner),
    )))
}

/// The tenant's limits and egress policy, as the run panel shows them.
pub fn limits(state: &AppState, tenant: &TenantId, runner: &crate::runner::SandboxRunner) -> Value {
    let limits = runner.limits();
    json!({
        "fuel": limits.fuel,
        "memoryBytes": limits.memory_bytes,
        "timeoutMs": limits.timeout.as_millis() as u64,
        "maxHttpCalls": limits.host.max_http_calls,
        "egress": state.tenants[&tenant.0].egress,
    })
}

/// The `args` of the first block that runs `action`.
fn block_args(bot: &crate::flow::Bot, action: &str) -> Map<String, Value> {
    super::api::actions(bot)
        .into_iter()
        .find(|a| a["name"] == action)
        .and_then(|a| a["blocks"][0]["args"].as_object().cloned())
        .unwrap_or_default()
}

/// What the run panel shows.
pub fn report(outcome: &Outcome, session: &Value, args: Value, limits: Value) -> Value {
    let e = &outcome.effects;
    let diff: Vec<Value> = e
        .session
        .iter()
        .map(|(path, after)| {
            let before = JsonPath::parse(path)
                .ok()
                .and_then(|p| p.get(session).cloned())
                .unwrap_or(Value::Null);
            json!({ "path": path, "before": before, "after": after })
        })
        .collect();
    let error = outcome.error.as_ref().map(|f| {
        json!({
            "kind": f.kind,
            "message": f.message,
            "line": line_of(&f.message),
        })
    });
    json!({
        "status": outcome.status,
        "error": error,
        "output": outcome.output,
        "args": args,
        "messages": e.messages,
        "sessionDiff": diff,
        "next": e.next,
        "console": e.logs,
        "fetches": e.fetches,
        "stats": {
            "fuel": outcome.stats.fuel,
            "memoryBytes": outcome.stats.memory_bytes,
            "wallUs": outcome.stats.wall_us,
        },
        "limits": limits,
    })
}

/// The script line a failure names (`… line 3 …`), if any.
fn line_of(message: &str) -> Option<usize> {
    crate::flow::bot::script_check::number_after(message, "line ")
}

/// `GET /v1/studio/bots/{bot}/conversations`: the DRAFT bot's latest
/// conversations, to run an action over one's session.
pub async fn conversations(
    State(state): State<Arc<AppState>>,
    Extension(tenant): Extension<TenantId>,
    Path(bot_id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let ds = owned(&state, &tenant, &bot_id)?;
    let Some(d) = ds.iter().find(|d| d.version == "DRAFT") else {
        return Ok(Json(json!({ "data": [] })));
    };
    let ids = state
        .store
        .conversations(&d.key, None, 50)
        .await
        .map_err(AppError::from)?;
    let mut data = Vec::new();
    for id in ids {
        if let Some(s) = state
            .store
            .load(&d.key, &id)
            .await
            .map_err(AppError::from)?
        {
            data.push(
                json!({ "conversationId": id, "updatedAt": s.updated_ms, "session": s.session }),
            );
        }
    }
    Ok(Json(json!({ "data": data })))
}

#[cfg(test)]
mod tests {
    #[test]
    fn failure_lines() {
        assert_eq!(super::line_of("TypeError: x at line 3, col 2"), Some(3));
        assert_eq!(super::line_of("out of fuel"), None);
    }
}
