//! Who uses the studio: a tenant's API token, sent as a bearer token (tools,
//! CI) or exchanged once for a signed session cookie (the page: HttpOnly,
//! SameSite=Strict, the token itself never stored in the browser or put in
//! a URL). Requests that change something with the cookie must also carry
//! `X-Sandbot-Studio: 1`, which another site's form or script cannot send
//! without a CORS preflight this server never grants (CSRF).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;

use crate::api::auth::TenantId;
use crate::channels::webhook::bearer;
use crate::serve::error::AppError;
use crate::serve::state::AppState;
use crate::store::now_ms;

pub const COOKIE: &str = "sandbot_studio";
/// The header that proves a cookie request comes from the studio's own page.
pub const CSRF_HEADER: &str = "x-sandbot-studio";
/// How long a studio sign-in lasts.
const SESSION_S: u64 = 12 * 3600;

fn sign(key: &[u8], tenant: &str, expires: u64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(format!("studio\0{tenant}\0{expires}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The cookie's value for `tenant` until `expires` (epoch seconds).
fn cookie_value(key: &[u8], tenant: &str, expires: u64) -> String {
    format!("{expires}.{}.{tenant}", sign(key, tenant, expires))
}

/// The tenant a cookie value names, if it is ours and not expired.
fn verify(key: &[u8], value: &str, now_s: u64) -> Option<String> {
    let (expires, rest) = value.split_once('.')?;
    let (sig, tenant) = rest.split_once('.')?;
    let expires: u64 = expires.parse().ok()?;
    let want = sign(key, tenant, expires);
    let same = want.len() == sig.len()
        && want
            .bytes()
            .zip(sig.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    (same && now_s < expires).then(|| tenant.to_string())
}

fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// Every `/v1/studio/...` route but sign-in: a bearer token, or the cookie
/// (with the CSRF header on anything but GET); the tenant's rate limit.
pub async fn authenticate(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let headers = req.headers();
    let tenant = match bearer(headers) {
        Some(token) => state.tenant_of(token).map(|t| t.id.clone()),
        None => {
            let tenant = cookie(headers)
                .and_then(|c| verify(&state.web_key, c, now_ms() / 1000))
                .filter(|t| state.tenants.contains_key(t));
            if tenant.is_some()
                && req.method() != Method::GET
                && headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) != Some("1")
            {
                return AppError::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "a studio change needs the `{CSRF_HEADER}: 1` header (CSRF protection)"
                    ),
                )
                .into_response();
            }
            tenant
        }
    };
    let Some(tenant) = tenant else {
        return AppError::new(
            StatusCode::UNAUTHORIZED,
            "sign in to the studio with a tenant token (POST /v1/studio/session), or send it as Authorization: Bearer <token>",
        )
        .into_response();
    };
    let now = now_ms() / 1000;
    let limit = state.tenants[&tenant].rate_limit;
    let rate = state
        .rate
        .count(
            state.store.as_ref(),
            &format!("studio\0{tenant}"),
            limit,
            now,
        )
        .await;
    if !rate.allowed {
        return AppError::too_many(
            format!(
                "rate limit of {} studio requests per window reached; retry later",
                rate.limit
            ),
            rate.reset.saturating_sub(now).max(1),
        )
        .into_response();
    }
    req.extensions_mut().insert(TenantId(tenant));
    next.run(req).await
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct SignIn {
    token: String,
}

/// `POST /v1/studio/session` `{token}`: the session cookie for its tenant.
pub async fn sign_in(
    State(state): State<Arc<AppState>>,
    body: Result<Json<SignIn>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, AppError> {
    let Json(SignIn { token }) = body.map_err(|e| AppError::new(e.status(), e.body_text()))?;
    let tenant = state
        .tenant_of(&token)
        .ok_or_else(|| AppError::new(StatusCode::UNAUTHORIZED, "unknown token"))?;
    let expires = now_ms() / 1000 + SESSION_S;
    let value = cookie_value(&state.web_key, &tenant.id, expires);
    let mut response = Json(json!({ "tenant": tenant.id, "expires": expires })).into_response();
    let set = format!("{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={SESSION_S}");
    response.headers_mut().insert(
        "set-cookie",
        HeaderValue::from_str(&set).map_err(AppError::internal)?,
    );
    Ok(response)
}

/// `DELETE /v1/studio/session`: signs out (the cookie is cleared).
pub async fn sign_out() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        "set-cookie",
        HeaderValue::from_static("sandbot_studio=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_verify_only_unexpired_and_unchanged() {
        let key = b"k".repeat(32);
        let v = cookie_value(&key, "acme", 1000);
        assert_eq!(verify(&key, &v, 999).as_deref(), Some("acme"));
        assert_eq!(verify(&key, &v, 1000), None);
        assert_eq!(verify(&b"x".repeat(32), &v, 999), None);
        let other = v.replace(".acme", ".evil");
        assert_eq!(verify(&key, &other, 999), None);
        let later = v.replacen("1000", "9999", 1);
        assert_eq!(verify(&key, &later, 999), None);
        assert_eq!(verify(&key, "garbage", 0), None);
        let mut h = HeaderMap::new();
        h.insert("cookie", format!("a=1; {COOKIE}={v}").parse().unwrap());
        assert_eq!(cookie(&h), Some(v.as_str()));
    }
}
