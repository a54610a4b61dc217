//! Per-token rate limits for the REST API: a fixed window of `requests` per
//! `seconds`. Every answer carries `x-ratelimit-limit`, `x-ratelimit-remaining`
//! and `x-ratelimit-reset` (the window's end, in epoch **seconds**).

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::config::RateLimit;
use crate::store::Store;

#[derive(Default)]
pub struct RateLimiter {
    /// Token hash → (window start, requests in it).
    windows: Mutex<HashMap<[u8; 32], (u64, u32)>>,
}

/// The state of a token's window after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateState {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// End of the window, epoch seconds.
    pub reset: u64,
}

impl RateLimiter {
    /// Counts one request of `key` at `now` (epoch seconds) in the store's
    /// shared windows when it keeps them (PostgreSQL: the limit holds across
    /// nodes), else here. A store that does not answer falls back to here.
    pub async fn count(
        &self,
        store: &dyn Store,
        key: &str,
        limit: RateLimit,
        now: u64,
    ) -> RateState {
        let hash: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let period = limit.seconds.max(1);
        let start = now - now % period;
        match store.count_request(&hex::encode(hash), start).await {
            Ok(Some(n)) => RateState {
                allowed: n <= limit.requests as u64,
                limit: limit.requests,
                remaining: (limit.requests as u64).saturating_sub(n) as u32,
                reset: start + period,
            },
            Ok(None) => self.check(key, limit, now),
            Err(e) => {
                if !e.is_unavailable() {
                    tracing::warn!(%e, "counting a request in the store; counting it here");
                }
                self.check(key, limit, now)
            }
        }
    }

    /// Counts one request of `token` at `now` (epoch seconds), in this process.
    pub fn check(&self, token: &str, limit: RateLimit, now: u64) -> RateState {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let period = limit.seconds.max(1);
        let start = now - now % period;
        let mut windows = self.windows.lock().expect("not poisoned");
        if windows.len() > 100_000 {
            windows.retain(|_, (s, _)| *s == start);
        }
        let entry = windows.entry(key).or_insert((start, 0));
        if entry.0 != start {
            *entry = (start, 0);
        }
        let allowed = entry.1 < limit.requests;
        if allowed {
            entry.1 += 1;
        }
        RateState {
            allowed,
            limit: limit.requests,
            remaining: limit.requests - entry.1,
            reset: start + period,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_allows_its_requests_then_refuses_until_it_resets() {
        let r = RateLimiter::default();
        let limit = RateLimit {
            requests: 2,
            seconds: 60,
        };
        assert_eq!(
            r.check("t", limit, 120),
            RateState {
                allowed: true,
                limit: 2,
                remaining: 1,
                reset: 180
            }
        );
        assert!(r.check("t", limit, 130).allowed);
        let refused = r.check("t", limit, 179);
        assert_eq!((refused.allowed, refused.remaining), (false, 0));
        assert!(r.check("other", limit, 179).allowed, "per token");
        assert!(r.check("t", limit, 180).allowed, "a new window");
    }
}
