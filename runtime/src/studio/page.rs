//! `/studio` and its assets, embedded in the binary: the page, its script
//! and style, and the CodeMirror bundle (`runtime/studio-ui/build.sh`).
//! Only this server's own scripts run on it; no other site may frame it.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};

use crate::serve::error::AppError;

const PAGE: &str = include_str!("assets/studio.html");
const SCRIPT: &str = include_str!("assets/studio.js");
const STYLE: &str = include_str!("assets/studio.css");
const EDITOR: &str = include_str!("assets/editor.js");

/// CodeMirror adds its own style elements; scripts come only from here.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; frame-src https:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

pub async fn page() -> Response {
    let mut response = Html(PAGE).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    response
}

pub async fn asset(Path(file): Path<String>) -> Result<Response, AppError> {
    let (body, kind) = match file.as_str() {
        "studio.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "editor.js" => (EDITOR, "text/javascript; charset=utf-8"),
        "studio.css" => (STYLE, "text/css; charset=utf-8"),
        _ => return Err(AppError::not_found(format!("no studio asset `{file}`"))),
    };
    Ok((
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response())
}
