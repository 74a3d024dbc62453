//! The flow runner's state machine, sans-IO: one outbound-socket session (one call).
//!
//! Inputs: every ESL message FreeSWITCH sends ([`Runner::on_message`]), the result of
//! each `/flow` request ([`Runner::on_flow`]), of each media fetch
//! ([`Runner::on_fetched`]) and recording upload ([`Runner::on_uploaded`]), the socket
//! closing ([`Runner::on_closed`]) and time ([`Runner::handle_timeout`]; the next
//! deadline is [`Runner::poll_timeout`]). Outputs: [`Action`]s, drained with
//! [`Runner::poll_action`]: ESL bytes to write, a `/flow` body to POST, a file to fetch,
//! a recording to upload, close. Time is always an argument (milliseconds).
//!
//! The session: `connect` → the channel data (Unique-ID, `variable_sip_h_X-Account-Id`,
//! `variable_sip_h_X-Flow-Id`, `variable_sip_call_id`) → `myevents json`, `linger` →
//! start /flow → for each command: fetch its `file` media, execute it with
//! `sendmsg … call-command: execute` (each with its own `Event-UUID`, echoed by
//! FreeSWITCH as `Application-UUID` on CHANNEL_EXECUTE_COMPLETE), turn the result into an
//! [`Outcome`], step /flow with the command's `seq` → … until a response says `done`:
//! then hang up if the call is still up and `exit`.
//!
//! The caller hanging up (CHANNEL_HANGUP, or the socket closing) ends the current
//! command at once with the `hangup` outcome — except a recording, which is finished,
//! uploaded and reported (`recorded:`) first, as the protocol asks; the next command
//! then gets `hangup`. A `/flow` request that meets a network error, a timeout, 408,
//! 429 or 5xx is retried with the same body (same `seq`: the Worker replays its
//! answer) with exponential backoff, at most `flow_attempts` times; other errors (a
//! 409: the Worker's view of the call diverged) end the flow and the call.

use super::esl_map::{self, DialConfig, MediaConfig};
use crate::esl::event::parse_event;
use crate::esl::message::percent_decode;
use crate::esl::{Command as Esl, Event, Message, MessageKind, Uuid};
use callplane::flow::wire::{Command, CommandResponse, FlowStart, FlowStep, HangupCause, Media, Outcome, StepData, Vars};
use std::collections::VecDeque;

/// Channel variables carrying the call's identity (set from the INVITE's headers).
pub const ACCOUNT_VAR: &str = "variable_sip_h_X-Account-Id";
pub const FLOW_VAR: &str = "variable_sip_h_X-Flow-Id";
pub const CALL_ID_VAR: &str = "variable_sip_call_id";

#[derive(Debug, Clone)]
pub struct RunnerConfig {
    pub media: MediaConfig,
    pub dial: DialConfig,
    /// Where FreeSWITCH writes recordings (and the agent reads them to upload).
    pub record_dir: String,
    /// Played after a record command's prompts when `beep` is set.
    pub beep: String,
    pub conference_profile: String,
    /// Most attempts of one `/flow` request (and of one upload).
    pub flow_attempts: u32,
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            media: MediaConfig::default(),
            dial: DialConfig::default(),
            record_dir: "/var/lib/callplane/recordings".into(),
            beep: "tone_stream://%(400,0,800)".into(),
            conference_profile: "default".into(),
            flow_attempts: 6,
            retry_initial_ms: 500,
            retry_max_ms: 8_000,
        }
    }
}

/// What the adapter must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes to the event socket.
    Esl(Vec<u8>),
    /// `POST /flow` with this JSON body (one attempt; report with [`Runner::on_flow`]).
    Flow { body: String },
    /// Fetch a `file` media URL with the media-node credential into the local cache;
    /// report the local path with [`Runner::on_fetched`].
    Fetch { id: usize, key: String, url: String },
    /// `PUT` the recording at `path` to `url` (`X-Call-Id`, `X-Duration-Seconds`);
    /// report with [`Runner::on_uploaded`]. A missing or empty file is [`Upload::Empty`].
    Upload { path: String, url: String, call_id: String, duration_ms: Option<u64> },
    /// `exit` has been written (or the socket is gone): close once FreeSWITCH says
    /// goodbye, bounded.
    Close,
}

/// Result of one HTTP attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpResult {
    Response { status: u16, body: Vec<u8> },
    /// Network error or timeout: nothing usable came back.
    Failed(String),
}

/// Result of one upload attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upload {
    Done { bytes: u64 },
    /// No recording (file missing or no audio in it).
    Empty,
    Failed { status: Option<u16>, message: String },
}

/// Something worth a log line, drained with [`Runner::poll_note`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    Started { call_id: String, account_id: String, flow_id: String },
    Command { seq: u64, summary: String },
    Outcome { seq: u64, outcome: String },
    Retry { what: &'static str, attempt: u32, error: String },
    Failed(String),
    Done { reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// `connect` sent, waiting for the channel data.
    Connecting,
    Running,
    /// `exit` sent (or the socket is gone).
    Finished,
}

/// What the reply to each command we sent belongs to (replies come in order).
#[derive(Debug, Clone, PartialEq, Eq)]
enum ReplyTo {
    Connect,
    Setup,
    /// An execute whose `-ERR` matters (the deciding application of a command).
    Exec(String),
    Side,
    Hangup,
    Exit,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct CallInfo {
    uuid: Uuid,
    call_id: String,
}

#[derive(Debug, Clone)]
struct Pending {
    body: String,
    attempt: u32,
    retry_at: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    /// Waiting for `file` media: local paths by media index.
    Fetching,
    /// Waiting for the deciding application (its Event-UUID).
    Executing(String),
    /// A hangup command: waiting for CHANNEL_HANGUP.
    HangingUp,
    /// A recording being uploaded.
    Uploading { path: String, duration_ms: Option<u64>, attempt: u32, retry_at: Option<u64> },
}

#[derive(Debug, Clone)]
struct Running {
    seq: u64,
    cmd: Command,
    media: Vec<Media>,
    local: Vec<Option<String>>,
    stage: Stage,
    bridged_at_us: Option<u64>,
}

pub struct Runner {
    cfg: RunnerConfig,
    phase: Phase,
    call: Option<CallInfo>,
    replies: VecDeque<ReplyTo>,
    answered: bool,
    answer_sent: bool,
    hung_up: bool,
    closed: bool,
    apps: u64,
    pending: Option<Pending>,
    /// `seq` of the last command received.
    last_seq: u64,
    current: Option<Running>,
    out: VecDeque<Action>,
    notes: VecDeque<Note>,
}

impl Runner {
    /// A new session on a freshly accepted outbound connection: sends `connect`.
    pub fn new(cfg: RunnerConfig) -> Runner {
        let mut r = Runner {
            cfg,
            phase: Phase::Connecting,
            call: None,
            replies: VecDeque::new(),
            answered: false,
            answer_sent: false,
            hung_up: false,
            closed: false,
            apps: 0,
            pending: None,
            last_seq: 0,
            current: None,
            out: VecDeque::new(),
            notes: VecDeque::new(),
        };
        r.raw(b"connect\n\n".to_vec(), ReplyTo::Connect);
        r
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.out.pop_front()
    }

    pub fn poll_note(&mut self) -> Option<Note> {
        self.notes.pop_front()
    }

    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Finished
    }

    /// The caller's SIP Call-ID, once known.
    pub fn call_id(&self) -> Option<&str> {
        self.call.as_ref().map(|c| c.call_id.as_str())
    }

    /// Next retry deadline, if any.
    pub fn poll_timeout(&self) -> Option<u64> {
        let upload = match self.current.as_ref().map(|r| &r.stage) {
            Some(Stage::Uploading { retry_at, .. }) => *retry_at,
            _ => None,
        };
        [self.pending.as_ref().and_then(|p| p.retry_at), upload].into_iter().flatten().min()
    }

    pub fn handle_timeout(&mut self, now_ms: u64) {
        if let Some(p) = &mut self.pending {
            if p.retry_at.is_some_and(|t| t <= now_ms) {
                p.retry_at = None;
                p.attempt += 1;
                let body = p.body.clone();
                self.out.push_back(Action::Flow { body });
            }
        }
        let call_id = self.call_id().unwrap_or_default().to_string();
        if let Some(Running { stage: Stage::Uploading { path, duration_ms, attempt, retry_at }, cmd: Command::Record(r), .. }) = &mut self.current {
            if retry_at.is_some_and(|t| t <= now_ms) {
                *retry_at = None;
                *attempt += 1;
                self.out.push_back(Action::Upload { path: path.clone(), url: r.upload_url.clone(), call_id, duration_ms: *duration_ms });
            }
        }
    }

    fn backoff(&self, attempt: u32) -> u64 {
        (self.cfg.retry_initial_ms << (attempt.saturating_sub(1)).min(16)).min(self.cfg.retry_max_ms)
    }

    // ------------------------------------------------------------------ ESL output

    fn raw(&mut self, bytes: Vec<u8>, reply: ReplyTo) {
        if self.closed || self.phase == Phase::Finished {
            return;
        }
        self.replies.push_back(reply);
        self.out.push_back(Action::Esl(bytes));
    }

    /// `sendmsg` execute of `app` with its own Event-UUID; returns that id.
    fn exec(&mut self, app: &str, arg: Option<&str>, deciding: bool) -> Result<String, String> {
        let uuid = self.call.as_ref().map(|c| c.uuid.clone()).ok_or("no channel")?;
        self.apps += 1;
        // Unique within the channel and deterministic: the counter over the channel's UUID.
        let app_id = format!("{:08x}{}", self.apps as u32, &uuid.as_str()[8..]);
        let mut h: Vec<(&str, &str)> = vec![("call-command", "execute"), ("execute-app-name", app)];
        let long = arg.is_some_and(|a| a.len() > 1000);
        if let (Some(a), false) = (arg, long) {
            h.push(("execute-app-arg", a));
        }
        h.push(("event-lock", "true"));
        h.push(("Event-UUID", &app_id));
        let cmd = match (arg, long) {
            (Some(a), true) => Esl::sendmsg_body(uuid, &h, a),
            _ => Esl::sendmsg(uuid, &h),
        }
        .map_err(|e| format!("{app}: {e}"))?;
        let reply = if deciding { ReplyTo::Exec(app_id.clone()) } else { ReplyTo::Side };
        self.raw(cmd.encode(), reply);
        Ok(app_id)
    }

    fn ensure_answered(&mut self) -> Result<(), String> {
        if !self.answered && !self.answer_sent {
            self.answer_sent = true;
            self.exec("answer", None, false)?;
        }
        Ok(())
    }

    fn send_hangup(&mut self, cause: HangupCause) {
        let Some(uuid) = self.call.as_ref().map(|c| c.uuid.clone()) else { return };
        if self.hung_up || self.closed {
            return;
        }
        let cmd = Esl::sendmsg(uuid, &[("call-command", "hangup"), ("hangup-cause", cause.q850())]).expect("static headers");
        self.raw(cmd.encode(), ReplyTo::Hangup);
    }

    /// End the session: hang up (if the call is up and `cause` given), `exit`, close.
    fn finish(&mut self, hangup: Option<HangupCause>, reason: String) {
        if self.phase == Phase::Finished {
            return;
        }
        if let Some(c) = hangup {
            self.send_hangup(c);
        }
        if !self.closed {
            self.raw(b"exit\n\n".to_vec(), ReplyTo::Exit);
        }
        self.phase = Phase::Finished;
        self.current = None;
        self.pending = None;
        self.notes.push_back(Note::Done { reason });
        self.out.push_back(Action::Close);
    }

    // ------------------------------------------------------------------ ESL input

    /// One message from FreeSWITCH.
    pub fn on_message(&mut self, msg: &Message, now_ms: u64) {
        match msg.kind() {
            MessageKind::CommandReply | MessageKind::ApiResponse => self.on_reply(msg, now_ms),
            k if k.is_event() => {
                if let Ok(ev) = parse_event(msg) {
                    self.on_event(&ev, now_ms);
                }
            }
            MessageKind::DisconnectNotice => {
                // `linger`: the call is over (events may follow); `disconnect`: FreeSWITCH closes.
                if msg.headers.get("Content-Disposition") == Some("linger") {
                    self.on_hangup(now_ms);
                } else {
                    self.on_gone(now_ms);
                }
            }
            _ => {}
        }
    }

    fn on_reply(&mut self, msg: &Message, now_ms: u64) {
        let text = msg.reply_text().unwrap_or_else(|| msg.body_str().trim().to_string());
        let Some(to) = self.replies.pop_front() else { return };
        match to {
            ReplyTo::Connect => self.on_connected(msg, &text),
            ReplyTo::Exec(app) if text.starts_with("-ERR") => {
                // The application will not run: the channel is gone or refused it.
                let is_current = matches!(&self.current, Some(Running { stage: Stage::Executing(id), .. }) if *id == app);
                if text.contains("invalid session id") {
                    self.on_hangup(now_ms);
                } else if is_current {
                    self.complete(Outcome::Error(format!("freeswitch refused the command: {}", text.chars().take(150).collect::<String>())), None, now_ms);
                }
            }
            ReplyTo::Hangup if text.starts_with("-ERR") => self.on_hangup(now_ms),
            _ => {}
        }
    }

    fn on_connected(&mut self, msg: &Message, text: &str) {
        if !text.starts_with("+OK") {
            self.notes.push_back(Note::Failed(format!("connect refused: {text}")));
            self.finish(None, "connect refused".into());
            return;
        }
        let var = |name: &str| msg.headers.get(name).map(percent_decode).filter(|v| !v.is_empty());
        let uuid = var("Unique-ID").or_else(|| var("Channel-Unique-ID")).and_then(|u| Uuid::parse(&u).ok());
        let Some(uuid) = uuid else {
            self.notes.push_back(Note::Failed("connect reply without a channel Unique-ID".into()));
            self.finish(None, "no channel".into());
            return;
        };
        self.answered = var("Answer-State").as_deref() == Some("answered");
        let call_id = var(CALL_ID_VAR).unwrap_or_default();
        self.call = Some(CallInfo { uuid, call_id: call_id.clone() });
        self.raw(b"myevents json\n\n".to_vec(), ReplyTo::Setup);
        self.raw(b"linger\n\n".to_vec(), ReplyTo::Setup);
        self.phase = Phase::Running;
        let account = var(ACCOUNT_VAR).unwrap_or_default();
        let flow = var(FLOW_VAR).unwrap_or_default();
        let mut vars = Vars::new();
        for (name, header) in [("caller", "Caller-Caller-ID-Number"), ("called", "Caller-Destination-Number")] {
            if let Some(v) = var(header).filter(|v| v.len() <= 256 && !v.chars().any(char::is_control)) {
                vars.insert(name.to_string(), v);
            }
        }
        let start = FlowStart { call_id: call_id.clone(), account_id: account.clone(), flow_id: flow.clone(), vars };
        if let Err(e) = start.validate() {
            // Not a call callplane routed to a flow (the dialplan should not have sent it).
            self.notes.push_back(Note::Failed(format!("cannot start a flow for this channel ({ACCOUNT_VAR}={account:?}, {FLOW_VAR}={flow:?}, {CALL_ID_VAR}={call_id:?}): {}", e.message)));
            self.finish(Some(HangupCause::Failure), "no flow identity".into());
            return;
        }
        self.notes.push_back(Note::Started { call_id, account_id: account, flow_id: flow });
        self.request(serde_json::to_string(&start).expect("start serializes"));
    }

    fn is_ours(&self, ev: &Event) -> bool {
        match (&self.call, ev.unique_id()) {
            (Some(c), Some(u)) => u.eq_ignore_ascii_case(c.uuid.as_str()),
            _ => false,
        }
    }

    fn on_event(&mut self, ev: &Event, now_ms: u64) {
        if !self.is_ours(ev) {
            return;
        }
        match ev.name().unwrap_or("") {
            "CHANNEL_ANSWER" => self.answered = true,
            "CHANNEL_BRIDGE" => {
                if let Some(r) = &mut self.current {
                    r.bridged_at_us = ev.get("Event-Date-Timestamp").and_then(|t| t.parse().ok()).or(Some(now_ms * 1000));
                }
            }
            "CHANNEL_HANGUP" | "CHANNEL_HANGUP_COMPLETE" => self.on_hangup(now_ms),
            "CHANNEL_EXECUTE_COMPLETE" => {
                let app = ev.get("Application-UUID").unwrap_or("");
                let deciding = matches!(&self.current, Some(Running { stage: Stage::Executing(id), .. }) if id == app);
                if deciding {
                    self.on_complete(ev, now_ms);
                }
            }
            _ => {}
        }
    }

    /// The deciding application of the current command finished.
    fn on_complete(&mut self, ev: &Event, now_ms: u64) {
        let Some(run) = &self.current else { return };
        let var = |n: &str| ev.get(n).map(str::to_string);
        let response = ev.get("Application-Response");
        let (outcome, data) = match &run.cmd {
            Command::Play(_) => (esl_map::playback_outcome(response), None),
            Command::Gather(g) => (esl_map::gather_outcome(ev.get(&format!("variable_{}", esl_map::gather_var(run.seq))), g), None),
            Command::Dial(_) => {
                let end_us = ev.get("Event-Date-Timestamp").and_then(|t| t.parse::<u64>().ok()).unwrap_or(now_ms * 1000);
                let talk = run.bridged_at_us.map(|b| end_us.saturating_sub(b) / 1000);
                let (o, d) = esl_map::dial_outcome(var, talk);
                (o, Some(d))
            }
            Command::Record(_) => {
                let duration_ms = esl_map::recorded_ms(var);
                self.start_upload(duration_ms);
                return;
            }
            Command::Conference(_) => (Outcome::Played, None),
            Command::Noop(_) => (Outcome::Played, None),
            Command::Hangup(_) | Command::Enqueue(_) => return,
        };
        self.complete(outcome, data, now_ms);
    }

    /// The caller is gone (CHANNEL_HANGUP, a linger notice, `-ERR invalid session id`).
    fn on_hangup(&mut self, now_ms: u64) {
        if self.hung_up {
            return;
        }
        self.hung_up = true;
        let _ = now_ms;
        let Some(run) = &self.current else { return };
        match (&run.cmd, &run.stage) {
            // A recording in progress is finished and uploaded first.
            (Command::Record(_), Stage::Executing(_) | Stage::Uploading { .. }) => {}
            _ => self.complete(Outcome::Hangup, None, now_ms),
        }
    }

    /// The socket closed (or FreeSWITCH said goodbye): nothing more comes from ESL.
    fn on_gone(&mut self, now_ms: u64) {
        self.closed = true;
        self.replies.clear();
        // A recording whose completion will never come: upload what was written.
        if let Some(Running { cmd: Command::Record(_), stage: Stage::Executing(_), .. }) = &self.current {
            self.hung_up = true;
            self.start_upload(None);
            return;
        }
        self.on_hangup(now_ms);
        if self.phase == Phase::Connecting {
            self.finish(None, "socket closed before connect".into());
        }
    }

    /// The event socket reached EOF.
    pub fn on_closed(&mut self, now_ms: u64) {
        self.on_gone(now_ms);
        if self.current.is_none() && self.pending.is_none() && self.phase != Phase::Finished {
            self.finish(None, "socket closed".into());
        }
    }

    // ------------------------------------------------------------------ /flow

    fn request(&mut self, body: String) {
        self.pending = Some(Pending { body: body.clone(), attempt: 1, retry_at: None });
        self.out.push_back(Action::Flow { body });
    }

    fn step(&mut self, seq: u64, outcome: Outcome, data: Option<StepData>) {
        let call_id = self.call_id().unwrap_or_default().to_string();
        self.notes.push_back(Note::Outcome { seq, outcome: outcome.to_string() });
        let data = data.filter(|d| *d != StepData::default() && d.validate().is_ok());
        let step = FlowStep { call_id, seq, outcome, data };
        self.request(serde_json::to_string(&step).expect("step serializes"));
    }

    /// The current command ended with `outcome`.
    fn complete(&mut self, outcome: Outcome, data: Option<StepData>, _now_ms: u64) {
        let Some(run) = self.current.take() else { return };
        self.step(run.seq, outcome, data);
    }

    /// Result of the pending `/flow` request.
    pub fn on_flow(&mut self, res: HttpResult, now_ms: u64) {
        let Some(p) = self.pending.clone() else { return };
        let retry = |this: &mut Runner, error: String| {
            if p.attempt < this.cfg.flow_attempts {
                this.notes.push_back(Note::Retry { what: "/flow", attempt: p.attempt, error });
                let at = now_ms + this.backoff(p.attempt);
                if let Some(q) = &mut this.pending {
                    q.retry_at = Some(at);
                }
            } else {
                this.pending = None;
                this.notes.push_back(Note::Failed(format!("/flow: giving up after {} attempts: {error}", p.attempt)));
                this.finish(Some(HangupCause::Failure), "callplane unreachable".into());
            }
        };
        match res {
            HttpResult::Failed(e) => retry(self, e),
            HttpResult::Response { status, body } if status == 408 || status == 429 || status >= 500 => {
                retry(self, format!("{status}: {}", String::from_utf8_lossy(&body).chars().take(200).collect::<String>()))
            }
            HttpResult::Response { status, body } if !(200..300).contains(&status) => {
                self.pending = None;
                let msg = serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|v| v["message"].as_str().map(str::to_string)).unwrap_or_default();
                self.notes.push_back(Note::Failed(format!("/flow answered {status}: {msg}")));
                self.finish(Some(HangupCause::Failure), format!("/flow {status}"));
            }
            HttpResult::Response { body, .. } => {
                self.pending = None;
                match serde_json::from_slice::<CommandResponse>(&body) {
                    Ok(resp) if resp.seq > self.last_seq => self.on_command(resp, now_ms),
                    Ok(resp) => {
                        self.notes.push_back(Note::Failed(format!("/flow answered seq {} after seq {}", resp.seq, self.last_seq)));
                        self.finish(Some(HangupCause::Failure), "bad /flow answer".into());
                    }
                    Err(e) => {
                        self.notes.push_back(Note::Failed(format!("/flow answer not understood: {e}")));
                        self.finish(Some(HangupCause::Failure), "bad /flow answer".into());
                    }
                }
            }
        }
    }

    fn on_command(&mut self, resp: CommandResponse, now_ms: u64) {
        self.last_seq = resp.seq;
        self.notes.push_back(Note::Command { seq: resp.seq, summary: resp.command.summary() });
        if resp.done {
            let cause = match &resp.command {
                Command::Hangup(h) => h.cause,
                _ => HangupCause::Normal,
            };
            let reason = match &resp.command {
                Command::Hangup(h) => h.reason.clone(),
                c => format!("flow done at {}", c.name()),
            };
            self.finish(Some(cause), reason);
            return;
        }
        if self.hung_up || self.closed {
            self.step(resp.seq, Outcome::Hangup, None);
            return;
        }
        let media: Vec<Media> = match &resp.command {
            Command::Play(p) => (0..p.loops.clamp(1, 100)).flat_map(|_| p.media.iter().cloned()).collect(),
            Command::Gather(g) => g.prompts.clone(),
            Command::Record(r) => r.prompts.clone(),
            _ => Vec::new(),
        };
        let run = Running { seq: resp.seq, cmd: resp.command, local: vec![None; media.len()], media, stage: Stage::Fetching, bridged_at_us: None };
        // Each distinct file is fetched once (loops repeat the list).
        let mut fetches = Vec::new();
        for (i, m) in run.media.iter().enumerate() {
            if let Media::File { key, url } = m {
                if !run.media[..i].iter().any(|o| matches!(o, Media::File { key: k, .. } if k == key)) {
                    fetches.push(Action::Fetch { id: i, key: key.clone(), url: url.clone() });
                }
            }
        }
        let none = fetches.is_empty();
        self.current = Some(run);
        self.out.extend(fetches);
        if none {
            self.launch(now_ms);
        }
    }

    /// A media fetch finished: `Ok(local path)` or an error.
    pub fn on_fetched(&mut self, id: usize, res: Result<String, String>, now_ms: u64) {
        let Some(run) = &mut self.current else { return };
        if run.stage != Stage::Fetching || id >= run.media.len() {
            return;
        }
        match res {
            Ok(path) => {
                let key = match &run.media[id] {
                    Media::File { key, .. } => key.clone(),
                    _ => return,
                };
                for (i, m) in run.media.iter().enumerate() {
                    if matches!(m, Media::File { key: k, .. } if *k == key) {
                        run.local[i] = Some(path.clone());
                    }
                }
                let all = run.media.iter().zip(&run.local).all(|(m, l)| !matches!(m, Media::File { .. }) || l.is_some());
                if all {
                    self.launch(now_ms);
                }
            }
            Err(e) => self.complete(Outcome::Error(truncate(&format!("media fetch failed: {e}"))), None, now_ms),
        }
    }

    /// Execute the current command (its media are ready).
    fn launch(&mut self, now_ms: u64) {
        match self.try_launch() {
            Ok(Some(stage)) => {
                if let Some(r) = &mut self.current {
                    r.stage = stage;
                }
            }
            Ok(None) => {}
            Err(outcome) => self.complete(outcome, None, now_ms),
        }
    }

    /// `Ok(Some(stage))`: waiting; `Ok(None)`: already completed; `Err`: the outcome.
    fn try_launch(&mut self) -> Result<Option<Stage>, Outcome> {
        let run = self.current.clone().expect("a current command");
        let err = |e: String| Outcome::Error(truncate(&e));
        let playables = || -> Result<Vec<String>, Outcome> {
            run.media.iter().zip(&run.local).map(|(m, l)| esl_map::playable(m, l.as_deref(), &self.cfg.media).map_err(err)).collect()
        };
        match &run.cmd {
            Command::Play(_) => {
                let list = playables()?;
                if list.is_empty() {
                    self.complete(Outcome::Played, None, 0);
                    return Ok(None);
                }
                self.ensure_answered().map_err(err)?;
                Ok(Some(Stage::Executing(self.exec("playback", Some(&esl_map::playlist(&list)), true).map_err(err)?)))
            }
            Command::Gather(g) => {
                let list = playables()?;
                let prompt = if list.is_empty() { "silence_stream://250".to_string() } else { esl_map::playlist(&list) };
                self.ensure_answered().map_err(err)?;
                let arg = esl_map::pagd_arg(g, &prompt, run.seq);
                Ok(Some(Stage::Executing(self.exec("play_and_get_digits", Some(&arg), true).map_err(err)?)))
            }
            Command::Dial(d) => match esl_map::dial_string(d, &self.cfg.dial, &[]).map_err(err)? {
                None => {
                    let data = StepData { detail: Some("no target has a reachable URI".into()), ..Default::default() };
                    self.complete(Outcome::Failed, Some(data), 0);
                    Ok(None)
                }
                Some(s) => Ok(Some(Stage::Executing(self.exec("bridge", Some(&s), true).map_err(err)?))),
            },
            Command::Record(r) => {
                let mut list = playables()?;
                if r.beep {
                    list.push(self.cfg.beep.clone());
                }
                self.ensure_answered().map_err(err)?;
                let term = r.finish_key.as_deref().filter(|k| k.len() == 1 && "0123456789*#".contains(*k)).unwrap_or("none");
                self.exec("set", Some(&format!("playback_terminators={term}")), false).map_err(err)?;
                if !list.is_empty() {
                    self.exec("playback", Some(&esl_map::playlist(&list)), false).map_err(err)?;
                }
                let path = esl_map::recording_path(&self.cfg.record_dir, self.call_id().unwrap_or("call"), run.seq);
                let arg = esl_map::record_arg(&path, r.max_secs, r.silence_secs);
                Ok(Some(Stage::Executing(self.exec("record", Some(&arg), true).map_err(err)?)))
            }
            Command::Conference(c) => {
                let arg = esl_map::conference_arg(&c.room, c.role, &self.cfg.conference_profile).map_err(err)?;
                self.ensure_answered().map_err(err)?;
                Ok(Some(Stage::Executing(self.exec("conference", Some(&arg), true).map_err(err)?)))
            }
            Command::Noop(n) if n.pause_ms == 0 => {
                self.complete(Outcome::Played, None, 0);
                Ok(None)
            }
            Command::Noop(n) => Ok(Some(Stage::Executing(self.exec("sleep", Some(&n.pause_ms.to_string()), true).map_err(err)?))),
            Command::Hangup(h) => {
                self.send_hangup(h.cause);
                Ok(Some(Stage::HangingUp))
            }
            Command::Enqueue(_) => Err(Outcome::Error("enqueue is not supported by this media node yet".into())),
        }
    }

    fn recording_path(&self) -> Option<String> {
        let run = self.current.as_ref()?;
        Some(esl_map::recording_path(&self.cfg.record_dir, self.call_id().unwrap_or("call"), run.seq))
    }

    fn start_upload(&mut self, duration_ms: Option<u64>) {
        let Some(path) = self.recording_path() else { return };
        let call_id = self.call_id().unwrap_or_default().to_string();
        let Some(Running { cmd: Command::Record(r), stage, .. }) = &mut self.current else { return };
        *stage = Stage::Uploading { path: path.clone(), duration_ms, attempt: 1, retry_at: None };
        let url = r.upload_url.clone();
        self.out.push_back(Action::Upload { path, url, call_id, duration_ms });
    }

    /// Result of the recording upload.
    pub fn on_uploaded(&mut self, res: Upload, now_ms: u64) {
        let Some(Running { cmd: Command::Record(r), stage: Stage::Uploading { duration_ms, attempt, .. }, .. }) = &self.current else { return };
        let (key, duration_ms, attempt) = (r.key.clone(), *duration_ms, *attempt);
        match res {
            Upload::Done { bytes } => {
                let data = StepData { duration_ms, bytes: Some(bytes), ..Default::default() };
                self.complete(Outcome::Recorded(key), Some(data), now_ms);
            }
            Upload::Empty => self.complete(Outcome::NoInput, None, now_ms),
            Upload::Failed { status, message } => {
                let retryable = status.is_none_or(|s| s == 408 || s == 429 || s >= 500);
                if retryable && attempt < self.cfg.flow_attempts {
                    self.notes.push_back(Note::Retry { what: "recording upload", attempt, error: message });
                    let at = now_ms + self.backoff(attempt);
                    if let Some(Running { stage: Stage::Uploading { retry_at, .. }, .. }) = &mut self.current {
                        *retry_at = Some(at);
                    }
                } else {
                    let what = status.map(|s| s.to_string()).unwrap_or_else(|| "network".into());
                    self.complete(Outcome::Error(truncate(&format!("recording upload failed ({what}): {message}"))), None, now_ms);
                }
            }
        }
    }
}

/// An `error:` reason fits 200 printable characters.
fn truncate(s: &str) -> String {
    let clean: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let cut: String = clean.chars().take(200).collect();
    if cut.trim().is_empty() {
        "unknown error".into()
    } else {
        cut
    }
}
