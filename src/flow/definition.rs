//! Call-flow definitions: the JSON stored in D1 `flow_versions.definition`, and the
//! validator that runs before a flow can be saved or published.
//!
//! ```json
//! {"version":1,"start":"welcome","nodes":{
//!   "welcome":{"type":"play","tts":{"text":"Welcome to Acme"},"next":"hours"},
//!   "hours":{"type":"branch","cases":[{"when":{"calendar":"cal_01jf18ah3jeb5w6dfp27sgjsbt","is":"open"},"next":"menu"}],"default":"closed"},
//!   "menu":{"type":"menu","prompt":{"media":"prompts/main-menu.wav"},"options":{"1":"sales","2":"bob","3":"vm"},"fallback":"vm"},
//!   "sales":{"type":"enqueue","queue":"sales","on":{"timeout":"vm","full":"vm"}},
//!   "bob":{"type":"dial","targets":[{"user":"usr_01jf18ah3jeb5w6dfp27sgjsbt"}],"timeoutSecs":20,"on":{"answered":"bye"},"next":"vm"},
//!   "closed":{"type":"play","tts":{"text":"We are closed."},"next":"vm"},
//!   "vm":{"type":"record","prompt":{"tts":{"text":"Leave a message after the tone."}},"next":"bye"},
//!   "bye":{"type":"hangup"}}}
//! ```
//!
//! `version` is the version of this *format* (1); the flow's own version number is the
//! `flow_versions.version` row it is stored in. The full reference is `docs/flows.md`.
//!
//! General rules: nodes are keyed by id (`[A-Za-z0-9_-]{1,64}`); a missing `next` (or
//! `fallback`, or branch `default`) means *end of flow*: hang up (normal clearing) at the
//! top level, return to the caller inside a sub-flow. Unknown fields are errors (typos must
//! not pass silently). Durations are `…Secs` or `…Ms` as named.

use super::pattern::DigitPattern;
use super::wire::{self, CallerId, ConferenceRole, DialStrategy, HangupCause, Vars};
use crate::routing::calendar::CalendarState;
use crate::typeid;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The format version this build reads.
pub const FORMAT_VERSION: u64 = 1;
/// Largest definition accepted, in bytes of JSON.
pub const MAX_DEFINITION_BYTES: usize = 256 * 1024;
/// Most nodes in one flow.
pub const MAX_NODES: usize = 500;
/// Longest TTS text (characters).
pub const MAX_TTS_CHARS: usize = 2000;
/// Longest URL.
pub const MAX_URL_LEN: usize = 2048;
/// Deepest nesting of `all` / `any` / `not` in a condition.
pub const MAX_CONDITION_DEPTH: usize = 8;
/// Most cases of a branch, patterns of a gather, values of an `in` list.
pub const MAX_LIST: usize = 50;
/// Most dial targets.
pub const MAX_DIAL_TARGETS: usize = 20;

/// A parsed flow definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowDefinition {
    pub version: u64,
    pub start: String,
    pub nodes: BTreeMap<String, Node>,
    /// SHA-256 (hex) of the JSON text this was parsed from (set by [`parse`]). A session
    /// pins it, so stepping a call with another version's text is refused.
    #[serde(skip)]
    pub digest: Option<String>,
}

/// Something to play: exactly one of a media key, a URL, or TTS.
///
/// ```json
/// {"media":"prompts/welcome.wav"}
/// {"url":"https://cdn.example.com/moh.mp3"}
/// {"tts":{"text":"Hello ${name}","voice":"en-US-Standard-C","language":"en-US"}}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prompt {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tts: Option<Tts>,
}

/// Text to speech. `text` may use `${var}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tts {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// Outcome name → node, for the outcomes a node can branch on (see each node).
pub type OnMap = BTreeMap<String, String>;

fn one() -> u32 {
    1
}
fn two() -> u32 {
    2
}
fn hash_key() -> Option<String> {
    Some("#".into())
}
fn yes() -> bool {
    true
}
fn digits_var() -> String {
    "digits".into()
}
fn recording_var() -> String {
    "recording".into()
}
fn ms_5000() -> u32 {
    5000
}
fn ms_3000() -> u32 {
    3000
}
fn ms_2000() -> u32 {
    2000
}
fn secs_30() -> u32 {
    30
}
fn secs_60() -> u32 {
    60
}
fn secs_120() -> u32 {
    120
}
fn secs_900() -> u32 {
    900
}
fn secs_5() -> u32 {
    5
}

/// `play`: one prompt (`media` | `url` | `tts`), `loops` times (1-100). Outcomes: `played`
/// → `next`; `error` → `on.error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PlayNode {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tts: Option<Tts>,
    #[serde(default = "one")]
    pub loops: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub on: OnMap,
}

impl PlayNode {
    pub fn prompt(&self) -> Prompt {
        Prompt { media: self.media.clone(), url: self.url.clone(), tts: self.tts.clone() }
    }
}

/// A gather branch chosen by a digit pattern (see [`super::pattern`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternBranch {
    pub pattern: String,
    pub next: String,
}

/// `gather`: play `prompt`, collect `minDigits`-`maxDigits` keys (1-32), store them in
/// variable `saveAs` (default `digits`) and branch: exact `branches` first, then
/// `patterns` in order, then `default`. Input matching none of them, `invalid` and
/// `no-input` re-prompt (prefixed by `invalidPrompt` / `noInputPrompt`) up to `retries`
/// times (default 2), then go to `fallback`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatherNode {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<Prompt>,
    #[serde(default = "one")]
    pub min_digits: u32,
    #[serde(default = "one")]
    pub max_digits: u32,
    /// Default `#`; `null` for none.
    #[serde(default = "hash_key")]
    pub finish_key: Option<String>,
    #[serde(default = "ms_5000")]
    pub first_digit_timeout_ms: u32,
    #[serde(default = "ms_3000")]
    pub inter_digit_timeout_ms: u32,
    #[serde(default = "two")]
    pub retries: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_prompt: Option<Prompt>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_input_prompt: Option<Prompt>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub branches: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patterns: Vec<PatternBranch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    #[serde(default = "digits_var")]
    pub save_as: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub on: OnMap,
}

/// `menu`: sugar for a gather whose `options` map keys to nodes; collects as many keys as
/// the longest option (no finish key unless options are longer than one key), no default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MenuNode {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<Prompt>,
    pub options: BTreeMap<String, String>,
    #[serde(default = "two")]
    pub retries: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_prompt: Option<Prompt>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_input_prompt: Option<Prompt>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    #[serde(default = "ms_5000")]
    pub timeout_ms: u32,
    #[serde(default = "ms_2000")]
    pub inter_digit_timeout_ms: u32,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub on: OnMap,
}

/// Who a dial rings.
///
/// ```json
/// {"user":"usr_01jf18ah3jeb5w6dfp27sgjsbt"}   every registered device of the user
/// {"device":"dev_01jf18ah3jeb5w6dfp27sgjsbt"} one device
/// {"number":"+15557654321"}                   an external number (via the account's trunks)
/// {"sip":"sip:bob@example.com"}               a SIP URI
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Endpoint {
    User(String),
    Device(String),
    Number(String),
    Sip(String),
}

impl Endpoint {
    /// `user usr_…`, `number +1…`: the label the edge and the trace see.
    pub fn label(&self) -> String {
        match self {
            Endpoint::User(v) => format!("user {v}"),
            Endpoint::Device(v) => format!("device {v}"),
            Endpoint::Number(v) => format!("number {v}"),
            Endpoint::Sip(v) => format!("sip {v}"),
        }
    }
}

/// `dial`: ring `targets` (`simultaneous` or `sequential`), `timeoutSecs` (5-600, default
/// 30), optional `callerId` `{"number","name"}`. Outcomes `answered`, `no-answer`, `busy`,
/// `failed`, `error` → `on.<outcome>`, else `next`. When no target resolves to anything
/// reachable, the node takes its `failed` branch without ringing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DialNode {
    pub targets: Vec<Endpoint>,
    #[serde(default)]
    pub strategy: DialStrategy,
    #[serde(default = "secs_30")]
    pub timeout_secs: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_id: Option<CallerIdSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub on: OnMap,
}

/// Caller id of a dial: `{"number":"+15551230100","name":"Acme"}` (both optional).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerIdSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl From<&CallerIdSpec> for CallerId {
    fn from(c: &CallerIdSpec) -> CallerId {
        CallerId { number: c.number.clone(), name: c.name.clone() }
    }
}

/// Queue announcements: every `everySecs` (15-3600, default 60) play `prompt` and/or the
/// caller's `position` (default true).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AnnounceSpec {
    #[serde(default = "secs_60")]
    pub every_secs: u32,
    #[serde(default = "yes")]
    pub position: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<Prompt>,
}

/// `enqueue`: wait in `queue` with `holdMusic`, at most `maxWaitSecs` (default 900),
/// optional `announce`. Outcomes `answered`, `timeout`, `abandoned`, `full`, `error` →
/// `on.<outcome>`, else `next`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnqueueNode {
    pub queue: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_music: Option<Prompt>,
    #[serde(default = "secs_900")]
    pub max_wait_secs: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announce: Option<AnnounceSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub on: OnMap,
}

/// `record` (alias `voicemail`): optional `prompt`, `beep` (default true), `maxSecs`
/// (1-3600, default 120), `silenceSecs` (0-60, default 5; 0 = never), `finishKey`
/// (default `#`, `null` for none), `mailbox` (whose voicemail, in the upload metadata).
/// The stored media key goes in variable `saveAs` (default `recording`). Outcomes
/// `recorded`, `no-input`, `error` → `on.<outcome>`, else `next`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RecordNode {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<Prompt>,
    #[serde(default = "yes")]
    pub beep: bool,
    #[serde(default = "secs_120")]
    pub max_secs: u32,
    #[serde(default = "secs_5")]
    pub silence_secs: u32,
    #[serde(default = "hash_key")]
    pub finish_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox: Option<String>,
    #[serde(default = "recording_var")]
    pub save_as: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub on: OnMap,
}

/// `conference`: join `room` (`[A-Za-z0-9_-]{1,64}`, scoped to the account) as
/// `participant` (default), `moderator` or `muted`. Outcomes `played` (conference ended),
/// `failed`, `error` → `on.<outcome>`, else `next`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConferenceNode {
    pub room: String,
    #[serde(default)]
    pub role: ConferenceRole,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub on: OnMap,
}

/// `set`: assign variables (values may use `${var}`; `null` removes one), then `next`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SetNode {
    pub vars: BTreeMap<String, Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A condition of a branch case. Exactly one of these forms:
///
/// ```json
/// {"var":"caller","equals":"+15550001111"}      also "notEquals", "in":[...], "prefix",
/// {"var":"digits","pattern":"1XX"}               "pattern" (digit pattern), "exists":true|false
/// {"calendar":"cal_01jf18ah3jeb5w6dfp27sgjsbt","is":"open"}      or "is":["closed","holiday"]
/// {"all":[...]}  {"any":[...]}  {"not":{...}}
/// ```
///
/// A missing variable equals nothing (so `notEquals` is true) and matches no prefix or
/// pattern. A calendar that does not exist or does not compile makes its condition false
/// (and says so in the trace).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ConditionSpec", into = "ConditionSpec")]
pub enum Condition {
    Var { var: String, test: VarTest },
    Calendar { calendar: String, is: Vec<CalendarState> },
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
}

/// The test of a `var` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarTest {
    Equals(String),
    NotEquals(String),
    In(Vec<String>),
    Prefix(String),
    Pattern(String),
    Exists(bool),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(CalendarState),
    Many(Vec<CalendarState>),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ConditionSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    var: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    equals: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not_equals: Option<String>,
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    in_: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pattern: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exists: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    calendar: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    is: Option<OneOrMany>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    all: Option<Vec<Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    any: Option<Vec<Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not: Option<Box<Condition>>,
}

impl TryFrom<ConditionSpec> for Condition {
    type Error = String;

    fn try_from(s: ConditionSpec) -> Result<Condition, String> {
        let forms = [s.var.is_some(), s.calendar.is_some(), s.all.is_some(), s.any.is_some(), s.not.is_some()];
        if forms.iter().filter(|f| **f).count() != 1 {
            return Err("a condition has exactly one of var, calendar, all, any, not".into());
        }
        let tests = [s.equals.is_some(), s.not_equals.is_some(), s.in_.is_some(), s.prefix.is_some(), s.pattern.is_some(), s.exists.is_some()];
        let n_tests = tests.iter().filter(|t| **t).count();
        if let Some(var) = s.var {
            if n_tests != 1 || s.is.is_some() {
                return Err(format!("condition on var {var:?}: give exactly one of equals, notEquals, in, prefix, pattern, exists"));
            }
            let test = if let Some(v) = s.equals {
                VarTest::Equals(v)
            } else if let Some(v) = s.not_equals {
                VarTest::NotEquals(v)
            } else if let Some(v) = s.in_ {
                VarTest::In(v)
            } else if let Some(v) = s.prefix {
                VarTest::Prefix(v)
            } else if let Some(v) = s.pattern {
                VarTest::Pattern(v)
            } else {
                VarTest::Exists(s.exists.unwrap_or(true))
            };
            return Ok(Condition::Var { var, test });
        }
        if n_tests != 0 {
            return Err("equals, notEquals, in, prefix, pattern and exists go with var".into());
        }
        if let Some(calendar) = s.calendar {
            let is = match s.is {
                Some(OneOrMany::One(x)) => vec![x],
                Some(OneOrMany::Many(v)) => v,
                None => return Err(format!("condition on calendar {calendar:?}: \"is\" (open, closed, holiday or a list of them) is required")),
            };
            return Ok(Condition::Calendar { calendar, is });
        }
        if s.is.is_some() {
            return Err("\"is\" goes with calendar".into());
        }
        if let Some(all) = s.all {
            return Ok(Condition::All(all));
        }
        if let Some(any) = s.any {
            return Ok(Condition::Any(any));
        }
        Ok(Condition::Not(s.not.expect("one form is present")))
    }
}

impl From<Condition> for ConditionSpec {
    fn from(c: Condition) -> ConditionSpec {
        let mut s = ConditionSpec::default();
        match c {
            Condition::Var { var, test } => {
                s.var = Some(var);
                match test {
                    VarTest::Equals(v) => s.equals = Some(v),
                    VarTest::NotEquals(v) => s.not_equals = Some(v),
                    VarTest::In(v) => s.in_ = Some(v),
                    VarTest::Prefix(v) => s.prefix = Some(v),
                    VarTest::Pattern(v) => s.pattern = Some(v),
                    VarTest::Exists(v) => s.exists = Some(v),
                }
            }
            Condition::Calendar { calendar, mut is } => {
                s.calendar = Some(calendar);
                s.is = Some(if is.len() == 1 { OneOrMany::One(is.remove(0)) } else { OneOrMany::Many(is) });
            }
            Condition::All(v) => s.all = Some(v),
            Condition::Any(v) => s.any = Some(v),
            Condition::Not(v) => s.not = Some(v),
        }
        s
    }
}

/// One case of a branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub when: Condition,
    pub next: String,
}

/// `branch`: the first case whose `when` holds decides; none → `default`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BranchNode {
    pub cases: Vec<Case>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// `goto`: continue at `target`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GotoNode {
    pub target: String,
}

/// `subflow`: run the published version of flow `flow` (same account), sharing variables;
/// when it ends, continue at `next`. A `hangup` inside it ends the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubflowNode {
    pub flow: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// `hangup`: end the call with `cause` (`normal` default, `busy`, `rejected`,
/// `no-answer`, `unallocated`, `failure`) and an optional `reason` for the trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HangupNode {
    #[serde(default)]
    pub cause: HangupCause,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `pause`: keep the line open for `ms` (1-300000), then `next`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PauseNode {
    pub ms: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub on: OnMap,
}

/// `noop`: nothing; continue at `next` (a label / join point).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoopNode {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A node, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Node {
    Play(PlayNode),
    Gather(GatherNode),
    Menu(MenuNode),
    Dial(DialNode),
    Enqueue(EnqueueNode),
    #[serde(alias = "voicemail")]
    Record(RecordNode),
    Conference(ConferenceNode),
    Set(SetNode),
    Branch(BranchNode),
    Goto(GotoNode),
    Subflow(SubflowNode),
    Hangup(HangupNode),
    Pause(PauseNode),
    Noop(NoopNode),
}

/// An outgoing edge of a node: the field it is written in and the target (`None`: end of flow).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge<'a> {
    pub field: String,
    pub target: Option<&'a str>,
}

impl Node {
    pub fn type_name(&self) -> &'static str {
        match self {
            Node::Play(_) => "play",
            Node::Gather(_) => "gather",
            Node::Menu(_) => "menu",
            Node::Dial(_) => "dial",
            Node::Enqueue(_) => "enqueue",
            Node::Record(_) => "record",
            Node::Conference(_) => "conference",
            Node::Set(_) => "set",
            Node::Branch(_) => "branch",
            Node::Goto(_) => "goto",
            Node::Subflow(_) => "subflow",
            Node::Hangup(_) => "hangup",
            Node::Pause(_) => "pause",
            Node::Noop(_) => "noop",
        }
    }

    /// Whether running the node waits for the edge (issues a command, or runs a sub-flow
    /// that may). Non-blocking nodes: set, branch, goto, noop.
    pub fn is_blocking(&self) -> bool {
        !matches!(self, Node::Set(_) | Node::Branch(_) | Node::Goto(_) | Node::Noop(_))
    }

    /// The node's `on` map (outcome → node), if it has one.
    pub fn on(&self) -> Option<&OnMap> {
        match self {
            Node::Play(n) => Some(&n.on),
            Node::Gather(n) => Some(&n.on),
            Node::Menu(n) => Some(&n.on),
            Node::Dial(n) => Some(&n.on),
            Node::Enqueue(n) => Some(&n.on),
            Node::Record(n) => Some(&n.on),
            Node::Conference(n) => Some(&n.on),
            Node::Pause(n) => Some(&n.on),
            _ => None,
        }
    }

    /// Keys allowed in the node's `on` map.
    pub fn on_keys(&self) -> &'static [&'static str] {
        match self {
            Node::Dial(_) => &["answered", "no-answer", "busy", "failed", "error"],
            Node::Enqueue(_) => &["answered", "timeout", "abandoned", "full", "error"],
            Node::Record(_) => &["recorded", "no-input", "error"],
            Node::Conference(_) => &["played", "failed", "error"],
            Node::Play(_) | Node::Gather(_) | Node::Menu(_) | Node::Pause(_) => &["error"],
            _ => &[],
        }
    }

    /// The node's `next` field, for nodes that have one.
    pub fn next(&self) -> Option<&str> {
        match self {
            Node::Play(n) => n.next.as_deref(),
            Node::Dial(n) => n.next.as_deref(),
            Node::Enqueue(n) => n.next.as_deref(),
            Node::Record(n) => n.next.as_deref(),
            Node::Conference(n) => n.next.as_deref(),
            Node::Set(n) => n.next.as_deref(),
            Node::Subflow(n) => n.next.as_deref(),
            Node::Pause(n) => n.next.as_deref(),
            Node::Noop(n) => n.next.as_deref(),
            Node::Goto(n) => Some(&n.target),
            _ => None,
        }
    }

    /// Every way out of the node.
    pub fn edges(&self) -> Vec<Edge<'_>> {
        fn e(field: impl Into<String>, target: Option<&String>) -> Edge<'_> {
            Edge { field: field.into(), target: target.map(String::as_str) }
        }
        let mut out = Vec::new();
        match self {
            Node::Play(n) => out.push(e("next", n.next.as_ref())),
            Node::Gather(n) => {
                out.extend(n.branches.iter().map(|(k, t)| e(format!("branches.{k:?}"), Some(t))));
                out.extend(n.patterns.iter().enumerate().map(|(i, p)| e(format!("patterns[{i}].next"), Some(&p.next))));
                if let Some(d) = &n.default {
                    out.push(e("default", Some(d)));
                }
                out.push(e("fallback", n.fallback.as_ref()));
            }
            Node::Menu(n) => {
                out.extend(n.options.iter().map(|(k, t)| e(format!("options.{k:?}"), Some(t))));
                out.push(e("fallback", n.fallback.as_ref()));
            }
            Node::Dial(n) => out.push(e("next", n.next.as_ref())),
            Node::Enqueue(n) => out.push(e("next", n.next.as_ref())),
            Node::Record(n) => out.push(e("next", n.next.as_ref())),
            Node::Conference(n) => out.push(e("next", n.next.as_ref())),
            Node::Set(n) => out.push(e("next", n.next.as_ref())),
            Node::Branch(n) => {
                out.extend(n.cases.iter().enumerate().map(|(i, c)| e(format!("cases[{i}].next"), Some(&c.next))));
                out.push(e("default", n.default.as_ref()));
            }
            Node::Goto(n) => out.push(e("target", Some(&n.target))),
            Node::Subflow(n) => out.push(e("next", n.next.as_ref())),
            Node::Hangup(_) => {}
            Node::Pause(n) => out.push(e("next", n.next.as_ref())),
            Node::Noop(n) => out.push(e("next", n.next.as_ref())),
        }
        if let Some(on) = self.on() {
            out.extend(on.iter().map(|(k, t)| e(format!("on.{k:?}"), Some(t))));
        }
        out
    }
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// What kind of problem a [`ValidationError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// Not JSON, wrong shape, unknown field or node type, wrong value type.
    Syntax,
    /// A format version this build does not read.
    Version,
    /// A `next` / branch / `on` / `start` naming a node that does not exist.
    UnknownTarget,
    /// A node that cannot be reached from `start`.
    Unreachable,
    /// A cycle of non-blocking nodes that never waits for input and never leaves.
    Loop,
    /// A node that must play something and does not.
    MissingPrompt,
    /// A digit pattern that does not compile or can never match.
    BadPattern,
    /// A value out of range or malformed.
    BadValue,
    /// Too large.
    TooLarge,
}

/// One problem found in a definition, naming the node (when it is about one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidationError {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    pub kind: ErrorKind,
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.node {
            Some(n) => write!(f, "node {n:?}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// All errors as one line each (for a 400 / 422 message).
pub fn describe(errors: &[ValidationError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

fn top(kind: ErrorKind, message: impl Into<String>) -> ValidationError {
    ValidationError { node: None, kind, message: message.into() }
}

// ---------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Parse definition text (syntax and shape only; see [`validate`] for the rest). Each node
/// is decoded on its own so an error names its node. Sets [`FlowDefinition::digest`].
pub fn parse(text: &str) -> Result<FlowDefinition, Vec<ValidationError>> {
    if text.len() > MAX_DEFINITION_BYTES {
        return Err(vec![top(ErrorKind::TooLarge, format!("definition is {} bytes, at most {MAX_DEFINITION_BYTES}", text.len()))]);
    }
    let value: Value = serde_json::from_str(text).map_err(|e| vec![top(ErrorKind::Syntax, format!("not valid JSON: {e}"))])?;
    let mut def = from_value(value)?;
    def.digest = Some(sha256_hex(text.as_bytes()));
    Ok(def)
}

/// [`parse`] then [`validate`]: what saving / publishing a flow runs.
pub fn parse_and_validate(text: &str) -> Result<FlowDefinition, Vec<ValidationError>> {
    let def = parse(text)?;
    validate(&def)?;
    Ok(def)
}

/// Decode a definition from a JSON value (no digest).
pub fn from_value(value: Value) -> Result<FlowDefinition, Vec<ValidationError>> {
    let Value::Object(mut obj) = value else {
        return Err(vec![top(ErrorKind::Syntax, "a flow definition is a JSON object with version, start and nodes")]);
    };
    let mut errs = Vec::new();
    for k in obj.keys() {
        if !matches!(k.as_str(), "version" | "start" | "nodes") {
            errs.push(top(ErrorKind::Syntax, format!("unknown field {} (expected version, start, nodes)", wire::quote(k))));
        }
    }
    let version = match obj.get("version") {
        None => {
            errs.push(top(ErrorKind::Version, format!("version: missing (this build reads version {FORMAT_VERSION})")));
            None
        }
        Some(v) => match v.as_u64() {
            Some(FORMAT_VERSION) => Some(FORMAT_VERSION),
            _ => {
                errs.push(top(ErrorKind::Version, format!("version: unsupported version {v} (this build reads version {FORMAT_VERSION})")));
                None
            }
        },
    };
    let start = match obj.get("start") {
        Some(Value::String(s)) => Some(s.clone()),
        None => {
            errs.push(top(ErrorKind::Syntax, "start: missing (the id of the first node)"));
            None
        }
        Some(_) => {
            errs.push(top(ErrorKind::Syntax, "start: expected a node id (string)"));
            None
        }
    };
    let mut nodes = BTreeMap::new();
    match obj.remove("nodes") {
        Some(Value::Object(map)) => {
            if map.len() > MAX_NODES {
                errs.push(top(ErrorKind::TooLarge, format!("nodes: {} nodes, at most {MAX_NODES}", map.len())));
            }
            for (id, v) in map {
                match serde_json::from_value::<Node>(v) {
                    Ok(n) => {
                        nodes.insert(id, n);
                    }
                    Err(e) => errs.push(ValidationError { node: Some(id), kind: ErrorKind::Syntax, message: e.to_string() }),
                }
            }
        }
        None => errs.push(top(ErrorKind::Syntax, "nodes: missing (an object of node id → node)")),
        Some(_) => errs.push(top(ErrorKind::Syntax, "nodes: expected an object of node id → node")),
    }
    match (errs.is_empty(), version, start) {
        (true, Some(version), Some(start)) => Ok(FlowDefinition { version, start, nodes, digest: None }),
        _ => Err(errs),
    }
}

// ---------------------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------------------

/// Check `${var}` references in a template: each `${` closes and names a valid variable.
pub fn check_template(t: &str) -> Result<(), String> {
    let mut rest = t;
    while let Some(i) = rest.find("${") {
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("unterminated \"${{\" in {}", wire::quote(t)));
        };
        let name = &after[..end];
        if !wire::is_var_name(name) {
            return Err(format!("bad variable reference \"${{{name}}}\" in {}", wire::quote(t)));
        }
        rest = &after[end + 1..];
    }
    Ok(())
}

/// Replace each `${var}` by the variable's value ("" when unset). Malformed references are
/// left as written.
pub fn interpolate(t: &str, vars: &Vars) -> String {
    let mut out = String::with_capacity(t.len());
    let mut rest = t;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find('}') {
            Some(end) if wire::is_var_name(&after[..end]) => {
                out.push_str(vars.get(&after[..end]).map(String::as_str).unwrap_or(""));
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------

fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn is_url(s: &str) -> bool {
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
    s.len() <= MAX_URL_LEN
        && rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
        && !s.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '<' | '>'))
}

fn is_voice(s: &str) -> bool {
    is_ident(&s.replace('.', "_"))
}

fn is_language(s: &str) -> bool {
    let mut parts = s.split('-');
    let first = parts.next().unwrap_or("");
    s.len() <= 35
        && (2..=3).contains(&first.len())
        && first.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn is_phone_number(s: &str) -> bool {
    let digits = s.strip_prefix('+').unwrap_or(s);
    (2..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

fn is_sip_uri(s: &str) -> bool {
    let rest = s.strip_prefix("sip:").or_else(|| s.strip_prefix("sips:"));
    s.len() <= 256 && rest.is_some_and(|r| !r.is_empty()) && !s.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '<' | '>'))
}

fn is_single_key(s: &str) -> bool {
    s.chars().count() == 1 && wire::is_dtmf(s)
}

/// Checks of one node, collecting errors that name it.
struct Check<'a> {
    node: &'a str,
    errs: &'a mut Vec<ValidationError>,
}

impl Check<'_> {
    fn err(&mut self, kind: ErrorKind, message: impl Into<String>) {
        self.errs.push(ValidationError { node: Some(self.node.to_string()), kind, message: message.into() });
    }

    fn range(&mut self, field: &str, v: u32, lo: u32, hi: u32) {
        if !(lo..=hi).contains(&v) {
            self.err(ErrorKind::BadValue, format!("{field}: {v} is out of range {lo}-{hi}"));
        }
    }

    fn var_name(&mut self, field: &str, name: &str) {
        if !wire::is_var_name(name) {
            self.err(ErrorKind::BadValue, format!("{field}: bad variable name {} (expected [A-Za-z_][A-Za-z0-9_]*, at most 64 chars)", wire::quote(name)));
        }
    }

    fn finish_key(&mut self, field: &str, k: &Option<String>) {
        if let Some(k) = k {
            if !is_single_key(k) {
                self.err(ErrorKind::BadValue, format!("{field}: {} is not one key of 0-9 * # (use null for none)", wire::quote(k)));
            }
        }
    }

    /// A prompt that must be there.
    fn required_prompt(&mut self, field: &str, p: &Option<Prompt>, what: &str) {
        match p {
            None => self.err(ErrorKind::MissingPrompt, format!("{field}: missing ({what} needs something to play)")),
            Some(p) => self.prompt(field, p),
        }
    }

    fn optional_prompt(&mut self, field: &str, p: &Option<Prompt>) {
        if let Some(p) = p {
            self.prompt(field, p);
        }
    }

    fn prompt(&mut self, field: &str, p: &Prompt) {
        let n = usize::from(p.media.is_some()) + usize::from(p.url.is_some()) + usize::from(p.tts.is_some());
        if n != 1 {
            let msg = match (field.is_empty(), n == 0) {
                (true, true) => "nothing to play (give exactly one of media, url, tts)".to_string(),
                (true, false) => "more than one of media, url, tts (give exactly one)".to_string(),
                (false, true) => format!("{field}: is empty (give exactly one of media, url, tts)"),
                (false, false) => format!("{field}: has more than one (give exactly one of media, url, tts)"),
            };
            self.err(ErrorKind::MissingPrompt, msg);
            return;
        }
        let prefix = if field.is_empty() { String::new() } else { format!("{field}.") };
        if let Some(k) = &p.media {
            if !wire::is_safe_media_key(k) {
                self.err(
                    ErrorKind::BadValue,
                    format!("{prefix}media: bad media key {} (1-256 chars of A-Z a-z 0-9 . _ - /, relative, no empty or dot segments)", wire::quote(k)),
                );
            }
        }
        if let Some(u) = &p.url {
            if !is_url(u) {
                self.err(ErrorKind::BadValue, format!("{prefix}url: bad URL {} (http:// or https://, at most {MAX_URL_LEN} chars, no spaces)", wire::quote(u)));
            }
        }
        if let Some(t) = &p.tts {
            let len = t.text.chars().count();
            if t.text.trim().is_empty() {
                self.err(ErrorKind::MissingPrompt, format!("{prefix}tts.text: empty"));
            } else if len > MAX_TTS_CHARS {
                self.err(ErrorKind::BadValue, format!("{prefix}tts.text: {len} characters, at most {MAX_TTS_CHARS}"));
            } else if let Err(e) = check_template(&t.text) {
                self.err(ErrorKind::BadValue, format!("{prefix}tts.text: {e}"));
            }
            if let Some(v) = &t.voice {
                if !is_voice(v) {
                    self.err(ErrorKind::BadValue, format!("{prefix}tts.voice: bad voice name {}", wire::quote(v)));
                }
            }
            if let Some(l) = &t.language {
                if !is_language(l) {
                    self.err(ErrorKind::BadValue, format!("{prefix}tts.language: bad language tag {} (e.g. en-US)", wire::quote(l)));
                }
            }
        }
    }

    fn pattern(&mut self, field: &str, p: &str) -> Option<DigitPattern> {
        match DigitPattern::parse(p) {
            Ok(p) => Some(p),
            Err(e) => {
                self.err(ErrorKind::BadPattern, format!("{field}: {e}"));
                None
            }
        }
    }

    fn on_keys(&mut self, node: &Node) {
        let allowed = node.on_keys();
        if let Some(on) = node.on() {
            for k in on.keys() {
                if !allowed.contains(&k.as_str()) {
                    self.err(ErrorKind::BadValue, format!("on.{k:?}: not an outcome of a {} node (expected one of {})", node.type_name(), allowed.join(", ")));
                }
            }
        }
    }

    fn condition(&mut self, field: &str, c: &Condition, depth: usize) {
        if depth > MAX_CONDITION_DEPTH {
            self.err(ErrorKind::TooLarge, format!("{field}: conditions nested deeper than {MAX_CONDITION_DEPTH}"));
            return;
        }
        match c {
            Condition::Var { var, test } => {
                self.var_name(&format!("{field}.var"), var);
                match test {
                    VarTest::In(list) if list.is_empty() || list.len() > MAX_LIST => {
                        self.err(ErrorKind::BadValue, format!("{field}.in: expected 1-{MAX_LIST} values"));
                    }
                    VarTest::Pattern(p) => {
                        self.pattern(&format!("{field}.pattern"), p);
                    }
                    _ => {}
                }
            }
            Condition::Calendar { calendar, is } => {
                if !typeid::is_valid(calendar, "cal") {
                    self.err(ErrorKind::BadValue, format!("{field}.calendar: expected a cal_ id, got {}", wire::quote(calendar)));
                }
                if is.is_empty() {
                    self.err(ErrorKind::BadValue, format!("{field}.is: empty (expected open, closed or holiday)"));
                }
            }
            Condition::All(list) | Condition::Any(list) => {
                let name = if matches!(c, Condition::All(_)) { "all" } else { "any" };
                if list.is_empty() || list.len() > MAX_LIST {
                    self.err(ErrorKind::BadValue, format!("{field}.{name}: expected 1-{MAX_LIST} conditions"));
                }
                for (i, c) in list.iter().enumerate() {
                    self.condition(&format!("{field}.{name}[{i}]"), c, depth + 1);
                }
            }
            Condition::Not(c) => self.condition(&format!("{field}.not"), c, depth + 1),
        }
    }

    fn node(&mut self, node: &Node) {
        self.on_keys(node);
        match node {
            Node::Play(n) => {
                self.prompt("", &n.prompt());
                self.range("loops", n.loops, 1, 100);
            }
            Node::Gather(n) => {
                self.required_prompt("prompt", &n.prompt, "a gather");
                self.optional_prompt("invalidPrompt", &n.invalid_prompt);
                self.optional_prompt("noInputPrompt", &n.no_input_prompt);
                self.range("minDigits", n.min_digits, 1, wire::MAX_DIGITS as u32);
                self.range("maxDigits", n.max_digits, n.min_digits.max(1), wire::MAX_DIGITS as u32);
                self.finish_key("finishKey", &n.finish_key);
                self.range("firstDigitTimeoutMs", n.first_digit_timeout_ms, 500, 120_000);
                self.range("interDigitTimeoutMs", n.inter_digit_timeout_ms, 500, 60_000);
                self.range("retries", n.retries, 0, 10);
                self.var_name("saveAs", &n.save_as);
                let (min, max) = (n.min_digits as usize, n.max_digits as usize);
                for k in n.branches.keys() {
                    let field = format!("branches.{k:?}");
                    if !wire::is_dtmf(k) {
                        self.err(ErrorKind::BadValue, format!("{field}: not a key sequence of 0-9 * #"));
                    } else if k.len() < min || k.len() > max {
                        self.err(ErrorKind::BadValue, format!("{field}: {} keys, but the gather collects {min}-{max} (minDigits-maxDigits)", k.len()));
                    } else if let Some(fk) = n.finish_key.as_deref().filter(|fk| k.contains(*fk)) {
                        self.err(ErrorKind::BadValue, format!("{field}: contains the finish key {fk:?}, so it can never be entered"));
                    }
                }
                if n.patterns.len() > MAX_LIST {
                    self.err(ErrorKind::TooLarge, format!("patterns: {} patterns, at most {MAX_LIST}", n.patterns.len()));
                }
                for (i, p) in n.patterns.iter().enumerate() {
                    let field = format!("patterns[{i}].pattern");
                    if let Some(dp) = self.pattern(&field, &p.pattern) {
                        if dp.min_len() > max || dp.max_len().is_some_and(|m| m < min) {
                            self.err(
                                ErrorKind::BadPattern,
                                format!("{field}: {:?} can never match: the gather collects {min}-{max} keys (minDigits-maxDigits)", p.pattern),
                            );
                        }
                    }
                }
                if n.branches.is_empty() && n.patterns.is_empty() && n.default.is_none() {
                    self.err(ErrorKind::BadValue, "no branches, patterns or default: every input would be invalid");
                }
            }
            Node::Menu(n) => {
                self.required_prompt("prompt", &n.prompt, "a menu");
                self.optional_prompt("invalidPrompt", &n.invalid_prompt);
                self.optional_prompt("noInputPrompt", &n.no_input_prompt);
                self.range("retries", n.retries, 0, 10);
                self.range("timeoutMs", n.timeout_ms, 500, 120_000);
                self.range("interDigitTimeoutMs", n.inter_digit_timeout_ms, 500, 60_000);
                if n.options.is_empty() {
                    self.err(ErrorKind::BadValue, "options: empty (map keys such as \"1\" to nodes)");
                }
                for k in n.options.keys() {
                    if !wire::is_dtmf(k) || k.len() > 8 {
                        self.err(ErrorKind::BadValue, format!("options.{k:?}: not a key sequence of 1-8 keys of 0-9 * #"));
                    }
                }
            }
            Node::Dial(n) => {
                if n.targets.is_empty() || n.targets.len() > MAX_DIAL_TARGETS {
                    self.err(ErrorKind::BadValue, format!("targets: expected 1-{MAX_DIAL_TARGETS} targets"));
                }
                for (i, t) in n.targets.iter().enumerate() {
                    let bad = match t {
                        Endpoint::User(v) => (!typeid::is_valid(v, "usr")).then(|| format!("expected a usr_ id, got {}", wire::quote(v))),
                        Endpoint::Device(v) => (!typeid::is_valid(v, "dev")).then(|| format!("expected a dev_ id, got {}", wire::quote(v))),
                        Endpoint::Number(v) => (!is_phone_number(v)).then(|| format!("bad number {} (digits, optionally with a leading +)", wire::quote(v))),
                        Endpoint::Sip(v) => (!is_sip_uri(v)).then(|| format!("bad SIP URI {} (sip: or sips:, no spaces)", wire::quote(v))),
                    };
                    if let Some(why) = bad {
                        self.err(ErrorKind::BadValue, format!("targets[{i}]: {why}"));
                    }
                }
                self.range("timeoutSecs", n.timeout_secs, 5, 600);
                if let Some(cid) = &n.caller_id {
                    if let Some(num) = &cid.number {
                        if !is_phone_number(num) {
                            self.err(ErrorKind::BadValue, format!("callerId.number: bad number {}", wire::quote(num)));
                        }
                    }
                    if let Some(name) = &cid.name {
                        if name.is_empty() || name.chars().count() > 64 || name.chars().any(|c| c.is_control() || matches!(c, '"' | '<' | '>')) {
                            self.err(ErrorKind::BadValue, format!("callerId.name: {} (1-64 chars, no quotes or angle brackets)", wire::quote(name)));
                        }
                    }
                }
            }
            Node::Enqueue(n) => {
                if !is_ident(&n.queue) {
                    self.err(ErrorKind::BadValue, format!("queue: bad queue id {} (1-64 chars of A-Z a-z 0-9 _ -)", wire::quote(&n.queue)));
                }
                self.optional_prompt("holdMusic", &n.hold_music);
                self.range("maxWaitSecs", n.max_wait_secs, 1, 14_400);
                if let Some(a) = &n.announce {
                    self.range("announce.everySecs", a.every_secs, 15, 3600);
                    self.optional_prompt("announce.prompt", &a.prompt);
                    if !a.position && a.prompt.is_none() {
                        self.err(ErrorKind::MissingPrompt, "announce: neither position nor prompt: nothing to announce");
                    }
                }
            }
            Node::Record(n) => {
                self.optional_prompt("prompt", &n.prompt);
                self.range("maxSecs", n.max_secs, 1, 3600);
                self.range("silenceSecs", n.silence_secs, 0, 60);
                self.finish_key("finishKey", &n.finish_key);
                self.var_name("saveAs", &n.save_as);
                if let Some(m) = &n.mailbox {
                    if !is_ident(m) {
                        self.err(ErrorKind::BadValue, format!("mailbox: bad mailbox {} (1-64 chars of A-Z a-z 0-9 _ -)", wire::quote(m)));
                    }
                }
            }
            Node::Conference(n) => {
                if !is_ident(&n.room) {
                    self.err(ErrorKind::BadValue, format!("room: bad room name {} (1-64 chars of A-Z a-z 0-9 _ -)", wire::quote(&n.room)));
                }
            }
            Node::Set(n) => {
                if n.vars.is_empty() || n.vars.len() > wire::MAX_VARS {
                    self.err(ErrorKind::BadValue, format!("vars: expected 1-{} variables", wire::MAX_VARS));
                }
                for (k, v) in &n.vars {
                    self.var_name(&format!("vars.{k:?}"), k);
                    if let Some(v) = v {
                        if v.len() > wire::MAX_VAR_VALUE_LEN {
                            self.err(ErrorKind::BadValue, format!("vars.{k:?}: longer than {} bytes", wire::MAX_VAR_VALUE_LEN));
                        } else if let Err(e) = check_template(v) {
                            self.err(ErrorKind::BadValue, format!("vars.{k:?}: {e}"));
                        }
                    }
                }
            }
            Node::Branch(n) => {
                if n.cases.is_empty() || n.cases.len() > MAX_LIST {
                    self.err(ErrorKind::BadValue, format!("cases: expected 1-{MAX_LIST} cases"));
                }
                for (i, c) in n.cases.iter().enumerate() {
                    self.condition(&format!("cases[{i}].when"), &c.when, 1);
                }
            }
            Node::Goto(_) | Node::Noop(_) => {}
            Node::Subflow(n) => {
                if !typeid::is_valid(&n.flow, "flow") {
                    self.err(ErrorKind::BadValue, format!("flow: expected a flow_ id, got {}", wire::quote(&n.flow)));
                }
            }
            Node::Hangup(n) => {
                if let Some(r) = &n.reason {
                    if r.chars().count() > 200 || r.chars().any(char::is_control) {
                        self.err(ErrorKind::BadValue, "reason: at most 200 printable characters");
                    }
                }
            }
            Node::Pause(n) => self.range("ms", n.ms, 1, 300_000),
        }
    }
}

/// Validate a parsed definition. Every problem is reported (not only the first), each
/// naming its node where it has one: format version, `start`, node ids, per-node values
/// (prompts, digits, patterns, ranges, ids), unknown targets, nodes unreachable from
/// `start`, and loops of non-blocking nodes (set / branch / goto / noop) that can neither
/// wait for input nor leave.
///
/// Limits of the loop check: a cycle that *has* a way out (a branch case leaving it) is
/// accepted even if its conditions can never change within one step; the interpreter's
/// per-step node budget catches those at run time.
pub fn validate(def: &FlowDefinition) -> Result<(), Vec<ValidationError>> {
    let mut errs = Vec::new();
    if def.version != FORMAT_VERSION {
        errs.push(top(ErrorKind::Version, format!("version: unsupported version {} (this build reads version {FORMAT_VERSION})", def.version)));
    }
    if def.nodes.len() > MAX_NODES {
        errs.push(top(ErrorKind::TooLarge, format!("nodes: {} nodes, at most {MAX_NODES}", def.nodes.len())));
    }
    if def.nodes.is_empty() {
        errs.push(top(ErrorKind::BadValue, "nodes: empty"));
    }
    let start_ok = def.nodes.contains_key(&def.start);
    if !start_ok {
        errs.push(top(ErrorKind::UnknownTarget, format!("start: no node {}", wire::quote(&def.start))));
    }
    for (id, node) in &def.nodes {
        let mut c = Check { node: id, errs: &mut errs };
        if !is_ident(id) {
            c.err(ErrorKind::BadValue, "bad node id (1-64 chars of A-Z a-z 0-9 _ -)");
        }
        c.node(node);
        for e in node.edges() {
            if let Some(t) = e.target {
                if !def.nodes.contains_key(t) {
                    c.err(ErrorKind::UnknownTarget, format!("{}: no node {}", e.field, wire::quote(t)));
                }
            }
        }
    }
    if start_ok {
        let reachable = reachable_from(def, &def.start);
        for id in def.nodes.keys().filter(|id| !reachable.contains(id.as_str())) {
            errs.push(ValidationError { node: Some(id.clone()), kind: ErrorKind::Unreachable, message: format!("unreachable from start {:?}", def.start) });
        }
        for scc in closed_loops(def) {
            if scc.iter().any(|n| reachable.contains(n.as_str())) {
                let path = scc.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ");
                errs.push(ValidationError {
                    node: Some(scc[0].clone()),
                    kind: ErrorKind::Loop,
                    message: format!("loop with no input and no exit: nodes {path} only lead to each other and never wait for the caller"),
                });
            }
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

fn reachable_from<'a>(def: &'a FlowDefinition, start: &'a str) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![start];
    while let Some(id) = todo.pop() {
        if !seen.insert(id) {
            continue;
        }
        if let Some((_, node)) = def.nodes.get_key_value(id) {
            for e in node.edges() {
                if let Some(t) = e.target {
                    if let Some((k, _)) = def.nodes.get_key_value(t) {
                        todo.push(k.as_str());
                    }
                }
            }
        }
    }
    seen
}

/// Strongly connected components of the non-blocking subgraph that contain a cycle and have
/// no edge leaving them (to a blocking node, another component, an unknown node, or the end
/// of the flow). Each is sorted; the list is sorted by first member.
fn closed_loops(def: &FlowDefinition) -> Vec<Vec<String>> {
    let ids: Vec<&str> = def.nodes.iter().filter(|(_, n)| !n.is_blocking()).map(|(k, _)| k.as_str()).collect();
    let index: BTreeMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    // successors within the non-blocking subgraph, and whether a node has any way out of it
    let mut succ: Vec<Vec<usize>> = vec![Vec::new(); ids.len()];
    let mut leaves: Vec<bool> = vec![false; ids.len()];
    for (i, id) in ids.iter().enumerate() {
        for e in def.nodes[*id].edges() {
            match e.target.and_then(|t| index.get(t)) {
                Some(&j) => succ[i].push(j),
                None => leaves[i] = true,
            }
        }
    }
    // Tarjan's algorithm, iterative.
    let n = ids.len();
    let mut idx = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next_index = 0;
    let mut comp = vec![usize::MAX; n];
    let mut comps: Vec<Vec<usize>> = Vec::new();
    for root in 0..n {
        if idx[root] != usize::MAX {
            continue;
        }
        let mut call: Vec<(usize, usize)> = vec![(root, 0)];
        idx[root] = next_index;
        low[root] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut pos)) = call.last_mut() {
            if *pos < succ[v].len() {
                let w = succ[v][*pos];
                *pos += 1;
                if idx[w] == usize::MAX {
                    idx[w] = next_index;
                    low[w] = next_index;
                    next_index += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    call.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(idx[w]);
                }
            } else {
                call.pop();
                if let Some(&(parent, _)) = call.last() {
                    low[parent] = low[parent].min(low[v]);
                }
                if low[v] == idx[v] {
                    let mut members = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        comp[w] = comps.len();
                        members.push(w);
                        if w == v {
                            break;
                        }
                    }
                    comps.push(members);
                }
            }
        }
    }
    let mut out = Vec::new();
    for (c, members) in comps.iter().enumerate() {
        let cyclic = members.len() > 1 || succ[members[0]].contains(&members[0]);
        let closed = members.iter().all(|&m| !leaves[m] && succ[m].iter().all(|&s| comp[s] == c));
        if cyclic && closed {
            let mut names: Vec<String> = members.iter().map(|&m| ids[m].to_string()).collect();
            names.sort();
            out.push(names);
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests;
