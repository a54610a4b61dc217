//! Condition blocks: ordered rules, first match wins.

use regex::RegexBuilder;
use sandbot_host_api::JsonPath;
use serde_json::Value;

use crate::flow::bot::model::{Combine, Condition, Operator, Rule};
use crate::flow::say::template;

/// The first rule whose conditions hold.
pub fn first_match<'r>(rules: &'r [Rule], session: &Value) -> Option<&'r Rule> {
    rules.iter().find(|r| rule_holds(r, session))
}

fn rule_holds(rule: &Rule, session: &Value) -> bool {
    let mut results = rule.conditions.iter().map(|c| holds(c, session));
    match rule.combine {
        Combine::All => results.all(|b| b),
        Combine::Any => results.any(|b| b),
    }
}

/// Whether one condition holds for `session`.
pub fn holds(c: &Condition, session: &Value) -> bool {
    let actual = JsonPath::parse(&c.variable)
        .ok()
        .and_then(|p| p.get(session).cloned())
        .filter(|v| !v.is_null());
    let expected = template::resolve(&c.value, session);
    match c.operator {
        Operator::Exists => actual.is_some_and(|v| v != Value::String(String::new())),
        Operator::NotExists => actual.is_none_or(|v| v == Value::String(String::new())),
        Operator::Equals => actual.is_some_and(|a| equals(&a, &expected, c.case_sensitive)),
        Operator::NotEquals => !actual.is_some_and(|a| equals(&a, &expected, c.case_sensitive)),
        Operator::GreaterThan => compare(actual.as_ref(), &expected).is_some_and(|o| o.is_gt()),
        Operator::SmallerThan => compare(actual.as_ref(), &expected).is_some_and(|o| o.is_lt()),
        Operator::Contains => actual.is_some_and(|a| contains(&a, &expected, c.case_sensitive)),
        Operator::StartsWith => actual.is_some_and(|a| {
            let (a, e) = texts(&a, &expected, c.case_sensitive);
            a.starts_with(&e)
        }),
        Operator::Matches => actual.is_some_and(|a| {
            RegexBuilder::new(&template::to_text(&expected))
                .case_insensitive(!c.case_sensitive)
                .build()
                .is_ok_and(|re| re.is_match(&template::to_text(&a)))
        }),
    }
}

fn texts(a: &Value, e: &Value, case_sensitive: bool) -> (String, String) {
    let (a, e) = (template::to_text(a), template::to_text(e));
    if case_sensitive {
        (a, e)
    } else {
        (a.to_lowercase(), e.to_lowercase())
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Numbers compare as numbers (`"10"` equals `10`), everything else as text.
fn equals(a: &Value, e: &Value, case_sensitive: bool) -> bool {
    if let (Some(x), Some(y)) = (number(a), number(e)) {
        return x == y;
    }
    if let (Value::Bool(x), Value::String(y)) | (Value::String(y), Value::Bool(x)) = (a, e) {
        return y.eq_ignore_ascii_case(if *x { "true" } else { "false" });
    }
    let (a, e) = texts(a, e, case_sensitive);
    a == e
}

fn compare(a: Option<&Value>, e: &Value) -> Option<std::cmp::Ordering> {
    let a = a?;
    match (number(a), number(e)) {
        (Some(x), Some(y)) => x.partial_cmp(&y),
        _ => Some(template::to_text(a).cmp(&template::to_text(e))),
    }
}

/// Text contains text; an array contains an element equal to the value.
fn contains(a: &Value, e: &Value, case_sensitive: bool) -> bool {
    if let Value::Array(items) = a {
        return items.iter().any(|i| equals(i, e, case_sensitive));
    }
    let (a, e) = texts(a, e, case_sensitive);
    a.contains(&e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cond(variable: &str, operator: Operator, value: Value, cs: bool) -> Condition {
        Condition {
            variable: variable.into(),
            operator,
            value,
            case_sensitive: cs,
        }
    }

    #[test]
    fn every_operator_both_ways() {
        use Operator::*;
        let s = json!({"age": 20, "name": "Ada Lovelace", "tags": ["a", "B"], "empty": "", "min": "18"});
        let cases = [
            (cond("age", Equals, json!("20"), true), true),
            (cond("age", Equals, json!(21), true), false),
            (cond("name", Equals, json!("ada lovelace"), true), false),
            (cond("name", Equals, json!("ada lovelace"), false), true),
            (cond("name", NotEquals, json!("x"), true), true),
            (cond("missing", NotEquals, json!("x"), true), true),
            (cond("name", NotEquals, json!("Ada Lovelace"), true), false),
            (cond("age", GreaterThan, json!("{min}"), true), true),
            (cond("age", GreaterThan, json!(20), true), false),
            (cond("age", SmallerThan, json!(100), true), true),
            (cond("missing", SmallerThan, json!(100), true), false),
            (cond("name", Contains, json!("love"), false), true),
            (cond("name", Contains, json!("love"), true), false),
            (cond("tags", Contains, json!("b"), false), true),
            (cond("tags", Contains, json!("c"), false), false),
            (cond("name", StartsWith, json!("Ada"), true), true),
            (cond("name", StartsWith, json!("Love"), true), false),
            (cond("name", Matches, json!("^ada\\s"), false), true),
            (cond("name", Matches, json!("^ada\\s"), true), false),
            (cond("name", Exists, Value::Null, true), true),
            (cond("empty", Exists, Value::Null, true), false),
            (cond("missing", NotExists, Value::Null, true), true),
            (cond("name", NotExists, Value::Null, true), false),
        ];
        for (c, want) in cases {
            assert_eq!(holds(&c, &s), want, "{c:?}");
        }
    }

    #[test]
    fn all_and_any_and_first_match_wins() {
        let s = json!({"a": 1, "b": 2});
        let rule = |combine, goto: &str| Rule {
            combine,
            conditions: vec![
                cond("a", Operator::Equals, json!(1), true),
                cond("b", Operator::Equals, json!(3), true),
            ],
            goto: crate::flow::bot::model::Goto::Block(goto.into()),
        };
        let rules = [
            rule(Combine::All, "and"),
            rule(Combine::Any, "or"),
            rule(Combine::Any, "later"),
        ];
        assert_eq!(first_match(&rules, &s).unwrap().goto.target(), "or");
        assert!(first_match(&rules[..1], &s).is_none());
    }
}
