//! Paths into a JSON document, as bot builders write them: `user.address.city`,
//! `items[0]`, `order.lines[2].sku`.
//!
//! Pure data code, shared by the host functions and the flow engine.

use serde_json::{Map, Value};

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    segments: Vec<Segment>,
}

/// Why a path could not be parsed or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("invalid path `{path}`: {why}")]
    Syntax { path: String, why: &'static str },
    #[error("cannot write `{path}`: `{at}` holds a {found}, not an {wanted}")]
    Shape {
        path: String,
        at: String,
        found: &'static str,
        wanted: &'static str,
    },
    #[error("cannot write `{path}`: index {index} is more than one past the end ({len} items)")]
    Gap {
        path: String,
        index: usize,
        len: usize,
    },
}

impl JsonPath {
    /// Parses `a.b[0].c`. Keys are any characters but `.`, `[` and `]`.
    pub fn parse(path: &str) -> Result<Self, PathError> {
        let err = |why| PathError::Syntax {
            path: path.to_string(),
            why,
        };
        if path.is_empty() {
            return Err(err("empty path"));
        }
        let mut segments = Vec::new();
        let mut rest = path;
        let mut expect_key = true;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('[') {
                let close = after.find(']').ok_or_else(|| err("missing `]`"))?;
                let index = after[..close]
                    .parse::<usize>()
                    .map_err(|_| err("an index must be a non-negative integer"))?;
                segments.push(Segment::Index(index));
                rest = &after[close + 1..];
                expect_key = false;
            } else if let Some(after) = rest.strip_prefix('.') {
                if expect_key {
                    return Err(err("empty key"));
                }
                rest = after;
                expect_key = true;
                if rest.is_empty() {
                    return Err(err("trailing `.`"));
                }
            } else {
                if !expect_key {
                    return Err(err("expected `.` or `[` after an index"));
                }
                let end = rest.find(['.', '[', ']']).unwrap_or(rest.len());
                if end == 0 {
                    return Err(err("unexpected `]`"));
                }
                segments.push(Segment::Key(rest[..end].to_string()));
                rest = &rest[end..];
                expect_key = false;
            }
        }
        Ok(Self { segments })
    }

    /// The first key, if the path starts with one (`internal` for `internal.botId`).
    pub fn root_key(&self) -> Option<&str> {
        match self.segments.first() {
            Some(Segment::Key(k)) => Some(k),
            _ => None,
        }
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The value at this path, if any.
    pub fn get<'v>(&self, doc: &'v Value) -> Option<&'v Value> {
        self.segments.iter().try_fold(doc, |v, seg| match (seg, v) {
            (Segment::Key(k), Value::Object(m)) => m.get(k),
            (Segment::Index(i), Value::Array(a)) => a.get(*i),
            _ => None,
        })
    }

    /// Sets the value at this path, creating objects and arrays on the way. An
    /// index may point at most one past the end of an array (append). On error
    /// the document is left exactly as it was.
    pub fn set(&self, doc: &mut Value, value: Value) -> Result<(), PathError> {
        self.check_writable(doc)?;
        let mut cur = doc;
        for (n, seg) in self.segments.iter().enumerate() {
            if cur.is_null() {
                *cur = match seg {
                    Segment::Key(_) => Value::Object(Map::new()),
                    Segment::Index(_) => Value::Array(Vec::new()),
                };
            }
            let last = n + 1 == self.segments.len();
            let slot = match (seg, cur) {
                (Segment::Key(k), Value::Object(m)) => m.entry(k.clone()).or_insert(Value::Null),
                (Segment::Index(i), Value::Array(a)) => {
                    if *i == a.len() {
                        a.push(Value::Null);
                    }
                    &mut a[*i]
                }
                _ => unreachable!("checked by check_writable"),
            };
            if last {
                *slot = value;
                return Ok(());
            }
            cur = slot;
        }
        unreachable!("a parsed path has at least one segment")
    }

    /// Walks the document read-only and reports why `set` would fail, if it would.
    fn check_writable(&self, doc: &Value) -> Result<(), PathError> {
        let mut cur = Some(doc);
        for (n, seg) in self.segments.iter().enumerate() {
            cur = match (seg, cur.filter(|v| !v.is_null())) {
                // Below this point everything is created fresh: only a gap can fail.
                (Segment::Index(i), None) if *i > 0 => {
                    return Err(self.gap_error(*i, 0));
                }
                (_, None) => None,
                (Segment::Key(k), Some(Value::Object(m))) => m.get(k),
                (Segment::Index(i), Some(Value::Array(a))) => {
                    if *i > a.len() {
                        return Err(self.gap_error(*i, a.len()));
                    }
                    a.get(*i)
                }
                (seg, Some(other)) => return Err(self.shape_error(n, seg, other)),
            };
        }
        Ok(())
    }

    fn gap_error(&self, index: usize, len: usize) -> PathError {
        PathError::Gap {
            path: self.to_string(),
            index,
            len,
        }
    }

    /// Removes the value at this path; absent values are not an error.
    pub fn remove(&self, doc: &mut Value) -> Option<Value> {
        let (last, parents) = self.segments.split_last()?;
        let mut cur = doc;
        for seg in parents {
            cur = match (seg, cur) {
                (Segment::Key(k), Value::Object(m)) => m.get_mut(k)?,
                (Segment::Index(i), Value::Array(a)) => a.get_mut(*i)?,
                _ => return None,
            };
        }
        match (last, cur) {
            (Segment::Key(k), Value::Object(m)) => m.shift_remove(k),
            (Segment::Index(i), Value::Array(a)) if *i < a.len() => Some(a.remove(*i)),
            _ => None,
        }
    }

    fn shape_error(&self, n: usize, seg: &Segment, found: &Value) -> PathError {
        let at = JsonPath {
            segments: self.segments[..n].to_vec(),
        };
        PathError::Shape {
            path: self.to_string(),
            at: if n == 0 {
                "(root)".into()
            } else {
                at.to_string()
            },
            found: kind_of(found),
            wanted: match seg {
                Segment::Key(_) => "object",
                Segment::Index(_) => "array",
            },
        }
    }
}

impl std::fmt::Display for JsonPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (n, seg) in self.segments.iter().enumerate() {
            match seg {
                Segment::Key(k) if n == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> JsonPath {
        JsonPath::parse(s).unwrap()
    }

    #[test]
    fn parses_keys_and_indexes() {
        assert_eq!(
            p("a.b[2].c").segments(),
            &[
                Segment::Key("a".into()),
                Segment::Key("b".into()),
                Segment::Index(2),
                Segment::Key("c".into())
            ]
        );
        assert_eq!(p("items[0][1]").to_string(), "items[0][1]");
    }

    #[test]
    fn rejects_bad_paths() {
        for bad in ["", ".a", "a.", "a..b", "a[", "a[-1]", "a[x]", "a]", "a[0]b"] {
            assert!(JsonPath::parse(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn gets_sets_and_removes() {
        let mut doc = json!({});
        p("user.address.city")
            .set(&mut doc, json!("Ghent"))
            .unwrap();
        p("items[0].sku").set(&mut doc, json!("a")).unwrap();
        p("items[1]").set(&mut doc, json!("b")).unwrap();
        assert_eq!(
            doc,
            json!({"user": {"address": {"city": "Ghent"}}, "items": [{"sku": "a"}, "b"]})
        );
        assert_eq!(p("items[1]").get(&doc), Some(&json!("b")));
        assert_eq!(p("user.nope").get(&doc), None);
        assert_eq!(p("items[1]").remove(&mut doc), Some(json!("b")));
        assert_eq!(
            p("user.address").remove(&mut doc),
            Some(json!({"city": "Ghent"}))
        );
        assert_eq!(p("user.address").remove(&mut doc), None);
    }

    #[test]
    fn refuses_writes_through_scalars_and_gaps() {
        let mut doc = json!({"name": "x", "list": []});
        let e = p("name.first").set(&mut doc, json!(1)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot write `name.first`: `name` holds a string, not an object"
        );
        let e = p("list[3]").set(&mut doc, json!(1)).unwrap_err();
        assert!(e.to_string().contains("more than one past the end"), "{e}");
        assert_eq!(doc, json!({"name": "x", "list": []}));
    }
}
