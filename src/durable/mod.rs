//! Durable Objects: thin adapters that load pure state, call it with the current time,
//! persist the keys it changed and keep their alarm on the next deadline.

pub mod account;
pub mod call;
pub mod security;

use worker::{js_sys, wasm_bindgen::JsValue, Date, Request, Response, Result, ScheduledTime, Storage};

/// An integer setting from the Worker's vars (None: absent or not a number).
pub fn env_u64(env: &worker::Env, key: &str) -> Option<u64> {
    env.var(key).ok().and_then(|v| v.to_string().parse().ok())
}

pub fn now_ms() -> u64 {
    Date::now().as_millis()
}

/// Point the alarm at `deadline` (absolute epoch ms), or clear it.
pub async fn set_alarm(storage: &Storage, deadline: Option<u64>) -> Result<()> {
    match deadline {
        Some(ms) => storage.set_alarm(ScheduledTime::new(js_sys::Date::new(&JsValue::from_f64(ms as f64)))).await,
        None => storage.delete_alarm().await,
    }
}

pub fn json_response<T: serde::Serialize>(v: &T) -> Result<Response> {
    Response::from_json(v)
}

pub async fn read_json<T: serde::de::DeserializeOwned>(req: &mut Request) -> Result<T> {
    req.json().await
}
