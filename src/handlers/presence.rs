//! POST /presence/event: registrations and dialog events from the SIP edge (and media nodes).
//! A terminated dialog releases its concurrency lease (once) and writes a call detail record.

use super::{body, json, Call};
use crate::api::{DialogEvent, PresenceEvent};
use crate::error::{ApiError, ApiResult};
use crate::model::Role;
use crate::routing::decide::RouteStore;
use crate::typeid;
use worker::{wasm_bindgen::JsValue, Response};

pub async fn handle(mut call: Call) -> ApiResult<Response> {
    let ev: PresenceEvent = body(&mut call.req).await?;
    // Agent apps may only send agent events; registrations and dialogs come from the SIP edge
    // and media nodes.
    let agent_event = matches!(ev, PresenceEvent::Agent(_));
    let role = call.caller.role;
    if role != Role::Operator && (role == Role::AgentApp) != agent_event {
        let kind = if agent_event { "agent" } else { "register and dialog" };
        return Err(ApiError::forbidden(format!("role {} may not send {kind} events", role.as_str())));
    }
    match ev {
        PresenceEvent::Agent(a) => super::acd::agent_event(call, a).await,
        PresenceEvent::Register(mut r) => {
            if !typeid::is_valid(&r.account_id, "acc") {
                return Err(ApiError::bad_request("accountId is required"));
            }
            if r.aor.is_empty() || r.contact.is_empty() {
                return Err(ApiError::bad_request("aor and contact are required"));
            }
            if r.aor.len() + r.contact.len() > 1024 {
                return Err(ApiError::bad_request("aor/contact too long"));
            }
            call.caller.check_account(&r.account_id)?;
            known_account(&call, &r.account_id).await?;
            // The device's user (never the sender's word): agents' reachability follows it.
            r.user_id = match r.device_id.is_empty() {
                true => String::new(),
                false => match call.store.device_owner(&r.device_id).await? {
                    Some((acc, user)) if acc == r.account_id => user,
                    _ => String::new(),
                },
            };
            let v = call.store.register(&r).await?;
            json(&serde_json::json!({ "status": "ok", "userId": (!r.user_id.is_empty()).then_some(&r.user_id), "reachable": v["reachable"] }))
        }
        PresenceEvent::Dialog(d) => dialog(call, d).await,
    }
}

async fn dialog(call: Call, d: DialogEvent) -> ApiResult<Response> {
    if !typeid::is_valid(&d.account_id, "acc") {
        return Err(ApiError::bad_request("accountId is required"));
    }
    if d.call_id.is_empty() || d.call_id.len() > super::route::MAX_CALL_ID {
        return Err(ApiError::bad_request("callId is required (at most 256 characters)"));
    }
    if !matches!(d.state.as_str(), "confirmed" | "terminated") {
        return Err(ApiError::bad_request("state must be confirmed or terminated"));
    }
    if d.node.len() > 128 {
        return Err(ApiError::bad_request("node too long"));
    }
    if d.state == "terminated" && !matches!(d.reason.as_str(), "ended" | "failed" | "local" | "") {
        return Err(ApiError::bad_request("reason must be ended, failed or local"));
    }
    call.caller.check_account(&d.account_id)?;
    known_account(&call, &d.account_id).await?;
    let effect = call.store.dialog(&d).await?;
    let summary = match d.state.as_str() {
        "confirmed" => format!("dialog confirmed (answered){}", if effect.confirmed { "; lease extended to the call TTL" } else { "" }),
        _ => format!(
            "dialog terminated ({}) after {} s{}",
            if d.reason.is_empty() { "ended" } else { &d.reason },
            d.duration.unwrap_or(0),
            if effect.released.is_some() { "; concurrency slot released" } else { "" }
        ),
    };
    call.trace_later(
        &d.call_id,
        vec![crate::trace::Entry {
            at_ms: call.store.now_ms,
            kind: if d.state == "terminated" { "disposition".into() } else { "dialog".into() },
            summary,
            detail: serde_json::json!({ "accountId": d.account_id, "event": d }),
            latency_ms: None,
        }],
    );
    if d.state == "terminated" {
        write_cdr(&call, &d, effect.released.as_ref()).await?;
    }
    json(&serde_json::json!({ "status": "ok", "released": effect.released.is_some(), "confirmed": effect.confirmed }))
}

/// Events for accounts that do not exist are refused (no live state is created for them).
pub async fn known_account(call: &Call, account_id: &str) -> ApiResult<()> {
    use crate::routing::decide::RouteStore;
    call.store.account(account_id).await?.map(|_| ()).ok_or_else(|| ApiError::not_found(format!("account {account_id} not found")))
}

async fn write_cdr(call: &Call, d: &DialogEvent, lease: Option<&crate::cac::lease::Lease>) -> ApiResult<()> {
    let now = call.store.now_ms;
    let duration = d.duration.unwrap_or(0);
    let disposition = match (d.reason.as_str(), duration) {
        ("failed", _) => "failed",
        (_, 0) if lease.is_some_and(|l| !l.confirmed) => "cancelled",
        _ => "answered",
    };
    let id = typeid::new("cdr", now, crate::handlers::random10());
    let started = lease.map(|l| l.taken_at_ms as f64);
    let answered = if disposition == "answered" { Some(now.saturating_sub(duration * 1000) as f64) } else { None };
    let or_lease = |given: &str, f: fn(&crate::cac::lease::Lease) -> &String| if given.is_empty() { lease.map(|l| f(l).clone()).unwrap_or_default() } else { given.to_string() };
    let direction = or_lease(&d.direction, |l| &l.direction);
    let from = or_lease(&d.from, |l| &l.from);
    let to = or_lease(&d.to, |l| &l.to);
    let opt = |v: Option<f64>| v.map(JsValue::from_f64).unwrap_or(JsValue::NULL);
    call.store
        .exec(
            "INSERT OR IGNORE INTO cdrs (id, account_id, call_id, direction, from_uri, to_uri, started_at, answered_at, ended_at, duration_s, reason, disposition) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            &[
                id.into(),
                d.account_id.clone().into(),
                d.call_id.clone().into(),
                direction.into(),
                from.into(),
                to.into(),
                opt(started),
                opt(answered),
                JsValue::from_f64(now as f64),
                JsValue::from_f64(duration as f64),
                d.reason.clone().into(),
                disposition.into(),
            ],
        )
        .await
}
