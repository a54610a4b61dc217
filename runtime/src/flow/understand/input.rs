//! Validating the answer to a Collect input block.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Value, json};

use crate::flow::bot::model::InputType;

static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[^\s@]+@[^\s@]+\.[^\s@]{2,}$").expect("valid"));
static URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?i)(https?://)?([a-z0-9-]+\.)+[a-z]{2,}(:\d+)?(/\S*)?$").expect("valid")
});
static PHONE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\+?[0-9][0-9 ().-]{5,20}[0-9]$").expect("valid"));

/// The validated value to store, or `None` when the answer does not fit.
pub fn validate(
    kind: InputType,
    answer: &str,
    options: &[String],
    pattern: Option<&Regex>,
) -> Option<Value> {
    let a = answer.trim();
    if a.is_empty() {
        return None;
    }
    match kind {
        InputType::Any => Some(json!(a)),
        InputType::Number => number(a),
        InputType::Email => EMAIL.is_match(a).then(|| json!(a)),
        InputType::Url => URL.is_match(a).then(|| json!(a)),
        InputType::Phone => {
            let digits = a.chars().filter(char::is_ascii_digit).count();
            (PHONE.is_match(a) && (7..=15).contains(&digits)).then(|| json!(a))
        }
        InputType::Date => date(a).map(|d| json!(d)),
        InputType::Choice => choice(a, options).map(|o| json!(o)),
        InputType::Regex => pattern.filter(|re| re.is_match(a)).map(|_| json!(a)),
    }
}

/// Compiles a `regex` input's pattern so the whole answer must match.
pub fn whole_match(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{pattern})$"))
}

fn number(a: &str) -> Option<Value> {
    let normal = a.replace(',', ".");
    if let Ok(n) = normal.parse::<i64>() {
        return Some(json!(n));
    }
    normal
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .map(|x| json!(x))
}

/// `YYYY-MM-DD`, `DD/MM/YYYY` or `DD-MM-YYYY` → `YYYY-MM-DD`, calendar-checked.
pub fn date(a: &str) -> Option<String> {
    let parts: Vec<&str> = a.split(['-', '/', '.']).collect();
    let [p0, p1, p2] = parts.as_slice() else {
        return None;
    };
    let (y, m, d) = if p0.len() == 4 {
        (p0, p1, p2)
    } else if p2.len() == 4 {
        (p2, p1, p0)
    } else {
        return None;
    };
    let (y, m, d): (u32, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    (1..=days)
        .contains(&d)
        .then(|| format!("{y:04}-{m:02}-{d:02}"))
}

fn choice<'o>(a: &str, options: &'o [String]) -> Option<&'o String> {
    if let Ok(n) = a.parse::<usize>()
        && n >= 1
        && n <= options.len()
    {
        return Some(&options[n - 1]);
    }
    options.iter().find(|o| o.eq_ignore_ascii_case(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_type_accepts_and_refuses() {
        let opts = vec!["Small".to_string(), "Large".to_string()];
        let re = whole_match(r"ORD-\d{4}").unwrap();
        let v = |k, a: &str| validate(k, a, &opts, Some(&re));
        assert_eq!(v(InputType::Any, " hi "), Some(json!("hi")));
        assert_eq!(v(InputType::Any, "  "), None);
        assert_eq!(v(InputType::Number, "42"), Some(json!(42)));
        assert_eq!(v(InputType::Number, "3,5"), Some(json!(3.5)));
        assert_eq!(v(InputType::Number, "four"), None);
        assert_eq!(
            v(InputType::Email, "ada@example.com"),
            Some(json!("ada@example.com"))
        );
        assert_eq!(v(InputType::Email, "ada@example"), None);
        assert_eq!(
            v(InputType::Phone, "+32 470 12 34 56"),
            Some(json!("+32 470 12 34 56"))
        );
        assert_eq!(v(InputType::Phone, "12"), None);
        assert_eq!(
            v(InputType::Url, "https://sinch.com/x"),
            Some(json!("https://sinch.com/x"))
        );
        assert_eq!(v(InputType::Url, "not a url"), None);
        assert_eq!(v(InputType::Date, "29/02/2024"), Some(json!("2024-02-29")));
        assert_eq!(v(InputType::Date, "2023-02-29"), None);
        assert_eq!(v(InputType::Choice, "large"), Some(json!("Large")));
        assert_eq!(v(InputType::Choice, "1"), Some(json!("Small")));
        assert_eq!(v(InputType::Choice, "3"), None);
        assert_eq!(v(InputType::Regex, "ORD-1234"), Some(json!("ORD-1234")));
        assert_eq!(v(InputType::Regex, "my ORD-1234"), None);
    }
}
