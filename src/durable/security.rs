//! The platform-wide security Durable Object (one instance, named "global"): failed-digest
//! counting per source IP and the ban decisions that follow.

use super::{json_response, now_ms, read_json};
use crate::security::failures::{BanPolicy, FailureTracker};
use serde::Deserialize;
use std::cell::RefCell;
use worker::{durable_object, DurableObject, Env, Method, Request, Response, Result, State};

#[durable_object]
pub struct SecurityObject {
    state: State,
    env: Env,
    tracker: RefCell<Option<FailureTracker>>,
}

#[derive(Deserialize)]
struct FailureCmd {
    ip: String,
}

impl SecurityObject {
    fn policy(&self) -> BanPolicy {
        let var = |k: &str| super::env_u64(&self.env, k);
        let d = BanPolicy::default();
        BanPolicy {
            threshold: var("BAN_THRESHOLD").map_or(d.threshold, |v| v as u32),
            window_ms: var("BAN_WINDOW_SECONDS").map_or(d.window_ms, |v| v * 1000),
            base_ban_secs: var("BAN_SECONDS").map_or(d.base_ban_secs, |v| v),
            multiplier: d.multiplier,
            max_ban_secs: var("BAN_MAX_SECONDS").map_or(d.max_ban_secs, |v| v),
            remember_ms: d.remember_ms,
        }
    }

    async fn load(&self) -> Result<()> {
        if self.tracker.borrow().is_none() {
            let t: FailureTracker = self.state.storage().get("tracker").await?.unwrap_or_default();
            if self.tracker.borrow().is_none() {
                *self.tracker.borrow_mut() = Some(t);
            }
        }
        Ok(())
    }
}

impl DurableObject for SecurityObject {
    fn new(state: State, env: Env) -> Self {
        Self { state, env, tracker: RefCell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        self.load().await?;
        let now = now_ms();
        let policy = self.policy();
        match (req.method(), req.path().as_str()) {
            (Method::Post, "/failure") => {
                let c: FailureCmd = read_json(&mut req).await?;
                let (ban, snapshot) = {
                    let mut g = self.tracker.borrow_mut();
                    let t = g.as_mut().ok_or("tracker not loaded")?;
                    t.prune(now, &policy);
                    (t.record_failure(&c.ip, now, &policy), t.clone())
                };
                self.state.storage().put("tracker", &snapshot).await?;
                json_response(&serde_json::json!({ "ban": ban }))
            }
            (Method::Get, "/ping") => Response::ok("pong"),
            _ => Response::error("no such security-object operation", 404),
        }
    }
}
