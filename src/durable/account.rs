//! One Durable Object per account: concurrency leases, registrations, nonce counts.
//! Storage keys: `l:<call-id>` lease, `r:<aor>|<contact>` registration, `n:<nonce>` nonce count,
//! `counters`, `last_reset`.

use super::{json_response, now_ms, read_json, set_alarm};
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
    live: RefCell<Option<AccountState>>,
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
}

impl AccountObject {
    fn times(&self) -> LeaseTimes {
        let var = |k: &str| self.env.var(k).ok().and_then(|v| v.to_string().parse::<u64>().ok());
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
        let entries = js_sys::try_iter(&map)?.ok_or("storage list is not iterable")?;
        for entry in entries {
            let pair: js_sys::Array = entry?.unchecked_into();
            let key = pair.get(0).as_string().unwrap_or_default();
            let value = pair.get(1);
            if let Some(id) = key.strip_prefix("l:") {
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
        if self.live.borrow().is_none() {
            *self.live.borrow_mut() = Some(st);
        }
        Ok(())
    }

    /// Run `f` on the live state, then persist what it reports and re-arm the alarm.
    async fn mutate<T>(&self, f: impl FnOnce(&mut AccountState, &mut Changes) -> T) -> Result<T> {
        self.load().await?;
        let mut ch = Changes::default();
        let (out, deadline, counters, reset) = {
            let mut guard = self.live.borrow_mut();
            let st = guard.as_mut().ok_or("state not loaded")?;
            let out = f(st, &mut ch);
            (out, st.next_deadline(), st.leases.counters.clone(), st.last_reset.clone())
        };
        let storage = self.state.storage();
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
        set_alarm(&storage, deadline).await?;
        Ok(out)
    }

    fn view(&self, now: u64) -> CacView {
        let guard = self.live.borrow();
        let st = guard.as_ref().expect("loaded");
        CacView {
            active: st.leases.active(),
            calls: st.leases.leases.values().cloned().collect(),
            counters: st.leases.counters.clone(),
            last_reset: st.last_reset.clone(),
            registrations: st.registered_devices(now).into_iter().cloned().collect(),
        }
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
                let effect = self
                    .mutate(|st, ch| {
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
                self.mutate(|st, ch| {
                    let key = st.register(&ev, now);
                    match st.registrations.get(&key) {
                        Some(r) => ch.put_regs.push((key, r.clone())),
                        None => ch.del.push(format!("r:{key}")),
                    }
                })
                .await?;
                json_response(&serde_json::json!({"ok": true}))
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
            _ => Response::error("no such account-object operation", 404),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        let now = now_ms();
        self.mutate(|st, ch| expire_into(st, ch, now)).await?;
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
