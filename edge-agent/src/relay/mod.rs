//! Event relay (issue 5 §4): what happens on the node, reported to callplane.
//!
//! * **Dialogs.** Channel events from the event socket → `POST /presence/event`
//!   `{"type":"dialog",...}`: `confirmed` on answer, `terminated` on hangup (mapping
//!   in [`dialog`]). Only channels carrying `X-Account-Id` are callplane dialogs.
//! * **Reconciliation.** Every `RELAY_RECONCILE_SECONDS` (30), per account, the
//!   Call-IDs live on this node → `POST /cac/reconcile`, from the channel table
//!   ([`table`]). After every (re)connection, and whenever events were missed (a
//!   lagging subscriber), the table is rebuilt from a snapshot (`api show channels as
//!   json`, then `uuid_getvar` for channels it does not know) and no reconcile is sent
//!   until that snapshot is applied.
//! * **Bans.** Every `BAN_REPORT_SECONDS` (30), the node's ban list from `BAN_FILE`
//!   → `POST /security/report` ([`bans`]). callplane does not serve that endpoint yet:
//!   a 404 is logged once and the report dropped (the next one follows anyway).
//!
//! Delivery ([`outbox`]): a bounded queue (drop-oldest, counted and logged) drained
//! by a few workers over keep-alive HTTP connections ([`crate::http`]); network
//! errors, 408, 429 and 5xx are retried with exponential backoff and jitter; other
//! 4xx are dropped (retrying cannot fix them) and logged. Nothing here ever waits on
//! callplane while reading the event socket: the ESL client broadcasts events, this
//! task turns them into queue entries, and a lagging receiver is a gap (→ resync).
//!
//! Everything that decides is pure ([`dialog`], [`table`], [`outbox`], [`bans`],
//! [`snapshot`]); this module only moves bytes and reads clocks.

pub mod bans;
pub mod dialog;
pub mod outbox;
pub mod snapshot;
pub mod table;

use crate::client::{ClientEvent, EslClient, Jitter, LinkStatus};
use crate::esl::{ApiCommand, Reply, Uuid};
use crate::http::{Endpoint, HttpClient, HttpError, Response};
use outbox::{Item, Kind, Next, Outbox, Outcome, Pushed};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use table::{ChannelTable, Effect, ResyncTicket, SnapChannel};
use tokio::sync::{broadcast, mpsc, Notify};
use tokio::task::JoinHandle;

/// Events the agent subscribes to on every (re)connection. HEARTBEAT keeps the
/// liveness check fed; BACKGROUND_JOB completes bgapi jobs; the channel events feed
/// the relay's channel table.
pub const EVENTS: &[&str] = &[
    "HEARTBEAT",
    "BACKGROUND_JOB",
    "CHANNEL_CREATE",
    "CHANNEL_ANSWER",
    "CHANNEL_BRIDGE",
    "CHANNEL_UNBRIDGE",
    "CHANNEL_HOLD",
    "CHANNEL_UNHOLD",
    "CHANNEL_HANGUP_COMPLETE",
];

/// Largest reconcile body sent (the Worker refuses bodies over 64 KiB).
const MAX_RECONCILE_BODY: usize = 63 * 1024;

#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub endpoint: Endpoint,
    /// This node's media-node credential.
    pub token: String,
    /// This media node's name as provisioned: sent with every dialog event (a `confirmed`
    /// pins the call's lease to this node), every reconcile (callplane judges only the
    /// leases pinned to the reporting node) and every ban report.
    pub node: String,
    /// None: no reconciliation.
    pub reconcile_every: Option<Duration>,
    /// `graceSeconds` sent with each reconcile (None: the Worker's default, 60 s).
    pub reconcile_grace_secs: Option<u64>,
    /// None: no ban reports.
    pub ban_file: Option<PathBuf>,
    pub ban_every: Duration,
    pub queue_capacity: usize,
    pub workers: usize,
    pub request_timeout: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Wait before retrying a failed snapshot while connected.
    pub resync_retry: Duration,
}

impl RelayConfig {
    pub fn new(endpoint: Endpoint, token: &str, node: &str) -> RelayConfig {
        RelayConfig {
            endpoint,
            token: token.to_string(),
            node: node.to_string(),
            reconcile_every: Some(Duration::from_secs(30)),
            reconcile_grace_secs: None,
            ban_file: None,
            ban_every: Duration::from_secs(30),
            queue_capacity: 10_000,
            workers: 4,
            request_timeout: Duration::from_secs(10),
            retry_initial: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
            resync_retry: Duration::from_secs(5),
        }
    }
}

/// What the relay has done, for `/health` and logs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RelayStats {
    pub synced: bool,
    pub channels: usize,
    pub resyncs: u64,
    /// callplane answered 404 to the last ban report (endpoint not deployed yet).
    pub security_report_missing: bool,
    pub queue: outbox::Stats,
}

struct Shared {
    outbox: Mutex<Outbox>,
    /// Wakes delivery workers (push, finish, stop).
    notify: Notify,
    epoch: Instant,
    stop: AtomicBool,
    synced: AtomicBool,
    channels: AtomicUsize,
    resyncs: AtomicU64,
    security_404_logged: AtomicBool,
    last_drop_log: Mutex<Option<Instant>>,
}

impl Shared {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn push(&self, item: Item, ttl: Option<Duration>) {
        let kind = item.kind;
        let pushed = self.outbox.lock().expect("outbox lock").push(item, self.now_ms(), ttl);
        match pushed {
            Pushed::Queued | Pushed::Superseded => {}
            Pushed::DroppedOldest(_) | Pushed::DroppedNew => {
                let dropped = self.outbox.lock().expect("outbox lock").stats().dropped_overflow;
                let mut last = self.last_drop_log.lock().expect("drop log lock");
                if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    *last = Some(Instant::now());
                    tracing::warn!(dropped_total = dropped, ?kind, "relay queue full: dropped the oldest report (callplane unreachable or too slow)");
                }
            }
        }
        self.notify.notify_waiters();
    }
}

#[derive(Clone)]
pub struct RelayHandle {
    shared: Arc<Shared>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl RelayHandle {
    pub fn stats(&self) -> RelayStats {
        RelayStats {
            synced: self.shared.synced.load(Ordering::Relaxed),
            channels: self.shared.channels.load(Ordering::Relaxed),
            resyncs: self.shared.resyncs.load(Ordering::Relaxed),
            security_report_missing: self.shared.security_404_logged.load(Ordering::Relaxed),
            queue: self.shared.outbox.lock().expect("outbox lock").stats(),
        }
    }

    /// Stop reading events, give queued reports up to `timeout` to go out, stop.
    pub async fn shutdown(&self, timeout: Duration) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.notify.notify_waiters();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline && !self.shared.outbox.lock().expect("outbox lock").is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let left = self.shared.outbox.lock().expect("outbox lock").len();
        if left > 0 {
            tracing::warn!(left, "relay stopped with reports still queued");
        }
        for t in self.tasks.lock().expect("tasks lock").drain(..) {
            t.abort();
        }
    }
}

/// Start the relay on the current tokio runtime. `jitter` makes one jitter source
/// per delivery worker.
pub fn start(cfg: RelayConfig, esl: EslClient, mut jitter: impl FnMut() -> Jitter) -> RelayHandle {
    let shared = Arc::new(Shared {
        outbox: Mutex::new(Outbox::new(cfg.queue_capacity)),
        notify: Notify::new(),
        epoch: Instant::now(),
        stop: AtomicBool::new(false),
        synced: AtomicBool::new(false),
        channels: AtomicUsize::new(0),
        resyncs: AtomicU64::new(0),
        security_404_logged: AtomicBool::new(false),
        last_drop_log: Mutex::new(None),
    });
    let mut tasks = Vec::new();
    for _ in 0..cfg.workers.max(1) {
        let http = HttpClient::new(cfg.endpoint.clone(), Some(&cfg.token), cfg.request_timeout);
        tasks.push(tokio::spawn(deliver(shared.clone(), http, jitter(), cfg.retry_initial, cfg.retry_max)));
    }
    let events = esl.subscribe();
    tasks.push(tokio::spawn(run(cfg, esl, events, shared.clone())));
    RelayHandle { shared, tasks: Arc::new(Mutex::new(tasks)) }
}

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

async fn run(cfg: RelayConfig, esl: EslClient, mut events: broadcast::Receiver<ClientEvent>, shared: Arc<Shared>) {
    let mut table = ChannelTable::new();
    let (snap_tx, mut snap_rx) = mpsc::channel::<(u64, Result<Vec<SnapChannel>, String>)>(4);
    let mut gap_started: Option<u64> = None;
    let mut resync_at: Option<tokio::time::Instant> = None;
    let far = Duration::from_secs(86_400 * 365);
    let mut reconcile = tokio::time::interval(cfg.reconcile_every.unwrap_or(far));
    reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ban_tick = tokio::time::interval(if cfg.ban_file.is_some() { cfg.ban_every } else { far });
    ban_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ban_state = BanState::default();
    let begin = |table: &mut ChannelTable, shared: &Shared| {
        let ticket = table.begin_resync();
        shared.synced.store(false, Ordering::Relaxed);
        shared.resyncs.fetch_add(1, Ordering::Relaxed);
        let (esl, tx) = (esl.clone(), snap_tx.clone());
        tokio::spawn(async move {
            let generation = ticket.generation;
            let r = fetch_snapshot(&esl, ticket).await;
            let _ = tx.send((generation, r)).await;
        });
    };
    // The link may be up already (then its Connected event may or may not be in our
    // receiver): one resync per link generation.
    let mut resynced_link: Option<u64> = None;
    if let LinkStatus::Ready { generation } = esl.status() {
        resynced_link = Some(generation);
        begin(&mut table, &shared);
    }
    tracing::info!(url = %format!("http://{}:{}{}", cfg.endpoint.host, cfg.endpoint.port, cfg.endpoint.base_path), node = %cfg.node, reconcile_s = cfg.reconcile_every.map(|d| d.as_secs_f64()), ban_file = ?cfg.ban_file, "relay started");
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(ClientEvent::Event(e)) => {
                    let effects = table.on_event(&e, now_us());
                    emit(&shared, &cfg.node, effects);
                }
                Ok(ClientEvent::Connected { generation, down_for }) => {
                    if let Some(d) = down_for {
                        gap_started = Some(now_us().saturating_sub(d.as_micros() as u64));
                    }
                    if resynced_link != Some(generation) {
                        resynced_link = Some(generation);
                        resync_at = None;
                        begin(&mut table, &shared);
                    }
                }
                Ok(ClientEvent::Disconnected { .. }) => {
                    table.mark_unsynced();
                    shared.synced.store(false, Ordering::Relaxed);
                    gap_started.get_or_insert(now_us());
                }
                Ok(ClientEvent::Retrying { .. }) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "relay fell behind the event socket: resyncing from a channel snapshot");
                    gap_started.get_or_insert(now_us());
                    if esl.is_ready() {
                        begin(&mut table, &shared);
                    } else {
                        table.mark_unsynced();
                        shared.synced.store(false, Ordering::Relaxed);
                    }
                }
                Err(broadcast::error::RecvError::Closed) => {
                    tracing::info!("ESL client stopped: relay stops reading events");
                    return;
                }
            },
            Some((generation, r)) = snap_rx.recv() => match r {
                Ok(snap) => match table.apply_snapshot(generation, &snap, now_us(), gap_started) {
                    Ok(effects) => {
                        let n = effects.len();
                        emit(&shared, &cfg.node, effects);
                        gap_started = None;
                        shared.synced.store(true, Ordering::Relaxed);
                        tracing::info!(live_channels = snap.len(), tracked = table.channel_count(), dialogs = table.dialog_count(), reports = n, "relay resynced from the channel snapshot");
                    }
                    Err(_) => tracing::debug!("stale snapshot ignored (a newer resync is running)"),
                },
                Err(e) => {
                    tracing::warn!(error = %e, "channel snapshot failed; retrying");
                    resync_at = Some(tokio::time::Instant::now() + cfg.resync_retry);
                }
            },
            _ = sleep_until_opt(resync_at) => {
                resync_at = None;
                if esl.is_ready() && !table.is_synced() {
                    begin(&mut table, &shared);
                }
            }
            _ = reconcile.tick(), if cfg.reconcile_every.is_some() => {
                if let Some(batches) = table.reconcile_batches() {
                    for (account, live) in batches {
                        let body = reconcile_body(&account, &cfg.node, &live, cfg.reconcile_grace_secs);
                        if body.len() > MAX_RECONCILE_BODY {
                            tracing::warn!(%account, live = live.len(), "too many live calls for one /cac/reconcile body (64 KiB): skipped");
                            continue;
                        }
                        shared.push(Item::reconcile(&account, body), cfg.reconcile_every);
                    }
                } else {
                    tracing::debug!("reconcile skipped: channel table not synced");
                }
            }
            _ = ban_tick.tick(), if cfg.ban_file.is_some() => {
                if let Some(body) = ban_state.read(cfg.ban_file.as_deref().expect("guarded"), &cfg.node).await {
                    shared.push(Item::security_report(body), Some(cfg.ban_every));
                }
            }
        }
        shared.channels.store(table.channel_count(), Ordering::Relaxed);
    }
}

fn emit(shared: &Shared, node: &str, effects: Vec<Effect>) {
    for e in effects {
        match e {
            Effect::Dialog(d) => {
                tracing::debug!(call_id = %d.call_id, account = %d.account_id, state = ?d.state, reason = ?d.reason, "dialog event queued");
                shared.push(Item::dialog(&d.account_id, &d.call_id, d.body(node)), None);
            }
            Effect::Ignored { uuid, why } => tracing::debug!(%uuid, ?why, "channel is not a callplane dialog (no usable X-Account-Id / Call-ID): not relayed"),
        }
    }
}

/// `POST /cac/reconcile` body: the Call-IDs of `account` live on media node `node`.
/// callplane requires `node` from a media node and judges only the leases pinned to it
/// (by this node's `confirmed` events): calls on other nodes or on trunks are not ours.
pub fn reconcile_body(account: &str, node: &str, live: &[String], grace: Option<u64>) -> String {
    let mut v = serde_json::json!({ "accountId": account, "node": node, "liveCallIds": live });
    if let Some(g) = grace {
        v["graceSeconds"] = g.into();
    }
    v.to_string()
}

async fn fetch_snapshot(esl: &EslClient, ticket: ResyncTicket) -> Result<Vec<SnapChannel>, String> {
    let cmd = ApiCommand::new("show")
        .and_then(|c| c.arg("channels", "arg"))
        .and_then(|c| c.arg("as", "arg"))
        .and_then(|c| c.arg("json", "arg"))
        .expect("static command");
    let body = match esl.api(cmd).await.map_err(|e| e.to_string())? {
        Reply::Api(b) => b,
        Reply::Command(t) => return Err(format!("show channels answered {t}")),
    };
    let rows = snapshot::parse_channels(&body)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let answered = row.answered();
        if ticket.known.contains(&row.uuid) {
            out.push(SnapChannel { uuid: row.uuid, identity: None, answered });
            continue;
        }
        let uuid = Uuid::parse(&row.uuid).map_err(|e| e.to_string())?;
        let account = match getvar(esl, &uuid, dialog::ACCOUNT_VAR).await? {
            snapshot::Var::NoChannel => continue,
            snapshot::Var::Unset => None,
            snapshot::Var::Value(v) => Some(v),
        };
        let identity = match account {
            None => None,
            Some(a) => match getvar(esl, &uuid, dialog::CALL_ID_VAR).await? {
                snapshot::Var::NoChannel => continue,
                snapshot::Var::Unset => None,
                snapshot::Var::Value(c) => dialog::identity(Some(&a), Some(&c)).ok(),
            },
        };
        out.push(SnapChannel { uuid: row.uuid, identity, answered });
    }
    Ok(out)
}

async fn getvar(esl: &EslClient, uuid: &Uuid, var: &str) -> Result<snapshot::Var, String> {
    let cmd = ApiCommand::new("uuid_getvar").expect("static").uuid(uuid).arg(var, "variable").map_err(|e| e.to_string())?;
    match esl.api(cmd).await.map_err(|e| e.to_string())? {
        Reply::Api(b) => snapshot::parse_getvar(&b),
        Reply::Command(t) => Err(format!("uuid_getvar answered {t}")),
    }
}

/// Reads the ban file, logging each distinct problem once.
#[derive(Default)]
struct BanState {
    last_error: Option<String>,
    last_bad: usize,
}

impl BanState {
    async fn read(&mut self, path: &std::path::Path, node: &str) -> Option<String> {
        let owned = path.to_path_buf();
        let read = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
            let len = std::fs::metadata(&owned)?.len();
            if len > 16 * 1024 * 1024 {
                return Err(std::io::Error::other(format!("{len} bytes: larger than 16 MiB")));
            }
            std::fs::read_to_string(&owned)
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        let text = match read {
            Ok(t) => t,
            Err(e) => {
                let msg = format!("{}: {e}", path.display());
                if self.last_error.as_deref() != Some(msg.as_str()) {
                    tracing::warn!(error = %msg, "cannot read the ban file: no ban report until it is readable (create it empty if there are no bans)");
                    self.last_error = Some(msg);
                }
                return None;
            }
        };
        if self.last_error.take().is_some() {
            tracing::info!(file = %path.display(), "ban file readable again");
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let parsed = bans::parse(&text, now);
        if parsed.bad_lines != self.last_bad {
            if parsed.bad_lines > 0 {
                tracing::warn!(file = %path.display(), bad_lines = parsed.bad_lines, first = ?parsed.errors.first(), "ban file has lines that do not parse (skipped)");
            }
            self.last_bad = parsed.bad_lines;
        }
        if parsed.bans.len() > bans::MAX_BANS {
            tracing::warn!(bans = parsed.bans.len(), max = bans::MAX_BANS, "ban list truncated in the report");
        }
        Some(bans::report_body(node, &parsed.bans))
    }
}

async fn deliver(shared: Arc<Shared>, mut http: HttpClient, mut jitter: Jitter, initial: Duration, max: Duration) {
    loop {
        let notified = shared.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if shared.stop.load(Ordering::SeqCst) && shared.outbox.lock().expect("outbox lock").is_empty() {
            return;
        }
        let next = shared.outbox.lock().expect("outbox lock").next(shared.now_ms());
        match next {
            Next::Ready(p) => {
                let res = http.post_json(p.item.kind.path(), &p.item.body).await;
                let outcome = classify(&shared, &p, res, &mut jitter, initial, max);
                shared.outbox.lock().expect("outbox lock").finish(*p, outcome, shared.now_ms());
                shared.notify.notify_waiters();
            }
            Next::At(t) => {
                let wait = Duration::from_millis(t.saturating_sub(shared.now_ms()));
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = &mut notified => {}
                }
            }
            Next::Idle => notified.await,
        }
    }
}

fn classify(shared: &Shared, p: &outbox::Pending, res: Result<Response, HttpError>, jitter: &mut Jitter, initial: Duration, max: Duration) -> Outcome {
    let kind = p.item.kind;
    let retry = |jitter: &mut Jitter| Outcome::Retry { delay_ms: outbox::retry_delay(p.attempts + 1, initial, max, jitter()).as_millis() as u64 };
    let loud = p.attempts.is_multiple_of(10);
    match res {
        Ok(r) if (200..300).contains(&r.status) => {
            if kind == Kind::Reconcile {
                if let Some(rel) = r.json().and_then(|v| v.get("released").cloned()).and_then(|v| v.as_array().cloned()) {
                    if !rel.is_empty() {
                        let ids: Vec<&str> = rel.iter().filter_map(|l| l.get("call_id").or_else(|| l.get("callId")).and_then(|c| c.as_str())).collect();
                        tracing::info!(group = %p.item.group, released = ?ids, "reconcile released leases of calls no longer live");
                    }
                }
            }
            if kind == Kind::SecurityReport && shared.security_404_logged.swap(false, Ordering::Relaxed) {
                tracing::info!("callplane accepts /security/report now: ban snapshots are delivered");
            }
            if p.attempts > 0 {
                tracing::info!(?kind, attempts = p.attempts + 1, "report delivered after retries");
            }
            Outcome::Delivered
        }
        Ok(r) if r.status == 404 && kind == Kind::SecurityReport => {
            if !shared.security_404_logged.swap(true, Ordering::Relaxed) {
                tracing::warn!("callplane has no /security/report endpoint yet (404): ban snapshots are dropped until it does");
            }
            Outcome::Rejected
        }
        Ok(r) if r.status == 408 || r.status == 429 || r.status >= 500 => {
            if loud {
                tracing::warn!(?kind, status = r.status, message = %r.message(), attempts = p.attempts + 1, "callplane failed the report; retrying");
            }
            retry(jitter)
        }
        Ok(r) => {
            tracing::warn!(?kind, status = r.status, message = %r.message(), body = %p.item.body.chars().take(300).collect::<String>(), "callplane refused the report: dropped");
            Outcome::Rejected
        }
        Err(e) => {
            if loud {
                tracing::warn!(?kind, error = %e, attempts = p.attempts + 1, "callplane unreachable; retrying");
            }
            retry(jitter)
        }
    }
}

async fn sleep_until_opt(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconcile_bodies_name_the_node() {
        let live = vec!["c1@x".to_string(), "c2@x".to_string()];
        assert_eq!(reconcile_body("acc_1", "fs-1", &live, None), r#"{"accountId":"acc_1","liveCallIds":["c1@x","c2@x"],"node":"fs-1"}"#);
        assert_eq!(reconcile_body("acc_1", "fs-1", &[], Some(0)), r#"{"accountId":"acc_1","graceSeconds":0,"liveCallIds":[],"node":"fs-1"}"#);
    }
}
