//! What makes an invocation repeatable: the wall-clock time it started at,
//! the seed of every random number it drew (WASI's random sources are a
//! seeded ChaCha generator), and every `http.fetch` answer in order. Every
//! invocation is recorded; one run with a [`Recording`] replays it: the
//! clock starts where the recorded one did, randomness repeats, and fetches
//! get the recorded answers instead of the network. Request headers and
//! cookies are never recorded (answers keep no `set-cookie` either).

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use wasmtime_wasi::HostWallClock;

/// Bytes of one answer's body kept, at most (a longer one is kept cut, and
/// its replay says so).
pub const MAX_RECORDED_BODY: usize = 64 << 10;

/// Response headers never recorded.
const SECRET_HEADERS: [&str; 3] = ["set-cookie", "authorization", "proxy-authorization"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recording {
    /// When the invocation started (ms since the epoch).
    pub clock_ms: u64,
    /// The random generators' seed (hex, 32 bytes).
    pub seed: String,
    pub answers: Vec<Answer>,
}

/// One fetch and what it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    pub method: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<RecordedResponse>,
    /// The failure the guest saw instead (`denied`, `timeout`, `too_large`,
    /// `invalid`, `transport`) and its message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedResponse {
    pub status: u16,
    pub status_text: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The body was not UTF-8 (then `body` is lossy) or was cut at
    /// [`MAX_RECORDED_BODY`].
    #[serde(default)]
    pub inexact: bool,
    pub url: String,
}

impl RecordedResponse {
    pub fn new(
        status: u16,
        status_text: &str,
        headers: &[(String, String)],
        body: &[u8],
        url: &str,
    ) -> Self {
        let cut = &body[..body.len().min(MAX_RECORDED_BODY)];
        let text = String::from_utf8_lossy(cut);
        let inexact = cut.len() < body.len() || matches!(text, std::borrow::Cow::Owned(_));
        Self {
            status,
            status_text: status_text.to_string(),
            headers: headers
                .iter()
                .filter(|(k, _)| !SECRET_HEADERS.iter().any(|s| k.eq_ignore_ascii_case(s)))
                .cloned()
                .collect(),
            body: text.into_owned(),
            inexact,
            url: url.to_string(),
        }
    }
}

impl Recording {
    /// A new recording starting now with a fresh seed.
    pub fn start() -> Self {
        let mut seed = [0u8; 32];
        // The OS's randomness; without it (never on supported systems) the
        // clock's nanoseconds still make seeds differ.
        if getrandom::fill(&mut seed).is_err() {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            seed[..16].copy_from_slice(&nanos.to_le_bytes());
        }
        Self {
            clock_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            seed: seed.iter().map(|b| format!("{b:02x}")).collect(),
            answers: Vec::new(),
        }
    }

    fn seed_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = self
                .seed
                .get(i * 2..i * 2 + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .unwrap_or(0);
        }
        out
    }

    /// The generators WASI draws from (secure and insecure, apart).
    pub(crate) fn rngs(&self) -> (rand::rngs::StdRng, rand::rngs::StdRng, u128) {
        let seed = self.seed_bytes();
        let mut insecure = seed;
        insecure[0] ^= 0xff;
        let low = u128::from_le_bytes(seed[..16].try_into().expect("16 bytes"));
        (
            rand::rngs::StdRng::from_seed(seed),
            rand::rngs::StdRng::from_seed(insecure),
            low,
        )
    }

    /// A wall clock that starts at the recorded time and runs from now.
    pub(crate) fn clock(&self) -> RecordedClock {
        RecordedClock {
            start: Duration::from_millis(self.clock_ms),
            since: Instant::now(),
        }
    }

    /// The answers, to be handed out in order.
    pub(crate) fn queue(&self) -> VecDeque<Answer> {
        self.answers.iter().cloned().collect()
    }
}

pub(crate) struct RecordedClock {
    start: Duration,
    since: Instant,
}

impl HostWallClock for RecordedClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }
    fn now(&self) -> Duration {
        self.start + self.since.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_round_trip_and_secret_headers_are_dropped() {
        let r = Recording::start();
        assert_eq!(r.seed.len(), 64);
        let again = Recording {
            answers: Vec::new(),
            ..r.clone()
        };
        use rand::RngExt;
        let (mut a, _, _) = r.rngs();
        let (mut b, _, _) = again.rngs();
        assert_eq!(a.random::<u64>(), b.random::<u64>());
        let resp = RecordedResponse::new(
            200,
            "OK",
            &[
                ("Set-Cookie".into(), "s=1".into()),
                ("content-type".into(), "application/json".into()),
            ],
            b"{}",
            "http://x/",
        );
        assert_eq!(
            resp.headers,
            [("content-type".to_string(), "application/json".to_string())]
        );
        assert!(!resp.inexact);
        let big = RecordedResponse::new(200, "OK", &[], &vec![b'a'; MAX_RECORDED_BODY + 1], "u");
        assert!(big.inexact);
        assert_eq!(big.body.len(), MAX_RECORDED_BODY);
    }
}
