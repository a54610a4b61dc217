//! The bot format on disk: `bot.yaml` and `flows/*.yaml`. These types are the
//! source of the published JSON Schema (`docs/bot.schema.json`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::flow::say::text::Text;

/// `bot.yaml`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BotFile {
    /// Stable id of the bot (used in postbacks, stores and URLs).
    pub id: String,
    pub name: String,
    /// Language codes; the first is the primary language.
    #[serde(default = "default_languages")]
    pub languages: Vec<String>,
    #[serde(default)]
    pub nlp: NlpConfig,
    #[serde(default)]
    pub settings: Settings,
    /// Blocks that run on events rather than on a user's message.
    #[serde(default)]
    pub events: Events,
}

/// Events (Chatlayer's *Variables changed* and *Silence detected*).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Events {
    /// When any of `variables` changes during a turn (an answer, postback
    /// parameters, an entity, an action), `goto` runs, then the flow
    /// continues where it was going; `events.variablesChanged` lists the
    /// paths that changed.
    #[serde(default)]
    pub variables_changed: Vec<VariablesChanged>,
    /// When a conversation waits for input and no user message comes for
    /// `minutes`, `goto` runs and its messages are delivered (once; a
    /// user message first cancels it).
    #[serde(default)]
    pub silence_detected: Option<SilenceDetected>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SilenceDetected {
    /// 1 to 1440.
    pub minutes: u64,
    /// The block to run (id or label).
    pub goto: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VariablesChanged {
    /// Session paths to watch.
    pub variables: Vec<String>,
    /// The block to run (id or label).
    pub goto: String,
}

fn default_languages() -> Vec<String> {
    vec!["en".into()]
}

/// Bot-wide settings.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// A turn that runs more blocks than this without waiting goes to Error occurred.
    #[serde(default = "default_max_blocks")]
    pub max_blocks_per_turn: usize,
    /// When true, every message is answered by the Bot disabled block.
    #[serde(default)]
    pub disabled: bool,
}

fn default_max_blocks() -> usize {
    25
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_blocks_per_turn: default_max_blocks(),
            disabled: false,
        }
    }
}

/// Intents, entities and thresholds.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NlpConfig {
    /// An intent scoring at or below this is not recognised (0..1).
    #[serde(default = "default_intent_threshold")]
    pub intent_threshold: f64,
    /// A list-entity value matching below this is not recognised (0..1).
    #[serde(default = "default_entity_threshold")]
    pub entity_threshold: f64,
    #[serde(default)]
    pub intents: Vec<IntentDef>,
    #[serde(default)]
    pub entities: Vec<EntityDef>,
    /// System entities to recognise: `email`, `number`, `phone`, `url`, `date`.
    /// Stored as `sys.<name>`.
    #[serde(default)]
    pub system_entities: Vec<SystemEntity>,
}

fn default_intent_threshold() -> f64 {
    0.7
}
fn default_entity_threshold() -> f64 {
    0.8
}

impl Default for NlpConfig {
    fn default() -> Self {
        Self {
            intent_threshold: default_intent_threshold(),
            entity_threshold: default_entity_threshold(),
            intents: Vec::new(),
            entities: Vec::new(),
            system_entities: Vec::new(),
        }
    }
}

/// An intent: example expressions per language and the block it leads to.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IntentDef {
    pub name: String,
    /// Block id or label to go to when recognised.
    pub goto: String,
    /// Language code → example expressions.
    pub expressions: BTreeMap<String, Vec<String>>,
}

/// A custom entity, stored as a session variable named after it.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum EntityDef {
    /// Values with synonyms; typos within the entity threshold match.
    List {
        name: String,
        values: Vec<ListValue>,
    },
    /// A regular expression; the whole match is the value.
    Regex { name: String, pattern: String },
}

impl EntityDef {
    pub fn name(&self) -> &str {
        match self {
            EntityDef::List { name, .. } | EntityDef::Regex { name, .. } => name,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListValue {
    pub value: String,
    #[serde(default)]
    pub synonyms: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum SystemEntity {
    Email,
    Number,
    Phone,
    Url,
    Date,
}

/// `flows/*.yaml`: a list of blocks.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowFile {
    pub blocks: Vec<Block>,
}

/// A block ("dialog state").
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Block {
    /// Unique id (Chatlayer uses UUIDs; any string without spaces works).
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// A stable alternative name for go-tos.
    #[serde(default)]
    pub label: Option<String>,
    /// Marks one of the four system blocks.
    #[serde(default)]
    pub system: Option<SystemBlock>,
    #[serde(flatten)]
    pub kind: BlockKind,
}

impl Block {
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum SystemBlock {
    Introduction,
    NotUnderstood,
    ErrorOccurred,
    BotDisabled,
    /// An offload action's provider accepted: an agent takes over.
    OffloadingOpened,
    /// The provider answered that no agent is available.
    OffloadingClosed,
    /// No provider configured, or it is down or failed.
    OffloadingDisabled,
}

impl SystemBlock {
    /// Every bot has these.
    pub const REQUIRED: [SystemBlock; 4] = [
        Self::Introduction,
        Self::NotUnderstood,
        Self::ErrorOccurred,
        Self::BotDisabled,
    ];
    /// A bot with an offload action has these.
    pub const OFFLOADING: [SystemBlock; 3] = [
        Self::OffloadingOpened,
        Self::OffloadingClosed,
        Self::OffloadingDisabled,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Introduction => "introduction",
            Self::NotUnderstood => "notUnderstood",
            Self::ErrorOccurred => "errorOccurred",
            Self::BotDisabled => "botDisabled",
            Self::OffloadingOpened => "offloadingOpened",
            Self::OffloadingClosed => "offloadingClosed",
            Self::OffloadingDisabled => "offloadingDisabled",
        }
    }
}

/// What the block does.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum BlockKind {
    /// Sends messages, then follows `goto` (or ends the turn).
    Message {
        messages: Vec<MessageSpec>,
        #[serde(default)]
        goto: Option<Goto>,
    },
    /// Ordered rules, first match wins, else `else`.
    Condition {
        rules: Vec<Rule>,
        #[serde(default, rename = "else")]
        otherwise: Option<Goto>,
    },
    /// Asks for a value and waits for it.
    Input(Box<InputSpec>),
    /// Runs an action, then follows the action's next block or `goto`.
    Action(Box<ActionSpec>),
}

impl BlockKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            BlockKind::Message { .. } => "message",
            BlockKind::Condition { .. } => "condition",
            BlockKind::Input(_) => "input",
            BlockKind::Action(_) => "action",
        }
    }
}

/// A go-to: a block id or label, optionally setting session variables first.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Goto {
    Block(String),
    WithSet {
        block: String,
        /// Session path → value (strings are templated).
        #[serde(default)]
        set: Map<String, Value>,
    },
}

impl Goto {
    pub fn target(&self) -> &str {
        match self {
            Goto::Block(b) | Goto::WithSet { block: b, .. } => b,
        }
    }
    pub fn set(&self) -> Option<&Map<String, Value>> {
        match self {
            Goto::Block(_) => None,
            Goto::WithSet { set, .. } => Some(set),
        }
    }
}

/// One message of a Message block. Exactly one of `text` alone, `text` with
/// `buttons`, `text` with `quickReplies`, `carousel` or `media`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MessageSpec {
    #[serde(default)]
    pub text: Option<Text>,
    /// Up to 3 buttons.
    #[serde(default)]
    pub buttons: Vec<ButtonSpec>,
    #[serde(default)]
    pub quick_replies: Vec<ButtonSpec>,
    #[serde(default)]
    pub carousel: Vec<CardSpec>,
    #[serde(default)]
    pub media: Option<MediaSpec>,
}

/// A button or quick reply: a postback (`goto`, optional `set`), a link
/// (`url`) or a phone number (`phone`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ButtonSpec {
    pub title: Text,
    #[serde(default)]
    pub goto: Option<String>,
    /// Session variables the postback sets (its params).
    #[serde(default)]
    pub set: Map<String, Value>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CardSpec {
    pub title: Text,
    #[serde(default)]
    pub subtitle: Option<Text>,
    #[serde(default)]
    pub image_url: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub buttons: Vec<ButtonSpec>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MediaSpec {
    #[serde(rename = "type")]
    pub kind: MediaKind,
    pub url: String,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Image,
    Video,
    Audio,
    Attachment,
}

/// A condition rule: its conditions combined with `match` (all = AND, any = OR).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    #[serde(default, rename = "match")]
    pub combine: Combine,
    pub conditions: Vec<Condition>,
    pub goto: Goto,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Combine {
    #[default]
    All,
    Any,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Condition {
    /// Session path compared.
    pub variable: String,
    pub operator: Operator,
    /// What to compare with (strings are templated); unused by exists/notExists.
    #[serde(default)]
    pub value: Value,
    /// Text comparisons are case-sensitive unless this is false.
    #[serde(default = "yes")]
    pub case_sensitive: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Operator {
    Equals,
    NotEquals,
    GreaterThan,
    SmallerThan,
    Contains,
    StartsWith,
    Matches,
    Exists,
    NotExists,
}

/// A Collect input block.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InputSpec {
    /// Session path the answer is stored at; already set → the block is skipped.
    pub variable: String,
    #[serde(default)]
    pub input_type: InputType,
    /// The accepted answers for `choice`.
    #[serde(default)]
    pub options: Vec<String>,
    /// The regular expression for `regex` (the whole answer must match).
    #[serde(default)]
    pub pattern: Option<String>,
    pub question: Text,
    /// Sent when an answer does not validate.
    #[serde(default)]
    pub retry: Option<Text>,
    /// After this many invalid answers, go to `onFail` (if set).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    #[serde(default)]
    pub on_fail: Option<String>,
    /// When false, a recognised intent does not leave the block.
    #[serde(default = "yes")]
    pub nlp: bool,
    #[serde(default)]
    pub goto: Option<Goto>,
}

fn default_attempts() -> u32 {
    3
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum InputType {
    #[default]
    Any,
    Number,
    Email,
    Phone,
    Url,
    /// `YYYY-MM-DD`, `DD/MM/YYYY` or `DD-MM-YYYY`; stored as `YYYY-MM-DD`.
    Date,
    /// One of `options` (by text, case-insensitive, or by number).
    Choice,
    Regex,
}

/// An Action block: exactly one of `code`, `api`, `plugin`, `set`,
/// `clearSession`, `gotoVariable`, `offload`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActionSpec {
    /// A JavaScript file in `actions/`.
    #[serde(default)]
    pub code: Option<String>,
    /// Arguments for a code action (`args`); strings are templated, and a
    /// string that is exactly `{path}` keeps the session value's JSON type.
    #[serde(default)]
    pub args: Map<String, Value>,
    /// An API action's configuration (README: API actions).
    #[serde(default)]
    pub api: Option<Value>,
    /// A Wasm component in `plugins/`.
    #[serde(default)]
    pub plugin: Option<String>,
    /// The plugin's input (templated like `args`).
    #[serde(default)]
    pub input: Map<String, Value>,
    /// Session path → value (strings templated).
    #[serde(default)]
    pub set: Option<Map<String, Value>>,
    /// Clears the session except `internal`.
    #[serde(default)]
    pub clear_session: bool,
    /// Go to the block whose id or label is stored at this session path.
    #[serde(default)]
    pub goto_variable: Option<String>,
    /// Hand the conversation to a human through an offloading provider; the
    /// answer picks the `offloadingOpened`, `offloadingClosed` or
    /// `offloadingDisabled` system block.
    #[serde(default)]
    pub offload: Option<OffloadSpec>,
    #[serde(default)]
    pub goto: Option<Goto>,
}

/// An offload action.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OffloadSpec {
    /// The provider's id (`offloading` in the serve config).
    pub provider: String,
    /// Sent to the provider with the transcript (strings templated).
    #[serde(default)]
    pub payload: Map<String, Value>,
}
