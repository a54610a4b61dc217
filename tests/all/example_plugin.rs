//! The example plugins as a bot builder would use them: the IBAN check in
//! Rust (examples/plugins/iban), C (examples/plugins/iban-c), JavaScript
//! (examples/plugins/iban-js) and Python (examples/plugins/iban-py) behave
//! the same, case for case.

use std::sync::Arc;

use sandbot::sandbox::{ActionModule, Invocation, Limits, Outcome};
use serde_json::{Value, json};

use crate::common::{SANDBOX, guest, repo};

/// Each language's IBAN plugin, by name (compiled once for all the tests:
/// the JavaScript one carries its engine).
fn plugins() -> Vec<(&'static str, Arc<ActionModule>)> {
    static PLUGINS: std::sync::LazyLock<Vec<(&'static str, Arc<ActionModule>)>> =
        std::sync::LazyLock::new(load_plugins);
    PLUGINS.clone()
}

fn load_plugins() -> Vec<(&'static str, Arc<ActionModule>)> {
    let load = |path: &str| {
        let bytes = std::fs::read(repo().join(path)).unwrap();
        SANDBOX
            .load(&bytes)
            .unwrap_or_else(|e| panic!("{path}: {e:#}"))
    };
    vec![
        ("rust", guest("iban-plugin")),
        ("c", load("examples/plugins/iban-c/iban-c.wasm")),
        ("js", load("examples/plugins/iban-js/iban-js.wasm")),
        ("python", load("examples/plugins/iban-py/iban-py.wasm")),
    ]
}

/// Runs every plugin over `session`.
async fn each(session: Value) -> Vec<(&'static str, Outcome)> {
    let mut out = Vec::new();
    for (name, module) in plugins() {
        let invocation = Invocation::new(args()).with_session(session.clone());
        out.push((
            name,
            SANDBOX
                .invoke(&module, invocation, &Limits::deny_all())
                .await,
        ));
    }
    out
}

fn args() -> serde_json::Value {
    json!({"variable": "user.iban", "onValid": "confirm", "onInvalid": "ask-again"})
}

#[tokio::test]
async fn a_valid_iban_is_stored_and_routes_on() {
    for (name, out) in each(json!({"user": {"iban": "be71 0961 2345 6769"}})).await {
        assert!(out.is_ok(), "{name}: {out:?}");
        assert_eq!(out.effects.next.as_deref(), Some("confirm"), "{name}");
        assert_eq!(
            serde_json::to_value(&out.effects.session).unwrap(),
            json!({"payment.iban": "BE71 0961 2345 6769", "payment.ibanCountry": "BE", "payment.ibanValid": true}),
            "{name}"
        );
        assert_eq!(
            out.output,
            json!({"valid": true, "iban": "BE71096123456769"}),
            "{name}"
        );
        assert!(out.effects.messages.is_empty(), "{name}");
    }
}

#[tokio::test]
async fn an_invalid_iban_explains_and_routes_back() {
    for (iban, reason) in [
        ("BE71 0961 2345 6760", "the check digits do not match"),
        ("BE71 0961", "an IBAN from BE has 16 characters, not 8"),
        ("ZZ12 3456 7890", "`ZZ` is not a country that uses IBANs"),
        (
            "BE71 0961 2345 676!",
            "it should be letters and digits only",
        ),
    ] {
        for (name, out) in each(json!({"user": {"iban": iban}})).await {
            assert!(out.is_ok(), "{name}: {out:?}");
            assert_eq!(out.effects.next.as_deref(), Some("ask-again"), "{name}");
            assert_eq!(
                out.output,
                json!({"valid": false, "reason": reason}),
                "{name} {iban}"
            );
            assert_eq!(
                out.effects.messages[0]["config"]["textMessages"][0]["text"],
                format!(
                    "That IBAN does not look right ({reason}). Could you check it and type it again?"
                ),
                "{name}"
            );
        }
    }
}

#[tokio::test]
async fn a_missing_variable_is_the_plugins_error() {
    for (name, out) in each(json!({})).await {
        let e = out.error.expect("fails");
        assert_eq!(e.code.as_deref(), Some("missing_value"), "{name}");
        assert_eq!(
            e.message, "session variable `user.iban` is not set",
            "{name}"
        );
    }
}
