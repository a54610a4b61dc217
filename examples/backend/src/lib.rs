//! The backend the example bots call, so they run offline:
//!
//! - `GET /meetups?month=June` → `{"records": [{title, city, date, url}]}` (the
//!   meetups bot's code action calls it with `fetch`); needs `Authorization:
//!   Bearer demo-token`, else 401.
//! - `POST /orders/status` `{"orderId": "ORD-1234"}` → an API-action response
//!   (`session`, `messages`, `action.nextDialogstate`); unknown orders → 404.
//! - `/desk`: a stand-in agent desk behind Chatlayer's offloading webhook
//!   (`?challenge.verifyToken=demo-desk`): `GET` is its health check, `POST`
//!   takes `messages` events and accepts every `offload` (an agent "takes
//!   over"; answer as the agent with the REST API).

use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

/// Where the example bots expect the backend.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8787";

pub fn router() -> Router {
    Router::new()
        .route("/meetups", get(meetups))
        .route("/orders/status", post(order_status))
        .route("/healthz", get(|| async { "ok" }))
        .route("/desk", get(desk_health).post(desk_event))
}

/// The desk's verify token (the example serve config sends it).
pub const DESK_TOKEN: &str = "demo-desk";

fn desk_token(q: &[(String, String)]) -> bool {
    q.iter()
        .any(|(k, v)| k == "challenge.verifyToken" && v == DESK_TOKEN)
}

async fn desk_health(Query(q): Query<Vec<(String, String)>>) -> (StatusCode, Json<Value>) {
    if !desk_token(&q) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"status": "wrong verify token"})),
        );
    }
    (StatusCode::OK, Json(json!({"status": "ok"})))
}

async fn desk_event(
    Query(q): Query<Vec<(String, String)>>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    if !desk_token(&q) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "wrong verify token"})),
        );
    }
    match body["event"].as_str() {
        Some("offload") => (
            StatusCode::OK,
            Json(json!({"offloadSuccess": true, "pauseBot": true})),
        ),
        _ => (StatusCode::OK, Json(json!({}))),
    }
}

const MEETUPS: &[(&str, &str, &str, &str)] = &[
    ("June", "Rust Ghent", "Ghent", "2026-06-11"),
    ("June", "Bots & Beer", "Antwerp", "2026-06-18"),
    ("June", "Wasm Wednesday", "Amsterdam", "2026-06-24"),
    ("July", "Summer of Sandboxes", "Brussels", "2026-07-09"),
];

async fn meetups(
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> (StatusCode, Json<Value>) {
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "Bearer demo-token");
    if !authorized {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "missing or wrong token"})),
        );
    }
    let month = q
        .iter()
        .find(|(k, _)| k == "month")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let records: Vec<Value> = MEETUPS
        .iter()
        .filter(|m| m.0.eq_ignore_ascii_case(month))
        .map(|(_, title, city, date)| {
            json!({"title": title, "city": city, "date": date,
                   "url": format!("https://meetups.example.com/{}", title.to_lowercase().replace(' ', "-"))})
        })
        .collect();
    (StatusCode::OK, Json(json!({ "records": records })))
}

async fn order_status(Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    let id = body["orderId"].as_str().unwrap_or("");
    let (status, eta) = match id {
        "ORD-1234" => ("shipped", "2026-11-24"),
        "ORD-2002" => ("being packed", "2026-11-27"),
        _ => {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({"error": format!("no order {id}")})),
            );
        }
    };
    (
        StatusCode::OK,
        Json(json!({
            "session": {"namespace": "order", "data": {"status": status, "eta": eta}},
            "messages": [{"type": "text", "config": {"textMessages": [{"text": format!("Order {id} is {status}.")}]}}],
            "action": {"nextDialogstate": "order-found"}
        })),
    )
}

/// Serves the backend on `addr` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    axum::serve(listener, router()).await
}
