//! The flow runner (issue 5 §3): FreeSWITCH hands each call that `/route` sent to a flow
//! to the agent over an outbound event socket (`socket 127.0.0.1:8084 async full`,
//! `deploy/freeswitch/dialplan/callplane.xml`); the agent runs the call's flow against
//! callplane's `/flow`.
//!
//! * [`runner`]: the sans-IO session state machine (ESL messages, `/flow` answers,
//!   fetches and uploads in; ESL bytes, requests out; time as an argument).
//! * [`esl_map`]: pure translations: media → what FreeSWITCH plays, command →
//!   application arguments, FreeSWITCH results → outcomes.
//! * this module: the thin tokio adapter: accept, read/write the socket, perform the
//!   requests the runner asks for, feed the results back.
//!
//! Media: `file` media URLs (signed `GET /media/…` URLs) need the media-node credential,
//! which FreeSWITCH does not have, so the agent downloads them itself into
//! `FLOW_MEDIA_CACHE` (`<cache>/<account>/<key>`, written to a temporary file and
//! renamed, reused for [`CACHE_TTL`]) and FreeSWITCH plays the local file. Like the
//! relays, the agent speaks plain HTTP to `CALLPLANE_URL` (a loopback TLS proxy): it
//! takes the path and query of the signed URL and sends them there. `url` media
//! (public URLs) are fetched by FreeSWITCH itself through `http_cache://` (mod_http_cache).

pub mod esl_map;
pub mod runner;

use crate::esl::{Limits, Parser};
use crate::http::{Endpoint, HttpClient, HttpError};
use runner::{Action, HttpResult, Note, Runner, RunnerConfig, Upload};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// A cached media file younger than this is played without asking callplane again
/// (callplane serves media with `cache-control: private, max-age=300`).
pub const CACHE_TTL: Duration = Duration::from_secs(300);
/// Largest media file fetched or recording uploaded (callplane's PUT limit is 32 MiB).
pub const MAX_MEDIA_BYTES: usize = 32 * 1024 * 1024;
/// A WAV file this size or smaller holds no audio (header only).
pub const EMPTY_WAV_BYTES: u64 = 44;

#[derive(Debug, Clone)]
pub struct FlowConfig {
    pub endpoint: Endpoint,
    pub token: String,
    pub media_cache: PathBuf,
    pub runner: RunnerConfig,
    pub http_timeout: Duration,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Accept outbound-socket connections until `listener` fails; one task per call.
pub async fn serve(listener: TcpListener, cfg: Arc<FlowConfig>) {
    loop {
        match listener.accept().await {
            Ok((sock, peer)) => {
                let cfg = cfg.clone();
                tokio::spawn(async move {
                    tracing::debug!(%peer, "flow: FreeSWITCH connected");
                    session(sock, cfg).await;
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "flow: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

enum Input {
    Flow(HttpResult),
    Fetched(usize, Result<String, String>),
    Uploaded(Upload),
}

/// Run one call's session to its end.
pub async fn session(sock: TcpStream, cfg: Arc<FlowConfig>) {
    let _ = sock.set_nodelay(true);
    let (mut rd, mut wr) = sock.into_split();
    let mut runner = Runner::new(cfg.runner.clone());
    let mut parser = Parser::new(Limits::default());
    let (tx, mut rx) = mpsc::channel::<Input>(16);
    let flow_http = Arc::new(tokio::sync::Mutex::new(HttpClient::new(cfg.endpoint.clone(), Some(&cfg.token), cfg.http_timeout)));
    let mut buf = vec![0u8; 16 * 1024];
    let mut eof = false;
    let mut close_by: Option<Instant> = None;
    loop {
        while let Some(note) = runner.poll_note() {
            log_note(runner.call_id().unwrap_or(""), note);
        }
        while let Some(a) = runner.poll_action() {
            match a {
                Action::Esl(bytes) => {
                    if !eof && wr.write_all(&bytes).await.is_err() {
                        eof = true;
                        runner.on_closed(now_ms());
                    }
                }
                Action::Flow { body } => {
                    let (tx, http) = (tx.clone(), flow_http.clone());
                    tokio::spawn(async move {
                        let res = match http.lock().await.post_json("/flow", &body).await {
                            Ok(r) => HttpResult::Response { status: r.status, body: r.body },
                            Err(e) => HttpResult::Failed(e.to_string()),
                        };
                        let _ = tx.send(Input::Flow(res)).await;
                    });
                }
                Action::Fetch { id, key, url } => {
                    let (tx, cfg) = (tx.clone(), cfg.clone());
                    tokio::spawn(async move {
                        let res = fetch(&cfg, &key, &url).await;
                        let _ = tx.send(Input::Fetched(id, res)).await;
                    });
                }
                Action::Upload { path, url, call_id, duration_ms } => {
                    let (tx, cfg) = (tx.clone(), cfg.clone());
                    tokio::spawn(async move {
                        let res = upload(&cfg, &path, &url, &call_id, duration_ms).await;
                        let _ = tx.send(Input::Uploaded(res)).await;
                    });
                }
                Action::Close => {
                    close_by.get_or_insert(Instant::now() + Duration::from_secs(2));
                }
            }
        }
        if runner.is_finished() {
            // Wait (bounded) for FreeSWITCH's goodbye and EOF, then drop the socket.
            let Some(by) = close_by else { break };
            if eof {
                break;
            }
            match tokio::time::timeout_at(by.into(), rd.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => continue,
                _ => break,
            }
        }
        let deadline = runner.poll_timeout();
        let sleep = async {
            match deadline {
                Some(t) => tokio::time::sleep(Duration::from_millis(t.saturating_sub(now_ms()))).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = rd.read(&mut buf), if !eof => match r {
                Ok(n) if n > 0 => {
                    parser.feed(&buf[..n]);
                    loop {
                        match parser.next() {
                            Ok(Some(msg)) => runner.on_message(&msg, now_ms()),
                            Ok(None) => break,
                            Err(e) => {
                                tracing::warn!(error = %e, "flow: event socket framing error; closing");
                                eof = true;
                                runner.on_closed(now_ms());
                                break;
                            }
                        }
                    }
                }
                _ => {
                    eof = true;
                    runner.on_closed(now_ms());
                }
            },
            Some(input) = rx.recv() => match input {
                Input::Flow(r) => runner.on_flow(r, now_ms()),
                Input::Fetched(id, r) => runner.on_fetched(id, r, now_ms()),
                Input::Uploaded(r) => runner.on_uploaded(r, now_ms()),
            },
            _ = sleep => runner.handle_timeout(now_ms()),
        }
    }
    let _ = wr.shutdown().await;
}

fn log_note(call_id: &str, note: Note) {
    match note {
        Note::Started { call_id, account_id, flow_id } => tracing::info!(%call_id, account = %account_id, flow = %flow_id, "flow: call started"),
        Note::Command { seq, summary } => tracing::info!(%call_id, seq, command = %summary, "flow: command"),
        Note::Outcome { seq, outcome } => tracing::info!(%call_id, seq, %outcome, "flow: outcome"),
        Note::Retry { what, attempt, error } => tracing::warn!(%call_id, what, attempt, %error, "flow: retrying"),
        Note::Failed(e) => tracing::warn!(%call_id, error = %e, "flow: failed"),
        Note::Done { reason } => tracing::info!(%call_id, %reason, "flow: session over"),
    }
}

/// The path and query of a callplane URL (`https://cp.example.com/media/acc_…/k?exp=…&sig=…`
/// → `/media/acc_…/k?exp=…&sig=…`): the agent sends them to `CALLPLANE_URL`.
pub fn path_and_query(url: &str) -> Result<String, String> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")).ok_or_else(|| format!("not an http(s) URL: {url:.80}"))?;
    let path = rest.find('/').map(|i| &rest[i..]).ok_or_else(|| format!("URL without a path: {url:.80}"))?;
    if !path.starts_with("/media/") || path.chars().any(|c| c.is_control() || c.is_whitespace() || c == '#') || path.contains("/../") {
        return Err(format!("not a callplane media URL: {url:.80}"));
    }
    Ok(path.to_string())
}

/// Where `key` of the media URL `url` is cached: `<cache>/<account or system>/<key>`.
pub fn cache_path(cache: &Path, url: &str) -> Result<PathBuf, String> {
    let pq = path_and_query(url)?;
    let full = pq.split('?').next().unwrap_or("").trim_start_matches("/media/");
    if !callplane::flow::wire::is_safe_media_key(full) {
        return Err(format!("unsafe media key in URL: {full:.80}"));
    }
    Ok(cache.join(full))
}

async fn fetch(cfg: &FlowConfig, key: &str, url: &str) -> Result<String, String> {
    let path = cache_path(&cfg.media_cache, url)?;
    let local = path.to_str().filter(|p| esl_map::is_local_path(p)).ok_or_else(|| format!("cache path not usable by FreeSWITCH: {}", path.display()))?.to_string();
    if let Ok(meta) = tokio::fs::metadata(&path).await {
        if meta.modified().ok().and_then(|m| m.elapsed().ok()).is_some_and(|age| age < CACHE_TTL) && meta.len() > 0 {
            return Ok(local);
        }
    }
    let pq = path_and_query(url)?;
    let mut http = HttpClient::new(cfg.endpoint.clone(), Some(&cfg.token), cfg.http_timeout);
    let mut last = String::new();
    for attempt in 0..3u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(300 << attempt)).await;
        }
        match http.send("GET", &pq, &[], None, MAX_MEDIA_BYTES).await {
            Ok(r) if r.status == 200 => {
                let dir = path.parent().ok_or("cache path without a directory")?;
                tokio::fs::create_dir_all(dir).await.map_err(|e| format!("{}: {e}", dir.display()))?;
                let tmp = path.with_extension(format!("part{}", std::process::id()));
                tokio::fs::write(&tmp, &r.body).await.map_err(|e| format!("{}: {e}", tmp.display()))?;
                tokio::fs::rename(&tmp, &path).await.map_err(|e| format!("{}: {e}", path.display()))?;
                return Ok(local);
            }
            Ok(r) if r.status >= 500 || r.status == 429 || r.status == 408 => last = format!("{key}: {} {}", r.status, r.message()),
            Ok(r) => return Err(format!("{key}: {} {}", r.status, r.message())),
            Err(e @ (HttpError::Connect(_) | HttpError::Io(_) | HttpError::Timeout)) => last = format!("{key}: {e}"),
            Err(e) => return Err(format!("{key}: {e}")),
        }
    }
    Err(last)
}

async fn upload(cfg: &FlowConfig, path: &str, url: &str, call_id: &str, duration_ms: Option<u64>) -> Upload {
    let data = match tokio::fs::read(path).await {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Upload::Empty,
        Err(e) => return Upload::Failed { status: None, message: format!("{path}: {e}") },
    };
    if data.len() as u64 <= EMPTY_WAV_BYTES || duration_ms == Some(0) {
        let _ = tokio::fs::remove_file(path).await;
        return Upload::Empty;
    }
    if data.len() > MAX_MEDIA_BYTES {
        return Upload::Failed { status: Some(413), message: format!("{path}: {} bytes, more than callplane accepts", data.len()) };
    }
    let pq = match path_and_query(url) {
        Ok(p) => p,
        Err(e) => return Upload::Failed { status: Some(400), message: e },
    };
    let mut headers: Vec<(&str, String)> = Vec::new();
    if !call_id.is_empty() && call_id.len() <= 256 {
        headers.push(("X-Call-Id", call_id.to_string()));
    }
    if let Some(ms) = duration_ms {
        headers.push(("X-Duration-Seconds", format!("{}.{:03}", ms / 1000, ms % 1000)));
    }
    let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut http = HttpClient::new(cfg.endpoint.clone(), Some(&cfg.token), cfg.http_timeout.max(Duration::from_secs(30)));
    match http.send("PUT", &pq, &h, Some(("audio/wav", &data)), 64 * 1024).await {
        Ok(r) if (200..300).contains(&r.status) => {
            let _ = tokio::fs::remove_file(path).await;
            Upload::Done { bytes: data.len() as u64 }
        }
        Ok(r) => Upload::Failed { status: Some(r.status), message: r.message() },
        Err(e) => Upload::Failed { status: None, message: e.to_string() },
    }
}
