//! GET /ready: D1 and a Durable Object both answer.

use crate::error::ApiResult;
use crate::store::Store;
use worker::Response;

pub async fn ready(store: &Store) -> ApiResult<Response> {
    store.ping_d1().await?;
    store.ping_do().await?;
    super::json(&serde_json::json!({ "status": "ready", "d1": "ok", "durableObjects": "ok" }))
}
