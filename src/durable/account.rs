//! One Durable Object per account: concurrency leases, registrations, nonce counts, and the
//! ACD (agents, queues, waiting callers, offers: `crate::acd::Acd`, docs/acd.md).
//! Storage keys: `l:<call-id>` lease, `r:<aor>|<contact>` registration, `n:<nonce>` nonce count,
//! `counters`, `last_reset`, and the ACD's records under `acd/` (one per agent, queue, caller,
//! offer, departed caller, plus `acd/meta`; stored as JSON text).

use super::{json_response, now_ms, read_json, set_alarm};
use crate::acd::{Acd, AcdError, AgentEvent, Change, EnqueueRequest, Membership, Offer, QueueConfig, RosterUser, KEY_PREFIX};
use crate::api::{DialogEvent, RegisterEvent};
use crate::cac::lease::{Counters, Lease, TakeOutcome};
use crate::presence::{AccountState, LeaseTimes, NonceUse, Registration, ResetRecord};
use crate::routing::decide::Admission;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use worker::{durable_object, js_sys, wasm_bindgen::JsCast, DurableObject, Env, Method, Request, Response, Result, State};

#[durable_object]
pub struct AccountObject {
    state: State,
    env: Env,
    live: RefCell<Option<Live>>,
}

/// The loaded state: the SIP-side account state and the ACD.
struct Live {
    st: AccountState,
    acd: Acd,
    /// `readAtMs` of the last queue configuration applied (older reads are ignored).
    queues_read_at_ms: u64,
}

/// The account's queue configuration as the Worker read it from D1.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueSync {
    pub read_at_ms: u64,
    pub queues: Vec<QueueConfig>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcdCmd {
    #[serde(default)]
    pub sync: Option<QueueSync>,
    #[serde(default)]
    pub user_id: String,
    #[serde(default)]
    pub event: Option<AgentEvent>,
    #[serde(default)]
    pub memberships: Vec<Membership>,
    #[serde(default)]
    pub roster: Vec<RosterUser>,
    #[serde(default)]
    pub enqueue: Option<EnqueueRequest>,
    #[serde(default)]
    pub call_id: String,
    #[serde(default)]
    pub lease_id: String,
    #[serde(default)]
    pub epoch: u64,
    #[serde(default)]
    pub agent_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmitCmd {
    pub call_id: String,
    pub direction: String,
    pub from: String,
    pub to: String,
    pub limit: u32,
    pub take: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NonceCmd {
    pub nonce: String,
    pub nc: u32,
    pub forget_after_ms: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResetCmd {
    pub actor: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileCmd {
    #[serde(default)]
    pub node: Option<String>,
    pub live_call_ids: Vec<String>,
    pub grace_ms: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CacView {
    pub active: usize,
    pub calls: Vec<Lease>,
    pub counters: Counters,
    pub last_reset: Option<ResetRecord>,
    pub registrations: Vec<Registration>,
}

/// Storage changes to write after a mutation.
#[derive(Default)]
struct Changes {
    put_leases: Vec<Lease>,
    del: Vec<String>,
    put_regs: Vec<(String, Registration)>,
    put_nonces: Vec<(String, NonceUse)>,
    counters: bool,
    reset: bool,
    /// Run the ACD's dispatch after the operation (something it depends on may have changed).
    dispatch: bool,
}

impl AccountObject {
    fn times(&self) -> LeaseTimes {
        let var = |k: &str| super::env_u64(&self.env, k);
        let d = LeaseTimes::default();
        LeaseTimes {
            ring_ttl_ms: var("LEASE_RING_TTL_SECONDS").map_or(d.ring_ttl_ms, |s| s * 1000),
            call_ttl_ms: var("LEASE_CALL_TTL_SECONDS").map_or(d.call_ttl_ms, |s| s * 1000),
        }
    }

    async fn load(&self) -> Result<()> {
        if self.live.borrow().is_some() {
            return Ok(());
        }
        let storage = self.state.storage();
        let map = storage.list().await?;
        let mut st = AccountState::default();
        let mut acd_records: Vec<(String, serde_json::Value)> = Vec::new();
        let entries = js_sys::try_iter(&map)?.ok_or("storage list is not iterable")?;
        for entry in entries {
            let pair: js_sys::Array = entry?.unchecked_into();
            let key = pair.get(0).as_string().unwrap_or_default();
            let value = pair.get(1);
            if key.starts_with(KEY_PREFIX) {
                let v: serde_json::Value = match value.as_string() {
                    Some(text) => serde_json::from_str(&text).map_err(|e| worker::Error::RustError(format!("stored {key}: {e}")))?,
                    None => serde_wasm(value)?,
                };
                acd_records.push((key, v));
            } else if let Some(id) = key.strip_prefix("l:") {
                let l: Lease = serde_wasm(value)?;
                st.leases.leases.insert(id.to_string(), l);
            } else if let Some(k) = key.strip_prefix("r:") {
                st.registrations.insert(k.to_string(), serde_wasm(value)?);
            } else if let Some(k) = key.strip_prefix("n:") {
                st.nonces.insert(k.to_string(), serde_wasm(value)?);
            } else if key == "counters" {
                st.leases.counters = serde_wasm(value)?;
            } else if key == "last_reset" {
                st.last_reset = serde_wasm(value)?;
            }
        }
        let fresh = acd_records.is_empty();
        let mut acd = if fresh { Acd::new(random_u64()) } else { Acd::from_records(acd_records).map_err(worker::Error::RustError)? };
        if !fresh {
            acd.reseed(random_u64());
        }
        if !acd.repairs().is_empty() {
            worker::console_warn!("ACD records repaired on load: {:?}", acd.repairs());
        }
        if self.live.borrow().is_none() {
            *self.live.borrow_mut() = Some(Live { st, acd, queues_read_at_ms: 0 });
        }
        Ok(())
    }

    /// Run `f` on the live state, then persist what it reports and re-arm the alarm.
    async fn mutate<T>(&self, f: impl FnOnce(&mut AccountState, &mut Changes) -> T) -> Result<T> {
        Ok(self.mutate_live(now_ms(), |live, ch| f(&mut live.st, ch)).await?.0)
    }

    /// Run `f` on the whole live state (SIP side and ACD); when it sets `ch.dispatch`, the
    /// ACD then makes every offer it can (returned). Persists both sides' changes and points
    /// the alarm at the earliest of their deadlines.
    async fn mutate_live<T>(&self, now: u64, f: impl FnOnce(&mut Live, &mut Changes) -> T) -> Result<(T, Vec<Offer>)> {
        self.load().await?;
        let mut ch = Changes::default();
        let (out, offers, acd_changes, counters, reset) = {
            let mut guard = self.live.borrow_mut();
            let live = guard.as_mut().ok_or("state not loaded")?;
            let out = f(live, &mut ch);
            let offers = if ch.dispatch { live.acd.dispatch(now) } else { Vec::new() };
            let acd_changes = live.acd.take_changes();
            (out, offers, acd_changes, live.st.leases.counters.clone(), live.st.last_reset.clone())
        };
        let storage = self.state.storage();
        write_acd_changes(&storage, acd_changes).await?;
        for l in &ch.put_leases {
            storage.put(&format!("l:{}", l.call_id), l).await?;
        }
        for (k, r) in &ch.put_regs {
            storage.put(&format!("r:{k}"), r).await?;
        }
        for (k, n) in &ch.put_nonces {
            storage.put(&format!("n:{k}"), n).await?;
        }
        if !ch.del.is_empty() {
            storage.delete_multiple(ch.del.clone()).await?;
        }
        if ch.counters {
            storage.put("counters", &counters).await?;
        }
        if ch.reset {
            storage.put("last_reset", &reset).await?;
        }
        // The deadline as of now (a request that ran while this one awaited its writes may
        // have moved it): the last alarm set always reflects the latest state.
        let deadline = {
            let guard = self.live.borrow();
            let live = guard.as_ref().ok_or("state not loaded")?;
            [live.st.next_deadline(), live.acd.next_deadline()].into_iter().flatten().min()
        };
        set_alarm(&storage, deadline).await?;
        Ok((out, offers))
    }

    /// The ACD operations (`/acd/<op>`): sync the queue configuration if given, make the
    /// agent's reachability current, apply the operation, dispatch, persist, answer.
    async fn acd(&self, op: &str, c: AcdCmd, now: u64) -> Result<Response> {
        use serde_json::json;
        let mut c = c;
        let op = op.to_string();
        let (view_op, view_user, view_call) = (op.clone(), c.user_id.clone(), c.enqueue.as_ref().map_or(c.call_id.clone(), |e| e.call_id.clone()));
        let roster = std::mem::take(&mut c.roster);
        let (r, offers) = self
            .mutate_live(now, move |live, ch| -> std::result::Result<serde_json::Value, AcdError> {
                let mut effects = apply_sync(live, c.sync, now);
                ch.dispatch = true;
                if !c.user_id.is_empty() {
                    let r = live.st.user_reachable(&c.user_id, now);
                    live.acd.set_reachable(&c.user_id, r, now);
                }
                let acd = &mut live.acd;
                let v = match op.as_str() {
                    "/acd/agent" => {
                        let mut event = c.event.ok_or_else(|| AcdError::Invalid("event is required".into()))?;
                        if let AgentEvent::Login { queues } = &mut event {
                            *queues = c.memberships;
                        }
                        effects.extend(acd.agent_event(&c.user_id, event, now)?);
                        json!({ "effects": effects })
                    }
                    "/acd/agent-view" => json!({}),
                    "/acd/presence" => json!({ "effects": effects }),
                    "/acd/enqueue" => {
                        let e = c.enqueue.ok_or_else(|| AcdError::Invalid("enqueue is required".into()))?;
                        let r = acd.enqueue(&e, now)?;
                        json!({ "enqueue": r, "effects": effects })
                    }
                    "/acd/status" => {
                        ch.dispatch = false;
                        json!({})
                    }
                    "/acd/confirm" => {
                        let r = acd.confirm(&c.lease_id, c.epoch, now)?;
                        json!({ "connected": r })
                    }
                    "/acd/claim" => {
                        let agent = c.agent_id.ok_or_else(|| AcdError::Invalid("agentId is required".into()))?;
                        let r = acd.claim(&agent, &c.call_id, now)?;
                        json!({ "connected": r.connected, "effects": r.effects })
                    }
                    "/acd/offer-failed" => {
                        let r = acd.offer_failed(&c.lease_id, c.epoch, c.agent_id.as_deref(), now)?;
                        json!({ "effects": r })
                    }
                    "/acd/end" => {
                        let r = acd.call_ended(&c.call_id, now)?;
                        json!({ "ended": r })
                    }
                    _ => return Err(AcdError::Invalid(format!("no such ACD operation {op}"))),
                };
                Ok(v)
            })
            .await?;
        // Views are read after the dispatch, so they show the offers just made.
        let r = r.and_then(|mut v| {
            let guard = self.live.borrow();
            let acd = &guard.as_ref().expect("loaded").acd;
            match view_op.as_str() {
                "/acd/agent" | "/acd/agent-view" => v["agent"] = json!(acd.agent_view(&view_user, now)),
                "/acd/presence" => v["presence"] = json!(acd.presence_users(&roster, now)),
                "/acd/enqueue" | "/acd/status" => {
                    let call = view_call.clone();
                    let status = acd.position(&call, now);
                    if status.is_none() && view_op == "/acd/status" {
                        return Err(AcdError::UnknownCall(call));
                    }
                    v["callStatus"] = json!(status);
                    v["offer"] = json!(acd.caller(&call).and_then(|c| c.offer.as_ref()).and_then(|l| acd.offer(l)));
                }
                _ => {}
            }
            Ok(v)
        });
        acd_answer(r, offers)
    }

    fn view(&self, now: u64) -> CacView {
        let guard = self.live.borrow();
        let st = &guard.as_ref().expect("loaded").st;
        CacView {
            active: st.leases.active(),
            calls: st.leases.leases.values().cloned().collect(),
            counters: st.leases.counters.clone(),
            last_reset: st.last_reset.clone(),
            registrations: st.registered_devices(now).into_iter().cloned().collect(),
        }
    }
}

/// Write the ACD's changes: puts as JSON text (exact u64s, cheap structured clone) in batches of
/// 128 (the storage API's limit per call), then the deletes. Every storage call is issued before
/// the first one is awaited, so a concurrent request of this object cannot get its writes
/// between two batches of this one (which could leave an older value last).
async fn write_acd_changes(storage: &worker::Storage, changes: Vec<Change>) -> Result<()> {
    let mut dels: Vec<String> = Vec::new();
    let mut batches: Vec<js_sys::Object> = Vec::new();
    let mut n = 0;
    for c in changes {
        match c {
            Change::Put { key, value } => {
                let text = serde_json::to_string(&value).map_err(|e| worker::Error::RustError(format!("{key}: {e}")))?;
                if n % 128 == 0 {
                    batches.push(js_sys::Object::new());
                }
                js_sys::Reflect::set(batches.last().expect("batch"), &key.into(), &text.into())?;
                n += 1;
            }
            Change::Delete { key } => dels.push(key),
        }
    }
    let mut ops: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + '_>>> = Vec::new();
    for b in batches {
        ops.push(Box::pin(storage.put_multiple_raw(b)));
    }
    for chunk in dels.chunks(128) {
        let keys = chunk.to_vec();
        ops.push(Box::pin(async move { storage.delete_multiple(keys).await.map(|_| ()) }));
    }
    join_in_order(ops).await
}

/// Await every future, polling them in order (so each issues its storage call, in order, on
/// the first poll); the first error wins.
async fn join_in_order<'a>(mut ops: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + 'a>>>) -> Result<()> {
    let mut done = vec![false; ops.len()];
    let mut first_err: Option<worker::Error> = None;
    std::future::poll_fn(|cx| {
        for (i, op) in ops.iter_mut().enumerate() {
            if done[i] {
                continue;
            }
            if let std::task::Poll::Ready(r) = op.as_mut().poll(cx) {
                done[i] = true;
                if let (Err(e), None) = (r, &first_err) {
                    first_err = Some(e);
                }
            }
        }
        if done.iter().all(|d| *d) {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    first_err.map_or(Ok(()), Err)
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).expect("crypto.getRandomValues");
    u64::from_le_bytes(b)
}

/// Apply the queue configuration read from D1 (unless an equal or newer read was applied):
/// see `Acd::sync_queues`.
fn apply_sync(live: &mut Live, sync: Option<QueueSync>, now: u64) -> Vec<crate::acd::Effect> {
    let Some(sync) = sync else { return Vec::new() };
    if sync.read_at_ms < live.queues_read_at_ms {
        return Vec::new();
    }
    live.queues_read_at_ms = sync.read_at_ms;
    let r = live.acd.sync_queues(&sync.queues, now);
    for (id, why) in &r.refused {
        worker::console_error!("queue {id}: configuration refused: {why}");
    }
    r.effects
}

/// A 4xx answer with the error envelope (the Worker passes it through).
fn acd_error(e: &AcdError) -> Result<Response> {
    let mut resp = Response::from_json(&serde_json::json!({"status": "error", "message": e.message()}))?.with_status(e.status());
    resp.headers_mut().set("content-type", "application/json")?;
    Ok(resp)
}

/// The answer of an ACD operation: its result (or error), plus the offers its dispatch made.
fn acd_answer(r: std::result::Result<serde_json::Value, AcdError>, offers: Vec<Offer>) -> Result<Response> {
    match r {
        Ok(mut v) => {
            if let Some(o) = v.as_object_mut() {
                o.insert("offers".into(), serde_json::to_value(&offers).unwrap_or_default());
            }
            json_response(&v)
        }
        Err(e) => acd_error(&e),
    }
}

fn serde_wasm<T: serde::de::DeserializeOwned>(v: worker::wasm_bindgen::JsValue) -> Result<T> {
    // Storage values are structured-cloned objects; round-trip through JSON.
    let s = js_sys::JSON::stringify(&v).map_err(|_| "unserializable stored value")?;
    serde_json::from_str(&String::from(s)).map_err(|e| worker::Error::RustError(format!("stored value: {e}")))
}

impl DurableObject for AccountObject {
    fn new(state: State, env: Env) -> Self {
        Self { state, env, live: RefCell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let path = req.path();
        let now = now_ms();
        let times = self.times();
        match (req.method(), path.as_str()) {
            (Method::Get, "/ping") => Response::ok("pong"),
            (Method::Post, "/admit") => {
                let c: AdmitCmd = read_json(&mut req).await?;
                let a = self
                    .mutate(|st, ch| {
                        expire_into(st, ch, now);
                        if !c.take {
                            return Admission { outcome: st.leases.peek(&c.call_id, c.limit), active: st.leases.active(), limit: c.limit, taken: false };
                        }
                        let outcome = st.leases.take(&c.call_id, &c.direction, &c.from, &c.to, c.limit, now, times.ring_ttl_ms);
                        if outcome == TakeOutcome::Taken {
                            ch.put_leases.push(st.leases.leases[&c.call_id].clone());
                        }
                        ch.counters = true;
                        Admission { outcome, active: st.leases.active(), limit: c.limit, taken: true }
                    })
                    .await?;
                json_response(&a)
            }
            (Method::Post, "/dialog") => {
                let ev: DialogEvent = read_json(&mut req).await?;
                let (effect, _) = self
                    .mutate_live(now, |live, ch| {
                        if ev.state == "terminated" {
                            // The call ended: the ACD lets its caller go (abandoned while waiting)
                            // or sends its agent to wrap-up. Calls the ACD never saw are no-ops.
                            if live.acd.caller(&ev.call_id).is_some() || live.acd.agent_on_call(&ev.call_id).is_some() {
                                let _ = live.acd.call_ended(&ev.call_id, now);
                                ch.dispatch = true;
                            }
                        }
                        let st = &mut live.st;
                        let e = st.dialog(&ev, now, times);
                        if e.confirmed {
                            ch.put_leases.push(st.leases.leases[&ev.call_id].clone());
                        }
                        if e.released.is_some() {
                            ch.del.push(format!("l:{}", ev.call_id));
                            ch.counters = true;
                        }
                        e
                    })
                    .await?;
                json_response(&effect)
            }
            (Method::Post, "/register") => {
                let ev: RegisterEvent = read_json(&mut req).await?;
                let (reachable, _) = self
                    .mutate_live(now, |live, ch| {
                        let st = &mut live.st;
                        let before = st.registrations.get(&crate::presence::registration_key(&ev.aor, &ev.contact)).map(|r| r.user_id.clone());
                        let key = st.register(&ev, now);
                        match st.registrations.get(&key) {
                            Some(r) => ch.put_regs.push((key, r.clone())),
                            None => ch.del.push(format!("r:{key}")),
                        }
                        // The user of this binding (and a previous owner of it) may have become
                        // (un)reachable for the ACD.
                        let mut users: Vec<String> = before.into_iter().filter(|u| !u.is_empty()).collect();
                        if !ev.user_id.is_empty() {
                            users.push(ev.user_id.clone());
                        }
                        for u in &users {
                            let r = live.st.user_reachable(u, now);
                            live.acd.set_reachable(u, r, now);
                        }
                        ch.dispatch = !users.is_empty();
                        !ev.user_id.is_empty() && live.st.user_reachable(&ev.user_id, now)
                    })
                    .await?;
                json_response(&serde_json::json!({"ok": true, "reachable": reachable}))
            }
            (Method::Post, "/nonce") => {
                let c: NonceCmd = read_json(&mut req).await?;
                let fresh = self
                    .mutate(|st, ch| {
                        let fresh = st.use_nonce(&c.nonce, c.nc, c.forget_after_ms);
                        if fresh {
                            ch.put_nonces.push((c.nonce.clone(), st.nonces[&c.nonce]));
                        }
                        fresh
                    })
                    .await?;
                json_response(&serde_json::json!({ "fresh": fresh }))
            }
            (Method::Get, "/cac") => {
                // A read-only view: expiry is the alarm's job, so what this shows is what the alarm left.
                self.load().await?;
                json_response(&self.view(now))
            }
            (Method::Post, "/cac/reset") => {
                let c: ResetCmd = read_json(&mut req).await?;
                let cleared = self
                    .mutate(|st, ch| {
                        ch.del.extend(st.leases.leases.keys().map(|k| format!("l:{k}")));
                        ch.reset = true;
                        ch.counters = true;
                        st.reset(&c.actor, now)
                    })
                    .await?;
                json_response(&serde_json::json!({ "cleared": cleared }))
            }
            (Method::Post, "/cac/reconcile") => {
                let c: ReconcileCmd = read_json(&mut req).await?;
                let released = self
                    .mutate(|st, ch| {
                        let r = st.reconcile(c.node.as_deref(), &c.live_call_ids, now, c.grace_ms, times);
                        ch.del.extend(r.released.iter().map(|l| format!("l:{}", l.call_id)));
                        ch.put_leases.extend(r.kept_alive.iter().filter_map(|id| st.leases.leases.get(id).cloned()));
                        ch.counters = true;
                        r.released
                    })
                    .await?;
                json_response(&serde_json::json!({ "released": released }))
            }
            (Method::Post, p) if p.starts_with("/acd/") => {
                let c: AcdCmd = read_json(&mut req).await?;
                self.acd(p, c, now).await
            }
            _ => Response::error("no such account-object operation", 404),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        let now = now_ms();
        let (effects, offers) = self
            .mutate_live(now, |live, ch| {
                let expiring: Vec<String> =
                    live.st.registrations.values().filter(|r| r.expires_at_ms <= now && !r.user_id.is_empty()).map(|r| r.user_id.clone()).collect();
                expire_into(&mut live.st, ch, now);
                for u in &expiring {
                    let r = live.st.user_reachable(u, now);
                    live.acd.set_reachable(u, r, now);
                }
                ch.dispatch = true;
                live.acd.on_timer(now)
            })
            .await?;
        if !effects.is_empty() || !offers.is_empty() {
            // Until the flow hand-off exists (docs/acd.md), the media engine learns these by
            // polling GET /queue/status; log them for the operator.
            worker::console_log!("acd timers: {} effects, {} new offers", effects.len(), offers.len());
        }
        Response::ok("ok")
    }
}

fn expire_into(st: &mut AccountState, ch: &mut Changes, now: u64) {
    let (leases, regs, nonces) = st.expire(now);
    if !leases.is_empty() {
        ch.counters = true;
    }
    ch.del.extend(leases.iter().map(|l| format!("l:{}", l.call_id)));
    ch.del.extend(regs.iter().map(|k| format!("r:{k}")));
    ch.del.extend(nonces.iter().map(|k| format!("n:{k}")));
}
