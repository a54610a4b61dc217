//! Performs HTTP for guests: one pooled client per policy, whose DNS resolver
//! checks every resolved address, so the address checked is the address used
//! (no DNS rebinding between check and connect). Redirects are followed here,
//! hop by hop, each hop checked like the first request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use url::Url;

use super::policy::{Denied, EgressPolicy};

/// A request as the guest asked for it.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout: Option<Duration>,
}

/// The final response after redirects.
#[derive(Debug, Clone)]
pub struct FetchResponse {
    pub status: u16,
    pub status_text: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub url: String,
}

/// Why a fetch produced no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("egress denied: {0}")]
    Denied(String),
    #[error("timed out after {0} ms")]
    Timeout(u128),
    #[error("too large: {0}")]
    TooLarge(String),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("transport error: {0}")]
    Transport(String),
}

impl FetchError {
    /// The error as a recording keeps it: its kind in a word and its reason
    /// (the inverse of [`FetchError::from_parts`]).
    pub fn parts(&self) -> (&'static str, String) {
        match self {
            FetchError::Denied(w) => ("denied", w.clone()),
            FetchError::Timeout(ms) => ("timeout", ms.to_string()),
            FetchError::TooLarge(w) => ("too_large", w.clone()),
            FetchError::Invalid(w) => ("invalid", w.clone()),
            FetchError::Transport(w) => ("transport", w.clone()),
        }
    }

    /// The error a recording kept as [`FetchError::parts`].
    pub fn from_parts(kind: &str, why: String) -> Self {
        match kind {
            "denied" => FetchError::Denied(why),
            "timeout" => FetchError::Timeout(why.parse().unwrap_or(0)),
            "too_large" => FetchError::TooLarge(why),
            "invalid" => FetchError::Invalid(why),
            _ => FetchError::Transport(why),
        }
    }
}

/// Headers a guest may not set: the host owns framing and routing.
const HOST_OWNED_HEADERS: &[&str] = &[
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "te",
    "trailer",
    "keep-alive",
];

/// Headers dropped when a redirect leaves the original origin.
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "cookie", "proxy-authorization"];

/// A policy plus the client that enforces it. Build one per tenant and share it.
pub struct Egress {
    policy: Arc<EgressPolicy>,
    client: reqwest::Client,
}

impl std::fmt::Debug for Egress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Egress")
            .field("policy", &self.policy)
            .finish()
    }
}

struct CheckedResolver {
    policy: Arc<EgressPolicy>,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            // One refused address refuses the name: a rebinding answer that mixes
            // public and internal addresses gets nowhere.
            for addr in &addrs {
                policy.check_ip(addr.ip(), &host)?;
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

impl Egress {
    /// A client for `policy`. Proxies from the environment are ignored: a proxy
    /// would connect on the guest's behalf to addresses this host never checked.
    pub fn new(policy: EgressPolicy) -> Result<Self, reqwest::Error> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(CheckedResolver {
                policy: policy.clone(),
            }))
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self { policy, client })
    }

    pub fn policy(&self) -> &EgressPolicy {
        &self.policy
    }

    /// Performs `req`, giving up at `deadline` at the latest.
    pub async fn fetch(
        &self,
        req: FetchRequest,
        deadline: Instant,
    ) -> Result<FetchResponse, FetchError> {
        let budget = deadline.saturating_duration_since(Instant::now());
        let timeout = req
            .timeout
            .unwrap_or(self.policy.call_timeout)
            .min(self.policy.call_timeout)
            .min(budget);
        match tokio::time::timeout(timeout, self.follow(req)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout(timeout.as_millis())),
        }
    }

    async fn follow(&self, req: FetchRequest) -> Result<FetchResponse, FetchError> {
        let mut method = Method::from_bytes(req.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| FetchError::Invalid(format!("method `{}`", req.method)))?;
        let mut url = Url::parse(&req.url)
            .map_err(|e| FetchError::Invalid(format!("url `{}`: {e}", req.url)))?;
        let mut headers = guest_headers(&req.headers)?;
        let mut body = req.body;
        if body
            .as_ref()
            .is_some_and(|b| b.len() > self.policy.max_request_bytes)
        {
            return Err(FetchError::TooLarge(format!(
                "request body is larger than {} bytes",
                self.policy.max_request_bytes
            )));
        }
        let origin = url.origin();
        let mut hop = 0;
        loop {
            self.policy.check_url(&url).map_err(|Denied(why)| {
                if hop == 0 {
                    FetchError::Denied(why)
                } else {
                    FetchError::Denied(format!("redirect {hop} to `{url}` refused: {why}"))
                }
            })?;
            let mut builder = self
                .client
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(b) = &body {
                builder = builder.body(b.clone());
            }
            let resp = builder.send().await.map_err(transport_error)?;
            let status = resp.status();
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            match (status.is_redirection(), location) {
                (true, Some(location)) if status != StatusCode::NOT_MODIFIED => {
                    hop += 1;
                    if hop > self.policy.max_redirects {
                        return Err(FetchError::Transport(format!(
                            "more than {} redirects",
                            self.policy.max_redirects
                        )));
                    }
                    url = url.join(&location).map_err(|e| {
                        FetchError::Transport(format!("bad redirect location `{location}`: {e}"))
                    })?;
                    if url.origin() != origin {
                        for h in CREDENTIAL_HEADERS {
                            headers.remove(*h);
                        }
                    }
                    // 303 always, and 301/302 after a POST, continue as GET (as browsers do).
                    let to_get = status == StatusCode::SEE_OTHER
                        || (method == Method::POST
                            && matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND));
                    if to_get && method != Method::HEAD {
                        method = Method::GET;
                        body = None;
                        headers.remove(reqwest::header::CONTENT_TYPE);
                    }
                }
                _ => return self.read(resp).await,
            }
        }
    }

    async fn read(&self, mut resp: reqwest::Response) -> Result<FetchResponse, FetchError> {
        let cap = self.policy.max_response_bytes;
        let too_large =
            || FetchError::TooLarge(format!("response body is larger than {cap} bytes"));
        if resp.content_length().is_some_and(|n| n > cap as u64) {
            return Err(too_large());
        }
        let status = resp.status();
        let url = resp.url().to_string();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport_error)? {
            if body.len() + chunk.len() > cap {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(FetchResponse {
            status: status.as_u16(),
            status_text: status.canonical_reason().unwrap_or("").to_string(),
            headers,
            body,
            url,
        })
    }
}

fn guest_headers(pairs: &[(String, String)]) -> Result<HeaderMap, FetchError> {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| FetchError::Invalid(format!("header name `{name}`")))?;
        if HOST_OWNED_HEADERS.contains(&name.as_str()) {
            return Err(FetchError::Invalid(format!(
                "header `{name}` is set by the host"
            )));
        }
        let value = HeaderValue::from_str(value)
            .map_err(|_| FetchError::Invalid(format!("value of header `{name}`")))?;
        map.append(name, value);
    }
    Ok(map)
}

/// A transport error, unless the resolver refused the address: then a denial.
fn transport_error(e: reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(Denied(why)) = err.downcast_ref::<Denied>() {
            return FetchError::Denied(why.clone());
        }
        source = err.source();
    }
    FetchError::Transport(describe(&e))
}

/// reqwest's top-level message plus its innermost cause, which says what happened.
fn describe(e: &reqwest::Error) -> String {
    let mut inner: &dyn std::error::Error = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    let top = e.to_string();
    let root = inner.to_string();
    if top.contains(&root) {
        top
    } else {
        format!("{top}: {root}")
    }
}

#[cfg(test)]
mod tests {
    use super::FetchError;

    #[test]
    fn a_recorded_fetch_error_reads_back_as_itself() {
        for e in [
            FetchError::Denied("not allowed".into()),
            FetchError::Timeout(1500),
            FetchError::TooLarge("5 MiB".into()),
            FetchError::Invalid("no scheme".into()),
            FetchError::Transport("reset".into()),
        ] {
            let (kind, why) = e.parts();
            assert_eq!(FetchError::from_parts(kind, why), e);
        }
    }
}
