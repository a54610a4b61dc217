//! Intent and entity recognition: deterministic, per language, typo-tolerant.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Digest;

use crate::flow::bot::model::{EntityDef, NlpConfig, SystemEntity};
use crate::flow::understand::input;
use crate::flow::understand::similarity::{aligned_similarity, phrase_similarity, words};

/// A recognised intent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntentScore {
    #[serde(rename = "name")]
    pub name: String,
    pub score: f64,
}

/// A recognised entity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntityMatch {
    pub name: String,
    pub value: Value,
    pub score: f64,
}

/// What the matcher found in one expression.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Analysis {
    pub expression: String,
    /// The best intent above the threshold.
    pub intent: Option<IntentScore>,
    /// The best intents, best first (at most 5), whatever their score.
    pub intents: Vec<IntentScore>,
    pub entities: Vec<EntityMatch>,
}

impl Analysis {
    /// `internal.nlp`.
    pub fn to_session(&self) -> Value {
        json!({
            "expression": self.expression,
            "intent": self.intent.as_ref().map(|i| json!({"name": i.name, "score": i.score}))
                .unwrap_or(json!({"name": null, "score": 0})),
            "intents": self.intents,
            "entities": self.entities,
        })
    }
}

struct ListEntity {
    name: String,
    /// (canonical value, words of a value or synonym)
    forms: Vec<(String, Vec<String>)>,
}

/// The compiled NLP model of one bot.
pub struct Nlp {
    intent_threshold: f64,
    entity_threshold: f64,
    /// language → its examples
    examples: HashMap<String, Vec<Example>>,
    lists: Vec<ListEntity>,
    regexes: Vec<(String, Regex)>,
    system: Vec<SystemEntity>,
    /// Entities that expressions name as slots (`{order_id}`) → their slot words.
    slots: HashMap<String, String>,
}

/// One example expression of an intent, compiled.
struct Example {
    intent: String,
    words: Vec<String>,
    /// The slot words it names (`{order_id}`): it matches only a message
    /// that carries those entities.
    slots: Vec<String>,
}

/// Characters of a message the NLP reads, at most.
pub const MAX_NLP_CHARS: usize = 2_000;

static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[^\s@,;<>]+@[^\s@,;<>]+\.[A-Za-z]{2,}").expect("valid"));
static URL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bhttps?://[^\s<>]+|\bwww\.[^\s<>]+").expect("valid"));
static PHONE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\+?\d[\d ()-]{6,18}\d").expect("valid"));
static NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"-?\b\d+(?:[.,]\d+)?\b").expect("valid"));
static DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{4})\b").expect("valid")
});

impl Nlp {
    /// Compiles `config`; regex entities must already be valid (see validation).
    pub fn new(config: &NlpConfig) -> Self {
        let mut examples: HashMap<String, Vec<Example>> = HashMap::new();
        let mut slots = Vec::new();
        for intent in &config.intents {
            for (lang, list) in &intent.expressions {
                let entry = examples.entry(lang.clone()).or_default();
                for e in list {
                    slots.extend(slot_names(e).map(str::to_string));
                    entry.push(Example {
                        intent: intent.name.clone(),
                        words: words(&with_slot_words(e)),
                        slots: slot_names(e).map(slot_word).collect(),
                    });
                }
            }
        }
        let slots = slots
            .into_iter()
            .map(|name| {
                let word = slot_word(&name);
                (name, word)
            })
            .collect();
        let mut lists = Vec::new();
        let mut regexes = Vec::new();
        for e in &config.entities {
            match e {
                EntityDef::List { name, values } => lists.push(ListEntity {
                    name: name.clone(),
                    forms: values
                        .iter()
                        .flat_map(|v| {
                            std::iter::once(&v.value)
                                .chain(&v.synonyms)
                                .map(|f| (v.value.clone(), words(f)))
                        })
                        .collect(),
                }),
                EntityDef::Regex { name, pattern } => {
                    if let Ok(re) = Regex::new(pattern) {
                        regexes.push((name.clone(), re));
                    }
                }
            }
        }
        Self {
            intent_threshold: config.intent_threshold,
            entity_threshold: config.entity_threshold,
            examples,
            lists,
            regexes,
            system: config.system_entities.clone(),
            slots,
        }
    }

    /// Analyses `text` in `language` (falling back to `primary` when the bot
    /// has no examples in that language): its first [`MAX_NLP_CHARS`]
    /// characters (the matching's cost grows with the words, so a huge
    /// message cannot burn CPU).
    pub fn analyse(&self, text: &str, language: &str, primary: &str) -> Analysis {
        let text = match text.char_indices().nth(MAX_NLP_CHARS) {
            Some((end, _)) => &text[..end],
            None => text,
        };
        let entities = self.entities(text, &words(text));
        // Intents are matched without the exact entities' text (an email
        // address or an order number says nothing about the intent); where
        // expressions name the entity (`where is {order_id}`), its text
        // stands for that slot.
        let mut stripped = text.to_string();
        for e in entities.iter().filter(|e| e.score == 1.0) {
            if let Some(v) = e.value.as_str() {
                let slot = match self.slots.get(&e.name) {
                    Some(word) => format!(" {word} "),
                    None => " ".to_string(),
                };
                stripped = stripped.replace(v, &slot);
            }
        }
        let input = words(&stripped);
        let examples = self
            .examples
            .get(language)
            .or_else(|| self.examples.get(primary))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let mut best: HashMap<&str, f64> = HashMap::new();
        for example in examples {
            if !example.slots.iter().all(|w| input.contains(w)) {
                continue;
            }
            let score = phrase_similarity(&input, &example.words);
            let slot = best.entry(example.intent.as_str()).or_insert(0.0);
            *slot = slot.max(score);
        }
        let mut intents: Vec<IntentScore> = best
            .into_iter()
            .map(|(name, score)| IntentScore {
                name: name.to_string(),
                score: (score * 1000.0).round() / 1000.0,
            })
            .collect();
        intents.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.name.cmp(&b.name)));
        intents.truncate(5);
        let intent = intents
            .first()
            .filter(|i| i.score > self.intent_threshold)
            .cloned();
        Analysis {
            expression: text.to_string(),
            intent,
            intents,
            entities,
        }
    }

    fn entities(&self, text: &str, input: &[String]) -> Vec<EntityMatch> {
        let mut found = Vec::new();
        for list in &self.lists {
            let mut best: Option<(f64, &str)> = None;
            for (value, form) in &list.forms {
                for window in input.windows(form.len().max(1)) {
                    let score = aligned_similarity(window, form);
                    if score >= self.entity_threshold && best.is_none_or(|(b, _)| score > b) {
                        best = Some((score, value));
                    }
                }
            }
            if let Some((score, value)) = best {
                found.push(EntityMatch {
                    name: list.name.clone(),
                    value: json!(value),
                    score: (score * 1000.0).round() / 1000.0,
                });
            }
        }
        for (name, re) in &self.regexes {
            if let Some(m) = re.find(text) {
                found.push(exact(name, json!(m.as_str())));
            }
        }
        for sys in &self.system {
            if let Some(value) = system_entity(*sys, text) {
                let name = format!("sys.{}", system_name(*sys));
                found.push(exact(&name, value));
            }
        }
        found
    }
}

/// The entity names an expression uses as slots: `{name}`.
pub fn slot_names(expression: &str) -> impl Iterator<Item = &str> {
    expression
        .split('{')
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(name, _)| name.trim()))
        .filter(|name| !name.is_empty())
}

/// The expression with each `{name}` as its slot word.
fn with_slot_words(expression: &str) -> String {
    let mut out = expression.to_string();
    for name in slot_names(expression) {
        out = out.replace(&format!("{{{name}}}"), &format!(" {} ", slot_word(name)));
    }
    out
}

/// A word standing for entity `name` (letters and digits only, so it stays
/// one word; unlike any real word or another entity's slot).
fn slot_word(name: &str) -> String {
    let digest = sha2::Sha256::digest(name.as_bytes());
    format!("slot{}", hex::encode(&digest[..6]))
}

fn exact(name: &str, value: Value) -> EntityMatch {
    EntityMatch {
        name: name.to_string(),
        value,
        score: 1.0,
    }
}

pub fn system_name(s: SystemEntity) -> &'static str {
    match s {
        SystemEntity::Email => "email",
        SystemEntity::Number => "number",
        SystemEntity::Phone => "phone",
        SystemEntity::Url => "url",
        SystemEntity::Date => "date",
    }
}

fn system_entity(s: SystemEntity, text: &str) -> Option<Value> {
    let m = |re: &Regex| re.find(text).map(|m| m.as_str().to_string());
    match s {
        SystemEntity::Email => m(&EMAIL).map(Value::String),
        SystemEntity::Url => m(&URL).map(Value::String),
        SystemEntity::Phone => m(&PHONE)
            .filter(|p| (7..=15).contains(&p.chars().filter(char::is_ascii_digit).count()))
            .map(|p| Value::String(p.trim().to_string())),
        SystemEntity::Date => DATE
            .find_iter(text)
            .find_map(|m| input::date(m.as_str()))
            .map(Value::String),
        SystemEntity::Number => {
            let n = m(&NUMBER)?.replace(',', ".");
            n.parse::<i64>()
                .map(|i| json!(i))
                .or_else(|_| n.parse::<f64>().map(|x| json!(x)))
                .ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::bot::model::{IntentDef, ListValue};

    fn nlp() -> Nlp {
        let intent = |name: &str, en: &[&str], nl: &[&str]| IntentDef {
            name: name.into(),
            goto: "x".into(),
            expressions: [
                ("en".to_string(), en.iter().map(|s| s.to_string()).collect()),
                ("nl".to_string(), nl.iter().map(|s| s.to_string()).collect()),
            ]
            .into(),
        };
        Nlp::new(&NlpConfig {
            intents: vec![
                intent(
                    "find_meetup",
                    &["find a meetup", "which meetups are there"],
                    &["zoek een meetup"],
                ),
                intent(
                    "order_status",
                    &["where is my order", "track my package", "where is {order}"],
                    &[],
                ),
            ],
            entities: vec![
                EntityDef::List {
                    name: "city".into(),
                    values: vec![ListValue {
                        value: "Amsterdam".into(),
                        synonyms: vec!["mokum".into()],
                    }],
                },
                EntityDef::Regex {
                    name: "order".into(),
                    pattern: r"ORD-\d{4}".into(),
                },
            ],
            system_entities: vec![
                SystemEntity::Email,
                SystemEntity::Number,
                SystemEntity::Date,
            ],
            ..NlpConfig::default()
        })
    }

    #[test]
    fn intents_with_typos_word_order_languages_and_threshold() {
        let n = nlp();
        let a = n.analyse("were is my ordr?", "en", "en");
        assert_eq!(a.intent.unwrap().name, "order_status");
        let a = n.analyse("meetup find a", "en", "en");
        assert_eq!(a.intent.unwrap().name, "find_meetup");
        let a = n.analyse("zoek een meetup", "nl", "en");
        assert_eq!(a.intent.unwrap().name, "find_meetup");
        // French has no examples: the primary language's are used.
        let a = n.analyse("track my package", "fr", "en");
        assert_eq!(a.intent.unwrap().name, "order_status");
        let a = n.analyse("what's the weather like", "en", "en");
        assert!(a.intent.is_none(), "{a:?}");
        assert!(!a.intents.is_empty());
    }

    #[test]
    fn entities_list_synonym_typo_regex_and_system() {
        let n = nlp();
        let a = n.analyse(
            "meetups in amsterdma or mokum? ORD-1234, ada@example.com, 12 on 2025-03-01",
            "en",
            "en",
        );
        let get = |name: &str| {
            a.entities
                .iter()
                .find(|e| e.name == name)
                .map(|e| e.value.clone())
        };
        assert_eq!(get("city"), Some(json!("Amsterdam")));
        assert_eq!(get("order"), Some(json!("ORD-1234")));
        assert_eq!(get("sys.email"), Some(json!("ada@example.com")));
        assert_eq!(get("sys.date"), Some(json!("2025-03-01")));
        assert!(get("sys.number").is_some());
        let a = n.analyse("rotterdam", "en", "en");
        assert!(a.entities.iter().all(|e| e.name != "city"));
    }

    /// Only the first MAX_NLP_CHARS characters are read: an intent inside them
    /// is found, one after them is not (whatever the message's size).
    #[test]
    fn only_the_first_characters_are_analysed() {
        let n = nlp();
        let pad = "x".repeat(MAX_NLP_CHARS - "track my package ".len());
        let inside = format!("track my package {pad}");
        assert_eq!(inside.chars().count(), MAX_NLP_CHARS);
        let a = n.analyse(&format!("{inside} and more"), "en", "en");
        assert_eq!(a.expression, inside);
        assert!(
            a.intents
                .iter()
                .any(|i| i.name == "order_status" && i.score > 0.0)
        );
        let after = format!("{} track my package", "x ".repeat(MAX_NLP_CHARS));
        let a = n.analyse(&after, "en", "en");
        assert!(
            a.intents
                .iter()
                .all(|i| i.name != "order_status" || i.score < 0.3),
            "{:?}",
            a.intents
        );
        assert_eq!(a.expression.chars().count(), MAX_NLP_CHARS);
    }

    /// An entity named in an expression (`where is {order}`) matches by its
    /// value: "where is ORD-1234" is that expression; the value's text does
    /// not match the slot's name or another word.
    #[test]
    fn entity_slots_in_expressions() {
        let n = nlp();
        let a = n.analyse("where is ORD-1234", "en", "en");
        let intent = a.intent.unwrap();
        assert_eq!((intent.name.as_str(), intent.score), ("order_status", 1.0));
        // Without an order number the words alone are not enough.
        let a = n.analyse("where is", "en", "en");
        assert!(a.intent.is_none(), "{a:?}");
        let a = n.analyse("where is order", "en", "en");
        assert!(a.intents[0].score < 1.0, "{a:?}");
        assert_eq!(
            slot_names("a {x} b { y }{}").collect::<Vec<_>>(),
            ["x", "y"]
        );
    }
}
