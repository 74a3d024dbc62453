//! The ACD endpoints (docs/acd.md): agents (`POST/GET /agent`, `POST /presence/event` type
//! `agent`), the dashboard roster (`GET /presence/users`), the answer hooks
//! (`GET /agent/confirm/…`, `GET /agent/claim/…`) and the queue building blocks the flow
//! hand-off will use (`POST /queue/enqueue`, `GET /queue/status`, `POST /queue/end`,
//! `POST /queue/offer-failed`).
//!
//! Handlers validate, resolve configuration from D1 (users, queues, memberships), pass the
//! account's queue configuration along so the account object applies it, and forward to the
//! account's Durable Object, whose ACD decides. Its 4xx answers pass through unchanged.

use super::{body, json, query, query_value, Call};
use crate::acd::{is_ident, is_printable, AgentEvent, EnqueueRequest, MAX_CALL_ID_LEN, MAX_USER_ID_LEN};
use crate::api::AgentRequest;
use crate::error::{ApiError, ApiResult};
use crate::routing::decide::RouteStore;
use crate::store::QueueSet;
use crate::typeid;
use serde::Deserialize;
use serde_json::{json, Value};
use worker::Response;

fn account_of(call: &Call, id: &str) -> ApiResult<String> {
    if !typeid::is_valid(id, "acc") {
        return Err(ApiError::bad_request("accountId (an acc_ id) is required"));
    }
    call.caller.check_account(id)?;
    Ok(id.to_string())
}

async fn known_account(call: &Call, id: &str) -> ApiResult<()> {
    call.store.account(id).await?.map(|_| ()).ok_or_else(|| ApiError::not_found(format!("account {id} not found")))
}

/// The user must be one of the account's users in D1.
async fn known_user(call: &Call, account: &str, user_id: &str) -> ApiResult<()> {
    if !is_ident(user_id, MAX_USER_ID_LEN) {
        return Err(ApiError::bad_request("userId (a usr_ id) is required"));
    }
    match call.store.user(user_id).await? {
        Some(u) if u.account_id == account => Ok(()),
        _ => Err(ApiError::not_found(format!("user {user_id} not found in account {account}"))),
    }
}

fn call_id_ok(call_id: &str) -> ApiResult<()> {
    if is_printable(call_id, MAX_CALL_ID_LEN) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!("callId is required (1-{MAX_CALL_ID_LEN} printable characters)")))
    }
}

/// The queue configuration to hand to the account object.
fn sync_of(qs: &QueueSet) -> Value {
    let queues: Vec<crate::acd::QueueConfig> = qs
        .rows
        .iter()
        .filter_map(|r| match r.to_config() {
            Ok(c) => Some(c),
            Err(e) => {
                worker::console_error!("skipping unusable queue row: {e}");
                None
            }
        })
        .collect();
    json!({ "readAtMs": qs.read_at_ms, "queues": queues })
}

/// Add the queue's name next to every `queue` id in a view (memberships, queue summaries).
fn name_queues(v: &mut Value, qs: &QueueSet) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(id)) = o.get("queue") {
                if let Some(q) = qs.rows.iter().find(|q| &q.id == id) {
                    let name = q.name.clone();
                    o.insert("queueName".into(), Value::from(name));
                }
            }
            for (k, x) in o.iter_mut() {
                if k != "queue" {
                    name_queues(x, qs);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| name_queues(x, qs)),
        _ => {}
    }
}

/// An offer as the media engine needs it: the lease plus its answer hooks (paths on this Worker).
fn with_hooks(account: &str, offer: &mut Value) {
    if offer.is_null() {
        return;
    }
    let call_id = offer["callId"].as_str().unwrap_or_default().to_string();
    if offer["ringAll"].as_bool() == Some(true) {
        let claims: serde_json::Map<String, Value> = offer["agents"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str())
            .map(|a| (a.to_string(), Value::from(format!("/agent/claim/{account}/{a}/{}", crate::body::percent_encode(&call_id)))))
            .collect();
        offer["hooks"] = json!({ "claim": claims });
    } else {
        let lease = offer["leaseId"].as_str().unwrap_or_default();
        let epoch = offer["epoch"].as_u64().unwrap_or_default();
        offer["hooks"] = json!({ "confirm": format!("/agent/confirm/{account}/{lease}/{epoch}") });
    }
}

fn hooks_all(account: &str, v: &mut Value) {
    if let Some(list) = v.get_mut("offers").and_then(Value::as_array_mut) {
        list.iter_mut().for_each(|o| with_hooks(account, o));
    }
    if let Some(o) = v.get_mut("offer") {
        with_hooks(account, o);
    }
}

async fn acd_call(call: &Call, account: &str, op: &str, body: Value) -> ApiResult<Value> {
    call.store.do_call_passthrough("ACCOUNT", account, op, body).await
}

// ---- agents --------------------------------------------------------------------------------

pub async fn agent_post(mut call: Call) -> ApiResult<Response> {
    let r: AgentRequest = body(&mut call.req).await?;
    agent_event(call, r).await
}

/// `POST /agent` and `POST /presence/event` with `"type":"agent"`.
pub async fn agent_event(call: Call, r: AgentRequest) -> ApiResult<Response> {
    let account = account_of(&call, &r.account_id)?;
    let event = match r.event.as_str() {
        "login" => AgentEvent::Login { queues: Vec::new() },
        "logout" => AgentEvent::Logout,
        "available" => AgentEvent::Available,
        "pause" => AgentEvent::Pause { reason: r.reason.clone() },
        "unpause" => AgentEvent::Unpause,
        "" => return Err(ApiError::bad_request("event is required: login, logout, available, pause or unpause")),
        e => return Err(ApiError::bad_request(format!("unknown event {e:?} (login, logout, available, pause or unpause)"))),
    };
    if r.queues.is_some() && r.event != "login" {
        return Err(ApiError::bad_request("queues only apply to login"));
    }
    known_account(&call, &account).await?;
    known_user(&call, &account, &r.user_id).await?;
    let qs = call.store.queues(&account).await?;
    let mut memberships = Vec::new();
    if r.event == "login" {
        let members = call.store.memberships(&r.user_id).await?;
        let member_of = |queue_id: &str| members.iter().find(|m| m.queue_id == queue_id);
        let wanted: Vec<String> = match &r.queues {
            Some(list) => {
                let items = list.items();
                if items.len() > crate::acd::MAX_MEMBERSHIPS {
                    return Err(ApiError::bad_request(format!("at most {} queues", crate::acd::MAX_MEMBERSHIPS)));
                }
                let mut ids = Vec::new();
                for q in items {
                    let row = qs.find(&q).ok_or_else(|| ApiError::not_found(format!("unknown queue {q:?} in account {account}")))?;
                    if member_of(&row.id).is_none() {
                        return Err(ApiError::forbidden(format!("user {} is not a member of queue {} ({})", r.user_id, row.name, row.id)));
                    }
                    if !ids.contains(&row.id) {
                        ids.push(row.id.clone());
                    }
                }
                ids
            }
            None => qs.rows.iter().filter(|q| member_of(&q.id).is_some()).map(|q| q.id.clone()).collect(),
        };
        for id in wanted {
            let m = member_of(&id).expect("member");
            memberships.push(json!({ "queue": id, "tier": m.tier.clamp(1, 99), "position": m.position.clamp(0, i64::from(u32::MAX)) }));
        }
    }
    let mut v = acd_call(
        &call,
        &account,
        "/acd/agent",
        json!({ "sync": sync_of(&qs), "userId": r.user_id, "event": event, "memberships": memberships }),
    )
    .await?;
    hooks_all(&account, &mut v);
    name_queues(&mut v, &qs);
    json(&json!({ "status": "ok", "accountId": account, "agent": v["agent"], "effects": v["effects"], "offers": v["offers"] }))
}

/// `GET /agent?accountId=&userId=`: the agent's status (see `AgentView`).
pub async fn agent_get(call: Call) -> ApiResult<Response> {
    let q = query(&call.req)?;
    let account = account_of(&call, &query_value(&q, "accountId").unwrap_or_default())?;
    let user = query_value(&q, "userId").unwrap_or_default();
    known_account(&call, &account).await?;
    known_user(&call, &account, &user).await?;
    let qs = call.store.queues(&account).await?;
    let mut v = acd_call(&call, &account, "/acd/agent-view", json!({ "sync": sync_of(&qs), "userId": user })).await?;
    name_queues(&mut v, &qs);
    let mut agent = v["agent"].take();
    agent["accountId"] = Value::from(account);
    json(&agent)
}

/// `GET /presence/users?accountId=`: the roster (D1 users) with each one's status, the
/// status-count tiles and the queue summaries.
pub async fn presence_users(call: Call) -> ApiResult<Response> {
    let account = account_of(&call, &query_value(&query(&call.req)?, "accountId").unwrap_or_default())?;
    known_account(&call, &account).await?;
    let qs = call.store.queues(&account).await?;
    let roster = call.store.roster(&account).await?;
    let mut v = acd_call(&call, &account, "/acd/presence", json!({ "sync": sync_of(&qs), "roster": roster })).await?;
    name_queues(&mut v, &qs);
    let mut p = v["presence"].take();
    p["accountId"] = Value::from(account);
    json(&p)
}

// ---- answer hooks --------------------------------------------------------------------------

/// `GET /agent/confirm/{accountId}/{leaseId}/{epoch}`.
pub async fn confirm(call: Call, rest: &str) -> ApiResult<Response> {
    let parts: Vec<&str> = rest.split('/').collect();
    let [acc, lease, epoch] = parts[..] else {
        return Err(ApiError::not_found("expected /agent/confirm/{accountId}/{leaseId}/{epoch}"));
    };
    let account = account_of(&call, acc)?;
    if !is_ident(lease, 64) {
        return Err(ApiError::bad_request("bad leaseId"));
    }
    let epoch: u64 = epoch.parse().map_err(|_| ApiError::bad_request("epoch must be a non-negative integer"))?;
    let v = acd_call(&call, &account, "/acd/confirm", json!({ "leaseId": lease, "epoch": epoch })).await?;
    json(&json!({ "status": "ok", "accountId": account, "connected": v["connected"] }))
}

/// `GET /agent/claim/{accountId}/{agentId}/{callId}` (the call id percent-encoded).
pub async fn claim(call: Call, rest: &str) -> ApiResult<Response> {
    let mut it = rest.splitn(3, '/');
    let (Some(acc), Some(agent), Some(call_id)) = (it.next(), it.next(), it.next()) else {
        return Err(ApiError::not_found("expected /agent/claim/{accountId}/{agentId}/{callId}"));
    };
    let account = account_of(&call, acc)?;
    if !is_ident(agent, MAX_USER_ID_LEN) {
        return Err(ApiError::bad_request("bad agentId"));
    }
    let call_id = crate::body::percent_decode_path(call_id)?;
    call_id_ok(&call_id)?;
    let v = acd_call(&call, &account, "/acd/claim", json!({ "agentId": agent, "callId": call_id })).await?;
    json(&json!({ "status": "ok", "accountId": account, "callId": call_id, "connected": v["connected"], "effects": v["effects"] }))
}

// ---- queue building blocks (the flow hand-off uses these) ------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnqueueBody {
    #[serde(default)]
    account_id: String,
    #[serde(default)]
    call_id: String,
    #[serde(default)]
    queue: String,
    #[serde(default)]
    priority: Option<u32>,
    #[serde(default)]
    max_wait_secs: Option<u32>,
}

/// `POST /queue/enqueue {accountId, callId, queue (id or name), priority?, maxWaitSecs?}`.
pub async fn enqueue(mut call: Call) -> ApiResult<Response> {
    let b: EnqueueBody = body(&mut call.req).await?;
    let account = account_of(&call, &b.account_id)?;
    call_id_ok(&b.call_id)?;
    if b.queue.is_empty() {
        return Err(ApiError::bad_request("queue (a queue id or name) is required"));
    }
    known_account(&call, &account).await?;
    let qs = call.store.queues(&account).await?;
    let row = qs.find(&b.queue).ok_or_else(|| ApiError::not_found(format!("unknown queue {:?} in account {account}", b.queue)))?;
    let req = EnqueueRequest { call_id: b.call_id.clone(), queue: row.id.clone(), priority: b.priority.unwrap_or(0), max_wait_secs: b.max_wait_secs };
    let mut v = acd_call(&call, &account, "/acd/enqueue", json!({ "sync": sync_of(&qs), "enqueue": req })).await?;
    hooks_all(&account, &mut v);
    name_queues(&mut v, &qs);
    let mut out = v["enqueue"].take();
    out["status"] = Value::from("ok");
    out["accountId"] = Value::from(account);
    out["callId"] = Value::from(b.call_id);
    for k in ["callStatus", "offer", "offers", "effects"] {
        out[k] = v[k].take();
    }
    json(&out)
}

/// `GET /queue/status?accountId=&callId=`: waiting (position), connected, or left (outcome),
/// with the offer ringing for the caller, if any.
pub async fn status(call: Call) -> ApiResult<Response> {
    let q = query(&call.req)?;
    let account = account_of(&call, &query_value(&q, "accountId").unwrap_or_default())?;
    let call_id = query_value(&q, "callId").unwrap_or_default();
    call_id_ok(&call_id)?;
    let mut v = acd_call(&call, &account, "/acd/status", json!({ "callId": call_id })).await?;
    hooks_all(&account, &mut v);
    if let Ok(qs) = call.store.queues(&account).await {
        name_queues(&mut v, &qs);
    }
    let mut out = v["callStatus"].take();
    out["accountId"] = Value::from(account);
    out["callId"] = Value::from(call_id);
    out["offer"] = v["offer"].take();
    json(&out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallBody {
    #[serde(default)]
    account_id: String,
    #[serde(default)]
    call_id: String,
    #[serde(default)]
    lease_id: String,
    #[serde(default)]
    epoch: Option<u64>,
    #[serde(default)]
    agent_id: Option<String>,
}

/// `POST /queue/end {accountId, callId}`: the caller hung up or the queue call ended (the
/// same happens on a `terminated` dialog event for that Call-ID).
pub async fn end(mut call: Call) -> ApiResult<Response> {
    let b: CallBody = body(&mut call.req).await?;
    let account = account_of(&call, &b.account_id)?;
    call_id_ok(&b.call_id)?;
    let mut v = acd_call(&call, &account, "/acd/end", json!({ "callId": b.call_id })).await?;
    hooks_all(&account, &mut v);
    json(&json!({ "status": "ok", "accountId": account, "ended": v["ended"], "offers": v["offers"] }))
}

/// `POST /queue/offer-failed {accountId, leaseId, epoch, agentId?}`: an agent leg failed or
/// was declined before the offer timeout.
pub async fn offer_failed(mut call: Call) -> ApiResult<Response> {
    let b: CallBody = body(&mut call.req).await?;
    let account = account_of(&call, &b.account_id)?;
    if !is_ident(&b.lease_id, 64) {
        return Err(ApiError::bad_request("leaseId is required"));
    }
    let epoch = b.epoch.ok_or_else(|| ApiError::bad_request("epoch is required"))?;
    let mut v = acd_call(&call, &account, "/acd/offer-failed", json!({ "leaseId": b.lease_id, "epoch": epoch, "agentId": b.agent_id })).await?;
    hooks_all(&account, &mut v);
    json(&json!({ "status": "ok", "accountId": account, "effects": v["effects"], "offers": v["offers"] }))
}
