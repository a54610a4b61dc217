//! Replaying production failures: the studio lists a bot's recent failed
//! code actions and runs one again, deterministically, against what it
//! recorded (args, session, clock, randomness, fetch answers), on the
//! current code or on the code that failed.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::owned;
use super::failures::FailureRecord;
use crate::api::auth::TenantId;
use crate::flow::ActionCall;
use crate::serve::error::AppError;
use crate::serve::state::AppState;

async fn records(
    state: &AppState,
    tenant: &TenantId,
    bot_id: &str,
) -> Result<Vec<FailureRecord>, AppError> {
    let ds = owned(state, tenant, bot_id)?;
    let keys: Vec<String> = ds.iter().map(|d| d.key.clone()).collect();
    match state.runners[&tenant.0].failures() {
        Some(log) => log.list(&keys).await.map_err(AppError::internal),
        None => Ok(Vec::new()),
    }
}

async fn find(
    state: &AppState,
    tenant: &TenantId,
    bot_id: &str,
    id: &str,
) -> Result<FailureRecord, AppError> {
    let ds = owned(state, tenant, bot_id)?;
    let found = match state.runners[&tenant.0].failures() {
        Some(log) => log.get(id).await.map_err(AppError::internal)?,
        None => None,
    };
    found
        .filter(|r| ds.iter().any(|d| d.key == r.bot))
        .ok_or_else(|| {
            AppError::not_found(format!(
                "no failure `{id}` (failures are kept for 24 hours)"
            ))
        })
}

/// `GET /v1/studio/bots/{bot}/failures`: recent failed code actions, newest first.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Extension(tenant): Extension<TenantId>,
    Path(bot_id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let data: Vec<Value> = records(&state, &tenant, &bot_id)
        .await?
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "atMs": r.at_ms,
                "version": if r.bot.contains('@') { "DRAFT" } else { "LIVE" },
                "conversation": r.conversation,
                "action": r.action,
                "error": r.error,
                "fetches": r.recording.answers.len(),
            })
        })
        .collect();
    Ok(Json(json!({ "data": data })))
}

/// `GET /v1/studio/bots/{bot}/failures/{id}`: everything it recorded.
pub async fn get(
    State(state): State<Arc<AppState>>,
    Extension(tenant): Extension<TenantId>,
    Path((bot_id, id)): Path<(String, String)>,
) -> Result<Json<FailureRecord>, AppError> {
    find(&state, &tenant, &bot_id, &id).await.map(Json)
}

#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Replay {
    /// The script to replay with (unsaved editor text); default: the code
    /// that failed, or the saved one (the DRAFT's) with `current: true`.
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    current: bool,
}

/// `POST /v1/studio/bots/{bot}/failures/{id}/replay`: the run panel's data.
pub async fn replay(
    State(state): State<Arc<AppState>>,
    Extension(tenant): Extension<TenantId>,
    Path((bot_id, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, AppError> {
    let req: Replay = if body.is_empty() {
        Replay::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| AppError::bad_request(format!("the body is not a replay request: {e}")))?
    };
    let r = find(&state, &tenant, &bot_id, &id).await?;
    let ds = owned(&state, &tenant, &bot_id)?;
    let (source, code): (Arc<str>, &str) = match (req.source, req.current) {
        (Some(s), _) => (s.into(), "given"),
        // The saved code: the folder's (the DRAFT).
        (None, true) => (
            super::api::draft(ds[0])?
                .scripts
                .get(&r.action)
                .cloned()
                .ok_or_else(|| AppError::not_found(format!("no code action `{}` now", r.action)))?,
            "current",
        ),
        (None, false) => (r.source.as_str().into(), "failed"),
    };
    let runner = state.runners[&tenant.0].clone();
    let call = ActionCall::Code {
        name: r.action.clone(),
        source,
        args: r.args.clone(),
    };
    let outcome = runner
        .outcome_with(call, &r.session, Some(r.recording.clone()))
        .await;
    let mut report = super::run::report(
        &outcome,
        &r.session,
        r.args.clone(),
        super::run::limits(&state, &tenant, &runner),
    );
    report["replayed"] = json!({ "id": r.id, "code": code, "recordedError": r.error });
    Ok(Json(report))
}
