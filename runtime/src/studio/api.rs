//! The studio's bots, files, versions and publishing. A tenant sees and
//! changes only its own bots (another tenant's are 404, as in the REST API).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::edit::{self, EditError};
use super::versions::{VersionMeta, Versions};
use crate::api::auth::TenantId;
use crate::flow::Bot;
use crate::flow::bot::model::BlockKind;
use crate::serve::error::AppError;
use crate::serve::state::{AppState, Deployment};

/// The tenant's deployments of `bot_id` (DRAFT first); 404 when it has none.
pub fn owned<'s>(
    state: &'s AppState,
    tenant: &TenantId,
    bot_id: &str,
) -> Result<Vec<&'s Deployment>, AppError> {
    let mut found: Vec<&Deployment> = state
        .bots
        .values()
        .filter(|d| d.id == bot_id && d.tenant == tenant.0)
        .collect();
    found.sort_by_key(|d| d.version != "DRAFT");
    if found.is_empty() {
        return Err(AppError::not_found(format!("no bot `{bot_id}`")));
    }
    Ok(found)
}

/// The bot as the studio edits it: the folder (DRAFT), loaded now.
pub(super) fn draft(d: &Deployment) -> Result<Bot, AppError> {
    Bot::load(&d.folder).map_err(|p| {
        AppError::new(
            StatusCode::CONFLICT,
            format!("the bot folder does not load as it is on disk: {p}"),
        )
    })
}

/// Each code action of `bot` with the blocks that use it and their `args`.
pub fn actions(bot: &Bot) -> Vec<Value> {
    let mut by_name: BTreeMap<&str, Vec<Value>> = bot
        .scripts
        .keys()
        .map(|k| (k.as_str(), Vec::new()))
        .collect();
    for b in &bot.blocks {
        if let BlockKind::Action(a) = &b.kind
            && let Some(code) = &a.code
        {
            by_name.entry(code.as_str()).or_default().push(json!({
                "id": b.id,
                "name": b.name,
                "args": a.args,
            }));
        }
    }
    by_name
        .into_iter()
        .map(|(name, blocks)| json!({ "name": name, "file": format!("actions/{name}"), "blocks": blocks }))
        .collect()
}

/// A bot's deployments, versions and the code actions of `bot`.
fn summary(ds: &[&Deployment], bot: &Bot) -> Value {
    let d = ds[0];
    let versions = Versions::of(&d.folder);
    json!({
        "id": d.id,
        "name": d.bot().file.name,
        "deployed": ds.iter().map(|d| d.version).collect::<Vec<_>>(),
        "live": versions.live(),
        "latest": versions.list().ok().and_then(|l| l.first().map(|v| v.number)),
        "actions": actions(bot),
    })
}

/// `GET /v1/studio/bots`: the tenant's bots.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Extension(tenant): Extension<TenantId>,
) -> Json<Value> {
    let mut ids: Vec<&str> = state
        .bots
        .values()
        .filter(|d| d.tenant == tenant.0)
        .map(|d| d.id.as_str())
        .collect();
    ids.sort();
    ids.dedup();
    let bots: Vec<Value> = ids
        .iter()
        .filter_map(|id| owned(&state, &tenant, id).ok())
        .map(|ds| summary(&ds, &ds[0].bot()))
        .collect();
    Json(json!({ "tenant": tenant.0, "bots": bots }))
}

/// `GET /v1/studio/bots/{bot}`: the DRAFT's text files and code actions.
pub async fn get(
    State(state): State<Arc<AppState>>,
    Extension(tenant): Extension<TenantId>,
    Path(bot_id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let ds = owned(&state, &tenant, &bot_id)?;
    let bot = draft(ds[0])?;
    let files =
        text_files(&super::versions::read_files(&ds[0].folder).map_err(AppError::internal)?);
    let mut out = summary(&ds, &bot);
    out["files"] = json!(files);
    Ok(Json(out))
}

fn text_files(files: &super::versions::Files) -> BTreeMap<String, String> {
    files
        .iter()
        .filter(|(rel, _)| edit::writable(rel))
        .filter_map(|(rel, b)| Some((rel.clone(), String::from_utf8(b.clone()).ok()?)))
        .collect()
}

/// `GET /v1/studio/bots/{bot}/versions`: newest first.
pub async fn versions(
    State(state): State<Arc<AppState>>,
    Extension(tenant): Extension<TenantId>,
    Path(bot_id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let ds = owned(&state, &tenant, &bot_id)?;
    let v = Versions::of(&ds[0].folder);
    let list = v.list().map_err(AppError::internal)?;
    Ok(Json(json!({ "live": v.live(), "data": list })))
}

/// `GET /v1/studio/bots/{bot}/versions/{n}`: its metadata and text files.
pub async fn version(
    State(state): State<Arc<AppState>>,
    Extension(tenant): Extension<TenantId>,
    Path((bot_id, n)): Path<(String, u64)>,
) -> Result<Json<Value>, AppError> {
    let ds = owned(&state, &tenant, &bot_id)?;
    let v = Versions::of(&ds[0].folder);
    let meta = find(&v, n)?;
    let files = v.files(n).map_err(AppError::internal)?;
    Ok(Json(
        json!({ "version": meta, "files": text_files(&files) }),
    ))
}

fn find(v: &Versions, n: u64) -> Result<VersionMeta, AppError> {
    v.get(n)
        .map_err(AppError::internal)?
        .ok_or_else(|| AppError::not_found(format!("no version {n}")))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct Against {
    against: Option<u64>,
}

/// `GET /v1/studio/bots/{bot}/versions/{n}/diff?against=M`: what changed
/// from M (default: the version before) to N, as unified diffs per file.
pub async fn diff(
    State(state): State<Arc<AppState>>,
    Extension(tenant): Extension<TenantId>,
    Path((bot_id, n)): Path<(String, u64)>,
    Query(q): Query<Against>,
) -> Result<Json<Value>, AppError> {
    let ds = owned(&state, &tenant, &bot_id)?;
    let v = Versions::of(&ds[0].folder);
    find(&v, n)?;
    let m = q.against.unwrap_or(n.saturating_sub(1));
    let old = match m {
        0 => Default::default(),
        m => {
            find(&v, m)?;
            text_files(&v.files(m).map_err(AppError::internal)?)
        }
    };
    let new = text_files(&v.files(n).map_err(AppError::internal)?);
    let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    let files: Vec<Value> = names
        .into_iter()
        .filter_map(|name| {
            let (a, b) = (old.get(name), new.get(name));
            if a == b {
                return None;
            }
            let (a, b) = (a.map_or("", String::as_str), b.map_or("", String::as_str));
            let unified = similar::TextDiff::from_lines(a, b)
                .unified_diff()
                .context_radius(3)
                .header(
                    &format!("{name} (version {m})"),
                    &format!("{name} (version {n})"),
                )
                .to_string();
            Some(json!({ "file": name, "diff": unified }))
        })
        .collect();
    Ok(Json(json!({ "from": m, "to": n, "files": files })))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct Save {
    /// Path → new text; `null` deletes the file.
    files: BTreeMap<String, Option<String>>,
    #[serde(default)]
    message: String,
    #[serde(default)]
    author: Option<String>,
}

/// `POST /v1/studio/bots/{bot}/versions`: saves a change as a new DRAFT
/// version, after checking the whole bot (422 with every problem, and
/// nothing written, when it does not load).
pub async fn save(
    State(state): State<Arc<AppState>>,
    Extension(tenant): Extension<TenantId>,
    Path(bot_id): Path<String>,
    body: Result<Json<Save>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let Json(req) = body.map_err(|e| AppError::new(e.status(), e.body_text()))?;
    let ds = owned(&state, &tenant, &bot_id)?;
    if req.files.is_empty() {
        return Err(AppError::bad_request("`files` names no change"));
    }
    let folder = ds[0].folder.clone();
    let author = req.author.unwrap_or_else(|| tenant.0.clone());
    let changes: Vec<(String, Option<String>)> = req.files.into_iter().collect();
    let message = req.message;
    let result =
        tokio::task::spawn_blocking(move || edit::save(&folder, &changes, &author, &message))
            .await
            .map_err(AppError::internal)?;
    applied(&ds, result, false)
}

/// `POST /v1/studio/bots/{bot}/versions/{n}/restore`: the folder gets
/// version N's files back, as a new version.
pub async fn restore(
    State(state): State<Arc<AppState>>,
    Extension(tenant): Extension<TenantId>,
    Path((bot_id, n)): Path<(String, u64)>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let ds = owned(&state, &tenant, &bot_id)?;
    let folder = ds[0].folder.clone();
    let author = tenant.0.clone();
    let result = tokio::task::spawn_blocking(move || edit::restore(&folder, n, &author))
        .await
        .map_err(AppError::internal)?;
    applied(&ds, result, false)
}

#[derive(Deserialize, Default, schemars::JsonSchema)]
pub struct Publish {
    #[serde(default)]
    message: String,
}

/// `POST /v1/studio/bots/{bot}/publish`: the DRAFT becomes LIVE.
pub async fn publish(
    State(state): State<Arc<AppState>>,
    Extension(tenant): Extension<TenantId>,
    Path(bot_id): Path<String>,
    body: Option<Json<Publish>>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let ds = owned(&state, &tenant, &bot_id)?;
    let folder = ds[0].folder.clone();
    let author = tenant.0.clone();
    let message = body.map(|b| b.0.message).unwrap_or_default();
    let message = if message.is_empty() {
        "published".to_string()
    } else {
        message
    };
    let result = tokio::task::spawn_blocking(move || edit::publish(&folder, &author, &message))
        .await
        .map_err(AppError::internal)?;
    applied(&ds, result, true)
}

/// Puts a saved (or published) bot in place at once, on this node (others
/// pick it up with their reload); the answer names the version.
fn applied(
    ds: &[&Deployment],
    result: Result<(VersionMeta, Bot), EditError>,
    live: bool,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let (meta, bot) = match result {
        Ok(r) => r,
        Err(EditError::Invalid(problems)) => {
            let mut e = AppError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("refused, nothing was changed: {problems}"),
            );
            e.details = Some(json!({ "problems": problems.0 }));
            return Err(e);
        }
        Err(EditError::Bad(why)) => return Err(AppError::bad_request(why)),
        Err(EditError::Io(e)) => return Err(AppError::internal(e)),
    };
    let target = if live { "LIVE" } else { "DRAFT" };
    if let Some(d) = ds.iter().find(|d| d.version == target) {
        d.replace(bot);
    }
    let status = if live {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(json!({ "version": meta, "live": live }))))
}
