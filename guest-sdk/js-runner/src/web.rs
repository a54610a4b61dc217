//! Natives behind the prelude's web-platform globals (`web.js`): UTF-8,
//! URL parsing (the WHATWG-conformant `url` crate), random bytes, digests
//! and HMAC. Bytes cross as "binary strings": one UTF-16 code unit per byte.

use boa_engine::{
    Context, JsArgs, JsError, JsNativeError, JsResult, JsString, JsValue, NativeFunction,
};
use hmac::{Hmac, Mac};
use serde_json::json;
use url::Url;

pub fn functions() -> [(&'static str, NativeFunction, usize); 8] {
    [
        ("utf8Encode", NativeFunction::from_fn_ptr(utf8_encode), 1),
        ("utf8Decode", NativeFunction::from_fn_ptr(utf8_decode), 2),
        ("urlParse", NativeFunction::from_fn_ptr(url_parse), 2),
        ("urlSet", NativeFunction::from_fn_ptr(url_set), 3),
        ("randomBytes", NativeFunction::from_fn_ptr(random_bytes), 1),
        ("digest", NativeFunction::from_fn_ptr(digest), 2),
        ("hmac", NativeFunction::from_fn_ptr(hmac), 3),
        ("hmacVerify", NativeFunction::from_fn_ptr(hmac_verify), 4),
    ]
}

fn type_error(message: impl Into<String>) -> JsError {
    JsNativeError::typ().with_message(message.into()).into()
}

fn units(args: &[JsValue], i: usize, ctx: &mut Context) -> JsResult<Vec<u16>> {
    Ok(args.get_or_undefined(i).to_string(ctx)?.iter().collect())
}

/// A JS string as Rust text: lone surrogates become U+FFFD (as the
/// platform's encoders do).
fn text(args: &[JsValue], i: usize, ctx: &mut Context) -> JsResult<String> {
    Ok(String::from_utf16_lossy(&units(args, i, ctx)?))
}

fn bytes(args: &[JsValue], i: usize, ctx: &mut Context) -> JsResult<Vec<u8>> {
    units(args, i, ctx)?
        .into_iter()
        .map(|u| u8::try_from(u).map_err(|_| type_error("a byte string holds only 0-255")))
        .collect()
}

fn binary(bytes: &[u8]) -> JsValue {
    let units: Vec<u16> = bytes.iter().map(|&b| u16::from(b)).collect();
    JsString::from(&units[..]).into()
}

fn utf8_encode(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    Ok(binary(text(args, 0, ctx)?.as_bytes()))
}

/// The text of UTF-8 bytes; with `fatal`, `null` for invalid ones (else they
/// become U+FFFD).
fn utf8_decode(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let b = bytes(args, 0, ctx)?;
    if args.get_or_undefined(1).to_boolean() {
        return Ok(match std::str::from_utf8(&b) {
            Ok(s) => JsString::from(s).into(),
            Err(_) => JsValue::null(),
        });
    }
    Ok(JsString::from(String::from_utf8_lossy(&b).as_ref()).into())
}

/// The URL's parts as the `URL` class shows them.
fn parts(u: &Url, ctx: &mut Context) -> JsResult<JsValue> {
    let port = u.port().map(|p| p.to_string()).unwrap_or_default();
    let hostname = u.host_str().unwrap_or_default().to_string();
    let host = if port.is_empty() {
        hostname.clone()
    } else {
        format!("{hostname}:{port}")
    };
    let prefixed = |p: &str, s: Option<&str>| match s {
        Some(s) if !s.is_empty() => format!("{p}{s}"),
        _ => String::new(),
    };
    let value = json!({
        "href": u.as_str(),
        "origin": u.origin().ascii_serialization(),
        "protocol": format!("{}:", u.scheme()),
        "username": u.username(),
        "password": u.password().unwrap_or_default(),
        "host": host,
        "hostname": hostname,
        "port": port,
        "pathname": u.path(),
        "search": prefixed("?", u.query()),
        "hash": prefixed("#", u.fragment()),
    });
    JsValue::from_json(&value, ctx)
}

/// `urlParse(input, base|null)`: the parts, or `null` when it does not parse.
fn url_parse(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let input = text(args, 0, ctx)?;
    let parsed = match args.get_or_undefined(1) {
        b if b.is_null_or_undefined() => Url::parse(&input),
        _ => Url::parse(&text(args, 1, ctx)?).and_then(|base| base.join(&input)),
    };
    match parsed {
        Ok(u) => parts(&u, ctx),
        Err(_) => Ok(JsValue::null()),
    }
}

/// `urlSet(href, field, value)`: the parts after the setter (the URL
/// standard's: an invalid value leaves the URL as it was); `null` when
/// `href` itself does not parse.
fn url_set(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let Ok(mut u) = Url::parse(&text(args, 0, ctx)?) else {
        return Ok(JsValue::null());
    };
    let field = text(args, 1, ctx)?;
    let value = text(args, 2, ctx)?;
    let strip = |v: &str, p: char| v.strip_prefix(p).unwrap_or(v).to_string();
    match field.as_str() {
        "href" => match Url::parse(&value) {
            Ok(new) => u = new,
            Err(_) => return Ok(JsValue::null()),
        },
        "protocol" => {
            let _ = u.set_scheme(value.split(':').next().unwrap_or_default());
        }
        "username" => {
            let _ = u.set_username(&value);
        }
        "password" => {
            let _ = u.set_password(Some(&value).filter(|v| !v.is_empty()).map(String::as_str));
        }
        "host" => {
            let (h, p) = match value.rsplit_once(':') {
                Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => (h, Some(p)),
                _ => (value.as_str(), None),
            };
            if u.set_host(Some(h)).is_ok()
                && let Some(p) = p
            {
                let _ = u.set_port(p.parse().ok());
            }
        }
        "hostname" => {
            let _ = u.set_host(Some(&value));
        }
        "port" => {
            if value.is_empty() {
                let _ = u.set_port(None);
            } else if let Ok(p) = value.parse::<u16>() {
                let _ = u.set_port(Some(p));
            }
        }
        "pathname" => u.set_path(&value),
        "search" => {
            let q = strip(&value, '?');
            u.set_query(Some(&q).filter(|q| !q.is_empty()).map(String::as_str));
        }
        "hash" => {
            let f = strip(&value, '#');
            u.set_fragment(Some(&f).filter(|f| !f.is_empty()).map(String::as_str));
        }
        other => return Err(type_error(format!("no URL field `{other}`"))),
    }
    parts(&u, ctx)
}

/// At most what `crypto.getRandomValues` may ask for at once.
const MAX_RANDOM: usize = 65_536;

fn random_bytes(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let n = args.get_or_undefined(0).to_number(ctx)?;
    if !(0.0..=MAX_RANDOM as f64).contains(&n) {
        return Err(type_error(format!("0 to {MAX_RANDOM} random bytes")));
    }
    let mut buf = vec![0u8; n as usize];
    getrandom::fill(&mut buf).map_err(|e| type_error(format!("no random source: {e}")))?;
    Ok(binary(&buf))
}

fn digest(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    use sha2::Digest;
    let data = bytes(args, 1, ctx)?;
    let out = match text(args, 0, ctx)?.as_str() {
        "SHA-1" => sha1::Sha1::digest(&data).to_vec(),
        "SHA-256" => sha2::Sha256::digest(&data).to_vec(),
        "SHA-384" => sha2::Sha384::digest(&data).to_vec(),
        "SHA-512" => sha2::Sha512::digest(&data).to_vec(),
        other => return Err(type_error(format!("no digest `{other}`"))),
    };
    Ok(binary(&out))
}

/// HMAC of `data` with `key` under the hash `name`.
fn mac(name: &str, key: &[u8], data: &[u8]) -> JsResult<Vec<u8>> {
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut m = <M as hmac::digest::KeyInit>::new_from_slice(key).expect("HMAC takes any key");
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }
    Ok(match name {
        "SHA-1" => run::<Hmac<sha1::Sha1>>(key, data),
        "SHA-256" => run::<Hmac<sha2::Sha256>>(key, data),
        "SHA-384" => run::<Hmac<sha2::Sha384>>(key, data),
        "SHA-512" => run::<Hmac<sha2::Sha512>>(key, data),
        other => return Err(type_error(format!("no HMAC hash `{other}`"))),
    })
}

fn hmac(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let out = mac(
        &text(args, 0, ctx)?,
        &bytes(args, 1, ctx)?,
        &bytes(args, 2, ctx)?,
    )?;
    Ok(binary(&out))
}

/// Compares in constant time.
fn hmac_verify(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let expected = mac(
        &text(args, 0, ctx)?,
        &bytes(args, 1, ctx)?,
        &bytes(args, 2, ctx)?,
    )?;
    let given = bytes(args, 3, ctx)?;
    let same = expected.len() == given.len()
        && expected
            .iter()
            .zip(&given)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    Ok(JsValue::from(same))
}
