//! `POST /v1/bots/{botId}/nlp/extract`: what the bot's NLP finds in an expression.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};

use super::auth::{TenantId, deployment};
use super::types::{EntityItem, Extract, ExtractRequest, ExtractResponse, IntentItem, Page};
use crate::serve::error::AppError;
use crate::serve::state::AppState;

pub async fn extract(
    State(state): State<Arc<AppState>>,
    Extension(tenant): Extension<TenantId>,
    Path(bot_id): Path<String>,
    Query(page): Query<Page>,
    body: Result<Json<ExtractRequest>, JsonRejection>,
) -> Result<Json<ExtractResponse>, AppError> {
    let d = deployment(&state, &tenant, &bot_id, page.version.as_deref())?;
    let Json(req) = body.map_err(|e| AppError::new(e.status(), e.body_text()))?;
    let bot = d.bot();
    let language = bot.language(req.language.as_deref()).to_string();
    let a = bot
        .nlp
        .analyse(&req.expression, &language, bot.primary_language());
    Ok(Json(ExtractResponse {
        extract: Extract {
            intents: a
                .intents
                .into_iter()
                .map(|i| IntentItem {
                    intent: i.name,
                    score: i.score,
                })
                .collect(),
            entities: a
                .entities
                .into_iter()
                .map(|e| EntityItem {
                    name: e.name,
                    value: e.value,
                    score: e.score,
                })
                .collect(),
        },
    }))
}
