//! Checks on a parsed bot that serde cannot make: go-tos that lead nowhere,
//! missing files, scripts that do not parse, templates, regexes, shapes.

use regex::Regex;
use serde_json::Value;

use crate::flow::bot::Bot;
use crate::flow::bot::model::{
    ActionSpec, BlockKind, ButtonSpec, Goto, MessageSpec, Operator, SystemBlock,
};
use crate::flow::bot::problem::Problem;
use crate::flow::bot::script_check;
use crate::flow::say::template;
use crate::flow::say::text::Text;
use crate::flow::understand::word_similarity;

/// Appends every problem of `bot` to `out`.
pub fn check(bot: &Bot, out: &mut Vec<Problem>) {
    let mut c = Checker { bot, out };
    if let Some(s) = &bot.file.events.silence_detected {
        let at = "events.silenceDetected";
        c.target("bot.yaml", &format!("{at}.goto"), &s.goto);
        if !(1..=1440).contains(&s.minutes) {
            c.out.push(Problem::new(
                "bot.yaml",
                format!("{at}.minutes"),
                format!("{} minutes: between 1 and 1440", s.minutes),
            ));
        }
    }
    for (i, e) in bot.file.events.variables_changed.iter().enumerate() {
        let at = format!("events.variablesChanged[{i}]");
        c.target("bot.yaml", &format!("{at}.goto"), &e.goto);
        if e.variables.is_empty() {
            c.out.push(Problem::new(
                "bot.yaml",
                format!("{at}.variables"),
                "list at least one session path to watch",
            ));
        }
        for (j, v) in e.variables.iter().enumerate() {
            c.path("bot.yaml", &format!("{at}.variables[{j}]"), v);
        }
    }
    for (i, intent) in bot.file.nlp.intents.iter().enumerate() {
        let at = format!("nlp.intents[{i}] ({})", intent.name);
        c.target("bot.yaml", &format!("{at}.goto"), &intent.goto);
        let nlp = &bot.file.nlp;
        let system: Vec<String> = nlp
            .system_entities
            .iter()
            .map(|s| format!("sys.{}", crate::flow::understand::nlp::system_name(*s)))
            .collect();
        let known: Vec<&str> = nlp
            .entities
            .iter()
            .map(|e| e.name())
            .chain(system.iter().map(String::as_str))
            .collect();
        for (lang, list) in &intent.expressions {
            for (n, e) in list.iter().enumerate() {
                for slot in
                    crate::flow::understand::nlp::slot_names(e).filter(|s| !known.contains(s))
                {
                    c.out.push(
                        Problem::new(
                            "bot.yaml",
                            format!("{at}.expressions.{lang}[{n}]"),
                            format!("`{{{slot}}}` names no entity of this bot"),
                        )
                        .hint(format!("entities: {}", known.join(", "))),
                    );
                }
            }
        }
        for lang in intent.expressions.keys() {
            if !bot.file.languages.contains(lang) {
                c.out.push(
                    Problem::new(
                        "bot.yaml",
                        format!("{at}.expressions.{lang}"),
                        format!("language `{lang}` is not in `languages`"),
                    )
                    .hint(format!("languages: {}", bot.file.languages.join(", "))),
                );
            }
        }
    }
    for (i, e) in bot.file.nlp.entities.iter().enumerate() {
        if let crate::flow::bot::model::EntityDef::Regex { pattern, .. } = e
            && let Err(err) = Regex::new(pattern)
        {
            c.out.push(Problem::new(
                "bot.yaml",
                format!("nlp.entities[{i}] ({}).pattern", e.name()),
                format!("invalid regular expression: {err}"),
            ));
        }
    }
    for (key, value) in [
        ("intentThreshold", bot.file.nlp.intent_threshold),
        ("entityThreshold", bot.file.nlp.entity_threshold),
    ] {
        if !(0.0..=1.0).contains(&value) {
            c.out.push(Problem::new(
                "bot.yaml",
                format!("nlp.{key}"),
                format!("{value} is not between 0 and 1"),
            ));
        }
    }
    for (i, block) in bot.blocks.iter().enumerate() {
        let o = &bot.origins[i];
        c.block(&o.file, &o.path, &block.kind);
    }
}

struct Checker<'a> {
    bot: &'a Bot,
    out: &'a mut Vec<Problem>,
}

impl Checker<'_> {
    fn block(&mut self, file: &str, at: &str, kind: &BlockKind) {
        match kind {
            BlockKind::Message { messages, goto } => {
                if messages.is_empty() {
                    self.out.push(Problem::new(
                        file,
                        format!("{at}.messages"),
                        "a message block needs at least one message",
                    ));
                }
                for (j, m) in messages.iter().enumerate() {
                    self.message(file, &format!("{at}.messages[{j}]"), m);
                }
                self.goto(file, &format!("{at}.goto"), goto.as_ref());
            }
            BlockKind::Condition { rules, otherwise } => {
                for (j, rule) in rules.iter().enumerate() {
                    let rat = format!("{at}.rules[{j}]");
                    if rule.conditions.is_empty() {
                        self.out.push(Problem::new(
                            file,
                            format!("{rat}.conditions"),
                            "a rule needs at least one condition",
                        ));
                    }
                    for (k, cond) in rule.conditions.iter().enumerate() {
                        let cat = format!("{rat}.conditions[{k}]");
                        self.path(file, &format!("{cat}.variable"), &cond.variable);
                        if cond.operator == Operator::Matches
                            && let Value::String(p) = &cond.value
                            && !p.contains('{')
                            && let Err(e) = Regex::new(p)
                        {
                            self.out.push(Problem::new(
                                file,
                                format!("{cat}.value"),
                                format!("invalid regular expression: {e}"),
                            ));
                        }
                        if !matches!(cond.operator, Operator::Exists | Operator::NotExists)
                            && cond.value.is_null()
                        {
                            self.out.push(
                                Problem::new(
                                    file,
                                    format!("{cat}.value"),
                                    format!(
                                        "operator `{}` needs a `value`",
                                        serde_json::to_value(cond.operator)
                                            .unwrap_or_default()
                                            .as_str()
                                            .unwrap_or_default()
                                    ),
                                )
                                .hint("only exists and notExists take no value"),
                            );
                        }
                    }
                    self.goto(file, &format!("{rat}.goto"), Some(&rule.goto));
                }
                self.goto(file, &format!("{at}.else"), otherwise.as_ref());
            }
            BlockKind::Input(spec) => {
                self.path(file, &format!("{at}.variable"), &spec.variable);
                if spec.variable.starts_with("internal") {
                    self.out.push(Problem::new(
                        file,
                        format!("{at}.variable"),
                        "`internal.*` is read-only",
                    ));
                }
                self.text(file, &format!("{at}.question"), &spec.question);
                if let Some(r) = &spec.retry {
                    self.text(file, &format!("{at}.retry"), r);
                }
                use crate::flow::bot::model::InputType;
                if spec.input_type == InputType::Choice && spec.options.is_empty() {
                    self.out.push(Problem::new(
                        file,
                        format!("{at}.options"),
                        "inputType `choice` needs `options`",
                    ));
                }
                if spec.input_type == InputType::Regex && spec.pattern.is_none() {
                    self.out.push(Problem::new(
                        file,
                        format!("{at}.pattern"),
                        "inputType `regex` needs `pattern`",
                    ));
                }
                if let Some(t) = &spec.on_fail {
                    self.target(file, &format!("{at}.onFail"), t);
                }
                self.goto(file, &format!("{at}.goto"), spec.goto.as_ref());
            }
            BlockKind::Action(spec) => self.action(file, at, spec),
        }
    }

    fn action(&mut self, file: &str, at: &str, spec: &ActionSpec) {
        let kinds = [
            ("code", spec.code.is_some()),
            ("api", spec.api.is_some()),
            ("plugin", spec.plugin.is_some()),
            ("set", spec.set.is_some()),
            ("clearSession", spec.clear_session),
            ("gotoVariable", spec.goto_variable.is_some()),
            ("offload", spec.offload.is_some()),
        ];
        let chosen: Vec<&str> = kinds.iter().filter(|k| k.1).map(|k| k.0).collect();
        if chosen.len() != 1 {
            self.out.push(Problem::new(file, at, format!("an action block needs exactly one of code, api, plugin, set, clearSession, gotoVariable, offload (found {})", if chosen.is_empty() { "none".to_string() } else { chosen.join(", ") })));
        }
        if let Some(name) = &spec.code {
            match self.bot.scripts.get(name) {
                None => self.out.push(
                    Problem::new(
                        file,
                        format!("{at}.code"),
                        format!("no script `actions/{name}`"),
                    )
                    .hint(self.suggest(name, self.bot.scripts.keys())),
                ),
                Some(src) => {
                    if let Err(e) = script_check::check(src) {
                        self.out.push(Problem::new(
                            &format!("actions/{name}"),
                            "",
                            format!("the script does not parse: {e}"),
                        ));
                    }
                }
            }
        }
        if spec.offload.is_some() {
            let missing: Vec<&str> = SystemBlock::OFFLOADING
                .iter()
                .filter(|s| self.bot.has_system(**s).is_none())
                .map(|s| s.as_str())
                .collect();
            if !missing.is_empty() {
                self.out.push(
                    Problem::new(
                        file,
                        format!("{at}.offload"),
                        format!(
                            "an offload action needs the system blocks offloadingOpened, offloadingClosed and offloadingDisabled (missing: {})",
                            missing.join(", ")
                        ),
                    )
                    .hint("add a block with `system: offloadingOpened` (and the others): what the bot says in each case"),
                );
            }
            if spec.goto.is_some() {
                self.out.push(Problem::new(
                    file,
                    format!("{at}.goto"),
                    "an offload action goes to the offloading system block its provider's answer picks; it takes no `goto`",
                ));
            }
        }
        if let Some(name) = &spec.plugin
            && !self.bot.plugins.contains_key(name)
        {
            self.out.push(
                Problem::new(
                    file,
                    format!("{at}.plugin"),
                    format!("no plugin `plugins/{name}`"),
                )
                .hint(self.suggest(name, self.bot.plugins.keys())),
            );
        }
        if let Some(api) = &spec.api {
            let url = api.get("url").and_then(Value::as_str);
            if url.is_none() {
                self.out.push(Problem::new(
                    file,
                    format!("{at}.api.url"),
                    "an API action needs a `url`",
                ));
            }
            if let Some(m) = api.get("method").and_then(Value::as_str)
                && !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&m)
            {
                self.out.push(
                    Problem::new(
                        file,
                        format!("{at}.api.method"),
                        format!("unknown method `{m}`"),
                    )
                    .hint("GET, POST, PUT, PATCH or DELETE"),
                );
            }
        }
        if let Some(set) = &spec.set {
            for key in set.keys() {
                self.path(file, &format!("{at}.set.{key}"), key);
            }
        }
        if let Some(p) = &spec.goto_variable {
            self.path(file, &format!("{at}.gotoVariable"), p);
        }
        self.goto(file, &format!("{at}.goto"), spec.goto.as_ref());
    }

    fn message(&mut self, file: &str, at: &str, m: &MessageSpec) {
        let forms = [
            !m.buttons.is_empty(),
            !m.quick_replies.is_empty(),
            !m.carousel.is_empty(),
            m.media.is_some(),
        ];
        let count = forms.iter().filter(|f| **f).count();
        if count > 1 || (count == 0 && m.text.is_none()) {
            self.out.push(Problem::new(file, at, "a message is `text`, `text` with `buttons`, `text` with `quickReplies`, `carousel` or `media`").hint("split it into several messages"));
        }
        if let Some(t) = &m.text {
            self.text(file, &format!("{at}.text"), t);
        }
        if m.buttons.len() > 3 {
            self.out.push(
                Problem::new(
                    file,
                    format!("{at}.buttons"),
                    format!("{} buttons; at most 3", m.buttons.len()),
                )
                .hint("use quickReplies for more choices"),
            );
        }
        for (j, b) in m.buttons.iter().enumerate() {
            self.button(file, &format!("{at}.buttons[{j}]"), b, true);
        }
        for (j, b) in m.quick_replies.iter().enumerate() {
            self.button(file, &format!("{at}.quickReplies[{j}]"), b, false);
        }
        for (j, card) in m.carousel.iter().enumerate() {
            self.text(file, &format!("{at}.carousel[{j}].title"), &card.title);
            if card.buttons.len() > 3 {
                self.out.push(Problem::new(
                    file,
                    format!("{at}.carousel[{j}].buttons"),
                    "at most 3 buttons per card",
                ));
            }
            for (k, b) in card.buttons.iter().enumerate() {
                self.button(file, &format!("{at}.carousel[{j}].buttons[{k}]"), b, true);
            }
        }
    }

    fn button(&mut self, file: &str, at: &str, b: &ButtonSpec, links: bool) {
        self.text(file, &format!("{at}.title"), &b.title);
        let kinds = [b.goto.is_some(), b.url.is_some(), b.phone.is_some()];
        let n = kinds.iter().filter(|k| **k).count();
        if n != 1 {
            self.out.push(Problem::new(
                file,
                at,
                "a button needs exactly one of `goto`, `url`, `phone`",
            ));
        }
        if !links && (b.url.is_some() || b.phone.is_some()) {
            self.out.push(Problem::new(
                file,
                at,
                "a quick reply can only `goto` a block",
            ));
        }
        if let Some(t) = &b.goto {
            self.target(file, &format!("{at}.goto"), t);
        }
    }

    fn goto(&mut self, file: &str, at: &str, goto: Option<&Goto>) {
        if let Some(g) = goto {
            self.target(file, at, g.target());
            for key in g.set().into_iter().flat_map(|s| s.keys()) {
                self.path(file, &format!("{at}.set.{key}"), key);
            }
        }
    }

    fn target(&mut self, file: &str, at: &str, target: &str) {
        if self.bot.find(target).is_none() {
            let known = self
                .bot
                .blocks
                .iter()
                .flat_map(|b| std::iter::once(&b.id).chain(&b.label));
            let hint = self.suggest(target, known);
            self.out.push(
                Problem::new(file, at, format!("unknown block `{target}` in a go-to")).hint(hint),
            );
        }
    }

    fn path(&mut self, file: &str, at: &str, path: &str) {
        if let Err(e) = sandbot_host_api::JsonPath::parse(path) {
            self.out.push(
                Problem::new(file, at, format!("`{path}` is not a session path: {e}"))
                    .hint("paths look like `user.address.city` or `items[0]`"),
            );
        }
    }

    fn text(&mut self, file: &str, at: &str, text: &Text) {
        for s in text.all() {
            for p in template::check(s) {
                self.out.push(Problem::new(file, at, p));
            }
        }
    }

    /// "did you mean" the closest known name, else the list.
    fn suggest<'k>(&self, wanted: &str, known: impl Iterator<Item = &'k String>) -> String {
        let mut known: Vec<&String> = known.collect();
        known.sort();
        known.dedup();
        let best = known
            .iter()
            .map(|k| {
                (
                    word_similarity(&wanted.to_lowercase(), &k.to_lowercase()),
                    *k,
                )
            })
            .max_by(|a, b| a.0.total_cmp(&b.0));
        match best {
            Some((score, k)) if score >= 0.4 => format!("did you mean `{k}`?"),
            _ if known.is_empty() => "there is nothing to refer to yet".into(),
            _ => format!(
                "known: {}",
                known
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}
