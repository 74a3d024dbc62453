//! The sans-IO flow interpreter: a per-call [`Session`] on a virtual clock.
//!
//! No I/O, no clock reads, no `worker::`. Time comes in as `now_ms`; everything that needs
//! a lookup (calendars for business-hours branches, sub-flow definitions, dial targets →
//! SIP URIs, media key → URL) comes through a [`FlowEnv`]. An env may answer
//! [`Lookup::Unloaded`]: the call then returns [`FlowError::Needs`] *without touching the
//! session*, the adapter loads what is listed and calls again. [`Resolved`] is a ready
//! env backed by maps the adapter fills:
//!
//! ```ignore
//! let mut env = Resolved::new(format!("{origin}/media/{account_id}/"));
//! let result = loop {
//!     match interpreter::step(&mut session, &def, seq, &outcome, data.as_ref(), now, &env) {
//!         Err(FlowError::Needs(needs)) if rounds < MAX_RESOLVE_ROUNDS => {
//!             for need in needs { load_into(&mut env, need).await?; }   // D1 / account DO
//!             rounds += 1;
//!         }
//!         other => break other,
//!     }
//! };
//! ```
//!
//! # Semantics
//!
//! - [`start`] pins the flow version (and the digest of its text), runs non-blocking nodes
//!   (set, branch, goto, noop, subflow entry) until a node issues a command, and returns
//!   command `seq` 1.
//! - [`step`] applies the outcome of the pending command (`seq` must equal the pending
//!   command's) and returns the next command (`seq` + 1). The same `seq` again (with the
//!   same outcome) returns the stored response unchanged; an older `seq` is
//!   [`FlowError::StaleSeq`] (409); a newer one [`FlowError::SeqAhead`] (409).
//! - `hangup` as an outcome closes the session at once (disposition `caller-hangup`). A
//!   flow that ends (a `hangup` node, or nothing `next`) issues a `hangup` command; the
//!   edge's next outcome closes the session (`completed`). Runtime failures (edge `error:`
//!   with no `on.error`, a missing sub-flow, the runaway guard…) issue `hangup` with cause
//!   `failure` (`failed`). Closing responses carry `done: true`.
//! - At most [`MAX_NODES_PER_STEP`] nodes run per call of start/step (runaway guard).
//! - [`Session::deadline_ms`] is when the alarm should call [`expire`]: the pending
//!   command's longest plausible run plus [`EDGE_GRACE_MS`], capped by [`MAX_CALL_MS`]
//!   after start.
//! - Every start, node decision, command, outcome (with latency), replay, error and the end
//!   are in [`Session::trace`] (bounded: the first [`TRACE_HEAD`] entries and the latest
//!   ones, [`MAX_TRACE`] in all).

use super::definition::{self, Condition, DialNode, Endpoint, FlowDefinition, Node, PatternBranch, Prompt, VarTest, FORMAT_VERSION};
use super::pattern::DigitPattern;
use super::wire::{
    self, Announce, CallerId, Command, CommandResponse, Conference, Dial, DialTarget, Enqueue, FlowStart, Gather, Hangup, HangupCause, Media, Noop, Outcome,
    Play, Record, StepData, Vars,
};
use crate::error::ApiError;
use crate::routing::calendar::{self, Calendar, CalendarState};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;

/// Most nodes run in one start/step before the flow is failed as runaway.
pub const MAX_NODES_PER_STEP: u32 = 100;
/// Deepest sub-flow nesting (the top-level flow counts as one).
pub const MAX_FRAMES: usize = 8;
/// How long past a command's expected end the edge has to report before the alarm closes
/// the call.
pub const EDGE_GRACE_MS: u64 = 60_000;
/// Longest a flow session lives (a bridged dial / queue call / conference counts).
pub const MAX_CALL_MS: u64 = 4 * 60 * 60 * 1000;
/// Budget for playing one prompt (unknown length).
pub const PROMPT_BUDGET_MS: u64 = 10 * 60 * 1000;
/// Most trace entries kept per call.
pub const MAX_TRACE: usize = 300;
/// Entries at the start of the trace that are never dropped.
pub const TRACE_HEAD: usize = 20;
/// Longest trace detail, in characters.
pub const MAX_DETAIL_CHARS: usize = 600;
/// How many load-and-retry rounds an adapter should allow for [`FlowError::Needs`].
pub const MAX_RESOLVE_ROUNDS: usize = 16;

// ---------------------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------------------

/// Answer of a [`FlowEnv`] lookup.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup<T> {
    Found(T),
    /// Does not exist (or is not this account's): the flow handles it.
    Missing,
    /// Not loaded yet: the call returns [`FlowError::Needs`] and the adapter loads it.
    Unloaded,
}

/// Something the adapter must load before the call is repeated.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "need", rename_all = "kebab-case")]
pub enum Need {
    /// A business-hours calendar of the account (D1 `calendars`).
    Calendar { id: String },
    /// A flow of the account: its published version (`version: None`) or a pinned one.
    Flow { flow_id: String, version: Option<u32> },
    /// Where a dial target rings: SIP URIs (none if nothing is reachable).
    Dial { endpoint: Endpoint },
}

/// What the interpreter may ask of the outside world (all lookups are scoped to the call's
/// account by the adapter).
pub trait FlowEnv {
    fn calendar(&self, calendar_id: &str) -> Lookup<&Calendar>;
    /// `version: None`: the published version (and its number); `Some(v)`: exactly that one.
    fn flow(&self, flow_id: &str, version: Option<u32>) -> Lookup<(u32, &FlowDefinition)>;
    /// SIP URIs to ring for a dial target (empty: nothing reachable right now).
    fn dial(&self, endpoint: &Endpoint) -> Lookup<Vec<String>>;
    /// The URL the edge fetches (`upload: false`) or uploads (`upload: true`) a media key at.
    /// Keys are relative to the call's account (`system/…` for platform prompts); the adapter
    /// signs the URL for that one method.
    fn media_url(&self, key: &str, upload: bool) -> String;
}

/// (flow id, requested version: `None` = published).
type FlowKey = (String, Option<u32>);

/// A [`FlowEnv`] over maps: what is not set is [`Lookup::Unloaded`]; set `None` for
/// "does not exist". A `sip` endpoint resolves to itself unless set. Media URLs are
/// `media_base` + key.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    pub media_base: String,
    calendars: BTreeMap<String, Option<Calendar>>,
    flows: BTreeMap<FlowKey, Option<(u32, FlowDefinition)>>,
    endpoints: BTreeMap<Endpoint, Option<Vec<String>>>,
}

impl Resolved {
    pub fn new(media_base: impl Into<String>) -> Resolved {
        Resolved { media_base: media_base.into(), ..Default::default() }
    }

    pub fn set_calendar(&mut self, id: &str, calendar: Option<Calendar>) {
        self.calendars.insert(id.to_string(), calendar);
    }

    /// Record the answer to `Need::Flow { flow_id, version: requested }`. A published
    /// version found also answers the pinned lookup of its number.
    pub fn set_flow(&mut self, flow_id: &str, requested: Option<u32>, found: Option<(u32, FlowDefinition)>) {
        if let (None, Some((v, def))) = (requested, &found) {
            self.flows.insert((flow_id.to_string(), Some(*v)), Some((*v, def.clone())));
        }
        self.flows.insert((flow_id.to_string(), requested), found);
    }

    pub fn set_endpoint(&mut self, endpoint: Endpoint, uris: Option<Vec<String>>) {
        self.endpoints.insert(endpoint, uris);
    }
}

impl FlowEnv for Resolved {
    fn calendar(&self, calendar_id: &str) -> Lookup<&Calendar> {
        match self.calendars.get(calendar_id) {
            Some(Some(c)) => Lookup::Found(c),
            Some(None) => Lookup::Missing,
            None => Lookup::Unloaded,
        }
    }

    fn flow(&self, flow_id: &str, version: Option<u32>) -> Lookup<(u32, &FlowDefinition)> {
        match self.flows.get(&(flow_id.to_string(), version)) {
            Some(Some((v, d))) => Lookup::Found((*v, d)),
            Some(None) => Lookup::Missing,
            None => Lookup::Unloaded,
        }
    }

    fn dial(&self, endpoint: &Endpoint) -> Lookup<Vec<String>> {
        match (self.endpoints.get(endpoint), endpoint) {
            (Some(Some(uris)), _) => Lookup::Found(uris.clone()),
            (Some(None), _) => Lookup::Missing,
            (None, Endpoint::Sip(uri)) => Lookup::Found(vec![uri.clone()]),
            (None, _) => Lookup::Unloaded,
        }
    }

    fn media_url(&self, key: &str, _upload: bool) -> String {
        format!("{}{key}", self.media_base)
    }
}

// ---------------------------------------------------------------------------------------
// Session
// ---------------------------------------------------------------------------------------

/// How a call's flow ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Disposition {
    /// The flow hung up (a hangup node or its end) and the edge confirmed.
    Completed,
    /// The caller hung up.
    CallerHangup,
    /// A runtime failure (see the reason).
    Failed,
    /// The edge stopped stepping (closed by the alarm).
    TimedOut,
}

impl Disposition {
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Completed => "completed",
            Disposition::CallerHangup => "caller-hangup",
            Disposition::Failed => "failed",
            Disposition::TimedOut => "timed-out",
        }
    }
}

/// Where the session is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case", rename_all_fields = "camelCase")]
pub enum Status {
    /// Waiting for the outcome of the pending command.
    Running,
    /// A `hangup` command is pending; the next outcome closes the session with this disposition.
    Ending { disposition: Disposition, reason: String },
    /// Over. `by_seq`: the step that closed it (its retry replays the final response).
    Closed { disposition: Disposition, reason: String, at_ms: u64, by_seq: Option<u64> },
}

/// One level of the call stack: a flow version and the node it is at. `frames[0]` is the
/// flow the call started; deeper frames are sub-flows (their node is the `subflow` node
/// while a deeper frame runs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Frame {
    pub flow_id: String,
    pub version: u32,
    /// SHA-256 of the definition text the frame was entered with (None if unknown).
    pub digest: Option<String>,
    pub node: String,
}

/// The step that was applied last (for replays).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedStep {
    pub seq: u64,
    pub outcome: Outcome,
}

/// What a trace entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TraceEvent {
    Start,
    /// A node's decision (branch taken, variables set, retry, sub-flow call/return…).
    Node,
    Command,
    Outcome,
    /// A retried step answered from the stored response.
    Replay,
    Error,
    End,
}

/// One line of the call's flow timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceEntry {
    pub at_ms: u64,
    pub event: TraceEvent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Node id; `flow_…@v2/node` inside a sub-flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    pub detail: String,
    /// For outcomes: ms between the command being issued and its outcome arriving.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<StepData>,
}

/// The state of one call's flow; serializable, kept by the call's Durable Object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub call_id: String,
    pub account_id: String,
    /// The flow the call started, and its pinned version.
    pub flow_id: String,
    pub flow_version: u32,
    pub status: Status,
    pub frames: Vec<Frame>,
    pub vars: Vars,
    /// Attempt number at the current gather / menu (1 = first).
    pub attempt: u32,
    /// `seq` of the last response (the pending command).
    pub seq: u64,
    pub last_response: CommandResponse,
    pub last_applied: Option<AppliedStep>,
    pub started_ms: u64,
    /// When the last response was issued.
    pub command_ms: u64,
    pub last_step_ms: u64,
    /// Outcomes applied so far.
    pub steps: u64,
    pub trace: Vec<TraceEntry>,
    /// Trace entries dropped to stay within [`MAX_TRACE`].
    pub trace_dropped: u64,
}

/// Answer of [`step`].
#[derive(Debug, Clone, PartialEq)]
pub struct Stepped {
    pub response: CommandResponse,
    /// The stored response of an already-applied step.
    pub replayed: bool,
    /// Set when this step closed the session: release the call's concurrency lease,
    /// clear the alarm, write the final disposition.
    pub ended: Option<Disposition>,
    /// The trace entries this step added (append them to the call's timeline, e.g. with
    /// [`TraceEntry::to_entry`]).
    pub trace: Vec<TraceEntry>,
}

pub type StepResult = Result<Stepped, FlowError>;

/// Why start / step refused. Nothing is changed in the session when one is returned.
#[derive(Debug, Clone, PartialEq)]
pub enum FlowError {
    /// 400.
    BadRequest(String),
    /// 400: the outcome does not answer the pending command.
    BadOutcome(String),
    /// 409: `seq` older than the last applied step.
    StaleSeq { seq: u64, current: u64 },
    /// 409: `seq` newer than the pending command.
    SeqAhead { seq: u64, current: u64 },
    /// 409: a retried `seq` with a different outcome than the one applied.
    OutcomeMismatch { seq: u64, applied: String, got: String },
    /// 409: the call's flow is over.
    Ended { seq: u64, disposition: Disposition },
    /// 409: a start for a call whose flow has already moved on (or is another flow).
    AlreadyStarted { detail: String },
    /// 500: the adapter passed a definition other than the pinned version's.
    PinMismatch { flow_id: String, version: u32 },
    /// Not an HTTP answer: load these into the env and call again (500 if it escapes).
    Needs(Vec<Need>),
}

impl FlowError {
    pub fn status(&self) -> u16 {
        match self {
            FlowError::BadRequest(_) | FlowError::BadOutcome(_) => 400,
            FlowError::StaleSeq { .. }
            | FlowError::SeqAhead { .. }
            | FlowError::OutcomeMismatch { .. }
            | FlowError::Ended { .. }
            | FlowError::AlreadyStarted { .. } => 409,
            FlowError::PinMismatch { .. } | FlowError::Needs(_) => 500,
        }
    }
}

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlowError::BadRequest(m) | FlowError::BadOutcome(m) => f.write_str(m),
            FlowError::StaleSeq { seq, current } => {
                write!(f, "stale seq {seq}: the pending command is seq {current} (only {current} or a retry of {} is accepted)", current - 1)
            }
            FlowError::SeqAhead { seq, current } => write!(f, "seq {seq} is ahead of the pending command seq {current}"),
            FlowError::OutcomeMismatch { seq, applied, got } => {
                write!(f, "seq {seq} was already applied with outcome \"{applied}\"; a retry must repeat it (got \"{got}\")")
            }
            FlowError::Ended { seq, disposition } => write!(f, "the call's flow has ended ({}); seq {seq} not applied", disposition.as_str()),
            FlowError::AlreadyStarted { detail } => write!(f, "flow already started for this call: {detail}"),
            FlowError::PinMismatch { flow_id, version } => {
                write!(f, "definition passed for {flow_id} v{version} is not the text the call was pinned to")
            }
            FlowError::Needs(needs) => write!(f, "unresolved lookups: {needs:?}"),
        }
    }
}

impl std::error::Error for FlowError {}

impl From<FlowError> for ApiError {
    fn from(e: FlowError) -> ApiError {
        match e.status() {
            500 => ApiError::internal(&e),
            status => ApiError::new(status, e.to_string()),
        }
    }
}

/// Decide whether `req` may start the flow, given the `flows` row (None: no such flow):
/// 404 unknown flow, 403 another account's flow, 409 nothing published. Returns the
/// version to pin.
pub fn authorize_start(req: &FlowStart, flow_account_id: Option<&str>, published_version: Option<u32>) -> Result<u32, ApiError> {
    match flow_account_id {
        None => Err(ApiError::not_found(format!("flow {} not found", req.flow_id))),
        Some(owner) if owner != req.account_id => Err(ApiError::forbidden(format!("account {} does not own flow {}", req.account_id, req.flow_id))),
        Some(_) => published_version.ok_or_else(|| ApiError::conflict(format!("flow {} has no published version", req.flow_id))),
    }
}

/// The 404 for a step on a call without a session.
pub fn unknown_call(call_id: &str) -> ApiError {
    ApiError::not_found(format!("no flow session for call {}", wire::quote(call_id)))
}

impl Session {
    /// The pinned flow version: what the adapter loads and passes to [`step`].
    pub fn pinned(&self) -> (&str, u32) {
        (&self.flow_id, self.flow_version)
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.status, Status::Closed { .. })
    }

    pub fn disposition(&self) -> Option<Disposition> {
        match &self.status {
            Status::Closed { disposition, .. } => Some(*disposition),
            _ => None,
        }
    }

    /// The node of the innermost frame (the one the pending command came from).
    pub fn node(&self) -> &str {
        self.frames.last().map(|f| f.node.as_str()).unwrap_or("")
    }

    /// When the alarm should fire ([`expire`]); `None` once closed.
    pub fn deadline_ms(&self) -> Option<u64> {
        let cap = self.started_ms.saturating_add(MAX_CALL_MS);
        let budget = match &self.status {
            Status::Closed { .. } => return None,
            Status::Ending { .. } => 0,
            Status::Running => command_budget_ms(&self.last_response.command),
        };
        Some(self.command_ms.saturating_add(budget).saturating_add(EDGE_GRACE_MS).min(cap))
    }

    /// A repeated start for this call: the first command again if the flow has not moved
    /// on and it is the same flow; otherwise 409.
    pub fn replay_start(&self, req: &FlowStart) -> Result<CommandResponse, FlowError> {
        if req.flow_id != self.flow_id || req.account_id != self.account_id {
            return Err(FlowError::AlreadyStarted { detail: format!("it runs flow {} of account {}", self.flow_id, self.account_id) });
        }
        if self.seq != 1 || self.last_applied.is_some() || self.is_closed() {
            return Err(FlowError::AlreadyStarted { detail: format!("it is at seq {}", self.seq) });
        }
        Ok(self.last_response.clone())
    }
}

/// Longest the edge may plausibly spend on a command (before [`EDGE_GRACE_MS`]).
fn command_budget_ms(cmd: &Command) -> u64 {
    let prompts = |n: usize| PROMPT_BUDGET_MS.saturating_mul(n as u64);
    let budget = match cmd {
        Command::Play(p) => prompts(p.media.len().max(1)).saturating_mul(u64::from(p.loops.max(1))),
        Command::Gather(g) => prompts(g.prompts.len()) + u64::from(g.first_digit_timeout_ms) + u64::from(g.max_digits) * u64::from(g.inter_digit_timeout_ms),
        Command::Record(r) => prompts(r.prompts.len()) + u64::from(r.max_secs) * 1000 + 10_000,
        Command::Noop(n) => u64::from(n.pause_ms),
        Command::Dial(_) | Command::Enqueue(_) | Command::Conference(_) => MAX_CALL_MS,
        Command::Hangup(_) => 0,
    };
    budget.min(MAX_CALL_MS)
}

impl TraceEntry {
    /// As an entry of the call's timeline ([`crate::trace`]): kinds `flow.start`,
    /// `flow.node`, `flow.command`, `flow.outcome`, `flow.replay`, `error`, `disposition`.
    pub fn to_entry(&self) -> crate::trace::Entry {
        let kind = match self.event {
            TraceEvent::Start => "flow.start",
            TraceEvent::Node => "flow.node",
            TraceEvent::Command => "flow.command",
            TraceEvent::Outcome => "flow.outcome",
            TraceEvent::Replay => "flow.replay",
            TraceEvent::Error => "error",
            TraceEvent::End => "disposition",
        };
        let summary = match (&self.event, &self.node, self.seq) {
            (TraceEvent::End, _, _) => self.detail.strip_prefix("call ended: ").unwrap_or(&self.detail).to_string(),
            (_, Some(node), Some(seq)) => format!("#{seq} {node}: {}", self.detail),
            (_, Some(node), None) => format!("{node}: {}", self.detail),
            (_, None, _) => self.detail.clone(),
        };
        let mut detail = serde_json::Map::new();
        if let Some(seq) = self.seq {
            detail.insert("seq".into(), seq.into());
        }
        if let Some(node) = &self.node {
            detail.insert("node".into(), node.clone().into());
        }
        if let Some(data) = &self.data {
            detail.insert("data".into(), serde_json::to_value(data).unwrap_or_default());
        }
        let detail = if detail.is_empty() { serde_json::Value::Null } else { serde_json::Value::Object(detail) };
        crate::trace::Entry { at_ms: self.at_ms, kind: kind.into(), summary, detail, latency_ms: self.latency_ms }
    }
}

fn clip(s: String) -> String {
    if s.chars().count() <= MAX_DETAIL_CHARS {
        s
    } else {
        let mut cut: String = s.chars().take(MAX_DETAIL_CHARS).collect();
        cut.push('…');
        cut
    }
}

fn push_trace(s: &mut Session, entry: TraceEntry) {
    if s.trace.len() >= MAX_TRACE {
        s.trace.remove(TRACE_HEAD);
        s.trace_dropped += 1;
    }
    s.trace.push(entry);
}

fn vars_summary(vars: &Vars) -> String {
    if vars.is_empty() {
        return "none".into();
    }
    vars.iter().map(|(k, v)| format!("{k}={}", wire::quote(v))).collect::<Vec<_>>().join(", ")
}

/// The media key a recording of call `call_id` made by command `seq` is uploaded under
/// (relative to the account; the adapter's media URL scopes it).
pub fn recording_key(call_id: &str, seq: u64) -> String {
    let safe: String = call_id.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '-' }).collect();
    let slug = if safe == call_id && call_id.len() <= 64 && !call_id.starts_with('.') {
        safe
    } else {
        let hash: String = Sha256::digest(call_id.as_bytes()).iter().take(6).map(|b| format!("{b:02x}")).collect();
        let head: String = safe.trim_start_matches('.').chars().take(40).collect();
        if head.is_empty() {
            hash
        } else {
            format!("{head}-{hash}")
        }
    };
    format!("recordings/{slug}/{seq}.wav")
}

// ---------------------------------------------------------------------------------------
// The machine
// ---------------------------------------------------------------------------------------

/// Why running nodes stopped without a command.
enum Halt {
    Need(Vec<Need>),
    Fail(String),
}

/// Where to go next.
#[derive(Debug, Clone)]
enum Next {
    Node(String),
    /// The end of the current flow (return from a sub-flow, or hang up).
    End,
}

fn target(t: &Option<String>) -> Next {
    t.as_ref().map_or(Next::End, |t| Next::Node(t.clone()))
}

fn on_or_next(on: &definition::OnMap, key: &str, next: &Option<String>) -> Next {
    on.get(key).map_or_else(|| target(next), |t| Next::Node(t.clone()))
}

/// A gather or a menu, seen the same way.
struct Collect<'n> {
    prompt: Option<&'n Prompt>,
    min: u32,
    max: u32,
    finish_key: Option<String>,
    first_ms: u32,
    inter_ms: u32,
    retries: u32,
    invalid_prompt: Option<&'n Prompt>,
    no_input_prompt: Option<&'n Prompt>,
    branches: &'n BTreeMap<String, String>,
    patterns: &'n [PatternBranch],
    default: Option<&'n String>,
    fallback: &'n Option<String>,
    save_as: &'n str,
}

fn collect_view(node: &Node) -> Option<Collect<'_>> {
    match node {
        Node::Gather(g) => Some(Collect {
            prompt: g.prompt.as_ref(),
            min: g.min_digits.clamp(1, wire::MAX_DIGITS as u32),
            max: g.max_digits.clamp(g.min_digits.max(1), wire::MAX_DIGITS as u32),
            finish_key: g.finish_key.clone(),
            first_ms: g.first_digit_timeout_ms,
            inter_ms: g.inter_digit_timeout_ms,
            retries: g.retries.min(10),
            invalid_prompt: g.invalid_prompt.as_ref(),
            no_input_prompt: g.no_input_prompt.as_ref(),
            branches: &g.branches,
            patterns: &g.patterns,
            default: g.default.as_ref(),
            fallback: &g.fallback,
            save_as: &g.save_as,
        }),
        Node::Menu(m) => {
            let longest = m.options.keys().map(|k| k.chars().count()).max().unwrap_or(1).clamp(1, 8) as u32;
            let shortest = m.options.keys().map(|k| k.chars().count()).min().unwrap_or(1).clamp(1, 8) as u32;
            let finish_key = (longest > 1 && !m.options.keys().any(|k| k.contains('#'))).then(|| "#".to_string());
            Some(Collect {
                prompt: m.prompt.as_ref(),
                min: shortest,
                max: longest,
                finish_key,
                first_ms: m.timeout_ms,
                inter_ms: m.inter_digit_timeout_ms,
                retries: m.retries.min(10),
                invalid_prompt: m.invalid_prompt.as_ref(),
                no_input_prompt: m.no_input_prompt.as_ref(),
                branches: &m.options,
                patterns: &[],
                default: None,
                fallback: &m.fallback,
                save_as: "digits",
            })
        }
        _ => None,
    }
}

/// What applying an outcome leads to.
enum Then {
    Go(Next),
    Reissue(Command),
}

struct Run<'a> {
    s: Session,
    root: &'a FlowDefinition,
    env: &'a dyn FlowEnv,
    now: u64,
    /// Definitions of `s.frames`, fetched on first use.
    defs: Vec<Option<&'a FlowDefinition>>,
    visited: u32,
    /// Trace entries added by this run.
    fresh: Vec<TraceEntry>,
}

impl<'a> Run<'a> {
    fn new(s: Session, root: &'a FlowDefinition, env: &'a dyn FlowEnv, now: u64) -> Run<'a> {
        let defs = vec![None; s.frames.len()];
        Run { s, root, env, now, defs, visited: 0, fresh: Vec::new() }
    }

    fn label(&self) -> String {
        let depth = self.s.frames.len() - 1;
        let f = &self.s.frames[depth];
        if depth == 0 {
            f.node.clone()
        } else {
            format!("{}@v{}/{}", f.flow_id, f.version, f.node)
        }
    }

    fn push(&mut self, entry: TraceEntry) {
        self.fresh.push(entry.clone());
        push_trace(&mut self.s, entry);
    }

    fn trace(&mut self, event: TraceEvent, seq: Option<u64>, detail: String) {
        let node = (!self.s.frames.is_empty()).then(|| self.label());
        self.push(TraceEntry { at_ms: self.now, event, seq, node, detail: clip(detail), latency_ms: None, data: None });
    }

    fn note(&mut self, detail: String) {
        self.trace(TraceEvent::Node, None, detail);
    }

    fn flow_label(&self, depth: usize) -> String {
        let f = &self.s.frames[depth];
        format!("flow {} v{}", f.flow_id, f.version)
    }

    fn def_at(&mut self, depth: usize) -> Result<&'a FlowDefinition, Halt> {
        if let Some(Some(d)) = self.defs.get(depth) {
            return Ok(*d);
        }
        let d: &'a FlowDefinition = if depth == 0 {
            self.root
        } else {
            let env: &'a dyn FlowEnv = self.env;
            let f = &self.s.frames[depth];
            let d = match env.flow(&f.flow_id, Some(f.version)) {
                Lookup::Found((_, d)) => d,
                Lookup::Missing => return Err(Halt::Fail(format!("sub-flow {} v{} is no longer available", f.flow_id, f.version))),
                Lookup::Unloaded => return Err(Halt::Need(vec![Need::Flow { flow_id: f.flow_id.clone(), version: Some(f.version) }])),
            };
            if let (Some(pinned), Some(got)) = (&f.digest, &d.digest) {
                if pinned != got {
                    return Err(Halt::Fail(format!("sub-flow {} v{} changed since the call entered it", f.flow_id, f.version)));
                }
            }
            d
        };
        self.defs.resize(self.s.frames.len(), None);
        self.defs[depth] = Some(d);
        Ok(d)
    }

    /// The node of the innermost frame.
    fn current(&mut self) -> Result<(&'a Node, String), Halt> {
        let depth = self.s.frames.len() - 1;
        let def = self.def_at(depth)?;
        let id = self.s.frames[depth].node.clone();
        match def.nodes.get(&id) {
            Some(n) => Ok((n, id)),
            None => Err(Halt::Fail(format!("node {id:?} does not exist in {}", self.flow_label(depth)))),
        }
    }

    fn media(&self, p: &Prompt) -> Result<Media, Halt> {
        if let Some(key) = &p.media {
            if !wire::is_safe_media_key(key) {
                return Err(Halt::Fail(format!("bad media key {}", wire::quote(key))));
            }
            Ok(Media::File { key: key.clone(), url: self.env.media_url(key, false) })
        } else if let Some(url) = &p.url {
            Ok(Media::Url { url: url.clone() })
        } else if let Some(tts) = &p.tts {
            Ok(Media::Tts { text: definition::interpolate(&tts.text, &self.s.vars), voice: tts.voice.clone(), language: tts.language.clone() })
        } else {
            Err(Halt::Fail(format!("node {:?} has nothing to play", self.s.frames.last().map(|f| f.node.as_str()).unwrap_or(""))))
        }
    }

    fn gather_command(&self, v: &Collect<'_>, prefix: Option<&Prompt>) -> Result<Command, Halt> {
        let Some(prompt) = v.prompt else {
            return Err(Halt::Fail(format!("node {:?} has no prompt", self.s.frames.last().map(|f| f.node.as_str()).unwrap_or(""))));
        };
        let mut prompts = Vec::new();
        if let Some(p) = prefix {
            prompts.push(self.media(p)?);
        }
        prompts.push(self.media(prompt)?);
        Ok(Command::Gather(Gather {
            prompts,
            min_digits: v.min,
            max_digits: v.max,
            finish_key: v.finish_key.clone(),
            first_digit_timeout_ms: v.first_ms,
            inter_digit_timeout_ms: v.inter_ms,
            attempt: self.s.attempt,
            max_attempts: v.retries + 1,
        }))
    }

    /// The dial command, or `None` when no target resolves to anything reachable.
    fn dial_command(&mut self, d: &DialNode) -> Result<Option<Command>, Halt> {
        let env: &'a dyn FlowEnv = self.env;
        let mut targets = Vec::new();
        let mut needs = Vec::new();
        let mut notes = Vec::new();
        for ep in &d.targets {
            match env.dial(ep) {
                Lookup::Found(uris) if uris.is_empty() => notes.push(format!("{}: nothing reachable", ep.label())),
                Lookup::Found(uris) => targets.push(DialTarget { label: ep.label(), uris }),
                Lookup::Missing => notes.push(format!("{}: not found", ep.label())),
                Lookup::Unloaded => needs.push(Need::Dial { endpoint: ep.clone() }),
            }
        }
        if !needs.is_empty() {
            return Err(Halt::Need(needs));
        }
        if !notes.is_empty() {
            self.note(format!("dial: {}", notes.join("; ")));
        }
        if targets.is_empty() {
            return Ok(None);
        }
        Ok(Some(Command::Dial(Dial { targets, strategy: d.strategy, timeout_secs: d.timeout_secs, caller_id: d.caller_id.as_ref().map(CallerId::from) })))
    }

    fn set_var(&mut self, name: &str, mut value: String) -> Result<(), Halt> {
        if !wire::is_var_name(name) {
            return Err(Halt::Fail(format!("bad variable name {}", wire::quote(name))));
        }
        if value.len() > wire::MAX_VAR_VALUE_LEN {
            let mut end = wire::MAX_VAR_VALUE_LEN;
            while !value.is_char_boundary(end) {
                end -= 1;
            }
            value.truncate(end);
        }
        if !self.s.vars.contains_key(name) && self.s.vars.len() >= wire::MAX_VARS {
            return Err(Halt::Fail(format!("too many variables (at most {}) setting {name:?}", wire::MAX_VARS)));
        }
        self.s.vars.insert(name.to_string(), value);
        Ok(())
    }

    fn eval(&mut self, c: &Condition, notes: &mut Vec<String>) -> Result<bool, Halt> {
        Ok(match c {
            Condition::Var { var, test } => {
                let value = self.s.vars.get(var).map(String::as_str);
                match test {
                    VarTest::Equals(v) => value == Some(v.as_str()),
                    VarTest::NotEquals(v) => value != Some(v.as_str()),
                    VarTest::In(list) => value.is_some_and(|x| list.iter().any(|v| v == x)),
                    VarTest::Prefix(p) => value.is_some_and(|x| x.starts_with(p.as_str())),
                    VarTest::Pattern(p) => match DigitPattern::parse(p) {
                        Ok(dp) => value.is_some_and(|x| dp.matches(x)),
                        Err(e) => {
                            notes.push(format!("{e}: condition false"));
                            false
                        }
                    },
                    VarTest::Exists(want) => value.is_some() == *want,
                }
            }
            Condition::Calendar { calendar: id, is } => {
                let env: &'a dyn FlowEnv = self.env;
                match env.calendar(id) {
                    Lookup::Found(cal) => match calendar::evaluate(cal, self.now.min(i64::MAX as u64) as i64) {
                        Ok(ev) => {
                            notes.push(format!("calendar {id}: {} ({}, local {})", state_name(ev.state), ev.rule, ev.local_time));
                            is.contains(&ev.state)
                        }
                        Err(e) => {
                            notes.push(format!("calendar {id} unusable ({e}): condition false"));
                            false
                        }
                    },
                    Lookup::Missing => {
                        notes.push(format!("calendar {id} not found: condition false"));
                        false
                    }
                    Lookup::Unloaded => return Err(Halt::Need(vec![Need::Calendar { id: id.clone() }])),
                }
            }
            Condition::All(list) => {
                for c in list {
                    if !self.eval(c, notes)? {
                        return Ok(false);
                    }
                }
                true
            }
            Condition::Any(list) => {
                for c in list {
                    if self.eval(c, notes)? {
                        return Ok(true);
                    }
                }
                false
            }
            Condition::Not(c) => !self.eval(c, notes)?,
        })
    }

    /// Run nodes from `next` until one issues a command.
    fn advance(&mut self, mut next: Next) -> Result<Command, Halt> {
        loop {
            let id = match next {
                Next::Node(id) => id,
                Next::End if self.s.frames.len() > 1 => {
                    let done = self.s.frames.pop().expect("a sub-flow frame");
                    self.defs.truncate(self.s.frames.len());
                    self.note(format!(
                        "sub-flow {} v{} ended at node {:?}; back in {}",
                        done.flow_id,
                        done.version,
                        done.node,
                        self.flow_label(self.s.frames.len() - 1)
                    ));
                    let (node, id) = self.current()?;
                    match node {
                        Node::Subflow(sf) => {
                            next = target(&sf.next);
                            continue;
                        }
                        _ => return Err(Halt::Fail(format!("returned from a sub-flow to node {id:?}, which is not a subflow node"))),
                    }
                }
                Next::End => {
                    let reason = format!("end of flow after node {:?}", self.s.frames[0].node);
                    self.s.status = Status::Ending { disposition: Disposition::Completed, reason: reason.clone() };
                    return Ok(Command::Hangup(Hangup { cause: HangupCause::Normal, reason }));
                }
            };
            self.visited += 1;
            if self.visited > MAX_NODES_PER_STEP {
                return Err(Halt::Fail(format!(
                    "runaway flow: more than {MAX_NODES_PER_STEP} nodes ran without waiting for the caller (reached {id:?}); look for a loop of set / branch / goto nodes"
                )));
            }
            let depth = self.s.frames.len() - 1;
            self.s.frames[depth].node = id.clone();
            let (node, _) = self.current()?;
            match node {
                Node::Play(p) => {
                    let media = self.media(&p.prompt())?;
                    return Ok(Command::Play(Play { media: vec![media], loops: p.loops.clamp(1, 100) }));
                }
                Node::Gather(_) | Node::Menu(_) => {
                    self.s.attempt = 1;
                    let view = collect_view(node).expect("gather or menu");
                    return self.gather_command(&view, None);
                }
                Node::Dial(d) => match self.dial_command(d)? {
                    Some(cmd) => return Ok(cmd),
                    None => {
                        next = on_or_next(&d.on, "failed", &d.next);
                        self.note(format!("dial: no target reachable, taking the failed branch → {}", describe_next(&next)));
                    }
                },
                Node::Enqueue(e) => {
                    let hold_music = e.hold_music.as_ref().map(|p| self.media(p)).transpose()?;
                    let announce = match &e.announce {
                        Some(a) => {
                            Some(Announce { every_secs: a.every_secs, position: a.position, prompt: a.prompt.as_ref().map(|p| self.media(p)).transpose()? })
                        }
                        None => None,
                    };
                    return Ok(Command::Enqueue(Enqueue { queue: e.queue.clone(), hold_music, max_wait_secs: e.max_wait_secs, announce }));
                }
                Node::Record(r) => {
                    let key = recording_key(&self.s.call_id, self.s.seq + 1);
                    let prompts = r.prompt.as_ref().map(|p| self.media(p)).transpose()?.into_iter().collect();
                    return Ok(Command::Record(Record {
                        upload_url: self.env.media_url(&key, true),
                        key,
                        prompts,
                        beep: r.beep,
                        max_secs: r.max_secs,
                        silence_secs: r.silence_secs,
                        finish_key: r.finish_key.clone(),
                        mailbox: r.mailbox.clone(),
                    }));
                }
                Node::Conference(c) => {
                    return Ok(Command::Conference(Conference { room: format!("{}-{}", self.s.account_id, c.room), name: c.room.clone(), role: c.role }));
                }
                Node::Pause(p) => return Ok(Command::Noop(Noop { pause_ms: p.ms })),
                Node::Hangup(h) => {
                    let reason = h.reason.clone().unwrap_or_else(|| format!("hangup node {id:?}"));
                    self.s.status = Status::Ending { disposition: Disposition::Completed, reason: reason.clone() };
                    return Ok(Command::Hangup(Hangup { cause: h.cause, reason }));
                }
                Node::Set(set) => {
                    // Values are computed from the variables as they were before the node.
                    let before = self.s.vars.clone();
                    let mut changes = Vec::new();
                    for (k, v) in &set.vars {
                        match v {
                            Some(t) => {
                                let value = definition::interpolate(t, &before);
                                changes.push(format!("{k}={}", wire::quote(&value)));
                                self.set_var(k, value)?;
                            }
                            None => {
                                self.s.vars.remove(k);
                                changes.push(format!("{k} unset"));
                            }
                        }
                    }
                    next = target(&set.next);
                    self.note(format!("set {}", changes.join(", ")));
                }
                Node::Branch(b) => {
                    let mut notes = Vec::new();
                    let mut chosen = None;
                    for (i, case) in b.cases.iter().enumerate() {
                        if self.eval(&case.when, &mut notes)? {
                            chosen = Some((i, Next::Node(case.next.clone())));
                            break;
                        }
                    }
                    let why = if notes.is_empty() { String::new() } else { format!(" [{}]", notes.join("; ")) };
                    next = match chosen {
                        Some((i, n)) => {
                            self.note(format!("branch: case {i} matched → {}{why}", describe_next(&n)));
                            n
                        }
                        None => {
                            let n = target(&b.default);
                            self.note(format!("branch: no case matched → default {}{why}", describe_next(&n)));
                            n
                        }
                    };
                }
                Node::Goto(g) => next = Next::Node(g.target.clone()),
                Node::Noop(n) => next = target(&n.next),
                Node::Subflow(sf) => {
                    if self.s.frames.len() >= MAX_FRAMES {
                        return Err(Halt::Fail(format!("sub-flow {} not entered: calls nested deeper than {MAX_FRAMES} (recursion?)", sf.flow)));
                    }
                    let env: &'a dyn FlowEnv = self.env;
                    match env.flow(&sf.flow, None) {
                        Lookup::Found((version, def)) => {
                            self.s.frames.push(Frame { flow_id: sf.flow.clone(), version, digest: def.digest.clone(), node: def.start.clone() });
                            self.defs.push(Some(def));
                            if def.version != FORMAT_VERSION {
                                return Err(Halt::Fail(format!("sub-flow {} v{version} has format version {}", sf.flow, def.version)));
                            }
                            self.trace(TraceEvent::Node, None, format!("calling sub-flow {} v{version} from node {id:?}", sf.flow));
                            next = Next::Node(def.start.clone());
                        }
                        Lookup::Missing => {
                            return Err(Halt::Fail(format!("sub-flow {} not found (missing, unpublished or another account's)", sf.flow)));
                        }
                        Lookup::Unloaded => return Err(Halt::Need(vec![Need::Flow { flow_id: sf.flow.clone(), version: None }])),
                    }
                }
            }
        }
    }

    /// A runtime failure: hang up with cause `failure`.
    fn fail(&mut self, reason: String) -> Command {
        self.trace(TraceEvent::Error, None, reason.clone());
        self.s.status = Status::Ending { disposition: Disposition::Failed, reason: reason.clone() };
        Command::Hangup(Hangup { cause: HangupCause::Failure, reason })
    }

    /// Number, store and trace a command.
    fn issue(&mut self, command: Command) -> CommandResponse {
        self.s.seq += 1;
        self.s.command_ms = self.now;
        let seq = self.s.seq;
        self.trace(TraceEvent::Command, Some(seq), command.summary());
        let response = CommandResponse { call_id: self.s.call_id.clone(), seq, command, done: false };
        self.s.last_response = response.clone();
        response
    }

    fn drive(&mut self, next: Next) -> Result<CommandResponse, FlowError> {
        let command = match self.advance(next) {
            Ok(c) => c,
            Err(Halt::Need(n)) => return Err(FlowError::Needs(n)),
            Err(Halt::Fail(reason)) => self.fail(reason),
        };
        Ok(self.issue(command))
    }

    /// Close the session and build the final (`done`) response.
    fn close(&mut self, disposition: Disposition, reason: String, by_seq: Option<u64>) -> CommandResponse {
        self.trace(TraceEvent::End, None, format!("call ended: {}: {reason}", disposition.as_str()));
        self.s.status = Status::Closed { disposition, reason, at_ms: self.now, by_seq };
        self.s.seq += 1;
        self.s.command_ms = self.now;
        let cause = if disposition == Disposition::Failed { HangupCause::Failure } else { HangupCause::Normal };
        let command = Command::Hangup(Hangup { cause, reason: format!("call ended: {}", disposition.as_str()) });
        let response = CommandResponse { call_id: self.s.call_id.clone(), seq: self.s.seq, command, done: true };
        self.s.last_response = response.clone();
        response
    }

    /// Input did not lead anywhere: retry the gather or give up to the fallback.
    fn retry(&mut self, v: &Collect<'_>, no_input: bool, why: String) -> Result<Then, Halt> {
        let max_attempts = v.retries + 1;
        if self.s.attempt < max_attempts {
            self.s.attempt += 1;
            self.note(format!("{why}; retry (attempt {}/{max_attempts})", self.s.attempt));
            let prefix = if no_input { v.no_input_prompt } else { v.invalid_prompt };
            Ok(Then::Reissue(self.gather_command(v, prefix)?))
        } else {
            let next = target(v.fallback);
            self.note(format!("{why}; no retries left after {max_attempts} attempts → fallback {}", describe_next(&next)));
            Ok(Then::Go(next))
        }
    }

    /// Apply an outcome (accepted by the pending command, not `hangup`) at the current node.
    fn apply(&mut self, outcome: &Outcome) -> Result<Then, Halt> {
        let (node, id) = self.current()?;
        if let Outcome::Error(reason) = outcome {
            return match node.on().and_then(|on| on.get("error")) {
                Some(t) => {
                    self.note(format!("edge error at {} node: {reason} → on.error {t:?}", node.type_name()));
                    Ok(Then::Go(Next::Node(t.clone())))
                }
                None => Err(Halt::Fail(format!("the edge could not run the {} node {id:?}: {reason}", node.type_name()))),
            };
        }
        match node {
            Node::Play(p) => Ok(Then::Go(target(&p.next))),
            Node::Pause(p) => Ok(Then::Go(target(&p.next))),
            Node::Gather(_) | Node::Menu(_) => {
                let v = collect_view(node).expect("gather or menu");
                match outcome {
                    Outcome::Digit(_) | Outcome::Digits(_) => {
                        let digits = outcome.collected().expect("digits");
                        self.set_var(v.save_as, digits.clone())?;
                        let n = digits.chars().count() as u32;
                        if (v.min..=v.max).contains(&n) {
                            if let Some(t) = v.branches.get(&digits) {
                                self.note(format!("input {digits:?} → {t:?}"));
                                return Ok(Then::Go(Next::Node(t.clone())));
                            }
                            for p in v.patterns {
                                if DigitPattern::parse(&p.pattern).is_ok_and(|dp| dp.matches(&digits)) {
                                    self.note(format!("input {digits:?} matches pattern {:?} → {:?}", p.pattern, p.next));
                                    return Ok(Then::Go(Next::Node(p.next.clone())));
                                }
                            }
                            if let Some(t) = v.default {
                                self.note(format!("input {digits:?} → default {t:?}"));
                                return Ok(Then::Go(Next::Node(t.clone())));
                            }
                            self.retry(&v, false, format!("input {digits:?} matches no branch"))
                        } else {
                            self.retry(&v, false, format!("input {digits:?} is not {}-{} keys", v.min, v.max))
                        }
                    }
                    Outcome::Invalid => self.retry(&v, false, "invalid input".into()),
                    _ => self.retry(&v, true, "no input".into()),
                }
            }
            Node::Dial(d) => Ok(Then::Go(on_or_next(&d.on, outcome.kind(), &d.next))),
            Node::Enqueue(e) => Ok(Then::Go(on_or_next(&e.on, outcome.kind(), &e.next))),
            Node::Conference(c) => Ok(Then::Go(on_or_next(&c.on, outcome.kind(), &c.next))),
            Node::Record(r) => {
                if let Outcome::Recorded(key) = outcome {
                    self.set_var(&r.save_as, key.clone())?;
                }
                Ok(Then::Go(on_or_next(&r.on, outcome.kind(), &r.next)))
            }
            other => Err(Halt::Fail(format!("node {id:?} ({}) does not wait for an outcome; the call's position is inconsistent", other.type_name()))),
        }
    }
}

fn describe_next(n: &Next) -> String {
    match n {
        Next::Node(id) => format!("{id:?}"),
        Next::End => "end of flow".into(),
    }
}

fn state_name(s: CalendarState) -> &'static str {
    match s {
        CalendarState::Open => "open",
        CalendarState::Closed => "closed",
        CalendarState::Holiday => "holiday",
    }
}

// ---------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------

/// Start a call's flow: `def` is version `version` of `req.flow_id` (see
/// [`authorize_start`]); the session pins both. Returns the session (its `trace` holds the
/// start's entries) and command seq 1.
pub fn start(req: &FlowStart, version: u32, def: &FlowDefinition, now_ms: u64, env: &dyn FlowEnv) -> Result<(Session, CommandResponse), FlowError> {
    req.validate().map_err(|e| FlowError::BadRequest(e.message))?;
    let session = Session {
        call_id: req.call_id.clone(),
        account_id: req.account_id.clone(),
        flow_id: req.flow_id.clone(),
        flow_version: version,
        status: Status::Running,
        frames: vec![Frame { flow_id: req.flow_id.clone(), version, digest: def.digest.clone(), node: def.start.clone() }],
        vars: req.vars.clone(),
        attempt: 0,
        seq: 0,
        last_response: CommandResponse { call_id: req.call_id.clone(), seq: 0, command: Command::Noop(Noop { pause_ms: 0 }), done: false },
        last_applied: None,
        started_ms: now_ms,
        command_ms: now_ms,
        last_step_ms: now_ms,
        steps: 0,
        trace: Vec::new(),
        trace_dropped: 0,
    };
    let mut run = Run::new(session, def, env, now_ms);
    run.trace(
        TraceEvent::Start,
        None,
        format!("flow {} v{version} started for call {} (vars: {})", req.flow_id, wire::quote(&req.call_id), vars_summary(&req.vars)),
    );
    let response = if def.version != FORMAT_VERSION {
        let cmd = run.fail(format!("flow {} v{version} has format version {} (this build reads {FORMAT_VERSION})", req.flow_id, def.version));
        run.issue(cmd)
    } else {
        run.drive(Next::Node(def.start.clone()))?
    };
    Ok((run.s, response))
}

fn replay(session: &mut Session, seq: u64, now_ms: u64) -> Stepped {
    let detail = format!("step seq {seq} retried: answered with the stored response seq {}", session.seq);
    let node = Some(session.node().to_string());
    let entry = TraceEntry { at_ms: now_ms, event: TraceEvent::Replay, seq: Some(seq), node, detail, latency_ms: None, data: None };
    push_trace(session, entry.clone());
    Stepped { response: session.last_response.clone(), replayed: true, ended: None, trace: vec![entry] }
}

fn replay_or_mismatch(session: &mut Session, seq: u64, outcome: &Outcome, now_ms: u64) -> StepResult {
    match &session.last_applied {
        Some(a) if a.seq == seq && a.outcome == *outcome => Ok(replay(session, seq, now_ms)),
        Some(a) if a.seq == seq => Err(FlowError::OutcomeMismatch { seq, applied: a.outcome.to_string(), got: outcome.to_string() }),
        _ => Err(FlowError::StaleSeq { seq, current: session.seq }),
    }
}

/// Apply the outcome of command `seq` and return the next command. `def` must be the
/// pinned version ([`Session::pinned`]); sub-flows come from `env`.
pub fn step(session: &mut Session, def: &FlowDefinition, seq: u64, outcome: &Outcome, data: Option<&StepData>, now_ms: u64, env: &dyn FlowEnv) -> StepResult {
    if seq == 0 {
        return Err(FlowError::BadRequest("seq: commands are numbered from 1".into()));
    }
    if let Some(d) = data {
        d.validate().map_err(FlowError::BadRequest)?;
    }
    if let Status::Closed { disposition, by_seq, .. } = &session.status {
        let disposition = *disposition;
        if *by_seq == Some(seq) {
            return replay_or_mismatch(session, seq, outcome, now_ms);
        }
        return Err(FlowError::Ended { seq, disposition });
    }
    if seq < session.seq {
        return replay_or_mismatch(session, seq, outcome, now_ms);
    }
    if seq > session.seq {
        return Err(FlowError::SeqAhead { seq, current: session.seq });
    }
    let pending = &session.last_response.command;
    if !pending.accepts(outcome) {
        return Err(FlowError::BadOutcome(format!(
            "outcome \"{outcome}\" does not answer a {} command (expected {}, hangup or error:<reason>)",
            pending.name(),
            pending.expected_outcomes().join(", ")
        )));
    }
    if let (Command::Record(r), Outcome::Recorded(key)) = (pending, outcome) {
        if *key != r.key {
            return Err(FlowError::BadOutcome(format!("outcome \"{outcome}\": the record command's key is {}", r.key)));
        }
    }
    if let (Some(pinned), Some(got)) = (&session.frames[0].digest, &def.digest) {
        if pinned != got {
            return Err(FlowError::PinMismatch { flow_id: session.flow_id.clone(), version: session.flow_version });
        }
    }

    let mut run = Run::new(session.clone(), def, env, now_ms);
    let latency = now_ms.saturating_sub(run.s.command_ms);
    let node = Some(run.label());
    run.push(TraceEntry {
        at_ms: now_ms,
        event: TraceEvent::Outcome,
        seq: Some(seq),
        node,
        detail: outcome.to_string(),
        latency_ms: Some(latency),
        data: data.cloned(),
    });
    run.s.last_applied = Some(AppliedStep { seq, outcome: outcome.clone() });
    run.s.last_step_ms = now_ms;
    run.s.steps += 1;

    let response = match run.s.status.clone() {
        Status::Ending { disposition, reason } => run.close(disposition, reason, Some(seq)),
        Status::Running if *outcome == Outcome::Hangup => {
            let reason = format!("caller hung up during {} at node {:?}", run.s.last_response.command.name(), run.label());
            run.close(Disposition::CallerHangup, reason, Some(seq))
        }
        Status::Running => match run.apply(outcome) {
            Ok(Then::Go(next)) => run.drive(next)?,
            Ok(Then::Reissue(cmd)) => run.issue(cmd),
            Err(Halt::Need(n)) => return Err(FlowError::Needs(n)),
            Err(Halt::Fail(reason)) => {
                let cmd = run.fail(reason);
                run.issue(cmd)
            }
        },
        Status::Closed { .. } => unreachable!("closed sessions are answered above"),
    };
    let ended = run.s.disposition();
    *session = run.s;
    Ok(Stepped { response, replayed: false, ended, trace: run.fresh })
}

/// The alarm: close the session if its deadline has passed. Returns the disposition when
/// it closed it now (release the lease then; the session's last trace entry is the end);
/// `None` if not due or already closed.
pub fn expire(session: &mut Session, now_ms: u64) -> Option<Disposition> {
    let deadline = session.deadline_ms()?;
    if now_ms < deadline {
        return None;
    }
    let (disposition, reason) = match &session.status {
        Status::Closed { .. } => return None,
        Status::Ending { disposition, reason } => (*disposition, format!("{reason} (the edge never confirmed the hangup)")),
        Status::Running if now_ms >= session.started_ms.saturating_add(MAX_CALL_MS) => {
            (Disposition::TimedOut, format!("maximum flow duration of {} min reached", MAX_CALL_MS / 60_000))
        }
        Status::Running => (
            Disposition::TimedOut,
            format!(
                "no step from the edge for {} s after command seq {} ({})",
                now_ms.saturating_sub(session.command_ms) / 1000,
                session.seq,
                session.last_response.command.name()
            ),
        ),
    };
    let node = Some(session.node().to_string());
    push_trace(
        session,
        TraceEntry {
            at_ms: now_ms,
            event: TraceEvent::End,
            seq: None,
            node,
            detail: format!("call ended: {}: {reason}", disposition.as_str()),
            latency_ms: None,
            data: None,
        },
    );
    session.status = Status::Closed { disposition, reason, at_ms: now_ms, by_seq: None };
    Some(disposition)
}

#[cfg(test)]
mod tests;
