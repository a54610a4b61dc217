//! `sandbot:action/http`: every call goes through the tenant's [`Egress`](crate::egress::Egress).
//! A denial is a value the guest sees (and may handle); passing the call cap
//! stops the invocation.

use std::time::Duration;

use crate::bindings::http::{Host, HttpError, Request, Response};
use crate::egress::FetchResponse;
use crate::egress::{FetchError, FetchRequest};
use crate::replay::{Answer, RecordedResponse};
use crate::{ActionState, FailureKind, FetchRecord};

/// The next recorded answer, when it is for this request.
fn replayed(
    answers: &mut std::collections::VecDeque<Answer>,
    method: &str,
    url: &str,
) -> Result<FetchResponse, FetchError> {
    let Some(a) = answers.pop_front() else {
        return Err(FetchError::Transport(format!(
            "replay: the recorded run made no more fetches, this one is {method} {url}"
        )));
    };
    if a.method != method || a.url != url {
        return Err(FetchError::Transport(format!(
            "replay: the recorded run fetched {} {} here, this run {method} {url}",
            a.method, a.url
        )));
    }
    match (a.response, a.error) {
        (Some(r), _) => Ok(FetchResponse {
            status: r.status,
            status_text: r.status_text,
            headers: r.headers,
            body: r.body.into_bytes(),
            url: r.url,
        }),
        (None, Some((kind, why))) => Err(FetchError::from_parts(&kind, why)),
        (None, None) => Err(FetchError::Transport("replay: an empty answer".into())),
    }
}

/// What a fetch got, as a recording keeps it.
fn record(method: &str, url: &str, result: &Result<FetchResponse, FetchError>) -> Answer {
    let (response, error) = match result {
        Ok(r) => (
            Some(RecordedResponse::new(
                r.status,
                &r.status_text,
                &r.headers,
                &r.body,
                &r.url,
            )),
            None,
        ),
        Err(e) => {
            let (kind, why) = e.parts();
            (None, Some((kind.to_string(), why)))
        }
    };
    Answer {
        method: method.to_string(),
        url: url.to_string(),
        response,
        error,
    }
}

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
        let result = match self.answers.as_mut() {
            Some(answers) => replayed(answers, &method, &url),
            None => self.egress.fetch(request, self.deadline).await,
        };
        if self.answers.is_none() {
            self.recording.answers.push(record(&method, &url, &result));
        }
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
