//! HTTP edge: routing, credential gating, and the one error envelope. Each endpoint group
//! lives in its own file and only parses, loads, calls the core, stores and answers.

mod acd;
mod auth;
mod cac;
mod flow;
mod gate;
mod health;
mod media;
mod presence;
mod route;
mod trace;

use crate::error::{ApiError, ApiResult};
use crate::model::Role;
use crate::store::Store;
use gate::Caller;
use std::rc::Rc;
use worker::{event, Context, Env, Method, Request, Response, Result};

/// What a handler needs: the request, the store, and who is calling.
pub struct Call {
    pub req: Request,
    pub store: Store,
    pub caller: Caller,
    pub ctx: Rc<Context>,
}

impl Call {
    /// Append to a call's trace after the answer is sent (never delays or fails the request).
    pub fn trace_later(&self, call_id: &str, entries: Vec<crate::trace::Entry>) {
        if call_id.is_empty() || call_id.len() > route::MAX_CALL_ID || entries.is_empty() {
            return;
        }
        let store = self.store.clone();
        let call_id = call_id.to_string();
        self.ctx.wait_until(async move {
            if let Err(e) = store.append_trace(&call_id, entries).await {
                worker::console_error!("trace {call_id}: {e}");
            }
        });
    }
}

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let now = crate::durable::now_ms();
    let method = req.method();
    let path = req.path();
    let answer = dispatch(req, env, Rc::new(ctx), now, &method, &path).await;
    match answer {
        Ok(resp) => Ok(resp),
        Err(e) => {
            if e.status >= 500 {
                worker::console_error!("{} {} → {}", method, path, e);
            }
            error_response(&e)
        }
    }
}

pub fn error_response(e: &ApiError) -> Result<Response> {
    let mut resp = Response::ok(e.body())?.with_status(e.status);
    resp.headers_mut().set("content-type", "application/json")?;
    Ok(resp)
}

pub fn json<T: serde::Serialize>(v: &T) -> ApiResult<Response> {
    Response::from_json(v).map_err(ApiError::internal)
}

/// The route table: (method, path) → required roles → handler. Operators may call everything.
async fn dispatch(req: Request, env: Env, ctx: Rc<Context>, now: u64, method: &Method, path: &str) -> ApiResult<Response> {
    use Role::*;
    if path.starts_with("/v1/") || path == "/v1" || path == "/hooks/carrier" {
        return Err(ApiError::not_implemented(format!("{path} is not implemented yet")));
    }
    if let Some(key) = path.strip_prefix("/media/") {
        if !matches!(method, Method::Get | Method::Head | Method::Put) {
            return Err(ApiError::method_not_allowed("/media/{key} accepts GET, HEAD, PUT"));
        }
        let store = Store::new(env, now);
        let caller = gate::authenticate(&req, &store).await?;
        let key = crate::body::percent_decode_path(key)?;
        return media::handle(Call { req, store, caller, ctx }, &key).await;
    }
    if let Some(rest) = path.strip_prefix("/calls/") {
        let Some(call_id) = rest.strip_suffix("/trace") else {
            return Err(ApiError::not_found(format!("no endpoint {path}")));
        };
        if method != &Method::Get {
            return Err(ApiError::method_not_allowed("/calls/{callId}/trace accepts GET"));
        }
        let store = Store::new(env, now);
        let caller = gate::authenticate(&req, &store).await?;
        gate::require(&caller, &[], path)?;
        let call_id = crate::body::percent_decode_path(call_id)?;
        return trace::get(Call { req, store, caller, ctx }, &call_id).await;
    }
    for (prefix, hook) in [("/agent/confirm/", 0), ("/agent/claim/", 1)] {
        let Some(rest) = path.strip_prefix(prefix) else { continue };
        if method != &Method::Get {
            return Err(ApiError::method_not_allowed(format!("{prefix}… accepts GET")));
        }
        let store = Store::new(env, now);
        let caller = gate::authenticate(&req, &store).await?;
        gate::require(&caller, &[MediaNode], path)?;
        let call = Call { req, store, caller, ctx };
        return if hook == 0 { acd::confirm(call, rest).await } else { acd::claim(call, rest).await };
    }
    let roles: &[Role] = match path {
        "/health" | "/ready" => &[],
        "/auth" | "/route" => &[SipEdge],
        // Each event type is gated again by the handler (agent events: agent-app).
        "/presence/event" => &[SipEdge, MediaNode, AgentApp],
        "/agent" | "/presence/users" => &[AgentApp],
        "/queue/enqueue" | "/queue/status" | "/queue/end" | "/queue/offer-failed" => &[MediaNode],
        "/cac" | "/cac/reset" => &[],
        "/cac/reconcile" => &[SipEdge, MediaNode],
        "/flow" => &[MediaNode],
        "/admin/media/sign" => &[],
        _ => return Err(ApiError::not_found(format!("no endpoint {path}"))),
    };
    let allowed: &[Method] = match path {
        "/health" | "/ready" | "/cac" | "/presence/users" | "/queue/status" => &[Method::Get],
        "/agent" => &[Method::Get, Method::Post],
        _ => &[Method::Post],
    };
    if !allowed.contains(method) {
        return Err(ApiError::method_not_allowed(format!("{path} accepts {}", allowed.iter().map(|m| m.to_string()).collect::<Vec<_>>().join(", "))));
    }
    let store = Store::new(env, now);
    match path {
        "/health" => return Response::ok("OK").map_err(ApiError::internal),
        "/ready" => return health::ready(&store).await,
        _ => {}
    }
    let caller = gate::authenticate(&req, &store).await?;
    gate::require(&caller, roles, path)?;
    let call = Call { req, store, caller, ctx };
    match path {
        "/auth" => auth::handle(call).await,
        "/route" => route::handle(call).await,
        "/presence/event" => presence::handle(call).await,
        "/cac" => cac::get(call).await,
        "/cac/reset" => cac::reset(call).await,
        "/cac/reconcile" => cac::reconcile(call).await,
        "/flow" => flow::handle(call).await,
        "/admin/media/sign" => media::sign(call).await,
        "/agent" if method == &Method::Get => acd::agent_get(call).await,
        "/agent" => acd::agent_post(call).await,
        "/presence/users" => acd::presence_users(call).await,
        "/queue/enqueue" => acd::enqueue(call).await,
        "/queue/status" => acd::status(call).await,
        "/queue/end" => acd::end(call).await,
        "/queue/offer-failed" => acd::offer_failed(call).await,
        _ => Err(ApiError::not_found(format!("no endpoint {path}"))),
    }
}

/// Read the body (bounded) and decode it as JSON or form into `T`.
pub async fn body<T: serde::de::DeserializeOwned>(req: &mut Request) -> ApiResult<T> {
    let ct = req.headers().get("content-type").ok().flatten();
    if let Some(len) = req.headers().get("content-length").ok().flatten().and_then(|l| l.parse::<usize>().ok()) {
        if len > crate::body::MAX_BODY_BYTES {
            return Err(ApiError::payload_too_large(format!("request body over {} bytes", crate::body::MAX_BODY_BYTES)));
        }
    }
    let bytes = req.bytes().await.map_err(|e| ApiError::bad_request(format!("unreadable body: {e}")))?;
    crate::body::parse(ct.as_deref(), &bytes, crate::api::NUMERIC_FORM_KEYS)
}

/// Query parameters of the request.
pub fn query(req: &Request) -> ApiResult<Vec<(String, String)>> {
    let url = req.url().map_err(|e| ApiError::bad_request(format!("bad URL: {e}")))?;
    crate::body::query_pairs(url.query().unwrap_or(""))
}

pub fn query_value(pairs: &[(String, String)], key: &str) -> Option<String> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

/// A configured integer variable, or its default.
pub fn var_u64(env: &Env, key: &str, default: u64) -> u64 {
    crate::durable::env_u64(env, key).unwrap_or(default)
}

/// The key media URLs are signed with (for the call object's flow commands).
pub fn media_signing_key(env: &Env) -> ApiResult<Vec<u8>> {
    media::signing_key(env)
}

/// 10 random bytes for TypeIDs.
pub fn random10() -> [u8; 10] {
    let mut b = [0u8; 10];
    getrandom::getrandom(&mut b).expect("crypto.getRandomValues");
    b
}
