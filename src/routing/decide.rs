//! The /route decision. Inbound (a carrier, or a device dialing one of our numbers) → the
//! number's target after business hours and CAC; internal (device → extension) → proxy to the
//! AOR; outbound (device → PSTN) → dialing policy, CAC, then trunks by priority.
//! Storage and the concurrency slot sit behind [`RouteStore`]; time is an argument.

use crate::api::RouteRequest;
use crate::cac::lease::TakeOutcome;
use crate::error::{ApiError, ApiResult};
use crate::model::{Account, PhoneNumber, Target, Trunk};
use crate::routing::calendar::{self, CalendarState, Evaluation};
use crate::routing::e164::{self, DialPlan, NumberClass, NumberFormat};
use crate::rtjson::{self, FromHeader, Headers, Route};
use crate::typeid;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What /route needs from configuration and from the account's live state.
#[allow(async_fn_in_trait)]
pub trait RouteStore {
    async fn account(&self, id: &str) -> ApiResult<Option<Account>>;
    /// The account's primary SIP domain (for AORs of calls that arrive from carriers).
    async fn primary_domain(&self, account_id: &str) -> ApiResult<Option<String>>;
    async fn number(&self, e164: &str) -> ApiResult<Option<PhoneNumber>>;
    async fn user(&self, id: &str) -> ApiResult<Option<crate::model::User>>;
    async fn user_by_extension(&self, account_id: &str, extension: &str) -> ApiResult<Option<crate::model::User>>;
    /// (account id, user id) of an enabled device.
    async fn device_owner(&self, device_id: &str) -> ApiResult<Option<(String, String)>>;
    async fn calendar(&self, id: &str) -> ApiResult<Option<crate::model::CalendarRecord>>;
    /// The account's enabled trunks (any order).
    async fn account_trunks(&self, account_id: &str) -> ApiResult<Vec<Trunk>>;
    /// Enabled wholesale default trunks (any order).
    async fn wholesale_trunks(&self) -> ApiResult<Vec<Trunk>>;
    async fn media_nodes(&self) -> ApiResult<Vec<crate::model::MediaNode>>;
    /// Take a concurrency slot for the call (or, when `take` is false, only report what would happen).
    async fn admit(&self, req: &Admit<'_>) -> ApiResult<Admission>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admit<'a> {
    pub account_id: &'a str,
    pub call_id: &'a str,
    pub direction: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    pub limit: u32,
    pub take: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Admission {
    pub outcome: TakeOutcome,
    /// Active leases after the decision.
    pub active: usize,
    pub limit: u32,
    /// false when only inspected (`?explain=1`).
    pub taken: bool,
}

/// Why the route came out as it did (`?explain=1`, traces).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explain {
    pub direction: String,
    pub rule: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number_class: Option<NumberClass>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calendar: Option<Evaluation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cac: Option<Admission>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteOutcome {
    pub rtjson: Value,
    pub explain: Explain,
}

pub struct RouteContext {
    pub now_ms: u64,
    /// false for `?explain=1`: decide without taking a slot.
    pub take_slot: bool,
}

/// Plan used to read numbers arriving from carriers before the account is known.
fn carrier_plan() -> DialPlan {
    DialPlan { country_code: "1".into(), premium_prefixes: vec![] }
}

pub async fn route<S: RouteStore>(req: &RouteRequest, store: &S, ctx: &RouteContext) -> ApiResult<RouteOutcome> {
    if req.call_id.trim().is_empty() {
        return Err(ApiError::bad_request("callId is required"));
    }
    let dialed = dialed_user(req);
    if dialed.is_empty() {
        return Err(ApiError::bad_request("ruri or to is required"));
    }
    let mut ex = Explain::default();
    if !req.carrier_id.is_empty() {
        if !req.account_id.is_empty() {
            return Err(ApiError::bad_request("send either carrierId or accountId/deviceId, not both"));
        }
        if !typeid::is_valid(&req.carrier_id, "car") {
            return Err(ApiError::bad_request("carrierId is not a carrier id"));
        }
        ex.direction = "inbound".into();
        let Some(number) = find_number(store, &dialed, &carrier_plan()).await? else {
            ex.rule = format!("no number matches \"{dialed}\"");
            return Ok(done(rtjson::reject(404, "Not Found"), ex));
        };
        return inbound(req, store, ctx, number, ex).await;
    }
    if req.account_id.is_empty() || req.device_id.is_empty() {
        return Err(ApiError::bad_request("accountId and deviceId (from /auth) or carrierId are required"));
    }
    if !typeid::is_valid(&req.account_id, "acc") || !typeid::is_valid(&req.device_id, "dev") {
        return Err(ApiError::bad_request("accountId/deviceId are not account/device ids"));
    }
    let Some(account) = store.account(&req.account_id).await? else {
        return Err(ApiError::not_found(format!("account {} not found", req.account_id)));
    };
    ex.account_id = Some(account.id.clone());
    let dialed_emergency = e164::is_emergency(&dialed, &account.dial_plan);
    // A suspended account keeps emergency calling; anything else from a non-active account is refused.
    if !account.is_active() && !(account.status == "suspended" && dialed_emergency) {
        ex.direction = "outbound".into();
        ex.rule = format!("caller's account is {}", account.status);
        return Ok(done(rtjson::reject(403, "Forbidden"), ex));
    }
    // The device must belong to the account /auth named: it decides the caller's identity.
    let caller_user = match store.device_owner(&req.device_id).await? {
        Some((acc, user_id)) if acc == account.id => store.user(&user_id).await?,
        _ => {
            ex.direction = "outbound".into();
            ex.rule = format!("device {} does not belong to account {}", req.device_id, account.id);
            return Ok(done(rtjson::reject(403, "Forbidden"), ex));
        }
    };
    // From here on the caller is who the device is, whatever its From header says (the lease, the
    // flow's `caller` variable, the trace).
    let canonical;
    let req = match &caller_user {
        Some(u) => {
            canonical = RouteRequest { from: format!("sip:{}@{}", u.extension, req.from_domain.trim().to_ascii_lowercase()), ..req.clone() };
            &canonical
        }
        None => req,
    };
    // Internal: an extension of the caller's own account.
    if let Some(user) = store.user_by_extension(&account.id, &dialed).await? {
        ex.direction = "internal".into();
        ex.target = Some(format!("user {}", user.id));
        let aor = format!("sip:{}@{}", user.extension, req.from_domain.trim().to_ascii_lowercase());
        ex.rule = format!("extension {} of account {}", user.extension, account.id);
        return Ok(done(rtjson::proxy(&aor, &account.id, "internal"), ex));
    }
    ex.direction = "outbound".into();
    let (number, class) = if dialed_emergency {
        (dialed.clone(), NumberClass::Emergency)
    } else {
        let Some(n) = e164::normalize(&dialed, &account.dial_plan) else {
            ex.rule = format!("\"{dialed}\" is neither an extension nor a phone number");
            return Ok(done(rtjson::reject(404, "Not Found"), ex));
        };
        // On-net: one of our own numbers is routed like an inbound call, without a trunk.
        if let Some(num) = store.number(&n).await? {
            ex.direction = "inbound".into();
            return inbound(req, store, ctx, num, ex).await;
        }
        let class = e164::classify(&n, &account.dial_plan);
        (n, class)
    };
    ex.number = Some(number.clone());
    ex.number_class = Some(class);
    if let Some(why) = policy_block(&account, class) {
        ex.policy = Some(why.into());
        ex.rule = format!("dialing policy: {why}");
        return Ok(done(rtjson::reject(403, "Forbidden - Dialing Policy"), ex));
    }
    ex.policy = Some(format!("{class:?} allowed").to_ascii_lowercase());
    let caller_cid = caller_id_for_device(&account, caller_user.as_ref());
    outbound_to(req, store, ctx, &account, &number, class, caller_cid, ex).await
}

/// Why the account's dialing policy refuses this class of number, if it does.
fn policy_block(account: &Account, class: NumberClass) -> Option<&'static str> {
    match class {
        NumberClass::International if !account.allow_international => Some("international calls are not allowed for this account"),
        NumberClass::Premium if !account.allow_premium => Some("premium-rate numbers are not allowed for this account"),
        _ => None,
    }
}

/// The number a call is for: the request-URI user, else the To user.
fn dialed_user(req: &RouteRequest) -> String {
    let src = if req.ruri.trim().is_empty() { &req.to } else { &req.ruri };
    e164::user_part(src).trim().to_string()
}

async fn find_number<S: RouteStore>(store: &S, dialed: &str, plan: &DialPlan) -> ApiResult<Option<PhoneNumber>> {
    let digits: String = dialed.chars().filter(|c| c.is_ascii_digit()).collect();
    let mut candidates: Vec<String> = Vec::new();
    if let Some(n) = e164::normalize(dialed, plan) {
        candidates.push(n);
    }
    if !digits.is_empty() && !dialed.starts_with('+') {
        candidates.push(format!("+{digits}"));
    }
    for c in candidates {
        if let Some(n) = store.number(&c).await? {
            return Ok(Some(n));
        }
    }
    Ok(None)
}

async fn inbound<S: RouteStore>(req: &RouteRequest, store: &S, ctx: &RouteContext, number: PhoneNumber, mut ex: Explain) -> ApiResult<RouteOutcome> {
    ex.number = Some(number.e164.clone());
    ex.account_id = Some(number.account_id.clone());
    let Some(account) = store.account(&number.account_id).await? else {
        ex.rule = format!("number {} belongs to missing account {}", number.e164, number.account_id);
        return Ok(done(rtjson::reject(404, "Not Found"), ex));
    };
    if !account.is_active() {
        ex.rule = format!("number {} belongs to a {} account", number.e164, account.status);
        return Ok(done(rtjson::reject(403, "Forbidden"), ex));
    }
    // Business hours / holidays / overrides.
    let mut target = number.target.clone();
    let mut why = format!("number {} → {}", number.e164, target.describe());
    if let Some(cal_id) = &number.calendar_id {
        match store.calendar(cal_id).await? {
            Some(rec) => match calendar::evaluate(&rec.calendar, ctx.now_ms as i64) {
                Ok(eval) => {
                    if eval.state != CalendarState::Open {
                        if let Some(after) = &number.after_hours {
                            target = after.clone();
                            why = format!("number {} after hours ({}) → {}", number.e164, eval.rule, target.describe());
                        }
                    } else {
                        why = format!("number {} open ({}) → {}", number.e164, eval.rule, target.describe());
                    }
                    ex.calendar = Some(eval);
                }
                Err(e) => why = format!("{why} (calendar {cal_id} unusable: {}; main target used)", e.0),
            },
            None => why = format!("{why} (calendar {cal_id} missing; main target used)"),
        }
    }
    ex.target = Some(target.describe());
    ex.rule = why;
    let from_user = e164::user_part(&req.from).to_string();
    match target {
        Target::Flow(flow_id) => {
            let nodes = media_route_order(store.media_nodes().await?, &req.call_id);
            if nodes.is_empty() {
                ex.rule = format!("{}; no active media node", ex.rule);
                return Ok(done(rtjson::reject(503, "Service Unavailable - No Media Node"), ex));
            }
            if let Some(r) = admit(store, ctx, &account, req, "inbound", &number.e164, &mut ex).await? {
                return Ok(done(r, ex));
            }
            let extra = rtjson::extra_headers(&[("X-Account-Id", &account.id), ("X-Flow-Id", &flow_id)]);
            let routes: Vec<Route> = nodes
                .iter()
                .map(|n| Route {
                    uri: rtjson::sip_uri(&number.e164, &n.sip_host, n.sip_port, &n.transport),
                    dst_uri: rtjson::sip_hostport(&n.sip_host, n.sip_port, &n.transport),
                    fr_timer: 3000,
                    fr_inv_timer: 30000,
                    headers: Headers { from: None, extra: Some(extra.clone()) },
                })
                .collect();
            let mut top = Map::new();
            top.insert("account_id".into(), Value::from(account.id.clone()));
            top.insert("direction".into(), Value::from("inbound"));
            top.insert("flow_id".into(), Value::from(flow_id));
            top.insert(
                "vars".into(),
                serde_json::json!({
                    "caller": from_user,
                    "called": number.e164,
                    "number_id": number.id,
                    "calendar": ex.calendar.as_ref().map(|c| c.state),
                }),
            );
            Ok(done(rtjson::serial("flow", &routes, top), ex))
        }
        Target::User(user_id) => {
            let user = store.user(&user_id).await?.filter(|u| u.account_id == account.id);
            let domain = store.primary_domain(&account.id).await?;
            let (Some(user), Some(domain)) = (user, domain) else {
                ex.rule = format!("{}; user {user_id} or the account's domain is missing", ex.rule);
                return Ok(done(rtjson::reject(404, "Not Found"), ex));
            };
            if let Some(r) = admit(store, ctx, &account, req, "inbound", &number.e164, &mut ex).await? {
                return Ok(done(r, ex));
            }
            Ok(done(rtjson::proxy(&format!("sip:{}@{}", user.extension, domain), &account.id, "inbound"), ex))
        }
        Target::External(dest) => {
            // Forwarding keeps the original caller's number, and obeys the same dialing policy.
            let class = e164::classify(&dest, &account.dial_plan);
            if let Some(why) = policy_block(&account, class) {
                ex.policy = Some(why.into());
                ex.rule = format!("{}; forward refused by dialing policy: {why}", ex.rule);
                return Ok(done(rtjson::reject(403, "Forbidden - Dialing Policy"), ex));
            }
            outbound_to(req, store, ctx, &account, &dest, class, CallerId::Passthrough, ex).await
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum CallerId {
    /// Leave the caller's From alone.
    Passthrough,
    Number { display: String, number: String },
}

/// The caller id of a device's call: its user's number, else the account default — never the
/// From header, which the caller controls.
fn caller_id_for_device(account: &Account, user: Option<&crate::model::User>) -> CallerId {
    let number = user.and_then(|u| u.caller_id_number.clone()).or_else(|| account.caller_id_number.clone());
    match number {
        Some(number) => CallerId::Number { display: account.caller_id_name.clone().unwrap_or_default(), number },
        None => CallerId::Passthrough,
    }
}

#[allow(clippy::too_many_arguments)]
async fn outbound_to<S: RouteStore>(
    req: &RouteRequest,
    store: &S,
    ctx: &RouteContext,
    account: &Account,
    number: &str,
    class: NumberClass,
    caller: CallerId,
    mut ex: Explain,
) -> ApiResult<RouteOutcome> {
    let mut trunks = store.account_trunks(&account.id).await?;
    let mut source = "account trunks";
    if trunks.is_empty() {
        trunks = store.wholesale_trunks().await?;
        source = "wholesale default trunks";
    }
    trunks.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.id.cmp(&b.id)));
    if trunks.is_empty() {
        ex.rule = format!("{}; no trunk available", non_empty(&ex.rule, "outbound"));
        return Ok(done(rtjson::reject(503, "Service Unavailable - No Route"), ex));
    }
    if ex.rule.is_empty() {
        ex.rule = format!("outbound {number} ({class:?})").to_ascii_lowercase();
    }
    let limit = if class == NumberClass::Emergency { u32::MAX } else { account.max_concurrent_calls };
    let acc = Account { max_concurrent_calls: limit, ..account.clone() };
    let direction = if ex.direction.is_empty() { "outbound" } else { ex.direction.as_str() }.to_string();
    if let Some(r) = admit(store, ctx, &acc, req, &direction, number, &mut ex).await? {
        return Ok(done(r, ex));
    }
    let from_host = if req.from_domain.trim().is_empty() { store.primary_domain(&account.id).await?.unwrap_or_default() } else { req.from_domain.trim().to_ascii_lowercase() };
    let routes: Vec<Route> = trunks
        .iter()
        .map(|t| {
            let dialed = if class == NumberClass::Emergency { number.to_string() } else { format!("{}{}", t.prefix, e164::format_for_trunk(number, t.number_format, &account.dial_plan)) };
            let cid = match t.caller_id_mode.as_str() {
                "fixed" => t.caller_id_number.clone().map(|n| (account.caller_id_name.clone().unwrap_or_default(), n)),
                "passthrough" => None,
                _ => match &caller {
                    CallerId::Number { display, number } => Some((display.clone(), number.clone())),
                    CallerId::Passthrough => None,
                },
            };
            let from = cid.map(|(display, n)| FromHeader {
                display,
                uri: format!("sip:{}@{}", cid_user(&n, t.number_format, &account.dial_plan), from_host),
            });
            Route {
                uri: rtjson::sip_uri(&dialed, &t.host, t.port, &t.transport),
                dst_uri: rtjson::sip_hostport(&t.host, t.port, &t.transport),
                fr_timer: t.fr_timer_ms,
                fr_inv_timer: t.fr_inv_timer_ms,
                headers: Headers { from, extra: None },
            }
        })
        .collect();
    ex.rule = format!("{}; via {} ({})", ex.rule, source, trunks.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(" → "));
    let mut top = Map::new();
    top.insert("account_id".into(), Value::from(account.id.clone()));
    top.insert("direction".into(), Value::from(direction));
    Ok(done(rtjson::serial("outbound", &routes, top), ex))
}

fn cid_user(number: &str, format: NumberFormat, plan: &DialPlan) -> String {
    if number.starts_with('+') {
        e164::format_for_trunk(number, format, plan)
    } else {
        number.to_string()
    }
}

fn non_empty<'a>(s: &'a str, fallback: &'a str) -> &'a str {
    if s.is_empty() {
        fallback
    } else {
        s
    }
}

/// Take the slot; Some(reject) when the account is at its limit.
async fn admit<S: RouteStore>(
    store: &S,
    ctx: &RouteContext,
    account: &Account,
    req: &RouteRequest,
    direction: &str,
    to: &str,
    ex: &mut Explain,
) -> ApiResult<Option<Value>> {
    let from = e164::user_part(&req.from).to_string();
    let a = store
        .admit(&Admit { account_id: &account.id, call_id: &req.call_id, direction, from: &from, to, limit: account.max_concurrent_calls, take: ctx.take_slot })
        .await?;
    let at_limit = a.outcome == TakeOutcome::AtLimit;
    ex.cac = Some(a);
    if at_limit {
        ex.rule = format!("{}; account {} at its concurrent-call limit", ex.rule, account.id);
        return Ok(Some(rtjson::reject(486, "Busy Here - Account Call Limit")));
    }
    Ok(None)
}

/// Active media nodes, starting at a node chosen by the Call-ID (spreads load, stable per call),
/// the others following as failover.
pub fn media_route_order(mut nodes: Vec<crate::model::MediaNode>, call_id: &str) -> Vec<crate::model::MediaNode> {
    nodes.retain(|n| n.status == "active");
    nodes.sort_by(|a, b| a.id.cmp(&b.id));
    if nodes.is_empty() {
        return nodes;
    }
    let h = call_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let start = (h % nodes.len() as u64) as usize;
    nodes.rotate_left(start);
    nodes
}

fn done(rtjson: Value, explain: Explain) -> RouteOutcome {
    RouteOutcome { rtjson, explain }
}

#[cfg(test)]
mod tests;
