//! The studio: versions and publishing of bot folders (DRAFT and LIVE side
//! by side), and the code editor's API and page (`/studio`).

pub mod api;
pub mod auth;
pub mod edit;
pub mod failures;
pub(crate) mod openapi;
pub mod page;
pub mod replay;
pub mod run;
pub mod versions;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::serve::state::AppState;

/// `/studio` (the page and its assets) and `/v1/studio/...` (its API).
pub fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let api = Router::new()
        .route("/v1/studio/bots", get(api::list))
        .route("/v1/studio/bots/{bot_id}", get(api::get))
        .route(
            "/v1/studio/bots/{bot_id}/versions",
            get(api::versions).post(api::save),
        )
        .route("/v1/studio/bots/{bot_id}/versions/{n}", get(api::version))
        .route("/v1/studio/bots/{bot_id}/versions/{n}/diff", get(api::diff))
        .route(
            "/v1/studio/bots/{bot_id}/versions/{n}/restore",
            post(api::restore),
        )
        .route("/v1/studio/bots/{bot_id}/publish", post(api::publish))
        .route("/v1/studio/bots/{bot_id}/run", post(run::run))
        .route(
            "/v1/studio/bots/{bot_id}/conversations",
            get(run::conversations),
        )
        .route("/v1/studio/bots/{bot_id}/failures", get(replay::list))
        .route("/v1/studio/bots/{bot_id}/failures/{id}", get(replay::get))
        .route(
            "/v1/studio/bots/{bot_id}/failures/{id}/replay",
            post(replay::replay),
        )
        .route("/v1/studio/check", post(run::check))
        .layer(axum::middleware::from_fn_with_state(
            state,
            auth::authenticate,
        ));
    api.route(
        "/v1/studio/session",
        post(auth::sign_in).delete(auth::sign_out),
    )
    .route("/studio", get(page::page))
    .route("/studio/assets/{file}", get(page::asset))
}
