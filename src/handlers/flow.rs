//! POST /flow: the media engine's command loop. A start pins the flow's published version in the
//! call's Durable Object and answers the first command; each step applies an outcome and
//! answers the next command. The interpreter runs in the call object; this handler only
//! authorizes, loads the pinned definition text and forwards.

use super::{json, Call};
use crate::error::{ApiError, ApiResult};
use crate::flow::interpreter::authorize_start;
use crate::flow::wire::FlowRequest;
use worker::Response;

pub async fn handle(mut call: Call) -> ApiResult<Response> {
    let ct = call.req.headers().get("content-type").ok().flatten();
    let bytes = call.req.bytes().await.map_err(|e| ApiError::bad_request(format!("unreadable body: {e}")))?;
    let value = crate::body::parse_value(ct.as_deref(), &bytes, &["seq"])?;
    let origin = call.req.url().map_err(|e| ApiError::bad_request(format!("bad URL: {e}")))?.origin().ascii_serialization();
    let answer = match FlowRequest::from_value(value)? {
        FlowRequest::Start(start) => {
            call.caller.check_account(&start.account_id)?;
            let row = call.store.flow_row(&start.flow_id).await?;
            let published = row.as_ref().and_then(|r| r.published_version).and_then(|v| u32::try_from(v).ok());
            let version = authorize_start(&start, row.as_ref().map(|r| r.account_id.as_str()), published)?;
            let text = call
                .store
                .flow_version_text(&start.flow_id, version)
                .await?
                .ok_or_else(|| ApiError::internal(format!("flow {} v{version} is published but not stored", start.flow_id)))?;
            let call_id = start.call_id.clone();
            call.store
                .do_call_passthrough("CALL", &call_id, "/flow/start", serde_json::json!({ "start": start, "version": version, "text": text, "origin": origin }))
                .await?
        }
        FlowRequest::Step(step) => {
            let call_id = step.call_id.clone();
            let scope = call.caller.account_id.clone();
            call.store.do_call_passthrough("CALL", &call_id, "/flow/step", serde_json::json!({ "step": step, "origin": origin, "scope": scope })).await?
        }
    };
    json(&answer)
}
