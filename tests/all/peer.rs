//! A local HTTP peer for egress tests, on 127.0.0.1 only. Tests reach it through
//! an explicit allowlist entry (`http://127.0.0.1:PORT`), never a weakened default.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};

/// Starts the peer on a fresh port and returns its address. The server lives as
/// long as the test's runtime.
pub async fn start() -> SocketAddr {
    let app = Router::new()
        .route(
            "/json",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    r#"{"hello":"world"}"#,
                )
            }),
        )
        .route("/echo", any(echo))
        .route("/status/{code}", get(status))
        .route("/redirect", get(redirect))
        .route("/big", get(big))
        .route("/stream", get(stream))
        .route("/api/user", get(api_user))
        .route("/api/users/{id}", get(api_user_by_path))
        .route("/api/order", axum::routing::post(api_order))
        .route("/api/headers", get(api_headers))
        .route("/slow", get(slow));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn echo(method: axum::http::Method, headers: HeaderMap, body: String) -> String {
    let auth = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_string());
    serde_json::json!({"method": method.as_str(), "body": body, "authorization": auth}).to_string()
}

async fn status(axum::extract::Path(code): axum::extract::Path<u16>) -> StatusCode {
    StatusCode::from_u16(code).unwrap()
}

async fn redirect(Query(q): Query<HashMap<String, String>>) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, q["to"].clone())]).into_response()
}

async fn big(Query(q): Query<HashMap<String, usize>>) -> String {
    "b".repeat(q["n"])
}

/// Answers `{"slept": ms}` (an API action's JSON) after `ms` milliseconds.
async fn slow(Query(q): Query<HashMap<String, u64>>) -> impl IntoResponse {
    tokio::time::sleep(Duration::from_millis(q["ms"])).await;
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({"slept": q["ms"]}).to_string(),
    )
}

/// `n` bytes in 1 KiB chunks with no content-length: the cap must stop the stream.
async fn stream(Query(q): Query<HashMap<String, usize>>) -> axum::body::Body {
    let chunks = q["n"].div_ceil(1024);
    let stream =
        futures_util::stream::iter((0..chunks).map(|_| Ok::<_, std::io::Error>(vec![b's'; 1024])));
    axum::body::Body::from_stream(stream)
}

/// An API-action response: session, messages and navigation.
async fn api_user(Query(q): Query<HashMap<String, String>>) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "session": {"namespace": "user", "data": {"id": q.get("id"), "name": q.get("name")}},
        "messages": [{"type": "text", "config": {"textMessages": [{"text": "Found you"}]}}],
        "action": {"nextDialogstate": "after-lookup"}
    }))
}

async fn api_user_by_path(
    axum::extract::Path(id): axum::extract::Path<String>,
) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"session": {"namespace": "lookup", "data": {"id": id}}}))
}

/// Stores the request body under `order` and navigates with a top-level `nextDialogstate`.
async fn api_order(
    axum::Json(body): axum::Json<serde_json::Value>,
) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "session": {"namespace": "order", "data": body},
        "nextDialogstate": body["next"]
    }))
}

async fn api_headers(headers: HeaderMap) -> axum::Json<serde_json::Value> {
    let h = |n: &str| headers.get(n).map(|v| v.to_str().unwrap().to_string());
    axum::Json(serde_json::json!({
        "session": {"namespace": "seen", "data": {"authorization": h("authorization"), "token": h("x-token")}}
    }))
}
