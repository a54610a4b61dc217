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
}
