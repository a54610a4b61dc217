//! `sandbot:action/http`: every call goes through the tenant's [`Egress`](crate::egress::Egress).
//! A denial is a value the guest sees (and may handle); passing the call cap
//! stops the invocation.

use std::time::Duration;

use crate::bindings::http::{Host, HttpError, Request, Response};
use crate::egress::{FetchError, FetchRequest};
use crate::{ActionState, FailureKind, FetchRecord};

/// A failed fetch in a word and its reason.
fn describe(e: &FetchError) -> String {
    match e {
        FetchError::Denied(why) => format!("denied: {why}"),
        FetchError::Timeout(ms) => format!("timeout: no answer within {ms} ms"),
        FetchError::TooLarge(why) => format!("too large: {why}"),
        FetchError::Invalid(why) => format!("invalid request: {why}"),
        FetchError::Transport(why) => format!("transport: {why}"),
    }
}

impl Host for ActionState {
    async fn fetch(&mut self, req: Request) -> wasmtime::Result<Result<Response, HttpError>> {
        let sent = req.url.len()
            + req.method.len()
            + req.body.as_ref().map_or(0, Vec::len)
            + req
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>();
        self.meter.enter(&self.limits, sent)?;
        self.meter.http_calls += 1;
        if self.meter.http_calls > self.limits.max_http_calls {
            return Err(self.meter.abort(
                FailureKind::EgressDenied,
                format!(
                    "more than {} HTTP calls in one invocation",
                    self.limits.max_http_calls
                ),
            ));
        }
        let (method, url) = (req.method.clone(), req.url.clone());
        let started = std::time::Instant::now();
        let request = FetchRequest {
            method: req.method,
            url: req.url,
            headers: req.headers,
            body: req.body,
            timeout: req.timeout_ms.map(|ms| Duration::from_millis(ms.into())),
        };
        let result = self.egress.fetch(request, self.deadline).await;
        self.effects_mut().fetches.push(FetchRecord {
            method,
            url,
            status: result.as_ref().ok().map(|r| r.status),
            error: result.as_ref().err().map(describe),
            bytes: result.as_ref().map_or(0, |r| r.body.len() as u64),
            ms: started.elapsed().as_millis() as u64,
        });
        match result {
            Ok(r) => {
                self.meter.cross(&self.limits, r.body.len())?;
                Ok(Ok(Response {
                    status: r.status,
                    status_text: r.status_text,
                    headers: r.headers,
                    body: r.body,
                    url: r.url,
                }))
            }
            Err(e) => {
                if let FetchError::Denied(why) = &e {
                    self.meter.denied.get_or_insert_with(|| why.clone());
                }
                Ok(Err(match e {
                    FetchError::Denied(why) => HttpError::Denied(why),
                    FetchError::Timeout(_) => HttpError::Timeout,
                    FetchError::TooLarge(why) => HttpError::TooLarge(why),
                    FetchError::Invalid(why) => HttpError::InvalidRequest(why),
                    FetchError::Transport(why) => HttpError::Transport(why),
                }))
            }
        }
    }
}
