//! Wire types of the SIP-facing endpoints (/auth, /route, /presence/event, /cac).
//! Field names are what Kamailio sends (camelCase). Every string field defaults to ""
//! so a missing field and an empty one mean the same thing.

use serde::{Deserialize, Deserializer, Serialize};

/// Accepts a port as a JSON number or a numeric string ("" / absent → None).
pub fn de_opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        Num(u64),
        Str(String),
        Null,
    }
    match Option::<N>::deserialize(d)? {
        None | Some(N::Null) => Ok(None),
        Some(N::Num(n)) => Ok(Some(n)),
        Some(N::Str(s)) if s.trim().is_empty() => Ok(None),
        Some(N::Str(s)) => s.trim().parse().map(Some).map_err(|_| serde::de::Error::custom(format!("expected a number, got \"{s}\""))),
    }
}

/// POST /auth request.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct AuthRequest {
    pub method: String,
    pub call_id: String,
    pub source_ip: String,
    #[serde(deserialize_with = "de_opt_u64")]
    pub source_port: Option<u64>,
    pub transport: String,
    pub from_user: String,
    pub from_domain: String,
    pub to_user: String,
    pub to_domain: String,
    pub ruri: String,
    pub user_agent: String,
    /// The raw Authorization / Proxy-Authorization value: the source of truth.
    pub authorization: String,
    // Parsed fields as Kamailio saw them (informational; the raw header wins).
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: String,
    pub cnonce: String,
    pub opaque: String,
    pub qop: String,
    pub nc: String,
}

/// POST /auth answer (always HTTP 200).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum AuthResponse {
    Ok(AuthOk),
    Challenge {
        code: u16,
        reason: String,
        /// One complete header line (no CRLF): the first (strongest) offer.
        header: String,
        /// Every offer, strongest first, one header line each (RFC 8760 §2.4). The SIP edge appends all.
        headers: Vec<String>,
    },
    Reject {
        code: u16,
        reason: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        ban: Option<u64>,
    },
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum AuthOk {
    #[serde(rename_all = "camelCase")]
    Device { account_id: String, device_id: String, user_id: String, extension: String, aor: String },
    #[serde(rename_all = "camelCase")]
    Carrier { trust: String, carrier_id: String },
}

/// POST /route request.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct RouteRequest {
    pub call_id: String,
    pub from: String,
    pub from_domain: String,
    pub to: String,
    pub to_domain: String,
    pub ruri: String,
    pub source_ip: String,
    #[serde(deserialize_with = "de_opt_u64")]
    pub source_port: Option<u64>,
    pub account_id: String,
    pub device_id: String,
    pub carrier_id: String,
}

/// POST /presence/event request.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum PresenceEvent {
    Register(RegisterEvent),
    Dialog(DialogEvent),
    /// An agent's own event: the same as `POST /agent`.
    Agent(AgentRequest),
}

/// `POST /agent` (and `POST /presence/event` with `"type":"agent"`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct AgentRequest {
    pub account_id: String,
    pub user_id: String,
    /// login | logout | available | pause | unpause
    pub event: String,
    /// `login`: queue ids (or names) to log in to; absent = every queue the user is a member of.
    /// A JSON array, or a comma-separated string (form bodies).
    pub queues: Option<QueueList>,
    /// `pause`: why (shown on dashboards).
    pub reason: Option<String>,
}

/// A list of queue references: `["que_…","sales"]` or `"que_…,sales"`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum QueueList {
    List(Vec<String>),
    Csv(String),
}

impl QueueList {
    pub fn items(&self) -> Vec<String> {
        match self {
            QueueList::List(v) => v.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
            QueueList::Csv(s) => s.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct RegisterEvent {
    pub account_id: String,
    pub device_id: String,
    pub aor: String,
    pub contact: String,
    #[serde(deserialize_with = "de_opt_u64")]
    pub expires: Option<u64>,
    pub source_ip: String,
    #[serde(deserialize_with = "de_opt_u64")]
    pub source_port: Option<u64>,
    pub user_agent: String,
    /// The device's user: set by the Worker from D1 (`devices.user_id`), never taken from
    /// the sender; the account object derives agents' reachability from it.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user_id: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct DialogEvent {
    pub call_id: String,
    pub account_id: String,
    /// confirmed | terminated
    pub state: String,
    /// ended | failed | local
    pub reason: String,
    pub from: String,
    pub to: String,
    pub direction: String,
    #[serde(deserialize_with = "de_opt_u64")]
    pub duration: Option<u64>,
    /// The media node reporting (edge-agent relay): a `confirmed` event pins the call's lease
    /// to it, so that node's reconciliation judges it. Empty from the SIP edge.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub node: String,
}

/// Body keys that arrive as numbers in form-encoded requests.
pub const NUMERIC_FORM_KEYS: &[&str] = &["sourcePort", "expires", "duration", "priority", "maxWaitSecs", "epoch"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_accept_numbers_and_strings() {
        let a: AuthRequest = serde_json::from_str(r#"{"method":"REGISTER","sourcePort":"5060"}"#).unwrap();
        assert_eq!(a.source_port, Some(5060));
        let a: AuthRequest = serde_json::from_str(r#"{"sourcePort":5061}"#).unwrap();
        assert_eq!(a.source_port, Some(5061));
        let a: AuthRequest = serde_json::from_str(r#"{"sourcePort":""}"#).unwrap();
        assert_eq!(a.source_port, None);
        assert!(serde_json::from_str::<AuthRequest>(r#"{"sourcePort":"x"}"#).is_err());
        assert!(serde_json::from_str::<AuthRequest>(r#"{"method":5}"#).is_err());
    }

    #[test]
    fn auth_answers_have_the_documented_shapes() {
        let ok = AuthResponse::Ok(AuthOk::Device {
            account_id: "acc_1".into(),
            device_id: "dev_1".into(),
            user_id: "usr_1".into(),
            extension: "1001".into(),
            aor: "sip:1001@acme.sip.io".into(),
        });
        assert_eq!(
            serde_json::to_value(&ok).unwrap(),
            serde_json::json!({"result":"ok","accountId":"acc_1","deviceId":"dev_1","userId":"usr_1","extension":"1001","aor":"sip:1001@acme.sip.io"})
        );
        let c = AuthResponse::Ok(AuthOk::Carrier { trust: "carrier".into(), carrier_id: "car_1".into() });
        assert_eq!(serde_json::to_value(&c).unwrap(), serde_json::json!({"result":"ok","trust":"carrier","carrierId":"car_1"}));
        let r = AuthResponse::Reject { code: 403, reason: "Forbidden".into(), ban: None };
        assert_eq!(serde_json::to_value(&r).unwrap(), serde_json::json!({"result":"reject","code":403,"reason":"Forbidden"}));
    }

    #[test]
    fn presence_events_are_tagged_by_type() {
        let e: PresenceEvent = serde_json::from_str(
            r#"{"type":"dialog","callId":"c1","accountId":"acc_1","state":"terminated","reason":"failed","duration":"0"}"#,
        )
        .unwrap();
        match e {
            PresenceEvent::Dialog(d) => {
                assert_eq!((d.state.as_str(), d.reason.as_str(), d.duration), ("terminated", "failed", Some(0)))
            }
            _ => panic!("expected dialog"),
        }
        assert!(serde_json::from_str::<PresenceEvent>(r#"{"type":"bogus"}"#).is_err());
        let e: PresenceEvent = serde_json::from_str(r#"{"type":"agent","accountId":"acc_1","userId":"usr_1","event":"login","queues":["sales"]}"#).unwrap();
        match e {
            PresenceEvent::Agent(a) => assert_eq!((a.event.as_str(), a.queues.unwrap().items()), ("login", vec!["sales".to_string()])),
            _ => panic!("expected agent"),
        }
        let a: AgentRequest = serde_json::from_str(r#"{"event":"login","queues":" que_a, sales ,"}"#).unwrap();
        assert_eq!(a.queues.unwrap().items(), ["que_a", "sales"]);
    }
}
