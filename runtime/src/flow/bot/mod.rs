//! A loaded bot: its blocks indexed by id and label, system blocks, NLP model,
//! scripts and plugins. [`Bot::load`] reads a folder and reports every problem
//! at once.

pub mod intl;
pub mod model;
pub mod problem;
pub mod script_check;
mod validate;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use regex::Regex;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::flow::understand::input;
use crate::flow::understand::nlp::Nlp;
use model::{Block, BlockKind, BotFile, SystemBlock};
use problem::{Problem, Problems};

/// A plugin shipped in `plugins/`.
#[derive(Clone)]
pub struct Plugin {
    /// SHA-256 of the bytes: the key runners cache the compiled module under.
    pub key: String,
    pub bytes: Arc<[u8]>,
}

/// Where each block was defined, for problems found after parsing.
#[derive(Debug, Clone)]
pub struct Origin {
    pub file: String,
    pub path: String,
}

pub struct Bot {
    pub file: BotFile,
    pub dir: PathBuf,
    pub blocks: Vec<Block>,
    pub origins: Vec<Origin>,
    index: HashMap<String, usize>,
    system: HashMap<SystemBlock, usize>,
    pub nlp: Nlp,
    /// `actions/NAME.js` by file name.
    pub scripts: HashMap<String, Arc<str>>,
    /// `plugins/NAME.wasm` by file name.
    pub plugins: HashMap<String, Plugin>,
    /// Compiled `regex` input patterns by block index.
    pub patterns: HashMap<usize, Regex>,
    /// SHA-256 over every file the bot was loaded from.
    pub fingerprint: String,
}

impl Bot {
    pub fn id(&self) -> &str {
        &self.file.id
    }

    pub fn primary_language(&self) -> &str {
        self.file
            .languages
            .first()
            .map(String::as_str)
            .unwrap_or("en")
    }

    /// The bot's language for `preferred`: the one offered, else the one of
    /// its region's language (`nl-BE`, `nl_BE` → `nl`), else the primary one.
    pub fn language<'a>(&'a self, preferred: Option<&'a str>) -> &'a str {
        let offered = |want: &str| {
            self.file
                .languages
                .iter()
                .find(|l| l.eq_ignore_ascii_case(want))
                .map(String::as_str)
        };
        preferred
            .and_then(|p| offered(p).or_else(|| offered(p.split(['-', '_']).next().unwrap_or(p))))
            .unwrap_or(self.primary_language())
    }

    /// A block by id or label.
    pub fn find(&self, id_or_label: &str) -> Option<usize> {
        self.index.get(id_or_label).copied()
    }

    pub fn system(&self, which: SystemBlock) -> usize {
        self.system[&which]
    }

    /// The providers the bot's offload actions name.
    pub fn offload_providers(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .blocks
            .iter()
            .filter_map(|b| match &b.kind {
                crate::flow::bot::model::BlockKind::Action(a) => a.offload.as_ref(),
                _ => None,
            })
            .map(|o| o.provider.as_str())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The system block, when the bot has one (offloading blocks are optional).
    pub fn has_system(&self, which: SystemBlock) -> Option<usize> {
        self.system.get(&which).copied()
    }

    /// Reads and checks a bot folder.
    pub fn load(dir: &Path) -> Result<Bot, Problems> {
        let mut problems = Vec::new();
        let mut files = Reader {
            dir,
            hasher: Sha256::new(),
        };
        let mut read = |rel: &str, problems: &mut Vec<Problem>| files.read(rel, problems);
        let bot_file = read("bot.yaml", &mut problems).and_then(|bytes| {
            parse_yaml::<BotFile>(&bytes, "bot.yaml")
                .map_err(|p| problems.push(p))
                .ok()
        });

        let mut blocks = Vec::new();
        let mut origins = Vec::new();
        let flow_files = list(dir, "flows", &["yaml", "yml"]);
        if flow_files.is_empty() {
            problems.push(
                Problem::new("flows/", "", "no flow files")
                    .hint("add flows/main.yaml with a `blocks:` list"),
            );
        }
        for rel in &flow_files {
            let Some(bytes) = read(rel, &mut problems) else {
                continue;
            };
            let value: Value = match parse_yaml(&bytes, rel) {
                Ok(v) => v,
                Err(p) => {
                    problems.push(p);
                    continue;
                }
            };
            let Some(items) = value.get("blocks").and_then(Value::as_array) else {
                problems.push(Problem::new(
                    rel,
                    "",
                    "expected a mapping with a `blocks:` list",
                ));
                continue;
            };
            if let Some(extra) = value
                .as_object()
                .and_then(|m| m.keys().find(|k| *k != "blocks"))
            {
                problems.push(
                    Problem::new(rel, extra.as_str(), format!("unknown key `{extra}`"))
                        .hint("a flow file has only `blocks:`"),
                );
            }
            for (i, item) in items.iter().enumerate() {
                let id = item.get("id").and_then(Value::as_str).unwrap_or("?");
                let path = format!("blocks[{i}] ({id})");
                match serde_json::from_value::<Block>(item.clone()) {
                    Ok(block) => {
                        blocks.push(block);
                        origins.push(Origin {
                            file: rel.clone(),
                            path,
                        });
                    }
                    Err(e) => {
                        problems.push(Problem::new(rel, path, e.to_string()).hint(block_hint(item)))
                    }
                }
            }
        }

        let mut scripts = HashMap::new();
        for rel in list(dir, "actions", &["js"]) {
            if let Some(bytes) = read(&rel, &mut problems) {
                match String::from_utf8(bytes) {
                    Ok(text) => {
                        scripts.insert(file_name(&rel), Arc::from(text));
                    }
                    Err(_) => problems.push(Problem::new(&rel, "", "not UTF-8 text")),
                }
            }
        }
        let mut plugins = HashMap::new();
        for rel in list(dir, "plugins", &["wasm"]) {
            if let Some(bytes) = read(&rel, &mut problems) {
                if !bytes.starts_with(b"\0asm") {
                    problems.push(Problem::new(&rel, "", "not a WebAssembly file").hint("build it with `cargo build --target wasm32-wasip1` (README: Write a plugin)"));
                    continue;
                }
                let key = hex::encode(Sha256::digest(&bytes));
                plugins.insert(
                    file_name(&rel),
                    Plugin {
                        key,
                        bytes: Arc::from(bytes),
                    },
                );
            }
        }
        let fingerprint = hex::encode(files.hasher.finalize());

        let Some(file) = bot_file else {
            return Err(Problems(problems));
        };
        let mut bot = Bot {
            nlp: Nlp::new(&file.nlp),
            file,
            dir: dir.to_path_buf(),
            blocks,
            origins,
            index: HashMap::new(),
            system: HashMap::new(),
            scripts,
            plugins,
            patterns: HashMap::new(),
            fingerprint,
        };
        bot.build_index(&mut problems);
        validate::check(&bot, &mut problems);
        if problems.is_empty() {
            Ok(bot)
        } else {
            Err(Problems(problems))
        }
    }

    fn build_index(&mut self, problems: &mut Vec<Problem>) {
        for (i, block) in self.blocks.iter().enumerate() {
            let origin = &self.origins[i];
            for key in std::iter::once(&block.id).chain(&block.label) {
                if let Some(prev) = self.index.insert(key.clone(), i) {
                    let other = &self.origins[prev];
                    problems.push(
                        Problem::new(
                            &origin.file,
                            &origin.path,
                            format!("`{key}` is already used by {} {}", other.file, other.path),
                        )
                        .hint("block ids and labels must be unique in a bot"),
                    );
                }
            }
            if let Some(sys) = block.system
                && let Some(prev) = self.system.insert(sys, i)
            {
                let other = &self.origins[prev];
                problems.push(Problem::new(
                    &origin.file,
                    &origin.path,
                    format!(
                        "a second `{}` system block (the first is {} {})",
                        sys.as_str(),
                        other.file,
                        other.path
                    ),
                ));
            }
            if let BlockKind::Input(spec) = &block.kind
                && let Some(p) = &spec.pattern
            {
                match input::whole_match(p) {
                    Ok(re) => {
                        self.patterns.insert(i, re);
                    }
                    Err(e) => problems.push(Problem::new(
                        &origin.file,
                        format!("{}.pattern", origin.path),
                        format!("invalid regular expression: {e}"),
                    )),
                }
            }
        }
        for sys in SystemBlock::REQUIRED {
            if !self.system.contains_key(&sys) {
                problems.push(
                    Problem::new(
                        "flows/",
                        "",
                        format!("missing system block `{}`", sys.as_str()),
                    )
                    .hint(format!("add a block with `system: {}`", sys.as_str())),
                );
            }
        }
    }
}

/// The fingerprint [`Bot::load`] would compute for `dir`, reading the same
/// files in the same order without parsing them (to notice a change cheaply).
pub fn fingerprint(dir: &Path) -> String {
    let mut files = Reader {
        dir,
        hasher: Sha256::new(),
    };
    let mut ignored = Vec::new();
    for rel in bot_files(dir) {
        files.read(&rel, &mut ignored);
    }
    hex::encode(files.hasher.finalize())
}

/// The files of a bot folder [`Bot::load`] reads, in its order, as
/// relative paths (`bot.yaml` whether or not it exists).
pub fn bot_files(dir: &Path) -> Vec<String> {
    std::iter::once("bot.yaml".to_string())
        .chain(list(dir, "flows", &["yaml", "yml"]))
        .chain(list(dir, "actions", &["js"]))
        .chain(list(dir, "plugins", &["wasm"]))
        .filter(|rel| rel != "bot.yaml" || dir.join(rel).is_file())
        .collect()
}

/// Reads bot files, hashing each into the bot's fingerprint.
struct Reader<'d> {
    dir: &'d Path,
    hasher: Sha256,
}

impl Reader<'_> {
    fn read(&mut self, rel: &str, problems: &mut Vec<Problem>) -> Option<Vec<u8>> {
        match std::fs::read(self.dir.join(rel)) {
            Ok(bytes) => {
                self.hasher.update(rel.as_bytes());
                self.hasher.update((bytes.len() as u64).to_le_bytes());
                self.hasher.update(&bytes);
                Some(bytes)
            }
            Err(e) => {
                problems.push(Problem::new(rel, "", format!("cannot read: {e}")));
                None
            }
        }
    }
}

/// Flow-style nesting (`[`, `{`) a bot file may have, at most (the parser
/// itself stops at 128 levels of any kind): far more than
/// any bot needs, and the YAML parser's time grows with the square of it (a
/// 100,000-deep file took 40 s).
const MAX_NESTING: usize = 100;

/// The line where flow-style nesting first goes past `max` (brackets inside
/// quotes and comments do not count).
fn too_deep(bytes: &[u8], max: usize) -> Option<usize> {
    let (mut depth, mut line) = (0usize, 1usize);
    let mut quote: Option<u8> = None;
    let mut comment = false;
    let mut prev = b'\n';
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\n' {
            line += 1;
            comment = false;
        } else if comment {
        } else if let Some(q) = quote {
            if c == b'\\' && q == b'"' {
                i += 1;
            } else if c == q {
                quote = None;
            }
        } else {
            match c {
                b'"' | b'\'' if !prev.is_ascii_alphanumeric() => quote = Some(c),
                b'#' if prev.is_ascii_whitespace() => comment = true,
                b'[' | b'{' => {
                    depth += 1;
                    if depth > max {
                        return Some(line);
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        prev = c;
        i += 1;
    }
    None
}

fn parse_yaml<T: serde::de::DeserializeOwned>(bytes: &[u8], rel: &str) -> Result<T, Problem> {
    if let Some(line) = too_deep(bytes, MAX_NESTING) {
        return Err(Problem::new(
            rel,
            format!("line {line}"),
            format!("nested more than {MAX_NESTING} levels deep"),
        ));
    }
    serde_norway::from_slice(bytes).map_err(|e| {
        let path = e
            .location()
            .map(|l| format!("line {}, column {}", l.line(), l.column()))
            .unwrap_or_default();
        Problem::new(rel, path, e.to_string())
    })
}

/// A hint for a block that does not parse, from its `type`.
fn block_hint(item: &Value) -> String {
    match item.get("type").and_then(Value::as_str) {
        None => "every block needs `id` and `type` (message, condition, input or action)".into(),
        Some(t) => format!("see the `{t}` block in docs/bot.schema.json or the README"),
    }
}

/// Files in `dir/sub` with one of `exts`, as `sub/name`, sorted.
fn list(dir: &Path, sub: &str, exts: &[&str]) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
        return Vec::new();
    };
    let mut files: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| exts.iter().any(|x| n.ends_with(&format!(".{x}"))))
        .map(|n| format!("{sub}/{n}"))
        .collect();
    files.sort();
    files
}

fn file_name(rel: &str) -> String {
    rel.rsplit('/').next().unwrap_or(rel).to_string()
}

#[cfg(test)]
mod nesting_tests {
    use super::*;

    #[test]
    fn nesting_is_bounded_both_ways() {
        let nested = |n: usize| format!("a: {}1{}\n", "[".repeat(n), "]".repeat(n));
        assert_eq!(too_deep(nested(MAX_NESTING).as_bytes(), MAX_NESTING), None);
        assert_eq!(
            too_deep(nested(MAX_NESTING + 1).as_bytes(), MAX_NESTING),
            Some(1)
        );
        // Brackets in quotes and comments are text.
        let quoted = format!(
            "a: \"{}\"\nb: '{}' # {}\n",
            "[".repeat(500),
            "{".repeat(500),
            "[".repeat(500)
        );
        assert_eq!(too_deep(quoted.as_bytes(), MAX_NESTING), None);
        let e = parse_yaml::<Value>(
            format!("ok: 1\n{}", nested(100_000)).as_bytes(),
            "flows/deep.yaml",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "flows/deep.yaml: line 2: nested more than 100 levels deep"
        );
        let r = parse_yaml::<Value>(nested(MAX_NESTING).as_bytes(), "f.yaml");
        assert!(r.is_ok(), "{:?}", r.err().map(|e| e.to_string()));
    }
}
