//! One Durable Object per call (keyed by the SIP Call-ID): the call's trace, and (with the flow
//! engine) its flow session. Storage: `trace` (the whole bounded timeline).

use super::{json_response, read_json};
use crate::trace::{Entry, Trace};
use std::cell::RefCell;
use worker::{durable_object, DurableObject, Env, Method, Request, Response, Result, State};

#[durable_object]
pub struct CallObject {
    state: State,
    #[allow(dead_code)]
    env: Env,
    trace: RefCell<Option<Trace>>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct AppendCmd {
    call_id: String,
    entries: Vec<Entry>,
}

impl CallObject {
    async fn load(&self, call_id: &str) -> Result<()> {
        if self.trace.borrow().is_none() {
            let t: Trace = self.state.storage().get("trace").await?.unwrap_or_else(|| Trace::new(call_id));
            if self.trace.borrow().is_none() {
                *self.trace.borrow_mut() = Some(t);
            }
        }
        Ok(())
    }
}

impl DurableObject for CallObject {
    fn new(state: State, env: Env) -> Self {
        Self { state, env, trace: RefCell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        match (req.method(), req.path().as_str()) {
            (Method::Post, "/trace") => {
                let c: AppendCmd = read_json(&mut req).await?;
                self.load(&c.call_id).await?;
                let snapshot = {
                    let mut g = self.trace.borrow_mut();
                    let t = g.as_mut().ok_or("trace not loaded")?;
                    for e in c.entries {
                        t.push(e);
                    }
                    t.clone()
                };
                self.state.storage().put("trace", &snapshot).await?;
                json_response(&serde_json::json!({ "entries": snapshot.entries.len() }))
            }
            (Method::Get, "/trace") => {
                let stored: Option<Trace> = self.state.storage().get("trace").await?;
                match stored {
                    Some(t) => json_response(&t),
                    None => Response::error("no trace for this call", 404),
                }
            }
            _ => Response::error("no such call-object operation", 404),
        }
    }
}
