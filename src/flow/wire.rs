//! Wire types of `POST /flow`, shared with the edge-agent daemon (it depends on this crate
//! and reuses them). Everything here is plain serde: no I/O, no clock.
//!
//! # The loop
//!
//! The media engine starts a call's flow, executes the command it gets back, reports the
//! result as an [`Outcome`] with the command's `seq`, and gets the next command, until a
//! response carries `"done": true`:
//!
//! ```json
//! → {"callId":"a84b4c76e66710@pbx","accountId":"acc_01jf18ah3jeb5w6dfp27sgjsbt","flowId":"flow_01jf18ah3jeb5w6dfp27sgjsbt","vars":{"caller":"+15550001111"}}
//! ← {"callId":"a84b4c76e66710@pbx","seq":1,"command":"play","media":[{"type":"tts","text":"Thank you for calling Acme.","voice":null,"language":null}],"loops":1,"done":false}
//! → {"callId":"a84b4c76e66710@pbx","seq":1,"outcome":"played"}
//! ← {"callId":"a84b4c76e66710@pbx","seq":2,"command":"gather","prompts":[...],"minDigits":1,"maxDigits":1,...,"done":false}
//! → {"callId":"a84b4c76e66710@pbx","seq":2,"outcome":"digit:2"}
//! ← … → {"callId":"a84b4c76e66710@pbx","seq":7,"outcome":"hangup"}
//! ← {"callId":"a84b4c76e66710@pbx","seq":8,"command":"hangup","cause":"normal","reason":"call ended: completed","done":true}
//! ```
//!
//! Retrying a step with the same `seq` and outcome returns the same command again (safe to
//! retry on a timeout). `docs/flows.md` has the complete walkthrough (replayed by a test) and
//! the error codes.

use crate::error::ApiError;
use crate::typeid;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Most keys in `digits:<keys>`.
pub const MAX_DIGITS: usize = 32;
/// Longest media key.
pub const MAX_MEDIA_KEY_LEN: usize = 256;
/// Longest `error:<reason>` reason.
pub const MAX_REASON_LEN: usize = 200;
/// Longest outcome string (`recorded:` + the longest key).
pub const MAX_OUTCOME_LEN: usize = 9 + MAX_MEDIA_KEY_LEN;
/// Longest `callId` (a SIP Call-ID).
pub const MAX_CALL_ID_LEN: usize = 256;
/// Most variables a call may hold.
pub const MAX_VARS: usize = 64;
/// Longest variable name.
pub const MAX_VAR_NAME_LEN: usize = 64;
/// Longest variable value, in bytes.
pub const MAX_VAR_VALUE_LEN: usize = 1024;
/// Largest `data` object of a step, serialized.
pub const MAX_DATA_BYTES: usize = 4096;
/// Most extra (untyped) keys in a step's `data`.
pub const MAX_DATA_EXTRA_KEYS: usize = 16;

/// Variables of a call: names to string values.
pub type Vars = BTreeMap<String, String>;

/// Whether every char of `s` is a DTMF key (`0-9`, `*`, `#`); false for "".
pub fn is_dtmf(s: &str) -> bool {
    !s.is_empty() && s.chars().all(super::pattern::is_key)
}

/// A media key as the flow and R2 see it: 1-256 chars of `A-Z a-z 0-9 . _ - /`, relative
/// (no leading `/`), no empty segment (`//`, trailing `/`), no segment starting with `.`
/// (so no `.`/`..` traversal and no hidden files).
pub fn is_safe_media_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_MEDIA_KEY_LEN
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
        && key.split('/').all(|seg| !seg.is_empty() && !seg.starts_with('.'))
}

/// A variable name: `[A-Za-z_][A-Za-z0-9_]*`, at most 64 chars.
pub fn is_var_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty() && b.len() <= MAX_VAR_NAME_LEN && (b[0].is_ascii_alphabetic() || b[0] == b'_') && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// Debug-quoted, cut to 64 chars: for echoing client input in error messages.
pub(crate) fn quote(s: &str) -> String {
    if s.chars().count() > 64 {
        let cut: String = s.chars().take(64).collect();
        format!("{cut:?}…")
    } else {
        format!("{s:?}")
    }
}

// ---------------------------------------------------------------------------------------
// Outcomes
// ---------------------------------------------------------------------------------------

/// Result of an `enqueue` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueueResult {
    /// An agent answered (reported when the conversation is over).
    Answered,
    /// `maxWaitSecs` passed.
    Timeout,
    /// The caller left the queue (pressed a key to leave, or an exit condition).
    Abandoned,
    /// The queue refused the call (full / closed).
    Full,
}

impl QueueResult {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueResult::Answered => "answered",
            QueueResult::Timeout => "timeout",
            QueueResult::Abandoned => "abandoned",
            QueueResult::Full => "full",
        }
    }
}

/// What the edge reports after executing a command. On the wire it is one string:
///
/// | string              | meaning                                                           |
/// |---------------------|-------------------------------------------------------------------|
/// | `digit:1`           | one key pressed (gather)                                          |
/// | `digits:1234`       | keys collected (gather), 1-32 of `0-9*#`, finish key not included |
/// | `no-input`          | gather: nothing pressed in time; record: nothing recorded         |
/// | `invalid`           | gather: input the edge rejected itself (e.g. fewer than `minDigits`) |
/// | `answered`          | dial: a target answered and the bridged call has ended            |
/// | `no-answer`         | dial: nobody answered before `timeoutSecs`                        |
/// | `busy`              | dial: every target was busy                                       |
/// | `failed`            | dial: could not be placed; conference: could not join             |
/// | `recorded:<key>`    | record: stored and uploaded under `<key>` (the command's `key`)    |
/// | `queue:answered`, `queue:timeout`, `queue:abandoned`, `queue:full` | enqueue result     |
/// | `played`            | play / pause finished; conference ended with the caller still on  |
/// | `hangup`            | the caller hung up (any command); closes the call                 |
/// | `error:<reason>`    | the edge could not execute the command; reason 1-200 printable chars |
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Outcome {
    Digit(char),
    Digits(String),
    NoInput,
    Invalid,
    Answered,
    NoAnswer,
    Busy,
    Failed,
    Recorded(String),
    Queue(QueueResult),
    Played,
    Hangup,
    Error(String),
}

impl Outcome {
    /// The outcome's name without its parameter, as used in a node's `on` map:
    /// `digit`, `digits`, `no-input`, `invalid`, `answered`, `no-answer`, `busy`, `failed`,
    /// `recorded`, `answered`/`timeout`/`abandoned`/`full` (queue), `played`, `hangup`, `error`.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Digit(_) => "digit",
            Outcome::Digits(_) => "digits",
            Outcome::NoInput => "no-input",
            Outcome::Invalid => "invalid",
            Outcome::Answered => "answered",
            Outcome::NoAnswer => "no-answer",
            Outcome::Busy => "busy",
            Outcome::Failed => "failed",
            Outcome::Recorded(_) => "recorded",
            Outcome::Queue(q) => q.as_str(),
            Outcome::Played => "played",
            Outcome::Hangup => "hangup",
            Outcome::Error(_) => "error",
        }
    }

    /// Keys collected by a gather (`digit:` or `digits:`).
    pub fn collected(&self) -> Option<String> {
        match self {
            Outcome::Digit(c) => Some(c.to_string()),
            Outcome::Digits(d) => Some(d.clone()),
            _ => None,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Digit(c) => write!(f, "digit:{c}"),
            Outcome::Digits(d) => write!(f, "digits:{d}"),
            Outcome::Recorded(k) => write!(f, "recorded:{k}"),
            Outcome::Queue(q) => write!(f, "queue:{}", q.as_str()),
            Outcome::Error(r) => write!(f, "error:{r}"),
            other => f.write_str(other.kind()),
        }
    }
}

/// Why an outcome string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeError(pub String);

impl fmt::Display for OutcomeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OutcomeError {}

impl FromStr for Outcome {
    type Err = OutcomeError;

    fn from_str(s: &str) -> Result<Outcome, OutcomeError> {
        let bad = |why: &str| Err(OutcomeError(format!("bad outcome {}: {why}", quote(s))));
        if s.len() > MAX_OUTCOME_LEN {
            return bad(&format!("longer than {MAX_OUTCOME_LEN} bytes"));
        }
        match s {
            "no-input" => return Ok(Outcome::NoInput),
            "invalid" => return Ok(Outcome::Invalid),
            "answered" => return Ok(Outcome::Answered),
            "no-answer" => return Ok(Outcome::NoAnswer),
            "busy" => return Ok(Outcome::Busy),
            "failed" => return Ok(Outcome::Failed),
            "played" => return Ok(Outcome::Played),
            "hangup" => return Ok(Outcome::Hangup),
            _ => {}
        }
        let Some((name, arg)) = s.split_once(':') else {
            return bad("unknown outcome (expected digit:<key>, digits:<keys>, no-input, invalid, answered, no-answer, busy, failed, recorded:<key>, queue:<result>, played, hangup or error:<reason>)");
        };
        match name {
            "digit" => {
                let mut it = arg.chars();
                match (it.next(), it.next()) {
                    (Some(c), None) if super::pattern::is_key(c) => Ok(Outcome::Digit(c)),
                    _ => bad("digit: takes exactly one key of 0-9 * #"),
                }
            }
            "digits" => {
                if !is_dtmf(arg) || arg.len() > MAX_DIGITS {
                    bad(&format!("digits: takes 1-{MAX_DIGITS} keys of 0-9 * #"))
                } else {
                    Ok(Outcome::Digits(arg.to_string()))
                }
            }
            "recorded" => {
                if is_safe_media_key(arg) {
                    Ok(Outcome::Recorded(arg.to_string()))
                } else {
                    bad("recorded: takes a media key (1-256 chars of A-Z a-z 0-9 . _ - /, relative, no empty or dot segments)")
                }
            }
            "queue" => match arg {
                "answered" => Ok(Outcome::Queue(QueueResult::Answered)),
                "timeout" => Ok(Outcome::Queue(QueueResult::Timeout)),
                "abandoned" => Ok(Outcome::Queue(QueueResult::Abandoned)),
                "full" => Ok(Outcome::Queue(QueueResult::Full)),
                _ => bad("queue: takes answered, timeout, abandoned or full"),
            },
            "error" => {
                let len = arg.chars().count();
                if len == 0 || len > MAX_REASON_LEN || arg.chars().any(char::is_control) {
                    bad(&format!("error: takes a reason of 1-{MAX_REASON_LEN} printable characters"))
                } else {
                    Ok(Outcome::Error(arg.to_string()))
                }
            }
            _ => bad("unknown outcome (expected digit:<key>, digits:<keys>, no-input, invalid, answered, no-answer, busy, failed, recorded:<key>, queue:<result>, played, hangup or error:<reason>)"),
        }
    }
}

impl Serialize for Outcome {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Outcome {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Outcome, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

/// Details the edge may attach to a step (all optional). They go into the call's trace.
///
/// ```json
/// {"durationMs":61250,"answeredBy":"sip:1002@10.0.0.7:5060","sipStatus":200}
/// ```
///
/// Unknown keys are kept (at most 16) so a newer edge loses nothing; the whole object is
/// at most 4096 bytes serialized.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepData {
    /// How long the command ran (recording length for `recorded:`, talk time for `answered`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Who answered (dial: the URI; enqueue: the agent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_by: Option<String>,
    /// Final SIP status of a dial (486, 480, 503…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_status: Option<u16>,
    /// Hangup cause as the media engine saw it (`NORMAL_CLEARING`, `USER_BUSY`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hangup_cause: Option<String>,
    /// Time spent waiting in a queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
    /// Size of an uploaded recording.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Free text for a support engineer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Anything else the edge sent.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl StepData {
    pub fn validate(&self) -> Result<(), String> {
        if self.extra.len() > MAX_DATA_EXTRA_KEYS {
            return Err(format!("data: more than {MAX_DATA_EXTRA_KEYS} unknown keys"));
        }
        let size = serde_json::to_vec(self).map(|v| v.len()).unwrap_or(usize::MAX);
        if size > MAX_DATA_BYTES {
            return Err(format!("data: {size} bytes serialized, at most {MAX_DATA_BYTES}"));
        }
        Ok(())
    }
}

/// Start a call's flow.
///
/// ```json
/// {"callId":"a84b4c76e66710@pbx","accountId":"acc_01jf18ah3jeb5w6dfp27sgjsbt","flowId":"flow_01jf18ah3jeb5w6dfp27sgjsbt","vars":{"calendar":"open","called":"+15551230100","caller":"+15550001111"}}
/// ```
///
/// `vars` is optional; its values may be strings, numbers or booleans (kept as their JSON
/// text) or `null` (dropped). /route hands the edge the vars to pass on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowStart {
    pub call_id: String,
    pub account_id: String,
    pub flow_id: String,
    #[serde(default, deserialize_with = "de_vars", skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: Vars,
}

fn de_vars<'de, D: Deserializer<'de>>(d: D) -> Result<Vars, D::Error> {
    let raw = Option::<Map<String, Value>>::deserialize(d)?.unwrap_or_default();
    let mut vars = Vars::new();
    for (k, v) in raw {
        let text = match v {
            Value::Null => continue,
            Value::String(s) => s,
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::Array(_) | Value::Object(_) => {
                return Err(serde::de::Error::custom(format!("vars.{k}: expected a string, number, boolean or null")));
            }
        };
        vars.insert(k, text);
    }
    Ok(vars)
}

/// Check a set of call variables against the limits.
pub fn validate_vars(vars: &Vars) -> Result<(), String> {
    if vars.len() > MAX_VARS {
        return Err(format!("vars: more than {MAX_VARS} variables"));
    }
    for (k, v) in vars {
        if !is_var_name(k) {
            return Err(format!("vars: bad name {} (expected [A-Za-z_][A-Za-z0-9_]*, at most {MAX_VAR_NAME_LEN} chars)", quote(k)));
        }
        if v.len() > MAX_VAR_VALUE_LEN {
            return Err(format!("vars.{k}: longer than {MAX_VAR_VALUE_LEN} bytes"));
        }
    }
    Ok(())
}

fn validate_call_id(call_id: &str) -> Result<(), String> {
    if call_id.is_empty() || call_id.len() > MAX_CALL_ID_LEN || call_id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!("callId: expected 1-{MAX_CALL_ID_LEN} printable characters without spaces"));
    }
    Ok(())
}

impl FlowStart {
    pub fn validate(&self) -> Result<(), ApiError> {
        validate_call_id(&self.call_id).map_err(ApiError::bad_request)?;
        if !typeid::is_valid(&self.account_id, "acc") {
            return Err(ApiError::bad_request("accountId: expected an acc_ id"));
        }
        if !typeid::is_valid(&self.flow_id, "flow") {
            return Err(ApiError::bad_request("flowId: expected a flow_ id"));
        }
        validate_vars(&self.vars).map_err(ApiError::bad_request)
    }
}

/// Report the outcome of command `seq` and ask for the next one.
///
/// ```json
/// {"callId":"a84b4c76e66710@pbx","seq":2,"outcome":"digits:1234"}
/// {"callId":"a84b4c76e66710@pbx","seq":5,"outcome":"recorded:recordings/a84b4c76e66710-pbx/5.wav","data":{"durationMs":12800,"bytes":204800}}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowStep {
    pub call_id: String,
    pub seq: u64,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<StepData>,
}

impl FlowStep {
    pub fn validate(&self) -> Result<(), ApiError> {
        validate_call_id(&self.call_id).map_err(ApiError::bad_request)?;
        if self.seq == 0 {
            return Err(ApiError::bad_request("seq: commands are numbered from 1"));
        }
        if let Some(d) = &self.data {
            d.validate().map_err(ApiError::bad_request)?;
        }
        Ok(())
    }
}

/// A `POST /flow` body: a start (has `flowId`) or a step (has `seq` and `outcome`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum FlowRequest {
    Start(FlowStart),
    Step(FlowStep),
}

impl FlowRequest {
    /// Decode and validate a request body (as parsed by [`crate::body::parse_value`]).
    /// Every failure is a 400 naming the field.
    pub fn from_value(v: Value) -> Result<FlowRequest, ApiError> {
        let Some(obj) = v.as_object() else {
            return Err(ApiError::bad_request("request body must be a JSON object"));
        };
        let is_start = obj.contains_key("flowId");
        let is_step = obj.contains_key("seq") || obj.contains_key("outcome");
        let invalid = |e: serde_json::Error| ApiError::bad_request(format!("invalid request: {e}"));
        match (is_start, is_step) {
            (true, true) => Err(ApiError::bad_request("a /flow request is either a start (flowId) or a step (seq, outcome), not both")),
            (false, false) => Err(ApiError::bad_request("a /flow request needs flowId (start) or seq and outcome (step)")),
            (true, false) => {
                let s: FlowStart = serde_json::from_value(v).map_err(invalid)?;
                s.validate()?;
                Ok(FlowRequest::Start(s))
            }
            (false, true) => {
                let s: FlowStep = serde_json::from_value(v).map_err(invalid)?;
                s.validate()?;
                Ok(FlowRequest::Step(s))
            }
        }
    }

    pub fn call_id(&self) -> &str {
        match self {
            FlowRequest::Start(s) => &s.call_id,
            FlowRequest::Step(s) => &s.call_id,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------

/// Something to play. A `file` is a media key in the account's private bucket with the URL
/// the edge fetches it from using its media-node credential.
///
/// ```json
/// {"type":"file","key":"prompts/welcome.wav","url":"https://cp.example.com/media/prompts/welcome.wav"}
/// {"type":"url","url":"https://cdn.example.com/moh.mp3"}
/// {"type":"tts","text":"Welcome to Acme","voice":"en-US-Standard-C","language":"en-US"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Media {
    File {
        key: String,
        url: String,
    },
    Url {
        url: String,
    },
    Tts {
        text: String,
        #[serde(default)]
        voice: Option<String>,
        #[serde(default)]
        language: Option<String>,
    },
}

impl Media {
    /// Short human description for logs and traces.
    pub fn summary(&self) -> String {
        match self {
            Media::File { key, .. } => format!("file {key}"),
            Media::Url { url } => format!("url {url}"),
            Media::Tts { text, .. } => {
                let short: String = text.chars().take(60).collect();
                if short.len() < text.len() {
                    format!("tts {short:?}…")
                } else {
                    format!("tts {short:?}")
                }
            }
        }
    }
}

/// `play`: play `media` in order, the whole list `loops` times; report `played`.
///
/// ```json
/// {"callId":"c1","seq":1,"command":"play","media":[{"type":"tts","text":"Welcome to Acme","voice":null,"language":null}],"loops":1,"done":false}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Play {
    pub media: Vec<Media>,
    pub loops: u32,
}

/// `gather`: play `prompts` (keys pressed during them barge in) and collect DTMF.
/// Collection ends at `maxDigits` keys, at the finish key (not included in the result), or
/// when a timeout passes: `firstDigitTimeoutMs` after the prompts end with nothing pressed
/// (→ `no-input`), `interDigitTimeoutMs` after the last key. Report `digit:<k>` /
/// `digits:<keys>`, `no-input`, or `invalid` when fewer than `minDigits` were pressed.
/// `attempt` / `maxAttempts` are informational (retries are decided by the server).
///
/// ```json
/// {"callId":"c1","seq":2,"command":"gather","prompts":[{"type":"file","key":"prompts/invalid.wav","url":"https://cp.example.com/media/prompts/invalid.wav"},{"type":"tts","text":"Press 1 for sales, 2 for support","voice":null,"language":null}],"minDigits":1,"maxDigits":1,"finishKey":null,"firstDigitTimeoutMs":5000,"interDigitTimeoutMs":3000,"attempt":2,"maxAttempts":3,"done":false}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gather {
    pub prompts: Vec<Media>,
    pub min_digits: u32,
    pub max_digits: u32,
    /// One key that ends input early, or `null` for none.
    #[serde(default)]
    pub finish_key: Option<String>,
    pub first_digit_timeout_ms: u32,
    pub inter_digit_timeout_ms: u32,
    pub attempt: u32,
    pub max_attempts: u32,
}

/// Ring order of a `dial`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DialStrategy {
    /// Every URI of every target at once; the first to answer wins.
    #[default]
    Simultaneous,
    /// Target after target, each for `timeoutSecs` (a target's URIs ring together).
    Sequential,
}

/// One dial target, resolved: a user's registered devices, a device, an external number
/// routed through the SIP edge, or a SIP URI. `label` says what it was in the flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DialTarget {
    pub label: String,
    pub uris: Vec<String>,
}

/// Caller id presented on a dial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallerId {
    #[serde(default)]
    pub number: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// `dial`: ring the targets and bridge the caller to whoever answers. Report `answered`
/// once the bridged call has ended (with `data.durationMs`), or `no-answer`, `busy`, `failed`.
///
/// ```json
/// {"callId":"c1","seq":3,"command":"dial","targets":[{"label":"user usr_01jf18ah3jeb5w6dfp27sgjsbt","uris":["sip:1002@acme.sip.io"]},{"label":"number +15557654321","uris":["sip:+15557654321@sip-edge.internal"]}],"strategy":"sequential","timeoutSecs":20,"callerId":{"number":"+15551230100","name":"Acme"},"done":false}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dial {
    pub targets: Vec<DialTarget>,
    pub strategy: DialStrategy,
    /// Ring time: in total (simultaneous) or per target (sequential).
    pub timeout_secs: u32,
    #[serde(default)]
    pub caller_id: Option<CallerId>,
}

/// Periodic announcements while waiting in a queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Announce {
    pub every_secs: u32,
    /// Say the caller's position in the queue.
    pub position: bool,
    /// Played at each announcement (before the position), if any.
    #[serde(default)]
    pub prompt: Option<Media>,
}

/// `enqueue`: put the caller in a queue. Report `queue:answered` when an agent's
/// conversation has ended, `queue:timeout` after `maxWaitSecs`, `queue:abandoned`,
/// `queue:full`.
///
/// ```json
/// {"callId":"c1","seq":4,"command":"enqueue","queue":"sales","holdMusic":{"type":"file","key":"moh/jazz.wav","url":"https://cp.example.com/media/moh/jazz.wav"},"maxWaitSecs":600,"announce":{"everySecs":60,"position":true,"prompt":null},"done":false}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Enqueue {
    pub queue: String,
    #[serde(default)]
    pub hold_music: Option<Media>,
    pub max_wait_secs: u32,
    #[serde(default)]
    pub announce: Option<Announce>,
}

/// `record` (voicemail): play `prompts`, a beep if `beep`, then record until the finish key,
/// `silenceSecs` of silence (0: never), `maxSecs`, or the caller hangs up; upload with
/// `PUT uploadUrl` (the media-node credential; metadata: `mailbox`, duration) and report
/// `recorded:<key>` with `data.durationMs` — also when the caller hung up during the
/// recording (the next command then gets `hangup`). Report `no-input` if nothing was
/// recorded.
///
/// ```json
/// {"callId":"c1","seq":5,"command":"record","key":"recordings/c1/5.wav","uploadUrl":"https://cp.example.com/media/recordings/c1/5.wav","prompts":[],"beep":true,"maxSecs":120,"silenceSecs":5,"finishKey":"#","mailbox":"usr_01jf18ah3jeb5w6dfp27sgjsbt","done":false}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub key: String,
    pub upload_url: String,
    #[serde(default)]
    pub prompts: Vec<Media>,
    pub beep: bool,
    pub max_secs: u32,
    pub silence_secs: u32,
    #[serde(default)]
    pub finish_key: Option<String>,
    #[serde(default)]
    pub mailbox: Option<String>,
}

/// Role in a conference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ConferenceRole {
    #[default]
    Participant,
    /// Can mute/kick; the conference ends when the last moderator leaves.
    Moderator,
    /// Listen only.
    Muted,
}

/// `conference`: join the room. `room` is already scoped to the account (unique on the
/// media node); `name` is the room name as written in the flow. Report `played` when the
/// conference ends with the caller still on the line, `failed` if the caller could not join.
///
/// ```json
/// {"callId":"c1","seq":6,"command":"conference","room":"acc_01jf18ah3jeb5w6dfp27sgjsbt-standup","name":"standup","role":"moderator","done":false}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conference {
    pub room: String,
    pub name: String,
    pub role: ConferenceRole,
}

/// Why the call is hung up. The edge maps it with [`HangupCause::q850`] /
/// [`HangupCause::sip_status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum HangupCause {
    #[default]
    Normal,
    Busy,
    Rejected,
    NoAnswer,
    Unallocated,
    Failure,
}

impl HangupCause {
    /// Q.850 cause name as FreeSWITCH spells it.
    pub fn q850(self) -> &'static str {
        match self {
            HangupCause::Normal => "NORMAL_CLEARING",
            HangupCause::Busy => "USER_BUSY",
            HangupCause::Rejected => "CALL_REJECTED",
            HangupCause::NoAnswer => "NO_ANSWER",
            HangupCause::Unallocated => "UNALLOCATED_NUMBER",
            HangupCause::Failure => "NORMAL_TEMPORARY_FAILURE",
        }
    }

    /// SIP final response for a call that was never answered.
    pub fn sip_status(self) -> u16 {
        match self {
            HangupCause::Normal => 480,
            HangupCause::Busy => 486,
            HangupCause::Rejected => 603,
            HangupCause::NoAnswer => 480,
            HangupCause::Unallocated => 404,
            HangupCause::Failure => 503,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HangupCause::Normal => "normal",
            HangupCause::Busy => "busy",
            HangupCause::Rejected => "rejected",
            HangupCause::NoAnswer => "no-answer",
            HangupCause::Unallocated => "unallocated",
            HangupCause::Failure => "failure",
        }
    }
}

/// `hangup`: end the call with `cause`; `reason` is for logs. Unless the response says
/// `"done": true`, report `hangup` once it is done.
///
/// ```json
/// {"callId":"c1","seq":7,"command":"hangup","cause":"normal","reason":"end of flow after node \"bye\"","done":false}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hangup {
    pub cause: HangupCause,
    pub reason: String,
}

/// `noop`: wait `pauseMs` (0: not at all) with the line open, then report `played`.
///
/// ```json
/// {"callId":"c1","seq":8,"command":"noop","pauseMs":1500,"done":false}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Noop {
    pub pause_ms: u32,
}

/// The command in a /flow response, tagged by `command`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Command {
    Play(Play),
    Gather(Gather),
    Dial(Dial),
    Enqueue(Enqueue),
    Record(Record),
    Conference(Conference),
    Hangup(Hangup),
    Noop(Noop),
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Play(_) => "play",
            Command::Gather(_) => "gather",
            Command::Dial(_) => "dial",
            Command::Enqueue(_) => "enqueue",
            Command::Record(_) => "record",
            Command::Conference(_) => "conference",
            Command::Hangup(_) => "hangup",
            Command::Noop(_) => "noop",
        }
    }

    /// Outcome strings this command can end with (besides `hangup` and `error:<reason>`,
    /// which every command accepts; a `hangup` command accepts any outcome).
    pub fn expected_outcomes(&self) -> &'static [&'static str] {
        match self {
            Command::Play(_) | Command::Noop(_) => &["played"],
            Command::Gather(_) => &["digit:<key>", "digits:<keys>", "no-input", "invalid"],
            Command::Dial(_) => &["answered", "no-answer", "busy", "failed"],
            Command::Enqueue(_) => &["queue:answered", "queue:timeout", "queue:abandoned", "queue:full"],
            Command::Record(_) => &["recorded:<key>", "no-input"],
            Command::Conference(_) => &["played", "failed"],
            Command::Hangup(_) => &["hangup"],
        }
    }

    /// Whether `outcome` can be the result of this command.
    pub fn accepts(&self, outcome: &Outcome) -> bool {
        use Outcome as O;
        if matches!(outcome, O::Hangup | O::Error(_)) {
            return true;
        }
        match self {
            Command::Play(_) | Command::Noop(_) => matches!(outcome, O::Played),
            Command::Gather(_) => matches!(outcome, O::Digit(_) | O::Digits(_) | O::NoInput | O::Invalid),
            Command::Dial(_) => matches!(outcome, O::Answered | O::NoAnswer | O::Busy | O::Failed),
            Command::Enqueue(_) => matches!(outcome, O::Queue(_)),
            Command::Record(_) => matches!(outcome, O::Recorded(_) | O::NoInput),
            Command::Conference(_) => matches!(outcome, O::Played | O::Failed),
            Command::Hangup(_) => true,
        }
    }

    /// One line for logs and the call trace.
    pub fn summary(&self) -> String {
        let list = |m: &[Media]| m.iter().map(Media::summary).collect::<Vec<_>>().join(", ");
        match self {
            Command::Play(p) if p.loops == 1 => format!("play {}", list(&p.media)),
            Command::Play(p) => format!("play {} ×{}", list(&p.media), p.loops),
            Command::Gather(g) => {
                format!("gather {}-{} digits (attempt {}/{}), prompts: {}", g.min_digits, g.max_digits, g.attempt, g.max_attempts, list(&g.prompts))
            }
            Command::Dial(d) => {
                let targets: Vec<String> = d.targets.iter().map(|t| format!("{} → {}", t.label, t.uris.join(" "))).collect();
                let strategy = match d.strategy {
                    DialStrategy::Simultaneous => "simultaneous",
                    DialStrategy::Sequential => "sequential",
                };
                format!("dial {strategy} {}s: {}", d.timeout_secs, targets.join("; "))
            }
            Command::Enqueue(e) => format!("enqueue {} (max wait {}s)", e.queue, e.max_wait_secs),
            Command::Record(r) => format!("record {} (max {}s, silence {}s, beep {})", r.key, r.max_secs, r.silence_secs, r.beep),
            Command::Conference(c) => {
                let role = match c.role {
                    ConferenceRole::Participant => "participant",
                    ConferenceRole::Moderator => "moderator",
                    ConferenceRole::Muted => "muted",
                };
                format!("conference {} as {role}", c.name)
            }
            Command::Hangup(h) => format!("hangup {}: {}", h.cause.as_str(), h.reason),
            Command::Noop(n) => format!("noop {} ms", n.pause_ms),
        }
    }
}

/// A `POST /flow` response: the next command, numbered by `seq`. `done: true` means the
/// call's flow is over: hang up if not already done and do not step again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandResponse {
    pub call_id: String,
    pub seq: u64,
    #[serde(flatten)]
    pub command: Command,
    #[serde(default)]
    pub done: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ACC: &str = "acc_01jf18ah3jeb5w6dfp27sgjsbt";
    const FLOW: &str = "flow_01jf18ah3jeb5w6dfp27sgjsbt";

    #[test]
    fn every_outcome_string_round_trips() {
        let cases = [
            ("digit:1", Outcome::Digit('1')),
            ("digit:*", Outcome::Digit('*')),
            ("digit:#", Outcome::Digit('#')),
            ("digits:1234", Outcome::Digits("1234".into())),
            ("digits:*72#", Outcome::Digits("*72#".into())),
            ("no-input", Outcome::NoInput),
            ("invalid", Outcome::Invalid),
            ("answered", Outcome::Answered),
            ("no-answer", Outcome::NoAnswer),
            ("busy", Outcome::Busy),
            ("failed", Outcome::Failed),
            ("recorded:recordings/c1/5.wav", Outcome::Recorded("recordings/c1/5.wav".into())),
            ("queue:answered", Outcome::Queue(QueueResult::Answered)),
            ("queue:timeout", Outcome::Queue(QueueResult::Timeout)),
            ("queue:abandoned", Outcome::Queue(QueueResult::Abandoned)),
            ("queue:full", Outcome::Queue(QueueResult::Full)),
            ("played", Outcome::Played),
            ("hangup", Outcome::Hangup),
            ("error:media fetch failed: 404", Outcome::Error("media fetch failed: 404".into())),
            ("error:a:b", Outcome::Error("a:b".into())),
        ];
        for (text, outcome) in cases {
            assert_eq!(text.parse::<Outcome>().as_ref(), Ok(&outcome), "{text}");
            assert_eq!(outcome.to_string(), text);
            assert_eq!(serde_json::to_value(&outcome).unwrap(), json!(text));
            assert_eq!(serde_json::from_value::<Outcome>(json!(text)).unwrap(), outcome);
        }
        assert_eq!(Outcome::Queue(QueueResult::Full).kind(), "full");
        assert_eq!(Outcome::Error("x".into()).kind(), "error");
        assert_eq!(Outcome::Digit('7').collected().as_deref(), Some("7"));
        assert_eq!(Outcome::Digits("12".into()).collected().as_deref(), Some("12"));
        assert_eq!(Outcome::Played.collected(), None);
    }

    #[test]
    fn bad_outcomes_are_refused_with_the_reason() {
        let e = |s: &str| s.parse::<Outcome>().unwrap_err().0;
        assert_eq!(e("digit:12"), "bad outcome \"digit:12\": digit: takes exactly one key of 0-9 * #");
        assert_eq!(e("digit:"), "bad outcome \"digit:\": digit: takes exactly one key of 0-9 * #");
        assert_eq!(e("digit:a"), "bad outcome \"digit:a\": digit: takes exactly one key of 0-9 * #");
        assert_eq!(e("digits:"), "bad outcome \"digits:\": digits: takes 1-32 keys of 0-9 * #");
        assert_eq!(e("digits:12a"), "bad outcome \"digits:12a\": digits: takes 1-32 keys of 0-9 * #");
        assert!(e(&format!("digits:{}", "1".repeat(33))).ends_with("digits: takes 1-32 keys of 0-9 * #"));
        assert!(format!("digits:{}", "1".repeat(32)).parse::<Outcome>().is_ok());
        for key in ["", "/etc/passwd", "a/../b", "a//b", "a/", ".hidden", "a b", "a\\b", "ü.wav"] {
            assert!(e(&format!("recorded:{key}")).contains("recorded: takes a media key"), "{key:?}");
        }
        assert_eq!(e("queue:lost"), "bad outcome \"queue:lost\": queue: takes answered, timeout, abandoned or full");
        assert!(e("error:").contains("error: takes a reason of 1-200 printable characters"));
        assert!(e("error:line\nbreak").contains("printable"));
        assert!(e(&format!("error:{}", "x".repeat(201))).contains("printable"));
        assert!(format!("error:{}", "x".repeat(200)).parse::<Outcome>().is_ok());
        assert!(e("Played").contains("unknown outcome"), "outcome strings are case-sensitive");
        assert!(e("digit :1").contains("unknown outcome"));
        assert!(e("").contains("unknown outcome"));
        let long = "x".repeat(1000);
        let msg = e(&long);
        assert!(msg.contains("longer than 265 bytes") && msg.len() < 200, "input echo is bounded: {msg}");
        // through serde, as a request field
        let err = serde_json::from_value::<FlowStep>(json!({"callId": "c", "seq": 1, "outcome": "digit:12"})).unwrap_err();
        assert!(err.to_string().contains("digit: takes exactly one key"), "{err}");
        assert!(serde_json::from_value::<Outcome>(json!(3)).is_err());
    }

    #[test]
    fn media_keys_and_var_names() {
        for ok in ["prompts/welcome.wav", "a", "moh/jazz-1_2.mp3", "recordings/abc/12.wav", "a.b.c"] {
            assert!(is_safe_media_key(ok), "{ok}");
        }
        for bad in ["", "/abs", "a/", "a//b", "../x", "a/./b", "a/.git", "sp ace", "q?x", "%2e", &"k".repeat(257)] {
            assert!(!is_safe_media_key(bad), "{bad}");
        }
        assert!(is_safe_media_key(&"k".repeat(256)));
        for ok in ["caller", "_x", "digits2", "A_b"] {
            assert!(is_var_name(ok), "{ok}");
        }
        for bad in ["", "2x", "a-b", "a.b", "ü", &"v".repeat(65)] {
            assert!(!is_var_name(bad), "{bad}");
        }
        assert!(is_dtmf("0123456789*#") && !is_dtmf("") && !is_dtmf("1a"));
    }

    #[test]
    fn start_request_documented_example() {
        let text = r#"{"callId":"a84b4c76e66710@pbx","accountId":"acc_01jf18ah3jeb5w6dfp27sgjsbt","flowId":"flow_01jf18ah3jeb5w6dfp27sgjsbt","vars":{"calendar":"open","called":"+15551230100","caller":"+15550001111"}}"#;
        let req = FlowRequest::from_value(serde_json::from_str(text).unwrap()).unwrap();
        let FlowRequest::Start(start) = &req else { panic!("{req:?}") };
        assert_eq!(start.vars["calendar"], "open");
        assert_eq!(req.call_id(), "a84b4c76e66710@pbx");
        assert_eq!(serde_json::to_string(&req).unwrap(), text);
        // vars: scalars become text, null is dropped, absent is empty
        let v = json!({"callId": "c", "accountId": ACC, "flowId": FLOW, "vars": {"n": 7, "b": true, "gone": null, "s": "x"}});
        let FlowRequest::Start(s) = FlowRequest::from_value(v).unwrap() else { panic!() };
        assert_eq!(s.vars, Vars::from([("n".into(), "7".into()), ("b".into(), "true".into()), ("s".into(), "x".into())]));
        let v = json!({"callId": "c", "accountId": ACC, "flowId": FLOW});
        let FlowRequest::Start(s) = FlowRequest::from_value(v).unwrap() else { panic!() };
        assert!(s.vars.is_empty());
        assert_eq!(serde_json::to_value(&s).unwrap(), json!({"callId": "c", "accountId": ACC, "flowId": FLOW}));
    }

    #[test]
    fn step_request_documented_examples() {
        for text in [
            r#"{"callId":"a84b4c76e66710@pbx","seq":2,"outcome":"digits:1234"}"#,
            r#"{"callId":"a84b4c76e66710@pbx","seq":5,"outcome":"recorded:recordings/a84b4c76e66710-pbx/5.wav","data":{"durationMs":12800,"bytes":204800}}"#,
        ] {
            let req = FlowRequest::from_value(serde_json::from_str(text).unwrap()).unwrap();
            assert!(matches!(req, FlowRequest::Step(_)));
            assert_eq!(serde_json::to_string(&req).unwrap(), text);
        }
        let data: StepData = serde_json::from_str(r#"{"durationMs":61250,"answeredBy":"sip:1002@10.0.0.7:5060","sipStatus":200,"agentId":"usr_x"}"#).unwrap();
        assert_eq!(data.duration_ms, Some(61_250));
        assert_eq!(data.sip_status, Some(200));
        assert_eq!(data.extra["agentId"], json!("usr_x"), "unknown keys are kept");
        assert_eq!(
            serde_json::to_value(&data).unwrap(),
            json!({"durationMs": 61250, "answeredBy": "sip:1002@10.0.0.7:5060", "sipStatus": 200, "agentId": "usr_x"})
        );
    }

    #[test]
    fn request_errors_are_400_naming_the_field() {
        let e = |v: Value| FlowRequest::from_value(v).unwrap_err();
        let err = e(json!([1]));
        assert_eq!((err.status, err.message.as_str()), (400, "request body must be a JSON object"));
        assert!(e(json!({"callId": "c"})).message.contains("needs flowId (start) or seq and outcome (step)"));
        assert!(e(json!({"callId": "c", "flowId": FLOW, "accountId": ACC, "seq": 1, "outcome": "played"})).message.contains("not both"));
        assert_eq!(e(json!({"callId": "c", "accountId": "usr_01jf18ah3jeb5w6dfp27sgjsbt", "flowId": FLOW})).message, "accountId: expected an acc_ id");
        assert_eq!(e(json!({"callId": "c", "accountId": ACC, "flowId": "flow-1"})).message, "flowId: expected a flow_ id");
        assert!(e(json!({"callId": "", "accountId": ACC, "flowId": FLOW})).message.starts_with("callId:"));
        assert!(e(json!({"callId": "a b", "accountId": ACC, "flowId": FLOW})).message.starts_with("callId:"));
        assert!(e(json!({"callId": "x".repeat(257), "accountId": ACC, "flowId": FLOW})).message.starts_with("callId:"));
        assert!(e(json!({"accountId": ACC, "flowId": FLOW})).message.contains("missing field `callId`"));
        assert!(e(json!({"callId": "c", "accountId": ACC, "flowId": FLOW, "vars": {"a": [1]}})).message.contains("vars.a: expected a string"));
        assert!(e(json!({"callId": "c", "accountId": ACC, "flowId": FLOW, "vars": {"bad-name": "x"}})).message.contains("vars: bad name \"bad-name\""));
        assert!(e(json!({"callId": "c", "accountId": ACC, "flowId": FLOW, "vars": {"v": "x".repeat(1025)}}))
            .message
            .contains("vars.v: longer than 1024 bytes"));
        let many: Map<String, Value> = (0..65).map(|i| (format!("v{i}"), json!("x"))).collect();
        assert!(e(json!({"callId": "c", "accountId": ACC, "flowId": FLOW, "vars": many})).message.contains("more than 64 variables"));
        assert_eq!(e(json!({"callId": "c", "seq": 0, "outcome": "played"})).message, "seq: commands are numbered from 1");
        assert!(e(json!({"callId": "c", "seq": -1, "outcome": "played"})).message.starts_with("invalid request"));
        assert!(e(json!({"callId": "c", "seq": 1})).message.contains("missing field `outcome`"));
        assert!(e(json!({"callId": "c", "seq": 1, "outcome": "yes"})).message.contains("bad outcome \"yes\""));
        let extra: Map<String, Value> = (0..17).map(|i| (format!("k{i}"), json!(1))).collect();
        assert!(e(json!({"callId": "c", "seq": 1, "outcome": "played", "data": extra})).message.contains("more than 16 unknown keys"));
        assert!(e(json!({"callId": "c", "seq": 1, "outcome": "played", "data": {"detail": "x".repeat(5000)}})).message.contains("at most 4096"));
    }

    /// The examples in the doc comments above, verbatim: each parses and serializes back
    /// to the same text.
    #[test]
    fn documented_command_examples_round_trip() {
        let examples = [
            r#"{"callId":"c1","seq":1,"command":"play","media":[{"type":"tts","text":"Welcome to Acme","voice":null,"language":null}],"loops":1,"done":false}"#,
            r#"{"callId":"c1","seq":2,"command":"gather","prompts":[{"type":"file","key":"prompts/invalid.wav","url":"https://cp.example.com/media/prompts/invalid.wav"},{"type":"tts","text":"Press 1 for sales, 2 for support","voice":null,"language":null}],"minDigits":1,"maxDigits":1,"finishKey":null,"firstDigitTimeoutMs":5000,"interDigitTimeoutMs":3000,"attempt":2,"maxAttempts":3,"done":false}"#,
            r#"{"callId":"c1","seq":3,"command":"dial","targets":[{"label":"user usr_01jf18ah3jeb5w6dfp27sgjsbt","uris":["sip:1002@acme.sip.io"]},{"label":"number +15557654321","uris":["sip:+15557654321@sip-edge.internal"]}],"strategy":"sequential","timeoutSecs":20,"callerId":{"number":"+15551230100","name":"Acme"},"done":false}"#,
            r#"{"callId":"c1","seq":4,"command":"enqueue","queue":"sales","holdMusic":{"type":"file","key":"moh/jazz.wav","url":"https://cp.example.com/media/moh/jazz.wav"},"maxWaitSecs":600,"announce":{"everySecs":60,"position":true,"prompt":null},"done":false}"#,
            r##"{"callId":"c1","seq":5,"command":"record","key":"recordings/c1/5.wav","uploadUrl":"https://cp.example.com/media/recordings/c1/5.wav","prompts":[],"beep":true,"maxSecs":120,"silenceSecs":5,"finishKey":"#","mailbox":"usr_01jf18ah3jeb5w6dfp27sgjsbt","done":false}"##,
            r#"{"callId":"c1","seq":6,"command":"conference","room":"acc_01jf18ah3jeb5w6dfp27sgjsbt-standup","name":"standup","role":"moderator","done":false}"#,
            r#"{"callId":"c1","seq":7,"command":"hangup","cause":"normal","reason":"end of flow after node \"bye\"","done":false}"#,
            r#"{"callId":"c1","seq":8,"command":"noop","pauseMs":1500,"done":false}"#,
        ];
        let mut names = Vec::new();
        for text in examples {
            let r: CommandResponse = serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(serde_json::to_string(&r).unwrap(), text);
            names.push(r.command.name());
        }
        assert_eq!(names, ["play", "gather", "dial", "enqueue", "record", "conference", "hangup", "noop"]);
        // the media examples
        for text in [
            r#"{"type":"file","key":"prompts/welcome.wav","url":"https://cp.example.com/media/prompts/welcome.wav"}"#,
            r#"{"type":"url","url":"https://cdn.example.com/moh.mp3"}"#,
            r#"{"type":"tts","text":"Welcome to Acme","voice":"en-US-Standard-C","language":"en-US"}"#,
        ] {
            let m: Media = serde_json::from_str(text).unwrap();
            assert_eq!(serde_json::to_string(&m).unwrap(), text);
        }
        // tolerant of omitted optional fields, `done` defaults to false
        let r: CommandResponse = serde_json::from_str(r#"{"callId":"c","seq":1,"command":"play","media":[{"type":"tts","text":"hi"}],"loops":2}"#).unwrap();
        assert!(!r.done);
        assert_eq!(r.command.summary(), "play tts \"hi\" ×2");
        assert!(serde_json::from_str::<CommandResponse>(r#"{"callId":"c","seq":1,"command":"dance"}"#).is_err());
    }

    #[test]
    fn commands_accept_only_their_outcomes() {
        let play = Command::Play(Play { media: vec![], loops: 1 });
        let gather = Command::Gather(Gather {
            prompts: vec![],
            min_digits: 1,
            max_digits: 1,
            finish_key: None,
            first_digit_timeout_ms: 1,
            inter_digit_timeout_ms: 1,
            attempt: 1,
            max_attempts: 1,
        });
        let dial = Command::Dial(Dial { targets: vec![], strategy: DialStrategy::Simultaneous, timeout_secs: 1, caller_id: None });
        let enqueue = Command::Enqueue(Enqueue { queue: "q".into(), hold_music: None, max_wait_secs: 1, announce: None });
        let record = Command::Record(Record {
            key: "k".into(),
            upload_url: "u".into(),
            prompts: vec![],
            beep: true,
            max_secs: 1,
            silence_secs: 0,
            finish_key: None,
            mailbox: None,
        });
        let conf = Command::Conference(Conference { room: "r".into(), name: "r".into(), role: ConferenceRole::Participant });
        let hangup = Command::Hangup(Hangup { cause: HangupCause::Normal, reason: String::new() });
        let noop = Command::Noop(Noop { pause_ms: 0 });
        let all: Vec<Outcome> = [
            "digit:1",
            "digits:12",
            "no-input",
            "invalid",
            "answered",
            "no-answer",
            "busy",
            "failed",
            "recorded:k",
            "queue:answered",
            "queue:timeout",
            "queue:abandoned",
            "queue:full",
            "played",
            "hangup",
            "error:x",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let accepted = |c: &Command| all.iter().filter(|o| c.accepts(o)).map(|o| o.to_string()).collect::<Vec<_>>().join(" ");
        assert_eq!(accepted(&play), "played hangup error:x");
        assert_eq!(accepted(&noop), "played hangup error:x");
        assert_eq!(accepted(&gather), "digit:1 digits:12 no-input invalid hangup error:x");
        assert_eq!(accepted(&dial), "answered no-answer busy failed hangup error:x");
        assert_eq!(accepted(&enqueue), "queue:answered queue:timeout queue:abandoned queue:full hangup error:x");
        assert_eq!(accepted(&record), "no-input recorded:k hangup error:x");
        assert_eq!(accepted(&conf), "failed played hangup error:x");
        assert_eq!(accepted(&hangup).split(' ').count(), all.len());
    }

    #[test]
    fn hangup_causes_map_to_q850_and_sip() {
        let all = [
            (HangupCause::Normal, "normal", "NORMAL_CLEARING", 480),
            (HangupCause::Busy, "busy", "USER_BUSY", 486),
            (HangupCause::Rejected, "rejected", "CALL_REJECTED", 603),
            (HangupCause::NoAnswer, "no-answer", "NO_ANSWER", 480),
            (HangupCause::Unallocated, "unallocated", "UNALLOCATED_NUMBER", 404),
            (HangupCause::Failure, "failure", "NORMAL_TEMPORARY_FAILURE", 503),
        ];
        for (c, s, q, sip) in all {
            assert_eq!(serde_json::to_value(c).unwrap(), json!(s));
            assert_eq!(c.as_str(), s);
            assert_eq!((c.q850(), c.sip_status()), (q, sip));
        }
    }
}
