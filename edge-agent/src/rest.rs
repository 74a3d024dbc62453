//! Call-control REST API, compatible with fs-api (same paths, bodies and envelopes):
//! success `{"status":"success","message"|"data"}`, errors `{"status":"error","message"}`.
//!
//! Every endpoint maps to one exact ESL command built by [`crate::esl::command`] from
//! validated input. Status mapping of FreeSWITCH's answers (texts from the transcripts):
//!
//! | FreeSWITCH says | HTTP |
//! |---|---|
//! | `-USAGE: ...` | 400 |
//! | `-ERR No such channel!`, `-ERR Cannot locate session!`, `-ERR Invalid uuid`, `-ERR invalid session id`; `-ERROR` from `uuid_answer`; `uuid_exists` → `false` before `uuid_hold` | 404 |
//! | any other `-ERR ...` | 502 |
//! | originate job `-ERR <CAUSE>` (the call was not placed: USER_BUSY, NO_ANSWER, ...) | 409 (as fs-api) |
//! | event socket down, or lost before the reply | 503 |
//! | no BACKGROUND_JOB in time | 502 |
//! | a reply this API cannot interpret | 502 |
//! | bad input (UUID, JSON, field values) | 400; missing/invalid bearer token 401 |

use crate::client::{ClientError, EslClient};
use crate::esl::command::{check_word, CommandError};
use crate::esl::{ApiCommand, Reply, Uuid};
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Generator of UUIDs (Job-UUIDs, origination UUIDs); injectable so tests can assert
/// exact command bytes.
pub type IdGen = Arc<dyn Fn() -> Uuid + Send + Sync>;

#[derive(Clone)]
pub struct AppState {
    pub esl: EslClient,
    /// Bearer token required on `/v1/*` when set.
    pub api_token: Option<Arc<str>>,
    pub ids: IdGen,
    /// The relay's counters, shown by `/health` when the relay runs.
    pub relay_stats: Option<StatsFn>,
}

pub type StatsFn = Arc<dyn Fn() -> Value + Send + Sync>;

impl AppState {
    pub fn new(esl: EslClient, api_token: Option<String>) -> AppState {
        AppState { esl, api_token: api_token.map(Arc::from), ids: Arc::new(Uuid::new_v4), relay_stats: None }
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/v1/status", get(status))
        .route("/v1/calls/originate", post(originate))
        .route("/v1/calls/bridge", post(bridge))
        .route("/v1/calls/{uuid}/hangup", post(hangup))
        .route("/v1/calls/{uuid}/transfer", post(transfer))
        .route("/v1/calls/{uuid}/answer", post(answer))
        .route("/v1/calls/{uuid}/hold", post(hold))
        .route("/v1/calls/{uuid}/record", post(record))
        .route("/v1/calls/{uuid}/dtmf", post(dtmf))
        .route("/v1/calls/{uuid}/park", post(park))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .layer(middleware::from_fn(request_id))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .with_state(state)
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
    }
    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"status": "error", "message": self.message}))).into_response()
    }
}

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> ApiError {
        let status = match e {
            ClientError::NotConnected | ClientError::ConnectionLost | ClientError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
            ClientError::JobRefused(_) | ClientError::JobTimeout => StatusCode::BAD_GATEWAY,
        };
        ApiError::new(status, e.to_string())
    }
}

fn success(message: String) -> Response {
    Json(json!({"status": "success", "message": message})).into_response()
}

fn input(e: CommandError) -> ApiError {
    ApiError::bad_request(e.to_string())
}

fn call_uuid(s: &str) -> Result<Uuid, ApiError> {
    Uuid::parse(s).map_err(|_| ApiError::bad_request(format!("invalid call UUID {:?}", truncate(s))))
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Request bodies: JSON object, or empty when every field is optional.
fn body<T: for<'de> Deserialize<'de> + Default>(b: &Bytes, required: bool) -> Result<T, ApiError> {
    if b.iter().all(u8::is_ascii_whitespace) {
        return if required { Err(ApiError::bad_request("Invalid request body")) } else { Ok(T::default()) };
    }
    serde_json::from_slice(b).map_err(|e| ApiError::bad_request(format!("Invalid request body: {e}")))
}

const NOT_FOUND: &[&str] = &["-ERR No such channel!", "-ERR Cannot locate session!", "-ERR Invalid uuid", "-ERR invalid session id"];

/// Interpret an `api` answer: `Ok(text)` for success, the mapped error otherwise.
pub fn check_reply(reply: &Reply) -> Result<String, ApiError> {
    let text = reply.text().trim_end();
    if text.starts_with("-USAGE") {
        return Err(ApiError::bad_request(format!("FreeSWITCH rejected the arguments: {}", text.lines().next().unwrap_or(text))));
    }
    if NOT_FOUND.iter().any(|m| text.starts_with(m)) {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("Call not found ({text})")));
    }
    if text.starts_with('-') || matches!(reply, Reply::Command(_)) && !text.starts_with("+OK") {
        return Err(ApiError::new(StatusCode::BAD_GATEWAY, format!("FreeSWITCH error: {text}")));
    }
    Ok(text.to_string())
}

async fn run(st: &AppState, cmd: ApiCommand) -> Result<String, ApiError> {
    tracing::info!(command = %cmd, "ESL api");
    let reply = st.esl.api(cmd).await?;
    check_reply(&reply)
}

// ---- middleware ----

async fn request_id(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c)))
        .map(str::to_string)
        .unwrap_or_else(|| Uuid::new_v4().to_string());
    req.headers_mut().insert("x-request-id", HeaderValue::from_str(&id).expect("validated"));
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let started = Instant::now();
    let span = tracing::info_span!("request", request_id = %id, %method, %path);
    let mut resp = tracing::Instrument::instrument(next.run(req), span.clone()).await;
    let _g = span.enter();
    tracing::info!(status = resp.status().as_u16(), duration_ms = started.elapsed().as_millis() as u64, "request done");
    resp.headers_mut().insert("x-request-id", HeaderValue::from_str(&id).expect("validated"));
    resp
}

async fn auth(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(token) = &st.api_token {
        if req.uri().path().starts_with("/v1/") {
            let given = req.headers().get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
            if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
                return ApiError::new(StatusCode::UNAUTHORIZED, "missing or invalid bearer token").into_response();
            }
        }
    }
    next.run(req).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ---- handlers ----

async fn health(State(st): State<AppState>) -> Response {
    match st.esl.api(ApiCommand::new("uptime").expect("static")).await {
        Ok(Reply::Api(body)) => {
            let up: Option<u64> = body.trim().parse().ok();
            let mut v = json!({"status": "success", "message": "healthy", "esl": "connected", "uptime_s": up});
            if let Some(f) = &st.relay_stats {
                v["relay"] = f();
            }
            Json(v).into_response()
        }
        Ok(Reply::Command(t)) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("ESL answered {t}")).into_response(),
        Err(e) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

#[derive(Deserialize, Default)]
struct HangupReq {
    #[serde(default)]
    cause: Option<String>,
}

async fn hangup(State(st): State<AppState>, Path(uuid): Path<String>, b: Bytes) -> Result<Response, ApiError> {
    let u = call_uuid(&uuid)?;
    let req: HangupReq = body(&b, false)?;
    let cause = req.cause.filter(|c| !c.is_empty()).unwrap_or_else(|| "NORMAL_CLEARING".into());
    if cause.len() > 64 || !cause.bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_') {
        return Err(ApiError::bad_request("cause must be a FreeSWITCH hangup cause such as NORMAL_CLEARING"));
    }
    run(&st, ApiCommand::new("uuid_kill").expect("static").uuid(&u).arg(&cause, "cause").map_err(input)?).await?;
    Ok(success(format!("Call {u} hung up with cause {cause}")))
}

#[derive(Deserialize, Default)]
struct TransferReq {
    #[serde(default)]
    destination: String,
    #[serde(default)]
    dialplan: Option<String>,
    #[serde(default)]
    context: Option<String>,
    #[serde(default)]
    leg: Option<String>,
}

fn dialplan_word(s: &str, what: &'static str) -> Result<(), ApiError> {
    check_word(s, what).map_err(input)?;
    if s.len() > 128 || !s.bytes().all(|c| c.is_ascii_alphanumeric() || b"_.-+*#@:".contains(&c)) {
        return Err(ApiError::bad_request(format!("{what} has characters other than letters, digits and _.-+*#@:")));
    }
    Ok(())
}

async fn transfer(State(st): State<AppState>, Path(uuid): Path<String>, b: Bytes) -> Result<Response, ApiError> {
    let u = call_uuid(&uuid)?;
    let req: TransferReq = body(&b, true)?;
    if req.destination.is_empty() {
        return Err(ApiError::bad_request("destination is required"));
    }
    dialplan_word(&req.destination, "destination")?;
    let mut cmd = ApiCommand::new("uuid_transfer").expect("static").uuid(&u);
    let leg = req.leg.as_deref().unwrap_or("aleg").to_ascii_lowercase();
    let leg_name = match leg.as_str() {
        "aleg" => "A-leg",
        "bleg" => {
            cmd = cmd.arg("-bleg", "leg").map_err(input)?;
            "B-leg"
        }
        "both" => {
            cmd = cmd.arg("-both", "leg").map_err(input)?;
            "both legs"
        }
        _ => return Err(ApiError::bad_request("leg must be 'aleg', 'bleg', or 'both'")),
    };
    cmd = cmd.arg(&req.destination, "destination").map_err(input)?;
    let context = req.context.filter(|c| !c.is_empty());
    let dialplan = req.dialplan.filter(|d| !d.is_empty()).or_else(|| context.as_ref().map(|_| "XML".to_string()));
    if let Some(d) = &dialplan {
        dialplan_word(d, "dialplan")?;
        cmd = cmd.arg(d, "dialplan").map_err(input)?;
    }
    if let Some(c) = &context {
        dialplan_word(c, "context")?;
        cmd = cmd.arg(c, "context").map_err(input)?;
    }
    run(&st, cmd).await?;
    let mut msg = format!("Call {u} ({leg_name}) transferred to {}", req.destination);
    if let Some(d) = dialplan {
        msg.push_str(&format!(" dialplan {d}"));
    }
    if let Some(c) = context {
        msg.push_str(&format!(" context {c}"));
    }
    Ok(success(msg))
}

async fn answer(State(st): State<AppState>, Path(uuid): Path<String>) -> Result<Response, ApiError> {
    let u = call_uuid(&uuid)?;
    let reply = st.esl.api(ApiCommand::new("uuid_answer").expect("static").uuid(&u)).await?;
    // uuid_answer answers a bare `-ERROR` when it cannot locate the session (transcript 03).
    if reply.text().trim_end() == "-ERROR" {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("Call not found ({u})")));
    }
    check_reply(&reply)?;
    Ok(success(format!("Call {u} answered")))
}

#[derive(Deserialize, Default)]
struct ActionReq {
    #[serde(default)]
    action: String,
    #[serde(default)]
    filename: Option<String>,
}

async fn hold(State(st): State<AppState>, Path(uuid): Path<String>, b: Bytes) -> Result<Response, ApiError> {
    let u = call_uuid(&uuid)?;
    let req: ActionReq = body(&b, true)?;
    if req.action != "hold" && req.action != "unhold" {
        return Err(ApiError::bad_request("action must be 'hold' or 'unhold'"));
    }
    // uuid_hold answers `+OK Success` for a UUID that does not exist (transcript 07),
    // so existence is checked first.
    let exists = run(&st, ApiCommand::new("uuid_exists").expect("static").uuid(&u)).await?;
    if exists.trim() != "true" {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("Call not found ({u})")));
    }
    let mut cmd = ApiCommand::new("uuid_hold").expect("static");
    if req.action == "unhold" {
        cmd = cmd.arg("off", "action").map_err(input)?;
    }
    run(&st, cmd.uuid(&u)).await?;
    Ok(success(format!("Call {u} {}", req.action)))
}

fn check_filename(f: &str) -> Result<(), ApiError> {
    check_word(f, "filename").map_err(input)?;
    let ok_chars = f.bytes().all(|c| c.is_ascii_alphanumeric() || b"_./-".contains(&c));
    if !f.starts_with('/') || f.len() > 255 || !ok_chars || f.split('/').any(|p| p == "..") || f.ends_with('/') {
        return Err(ApiError::bad_request(
            "Invalid filename: an absolute path of letters, digits, '_', '.', '-' and '/' without '..'",
        ));
    }
    Ok(())
}

async fn record(State(st): State<AppState>, Path(uuid): Path<String>, b: Bytes) -> Result<Response, ApiError> {
    let u = call_uuid(&uuid)?;
    let req: ActionReq = body(&b, true)?;
    let cmd = ApiCommand::new("uuid_record").expect("static").uuid(&u);
    let cmd = match req.action.as_str() {
        "start" => {
            let Some(f) = req.filename.as_deref().filter(|f| !f.is_empty()) else {
                return Err(ApiError::bad_request("filename is required for start action"));
            };
            check_filename(f)?;
            cmd.arg("start", "action").and_then(|c| c.arg(f, "filename")).map_err(input)?
        }
        "stop" => cmd.arg("stop", "action").and_then(|c| c.arg("all", "path")).map_err(input)?,
        _ => return Err(ApiError::bad_request("action must be 'start' or 'stop'")),
    };
    run(&st, cmd).await?;
    Ok(success(format!("Recording {} for call {u}", req.action)))
}

#[derive(Deserialize, Default)]
struct DtmfReq {
    #[serde(default)]
    digits: String,
    #[serde(default)]
    duration: Option<u32>,
}

async fn dtmf(State(st): State<AppState>, Path(uuid): Path<String>, b: Bytes) -> Result<Response, ApiError> {
    let u = call_uuid(&uuid)?;
    let req: DtmfReq = body(&b, true)?;
    if req.digits.is_empty() {
        return Err(ApiError::bad_request("digits are required"));
    }
    if req.digits.len() > 64 || !req.digits.bytes().all(|c| c.is_ascii_digit() || b"*#ABCDabcdwW".contains(&c)) {
        return Err(ApiError::bad_request("digits may contain 0-9, *, #, A-D and w/W pauses (at most 64)"));
    }
    let duration = match req.duration {
        None | Some(0) => 100,
        Some(d) if d <= 10_000 => d,
        Some(_) => return Err(ApiError::bad_request("duration must be at most 10000 ms")),
    };
    let arg = format!("{}@{duration}", req.digits);
    run(&st, ApiCommand::new("uuid_send_dtmf").expect("static").uuid(&u).arg(&arg, "digits").map_err(input)?).await?;
    Ok(success(format!("DTMF {} sent to call {u}", req.digits)))
}

async fn park(State(st): State<AppState>, Path(uuid): Path<String>) -> Result<Response, ApiError> {
    let u = call_uuid(&uuid)?;
    run(&st, ApiCommand::new("uuid_park").expect("static").uuid(&u)).await?;
    Ok(success(format!("Call {u} parked")))
}

#[derive(Deserialize, Default)]
struct BridgeReq {
    #[serde(default)]
    uuid_a: String,
    #[serde(default)]
    uuid_b: String,
}

async fn bridge(State(st): State<AppState>, b: Bytes) -> Result<Response, ApiError> {
    let req: BridgeReq = body(&b, true)?;
    if req.uuid_a.is_empty() || req.uuid_b.is_empty() {
        return Err(ApiError::bad_request("uuid_a and uuid_b are required"));
    }
    let a = Uuid::parse(&req.uuid_a).map_err(|e| ApiError::bad_request(format!("uuid_a: {e}")))?;
    let bb = Uuid::parse(&req.uuid_b).map_err(|e| ApiError::bad_request(format!("uuid_b: {e}")))?;
    if a == bb {
        return Err(ApiError::bad_request("uuid_a and uuid_b must differ"));
    }
    run(&st, ApiCommand::new("uuid_bridge").expect("static").uuid(&a).uuid(&bb)).await?;
    Ok(success(format!("Calls {a} and {bb} bridged")))
}

#[derive(Deserialize, Default)]
struct OriginateReq {
    #[serde(default)]
    aleg: String,
    #[serde(default)]
    bleg: Option<String>,
    #[serde(default)]
    dialplan: Option<String>,
    #[serde(default)]
    context: Option<String>,
    #[serde(default)]
    caller_id_name: Option<String>,
    #[serde(default)]
    caller_id_number: Option<String>,
    #[serde(default)]
    timeout_sec: Option<u32>,
    #[serde(default)]
    channel_variables: Option<serde_json::Map<String, Value>>,
}

/// Longest ring time accepted (FreeSWITCH's own default is 60 s).
pub const MAX_ORIGINATE_TIMEOUT_SEC: u32 = 300;
/// How long after the ring timeout a BACKGROUND_JOB may still arrive.
pub const ORIGINATE_JOB_MARGIN: Duration = Duration::from_secs(30);

/// Channel variables that would run commands or applications, or take over what
/// this endpoint controls, are refused.
fn forbidden_var(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    ["api", "exec", "hook", "system", "origination_uuid", "originate_timeout", "origination_caller_id"]
        .iter()
        .any(|p| k.contains(p))
}

fn var_value(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The originate line (without the `bgapi`): `originate {vars}<aleg> <bleg> <dialplan> <context> undef undef <timeout>`.
/// Caller ID goes in channel variables (like fs-api), so its positional slots are `undef`.
fn originate_command(req: &OriginateReq, call: &Uuid) -> Result<(ApiCommand, u32), ApiError> {
    if req.aleg.is_empty() {
        return Err(ApiError::bad_request("aleg is required"));
    }
    check_word(&req.aleg, "aleg").map_err(input)?;
    if req.aleg.starts_with(['{', '[', '<']) || req.aleg.contains(['{', '}', '\'', '"', '\\']) {
        return Err(ApiError::bad_request("aleg must be a dial string without variables (use channel_variables)"));
    }
    let bleg = req.bleg.clone().filter(|b| !b.is_empty()).unwrap_or_else(|| "&park()".into());
    check_word(&bleg, "bleg").map_err(input)?;
    if bleg.contains(['{', '}', '\'', '"', '\\']) {
        return Err(ApiError::bad_request("bleg must be an extension or &app(args) without spaces or quotes"));
    }
    let timeout = match req.timeout_sec {
        None | Some(0) => 60,
        Some(t) if t <= MAX_ORIGINATE_TIMEOUT_SEC => t,
        Some(_) => return Err(ApiError::bad_request(format!("timeout_sec must be at most {MAX_ORIGINATE_TIMEOUT_SEC}"))),
    };
    let mut vars = vec![format!("origination_uuid={call}")];
    if let Some(m) = &req.channel_variables {
        let mut keys: Vec<&String> = m.keys().collect();
        keys.sort();
        for k in keys {
            if k.is_empty() || k.len() > 64 || !k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
                return Err(ApiError::bad_request(format!("channel variable name {:?} is invalid", truncate(k))));
            }
            if forbidden_var(k) {
                return Err(ApiError::bad_request(format!("channel variable {k} is not allowed")));
            }
            let v = var_value(&m[k]).ok_or_else(|| ApiError::bad_request(format!("channel variable {k} must be a string, number or boolean")))?;
            if v.len() > 256 || v.chars().any(|c| c.is_control() || c.is_whitespace() || ",{}[]'\"\\^".contains(c)) {
                return Err(ApiError::bad_request(format!("channel variable {k} has a value with spaces, quotes, commas or braces")));
            }
            vars.push(format!("{k}={v}"));
        }
    }
    if let Some(n) = req.caller_id_number.as_deref().filter(|n| !n.is_empty()) {
        if n.len() > 32 || !n.bytes().all(|c| c.is_ascii_digit() || c == b'+' || c == b'*' || c == b'#') {
            return Err(ApiError::bad_request("caller_id_number may contain digits, +, * and # only"));
        }
        vars.push(format!("origination_caller_id_number={n}"));
    }
    if let Some(n) = req.caller_id_name.as_deref().filter(|n| !n.is_empty()) {
        if n.chars().count() > 64 || n.chars().any(|c| c.is_control() || ",{}[]'\"\\^".contains(c)) {
            return Err(ApiError::bad_request("caller_id_name must not contain quotes, commas, braces or control characters"));
        }
        if n.contains(char::is_whitespace) && n.contains(|c: char| c != ' ' && c.is_whitespace()) {
            return Err(ApiError::bad_request("caller_id_name may only contain plain spaces"));
        }
        vars.push(format!("origination_caller_id_name='{n}'"));
    }
    let dialplan = req.dialplan.clone().filter(|d| !d.is_empty()).unwrap_or_else(|| "undef".into());
    let context = req.context.clone().filter(|c| !c.is_empty()).unwrap_or_else(|| "undef".into());
    dialplan_word(&dialplan, "dialplan")?;
    dialplan_word(&context, "context")?;
    // The caller ID name is the only value allowed to hold spaces, inside single quotes
    // within the {...} block; FreeSWITCH's argument splitter keeps quoted text together.
    let first = format!("{{{}}}{}", vars.join(","), req.aleg);
    crate::esl::command::check_text(&first, "aleg").map_err(input)?;
    let cmd = ApiCommand::new("originate").expect("static");
    let cmd = cmd.arg_quoted_block(&first).map_err(input)?;
    let cmd = cmd
        .arg(&bleg, "bleg")
        .and_then(|c| c.arg(&dialplan, "dialplan"))
        .and_then(|c| c.arg(&context, "context"))
        .and_then(|c| c.arg("undef", "cid_name"))
        .and_then(|c| c.arg("undef", "cid_num"))
        .and_then(|c| c.arg(&timeout.to_string(), "timeout_sec"))
        .map_err(input)?;
    Ok((cmd, timeout))
}

async fn originate(State(st): State<AppState>, b: Bytes) -> Result<Response, ApiError> {
    let req: OriginateReq = body(&b, true)?;
    let call = (st.ids)();
    let (cmd, timeout) = originate_command(&req, &call)?;
    let job = (st.ids)();
    tracing::info!(command = %cmd, job_uuid = %job, "ESL bgapi");
    let out = st.esl.bgapi(cmd, job.clone(), Duration::from_secs(timeout as u64) + ORIGINATE_JOB_MARGIN).await?;
    let text = out.trim_end();
    if let Some(rest) = text.strip_prefix("+OK") {
        let uuid = rest.trim();
        return Ok(Json(json!({"status": "success", "data": {"response": uuid, "job_uuid": job.as_str()}})).into_response());
    }
    if text.starts_with("-USAGE") {
        return Err(ApiError::bad_request(format!("Invalid originate arguments: {text}")));
    }
    if let Some(cause) = text.strip_prefix("-ERR") {
        return Err(ApiError::new(StatusCode::CONFLICT, format!("Call not placed: {}", cause.trim())));
    }
    Err(ApiError::new(StatusCode::BAD_GATEWAY, format!("Failed to originate call: unexpected reply {text:?}")))
}

async fn status(State(st): State<AppState>) -> Result<Response, ApiError> {
    let text = run(&st, ApiCommand::new("status").expect("static")).await?;
    let data = parse_status(&text)
        .ok_or_else(|| ApiError::new(StatusCode::BAD_GATEWAY, "could not interpret FreeSWITCH status output"))?;
    Ok(Json(json!({"status": "success", "data": data})).into_response())
}

/// `api status` text → the structure of FreeSWITCH's `json status` (what fs-api returns).
pub fn parse_status(text: &str) -> Option<Value> {
    let lines: Vec<&str> = text.lines().collect();
    let up = lines.iter().find(|l| l.starts_with("UP "))?;
    let mut uptime = serde_json::Map::new();
    for part in up[3..].split(',') {
        let mut it = part.split_whitespace();
        let n: u64 = it.next()?.parse().ok()?;
        let unit = it.next()?;
        uptime.insert(unit.to_string(), json!(n));
    }
    let ready_line = lines.iter().find(|l| l.starts_with("FreeSWITCH"))?;
    let version = ready_line
        .split_once("(Version ")
        .and_then(|(_, r)| r.split_once(')'))
        .map(|(v, _)| v.split_whitespace().collect::<Vec<_>>().join(" "))?;
    let system_status = if ready_line.trim_end().ends_with("is ready") { "ready" } else { "not ready" };
    let nums = |l: &str| -> Vec<f64> {
        l.split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|s| !s.is_empty() && *s != ".")
            .filter_map(|s| s.parse().ok())
            .collect()
    };
    let since = nums(lines.iter().find(|l| l.contains("since startup"))?);
    let count = nums(lines.iter().find(|l| l.contains("session(s) - peak"))?);
    let rate = nums(lines.iter().find(|l| l.contains("per Sec"))?);
    let max = nums(lines.iter().find(|l| l.ends_with("session(s) max"))?);
    let cpu = nums(lines.iter().find(|l| l.starts_with("min idle cpu"))?);
    let stack = nums(lines.iter().find(|l| l.starts_with("Current Stack Size"))?);
    let int = |v: &Vec<f64>, i: usize| v.get(i).map(|x| *x as u64);
    // "0 session(s) - peak 4, last 5min 2" → [0, 4, 5, 2]; the 5 of "5min" is skipped.
    Some(json!({
        "systemStatus": system_status,
        "uptime": uptime,
        "version": version,
        "sessions": {
            "count": {"total": int(&since, 0)?, "active": int(&count, 0)?, "peak": int(&count, 1)?, "peak5Min": int(&count, 3)?, "limit": int(&max, 0)?},
            "rate": {"current": int(&rate, 0)?, "max": int(&rate, 1)?, "peak": int(&rate, 2)?, "peak5Min": int(&rate, 4)?},
        },
        "idleCPU": {"used": cpu.first()?, "allowed": cpu.get(1)?},
        "stackSizeKB": {"current": int(&stack, 0)?, "max": int(&stack, 1)?},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "UP 0 years, 0 days, 0 hours, 5 minutes, 26 seconds, 14 milliseconds, 207 microseconds\nFreeSWITCH (Version 1.10.12-release  64bit) is ready\n38 session(s) since startup\n0 session(s) - peak 4, last 5min 2 \n0 session(s) per Sec out of max 30, peak 4, last 5min 2 \n1000 session(s) max\nmin idle cpu 0.00/97.77\nCurrent Stack Size/Max 240K/8192K\n";

    #[test]
    fn status_text_is_structured() {
        let v = parse_status(STATUS).unwrap();
        assert_eq!(v["systemStatus"], "ready");
        assert_eq!(v["uptime"]["minutes"], 5);
        assert_eq!(v["uptime"]["microseconds"], 207);
        assert_eq!(v["version"], "1.10.12-release 64bit");
        assert_eq!(v["sessions"]["count"], json!({"total": 38, "active": 0, "peak": 4, "peak5Min": 2, "limit": 1000}));
        assert_eq!(v["sessions"]["rate"], json!({"current": 0, "max": 30, "peak": 4, "peak5Min": 2}));
        assert_eq!(v["idleCPU"], json!({"used": 0.0, "allowed": 97.77}));
        assert_eq!(v["stackSizeKB"], json!({"current": 240, "max": 8192}));
        assert!(parse_status("garbage").is_none());
    }

    #[test]
    fn reply_mapping() {
        let s = |t: &str| check_reply(&Reply::Api(t.into())).map_err(|e| e.status.as_u16());
        assert_eq!(s("+OK\n"), Ok("+OK".into()));
        assert_eq!(s("-ERR No such channel!\n"), Err(404));
        assert_eq!(s("-ERR Cannot locate session!\n"), Err(404));
        assert_eq!(s("-ERR Invalid uuid\n"), Err(404));
        assert_eq!(s("-USAGE: <uuid> [cause]\n"), Err(400));
        assert_eq!(s("-ERR Operation failed\n"), Err(502));
        assert_eq!(s("-ERR Cannot stop record session!\n"), Err(502));
        assert_eq!(check_reply(&Reply::Command("-ERR command not found".into())).unwrap_err().status, 502);
    }

    fn oreq(v: Value) -> OriginateReq {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn originate_line() {
        let call = Uuid::parse("ebff9a6f-7ccc-43ea-8a29-b648e8d5653e").unwrap();
        let (c, t) = originate_command(
            &oreq(json!({"aleg": "loopback/7000/default", "caller_id_name": "Front Desk", "caller_id_number": "+15551234",
                         "timeout_sec": 20, "channel_variables": {"b_var": 1, "a_var": "x"}})),
            &call,
        )
        .unwrap();
        assert_eq!(t, 20);
        assert_eq!(
            c.as_str(),
            "originate {origination_uuid=ebff9a6f-7ccc-43ea-8a29-b648e8d5653e,a_var=x,b_var=1,origination_caller_id_number=+15551234,origination_caller_id_name='Front Desk'}loopback/7000/default &park() undef undef undef undef 20"
        );
        for bad in [
            json!({}),
            json!({"aleg": "user/1000 &echo()"}),
            json!({"aleg": "{x=1}user/1000"}),
            json!({"aleg": "user/1000", "bleg": "&bridge(user/1001)\napi system"}),
            json!({"aleg": "user/1000", "timeout_sec": 301}),
            json!({"aleg": "user/1000", "channel_variables": {"api_on_answer": "system reboot"}}),
            json!({"aleg": "user/1000", "channel_variables": {"execute_on_answer": "x"}}),
            json!({"aleg": "user/1000", "channel_variables": {"x": "a,b"}}),
            json!({"aleg": "user/1000", "channel_variables": {"x": "}a"}}),
            json!({"aleg": "user/1000", "channel_variables": {"bad key": "a"}}),
            json!({"aleg": "user/1000", "channel_variables": {"x": {"nested": 1}}}),
            json!({"aleg": "user/1000", "caller_id_name": "a'b"}),
            json!({"aleg": "user/1000", "caller_id_name": "a\tb"}),
            json!({"aleg": "user/1000", "caller_id_number": "12 34"}),
            json!({"aleg": "user/1000", "context": "de fault"}),
        ] {
            assert!(originate_command(&oreq(bad.clone()), &call).is_err(), "{bad}");
        }
    }

    #[test]
    fn filenames() {
        assert!(check_filename("/rec/x.wav").is_ok());
        for bad in ["rec/x.wav", "/rec/../etc/passwd", "/rec/a b.wav", "/rec/x.wav\n", "/rec/$(x).wav", "/rec/"] {
            assert!(check_filename(bad).is_err(), "{bad}");
        }
    }
}
