//! Inbound ESL connection as a sans-IO state machine.
//!
//! The I/O layer feeds received bytes ([`Connection::handle_bytes`]), end of stream
//! ([`Connection::handle_eof`]) and the clock ([`Connection::handle_timeout`]); it
//! writes out what [`Connection::poll_transmit`] returns, sleeps until
//! [`Connection::poll_timeout`], and acts on [`Connection::poll_output`]. Time is
//! always an argument, so every timing rule is unit-tested without sleeping.
//!
//! * Handshake: `auth/request` → `auth <password>` → `+OK accepted` → the configured
//!   `event <format> ...` subscription → [`Output::Ready`]. Re-subscribing after a
//!   reconnect is therefore automatic: each connection is a new state machine.
//! * Correlation: mod_event_socket answers commands strictly in order, so pending
//!   requests are a FIFO; the head is matched to each `command/reply` / `api/response`.
//!   A reply that does not fit the head (or arrives with nothing pending) means the
//!   stream is out of step: the connection is closed rather than mis-attributing it.
//! * `bgapi`: sent with a client-chosen `Job-UUID` header; the `BACKGROUND_JOB` event
//!   carrying that Job-UUID completes the job (it is consumed, not re-emitted).
//! * Liveness: any received byte refreshes it; subscribe to `HEARTBEAT` (FreeSWITCH
//!   sends one every 20 s) so an idle but healthy switch is not declared dead.
//! * A request whose reply does not come within `request_timeout` kills the
//!   connection too: with in-order replies there is no way to skip one.
//! * `text/disconnect-notice` closes, unless it is the linger form
//!   (`Content-Disposition: linger`); `text/rude-rejection` closes.

use super::command::{ApiCommand, Command, Subscription, Uuid};
use super::event::{parse_event, Event};
use super::message::{Message, MessageKind};
use super::parser::{Limits, Parser};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct ConnConfig {
    pub password: String,
    pub subscription: Option<Subscription>,
    pub liveness_timeout: Duration,
    pub request_timeout: Duration,
    pub limits: Limits,
}

impl ConnConfig {
    pub fn new(password: &str, subscription: Option<Subscription>) -> ConnConfig {
        ConnConfig {
            password: password.to_string(),
            subscription,
            // three missed 20 s heartbeats
            liveness_timeout: Duration::from_secs(65),
            request_timeout: Duration::from_secs(30),
            limits: Limits::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    AwaitingAuthRequest,
    Authenticating,
    Subscribing,
    Ready,
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// `auth` answered with something else than `+OK` (text of the reply).
    AuthFailed(String),
    /// `text/rude-rejection` (ACL): the body text.
    Rejected(String),
    /// `text/disconnect-notice` (not linger): the body text.
    ServerDisconnected(String),
    /// We sent `exit` and the server said goodbye.
    LocalExit,
    LivenessTimeout,
    RequestTimeout,
    Protocol(String),
    Eof,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::AuthFailed(t) => write!(f, "authentication failed: {t}"),
            CloseReason::Rejected(t) => write!(f, "rejected by FreeSWITCH: {}", t.trim()),
            CloseReason::ServerDisconnected(t) => write!(f, "disconnected by FreeSWITCH: {}", t.lines().next().unwrap_or("")),
            CloseReason::LocalExit => write!(f, "closed after exit"),
            CloseReason::LivenessTimeout => write!(f, "no traffic (heartbeat) within the liveness timeout"),
            CloseReason::RequestTimeout => write!(f, "a command got no reply within the request timeout"),
            CloseReason::Protocol(t) => write!(f, "protocol error: {t}"),
            CloseReason::Eof => write!(f, "connection closed by peer"),
        }
    }
}

/// A reply as FreeSWITCH sent it: `command/reply` `Reply-Text` or `api/response` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Command(String),
    Api(String),
}

impl Reply {
    pub fn text(&self) -> &str {
        match self {
            Reply::Command(t) | Reply::Api(t) => t,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Authenticated and subscribed: requests may be sent.
    Ready,
    Reply { id: RequestId, reply: Reply },
    /// bgapi accepted by FreeSWITCH; the result comes later as [`Output::JobDone`].
    JobAccepted { id: RequestId, job_uuid: Uuid },
    JobDone { id: RequestId, job_uuid: Uuid, body: String },
    /// bgapi refused (`-ERR` reply) or no BACKGROUND_JOB before the job deadline.
    JobFailed { id: RequestId, reason: String, timed_out: bool },
    Event(Event),
    /// An event message whose body could not be decoded (kept, not fatal).
    BadEvent { error: String },
    Log(Message),
    /// Linger notice (outbound sessions): the socket stays open.
    Linger { linger_time: Option<String> },
    /// The request will never be answered: the connection closed first.
    Aborted { id: RequestId },
    /// The connection is finished; the I/O layer closes the socket.
    Closed(CloseReason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    NotReady,
    DuplicateJob,
}

#[derive(Debug)]
enum PendingKind {
    Auth,
    Subscribe,
    Api,
    BgApi { job_uuid: Uuid, job_timeout: Duration },
    Exit,
}

#[derive(Debug)]
struct Pending {
    id: Option<RequestId>,
    kind: PendingKind,
    sent_at: Instant,
}

pub struct Connection {
    cfg: ConnConfig,
    parser: Parser,
    state: State,
    pending: VecDeque<Pending>,
    jobs: HashMap<Uuid, (RequestId, Instant)>,
    last_rx: Instant,
    next_id: u64,
    tx: Vec<u8>,
    out: VecDeque<Output>,
    exiting: bool,
}

impl Connection {
    /// A connection whose TCP socket just opened at `now`.
    pub fn new(cfg: ConnConfig, now: Instant) -> Connection {
        let parser = Parser::new(cfg.limits);
        Connection {
            cfg,
            parser,
            state: State::AwaitingAuthRequest,
            pending: VecDeque::new(),
            jobs: HashMap::new(),
            last_rx: now,
            next_id: 1,
            tx: Vec::new(),
            out: VecDeque::new(),
            exiting: false,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }
    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }
    pub fn pending_requests(&self) -> usize {
        self.pending.len()
    }
    pub fn pending_jobs(&self) -> usize {
        self.jobs.len()
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.tx.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.tx))
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The next instant at which [`Connection::handle_timeout`] has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_closed() {
            return None;
        }
        let mut t = self.last_rx + self.cfg.liveness_timeout;
        if let Some(p) = self.pending.front() {
            t = t.min(p.sent_at + self.cfg.request_timeout);
        }
        if let Some(d) = self.jobs.values().map(|(_, d)| *d).min() {
            t = t.min(d);
        }
        Some(t)
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_closed() {
            return;
        }
        let mut expired: Vec<(Uuid, RequestId)> =
            self.jobs.iter().filter(|(_, (_, d))| *d <= now).map(|(u, (id, _))| (u.clone(), *id)).collect();
        expired.sort_by_key(|(_, id)| *id);
        for (u, id) in expired {
            self.jobs.remove(&u);
            self.out.push_back(Output::JobFailed {
                id,
                reason: format!("no BACKGROUND_JOB for Job-UUID {u} in time"),
                timed_out: true,
            });
        }
        if now >= self.last_rx + self.cfg.liveness_timeout {
            self.close(CloseReason::LivenessTimeout);
        } else if self.pending.front().is_some_and(|p| now >= p.sent_at + self.cfg.request_timeout) {
            self.close(CloseReason::RequestTimeout);
        }
    }

    pub fn handle_eof(&mut self, _now: Instant) {
        self.close(if self.exiting { CloseReason::LocalExit } else { CloseReason::Eof });
    }

    pub fn handle_bytes(&mut self, data: &[u8], now: Instant) {
        if self.is_closed() {
            return;
        }
        self.last_rx = now;
        self.parser.feed(data);
        loop {
            match self.parser.next() {
                Ok(Some(msg)) => {
                    self.handle_message(msg, now);
                    if self.is_closed() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    self.close(CloseReason::Protocol(e.to_string()));
                    return;
                }
            }
        }
    }

    /// `api <cmd>`: answered by [`Output::Reply`] with the same id.
    pub fn api(&mut self, cmd: ApiCommand, now: Instant) -> Result<RequestId, SendError> {
        self.send_user(Command::api(cmd), PendingKind::Api, now)
    }

    /// `bgapi <cmd>` with `Job-UUID: job_uuid`; the job must finish within `job_timeout`.
    pub fn bgapi(
        &mut self,
        cmd: ApiCommand,
        job_uuid: Uuid,
        job_timeout: Duration,
        now: Instant,
    ) -> Result<RequestId, SendError> {
        if self.jobs.contains_key(&job_uuid)
            || self.pending.iter().any(|p| matches!(&p.kind, PendingKind::BgApi { job_uuid: j, .. } if *j == job_uuid))
        {
            return Err(SendError::DuplicateJob);
        }
        let c = Command::bgapi(cmd, job_uuid.clone());
        self.send_user(c, PendingKind::BgApi { job_uuid, job_timeout }, now)
    }

    /// Polite close: `exit`, then FreeSWITCH answers `+OK bye`, a disconnect notice and EOF.
    pub fn exit(&mut self, now: Instant) -> Result<RequestId, SendError> {
        let id = self.send_user(Command::exit(), PendingKind::Exit, now)?;
        self.exiting = true;
        Ok(id)
    }

    fn send_user(&mut self, c: Command, kind: PendingKind, now: Instant) -> Result<RequestId, SendError> {
        if self.state != State::Ready || self.exiting {
            return Err(SendError::NotReady);
        }
        let id = RequestId(self.next_id);
        self.next_id += 1;
        self.tx.extend_from_slice(&c.encode());
        self.pending.push_back(Pending { id: Some(id), kind, sent_at: now });
        Ok(id)
    }

    fn send_internal(&mut self, c: Command, kind: PendingKind, now: Instant) {
        self.tx.extend_from_slice(&c.encode());
        self.pending.push_back(Pending { id: None, kind, sent_at: now });
    }

    fn handle_message(&mut self, msg: Message, now: Instant) {
        match msg.kind() {
            MessageKind::AuthRequest => {
                if self.state != State::AwaitingAuthRequest {
                    return self.close(CloseReason::Protocol("unexpected auth/request".into()));
                }
                match Command::auth(&self.cfg.password) {
                    Ok(c) => {
                        self.send_internal(c, PendingKind::Auth, now);
                        self.state = State::Authenticating;
                    }
                    Err(e) => self.close(CloseReason::AuthFailed(format!("password not sendable: {e}"))),
                }
            }
            MessageKind::CommandReply => {
                let text = msg.reply_text().unwrap_or_default();
                let Some(p) = self.pending.pop_front() else {
                    return self.close(CloseReason::Protocol(format!("command/reply with no request pending: {text}")));
                };
                self.on_command_reply(p, text, &msg, now);
            }
            MessageKind::ApiResponse => {
                let body = msg.body_str().into_owned();
                match self.pending.pop_front() {
                    Some(Pending { id: Some(id), kind: PendingKind::Api, .. }) => {
                        self.out.push_back(Output::Reply { id, reply: Reply::Api(body) })
                    }
                    other => {
                        let what = other.map(|p| format!("{:?}", p.kind)).unwrap_or_else(|| "nothing".into());
                        self.close(CloseReason::Protocol(format!("api/response while {what} was pending")))
                    }
                }
            }
            k if k.is_event() => match parse_event(&msg) {
                Ok(ev) => {
                    if ev.name() == Some("BACKGROUND_JOB") {
                        if let Some(job) = ev.job_uuid().and_then(|j| Uuid::parse(j).ok()) {
                            if let Some((id, _)) = self.jobs.remove(&job) {
                                let body = ev.body.clone().unwrap_or_default();
                                self.out.push_back(Output::JobDone { id, job_uuid: job, body });
                                return;
                            }
                        }
                    }
                    self.out.push_back(Output::Event(ev));
                }
                Err(e) => self.out.push_back(Output::BadEvent { error: e.to_string() }),
            },
            MessageKind::DisconnectNotice => {
                if msg.headers.get("Content-Disposition").map(str::trim) == Some("linger") {
                    let linger_time = msg.headers.get("Linger-Time").map(str::to_string);
                    self.out.push_back(Output::Linger { linger_time });
                } else if self.exiting {
                    self.close(CloseReason::LocalExit);
                } else {
                    self.close(CloseReason::ServerDisconnected(msg.body_str().into_owned()));
                }
            }
            MessageKind::RudeRejection => self.close(CloseReason::Rejected(msg.body_str().into_owned())),
            MessageKind::LogData => self.out.push_back(Output::Log(msg)),
            MessageKind::Other(ct) => {
                self.out.push_back(Output::BadEvent { error: format!("ignored message with Content-Type {ct:?}") })
            }
            _ => unreachable!("all kinds handled"),
        }
    }

    fn on_command_reply(&mut self, p: Pending, text: String, msg: &Message, now: Instant) {
        let ok = text.starts_with("+OK");
        match p.kind {
            PendingKind::Auth => {
                if !ok {
                    return self.close(CloseReason::AuthFailed(text));
                }
                match self.cfg.subscription.clone() {
                    Some(sub) => {
                        self.send_internal(Command::event(sub), PendingKind::Subscribe, now);
                        self.state = State::Subscribing;
                    }
                    None => {
                        self.state = State::Ready;
                        self.out.push_back(Output::Ready);
                    }
                }
            }
            PendingKind::Subscribe => {
                if !ok {
                    return self.close(CloseReason::Protocol(format!("event subscription refused: {text}")));
                }
                self.state = State::Ready;
                self.out.push_back(Output::Ready);
            }
            PendingKind::BgApi { job_uuid, job_timeout } => {
                let id = p.id.expect("user request");
                if !ok {
                    return self.out.push_back(Output::JobFailed { id, reason: text, timed_out: false });
                }
                // FreeSWITCH honours the client's Job-UUID; if a server did not, follow its own.
                let job = msg.headers.get("Job-UUID").and_then(|j| Uuid::parse(j.trim()).ok()).unwrap_or(job_uuid);
                self.jobs.insert(job.clone(), (id, now + job_timeout));
                self.out.push_back(Output::JobAccepted { id, job_uuid: job });
            }
            // `api` before auth gets a command/reply (`-ERR command not found`): report it as is.
            PendingKind::Api | PendingKind::Exit => {
                let id = p.id.expect("user request");
                self.out.push_back(Output::Reply { id, reply: Reply::Command(text) });
            }
        }
    }

    fn close(&mut self, reason: CloseReason) {
        if self.is_closed() {
            return;
        }
        self.state = State::Closed;
        for p in self.pending.drain(..) {
            if let Some(id) = p.id {
                self.out.push_back(Output::Aborted { id });
            }
        }
        let mut jobs: Vec<RequestId> = self.jobs.drain().map(|(_, (id, _))| id).collect();
        jobs.sort();
        for id in jobs {
            self.out.push_back(Output::Aborted { id });
        }
        self.out.push_back(Output::Closed(reason));
    }
}
