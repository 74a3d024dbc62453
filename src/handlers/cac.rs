//! GET /cac, POST /cac/reset, POST /cac/reconcile: the account's concurrency leases.

use super::{body, json, query, query_value, Call};
use crate::error::{ApiError, ApiResult};
use crate::routing::decide::RouteStore;
use crate::typeid;
use serde::Deserialize;
use serde_json::Value;
use worker::{wasm_bindgen::JsValue, Method, Response};

fn account_param(call: &Call, id: Option<String>) -> ApiResult<String> {
    let id = id.filter(|a| typeid::is_valid(a, "acc")).ok_or_else(|| ApiError::bad_request("accountId (an acc_ id) is required"))?;
    call.caller.check_account(&id)?;
    Ok(id)
}

pub async fn get(call: Call) -> ApiResult<Response> {
    let id = account_param(&call, query_value(&query(&call.req)?, "accountId"))?;
    let account = call.store.account(&id).await?.ok_or_else(|| ApiError::not_found(format!("account {id} not found")))?;
    let mut v: Value = call.store.account_call(&id, Method::Get, "/cac", None).await?;
    v["accountId"] = Value::from(id);
    v["limit"] = Value::from(account.max_concurrent_calls);
    json(&v)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResetBody {
    account_id: Option<String>,
}

pub async fn reset(mut call: Call) -> ApiResult<Response> {
    let b: ResetBody = body(&mut call.req).await?;
    let id = account_param(&call, b.account_id)?;
    call.store.account(&id).await?.ok_or_else(|| ApiError::not_found(format!("account {id} not found")))?;
    let actor = call.caller.credential_id.clone();
    let v: Value = call.store.account_call(&id, Method::Post, "/cac/reset", Some(serde_json::json!({ "actor": actor }))).await?;
    call.store
        .exec(
            "INSERT INTO audit_log (at, actor, action, account_id, detail) VALUES (?1, ?2, 'cac.reset', ?3, ?4)",
            &[JsValue::from_f64(call.store.now_ms as f64), actor.clone().into(), id.clone().into(), v.to_string().into()],
        )
        .await?;
    json(&serde_json::json!({ "status": "ok", "accountId": id, "cleared": v["cleared"], "by": actor }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReconcileBody {
    account_id: Option<String>,
    /// The reporting media node (required from media nodes: they only see their own calls).
    node: Option<String>,
    live_call_ids: Vec<String>,
    grace_seconds: Option<u64>,
}

pub async fn reconcile(mut call: Call) -> ApiResult<Response> {
    let b: ReconcileBody = body(&mut call.req).await?;
    let id = account_param(&call, b.account_id)?;
    if b.live_call_ids.len() > 20_000 || b.live_call_ids.iter().any(|c| c.len() > super::route::MAX_CALL_ID) {
        return Err(ApiError::bad_request("liveCallIds too large"));
    }
    super::presence::known_account(&call, &id).await?;
    let node = b.node.filter(|n| !n.trim().is_empty());
    if call.caller.role == crate::model::Role::MediaNode && node.is_none() {
        return Err(ApiError::bad_request("node is required from a media node: it only sees the calls live on it"));
    }
    if node.as_ref().is_some_and(|n| n.len() > 128) {
        return Err(ApiError::bad_request("node too long"));
    }
    let grace_ms = b.grace_seconds.unwrap_or(60).min(3600) * 1000;
    let v: Value = call
        .store
        .account_call(&id, Method::Post, "/cac/reconcile", Some(serde_json::json!({ "node": node, "liveCallIds": b.live_call_ids, "graceMs": grace_ms })))
        .await?;
    json(&serde_json::json!({ "status": "ok", "accountId": id, "released": v["released"] }))
}
