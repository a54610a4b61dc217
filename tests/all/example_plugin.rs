//! The example plugin (examples/plugins/iban) as a bot builder would use it.

use sandbot::sandbox::{Invocation, Limits};
use serde_json::json;

use crate::common::{SANDBOX, guest};

fn args() -> serde_json::Value {
    json!({"variable": "user.iban", "onValid": "confirm", "onInvalid": "ask-again"})
}

#[tokio::test]
async fn a_valid_iban_is_stored_and_routes_on() {
    let session = json!({"user": {"iban": "be71 0961 2345 6769"}});
    let out = SANDBOX
        .invoke(
            &guest("iban-plugin"),
            Invocation::new(args()).with_session(session),
            &Limits::deny_all(),
        )
        .await;
    assert!(out.is_ok(), "{out:?}");
    assert_eq!(out.effects.next.as_deref(), Some("confirm"));
    assert_eq!(
        serde_json::to_value(&out.effects.session).unwrap(),
        json!({"payment.iban": "BE71 0961 2345 6769", "payment.ibanCountry": "BE", "payment.ibanValid": true})
    );
    assert!(out.effects.messages.is_empty());
}

#[tokio::test]
async fn an_invalid_iban_explains_and_routes_back() {
    let session = json!({"user": {"iban": "BE71 0961 2345 6760"}});
    let out = SANDBOX
        .invoke(
            &guest("iban-plugin"),
            Invocation::new(args()).with_session(session),
            &Limits::deny_all(),
        )
        .await;
    assert!(out.is_ok(), "{out:?}");
    assert_eq!(out.effects.next.as_deref(), Some("ask-again"));
    assert_eq!(
        out.output,
        json!({"valid": false, "reason": "the check digits do not match"})
    );
    let text = &out.effects.messages[0]["config"]["textMessages"][0]["text"];
    assert!(
        text.as_str()
            .unwrap()
            .contains("the check digits do not match"),
        "{text}"
    );
}

#[tokio::test]
async fn a_missing_variable_is_the_plugins_error() {
    let out = SANDBOX
        .invoke(
            &guest("iban-plugin"),
            Invocation::new(args()),
            &Limits::deny_all(),
        )
        .await;
    let e = out.error.expect("fails");
    assert_eq!(e.code.as_deref(), Some("missing_value"));
    assert_eq!(e.message, "session variable `user.iban` is not set");
}
