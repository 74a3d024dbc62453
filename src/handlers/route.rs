//! POST /route: the routing decision as Kamailio rtjson. `?explain=1` adds the decision and the
//! rule that matched without taking a concurrency slot.

use super::{body, json, query, query_value, Call};
use crate::api::RouteRequest;
use crate::error::{ApiError, ApiResult};
use crate::routing::decide::{route, RouteContext};
use worker::Response;

/// Longest Call-ID accepted (it becomes a storage key).
pub const MAX_CALL_ID: usize = 256;

pub async fn handle(mut call: Call) -> ApiResult<Response> {
    let explain = matches!(query_value(&query(&call.req)?, "explain").as_deref(), Some("1") | Some("true"));
    let req: RouteRequest = body(&mut call.req).await?;
    if req.call_id.len() > MAX_CALL_ID {
        return Err(ApiError::bad_request(format!("callId longer than {MAX_CALL_ID} characters")));
    }
    if !req.account_id.is_empty() {
        call.caller.check_account(&req.account_id)?;
    }
    if !req.carrier_id.is_empty() && call.caller.account_id.is_some() {
        return Err(ApiError::forbidden("routing carrier calls needs a platform-wide credential"));
    }
    let out = route(&req, &call.store, &RouteContext { now_ms: call.store.now_ms, take_slot: !explain }).await?;
    worker::console_log!("route {}: {} ({})", req.call_id, out.rtjson["action"], out.explain.rule);
    if !explain {
        let mut detail = serde_json::json!({ "rtjson": out.rtjson, "explain": out.explain });
        if let Some(a) = &out.explain.account_id {
            detail["accountId"] = serde_json::Value::from(a.clone());
        }
        let action = out.rtjson["action"].as_str().unwrap_or("?");
        let code = out.rtjson.get("code").map(|c| format!(" {c}")).unwrap_or_default();
        call.trace_later(
            &req.call_id,
            vec![crate::trace::Entry {
                at_ms: call.store.now_ms,
                kind: "route".into(),
                summary: format!("{} call {} → {action}{code}: {}", out.explain.direction, crate::routing::e164::user_part(&req.ruri), out.explain.rule),
                detail,
                latency_ms: None,
            }],
        );
    }
    if explain {
        json(&serde_json::json!({ "rtjson": out.rtjson, "explain": out.explain }))
    } else {
        json(&serde_json::json!({ "rtjson": out.rtjson }))
    }
}
