//! One turn: from a user's message through the blocks until one waits for
//! input or has no go-to. Pure apart from the [`ActionRunner`]: the engine
//! loads the state before and commits the result after.

pub mod action;
pub mod condition;
pub mod engine;
pub mod events;
pub mod inbound;
pub mod offload;
pub mod postback;
pub mod script;

use sandbot_host_api::JsonPath;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::flow::bot::Bot;
use crate::flow::bot::model::{ActionSpec, BlockKind, Goto, OffloadSpec, SystemBlock};
use crate::flow::say::Renderer;
use crate::flow::say::template;
use crate::flow::turn::action::{ActionCall, ActionReport, ActionRunner};
use crate::flow::turn::inbound::{Inbound, InboundKind};
use crate::flow::turn::offload::{Offload, OffloadAnswer, OffloadRequest, Offloader};
use crate::flow::understand::input;
use crate::flow::understand::nlp::Analysis;
use crate::store::{ConversationState, Waiting};
use postback::Target;

/// Largest session (serialized), as in Chatlayer: an action that would grow
/// it past this fails and applies nothing.
pub const MAX_SESSION_BYTES: usize = 10 << 20;

/// What a turn produced.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TurnOutput {
    /// Bot messages in type/config format, postback payloads as opaque ids.
    pub messages: Vec<Value>,
    /// `{"user"}`, `{"block"}`, `{"bot"}` and `{"error"}` events in order.
    pub events: Vec<Value>,
    pub actions: Vec<ActionReport>,
    /// The session after the turn.
    pub session: Value,
    /// The block the conversation waits in, if any.
    pub waiting: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nlp: Option<Analysis>,
    /// The webhook `messageCounter` of the first message of this turn.
    pub first_message_number: u64,
    /// Transcript entries of the conversation after this turn (a cursor
    /// for what comes next).
    pub transcript_len: u64,
    /// When *Silence detected* is due after this turn, if it is armed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silence_due_ms: Option<u64>,
}

/// What a postback payload resolved to before the turn (the store is the
/// engine's business).
pub enum Resolved {
    None,
    Postback(Option<Target>),
}

pub struct Turn<'a> {
    bot: &'a Bot,
    runner: &'a dyn ActionRunner,
    version: &'a str,
    pub state: ConversationState,
    pub out: TurnOutput,
    pub postbacks: Vec<(String, Value)>,
    /// Where offload actions go (none: they go to `offloadingDisabled`).
    pub offloader: Option<&'a dyn Offloader>,
    /// Per *Variables changed* event, the watched values when it last fired
    /// (or the turn began).
    watched: crate::flow::turn::events::Watched,
    /// Blocks to go on with once an event's blocks are done.
    resume: Vec<usize>,
    /// This turn ran *Silence detected* (it does not arm it again).
    fired_silence: bool,
    /// A stale *Silence detected*: the timer to keep as it is.
    stale_silence: Option<Option<u64>>,
    /// Milliseconds in a minute of *Silence detected* (shorter in tests).
    pub minute_ms: u64,
    seed: u64,
}

type Step = Option<usize>;

impl<'a> Turn<'a> {
    pub fn new(
        bot: &'a Bot,
        runner: &'a dyn ActionRunner,
        version: &'a str,
        conversation: &str,
        state: ConversationState,
    ) -> Self {
        // Variants are picked from the conversation id and the message count:
        // varied across conversations, reproducible in a replayed script.
        let seed = conversation.bytes().fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100000001b3)
        }) ^ state.message_counter;
        let first = state.message_counter + 1;
        Turn {
            bot,
            runner,
            version,
            state,
            out: TurnOutput {
                first_message_number: first,
                ..TurnOutput::default()
            },
            postbacks: Vec::new(),
            offloader: None,
            watched: Vec::new(),
            resume: Vec::new(),
            fired_silence: false,
            stale_silence: None,
            minute_ms: 60_000,
            seed,
        }
    }

    pub async fn run(&mut self, inbound: &Inbound, resolved: Resolved) {
        self.watched = self.bot.watched(&self.state.session);
        self.prepare(inbound);
        if let InboundKind::Silence { due_ms } = inbound.kind {
            return self.silence(due_ms).await;
        }
        self.event(json!({"user": user_event(&inbound.kind)}));
        if self.bot.file.settings.disabled {
            let start = self.bot.system(SystemBlock::BotDisabled);
            return self.flow(Some(start)).await;
        }
        // A paused conversation records users' messages without answering;
        // an operator's explicit jump (REST API) still runs the flow.
        if self.state.paused && inbound.channel != "api" {
            return;
        }
        let start = match (&inbound.kind, resolved) {
            (InboundKind::Intro, _) => {
                self.state.waiting = None;
                Some(self.bot.system(SystemBlock::Introduction))
            }
            (InboundKind::Postback { payload, .. }, Resolved::Postback(None)) => {
                self.error(
                    None,
                    "unknown_postback",
                    format!("no postback `{payload}` in this bot"),
                );
                Some(self.bot.system(SystemBlock::NotUnderstood))
            }
            (_, Resolved::Postback(Some(t))) => self.jump(&t.next, &t.params),
            (InboundKind::Goto { next, params }, _) => self.jump(next, params),
            (InboundKind::Text { text }, _) => self.text(text),
            (InboundKind::Upload { url }, _) => self.answer_or_not_understood(url),
            (
                InboundKind::Location {
                    latitude,
                    longitude,
                },
                _,
            ) => self.answer_or_not_understood(&format!("{latitude},{longitude}")),
            (InboundKind::Postback { .. }, Resolved::None) => {
                Some(self.bot.system(SystemBlock::NotUnderstood))
            }
            // Handled above.
            (InboundKind::Silence { .. }, _) => None,
        };
        self.flow(start).await;
    }

    /// *Silence detected*: the event's blocks, once, if this timer is still
    /// the conversation's (a later turn replaced or cancelled it otherwise).
    async fn silence(&mut self, due_ms: u64) {
        self.fired_silence = true;
        let Some(s) = &self.bot.file.events.silence_detected else {
            return;
        };
        if self.state.silence_due_ms != Some(due_ms) || self.state.paused {
            // Stale: a later turn set the timer there is now; leave it.
            self.stale_silence = Some(self.state.silence_due_ms);
            return;
        }
        self.event(json!({"event": {"silenceDetected": s.minutes}}));
        let start = self.resolve(&s.goto);
        self.flow(start).await;
    }

    /// The result; the session is the turn's last.
    pub fn finish(mut self) -> (ConversationState, TurnOutput, Vec<(String, Value)>) {
        // Waiting for input arms *Silence detected* (a user's message, or
        // the event itself, replaces the timer).
        self.state.silence_due_ms =
            match (&self.bot.file.events.silence_detected, self.stale_silence) {
                (_, Some(kept)) => kept,
                (Some(s), None)
                    if self.state.waiting.is_some()
                        && !self.state.paused
                        && !self.fired_silence =>
                {
                    Some(crate::store::now_ms() + s.minutes * self.minute_ms)
                }
                _ => None,
            };
        self.out.session = self.state.session.clone();
        self.out.waiting = self.state.waiting.as_ref().map(|w| w.block.clone());
        (self.state, self.out, self.postbacks)
    }

    // --- before the blocks ---------------------------------------------------

    fn prepare(&mut self, inbound: &Inbound) {
        if !self.state.session.is_object() {
            self.state.session = json!({});
        }
        let session = self.state.session.as_object_mut().expect("an object");
        for (k, v) in &inbound.session_data {
            if k != "internal" {
                session.insert(k.clone(), v.clone());
            }
        }
        let bot = self.bot;
        let internal = internal_mut(&mut self.state.session);
        for (k, v) in &inbound.internal {
            internal.insert(k.clone(), v.clone());
        }
        internal.insert("botId".into(), json!(bot.id()));
        internal.insert("sessionId".into(), json!(inbound.conversation));
        internal.insert("version".into(), json!(self.version));
        internal.insert("channel".into(), json!(inbound.channel));
        internal.insert("messageType".into(), json!(inbound.kind.message_type()));
        internal.insert("messageContent".into(), inbound.kind.content());
        if let Some(u) = &inbound.user {
            // A message that leaves a name out keeps the one known.
            let known = |field: &str| {
                let user = internal.get("user");
                user.and_then(|u| u[field].as_str()).map(str::to_string)
            };
            let first = u.first_name.clone().or_else(|| known("firstName"));
            let last = u.last_name.clone().or_else(|| known("lastName"));
            let full = [first.as_deref(), last.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            internal.insert(
                "user".into(),
                json!({"firstName": first, "lastName": last, "fullName": full}),
            );
            if let Some(l) = &u.preferred_language {
                internal.insert("preferredLanguage".into(), json!(l));
            }
            if let Some(l) = &u.locale {
                internal.insert("locale".into(), json!(l));
            }
        }
        internal.insert("isPaused".into(), json!(self.state.paused));
        internal.insert("offload".into(), offload_json(&self.state.offload));
        if !internal.contains_key("preferredLanguage") {
            internal.insert("preferredLanguage".into(), json!(bot.primary_language()));
        }
        if !internal.contains_key("locale") {
            let l = internal["preferredLanguage"].clone();
            internal.insert("locale".into(), l);
        }
    }

    fn language(&self) -> String {
        let preferred = self.state.session["internal"]["preferredLanguage"].as_str();
        self.bot.language(preferred).to_string()
    }

    // --- choosing where to start ---------------------------------------------

    fn jump(&mut self, next: &str, params: &Map<String, Value>) -> Step {
        self.state.waiting = None;
        for (path, value) in params {
            self.set(path, value.clone());
        }
        self.resolve(next)
    }

    fn analyse(&mut self, text: &str) -> Analysis {
        let analysis = self
            .bot
            .nlp
            .analyse(text, &self.language(), self.bot.primary_language());
        for e in &analysis.entities {
            self.set(&e.name, e.value.clone());
        }
        internal_mut(&mut self.state.session).insert("nlp".into(), analysis.to_session());
        self.out.nlp = Some(analysis.clone());
        analysis
    }

    fn text(&mut self, text: &str) -> Step {
        let analysis = self.analyse(text);
        if let Some(w) = self.state.waiting.clone() {
            return self.answer(w, text, Some(&analysis));
        }
        self.intent_or_not_understood(&analysis)
    }

    fn intent_or_not_understood(&mut self, analysis: &Analysis) -> Step {
        let bot = self.bot;
        match analysis
            .intent
            .as_ref()
            .and_then(|i| bot.file.nlp.intents.iter().find(|d| d.name == i.name))
        {
            Some(def) => self.resolve(&def.goto),
            None => Some(bot.system(SystemBlock::NotUnderstood)),
        }
    }

    fn answer_or_not_understood(&mut self, answer: &str) -> Step {
        match self.state.waiting.clone() {
            Some(w) => self.answer(w, answer, None),
            None => Some(self.bot.system(SystemBlock::NotUnderstood)),
        }
    }

    /// The answer to the Collect input block the conversation waits in.
    fn answer(&mut self, w: Waiting, answer: &str, analysis: Option<&Analysis>) -> Step {
        let bot = self.bot;
        let Some((i, spec)) = bot.find(&w.block).and_then(|i| match &bot.blocks[i].kind {
            BlockKind::Input(spec) => Some((i, spec)),
            _ => None,
        }) else {
            // The bot changed under the conversation: treat it as free text.
            self.state.waiting = None;
            return match analysis {
                Some(a) => self.intent_or_not_understood(a),
                None => Some(bot.system(SystemBlock::NotUnderstood)),
            };
        };
        if spec.nlp
            && let Some(a) = analysis
            && a.intent.is_some()
        {
            self.state.waiting = None;
            return self.intent_or_not_understood(a);
        }
        match input::validate(spec.input_type, answer, &spec.options, bot.patterns.get(&i)) {
            Some(value) => {
                self.state.waiting = None;
                self.set(&spec.variable, value);
                self.follow(spec.goto.as_ref())
            }
            None => {
                let attempts = w.attempts + 1;
                if attempts >= spec.max_attempts
                    && let Some(target) = &spec.on_fail
                {
                    self.state.waiting = None;
                    return self.resolve(target);
                }
                let text = spec.retry.as_ref().unwrap_or(&spec.question);
                let message = self.text_message(text);
                self.say(message);
                self.state.waiting = Some(Waiting {
                    block: w.block,
                    attempts,
                });
                None
            }
        }
    }

    // --- running blocks ------------------------------------------------------

    async fn flow(&mut self, mut next: Step) {
        let max = self.bot.file.settings.max_blocks_per_turn;
        let error_block = self.bot.system(SystemBlock::ErrorOccurred);
        let (mut steps, mut in_error) = (0usize, false);
        loop {
            // A watched change (before the next block, or after the last one)
            // runs its event's blocks first; the flow then goes on.
            if let Some((block, changed)) = self.variables_changed() {
                self.set("events.variablesChanged", json!(changed));
                self.event(json!({"event": {"variablesChanged": changed}}));
                self.resume.extend(next);
                next = Some(block);
            }
            let Some(i) = next.or_else(|| {
                (self.state.waiting.is_none())
                    .then(|| self.resume.pop())
                    .flatten()
            }) else {
                break;
            };
            steps += 1;
            if steps > max {
                self.error(
                    None,
                    "loop_limit",
                    format!("the turn ran more than {max} blocks without waiting for the user"),
                );
                if in_error {
                    break;
                }
                (in_error, steps) = (true, 0);
                next = Some(error_block);
                continue;
            }
            in_error |= i == error_block;
            next = self.step(i).await;
        }
    }

    /// The first *Variables changed* event whose watched values differ from
    /// when it last fired: its block and the paths that changed.
    fn variables_changed(&mut self) -> Option<(usize, Vec<String>)> {
        let bot = self.bot;
        let now = bot.watched(&self.state.session);
        let (k, paths) = bot.first_change(&self.watched, &now)?;
        self.watched[k] = now[k].clone();
        let block = bot.find(&bot.file.events.variables_changed[k].goto)?;
        Some((block, paths))
    }

    async fn step(&mut self, i: usize) -> Step {
        let bot = self.bot;
        let block = &bot.blocks[i];
        self.enter(i);
        match &block.kind {
            BlockKind::Message { messages, goto } => {
                for m in messages {
                    let message = self.render(|r| r.message(m));
                    self.say(message);
                }
                self.follow(goto.as_ref())
            }
            BlockKind::Condition { rules, otherwise } => {
                match condition::first_match(rules, &self.state.session) {
                    Some(rule) => self.follow(Some(&rule.goto)),
                    None => self.follow(otherwise.as_ref()),
                }
            }
            BlockKind::Input(spec) => {
                let current = JsonPath::parse(&spec.variable)
                    .ok()
                    .and_then(|p| p.get(&self.state.session).cloned());
                if current.is_some_and(|v| !v.is_null() && v != json!("")) {
                    return self.follow(spec.goto.as_ref());
                }
                let message = self.text_message(&spec.question);
                self.say(message);
                self.state.waiting = Some(Waiting {
                    block: block.id.clone(),
                    attempts: 0,
                });
                None
            }
            BlockKind::Action(spec) => self.action(i, spec).await,
        }
    }

    fn enter(&mut self, i: usize) {
        let b = &self.bot.blocks[i];
        let current = json!({"name": b.display_name(), "id": b.id, "type": b.kind.type_name()});
        let internal = internal_mut(&mut self.state.session);
        if let Some(prev) = internal.insert("currentDialogstate".into(), current) {
            internal.insert("previousDialogstate".into(), prev);
        }
        self.event(json!({"block": b.id}));
    }

    async fn action(&mut self, i: usize, spec: &ActionSpec) -> Step {
        let bot = self.bot;
        let block = &bot.blocks[i];
        if let Some(set) = &spec.set {
            for (path, value) in set {
                let v = template::resolve(value, &self.state.session);
                self.set(path, v);
            }
            return self.follow(spec.goto.as_ref());
        }
        if spec.clear_session {
            let internal = self
                .state
                .session
                .get("internal")
                .cloned()
                .unwrap_or(json!({}));
            self.state.session = json!({ "internal": internal });
            return self.follow(spec.goto.as_ref());
        }
        if let Some(path) = &spec.goto_variable {
            let value = JsonPath::parse(path)
                .ok()
                .and_then(|p| p.get(&self.state.session).cloned())
                .unwrap_or(Value::Null);
            return match value.as_str().and_then(|t| bot.find(t)) {
                Some(j) => Some(j),
                None => self.fail(
                    &block.id,
                    "unknown_block",
                    format!("`{path}` holds {value}, which is not a block id or label"),
                ),
            };
        }
        if let Some(offload) = &spec.offload {
            return self.offload(i, offload).await;
        }
        let session = &self.state.session;
        let call = if let Some(name) = &spec.code {
            ActionCall::Code {
                name: name.clone(),
                source: bot.scripts[name].clone(),
                args: Value::Object(template::resolve_map(&spec.args, session)),
            }
        } else if let Some(config) = &spec.api {
            ActionCall::Api {
                config: config.clone(),
            }
        } else if let Some(name) = &spec.plugin {
            ActionCall::Plugin {
                name: name.clone(),
                plugin: bot.plugins[name].clone(),
                input: Value::Object(template::resolve_map(&spec.input, session)),
            }
        } else {
            return self.follow(spec.goto.as_ref());
        };
        let (kind, name) = (call.kind(), call.name().to_string());
        let outcome = self.runner.run(call, &self.state.session).await;
        let mut report = ActionReport {
            block: block.id.clone(),
            action: kind.into(),
            name,
            ok: outcome.result.is_ok(),
            error: outcome.result.as_ref().err().cloned(),
            stats: outcome.stats.clone(),
            logs: outcome
                .logs
                .iter()
                .map(|(l, t)| json!({"level": l, "text": t}))
                .collect(),
        };
        let effects = match outcome.result {
            Ok(e) => e,
            Err(f) => {
                self.out.actions.push(report);
                return self.fail(&block.id, &f.kind, f.message);
            }
        };
        let mut session = self.state.session.clone();
        if let Err(message) = apply_writes(&mut session, &effects.session) {
            report.ok = false;
            self.out.actions.push(report);
            return self.fail(&block.id, "invalid_session_write", message);
        }
        let size = serde_json::to_vec(&session)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size > MAX_SESSION_BYTES {
            report.ok = false;
            self.out.actions.push(report);
            return self.fail(
                &block.id,
                "session_too_large",
                format!("the session would be {size} bytes; the limit is {MAX_SESSION_BYTES}"),
            );
        }
        self.out.actions.push(report);
        self.state.session = session;
        for m in effects.messages {
            self.say(m);
        }
        match effects.next {
            Some(next) => match bot.find(&next) {
                Some(j) => Some(j),
                None => self.fail(
                    &block.id,
                    "unknown_block",
                    format!("the action chose next block `{next}`, which this bot does not have"),
                ),
            },
            None => self.follow(spec.goto.as_ref()),
        }
    }

    // --- helpers -------------------------------------------------------------

    fn follow(&mut self, goto: Option<&Goto>) -> Step {
        let g = goto?;
        for (path, value) in g.set().into_iter().flatten() {
            let v = template::resolve(value, &self.state.session);
            self.set(path, v);
        }
        self.resolve(g.target())
    }

    /// A block by id or label; an unknown one is an error (Error occurred).
    fn resolve(&mut self, target: &str) -> Step {
        match self.bot.find(target) {
            Some(i) => Some(i),
            None => self.fail(
                "",
                "unknown_block",
                format!("no block `{target}` in this bot"),
            ),
        }
    }

    fn set(&mut self, path: &str, value: Value) {
        let mut writes = Map::new();
        writes.insert(path.to_string(), value);
        if let Err(message) = apply_writes(&mut self.state.session, &writes) {
            self.error(None, "invalid_session_write", message);
        }
    }

    /// Runs `f` with a renderer for the conversation's language, carrying the
    /// variant seed on to the next message.
    fn render<T>(&mut self, f: impl FnOnce(&mut Renderer) -> T) -> T {
        let language = self.language();
        let mut r = Renderer {
            bot: self.bot,
            session: &self.state.session,
            language: &language,
            seed: self.seed,
        };
        let out = f(&mut r);
        self.seed = r.seed;
        out
    }

    fn text_message(&mut self, text: &crate::flow::say::text::Text) -> Value {
        let t = self.render(|r| r.text(text));
        json!({"type": "text", "config": {"textMessages": [{"text": t}]}})
    }

    fn say(&mut self, mut message: Value) {
        self.postbacks.extend(postback::make_opaque(
            &crate::flow::store_key(self.bot.id(), self.version),
            &mut message,
        ));
        self.state.message_counter += 1;
        self.event(json!({ "bot": message }));
        self.out.messages.push(message);
    }

    /// Asks the provider to hand the conversation to a human; its answer
    /// picks the offloading system block (validated to exist).
    async fn offload(&mut self, i: usize, spec: &OffloadSpec) -> Step {
        let bot = self.bot;
        let block = &bot.blocks[i];
        let internal = &self.state.session["internal"];
        let request = OffloadRequest {
            provider: spec.provider.clone(),
            payload: Value::Object(template::resolve_map(&spec.payload, &self.state.session)),
            bot: bot.id().to_string(),
            version: self.version.to_string(),
            conversation: internal["sessionId"].as_str().unwrap_or_default().into(),
            channel: internal["channel"].as_str().unwrap_or_default().into(),
            events: self.out.events.clone(),
            transcript_len: self.state.transcript_len,
            session: self.state.session.clone(),
        };
        let answer = match self.offloader {
            Some(o) => o.offload(request).await,
            None => OffloadAnswer::Disabled("no offloading provider is configured".into()),
        };
        let which = match answer {
            OffloadAnswer::Opened { pause } => {
                self.state.offload = Some(Offload {
                    provider: spec.provider.clone(),
                    since_ms: crate::store::now_ms(),
                    agent: None,
                });
                self.state.paused = pause;
                let internal = internal_mut(&mut self.state.session);
                internal.insert("isPaused".into(), json!(pause));
                internal.insert("offload".into(), offload_json(&self.state.offload));
                SystemBlock::OffloadingOpened
            }
            OffloadAnswer::Closed => SystemBlock::OffloadingClosed,
            OffloadAnswer::Disabled(why) => {
                self.error(Some(&block.id), "offloading_disabled", why);
                SystemBlock::OffloadingDisabled
            }
        };
        self.event(json!({"offload": {"provider": spec.provider, "block": block.id, "result": which.as_str()}}));
        match bot.has_system(which) {
            Some(j) => Some(j),
            None => self.fail(
                &block.id,
                "unknown_block",
                format!("no `{}` system block", which.as_str()),
            ),
        }
    }

    fn error(&mut self, block: Option<&str>, kind: &str, message: String) {
        tracing::warn!(bot = self.bot.id(), block, kind, %message, "turn error");
        self.event(json!({"error": {"block": block, "kind": kind, "message": message}}));
    }

    /// Records the failure and continues at Error occurred.
    fn fail(&mut self, block: &str, kind: &str, message: String) -> Step {
        self.error((!block.is_empty()).then_some(block), kind, message);
        Some(self.bot.system(SystemBlock::ErrorOccurred))
    }

    fn event(&mut self, e: Value) {
        self.out.events.push(e);
    }
}

fn user_event(kind: &InboundKind) -> Value {
    match kind {
        InboundKind::Intro => json!({"intro": true}),
        InboundKind::Text { text } => json!(text),
        InboundKind::Postback { title, payload } => {
            json!({"postback": title.clone().unwrap_or_else(|| payload.clone())})
        }
        InboundKind::Goto { next, .. } => json!({"goto": next}),
        InboundKind::Silence { .. } => json!({"silence": true}),
        InboundKind::Upload { url } => json!({"upload": url}),
        InboundKind::Location {
            latitude,
            longitude,
        } => {
            json!({"location": {"latitude": latitude, "longitude": longitude}})
        }
    }
}

/// `internal.offload`: the provider and since when, or null.
pub fn offload_json(offload: &Option<Offload>) -> Value {
    match offload {
        Some(o) => {
            json!({"provider": o.provider, "status": "opened", "sinceMs": o.since_ms, "agent": o.agent})
        }
        None => Value::Null,
    }
}

fn internal_mut(session: &mut Value) -> &mut Map<String, Value> {
    let root = session.as_object_mut().expect("the session is an object");
    let internal = root.entry("internal").or_insert_with(|| json!({}));
    if !internal.is_object() {
        *internal = json!({});
    }
    internal.as_object_mut().expect("an object")
}

/// Applies path writes (`null` removes); `internal.*` is refused, as for guests.
fn apply_writes(session: &mut Value, writes: &Map<String, Value>) -> Result<(), String> {
    for (path, value) in writes {
        let p = JsonPath::parse(path).map_err(|e| format!("`{path}`: {e}"))?;
        if p.root_key() == Some("internal") {
            return Err(format!("`{path}`: internal.* is read-only"));
        }
        if value.is_null() {
            p.remove(session);
        } else {
            p.set(session, value.clone())
                .map_err(|e| format!("`{path}`: {e}"))?;
        }
    }
    Ok(())
}
