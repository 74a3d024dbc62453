//! Configuration records as the core sees them (loaded from D1 by `store`, built by hand in tests).

use crate::routing::calendar::Calendar;
use crate::routing::e164::{DialPlan, NumberFormat};
use crate::sip::digest::Algorithm;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub name: String,
    /// active | suspended | disabled
    pub status: String,
    pub time_zone: String,
    pub max_concurrent_calls: u32,
    pub dial_plan: DialPlan,
    pub allow_international: bool,
    pub allow_premium: bool,
    pub caller_id_name: Option<String>,
    pub caller_id_number: Option<String>,
    #[serde(skip, default = "default_algorithms")]
    pub digest_algorithms: Vec<Algorithm>,
}

impl Account {
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }
}

pub fn default_algorithms() -> Vec<Algorithm> {
    vec![Algorithm::Sha256, Algorithm::Md5]
}

/// "SHA-256,MD5" → [Sha256, Md5]; unknown tokens are ignored; empty → the default.
pub fn parse_algorithms(s: &str) -> Vec<Algorithm> {
    let mut v: Vec<Algorithm> = Vec::new();
    for a in s.split(',').filter_map(|t| Algorithm::parse(t.trim())) {
        if !v.contains(&a) {
            v.push(a);
        }
    }
    if v.is_empty() {
        default_algorithms()
    } else {
        v
    }
}

/// A device with everything /auth needs (joined with its user and account).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceAuth {
    pub id: String,
    pub account_id: String,
    pub user_id: String,
    pub extension: String,
    pub username: String,
    pub realm: String,
    pub ha1_md5: String,
    pub ha1_sha256: String,
    pub enabled: bool,
    pub account_status: String,
    /// The account's country calling code (emergency numbers stay reachable when suspended).
    #[serde(default)]
    pub country_code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub account_id: String,
    pub extension: String,
    pub name: String,
    pub caller_id_number: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarrierAddress {
    pub carrier_id: String,
    pub cidr: String,
    pub port: Option<u16>,
}

/// Where a number (or its after-hours branch) sends a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum Target {
    Flow(String),
    User(String),
    External(String),
}

impl Target {
    pub fn from_parts(kind: &str, value: &str) -> Option<Target> {
        match kind {
            "flow" => Some(Target::Flow(value.to_string())),
            "user" => Some(Target::User(value.to_string())),
            "external" => Some(Target::External(value.to_string())),
            _ => None,
        }
    }
    pub fn describe(&self) -> String {
        match self {
            Target::Flow(id) => format!("flow {id}"),
            Target::User(id) => format!("user {id}"),
            Target::External(n) => format!("external {n}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneNumber {
    pub id: String,
    pub e164: String,
    pub account_id: String,
    pub target: Target,
    pub calendar_id: Option<String>,
    pub after_hours: Option<Target>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarRecord {
    pub id: String,
    pub name: String,
    pub calendar: Calendar,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trunk {
    pub id: String,
    /// None = wholesale default
    pub account_id: Option<String>,
    pub name: String,
    pub priority: i64,
    pub host: String,
    pub port: u16,
    pub transport: String,
    pub number_format: NumberFormat,
    pub prefix: String,
    /// account | fixed | passthrough
    pub caller_id_mode: String,
    pub caller_id_number: Option<String>,
    pub fr_timer_ms: u32,
    pub fr_inv_timer_ms: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaNode {
    pub id: String,
    pub name: String,
    pub sip_host: String,
    pub sip_port: u16,
    pub transport: String,
    /// active | draining | down
    pub status: String,
}

/// Roles a service credential can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    SipEdge,
    MediaNode,
    AgentApp,
    Operator,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "sip-edge" => Some(Role::SipEdge),
            "media-node" => Some(Role::MediaNode),
            "agent-app" => Some(Role::AgentApp),
            "operator" => Some(Role::Operator),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::SipEdge => "sip-edge",
            Role::MediaNode => "media-node",
            Role::AgentApp => "agent-app",
            Role::Operator => "operator",
        }
    }
}

/// A queue row as D1 holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRow {
    pub id: String,
    pub name: String,
    pub strategy: String,
    pub tiers: String,
    pub offer_timeout_secs: i64,
    pub wrapup_secs: i64,
    pub no_answer_penalty_secs: i64,
    pub max_no_answer: i64,
    pub max_wait_secs: Option<i64>,
    pub max_size: Option<i64>,
    pub hold_music: Option<String>,
    pub announce_every_secs: Option<i64>,
    pub overflow_queue_id: Option<String>,
}

impl QueueRow {
    /// The core's configuration of this queue (keyed by the queue id), or why it is unusable.
    pub fn to_config(&self) -> Result<crate::acd::QueueConfig, String> {
        use crate::acd::{QueueConfig, Strategy, TierRule};
        let u32_of = |v: i64, what: &str| u32::try_from(v).map_err(|_| format!("queue {}: bad {what}", self.id));
        let c = QueueConfig {
            id: self.id.clone(),
            strategy: Strategy::parse(&self.strategy).ok_or_else(|| format!("queue {}: unknown strategy {}", self.id, self.strategy))?,
            tiers: serde_json::from_str::<Vec<TierRule>>(&self.tiers).map_err(|e| format!("queue {}: tiers: {e}", self.id))?,
            offer_timeout_secs: u32_of(self.offer_timeout_secs, "offer_timeout_secs")?,
            wrap_up_secs: u32_of(self.wrapup_secs, "wrapup_secs")?,
            no_answer_penalty_secs: u32_of(self.no_answer_penalty_secs, "no_answer_penalty_secs")?,
            max_no_answer: u32_of(self.max_no_answer, "max_no_answer")?,
            max_wait_secs: self.max_wait_secs.map(|v| u32_of(v, "max_wait_secs")).transpose()?,
            max_size: self.max_size.map(|v| u32_of(v, "max_size")).transpose()?,
            hold_music: self.hold_music.clone().filter(|h| !h.is_empty()),
            announce_position_every_secs: self.announce_every_secs.map(|v| u32_of(v, "announce_every_secs")).transpose()?,
            overflow_queue: self.overflow_queue_id.clone(),
        };
        c.validate().map_err(|e| format!("queue {}: {e}", self.id))?;
        Ok(c)
    }
}

/// The account's queues as read from D1 (`read_at_ms`: when, so the account object never
/// applies an older read over a newer one coming from another isolate's cache).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueSet {
    pub read_at_ms: u64,
    pub rows: Vec<QueueRow>,
}

impl QueueSet {
    /// Resolve a queue reference (its id, or its name as flows write it).
    pub fn find(&self, id_or_name: &str) -> Option<&QueueRow> {
        self.rows.iter().find(|q| q.id == id_or_name).or_else(|| self.rows.iter().find(|q| q.name == id_or_name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue_row() -> QueueRow {
        QueueRow {
            id: "que_1".into(),
            name: "sales".into(),
            strategy: "ring_all".into(),
            tiers: r#"[{"level":2,"afterSecs":30}]"#.into(),
            offer_timeout_secs: 15,
            wrapup_secs: 0,
            no_answer_penalty_secs: 5,
            max_no_answer: 0,
            max_wait_secs: None,
            max_size: Some(20),
            hold_music: Some(String::new()),
            announce_every_secs: Some(60),
            overflow_queue_id: Some("que_2".into()),
        }
    }

    #[test]
    fn queue_rows_become_core_configs() {
        use crate::acd::{Strategy, TierRule};
        let c = queue_row().to_config().unwrap();
        assert_eq!((c.id.as_str(), c.strategy, c.offer_timeout_secs, c.wrap_up_secs), ("que_1", Strategy::RingAll, 15, 0));
        assert_eq!(c.tiers, [TierRule { level: 2, after_secs: 30 }]);
        assert_eq!((c.max_wait_secs, c.max_size, c.hold_music, c.announce_position_every_secs), (None, Some(20), None, Some(60)));
        assert_eq!(c.overflow_queue.as_deref(), Some("que_2"));
        for bad in [
            QueueRow { strategy: "fastest".into(), ..queue_row() },
            QueueRow { tiers: "{".into(), ..queue_row() },
            QueueRow { offer_timeout_secs: 0, ..queue_row() },
            QueueRow { max_size: Some(-1), ..queue_row() },
        ] {
            assert!(bad.to_config().is_err(), "{bad:?}");
        }
        let set = QueueSet { read_at_ms: 1, rows: vec![queue_row(), QueueRow { id: "sales".into(), name: "other".into(), ..queue_row() }] };
        assert_eq!(set.find("sales").unwrap().id, "sales", "an id wins over a name");
        assert_eq!(set.find("que_1").unwrap().name, "sales");
        assert!(set.find("nope").is_none());
    }

    #[test]
    fn algorithms_parse_in_order_without_duplicates() {
        assert_eq!(parse_algorithms("MD5"), vec![Algorithm::Md5]);
        assert_eq!(parse_algorithms("SHA-256, MD5, md5"), vec![Algorithm::Sha256, Algorithm::Md5]);
        assert_eq!(parse_algorithms(""), default_algorithms());
        assert_eq!(parse_algorithms("bogus"), default_algorithms());
    }

    #[test]
    fn roles_round_trip() {
        for r in [Role::SipEdge, Role::MediaNode, Role::AgentApp, Role::Operator] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("admin"), None);
    }
}
