//! Parses a code action's script natively, wrapped exactly as the JavaScript
//! runner wraps it, so `sandbot validate` finds syntax errors before a
//! conversation does.

use boa_ast::scope::Scope;
use boa_interner::Interner;
use boa_parser::{Parser, Source};

/// Must match `guest-sdk/js-runner/src/drive.rs`.
const PREFIX: &str = "(async function () {";
const SUFFIX: &str = "\n})()";

/// `Err` with the parser's message and the line/column in the user's script.
pub fn check(script: &str) -> Result<(), String> {
    match parse(script) {
        Ok(()) => Ok(()),
        // The lexer reports an unterminated literal without a position: the
        // line at which prefixes of the script start failing to lex is it,
        // found by bisection (a handful of parses, not one per line).
        Err(boa_parser::Error::Lex {
            err: boa_parser::lexer::Error::IO(io),
        }) => {
            let lines: Vec<&str> = script.lines().collect();
            let fails = |n: usize| {
                matches!(
                    parse(&lines[..n].join("\n")),
                    Err(boa_parser::Error::Lex { .. })
                )
            };
            let (mut lo, mut hi) = (1, lines.len().max(1));
            while lo < hi {
                let mid = (lo + hi) / 2;
                if fails(mid) {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            Err(format!("{io} at line {hi}"))
        }
        Err(e) => Err(shift_line_one(&describe(&e))),
    }
}

/// A syntax error at a place in the user's script (1-based), for editors.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// [`check`]'s error with its place; an error without one (the script ends
/// too early) is put at the end of the script.
pub fn diagnose(script: &str) -> Option<Diagnostic> {
    let message = check(script).err()?;
    let number = |after: &str| number_after(&message, after);
    let last = script.lines().count().max(1);
    let line = number("line ").unwrap_or(last).clamp(1, last);
    let column = number(", col ").unwrap_or_else(|| {
        if number("line ").is_some() {
            1
        } else {
            script.lines().last().map_or(1, |l| l.chars().count() + 1)
        }
    });
    Some(Diagnostic {
        line,
        column,
        message,
    })
}

/// The number right after the first `after` in `message` (`line 3` → 3).
pub fn number_after(message: &str, after: &str) -> Option<usize> {
    let at = message.find(after)? + after.len();
    message[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()
}

fn parse(script: &str) -> Result<(), boa_parser::Error> {
    let source = format!("{PREFIX}{script}{SUFFIX}");
    let mut interner = Interner::default();
    Parser::new(Source::from_bytes(source.as_bytes()))
        .parse_script(&Scope::new_global(), &mut interner)
        .map(drop)
}

/// The parser's message; lexer errors get their position added.
fn describe(e: &boa_parser::Error) -> String {
    match e {
        boa_parser::Error::Lex {
            err: boa_parser::lexer::Error::Syntax(msg, pos),
        } => format!(
            "{msg} at line {}, col {}",
            pos.line_number(),
            pos.column_number()
        ),
        other => other.to_string(),
    }
}

/// Boa reports `line L, col C`; on line 1 the wrapper's prefix shifts columns.
fn shift_line_one(message: &str) -> String {
    let Some(at) = message.find("line 1, col ") else {
        return message.to_string();
    };
    let digits: String = message[at + 12..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let Ok(col) = digits.parse::<usize>() else {
        return message.to_string();
    };
    let fixed = col.saturating_sub(PREFIX.len()).max(1);
    format!(
        "{}line 1, col {fixed}{}",
        &message[..at],
        &message[at + 12 + digits.len()..]
    )
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn diagnostics_have_a_line_and_column() {
        use super::diagnose;
        assert_eq!(diagnose("return 1;"), None);
        let d = diagnose("let a = 1;\nlet b = ;\n").unwrap();
        assert_eq!((d.line, d.column), (2, 9), "{d:?}");
        let d = diagnose("x = {;").unwrap();
        assert_eq!((d.line, d.column), (1, 6), "{d:?}");
        let d = diagnose("say('x');\nsay(\"open);\n").unwrap();
        assert_eq!(d.line, 2, "{d:?}");
        // Found by bisection in a long script, on each line.
        let long: Vec<String> = (0..300).map(|i| format!("say('line {i}');")).collect();
        for at in [0, 1, 137, 299] {
            let mut lines = long.clone();
            lines[at] = "say(\"open);".into();
            let d = diagnose(&lines.join("\n")).unwrap();
            assert_eq!(d.line, at + 1, "{d:?}");
        }
        let d = diagnose("if (a) {\n  say(1);\n").unwrap();
        assert_eq!(d.line, 2, "{d:?}");
    }

    #[test]
    fn top_level_await_parses_and_syntax_errors_name_the_line() {
        assert!(check("const r = await fetch('x');\nreturn r;").is_ok());
        let e = check("let a = 1;\nlet = ;\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        let e = check("say('x');\nsay(\"open);\n").unwrap_err();
        assert!(e.contains("unterminated string literal at line 2"), "{e}");
        let e = check("x = {;").unwrap_err();
        assert!(e.contains("line 1, col 6"), "{e}");
    }
}
