//! Validates the IBAN a user typed, stores the cleaned-up form in the session and
//! routes the conversation: to `onValid` when the checksum holds, otherwise to
//! `onInvalid` with a message saying what is wrong.
//!
//! Input (the action's arguments):
//! `{"variable": "user.iban", "onValid": "confirm-payment", "onInvalid": "ask-iban"}`
//!
//! Session written on success: `payment.iban` (`BE71 0961 2345 6769`),
//! `payment.ibanCountry` (`BE`), `payment.ibanValid` (`true`/`false`).

use sandbot_sdk::{Action, ActionError, Value, conversation, json, session};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Args {
    /// Session path holding what the user typed.
    variable: String,
    on_valid: String,
    on_invalid: String,
    /// Namespace for the results (default `payment`).
    #[serde(default = "default_namespace")]
    namespace: String,
}

fn default_namespace() -> String {
    "payment".into()
}

struct Iban;

impl Action for Iban {
    fn run(input: Value) -> Result<Value, ActionError> {
        let args: Args = sandbot_sdk::args(input)?;
        let typed: String = session::get(&args.variable)?.ok_or_else(|| {
            ActionError::new(
                "missing_value",
                format!("session variable `{}` is not set", args.variable),
            )
        })?;
        let ns = &args.namespace;
        match check(&typed) {
            Ok(iban) => {
                session::set(&format!("{ns}.iban"), &grouped(&iban))?;
                session::set(&format!("{ns}.ibanCountry"), &iban[..2])?;
                session::set(&format!("{ns}.ibanValid"), &true)?;
                conversation::goto(&args.on_valid);
                Ok(json!({"valid": true, "iban": iban}))
            }
            Err(reason) => {
                session::set(&format!("{ns}.ibanValid"), &false)?;
                conversation::say_text(&format!(
                    "That IBAN does not look right ({reason}). Could you check it and type it again?"
                ))?;
                conversation::goto(&args.on_invalid);
                Ok(json!({"valid": false, "reason": reason}))
            }
        }
    }
}

/// The IBAN in electronic form (no spaces, upper case) when it is valid.
fn check(typed: &str) -> Result<String, String> {
    let iban: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if iban.len() < 5 || !iban.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err("it should be letters and digits only".into());
    }
    let country = &iban[..2];
    if !country.chars().all(|c| c.is_ascii_uppercase())
        || !iban[2..4].chars().all(|c| c.is_ascii_digit())
    {
        return Err("it should start with a country code and two check digits".into());
    }
    match expected_length(country) {
        Some(n) if n != iban.len() => {
            return Err(format!(
                "an IBAN from {country} has {n} characters, not {}",
                iban.len()
            ));
        }
        None => return Err(format!("`{country}` is not a country that uses IBANs")),
        Some(_) => {}
    }
    // ISO 13616: move the first four characters to the end, letters become
    // 10..35, and the number must be 1 modulo 97.
    let rearranged = iban[4..].chars().chain(iban[..4].chars());
    let mut rem: u32 = 0;
    for c in rearranged {
        let v = c.to_digit(36).expect("alphanumeric");
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    if rem != 1 {
        return Err("the check digits do not match".into());
    }
    Ok(iban)
}

/// Groups of four, as people write them.
fn grouped(iban: &str) -> String {
    iban.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn expected_length(country: &str) -> Option<usize> {
    Some(match country {
        "NO" => 15,
        "BE" => 16,
        "DK" | "FI" | "FO" | "GL" | "NL" => 18,
        "MK" | "SI" => 19,
        "AT" | "BA" | "EE" | "KZ" | "LT" | "LU" | "XK" => 20,
        "CH" | "CR" | "HR" | "LI" | "LV" => 21,
        "BG" | "BH" | "DE" | "GB" | "GE" | "IE" | "ME" | "RS" => 22,
        "AE" | "GI" | "IL" | "TL" => 23,
        "AD" | "CZ" | "ES" | "MD" | "PK" | "RO" | "SA" | "SE" | "SK" | "TN" | "VG" => 24,
        "PT" | "ST" => 25,
        "IS" | "TR" => 26,
        "FR" | "GR" | "IT" | "MC" | "MR" | "SM" => 27,
        "AL" | "AZ" | "BY" | "CY" | "DO" | "GT" | "HU" | "LB" | "PL" | "SV" => 28,
        "BR" | "EG" | "PS" | "QA" | "UA" => 29,
        "JO" | "KW" | "MU" => 30,
        "MT" | "SC" => 31,
        "LC" => 32,
        _ => return None,
    })
}

sandbot_sdk::export_action!(Iban);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_ibans_in_any_spacing() {
        assert_eq!(check("BE71 0961 2345 6769").unwrap(), "BE71096123456769");
        assert_eq!(
            check("de89370400440532013000").unwrap(),
            "DE89370400440532013000"
        );
        assert_eq!(grouped("BE71096123456769"), "BE71 0961 2345 6769");
    }

    #[test]
    fn explains_invalid_ibans() {
        assert_eq!(
            check("BE71 0961 2345 6760").unwrap_err(),
            "the check digits do not match"
        );
        assert!(check("BE71 0961").unwrap_err().contains("16 characters"));
        assert!(
            check("ZZ12 3456 7890")
                .unwrap_err()
                .contains("not a country")
        );
    }
}
