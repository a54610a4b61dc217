//! Web chat sessions: the server issues every web conversation's id and a
//! signed, expiring token bound to it (`v1.<claims>.<HMAC-SHA256>`, base64url);
//! a web request reaches only the conversation its token names. A page that
//! embeds the chat may vouch for its user with an HS256 JWT signed with the
//! bot's web secret (`sessionId`, `session`, `exp`, as Chatlayer's widget
//! token): the conversation follows the user, the session data is set.
//!
//! HS256 is checked here with `hmac` + `sha2` (already dependencies) rather
//! than a JWT crate: one algorithm, fixed, so no `alg` confusion to guard
//! against, and no second crypto stack in the binary.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;

/// Prefix of every web conversation id: no other channel accepts it.
pub const PREFIX: &str = "web_";

/// What a session token says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// Bot id.
    pub b: String,
    /// Conversation id.
    pub c: String,
    /// Expiry, epoch seconds.
    pub e: u64,
    /// Session data the embedding page's server vouched for.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub d: Map<String, Value>,
}

fn mac(key: &[u8], data: &[u8]) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    m.update(data);
    m
}

/// A token for `claims`, signed with the server's `key`.
pub fn issue(key: &[u8], claims: &Claims) -> String {
    let body = B64.encode(serde_json::to_vec(claims).expect("claims serialize"));
    let sig = B64.encode(mac(key, body.as_bytes()).finalize().into_bytes());
    format!("v1.{body}.{sig}")
}

/// The claims of a token signed with `key` for `bot`, not expired at `now`
/// (epoch seconds); otherwise why not.
pub fn verify(key: &[u8], bot: &str, token: &str, now: u64) -> Result<Claims, &'static str> {
    let mut parts = token.splitn(3, '.');
    let (Some("v1"), Some(body), Some(sig)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("the web session token is malformed");
    };
    let sig = B64
        .decode(sig)
        .map_err(|_| "the web session token is malformed")?;
    mac(key, body.as_bytes())
        .verify_slice(&sig)
        .map_err(|_| "the web session token's signature is invalid")?;
    let claims: Claims = B64
        .decode(body)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("the web session token is malformed")?;
    if claims.b != bot {
        return Err("the web session token is for another bot");
    }
    if claims.e <= now {
        return Err("the web session token has expired; start a new session");
    }
    Ok(claims)
}

/// What an embedding page's JWT vouches for.
#[derive(Debug, Clone, PartialEq)]
pub struct Embed {
    pub session_id: String,
    pub session: Map<String, Value>,
}

/// Checks an HS256 JWT signed with the bot's `secret`: `alg` must be HS256,
/// `exp` present and in the future, `sessionId` a non-empty string.
pub fn verify_jwt(secret: &[u8], jwt: &str, now: u64) -> Result<Embed, String> {
    let mut parts = jwt.split('.');
    let (Some(header), Some(payload), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("the embed token is not a JWT (header.payload.signature)".into());
    };
    let json = |part: &str| -> Result<Value, String> {
        B64.decode(part)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| "the embed token is not a JWT (header.payload.signature)".to_string())
    };
    let alg = json(header)?["alg"].clone();
    if alg != "HS256" {
        return Err(format!(
            "the embed token must be signed with HS256, not {alg}"
        ));
    }
    let sig = B64
        .decode(sig)
        .map_err(|_| "the embed token's signature is invalid".to_string())?;
    mac(secret, format!("{header}.{payload}").as_bytes())
        .verify_slice(&sig)
        .map_err(|_| "the embed token's signature is invalid".to_string())?;
    embed(&json(payload)?, now)
}

/// Chatlayer's encrypted embed token, so existing embeds move over: the IV
/// as 16 hex characters (their ASCII bytes are the IV, as Node's
/// `crypto.createCipheriv("aes-256-cbc", key, iv)` takes a 16-character
/// string), then the hex AES-256-CBC ciphertext (PKCS#7) of `{exp, session,
/// sessionId}`. The key is the bot's `secret`: 32 characters, or 64 hex digits.
pub fn decrypt_token(secret: &[u8], token: &str, now: u64) -> Result<Embed, String> {
    use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
    let key: Vec<u8> = match secret.len() {
        32 => secret.to_vec(),
        64 => hex::decode(secret).map_err(|_| AES_KEY.to_string())?,
        _ => return Err(AES_KEY.into()),
    };
    let not_one = || {
        "the embed token is neither a JWT nor an encrypted token (16 hex characters of IV, then hex)".to_string()
    };
    let (iv, data) = token.split_at_checked(16).ok_or_else(not_one)?;
    if !iv.bytes().all(|b| b.is_ascii_hexdigit()) || data.is_empty() {
        return Err(not_one());
    }
    let data = hex::decode(data).map_err(|_| not_one())?;
    let plain = cbc::Decryptor::<aes::Aes256>::new_from_slices(&key, iv.as_bytes())
        .map_err(|_| not_one())?
        .decrypt_padded_vec_mut::<Pkcs7>(&data)
        .map_err(|_| "the embed token does not decrypt with this bot's secret".to_string())?;
    let claims: Value = serde_json::from_slice(&plain)
        .map_err(|_| "the embed token does not decrypt with this bot's secret".to_string())?;
    embed(&claims, now)
}

const AES_KEY: &str = "encrypted embed tokens need the bot's `secret` to be an AES-256 key: 32 characters or 64 hex digits";

/// The claims every embed token carries: `exp` in the future, `sessionId`,
/// optional `session` data.
fn embed(claims: &Value, now: u64) -> Result<Embed, String> {
    match claims["exp"].as_u64() {
        None => return Err("the embed token needs an `exp` (epoch seconds)".into()),
        Some(exp) if exp <= now => return Err("the embed token has expired".into()),
        Some(_) => {}
    }
    let session_id = claims["sessionId"]
        .as_str()
        .filter(|s| !s.is_empty() && s.len() <= 200)
        .ok_or("the embed token needs a `sessionId` (a string of at most 200 characters)")?;
    let session = match &claims["session"] {
        Value::Null => Map::new(),
        Value::Object(m) => m.clone(),
        _ => return Err("the embed token's `session` must be an object".into()),
    };
    Ok(Embed {
        session_id: session_id.to_string(),
        session,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Made with `openssl enc -aes-256-cbc` (key `0123456789abcdef0123456789abcdef`,
    /// IV the ASCII of `a1b2c3d4e5f60718`), as Chatlayer's Node snippet does.
    #[test]
    fn chatlayer_encrypted_tokens_both_ways() {
        let key = b"0123456789abcdef0123456789abcdef";
        let good = "a1b2c3d4e5f6071884ec7721497443d5dee28149eb28cfcdc98877120ab2ccd2a4047f55358d801f91e6b831fcf2d30ce6fd2cd98c4d92d43bc5c0504f39c5aded01e3b40aae91182663d45e859008d9ab92f7aa43496e51";
        let e = decrypt_token(key, good, 1_900_000_000).unwrap();
        assert_eq!(e.session_id, "user-42");
        assert_eq!(e.session["plan"], "gold");
        // The same key as 64 hex digits.
        let hex_key = hex::encode(key);
        assert!(decrypt_token(hex_key.as_bytes(), good, 1_900_000_000).is_ok());
        let expired = "a1b2c3d4e5f6071878263a8e102fad1483861696abf7c3709044bb6181d98c2696dee423afbbd22018d7770b433fcd731269373c79002214";
        assert_eq!(
            decrypt_token(key, expired, 1_900_000_000).unwrap_err(),
            "the embed token has expired"
        );
        assert_eq!(
            decrypt_token(b"another key of 32 characters!!!!", good, 0).unwrap_err(),
            "the embed token does not decrypt with this bot's secret"
        );
        // A flipped IV character changes the first block: refused, not misread.
        let tampered = format!("b{}", &good[1..]);
        assert!(decrypt_token(key, &tampered, 0).is_err());
        assert!(
            decrypt_token(key, "not-a-token", 0)
                .unwrap_err()
                .starts_with("the embed token is neither a JWT nor an encrypted token")
        );
        assert_eq!(decrypt_token(b"short", good, 0).unwrap_err(), AES_KEY);
    }

    fn jwt(secret: &[u8], header: Value, claims: Value) -> String {
        let h = B64.encode(header.to_string());
        let p = B64.encode(claims.to_string());
        let s = B64.encode(
            mac(secret, format!("{h}.{p}").as_bytes())
                .finalize()
                .into_bytes(),
        );
        format!("{h}.{p}.{s}")
    }

    #[test]
    fn session_tokens_hold_only_for_their_bot_key_and_time() {
        let claims = Claims {
            b: "bot".into(),
            c: "web_1".into(),
            e: 100,
            d: Map::new(),
        };
        let t = issue(b"k1", &claims);
        assert_eq!(verify(b"k1", "bot", &t, 99).unwrap(), claims);
        assert_eq!(
            verify(b"k1", "bot", &t, 100).unwrap_err(),
            "the web session token has expired; start a new session"
        );
        assert_eq!(
            verify(b"k2", "bot", &t, 99).unwrap_err(),
            "the web session token's signature is invalid"
        );
        assert_eq!(
            verify(b"k1", "other", &t, 99).unwrap_err(),
            "the web session token is for another bot"
        );
        // Another conversation written into a valid token breaks the signature.
        let forged = t.replace(
            &B64.encode(serde_json::to_vec(&claims).unwrap()),
            &B64.encode(
                serde_json::to_vec(&Claims {
                    c: "victim".into(),
                    ..claims.clone()
                })
                .unwrap(),
            ),
        );
        assert_ne!(forged, t);
        assert_eq!(
            verify(b"k1", "bot", &forged, 99).unwrap_err(),
            "the web session token's signature is invalid"
        );
        assert_eq!(
            verify(b"k1", "bot", "v1.x", 99).unwrap_err(),
            "the web session token is malformed"
        );
    }

    #[test]
    fn embed_jwts_are_hs256_signed_unexpired_with_a_session_id() {
        let h = json!({"alg": "HS256", "typ": "JWT"});
        let good = jwt(
            b"s",
            h.clone(),
            json!({"sessionId": "u-42", "session": {"plan": "gold"}, "exp": 50}),
        );
        let e = verify_jwt(b"s", &good, 10).unwrap();
        assert_eq!(
            (e.session_id.as_str(), &e.session["plan"]),
            ("u-42", &json!("gold"))
        );
        assert_eq!(
            verify_jwt(b"other", &good, 10).unwrap_err(),
            "the embed token's signature is invalid"
        );
        assert_eq!(
            verify_jwt(b"s", &good, 50).unwrap_err(),
            "the embed token has expired"
        );
        let none = jwt(
            b"s",
            json!({"alg": "none"}),
            json!({"sessionId": "u", "exp": 50}),
        );
        assert_eq!(
            verify_jwt(b"s", &none, 10).unwrap_err(),
            "the embed token must be signed with HS256, not \"none\""
        );
        let no_exp = jwt(b"s", h.clone(), json!({"sessionId": "u"}));
        assert_eq!(
            verify_jwt(b"s", &no_exp, 10).unwrap_err(),
            "the embed token needs an `exp` (epoch seconds)"
        );
        let no_id = jwt(b"s", h, json!({"exp": 50}));
        assert!(
            verify_jwt(b"s", &no_id, 10)
                .unwrap_err()
                .contains("sessionId")
        );
    }
}
