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

#[cfg(test)]
mod tests {
    use super::*;

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
