//! GET /calls/{callId}/trace (operator): the call's timeline as JSON, or `?format=text`.

use super::{json, query, query_value, Call};
use crate::error::{ApiError, ApiResult};
use worker::Response;

pub async fn get(call: Call, call_id: &str) -> ApiResult<Response> {
    if call_id.is_empty() || call_id.len() > super::route::MAX_CALL_ID {
        return Err(ApiError::bad_request("callId must be 1..=256 characters"));
    }
    let trace = call.store.trace(call_id).await?.ok_or_else(|| ApiError::not_found(format!("no trace for call {call_id}")))?;
    if let Some(a) = &trace.account_id {
        call.caller.check_account(a)?;
    }
    if query_value(&query(&call.req)?, "format").as_deref() == Some("text") {
        let mut resp = Response::ok(trace.render_text()).map_err(ApiError::internal)?;
        resp.headers_mut().set("content-type", "text/plain; charset=utf-8").map_err(ApiError::internal)?;
        return Ok(resp);
    }
    json(&trace)
}
