//! Failed-auth throttling: an address that got `limit` answers of 401 in a
//! minute is answered 429 (with `Retry-After`) until the minute ends, before
//! any token, signature or session is checked, so tokens cannot be guessed
//! at line rate. Health checks stay open.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::serve::error::AppError;
use crate::store::now_ms;

const WINDOW_S: u64 = 60;

pub struct AuthThrottle {
    limit: u32,
    /// Address → (window start, failures in it).
    failures: Mutex<HashMap<IpAddr, (u64, u32)>>,
}

impl AuthThrottle {
    pub fn new(limit: u32) -> Arc<AuthThrottle> {
        Arc::new(AuthThrottle {
            limit,
            failures: Mutex::new(HashMap::new()),
        })
    }

    /// Seconds until `address` may try again, if it is throttled at `now`.
    fn wait(&self, address: IpAddr, now: u64) -> Option<u64> {
        let start = now - now % WINDOW_S;
        let failures = self.failures.lock().expect("not poisoned");
        match failures.get(&address) {
            Some(&(s, n)) if s == start && n >= self.limit => Some(start + WINDOW_S - now),
            _ => None,
        }
    }

    fn failed(&self, address: IpAddr, now: u64) {
        let start = now - now % WINDOW_S;
        let mut failures = self.failures.lock().expect("not poisoned");
        if failures.len() > 100_000 {
            failures.retain(|_, (s, _)| *s == start);
        }
        let entry = failures.entry(address).or_insert((start, 0));
        if entry.0 != start {
            *entry = (start, 0);
        }
        entry.1 += 1;
    }
}

/// The middleware: refuses throttled addresses, counts 401 answers.
pub async fn throttle(
    State(throttle): State<Arc<AuthThrottle>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let open = path == "/healthz" || path == "/readyz";
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_canonical());
    let (Some(address), false) = (address, open) else {
        return next.run(request).await;
    };
    if let Some(seconds) = throttle.wait(address, now_ms() / 1000) {
        return AppError::too_many(
            format!(
                "too many failed authentications from your address ({} a minute); retry in {seconds} s",
                throttle.limit
            ),
            seconds,
        )
        .into_response();
    }
    let response = next.run(request).await;
    if response.status() == StatusCode::UNAUTHORIZED {
        throttle.failed(address, now_ms() / 1000);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_past_its_failures_waits_for_the_next_minute() {
        let t = AuthThrottle::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        t.failed(a, 600);
        assert_eq!(t.wait(a, 601), None, "inside the limit");
        t.failed(a, 610);
        assert_eq!(t.wait(a, 620), Some(40), "at the limit");
        assert_eq!(t.wait(b, 620), None, "per address");
        assert_eq!(t.wait(a, 660), None, "a new minute");
    }
}
