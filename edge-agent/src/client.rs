//! The tokio adapter around [`crate::esl::Connection`]: one persistent inbound ESL
//! connection, reconnected with backoff and jitter, re-subscribed on every new
//! connection (the state machine does it after auth), shared by all callers through
//! a cloneable [`EslClient`] handle.
//!
//! Requests made while the link is down fail at once with
//! [`ClientError::NotConnected`] (the REST layer answers 503) instead of queueing
//! behind an unknown outage. Requests in flight when the link drops fail with
//! [`ClientError::ConnectionLost`]: whether FreeSWITCH executed them is unknown.
//! [`ClientEvent::Connected`] carries how long the link was down, the seam for the
//! resync snapshot the relay (issue 5 §4) will send after a gap.

use crate::esl::backoff::{Backoff, BackoffConfig};
use crate::esl::{ApiCommand, CloseReason, ConnConfig, Connection, Event, Output, Reply, RequestId, Uuid};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub host: String,
    pub port: u16,
    pub conn: ConnConfig,
    pub connect_timeout: Duration,
    pub backoff: BackoffConfig,
}

/// Source of jitter in [0, 1) for the reconnect delay (injectable for tests).
pub type Jitter = Box<dyn FnMut() -> f64 + Send>;

/// OS-random jitter.
pub fn os_jitter() -> Jitter {
    Box::new(|| {
        let mut b = [0u8; 4];
        getrandom::getrandom(&mut b).expect("OS randomness");
        u32::from_le_bytes(b) as f64 / (u32::MAX as f64 + 1.0)
    })
}

#[derive(Debug, Clone, PartialEq)]
pub enum LinkStatus {
    Connecting { attempt: u32 },
    Ready { generation: u64 },
    Waiting { attempt: u32, retry_in: Duration, last_error: String },
    Stopped,
}

#[derive(Debug, Clone)]
pub enum ClientEvent {
    /// Authenticated and subscribed. `down_for`: the gap since the previous
    /// connection was lost (None for the first connection).
    Connected { generation: u64, down_for: Option<Duration> },
    Disconnected { generation: u64, reason: String },
    /// A connection attempt failed or a connection ended; next try after `delay`.
    Retrying { attempt: u32, delay: Duration, error: String },
    Event(Arc<Event>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// No authenticated connection right now.
    NotConnected,
    /// The connection dropped before the reply/job result came back.
    ConnectionLost,
    /// bgapi refused by FreeSWITCH (`-ERR ...` reply text).
    JobRefused(String),
    /// No BACKGROUND_JOB within the job timeout.
    JobTimeout,
    Stopped,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::NotConnected => write!(f, "FreeSWITCH event socket is not connected"),
            ClientError::ConnectionLost => write!(f, "FreeSWITCH event socket connection lost before the reply"),
            ClientError::JobRefused(t) => write!(f, "FreeSWITCH refused the background job: {t}"),
            ClientError::JobTimeout => write!(f, "FreeSWITCH did not finish the background job in time"),
            ClientError::Stopped => write!(f, "ESL client stopped"),
        }
    }
}
impl std::error::Error for ClientError {}

enum Request {
    Api { cmd: ApiCommand, resp: oneshot::Sender<Result<Reply, ClientError>> },
    BgApi { cmd: ApiCommand, job_uuid: Uuid, timeout: Duration, resp: oneshot::Sender<Result<String, ClientError>> },
    Shutdown { resp: oneshot::Sender<()> },
}

impl Request {
    fn fail(self, e: ClientError) {
        match self {
            Request::Api { resp, .. } => {
                let _ = resp.send(Err(e));
            }
            Request::BgApi { resp, .. } => {
                let _ = resp.send(Err(e));
            }
            Request::Shutdown { resp } => {
                let _ = resp.send(());
            }
        }
    }
}

#[derive(Clone)]
pub struct EslClient {
    tx: mpsc::Sender<Request>,
    status: watch::Receiver<LinkStatus>,
    events: broadcast::Sender<ClientEvent>,
}

impl EslClient {
    /// Spawn the connection driver on the current tokio runtime.
    pub fn start(cfg: ClientConfig, jitter: Jitter) -> EslClient {
        let (tx, rx) = mpsc::channel(256);
        let (status_tx, status) = watch::channel(LinkStatus::Connecting { attempt: 0 });
        let (events, _) = broadcast::channel(4096);
        let ev = events.clone();
        tokio::spawn(async move { Driver { cfg, jitter, rx, status: status_tx, events: ev }.run().await });
        EslClient { tx, status, events }
    }

    pub fn status(&self) -> LinkStatus {
        self.status.borrow().clone()
    }

    pub fn is_ready(&self) -> bool {
        matches!(*self.status.borrow(), LinkStatus::Ready { .. })
    }

    pub fn subscribe(&self) -> broadcast::Receiver<ClientEvent> {
        self.events.subscribe()
    }

    /// Wait (bounded) until the link is Ready.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let mut st = self.status.clone();
        tokio::time::timeout(timeout, st.wait_for(|s| matches!(s, LinkStatus::Ready { .. }))).await.is_ok_and(|r| r.is_ok())
    }

    /// `api <cmd>` on the shared connection.
    pub async fn api(&self, cmd: ApiCommand) -> Result<Reply, ClientError> {
        let (resp, rx) = oneshot::channel();
        self.tx.send(Request::Api { cmd, resp }).await.map_err(|_| ClientError::Stopped)?;
        rx.await.map_err(|_| ClientError::Stopped)?
    }

    /// `bgapi <cmd>` with the given Job-UUID; resolves to the BACKGROUND_JOB body.
    pub async fn bgapi(&self, cmd: ApiCommand, job_uuid: Uuid, timeout: Duration) -> Result<String, ClientError> {
        let (resp, rx) = oneshot::channel();
        self.tx.send(Request::BgApi { cmd, job_uuid, timeout, resp }).await.map_err(|_| ClientError::Stopped)?;
        rx.await.map_err(|_| ClientError::Stopped)?
    }

    /// Send `exit` (bounded wait for FreeSWITCH's goodbye) and stop reconnecting.
    pub async fn shutdown(&self, timeout: Duration) {
        let (resp, rx) = oneshot::channel();
        if self.tx.send(Request::Shutdown { resp }).await.is_ok() {
            let _ = tokio::time::timeout(timeout, rx).await;
        }
    }
}

struct Driver {
    cfg: ClientConfig,
    jitter: Jitter,
    rx: mpsc::Receiver<Request>,
    status: watch::Sender<LinkStatus>,
    events: broadcast::Sender<ClientEvent>,
}

enum SessionEnd {
    Shutdown,
    Ended { error: String, was_ready: bool },
}

struct SessionState {
    generation: u64,
    down_since: Option<Instant>,
}

impl Driver {
    async fn run(mut self) {
        let mut backoff = Backoff::new(self.cfg.backoff);
        let mut st = SessionState { generation: 0, down_since: None };
        loop {
            let _ = self.status.send(LinkStatus::Connecting { attempt: backoff.attempt() });
            let addr = (self.cfg.host.clone(), self.cfg.port);
            let end = match tokio::time::timeout(self.cfg.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => self.session(stream, &mut st).await,
                Ok(Err(e)) => SessionEnd::Ended { error: format!("connect to {}:{}: {e}", self.cfg.host, self.cfg.port), was_ready: false },
                Err(_) => SessionEnd::Ended { error: format!("connect to {}:{} timed out", self.cfg.host, self.cfg.port), was_ready: false },
            };
            let error = match end {
                SessionEnd::Shutdown => break,
                SessionEnd::Ended { error, was_ready } => {
                    if was_ready {
                        backoff.reset();
                    }
                    error
                }
            };
            if st.down_since.is_none() {
                st.down_since = Some(Instant::now());
            }
            let attempt = backoff.attempt() + 1;
            let delay = backoff.next_delay((self.jitter)());
            tracing::warn!(attempt, delay_ms = delay.as_millis() as u64, error = %error, "ESL link down, retrying");
            let _ = self.events.send(ClientEvent::Retrying { attempt, delay, error: error.clone() });
            let _ = self.status.send(LinkStatus::Waiting { attempt, retry_in: delay, last_error: error });
            let sleep = tokio::time::sleep(delay);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = &mut sleep => break,
                    req = self.rx.recv() => match req {
                        None => { let _ = self.status.send(LinkStatus::Stopped); return; }
                        Some(Request::Shutdown { resp }) => { let _ = resp.send(()); let _ = self.status.send(LinkStatus::Stopped); return; }
                        Some(r) => r.fail(ClientError::NotConnected),
                    }
                }
            }
        }
        let _ = self.status.send(LinkStatus::Stopped);
    }

    async fn session(&mut self, stream: TcpStream, st: &mut SessionState) -> SessionEnd {
        let _ = stream.set_nodelay(true);
        let (mut rd, mut wr) = stream.into_split();
        let mut conn = Connection::new(self.cfg.conn.clone(), Instant::now());
        let mut buf = vec![0u8; 64 * 1024];
        let mut api_waiters: HashMap<RequestId, oneshot::Sender<Result<Reply, ClientError>>> = HashMap::new();
        let mut job_waiters: HashMap<RequestId, oneshot::Sender<Result<String, ClientError>>> = HashMap::new();
        let mut shutdown_waiter: Option<oneshot::Sender<()>> = None;
        let mut ready = false;
        loop {
            if let Some(bytes) = conn.poll_transmit() {
                if let Err(e) = wr.write_all(&bytes).await {
                    tracing::warn!(error = %e, "ESL write failed");
                    conn.handle_eof(Instant::now());
                }
            }
            while let Some(o) = conn.poll_output() {
                match o {
                    Output::Ready => {
                        ready = true;
                        st.generation += 1;
                        let down_for = st.down_since.take().map(|t| t.elapsed());
                        tracing::info!(generation = st.generation, ?down_for, "ESL connected and subscribed");
                        let _ = self.status.send(LinkStatus::Ready { generation: st.generation });
                        let _ = self.events.send(ClientEvent::Connected { generation: st.generation, down_for });
                    }
                    Output::Reply { id, reply } => {
                        if let Some(w) = api_waiters.remove(&id) {
                            let _ = w.send(Ok(reply));
                        }
                    }
                    Output::JobAccepted { .. } => {}
                    Output::JobDone { id, body, .. } => {
                        if let Some(w) = job_waiters.remove(&id) {
                            let _ = w.send(Ok(body));
                        }
                    }
                    Output::JobFailed { id, reason, timed_out } => {
                        if let Some(w) = job_waiters.remove(&id) {
                            let _ = w.send(Err(if timed_out { ClientError::JobTimeout } else { ClientError::JobRefused(reason) }));
                        }
                    }
                    Output::Event(ev) => {
                        let _ = self.events.send(ClientEvent::Event(Arc::new(ev)));
                    }
                    Output::BadEvent { error } => tracing::warn!(%error, "undecodable ESL event"),
                    Output::Log(_) | Output::Linger { .. } => {}
                    Output::Aborted { id } => {
                        if let Some(w) = api_waiters.remove(&id) {
                            let _ = w.send(Err(ClientError::ConnectionLost));
                        }
                        if let Some(w) = job_waiters.remove(&id) {
                            let _ = w.send(Err(ClientError::ConnectionLost));
                        }
                    }
                    Output::Closed(reason) => {
                        for (_, w) in api_waiters.drain() {
                            let _ = w.send(Err(ClientError::ConnectionLost));
                        }
                        for (_, w) in job_waiters.drain() {
                            let _ = w.send(Err(ClientError::ConnectionLost));
                        }
                        if ready {
                            let _ = self.events.send(ClientEvent::Disconnected { generation: st.generation, reason: reason.to_string() });
                        }
                        if let Some(w) = shutdown_waiter.take() {
                            let _ = w.send(());
                            return SessionEnd::Shutdown;
                        }
                        if reason == CloseReason::LocalExit {
                            return SessionEnd::Shutdown;
                        }
                        tracing::warn!(reason = %reason, "ESL connection closed");
                        return SessionEnd::Ended { error: reason.to_string(), was_ready: ready };
                    }
                }
            }
            let deadline = conn.poll_timeout().map(tokio::time::Instant::from_std);
            tokio::select! {
                r = rd.read(&mut buf) => match r {
                    Ok(0) | Err(_) => conn.handle_eof(Instant::now()),
                    Ok(n) => conn.handle_bytes(&buf[..n], Instant::now()),
                },
                req = self.rx.recv(), if shutdown_waiter.is_none() => match req {
                    None => { let _ = conn.exit(Instant::now()); return SessionEnd::Shutdown; }
                    Some(Request::Api { cmd, resp }) => match conn.api(cmd, Instant::now()) {
                        Ok(id) => { api_waiters.insert(id, resp); }
                        Err(_) => { let _ = resp.send(Err(ClientError::NotConnected)); }
                    },
                    Some(Request::BgApi { cmd, job_uuid, timeout, resp }) => match conn.bgapi(cmd, job_uuid, timeout, Instant::now()) {
                        Ok(id) => { job_waiters.insert(id, resp); }
                        Err(e) => { let _ = resp.send(Err(if e == crate::esl::conn::SendError::DuplicateJob { ClientError::JobRefused("duplicate Job-UUID".into()) } else { ClientError::NotConnected })); }
                    },
                    Some(Request::Shutdown { resp }) => {
                        if conn.exit(Instant::now()).is_ok() {
                            shutdown_waiter = Some(resp);
                        } else {
                            let _ = resp.send(());
                            return SessionEnd::Shutdown;
                        }
                    }
                },
                _ = sleep_until_opt(deadline) => conn.handle_timeout(Instant::now()),
            }
        }
    }
}

async fn sleep_until_opt(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
