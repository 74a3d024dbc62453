//! GET / HEAD / PUT /media/{key}: prompts, greetings, hold music and recordings on a private R2
//! bucket. Who may do what:
//! - operator: anything;
//! - media-node: only with a URL signed for that method and key (handed out by the flow engine)
//!   and only from an allow-listed address (`MEDIA_NODE_ALLOWLIST` CIDRs + media node hosts);
//! - an account-scoped credential (e.g. agent-app): GET/HEAD of its own account's keys and `system/`.
//!
//! ETag / If-None-Match, single Range requests, content types and a size cap are enforced.

use super::{json, query, query_value, Call};
use crate::error::{ApiError, ApiResult};
use crate::media::{self, Owner, RangeRequest, SigCheck};
use crate::model::Role;
use crate::net::{parse_ip, Cidr};
use crate::routing::decide::RouteStore;
use std::collections::HashMap;
use worker::{Headers, HttpMetadata, Method, Range, Response};

/// Largest upload accepted (the whole body is held in memory).
pub const MAX_PUT_BYTES: usize = media::MAX_UPLOAD_BYTES;

pub async fn handle(mut call: Call, key: &str) -> ApiResult<Response> {
    let method = call.req.method();
    let owner = media::parse_key(key).map_err(ApiError::bad_request)?;
    authorize(&call, &method, key, &owner).await?;
    let bucket = call.store.env.bucket("MEDIA").map_err(|e| ApiError::internal(format!("R2 binding MEDIA missing: {e}")))?;
    match method {
        Method::Get | Method::Head => get(&call, &bucket, key, method == Method::Head).await,
        Method::Put => put(&mut call, &bucket, key, &owner).await,
        _ => Err(ApiError::method_not_allowed("/media/{key} accepts GET, HEAD, PUT")),
    }
}

/// The HMAC key for media URLs, derived from NONCE_SECRET with a domain-separation label.
pub fn signing_key(env: &worker::Env) -> ApiResult<Vec<u8>> {
    use hmac::{Hmac, Mac};
    let secret = super::auth::nonce_secret(env)?;
    let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).map_err(ApiError::internal)?;
    m.update(b"callplane media url v1");
    Ok(m.finalize().into_bytes().to_vec())
}

async fn authorize(call: &Call, method: &Method, key: &str, owner: &Owner) -> ApiResult<()> {
    let caller = &call.caller;
    // Any account-scoped credential (operators included) stays inside its account.
    if let (Some(scope), Owner::Account(a)) = (&caller.account_id, owner) {
        if a != scope {
            return Err(ApiError::forbidden("media key belongs to another account"));
        }
    }
    match caller.role {
        Role::Operator => Ok(()),
        Role::MediaNode => {
            allowlisted(call).await?;
            let q = query(&call.req)?;
            let (Some(exp), Some(sig)) = (query_value(&q, "exp"), query_value(&q, "sig")) else {
                return Err(ApiError::forbidden("media nodes need a signed media URL (exp, sig)"));
            };
            match media::verify(&signing_key(&call.store.env)?, method.as_ref(), key, &exp, &sig, call.store.now_ms / 1000) {
                SigCheck::Valid => Ok(()),
                SigCheck::Expired => Err(ApiError::forbidden("signed media URL expired")),
                SigCheck::Invalid => Err(ApiError::forbidden("signed media URL does not match this method and key")),
            }
        }
        _ => {
            let Some(account) = &caller.account_id else {
                return Err(ApiError::forbidden(format!("role {} may not access media", caller.role.as_str())));
            };
            if !matches!(method, Method::Get | Method::Head) {
                return Err(ApiError::forbidden("only media nodes and operators may upload media"));
            }
            match owner {
                Owner::System => Ok(()),
                Owner::Account(a) if a == account => Ok(()),
                Owner::Account(_) => Err(ApiError::forbidden("media key belongs to another account")),
            }
        }
    }
}

/// The request's source must be a media node host or in MEDIA_NODE_ALLOWLIST.
async fn allowlisted(call: &Call) -> ApiResult<()> {
    let ip = call
        .req
        .headers()
        .get("cf-connecting-ip")
        .ok()
        .flatten()
        .and_then(|v| parse_ip(&v))
        .ok_or_else(|| ApiError::forbidden("source address unknown: media access refused"))?;
    let listed = call.store.env.var("MEDIA_NODE_ALLOWLIST").map(|v| v.to_string()).unwrap_or_default();
    if listed.split(',').filter_map(Cidr::parse).any(|c| c.contains(&ip)) {
        return Ok(());
    }
    let nodes = call.store.media_nodes().await?;
    if nodes.iter().filter(|n| n.status != "down").filter_map(|n| parse_ip(&n.sip_host)).any(|h| h == ip) {
        return Ok(());
    }
    Err(ApiError::forbidden(format!("{ip} is not an allow-listed media node address")))
}

async fn get(call: &Call, bucket: &worker::Bucket, key: &str, head: bool) -> ApiResult<Response> {
    let r2 = |e: worker::Error| ApiError::hidden(503, "media store unavailable", e);
    let Some(meta) = bucket.head(key).await.map_err(r2)? else {
        return Err(ApiError::not_found(format!("no media {key}")));
    };
    let etag = meta.http_etag();
    let size = meta.size();
    let headers = Headers::new();
    let set = |k: &str, v: &str| headers.set(k, v).map_err(ApiError::internal);
    set("etag", &etag)?;
    set("accept-ranges", "bytes")?;
    set("cache-control", "private, max-age=300")?;
    set("content-type", meta.http_metadata().content_type.as_deref().unwrap_or("application/octet-stream"))?;
    let if_none_match = call.req.headers().get("if-none-match").ok().flatten();
    if media::if_none_match(if_none_match.as_deref(), &etag) {
        return Ok(Response::empty().map_err(ApiError::internal)?.with_status(304).with_headers(headers));
    }
    let range_header = call.req.headers().get("range").ok().flatten();
    let (status, range) = match media::parse_range(range_header.as_deref(), size) {
        RangeRequest::Whole => (200, None),
        RangeRequest::Partial(r) => (206, Some(r)),
        RangeRequest::Unsatisfiable => {
            set("content-range", &format!("bytes */{size}"))?;
            set("content-type", "application/json")?;
            let e = ApiError::new(416, format!("range not satisfiable for {size} bytes"));
            return Ok(super::error_response(&e).map_err(ApiError::internal)?.with_headers(headers));
        }
    };
    let length = range.map_or(size, |r| r.length);
    set("content-length", &length.to_string())?;
    if let Some(r) = range {
        set("content-range", &format!("bytes {}-{}/{size}", r.offset, r.offset + r.length - 1))?;
    }
    if head {
        return Ok(Response::empty().map_err(ApiError::internal)?.with_status(status).with_headers(headers));
    }
    let mut get = bucket.get(key);
    if let Some(r) = range {
        get = get.range(Range::OffsetWithLength { offset: r.offset, length: r.length });
    }
    let obj = get.execute().await.map_err(r2)?.ok_or_else(|| ApiError::not_found(format!("no media {key}")))?;
    let body = obj.body().ok_or_else(|| ApiError::internal("R2 object without body"))?;
    let bytes = body.bytes().await.map_err(r2)?;
    Ok(Response::from_bytes(bytes).map_err(ApiError::internal)?.with_status(status).with_headers(headers))
}

async fn put(call: &mut Call, bucket: &worker::Bucket, key: &str, owner: &Owner) -> ApiResult<Response> {
    let h = call.req.headers();
    let content_type = media::content_type(h.get("content-type").ok().flatten().as_deref()).map_err(ApiError::unsupported_media_type)?;
    if let Some(len) = h.get("content-length").ok().flatten().and_then(|l| l.parse::<usize>().ok()) {
        if len > MAX_PUT_BYTES {
            return Err(ApiError::payload_too_large(format!("media over {MAX_PUT_BYTES} bytes")));
        }
    }
    let call_id = h.get("x-call-id").ok().flatten().unwrap_or_default();
    let duration = h.get("x-duration-seconds").ok().flatten().unwrap_or_default();
    let duration_ok = duration.is_empty() || duration.parse::<f64>().is_ok_and(|d| d.is_finite() && d >= 0.0);
    if call_id.len() > super::route::MAX_CALL_ID || duration.len() > 12 || !duration_ok {
        return Err(ApiError::bad_request("X-Call-Id or X-Duration-Seconds is malformed"));
    }
    let bytes = call.req.bytes().await.map_err(|e| ApiError::bad_request(format!("unreadable body: {e}")))?;
    if bytes.is_empty() {
        return Err(ApiError::bad_request("empty media body"));
    }
    if bytes.len() > MAX_PUT_BYTES {
        return Err(ApiError::payload_too_large(format!("media over {MAX_PUT_BYTES} bytes")));
    }
    let size = bytes.len();
    let mut meta = HashMap::new();
    meta.insert("uploaded_by".to_string(), call.caller.credential_id.clone());
    if let Owner::Account(a) = owner {
        meta.insert("account_id".to_string(), a.clone());
    }
    if !call_id.is_empty() {
        meta.insert("call_id".to_string(), call_id.clone());
    }
    if !duration.is_empty() {
        meta.insert("duration_s".to_string(), duration.clone());
    }
    let obj = bucket
        .put(key, bytes)
        .http_metadata(HttpMetadata { content_type: Some(content_type.clone()), ..Default::default() })
        .custom_metadata(meta)
        .execute()
        .await
        .map_err(|e| ApiError::hidden(503, "media store unavailable", e))?
        .ok_or_else(|| ApiError::unavailable("media store refused the upload"))?;
    if !call_id.is_empty() {
        let account = match owner {
            Owner::Account(a) => Some(a.clone()),
            Owner::System => None,
        };
        call.trace_later(
            &call_id,
            vec![crate::trace::Entry {
                at_ms: call.store.now_ms,
                kind: "media".into(),
                summary: format!(
                    "recording stored: {key} ({size} bytes{})",
                    if duration.is_empty() { String::new() } else { format!(", {duration} s") }
                ),
                detail: serde_json::json!({ "accountId": account, "key": key, "size": size, "durationSeconds": duration, "contentType": content_type, "etag": obj.http_etag() }),
                latency_ms: None,
            }],
        );
    }
    let resp = json(&serde_json::json!({
        "status": "success",
        "key": key,
        "etag": obj.http_etag(),
        "size": size,
        "contentType": content_type,
        "callId": if call_id.is_empty() { None } else { Some(call_id) },
    }))?;
    Ok(resp.with_status(201))
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignBody {
    key: String,
    #[serde(default = "default_method")]
    method: String,
    #[serde(default = "default_ttl", alias = "ttl_seconds")]
    ttl_seconds: u64,
}
fn default_method() -> String {
    "GET".into()
}
fn default_ttl() -> u64 {
    300
}

/// POST /admin/media/sign (operator): mint a signed media URL, e.g. for a support tool.
pub async fn sign(mut call: Call) -> ApiResult<Response> {
    let b: SignBody = super::body(&mut call.req).await?;
    if let (Some(scope), Ok(Owner::Account(a))) = (&call.caller.account_id, media::parse_key(&b.key)) {
        if &a != scope {
            return Err(ApiError::forbidden("media key belongs to another account"));
        }
    }
    media::parse_key(&b.key).map_err(ApiError::bad_request)?;
    let method = b.method.to_ascii_uppercase();
    if !matches!(method.as_str(), "GET" | "PUT") {
        return Err(ApiError::bad_request("method must be GET or PUT"));
    }
    if b.ttl_seconds == 0 || b.ttl_seconds > 86_400 {
        return Err(ApiError::bad_request("ttlSeconds must be 1..=86400"));
    }
    let exp = call.store.now_ms / 1000 + b.ttl_seconds;
    let url = media::signed_path(&signing_key(&call.store.env)?, &method, &b.key, exp);
    json(&serde_json::json!({ "status": "success", "url": url, "method": method, "expires": exp }))
}
