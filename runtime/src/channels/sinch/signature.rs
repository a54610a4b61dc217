//! Sinch callback signatures: `x-sinch-webhook-signature` =
//! base64(HMAC-SHA256(secret, body + "." + nonce + "." + timestamp)), with
//! `-timestamp`, `-nonce` and `-algorithm` (`HmacSHA256`) headers. A bad
//! signature or a timestamp further than `MAX_SKEW_SECS` from now is refused.

use axum::http::HeaderMap;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Accepted clock difference, in seconds.
pub const MAX_SKEW_SECS: u64 = 300;

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str, String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| format!("missing header `{name}`"))
}

/// The signature of `body` as Sinch computes it.
pub fn sign(secret: &str, body: &[u8], nonce: &str, timestamp: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    mac.update(b".");
    mac.update(nonce.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// `Ok` when the callback is signed with `secret` and fresh at `now` (epoch seconds).
pub fn verify(secret: &str, headers: &HeaderMap, body: &[u8], now: u64) -> Result<(), String> {
    let timestamp = header(headers, "x-sinch-webhook-signature-timestamp")?;
    let nonce = header(headers, "x-sinch-webhook-signature-nonce")?;
    let algorithm = header(headers, "x-sinch-webhook-signature-algorithm")?;
    let signature = header(headers, "x-sinch-webhook-signature")?;
    if algorithm != "HmacSHA256" {
        return Err(format!("unsupported signature algorithm `{algorithm}`"));
    }
    let ts: u64 = timestamp
        .parse()
        .map_err(|_| "the signature timestamp is not a number".to_string())?;
    if ts.abs_diff(now) > MAX_SKEW_SECS {
        return Err(format!("stale signature timestamp ({ts}; now {now})"));
    }
    let given = base64::engine::general_purpose::STANDARD
        .decode(signature)
        .map_err(|_| "the signature is not base64".to_string())?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    for part in [body, b".", nonce.as_bytes(), b".", timestamp.as_bytes()] {
        mac.update(part);
    }
    mac.verify_slice(&given)
        .map_err(|_| "bad signature".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(sig: &str, ts: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-sinch-webhook-signature-timestamp", ts.parse().unwrap());
        h.insert("x-sinch-webhook-signature-nonce", "n1".parse().unwrap());
        h.insert(
            "x-sinch-webhook-signature-algorithm",
            "HmacSHA256".parse().unwrap(),
        );
        h.insert("x-sinch-webhook-signature", sig.parse().unwrap());
        h
    }

    #[test]
    fn good_bad_and_stale_signatures() {
        let body = br#"{"a":1}"#;
        let sig = sign("s3cret", body, "n1", "1000");
        assert!(verify("s3cret", &headers(&sig, "1000"), body, 1010).is_ok());
        assert_eq!(
            verify("other", &headers(&sig, "1000"), body, 1010).unwrap_err(),
            "bad signature"
        );
        assert_eq!(
            verify("s3cret", &headers(&sig, "1000"), b"{}", 1010).unwrap_err(),
            "bad signature"
        );
        assert!(
            verify("s3cret", &headers(&sig, "1000"), body, 1000 + 301)
                .unwrap_err()
                .starts_with("stale")
        );
        assert!(
            verify("s3cret", &HeaderMap::new(), body, 1000)
                .unwrap_err()
                .starts_with("missing header")
        );
    }

    /// A known answer from outside this project: the callback, secret,
    /// nonce, timestamp and signature in Sinch's .NET SDK tests
    /// (`WebhooksTests.ValidateRequest`), which Sinch's own signer produced.
    #[test]
    fn sinchs_own_vector_verifies() {
        let body = br#"{"app_id":"","accepted_time":"2021-10-18T17:49:13.813615Z","project_id":"e2df3a34-a71b-4448-9db5-a8d2baad28e4","contact_create_notification":{"contact":{"id":"01FJA8B466Y0R2GNXD78MD9SM1","channel_identities":[{"channel":"SMS","identity":"48123456789","app_id":""}],"display_name":"New Test Contact","email":"new.contact@email.com","external_id":"","metadata":"","language":"EN_US"}},"message_metadata":""}"#;
        let mut h = HeaderMap::new();
        h.insert(
            "x-sinch-webhook-signature-timestamp",
            "1634579353".parse().unwrap(),
        );
        h.insert(
            "x-sinch-webhook-signature-nonce",
            "01FJA8B4A7BM43YGWSG9GBV067".parse().unwrap(),
        );
        h.insert(
            "x-sinch-webhook-signature-algorithm",
            "HmacSHA256".parse().unwrap(),
        );
        h.insert(
            "x-sinch-webhook-signature",
            "6bpJoRmFoXVjfJIVglMoJzYXxnoxRujzR4k2GOXewOE="
                .parse()
                .unwrap(),
        );
        let now = 1_634_579_353 + 30;
        assert_eq!(verify("foo_secret1234", &h, body, now), Ok(()));
        assert_eq!(
            sign(
                "foo_secret1234",
                body,
                "01FJA8B4A7BM43YGWSG9GBV067",
                "1634579353"
            ),
            "6bpJoRmFoXVjfJIVglMoJzYXxnoxRujzR4k2GOXewOE="
        );
        // One byte changed, or another secret: refused.
        let mut changed = body.to_vec();
        changed[10] = b'X';
        assert!(verify("foo_secret1234", &h, &changed, now).is_err());
        assert!(verify("foo_secret12345", &h, body, now).is_err());
    }
}
