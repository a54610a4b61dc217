//! Text for what a channel cannot show: `addHtml` as the text a reader sees
//! (tags dropped, line breaks kept, links written out), `addIframe` as its
//! link. Channels that show only text (SMS, the Messenger-like webhook) send
//! these instead of raw markup or an empty message.

use serde_json::Value;

/// Block elements: their start and end break the line.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "header",
    "footer",
    "ul",
    "ol",
    "table",
    "tr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "pre",
];

/// Elements whose content is not text.
const HIDDEN: &[&str] = &["script", "style", "template", "head", "title"];

/// The text of `html` as a reader sees it: tags dropped (scripts and styles
/// with their content), `<br>` and block ends as line breaks, list items as
/// `• `, a link's address after its text, entities decoded, runs of white
/// space as one space.
pub fn html_text(html: &str) -> String {
    let mut out = String::new();
    let mut links: Vec<Option<String>> = Vec::new();
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        push_text(&mut out, &rest[..lt]);
        rest = &rest[lt..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        let Some(gt) = rest.find('>') else {
            // A lone `<` is text.
            push_text(&mut out, rest);
            rest = "";
            break;
        };
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if !closing && HIDDEN.contains(&name.as_str()) {
            let end = format!("</{name}");
            let lower = rest.to_ascii_lowercase();
            rest = lower
                .find(&end)
                .and_then(|at| rest[at..].find('>').map(|gt| &rest[at + gt + 1..]))
                .unwrap_or("");
            continue;
        }
        match (name.as_str(), closing) {
            ("br", _) => newline(&mut out),
            ("li", false) => {
                newline(&mut out);
                out.push_str("• ");
            }
            ("a", false) => links.push(attribute(tag, "href")),
            ("a", true) => {
                if let Some(Some(href)) = links.pop()
                    && !out.ends_with(href.as_str())
                {
                    out.push_str(&format!(" ({href})"));
                }
            }
            (name, _) if BLOCKS.contains(&name) => newline(&mut out),
            _ => {}
        }
    }
    push_text(&mut out, rest);
    let lines: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines.join("\n")
}

/// The text fallback of an `html` or `iframe` message; `None` for others.
pub fn fallback(message: &Value) -> Option<String> {
    let config = &message["config"];
    match message["type"].as_str()? {
        "html" => Some(html_text(config["html"].as_str().unwrap_or_default())),
        "iframe" => Some(config["url"].as_str().unwrap_or_default().to_string()),
        _ => None,
    }
}

fn newline(out: &mut String) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
}

/// Text between tags: entities decoded, white space collapsed.
fn push_text(out: &mut String, raw: &str) {
    for c in decode(raw).chars() {
        if c.is_whitespace() && c != '\u{a0}' {
            if !out.is_empty() && !out.ends_with([' ', '\n']) {
                out.push(' ');
            }
        } else {
            out.push(if c == '\u{a0}' { ' ' } else { c });
        }
    }
}

/// `name="value"` (or `'value'`, or bare) of a start tag.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find(name) {
        let start = from + at;
        from = start + name.len();
        let before_ok = lower[..start].ends_with(|c: char| c.is_whitespace());
        let after = lower[from..].trim_start();
        if !before_ok || !after.starts_with('=') {
            continue;
        }
        let value = tag[tag.len() - after.len() + 1..].trim_start();
        let v = match value.chars().next()? {
            q @ ('"' | '\'') => value[1..].split(q).next()?,
            _ => value.split(|c: char| c.is_whitespace()).next()?,
        };
        return Some(decode(v));
    }
    None
}

/// HTML character references: the named ones text needs, and numeric ones.
fn decode(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest.find(';').filter(|&e| e <= 10);
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                "nbsp" => '\u{a0}',
                _ => {
                    let n = name.strip_prefix('#')?;
                    let code = match n.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => n.parse().ok()?,
                    };
                    char::from_u32(code)?
                }
            };
            Some((c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn html_as_a_reader_sees_it() {
        assert_eq!(html_text("<b>Bold</b> and <i>it</i>"), "Bold and it");
        assert_eq!(
            html_text("<p>One</p><p>Two<br>three</p>"),
            "One\nTwo\nthree"
        );
        assert_eq!(html_text("<ul><li>a</li><li>b</li></ul>"), "• a\n• b");
        assert_eq!(
            html_text(r#"See <a href="https://x.example/a?b=1&amp;c=2">our site</a>."#),
            "See our site (https://x.example/a?b=1&c=2)."
        );
        assert_eq!(
            html_text("<a href='https://x.example'>https://x.example</a>"),
            "https://x.example"
        );
        assert_eq!(
            html_text("<script>alert(1)</script><style>p{}</style>ok<!-- no -->"),
            "ok"
        );
        assert_eq!(
            html_text("Fish &amp; chips &lt;3 &#233;&#x20AC;&nbsp;!"),
            "Fish & chips <3 é€ !"
        );
        assert_eq!(html_text("a < b"), "a < b");
        assert_eq!(html_text("  lots \n of\t space  "), "lots of space");
    }

    #[test]
    fn fallbacks() {
        let html = json!({"type": "html", "config": {"html": "<b>Hi</b>", "withBalloon": true}});
        assert_eq!(fallback(&html).as_deref(), Some("Hi"));
        let iframe =
            json!({"type": "iframe", "config": {"url": "https://map.example", "height": 300}});
        assert_eq!(fallback(&iframe).as_deref(), Some("https://map.example"));
        assert_eq!(fallback(&json!({"type": "text", "config": {}})), None);
    }
}
