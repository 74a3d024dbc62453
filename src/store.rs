//! D1 and Durable Object access for the handlers, implementing the core's store traits.
//!
//! Hot-path caching: configuration rows (devices, domains, numbers, accounts, users, calendars,
//! trunks, media nodes, carriers, credentials) are kept in a per-isolate memory cache for
//! `CONFIG_CACHE_TTL_SECONDS` (default 30 s), negative answers included. A warm isolate answers
//! /auth and /route without touching D1; a provisioning change is seen within the TTL.
//! Live state (leases, nonce counts, failures) is never cached: it lives in Durable Objects.

use crate::api::{DialogEvent, RegisterEvent};
use crate::error::{ApiError, ApiResult};
use crate::model::{parse_algorithms, Account, CalendarRecord, CarrierAddress, DeviceAuth, MediaNode, PhoneNumber, Target, Trunk, User};
use crate::routing::calendar::Calendar;
use crate::routing::decide::{Admission, Admit, RouteStore};
use crate::routing::e164::{DialPlan, NumberFormat};
use crate::sip::auth::AuthStore;
use crate::sip::digest::Algorithm;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashMap;
use worker::{wasm_bindgen::JsValue, D1Database, Env, Method, Request, RequestInit};

thread_local! {
    static CACHE: RefCell<HashMap<String, (u64, Value)>> = RefCell::new(HashMap::new());
}

/// Most entries the cache holds before it is flushed (bounded memory under scans).
const CACHE_MAX: usize = 20_000;

#[derive(Clone)]
pub struct Store {
    pub env: Env,
    pub now_ms: u64,
    ttl_ms: u64,
}

fn d1_err(e: worker::Error) -> ApiError {
    ApiError::hidden(503, "configuration database unavailable", e)
}

fn do_err(e: worker::Error) -> ApiError {
    ApiError::hidden(503, "live state unavailable", e)
}

impl Store {
    pub fn new(env: Env, now_ms: u64) -> Store {
        let ttl_ms = crate::durable::env_u64(&env, "CONFIG_CACHE_TTL_SECONDS").unwrap_or(30) * 1000;
        Store { env, now_ms, ttl_ms }
    }

    pub fn db(&self) -> ApiResult<D1Database> {
        self.env.d1("DB").map_err(|e| ApiError::internal(format!("D1 binding DB missing: {e}")))
    }

    /// Run `load` unless a fresh cached answer exists for `key`.
    async fn cached<T, F>(&self, key: String, load: F) -> ApiResult<T>
    where
        T: Serialize + DeserializeOwned,
        F: std::future::Future<Output = ApiResult<T>>,
    {
        let now = self.now_ms;
        if self.ttl_ms > 0 {
            let hit = CACHE.with(|c| c.borrow().get(&key).filter(|(exp, _)| *exp > now).map(|(_, v)| v.clone()));
            if let Some(v) = hit {
                if let Ok(t) = serde_json::from_value(v) {
                    return Ok(t);
                }
            }
        }
        let value = load.await?;
        if self.ttl_ms > 0 {
            if let Ok(v) = serde_json::to_value(&value) {
                CACHE.with(|c| {
                    let mut c = c.borrow_mut();
                    if c.len() >= CACHE_MAX {
                        c.clear();
                    }
                    c.insert(key, (now + self.ttl_ms, v));
                });
            }
        }
        Ok(value)
    }

    async fn first<T: DeserializeOwned>(&self, sql: &str, args: &[&str]) -> ApiResult<Option<T>> {
        let binds: Vec<JsValue> = args.iter().map(|a| JsValue::from_str(a)).collect();
        self.db()?.prepare(sql).bind(&binds).map_err(d1_err)?.first::<T>(None).await.map_err(d1_err)
    }

    async fn all<T: DeserializeOwned>(&self, sql: &str, args: &[&str]) -> ApiResult<Vec<T>> {
        let binds: Vec<JsValue> = args.iter().map(|a| JsValue::from_str(a)).collect();
        self.db()?.prepare(sql).bind(&binds).map_err(d1_err)?.all().await.map_err(d1_err)?.results::<T>().map_err(d1_err)
    }

    /// Run a statement (writes).
    pub async fn exec(&self, sql: &str, args: &[JsValue]) -> ApiResult<()> {
        self.db()?.prepare(sql).bind(args).map_err(d1_err)?.run().await.map_err(d1_err)?;
        Ok(())
    }

    pub async fn credential(&self, id: &str) -> ApiResult<Option<CredentialRow>> {
        self.cached(format!("cred:{id}"), self.first("SELECT id, role, account_id, token_hash, revoked_at FROM credentials WHERE id = ?1", &[id])).await
    }

    pub async fn ping_d1(&self) -> ApiResult<()> {
        let _: Option<Value> = self.first("SELECT 1 AS ok", &[]).await?;
        Ok(())
    }

    // ---- Durable Objects ----

    /// Send one request to the named Durable Object: (status, body text). Callers map the status.
    async fn send(&self, binding: &str, name: &str, method: Method, path: &str, body: Option<&Value>) -> ApiResult<(u16, String)> {
        let ns = self.env.durable_object(binding).map_err(do_err)?;
        let stub = ns.id_from_name(name).map_err(do_err)?.get_stub().map_err(do_err)?;
        let mut init = RequestInit::new();
        init.with_method(method);
        if let Some(b) = body {
            init.with_body(Some(JsValue::from_str(&b.to_string())));
        }
        let req = Request::new_with_init(&format!("https://do{path}"), &init).map_err(do_err)?;
        let mut resp = stub.fetch_with_request(req).await.map_err(do_err)?;
        let status = resp.status_code();
        Ok((status, resp.text().await.map_err(do_err)?))
    }

    /// A Durable Object call that must answer 200 with JSON (anything else: 503).
    async fn do_call<T: DeserializeOwned>(&self, binding: &str, name: &str, method: Method, path: &str, body: Option<Value>) -> ApiResult<T> {
        match self.send(binding, name, method, path, body.as_ref()).await? {
            (200, text) => serde_json::from_str(&text).map_err(|e| ApiError::hidden(503, "live state unavailable", format!("{binding} object answered bad JSON: {e}"))),
            (status, text) => Err(ApiError::hidden(503, "live state unavailable", format!("{binding} object answered {status}: {text}"))),
        }
    }

    pub async fn account_call<T: DeserializeOwned>(&self, account_id: &str, method: Method, path: &str, body: Option<Value>) -> ApiResult<T> {
        self.do_call("ACCOUNT", account_id, method, path, body).await
    }

    pub async fn ping_do(&self) -> ApiResult<()> {
        match self.send("ACCOUNT", "__ready__", Method::Get, "/ping", None).await? {
            (200, _) => Ok(()),
            _ => Err(ApiError::unavailable("account object did not answer")),
        }
    }

    /// Append entries to a call's trace (in the call object).
    pub async fn append_trace(&self, call_id: &str, entries: Vec<crate::trace::Entry>) -> ApiResult<()> {
        let _: Value = self.do_call("CALL", call_id, Method::Post, "/trace", Some(serde_json::json!({ "callId": call_id, "entries": entries }))).await?;
        Ok(())
    }

    pub async fn trace(&self, call_id: &str) -> ApiResult<Option<crate::trace::Trace>> {
        match self.send("CALL", call_id, Method::Get, "/trace", None).await? {
            (200, text) => serde_json::from_str(&text).map(Some).map_err(|e| ApiError::hidden(503, "live state unavailable", format!("call object answered bad JSON: {e}"))),
            (404, _) => Ok(None),
            (s, _) => Err(ApiError::hidden(503, "live state unavailable", format!("call object answered {s}"))),
        }
    }

    pub async fn register(&self, ev: &RegisterEvent) -> ApiResult<Value> {
        self.account_call(&ev.account_id, Method::Post, "/register", Some(serde_json::to_value(ev).map_err(ApiError::internal)?)).await
    }

    pub async fn dialog(&self, ev: &DialogEvent) -> ApiResult<crate::presence::DialogEffect> {
        self.account_call(&ev.account_id, Method::Post, "/dialog", Some(serde_json::to_value(ev).map_err(ApiError::internal)?)).await
    }
}

/// A flow's owner and published version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlowRow {
    pub account_id: String,
    pub published_version: Option<i64>,
}

impl Store {
    pub async fn flow_row(&self, flow_id: &str) -> ApiResult<Option<FlowRow>> {
        self.cached(format!("flow:{flow_id}"), self.first("SELECT account_id, published_version FROM flows WHERE id = ?1", &[flow_id])).await
    }

    /// The stored definition text of one version (versions are immutable: cached freely).
    pub async fn flow_version_text(&self, flow_id: &str, version: u32) -> ApiResult<Option<String>> {
        #[derive(Serialize, Deserialize)]
        struct Row {
            definition: String,
        }
        let v = version.to_string();
        let r: Option<Row> = self
            .cached(format!("flowv:{flow_id}:{version}"), self.first("SELECT definition FROM flow_versions WHERE flow_id = ?1 AND version = ?2", &[flow_id, &v]))
            .await?;
        Ok(r.map(|r| r.definition))
    }

    /// Live registrations of an account (from its Durable Object).
    pub async fn registrations(&self, account_id: &str) -> ApiResult<Vec<crate::presence::Registration>> {
        #[derive(Deserialize)]
        struct View {
            registrations: Vec<crate::presence::Registration>,
        }
        let v: View = self.account_call(account_id, Method::Get, "/cac", None).await?;
        Ok(v.registrations)
    }

    /// Call a Durable Object and pass its 4xx answers through as errors (503 for anything else).
    pub async fn do_call_passthrough(&self, binding: &str, name: &str, path: &str, body: Value) -> ApiResult<Value> {
        let (status, text) = self.send(binding, name, Method::Post, path, Some(&body)).await?;
        match status {
            200 => serde_json::from_str(&text).map_err(|e| ApiError::internal(format!("{binding} object answered bad JSON: {e}"))),
            400..=499 => {
                let message = serde_json::from_str::<Value>(&text).ok().and_then(|v| v["message"].as_str().map(String::from)).unwrap_or(text);
                Err(ApiError::new(status, message))
            }
            _ => Err(ApiError::hidden(503, "live state unavailable", format!("{binding} object answered {status}: {text}"))),
        }
    }
}

impl crate::flow::run::FlowLoader for Store {
    async fn calendar(&self, account_id: &str, id: &str) -> ApiResult<Option<Calendar>> {
        let rec = RouteStore::calendar(self, id).await?;
        let owner: Option<AccountOnly> = self.cached(format!("calown:{id}"), self.first("SELECT account_id FROM calendars WHERE id = ?1", &[id])).await?;
        Ok(rec.filter(|_| owner.is_some_and(|o| o.account_id == account_id)).map(|r| r.calendar))
    }

    async fn flow_text(&self, account_id: &str, flow_id: &str, version: Option<u32>) -> ApiResult<Option<(u32, String)>> {
        let Some(row) = self.flow_row(flow_id).await?.filter(|r| r.account_id == account_id) else { return Ok(None) };
        let Some(v) = version.or_else(|| row.published_version.and_then(|v| u32::try_from(v).ok())) else { return Ok(None) };
        Ok(self.flow_version_text(flow_id, v).await?.map(|t| (v, t)))
    }

    async fn dial(&self, account_id: &str, endpoint: &crate::flow::definition::Endpoint) -> ApiResult<Option<Vec<String>>> {
        use crate::flow::definition::Endpoint;
        let Some(domain) = self.primary_domain(account_id).await? else { return Ok(None) };
        match endpoint {
            Endpoint::User(id) => {
                let Some(user) = self.user(id).await?.filter(|u| u.account_id == account_id) else { return Ok(None) };
                let aor = format!("sip:{}@{domain}", user.extension);
                let live = self.registrations(account_id).await?.iter().any(|r| r.aor == aor);
                Ok(Some(if live { vec![aor] } else { vec![] }))
            }
            Endpoint::Device(id) => {
                let Some((acc, user_id)) = self.device_owner(id).await?.filter(|(a, _)| a == account_id) else { return Ok(None) };
                let _ = acc;
                let Some(user) = self.user(&user_id).await? else { return Ok(None) };
                let live = self.registrations(account_id).await?.iter().any(|r| &r.device_id == id);
                Ok(Some(if live { vec![format!("sip:{}@{domain}", user.extension)] } else { vec![] }))
            }
            // External numbers leave through the SIP edge, which routes them like any outbound call.
            Endpoint::Number(n) => Ok(Some(vec![format!("sip:{n}@{domain}")])),
            Endpoint::Sip(uri) => Ok(Some(vec![uri.clone()])),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct AccountOnly {
    account_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CredentialRow {
    pub id: String,
    pub role: String,
    pub account_id: Option<String>,
    pub token_hash: String,
    pub revoked_at: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct AccountRow {
    id: String,
    name: String,
    status: String,
    time_zone: String,
    max_concurrent_calls: i64,
    country_code: String,
    allow_international: i64,
    allow_premium: i64,
    premium_prefixes: String,
    caller_id_name: Option<String>,
    caller_id_number: Option<String>,
    digest_algorithms: String,
}

impl AccountRow {
    fn into_account(self) -> Account {
        Account {
            digest_algorithms: parse_algorithms(&self.digest_algorithms),
            id: self.id,
            name: self.name,
            status: self.status,
            time_zone: self.time_zone,
            max_concurrent_calls: self.max_concurrent_calls.clamp(0, i64::from(u32::MAX)) as u32,
            dial_plan: DialPlan { country_code: self.country_code, premium_prefixes: serde_json::from_str(&self.premium_prefixes).unwrap_or_default() },
            allow_international: self.allow_international != 0,
            allow_premium: self.allow_premium != 0,
            caller_id_name: self.caller_id_name,
            caller_id_number: self.caller_id_number,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct DeviceRow {
    id: String,
    account_id: String,
    user_id: String,
    extension: String,
    username: String,
    realm: String,
    ha1_md5: String,
    ha1_sha256: String,
    enabled: i64,
    account_status: String,
    country_code: String,
}

#[derive(Serialize, Deserialize)]
struct NumberRow {
    id: String,
    e164: String,
    account_id: String,
    target_type: String,
    target_value: String,
    calendar_id: Option<String>,
    after_hours_type: Option<String>,
    after_hours_value: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct TrunkRow {
    id: String,
    account_id: Option<String>,
    name: String,
    priority: i64,
    host: String,
    port: i64,
    transport: String,
    number_format: String,
    prefix: String,
    caller_id_mode: String,
    caller_id_number: Option<String>,
    fr_timer_ms: i64,
    fr_inv_timer_ms: i64,
}

impl TrunkRow {
    fn into_trunk(self) -> Trunk {
        Trunk {
            id: self.id,
            account_id: self.account_id,
            name: self.name,
            priority: self.priority,
            host: self.host,
            port: self.port.clamp(1, 65535) as u16,
            transport: self.transport,
            number_format: match self.number_format.as_str() {
                "e164_no_plus" => NumberFormat::E164NoPlus,
                "national" => NumberFormat::National,
                _ => NumberFormat::E164,
            },
            prefix: self.prefix,
            caller_id_mode: self.caller_id_mode,
            caller_id_number: self.caller_id_number,
            fr_timer_ms: self.fr_timer_ms.clamp(100, 600_000) as u32,
            fr_inv_timer_ms: self.fr_inv_timer_ms.clamp(100, 600_000) as u32,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct CalendarRow {
    id: String,
    name: String,
    time_zone: String,
    weekly: String,
    holidays: String,
    overrides: String,
}

#[derive(Serialize, Deserialize)]
struct MediaNodeRow {
    id: String,
    name: String,
    sip_host: String,
    sip_port: i64,
    transport: String,
    status: String,
}

const TRUNK_COLS: &str = "id, account_id, name, priority, host, port, transport, number_format, prefix, caller_id_mode, caller_id_number, fr_timer_ms, fr_inv_timer_ms";

impl AuthStore for Store {
    async fn carrier_addresses(&self) -> ApiResult<Vec<CarrierAddress>> {
        #[derive(Serialize, Deserialize)]
        struct Row {
            carrier_id: String,
            cidr: String,
            port: Option<i64>,
        }
        let rows: Vec<Row> = self
            .cached(
                "carriers".into(),
                self.all("SELECT a.carrier_id, a.cidr, a.port FROM carrier_addresses a JOIN carriers c ON c.id = a.carrier_id WHERE c.enabled = 1 ORDER BY c.id", &[]),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| CarrierAddress { carrier_id: r.carrier_id, cidr: r.cidr, port: r.port.and_then(|p| u16::try_from(p).ok()) })
            .collect())
    }

    async fn domain_algorithms(&self, domain: &str) -> ApiResult<Option<Vec<Algorithm>>> {
        #[derive(Serialize, Deserialize)]
        struct Row {
            digest_algorithms: String,
        }
        let row: Option<Row> = self
            .cached(
                format!("domalg:{domain}"),
                self.first("SELECT a.digest_algorithms FROM sip_domains d JOIN accounts a ON a.id = d.account_id WHERE d.domain = ?1", &[domain]),
            )
            .await?;
        Ok(row.map(|r| parse_algorithms(&r.digest_algorithms)))
    }

    async fn device(&self, username: &str, realm: &str) -> ApiResult<Option<DeviceAuth>> {
        let row: Option<DeviceRow> = self
            .cached(
                format!("dev:{username}@{realm}"),
                self.first(
                    "SELECT d.id, d.account_id, d.user_id, u.extension, d.username, d.realm, d.ha1_md5, d.ha1_sha256, d.enabled, a.status AS account_status, a.country_code \
                     FROM devices d JOIN users u ON u.id = d.user_id JOIN accounts a ON a.id = d.account_id \
                     WHERE d.username = ?1 AND d.realm = ?2",
                    &[username, realm],
                ),
            )
            .await?;
        Ok(row.map(|r| DeviceAuth {
            id: r.id,
            account_id: r.account_id,
            user_id: r.user_id,
            extension: r.extension,
            username: r.username,
            realm: r.realm.to_ascii_lowercase(),
            ha1_md5: r.ha1_md5,
            ha1_sha256: r.ha1_sha256,
            enabled: r.enabled != 0,
            account_status: r.account_status,
            country_code: r.country_code,
        }))
    }

    async fn use_nonce(&self, account_id: &str, nonce: &str, nc: u32, forget_after_ms: u64) -> ApiResult<bool> {
        #[derive(Deserialize)]
        struct Fresh {
            fresh: bool,
        }
        let r: Fresh = self
            .account_call(account_id, Method::Post, "/nonce", Some(serde_json::json!({"nonce": nonce, "nc": nc, "forgetAfterMs": forget_after_ms})))
            .await?;
        Ok(r.fresh)
    }

    async fn record_failure(&self, ip: &str) -> ApiResult<Option<u64>> {
        #[derive(Deserialize)]
        struct Ban {
            ban: Option<u64>,
        }
        let r: Ban = self.do_call("SECURITY", "global", Method::Post, "/failure", Some(serde_json::json!({ "ip": ip }))).await?;
        Ok(r.ban)
    }
}

impl RouteStore for Store {
    async fn account(&self, id: &str) -> ApiResult<Option<Account>> {
        let row: Option<AccountRow> = self
            .cached(
                format!("acc:{id}"),
                self.first(
                    "SELECT id, name, status, time_zone, max_concurrent_calls, country_code, allow_international, allow_premium, premium_prefixes, caller_id_name, caller_id_number, digest_algorithms FROM accounts WHERE id = ?1",
                    &[id],
                ),
            )
            .await?;
        Ok(row.map(AccountRow::into_account))
    }

    async fn primary_domain(&self, account_id: &str) -> ApiResult<Option<String>> {
        #[derive(Serialize, Deserialize)]
        struct Row {
            domain: String,
        }
        let r: Option<Row> = self
            .cached(format!("pdom:{account_id}"), self.first("SELECT domain FROM sip_domains WHERE account_id = ?1 ORDER BY created_at, domain LIMIT 1", &[account_id]))
            .await?;
        Ok(r.map(|r| r.domain.to_ascii_lowercase()))
    }

    async fn number(&self, e164: &str) -> ApiResult<Option<PhoneNumber>> {
        let row: Option<NumberRow> = self
            .cached(
                format!("num:{e164}"),
                self.first(
                    "SELECT id, e164, account_id, target_type, target_value, calendar_id, after_hours_type, after_hours_value FROM phone_numbers WHERE e164 = ?1",
                    &[e164],
                ),
            )
            .await?;
        let Some(r) = row else { return Ok(None) };
        let target = Target::from_parts(&r.target_type, &r.target_value).ok_or_else(|| ApiError::internal(format!("number {} has a bad target", r.id)))?;
        let after_hours = match (r.after_hours_type, r.after_hours_value) {
            (Some(t), Some(v)) => Target::from_parts(&t, &v),
            _ => None,
        };
        Ok(Some(PhoneNumber { id: r.id, e164: r.e164, account_id: r.account_id, target, calendar_id: r.calendar_id, after_hours }))
    }

    async fn user(&self, id: &str) -> ApiResult<Option<User>> {
        self.cached(format!("usr:{id}"), self.first("SELECT id, account_id, extension, name, caller_id_number FROM users WHERE id = ?1", &[id])).await
    }

    async fn user_by_extension(&self, account_id: &str, extension: &str) -> ApiResult<Option<User>> {
        self.cached(
            format!("ext:{account_id}:{extension}"),
            self.first("SELECT id, account_id, extension, name, caller_id_number FROM users WHERE account_id = ?1 AND extension = ?2", &[account_id, extension]),
        )
        .await
    }

    async fn device_owner(&self, device_id: &str) -> ApiResult<Option<(String, String)>> {
        #[derive(Serialize, Deserialize)]
        struct Row {
            account_id: String,
            user_id: String,
        }
        let r: Option<Row> = self.cached(format!("devown:{device_id}"), self.first("SELECT account_id, user_id FROM devices WHERE id = ?1 AND enabled = 1", &[device_id])).await?;
        Ok(r.map(|r| (r.account_id, r.user_id)))
    }

    async fn calendar(&self, id: &str) -> ApiResult<Option<CalendarRecord>> {
        let row: Option<CalendarRow> = self
            .cached(format!("cal:{id}"), self.first("SELECT id, name, time_zone, weekly, holidays, overrides FROM calendars WHERE id = ?1", &[id]))
            .await?;
        Ok(row.map(|r| CalendarRecord {
            id: r.id,
            name: r.name,
            calendar: Calendar {
                time_zone: r.time_zone,
                weekly: serde_json::from_str(&r.weekly).unwrap_or(Value::Null),
                holidays: serde_json::from_str(&r.holidays).unwrap_or(Value::Null),
                overrides: serde_json::from_str(&r.overrides).unwrap_or(Value::Null),
            },
        }))
    }

    async fn account_trunks(&self, account_id: &str) -> ApiResult<Vec<Trunk>> {
        let rows: Vec<TrunkRow> = self
            .cached(format!("trk:{account_id}"), self.all(&format!("SELECT {TRUNK_COLS} FROM trunks WHERE account_id = ?1 AND enabled = 1"), &[account_id]))
            .await?;
        Ok(rows.into_iter().map(TrunkRow::into_trunk).collect())
    }

    async fn wholesale_trunks(&self) -> ApiResult<Vec<Trunk>> {
        let rows: Vec<TrunkRow> =
            self.cached("trk:wholesale".into(), self.all(&format!("SELECT {TRUNK_COLS} FROM trunks WHERE account_id IS NULL AND enabled = 1"), &[])).await?;
        Ok(rows.into_iter().map(TrunkRow::into_trunk).collect())
    }

    async fn media_nodes(&self) -> ApiResult<Vec<MediaNode>> {
        let rows: Vec<MediaNodeRow> = self.cached("mn".into(), self.all("SELECT id, name, sip_host, sip_port, transport, status FROM media_nodes", &[])).await?;
        Ok(rows
            .into_iter()
            .map(|r| MediaNode { id: r.id, name: r.name, sip_host: r.sip_host, sip_port: r.sip_port.clamp(1, 65535) as u16, transport: r.transport, status: r.status })
            .collect())
    }

    async fn admit(&self, a: &Admit<'_>) -> ApiResult<Admission> {
        self.account_call(
            a.account_id,
            Method::Post,
            "/admit",
            Some(serde_json::json!({"callId": a.call_id, "direction": a.direction, "from": a.from, "to": a.to, "limit": a.limit, "take": a.take})),
        )
        .await
    }
}

// ---- ACD (queues, members, roster) ----

pub use crate::model::{QueueRow, QueueSet};

/// A user's membership of a queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberRow {
    pub queue_id: String,
    pub tier: i64,
    pub position: i64,
}

impl Store {
    /// The account's queues (cached like other configuration).
    pub async fn queues(&self, account_id: &str) -> ApiResult<QueueSet> {
        let now = self.now_ms;
        let load = async {
            let rows: Vec<QueueRow> = self
                .all(
                    "SELECT id, name, strategy, tiers, offer_timeout_secs, wrapup_secs, no_answer_penalty_secs, max_no_answer, max_wait_secs, \
                     max_size, hold_music, announce_every_secs, overflow_queue_id FROM queues WHERE account_id = ?1 ORDER BY name",
                    &[account_id],
                )
                .await?;
            Ok(QueueSet { read_at_ms: now, rows })
        };
        self.cached(format!("que:{account_id}"), load).await
    }

    /// A user's queue memberships.
    pub async fn memberships(&self, user_id: &str) -> ApiResult<Vec<MemberRow>> {
        self.cached(format!("qmem:{user_id}"), self.all("SELECT queue_id, tier, position FROM queue_members WHERE user_id = ?1 ORDER BY queue_id", &[user_id]))
            .await
    }

    /// The account's users, for the presence roster.
    pub async fn roster(&self, account_id: &str) -> ApiResult<Vec<crate::acd::RosterUser>> {
        #[derive(Serialize, Deserialize)]
        struct Row {
            id: String,
            name: String,
            extension: String,
        }
        let rows: Vec<Row> = self
            .cached(format!("roster:{account_id}"), self.all("SELECT id, name, extension FROM users WHERE account_id = ?1 ORDER BY extension, id", &[account_id]))
            .await?;
        Ok(rows.into_iter().map(|r| crate::acd::RosterUser { user_id: r.id, name: r.name, extension: r.extension }).collect())
    }
}
