//! Kamailio rtjson documents (module `rtjson`): what /route answers under `"rtjson"`.
//! `action` tells the shipped kamailio.cfg what to do; `version`/`routing`/`routes` are
//! standard rtjson that `rtjson_init_routes()` consumes (failover with `rtjson_next_route()`).

use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FromHeader {
    pub display: String,
    pub uri: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Headers {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<FromHeader>,
    /// Extra header lines, each terminated by CRLF.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    pub uri: String,
    pub dst_uri: String,
    /// Final-response timer for non-INVITE / provisional wait, ms.
    pub fr_timer: u32,
    /// Wait for a final INVITE response after a provisional one, ms.
    pub fr_inv_timer: u32,
    pub headers: Headers,
}

/// `sip:host:port;transport=x` (transport omitted for udp).
pub fn sip_hostport(host: &str, port: u16, transport: &str) -> String {
    let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_string() };
    if transport.eq_ignore_ascii_case("udp") || transport.is_empty() {
        format!("sip:{host}:{port}")
    } else {
        format!("sip:{host}:{port};transport={}", transport.to_ascii_lowercase())
    }
}

/// `sip:user@host:port;transport=x`.
pub fn sip_uri(user: &str, host: &str, port: u16, transport: &str) -> String {
    sip_hostport(host, port, transport).replacen("sip:", &format!("sip:{user}@"), 1)
}

/// A header line value is safe when it has no CR/LF/NUL (no header injection).
pub fn header_safe(s: &str) -> bool {
    !s.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

/// Build the `extra` block: `Name: value\r\n` per pair; pairs with unsafe values are dropped.
pub fn extra_headers(pairs: &[(&str, &str)]) -> String {
    pairs.iter().filter(|(k, v)| header_safe(k) && header_safe(v)).map(|(k, v)| format!("{k}: {v}\r\n")).collect()
}

/// A SIP reason phrase: printable ASCII, at most 80 characters.
pub fn reason_phrase(s: &str) -> String {
    let r: String = s.chars().filter(|c| c.is_ascii() && !c.is_ascii_control()).take(80).collect();
    if r.trim().is_empty() {
        "Error".into()
    } else {
        r
    }
}

pub fn reject(code: u16, reason: &str) -> Value {
    let code = if (400..=699).contains(&code) { code } else { 500 };
    serde_json::json!({ "action": "reject", "code": code, "reason": reason_phrase(reason) })
}

/// Relay to a registered AOR. `account_id` lets the SIP edge attribute the dialog (and its
/// concurrency slot, if one was taken) to the account; `direction` is internal or inbound.
pub fn proxy(aor: &str, account_id: &str, direction: &str) -> Value {
    serde_json::json!({ "action": "proxy", "aor": aor, "account_id": account_id, "direction": direction })
}

/// A serial rtjson document with `action` and any extra top-level fields.
pub fn serial(action: &str, routes: &[Route], extra: Map<String, Value>) -> Value {
    let mut m = Map::new();
    m.insert("action".into(), Value::from(action));
    for (k, v) in extra {
        m.insert(k, v);
    }
    m.insert("version".into(), Value::from("1.0"));
    m.insert("routing".into(), Value::from("serial"));
    m.insert("routes".into(), serde_json::to_value(routes).unwrap_or(Value::Array(vec![])));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        assert_eq!(sip_hostport("127.0.0.1", 5090, "udp"), "sip:127.0.0.1:5090");
        assert_eq!(sip_hostport("carrier.example", 5061, "TLS"), "sip:carrier.example:5061;transport=tls");
        assert_eq!(sip_hostport("2001:db8::1", 5060, "tcp"), "sip:[2001:db8::1]:5060;transport=tcp");
        assert_eq!(sip_uri("+15551234567", "127.0.0.1", 5090, "udp"), "sip:+15551234567@127.0.0.1:5090");
        assert_eq!(sip_uri("1555", "h", 5060, "tcp"), "sip:1555@h:5060;transport=tcp");
    }

    #[test]
    fn extra_headers_are_crlf_lines_and_refuse_injection() {
        assert_eq!(extra_headers(&[("X-Account-Id", "acc_1"), ("X-Flow-Id", "flow_2")]), "X-Account-Id: acc_1\r\nX-Flow-Id: flow_2\r\n");
        assert_eq!(extra_headers(&[("X-A", "a\r\nVia: evil"), ("X-B", "b")]), "X-B: b\r\n");
    }

    #[test]
    fn reject_reason_is_printable_and_bounded() {
        let r = reject(486, &format!("Busy\r\n{}", "x".repeat(200)));
        let reason = r["reason"].as_str().unwrap();
        assert!(reason.len() <= 80 && reason.bytes().all(|b| (0x20..0x7f).contains(&b)));
        assert_eq!(reject(200, "x")["code"], 500);
        assert_eq!(reject(404, "")["reason"], "Error");
    }

    #[test]
    fn serial_document_shape() {
        let r = Route {
            uri: "sip:+1555@127.0.0.1:5090".into(),
            dst_uri: "sip:127.0.0.1:5090".into(),
            fr_timer: 3000,
            fr_inv_timer: 30000,
            headers: Headers { from: Some(FromHeader { display: "Acme".into(), uri: "sip:+1555@acme.sip.io".into() }), extra: None },
        };
        let v = serial("outbound", &[r], Map::new());
        assert_eq!(v["action"], "outbound");
        assert_eq!(v["version"], "1.0");
        assert_eq!(v["routing"], "serial");
        assert_eq!(v["routes"][0]["headers"]["from"]["display"], "Acme");
        assert!(v["routes"][0]["headers"].get("extra").is_none());
    }
}
