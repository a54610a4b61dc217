//! The egress client's redirect and header rules at the host API, against
//! two local peers (two origins): the hop cap both ways, credentials
//! dropped once a redirect leaves the origin (kept within it), a redirect to
//! a host the policy does not allow refused, and headers the host owns
//! refused.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sandbot_host_api::egress::{Egress, EgressPolicy, FetchError, FetchRequest};
use serde_json::Value;

use crate::peer;

fn egress(peers: &[SocketAddr]) -> Egress {
    Egress::new(EgressPolicy {
        allow_hosts: peers
            .iter()
            .map(|p| format!("http://{p}").parse().unwrap())
            .collect(),
        ..EgressPolicy::default()
    })
    .unwrap()
}

fn get(url: String, headers: &[(&str, &str)]) -> FetchRequest {
    FetchRequest {
        method: "GET".into(),
        url,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: None,
        timeout: None,
    }
}

/// A path that redirects `n` times (same origin), then answers `/json`.
fn chain(n: usize) -> String {
    (0..n).fold("/json".to_string(), |to, _| {
        format!("/redirect?to={}", enc(&to))
    })
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_capped_and_credentials_stay_with_their_origin() {
    let (a, b) = (peer::start().await, peer::start().await);
    let egress = egress(&[a, b]);
    let deadline = || Instant::now() + Duration::from_secs(10);

    // The hop cap (5): five redirects are followed, a sixth is refused.
    let ok = egress
        .fetch(get(format!("http://{a}{}", chain(5)), &[]), deadline())
        .await;
    assert_eq!(ok.unwrap().status, 200);
    let over = egress
        .fetch(get(format!("http://{a}{}", chain(6)), &[]), deadline())
        .await;
    assert_eq!(
        over.unwrap_err(),
        FetchError::Transport("more than 5 redirects".into())
    );

    // Credentials: kept on the same origin, dropped on another, and not
    // restored when the chain comes back.
    let auth = [("authorization", "Bearer s3cret"), ("cookie", "sid=1")];
    let authorization = |r: Result<sandbot_host_api::egress::FetchResponse, FetchError>| {
        let body: Value = serde_json::from_slice(&r.unwrap().body).unwrap();
        body["authorization"].clone()
    };
    let same = egress
        .fetch(
            get(format!("http://{a}/redirect?to=/echo"), &auth),
            deadline(),
        )
        .await;
    assert_eq!(authorization(same), "Bearer s3cret");
    let other = format!(
        "http://{a}/redirect?to={}",
        enc(&format!("http://{b}/echo"))
    );
    assert_eq!(
        authorization(egress.fetch(get(other, &auth), deadline()).await),
        Value::Null
    );
    let back = format!(
        "http://{a}/redirect?to={}",
        enc(&format!(
            "http://{b}/redirect?to={}",
            enc(&format!("http://{a}/echo"))
        ))
    );
    assert_eq!(
        authorization(egress.fetch(get(back, &auth), deadline()).await),
        Value::Null
    );

    // A redirect to a host the policy does not allow is refused at that hop.
    let only_a = self::egress(&[a]);
    let away = format!(
        "http://{a}/redirect?to={}",
        enc(&format!("http://{b}/json"))
    );
    match only_a.fetch(get(away, &[]), deadline()).await {
        Err(FetchError::Denied(why)) => assert!(
            why.starts_with(&format!("redirect 1 to `http://{b}/json` refused")),
            "{why}"
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_the_host_owns_are_refused() {
    let a = peer::start().await;
    let egress = egress(&[a]);
    let deadline = Instant::now() + Duration::from_secs(10);
    for name in [
        "Host",
        "connection",
        "Content-Length",
        "transfer-encoding",
        "upgrade",
        "proxy-authorization",
        "te",
        "trailer",
        "keep-alive",
    ] {
        let r = egress
            .fetch(get(format!("http://{a}/json"), &[(name, "x")]), deadline)
            .await;
        assert_eq!(
            r.unwrap_err(),
            FetchError::Invalid(format!(
                "header `{}` is set by the host",
                name.to_ascii_lowercase()
            )),
            "{name}"
        );
    }
    // Inside: an ordinary header is sent.
    let ok = egress
        .fetch(
            get(format!("http://{a}/json"), &[("x-request-id", "42")]),
            deadline,
        )
        .await;
    assert_eq!(ok.unwrap().status, 200);
}
