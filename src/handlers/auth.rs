//! POST /auth: SIP digest for Kamailio. HTTP 200 always for a decision; 4xx for a malformed request.

use super::{body, json, Call};
use crate::api::AuthRequest;
use crate::error::{ApiError, ApiResult};
use crate::sip::auth::{authenticate, AuthContext};
use worker::{Env, Response};

/// The platform secret (>= 16 chars): digest nonces, and (derived) media URL signatures.
pub fn nonce_secret(env: &Env) -> ApiResult<String> {
    env.secret("NONCE_SECRET")
        .map(|s| s.to_string())
        .or_else(|_| env.var("NONCE_SECRET").map(|s| s.to_string()))
        .ok()
        .filter(|s| s.len() >= 16)
        .ok_or_else(|| ApiError::internal("NONCE_SECRET is not configured (at least 16 characters)"))
}

pub async fn handle(mut call: Call) -> ApiResult<Response> {
    let req: AuthRequest = body(&mut call.req).await?;
    let secret = nonce_secret(&call.store.env)?;
    let ctx = AuthContext {
        secret: secret.as_bytes(),
        now_ms: call.store.now_ms,
        nonce_ttl_ms: super::var_u64(&call.store.env, "NONCE_TTL_SECONDS", 300) * 1000,
        salt: {
            let r = super::random10();
            [r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]]
        },
    };
    let out = authenticate(&req, &call.store, &ctx).await?;
    // An account-scoped credential only learns about its own account's devices.
    if call.caller.account_id.is_some() {
        match &out.response {
            crate::api::AuthResponse::Ok(crate::api::AuthOk::Device { account_id, .. }) => call.caller.check_account(account_id)?,
            crate::api::AuthResponse::Ok(crate::api::AuthOk::Carrier { .. }) => {
                return Err(ApiError::forbidden("carrier trust needs a platform-wide credential"));
            }
            _ => {}
        }
    }
    worker::console_log!("auth {} {} from {}: {}", req.method, req.call_id, req.source_ip, out.rule);
    if !req.method.eq_ignore_ascii_case("REGISTER") {
        let detail = serde_json::to_value(&out.response).unwrap_or_default();
        let verdict = match &out.response {
            crate::api::AuthResponse::Ok(_) => "ok".to_string(),
            crate::api::AuthResponse::Challenge { code, .. } => format!("challenge {code}"),
            crate::api::AuthResponse::Reject { code, reason, .. } => format!("reject {code} {reason}"),
        };
        call.trace_later(
            &req.call_id,
            vec![crate::trace::Entry {
                at_ms: ctx.now_ms,
                kind: "auth".into(),
                summary: format!("{} from {}:{} → {verdict}: {}", req.method, req.source_ip, req.source_port.unwrap_or(0), out.rule),
                detail,
                latency_ms: None,
            }],
        );
    }
    json(&out.response)
}
