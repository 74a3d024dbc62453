//! One Durable Object per call (keyed by the SIP Call-ID): the call's trace and its flow
//! session. Storage: `trace` (the bounded timeline), `session` (the interpreter's Session),
//! `def` (the text of the pinned flow version, so steps never need D1 for it).
//! The alarm closes a session whose edge stopped stepping and releases its concurrency lease.

use super::{json_response, now_ms, read_json, set_alarm};
use crate::api::DialogEvent;
use crate::error::{ApiError, ApiResult};
use crate::flow::definition::{self, FlowDefinition};
use crate::flow::interpreter::{self, Disposition, Resolved, Session, TraceEntry};
use crate::flow::run::{resolve, SignedMedia};
use crate::flow::wire::{CommandResponse, FlowStart, FlowStep};
use crate::store::Store;
use crate::trace::{Entry, Trace};
use serde::Deserialize;
use std::cell::RefCell;
use worker::{durable_object, DurableObject, Env, Method, Request, Response, Result, State};

#[durable_object]
pub struct CallObject {
    state: State,
    env: Env,
    trace: RefCell<Option<Trace>>,
    /// The session and its parsed pinned definition, once loaded.
    flow: RefCell<Option<(Session, FlowDefinition)>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AppendCmd {
    call_id: String,
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartCmd {
    start: FlowStart,
    version: u32,
    text: String,
    origin: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StepCmd {
    step: FlowStep,
    origin: String,
    scope: Option<String>,
}

fn answer(r: ApiResult<CommandResponse>) -> Result<Response> {
    match r {
        Ok(resp) => json_response(&resp),
        Err(e) => {
            if e.status >= 500 {
                worker::console_error!("call object: {e}");
            }
            Ok(Response::ok(e.body())?.with_status(e.status))
        }
    }
}

impl CallObject {
    async fn load_trace(&self, call_id: &str) -> Result<()> {
        if self.trace.borrow().is_none() {
            let t: Trace = self.state.storage().get("trace").await?.unwrap_or_else(|| Trace::new(call_id));
            if self.trace.borrow().is_none() {
                *self.trace.borrow_mut() = Some(t);
            }
        }
        Ok(())
    }

    async fn append(&self, call_id: &str, entries: Vec<Entry>) -> Result<usize> {
        self.load_trace(call_id).await?;
        let snapshot = {
            let mut g = self.trace.borrow_mut();
            let t = g.as_mut().ok_or("trace not loaded")?;
            for e in entries {
                t.push(e);
            }
            t.clone()
        };
        self.state.storage().put("trace", &snapshot).await?;
        Ok(snapshot.entries.len())
    }

    /// Load the session and its pinned definition from storage (None: no flow on this call).
    async fn load_flow(&self) -> ApiResult<bool> {
        if self.flow.borrow().is_some() {
            return Ok(true);
        }
        let storage = self.state.storage();
        let session: Option<Session> = storage.get("session").await.map_err(ApiError::internal)?;
        let Some(session) = session else { return Ok(false) };
        let text: String = storage.get("def").await.map_err(ApiError::internal)?.ok_or_else(|| ApiError::internal("session without its definition"))?;
        let def = definition::parse(&text).map_err(|e| ApiError::internal(format!("pinned definition no longer parses: {}", definition::describe(&e))))?;
        if self.flow.borrow().is_none() {
            *self.flow.borrow_mut() = Some((session, def));
        }
        Ok(true)
    }

    fn store(&self, now: u64) -> Store {
        Store::new(self.env.clone(), now)
    }

    fn media(&self, origin: &str, account_id: &str, now: u64) -> ApiResult<SignedMedia> {
        Ok(SignedMedia { origin: origin.to_string(), account_id: account_id.to_string(), key: crate::handlers::media_signing_key(&self.env)?, now_s: now / 1000 })
    }

    /// Persist the session, re-arm the alarm, write its trace entries; release the lease when it ended.
    async fn after(&self, session: &Session, trace: &[TraceEntry], ended: Option<Disposition>, now: u64) -> ApiResult<()> {
        let storage = self.state.storage();
        storage.put("session", session).await.map_err(ApiError::internal)?;
        set_alarm(&storage, session.deadline_ms()).await.map_err(ApiError::internal)?;
        let mut entries: Vec<Entry> = trace.iter().map(|t| t.to_entry()).collect();
        for e in &mut entries {
            e.detail = with_account(std::mem::take(&mut e.detail), &session.account_id);
        }
        if let Some(d) = ended {
            let released = self.release(session, d, now).await?;
            entries.push(Entry {
                at_ms: now,
                kind: "disposition".into(),
                summary: format!("flow ended: {}{}", disposition_text(d), if released { "; concurrency slot released" } else { "" }),
                detail: serde_json::json!({ "accountId": session.account_id, "disposition": d }),
                latency_ms: None,
            });
        }
        if !entries.is_empty() {
            self.append(&session.call_id, entries).await.map_err(ApiError::internal)?;
        }
        Ok(())
    }

    /// The flow is over: free the call's concurrency slot (idempotent in the account object).
    async fn release(&self, session: &Session, d: Disposition, now: u64) -> ApiResult<bool> {
        let ev = DialogEvent {
            call_id: session.call_id.clone(),
            account_id: session.account_id.clone(),
            state: "terminated".into(),
            reason: if d == Disposition::Failed || d == Disposition::TimedOut { "failed".into() } else { "ended".into() },
            ..Default::default()
        };
        Ok(self.store(now).dialog(&ev).await?.released.is_some())
    }

    async fn start(&self, c: StartCmd) -> ApiResult<CommandResponse> {
        let now = now_ms();
        if self.load_flow().await? {
            let g = self.flow.borrow();
            let (session, _) = g.as_ref().ok_or_else(|| ApiError::internal("flow not loaded"))?;
            return session.replay_start(&c.start).map_err(ApiError::from);
        }
        let def = definition::parse(&c.text).map_err(|e| ApiError::internal(format!("stored flow does not parse: {}", definition::describe(&e))))?;
        let store = self.store(now);
        let media = self.media(&c.origin, &c.start.account_id, now)?;
        let mut resolved = Resolved::default();
        let (session, resp) = resolve(&store, &c.start.account_id, &mut resolved, &media, |env| interpreter::start(&c.start, c.version, &def, now, env)).await?;
        self.state.storage().put("def", &c.text).await.map_err(ApiError::internal)?;
        let trace = session.trace.clone();
        let ended = session.disposition();
        self.after(&session, &trace, ended, now).await?;
        *self.flow.borrow_mut() = Some((session, def));
        Ok(resp)
    }

    async fn step(&self, c: StepCmd) -> ApiResult<CommandResponse> {
        let now = now_ms();
        if !self.load_flow().await? {
            return Err(interpreter::unknown_call(&c.step.call_id));
        }
        let (mut session, def) = self.flow.borrow().clone().ok_or_else(|| ApiError::internal("flow not loaded"))?;
        if let Some(scope) = &c.scope {
            if scope != &session.account_id {
                return Err(ApiError::forbidden("credential is scoped to another account"));
            }
        }
        let store = self.store(now);
        let media = self.media(&c.origin, &session.account_id, now)?;
        let mut resolved = Resolved::default();
        let account_id = session.account_id.clone();
        let stepped = resolve(&store, &account_id, &mut resolved, &media, |env| {
            interpreter::step(&mut session, &def, c.step.seq, &c.step.outcome, c.step.data.as_ref(), now, env)
        })
        .await?;
        self.after(&session, &stepped.trace, stepped.ended, now).await?;
        *self.flow.borrow_mut() = Some((session, def));
        Ok(stepped.response)
    }
}

fn with_account(detail: serde_json::Value, account_id: &str) -> serde_json::Value {
    match detail {
        serde_json::Value::Object(mut m) => {
            m.entry("accountId").or_insert_with(|| serde_json::Value::from(account_id));
            serde_json::Value::Object(m)
        }
        serde_json::Value::Null => serde_json::json!({ "accountId": account_id }),
        other => serde_json::json!({ "accountId": account_id, "data": other }),
    }
}

fn disposition_text(d: Disposition) -> &'static str {
    match d {
        Disposition::Completed => "completed",
        Disposition::CallerHangup => "caller hung up",
        Disposition::Failed => "failed",
        Disposition::TimedOut => "timed out (the media node stopped stepping)",
    }
}

impl DurableObject for CallObject {
    fn new(state: State, env: Env) -> Self {
        Self { state, env, trace: RefCell::new(None), flow: RefCell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        match (req.method(), req.path().as_str()) {
            (Method::Post, "/trace") => {
                let c: AppendCmd = read_json(&mut req).await?;
                let n = self.append(&c.call_id, c.entries).await?;
                json_response(&serde_json::json!({ "entries": n }))
            }
            (Method::Get, "/trace") => {
                let stored: Option<Trace> = self.state.storage().get("trace").await?;
                match stored {
                    Some(t) => json_response(&t),
                    None => Response::error("no trace for this call", 404),
                }
            }
            (Method::Post, "/flow/start") => {
                let c: StartCmd = read_json(&mut req).await?;
                answer(self.start(c).await)
            }
            (Method::Post, "/flow/step") => {
                let c: StepCmd = read_json(&mut req).await?;
                answer(self.step(c).await)
            }
            _ => Response::error("no such call-object operation", 404),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        let now = now_ms();
        let loaded = self.load_flow().await.map_err(|e| worker::Error::RustError(e.to_string()))?;
        if !loaded {
            return Response::ok("no session");
        }
        let (mut session, def) = self.flow.borrow().clone().ok_or("flow not loaded")?;
        let before = session.trace.len();
        match interpreter::expire(&mut session, now) {
            Some(d) => {
                let new_trace: Vec<TraceEntry> = session.trace.iter().skip(before.min(session.trace.len())).cloned().collect();
                self.after(&session, &new_trace, Some(d), now).await.map_err(|e| worker::Error::RustError(e.to_string()))?;
            }
            None => set_alarm(&self.state.storage(), session.deadline_ms()).await?,
        }
        *self.flow.borrow_mut() = Some((session, def));
        Response::ok("ok")
    }
}
