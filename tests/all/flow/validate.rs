//! `sandbot validate` as data: each folder in `tests/cases/validate/` is a bot
//! with `expected.txt`, the problems it must report (one per line, in order).
//! The example bots must validate clean, and the published schema must match
//! the Rust types.

use sandbot::flow::Bot;

use crate::common::repo;

#[test]
fn broken_bots_report_every_problem_with_file_and_path() {
    let root = repo().join("tests/cases/validate");
    let mut seen = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        let expected = std::fs::read_to_string(dir.join("expected.txt")).unwrap();
        let problems = match Bot::load(&dir) {
            Ok(_) => panic!("{} validated, but expected problems", dir.display()),
            Err(p) => p,
        };
        let got: String = problems.0.iter().map(|p| format!("  {p}\n")).collect();
        assert_eq!(got, expected, "{}", dir.display());
        seen += 1;
    }
    assert!(seen > 0);
}

#[test]
fn the_example_bots_validate_clean() {
    for name in ["meetups", "shop"] {
        let bot = Bot::load(&repo().join("examples/bots").join(name))
            .unwrap_or_else(|p| panic!("{name}: {p}"));
        assert_eq!(bot.id(), name);
    }
}

#[test]
fn the_published_schema_matches_the_types() {
    let path = repo().join("docs/bot.schema.json");
    let published: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        published,
        sandbot::flow::schema(),
        "regenerate with `sandbot schema > docs/bot.schema.json`"
    );
}
