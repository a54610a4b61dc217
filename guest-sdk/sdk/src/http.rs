//! HTTP done by the host under the tenant's egress policy.
//!
//! ```ignore
//! let res = http::Request::get("https://api.example.com/rates").header("accept", "application/json").send()?;
//! let rates: serde_json::Value = res.json()?;
//! ```

use serde::{Serialize, de::DeserializeOwned};

use crate::ActionError;
use crate::bindings::sandbot::action::http as wit;

/// Why a request produced no response.
pub type HttpError = wit::HttpError;

/// A sentence describing `e`, for logs and error messages.
pub fn describe(e: &HttpError) -> String {
    match e {
        HttpError::Denied(why) => format!("egress denied: {why}"),
        HttpError::Timeout => "request timed out".to_string(),
        HttpError::TooLarge(why) => format!("too large: {why}"),
        HttpError::InvalidRequest(why) => format!("invalid request: {why}"),
        HttpError::Transport(why) => format!("transport error: {why}"),
    }
}

/// A request under construction.
#[derive(Debug, Clone)]
pub struct Request {
    inner: wit::Request,
}

impl Request {
    /// A request with any method.
    pub fn new(method: &str, url: &str) -> Self {
        Self {
            inner: wit::Request {
                method: method.to_string(),
                url: url.to_string(),
                headers: Vec::new(),
                body: None,
                timeout_ms: None,
            },
        }
    }

    /// A `GET` request.
    pub fn get(url: &str) -> Self {
        Self::new("GET", url)
    }

    /// A `POST` request.
    pub fn post(url: &str) -> Self {
        Self::new("POST", url)
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.inner
            .headers
            .push((name.to_string(), value.to_string()));
        self
    }

    /// Sets a raw body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.inner.body = Some(body.into());
        self
    }

    /// Sets a JSON body and the `content-type` header.
    pub fn json<T: Serialize + ?Sized>(self, value: &T) -> Result<Self, ActionError> {
        Ok(self
            .header("content-type", "application/json")
            .body(serde_json::to_vec(value)?))
    }

    /// Sets this call's timeout (still bounded by the invocation's wall time).
    pub fn timeout_ms(mut self, ms: u32) -> Self {
        self.inner.timeout_ms = Some(ms);
        self
    }

    /// Sends the request through the host.
    pub fn send(&self) -> Result<Response, HttpError> {
        wit::fetch(&self.inner).map(|inner| Response { inner })
    }
}

/// A response (after redirects, which the host follows).
#[derive(Debug, Clone)]
pub struct Response {
    inner: wit::Response,
}

impl Response {
    /// HTTP status code.
    pub fn status(&self) -> u16 {
        self.inner.status
    }

    /// True for 2xx statuses.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.inner.status)
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.inner
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.inner.body
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.inner.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ActionError> {
        Ok(serde_json::from_slice(&self.inner.body)?)
    }

    /// The final URL.
    pub fn url(&self) -> &str {
        &self.inner.url
    }
}

/// Sends a `GET` request.
pub fn get(url: &str) -> Result<Response, HttpError> {
    Request::get(url).send()
}
