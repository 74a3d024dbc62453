//! Input validation. Everything is checked before any SQL is generated; every error names the
//! option it is about and is a usage error (exit code 2).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::Value;

use crate::error::{usage, Result};

/// `^\+[1-9][0-9]{6,14}$`
pub fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

pub fn e164(flag: &str, s: &str) -> Result<String> {
    if is_e164(s) {
        Ok(s.to_string())
    } else {
        usage(format!(
            "--{flag} must be an E.164 number like +15551230100 (got {s:?})"
        ))
    }
}

/// An E.164 prefix such as `+1900` (premium-rate prefixes).
pub fn e164_prefix(flag: &str, s: &str) -> Result<String> {
    let ok = s.strip_prefix('+').is_some_and(|d| {
        (1..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
    });
    if ok {
        Ok(s.to_string())
    } else {
        usage(format!("--{flag}: {s:?} is not an E.164 prefix like +1900"))
    }
}

/// Comma-separated E.164 prefixes; empty string = empty list. Duplicates removed, order kept.
pub fn e164_prefixes(flag: &str, s: &str) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    if s.trim().is_empty() {
        return Ok(out);
    }
    for p in s.split(',') {
        let p = e164_prefix(flag, p.trim())?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

/// Country calling code without '+': 1–3 digits, not starting with 0.
pub fn country_code(flag: &str, s: &str) -> Result<String> {
    let s = s.strip_prefix('+').unwrap_or(s);
    if (1..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0') {
        Ok(s.to_string())
    } else {
        usage(format!(
            "--{flag} must be a country calling code like 1, 44 or 33 (got {s:?})"
        ))
    }
}

fn is_hostname(s: &str) -> bool {
    if s.is_empty() || s.len() > 253 {
        return false;
    }
    let labels: Vec<&str> = s.split('.').collect();
    let labels_ok = labels.iter().all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    });
    // An all-numeric last label is only valid as an IPv4 address (checked separately).
    labels_ok && !labels.last().unwrap().bytes().all(|b| b.is_ascii_digit())
}

/// A SIP domain (realm): a DNS name or an IPv4 address, lowercased.
pub fn domain(flag: &str, s: &str) -> Result<String> {
    let lower = s.to_ascii_lowercase();
    if is_hostname(&lower) || lower.parse::<Ipv4Addr>().is_ok() {
        Ok(lower)
    } else {
        usage(format!("--{flag}: {s:?} is not a valid domain name (letters, digits, '-' and '.', like acme.sip.io)"))
    }
}

/// A host to send SIP to: DNS name, IPv4 or IPv6 (brackets optional); returned canonical, IPv6 without brackets.
pub fn host(flag: &str, s: &str) -> Result<String> {
    let inner = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(s);
    if let Ok(ip) = inner.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    let lower = s.to_ascii_lowercase();
    if is_hostname(&lower) {
        Ok(lower)
    } else {
        usage(format!(
            "--{flag}: {s:?} is not a valid host name or IP address"
        ))
    }
}

/// An IPv4/IPv6 address or CIDR block; canonical text. Host bits must be zero.
pub fn cidr(flag: &str, s: &str) -> Result<String> {
    let bad = || {
        usage(format!("--{flag}: {s:?} is not an IP address or CIDR block (like 203.0.113.0/24 or 2001:db8::/32)"))
    };
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let Ok(ip) = addr.parse::<IpAddr>() else {
        return bad();
    };
    let Some(len) = len else {
        return Ok(ip.to_string());
    };
    if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
        return bad();
    }
    let len: u32 = len.parse().expect("checked digits");
    let (max, masked) = match ip {
        IpAddr::V4(v4) => {
            if len > 32 {
                return bad();
            }
            let bits = u32::from(v4);
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            (32, IpAddr::V4(Ipv4Addr::from(bits & mask)))
        }
        IpAddr::V6(v6) => {
            if len > 128 {
                return bad();
            }
            let bits = u128::from(v6);
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            (128, IpAddr::V6(Ipv6Addr::from(bits & mask)))
        }
    };
    debug_assert!(len <= max);
    if masked != ip {
        return usage(format!(
            "--{flag}: {s:?} has host bits set; did you mean {masked}/{len}?"
        ));
    }
    Ok(format!("{ip}/{len}"))
}

/// Comma-separated CIDR list, at least one, duplicates removed.
pub fn cidrs(flag: &str, s: &str) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for part in s.split(',') {
        let c = cidr(flag, part.trim())?;
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(out)
}

pub fn int_range(flag: &str, s: &str, min: i64, max: i64) -> Result<i64> {
    match s.parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => usage(format!(
            "--{flag} must be an integer from {min} to {max} (got {s:?})"
        )),
    }
}

pub fn port(flag: &str, s: &str) -> Result<i64> {
    int_range(flag, s, 1, 65535)
}

/// One of a fixed set of words.
pub fn one_of(flag: &str, s: &str, allowed: &[&str]) -> Result<String> {
    if allowed.contains(&s) {
        Ok(s.to_string())
    } else {
        usage(format!(
            "--{flag} must be one of {} (got {s:?})",
            allowed.join(", ")
        ))
    }
}

/// An IANA time zone name known to the tz database (`America/New_York`, `UTC`).
pub fn time_zone(flag: &str, s: &str) -> Result<String> {
    match s.parse::<chrono_tz::Tz>() {
        Ok(tz) => Ok(tz.name().to_string()),
        Err(_) => usage(format!(
            "--{flag}: {s:?} is not an IANA time zone name (like America/New_York or UTC)"
        )),
    }
}

/// Free text such as a name: non-empty, at most `max` characters, no control characters.
pub fn text(flag: &str, s: &str, max: usize) -> Result<String> {
    if s.trim().is_empty() {
        return usage(format!("--{flag} must not be empty"));
    }
    if s.chars().count() > max {
        return usage(format!("--{flag} is longer than {max} characters"));
    }
    if s.chars().any(char::is_control) {
        return usage(format!("--{flag} must not contain control characters"));
    }
    Ok(s.to_string())
}

/// A caller id display name: like [`text`], and no `"` or `\` (it ends up in a SIP From header).
pub fn caller_id_name(flag: &str, s: &str) -> Result<String> {
    let s = text(flag, s, 64)?;
    if s.contains('"') || s.contains('\\') {
        return usage(format!("--{flag} must not contain '\"' or '\\'"));
    }
    Ok(s)
}

/// An extension: 1–32 of letters, digits, '.', '_', '-', starting with a letter or digit.
pub fn extension(flag: &str, s: &str) -> Result<String> {
    let ok = (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        && s.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(s.to_string())
    } else {
        usage(format!(
            "--{flag} must be 1-32 letters, digits, '.', '_' or '-' (like 1001), got {s:?}"
        ))
    }
}

/// A SIP digest username (the user part of a SIP URI): 1–64 characters, unreserved and
/// user-unreserved characters of RFC 3261 only (no ':', '@', spaces or quotes).
pub fn sip_username(flag: &str, s: &str) -> Result<String> {
    const EXTRA: &[u8] = b"-_.!~*()&=+$,;?/";
    let ok = (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || EXTRA.contains(&b));
    if ok {
        Ok(s.to_string())
    } else {
        usage(format!(
            "--{flag} must be 1-64 characters of letters, digits and -_.!~*()&=+$,;?/ (got {s:?})"
        ))
    }
}

pub const MIN_PASSWORD_LEN: usize = 8;

/// A SIP password: 8–128 characters, no control characters.
pub fn password(flag: &str, s: &str) -> Result<String> {
    let n = s.chars().count();
    if n < MIN_PASSWORD_LEN {
        return usage(format!(
            "--{flag} must be at least {MIN_PASSWORD_LEN} characters"
        ));
    }
    if n > 128 {
        return usage(format!("--{flag} must be at most 128 characters"));
    }
    if s.chars().any(char::is_control) {
        return usage(format!("--{flag} must not contain control characters"));
    }
    Ok(s.to_string())
}

pub fn email(flag: &str, s: &str) -> Result<String> {
    let ok = s.len() <= 254
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '<' || c == '>')
        && matches!(s.split_once('@'), Some((local, dom)) if !local.is_empty() && !dom.contains('@') && is_hostname(&dom.to_ascii_lowercase()));
    if ok {
        Ok(s.to_string())
    } else {
        usage(format!("--{flag}: {s:?} is not an e-mail address"))
    }
}

/// A trunk tech prefix: up to 32 of digits, letters, '#', '*', '+'.
pub fn tech_prefix(flag: &str, s: &str) -> Result<String> {
    if s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'#' || b == b'*' || b == b'+')
    {
        Ok(s.to_string())
    } else {
        usage(format!(
            "--{flag} must be up to 32 of digits, letters, '#', '*', '+' (got {s:?})"
        ))
    }
}

/// A TypeID with the given prefix (`acc_01…`).
pub fn id(flag: &str, s: &str, prefix: &str, what: &str) -> Result<String> {
    if callplane::typeid::is_valid(s, prefix) {
        Ok(s.to_string())
    } else {
        usage(format!(
            "--{flag} must be {what} id ({prefix}_…), got {s:?}"
        ))
    }
}

/// Digest algorithms, strongest first: comma-separated `SHA-256` / `MD5`, canonical spelling.
pub fn digest_algorithms(flag: &str, s: &str) -> Result<String> {
    use callplane::sip::digest::Algorithm;
    let mut out: Vec<&'static str> = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        let Some(alg) = Algorithm::parse(part) else {
            return usage(format!(
                "--{flag}: unknown digest algorithm {part:?} (supported: SHA-256, MD5)"
            ));
        };
        if out.contains(&alg.as_str()) {
            return usage(format!("--{flag}: {} listed twice", alg.as_str()));
        }
        out.push(alg.as_str());
    }
    Ok(out.join(","))
}

/// A routing target `flow:ID`, `user:ID` or `external:+E164` → (type, value).
pub fn target(flag: &str, s: &str) -> Result<(String, String)> {
    let bad = || {
        usage(format!(
            "--{flag} must be flow:<flow id>, user:<user id> or external:<+E164> (got {s:?})"
        ))
    };
    let Some((kind, value)) = s.split_once(':') else {
        return bad();
    };
    match kind {
        "flow" => Ok(("flow".into(), id(flag, value, "flow", "a flow")?)),
        "user" => Ok(("user".into(), id(flag, value, "usr", "a user")?)),
        "external" => Ok(("external".into(), e164(flag, value)?)),
        _ => bad(),
    }
}

pub fn json(flag: &str, s: &str) -> Result<Value> {
    serde_json::from_str(s).or_else(|e| usage(format!("--{flag} is not valid JSON: {e}")))
}

// ---------------------------------------------------------------------------------------------
// Calendars: the routing core's own validator decides (src/routing/calendar.rs), so provisioning
// accepts exactly what /route can evaluate. On top of it, unknown keys in holiday and override
// objects are rejected here: the core ignores them, and a misspelt "name" would be lost silently.

fn only_keys(flag: &str, v: &Value, allowed: &[&str], what: &str) -> Result<()> {
    for item in v.as_array().into_iter().flatten() {
        if let Some(k) = item
            .as_object()
            .and_then(|o| o.keys().find(|k| !allowed.contains(&k.as_str())))
        {
            return usage(format!(
                "--{flag}: unknown key {k:?} in {what} (allowed: {})",
                allowed.join(", ")
            ));
        }
    }
    Ok(())
}

/// Validate a calendar given as JSON texts; returns the parsed (weekly, holidays, overrides).
pub fn calendar(
    time_zone: &str,
    weekly: &str,
    holidays: &str,
    overrides: &str,
) -> Result<(Value, Value, Value)> {
    use callplane::routing::calendar::{validate, Calendar};
    let weekly = json("weekly", weekly)?;
    let holidays = json("holidays", holidays)?;
    let overrides = json("overrides", overrides)?;
    if !weekly.is_object() {
        return usage("--weekly must be a JSON object like {\"mon\":[[\"09:00\",\"17:00\"]]}");
    }
    if !holidays.is_array() {
        return usage("--holidays must be a JSON array like [{\"date\":\"2026-12-25\",\"name\":\"Christmas Day\"}]");
    }
    if !overrides.is_array() {
        return usage("--overrides must be a JSON array of {\"start\",\"end\",\"state\"} objects");
    }
    only_keys("holidays", &holidays, &["date", "name"], "a holiday")?;
    only_keys(
        "overrides",
        &overrides,
        &["start", "end", "state", "name"],
        "an override",
    )?;
    let cal = Calendar {
        time_zone: time_zone.to_string(),
        weekly,
        holidays,
        overrides,
    };
    if let Err(e) = validate(&cal) {
        return usage(format!("invalid calendar: {}", e.0));
    }
    Ok((cal.weekly, cal.holidays, cal.overrides))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_numbers() {
        for ok in [
            "+15551230100",
            "+4420794600",
            "+1234567",
            "+123456789012345",
        ] {
            assert!(is_e164(ok), "{ok}");
        }
        for bad in [
            "15551230100",
            "+0555123010",
            "+123456",
            "+1234567890123456",
            "+1555 123",
            "+",
            "",
            "++1555123456",
            "+1555123010a",
            "+１５５５１２３０１００",
        ] {
            assert!(!is_e164(bad), "{bad}");
        }
        assert_eq!(e164("e164", "+15551230100").unwrap(), "+15551230100");
        let e = e164("e164", "5551230100").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.message().contains("--e164"));
    }

    #[test]
    fn prefixes_and_country() {
        assert_eq!(
            e164_prefixes("p", "+1900, +1976,+1900").unwrap(),
            vec!["+1900", "+1976"]
        );
        assert!(e164_prefixes("p", "").unwrap().is_empty());
        assert!(e164_prefixes("p", "1900").is_err());
        assert!(e164_prefixes("p", "+1900,").is_err());
        assert!(e164_prefixes("p", "+0").is_err());
        assert_eq!(country_code("c", "44").unwrap(), "44");
        assert_eq!(country_code("c", "+1").unwrap(), "1");
        for bad in ["", "0", "1234", "4a", "01"] {
            assert!(country_code("c", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn domains_and_hosts() {
        assert_eq!(domain("d", "Acme.SIP.io").unwrap(), "acme.sip.io");
        assert_eq!(domain("d", "localhost").unwrap(), "localhost");
        assert_eq!(domain("d", "127.0.0.1").unwrap(), "127.0.0.1");
        assert_eq!(domain("d", "a-b.example").unwrap(), "a-b.example");
        let long_label = "a".repeat(64) + ".io";
        let long_name = ["abcdefghi"; 26].join(".");
        for bad in [
            "",
            "acme..io",
            "-acme.io",
            "acme-.io",
            "acme.io.",
            "acme io",
            "ac_me.io",
            "a.b.c.1",
            "999.1.1.1",
            "[::1]",
            "acme.io;x",
            long_label.as_str(),
            long_name.as_str(),
            "x'.io",
        ] {
            assert!(domain("d", bad).is_err(), "{bad}");
        }
        assert_eq!(host("h", "[2001:DB8::1]").unwrap(), "2001:db8::1");
        assert_eq!(host("h", "2001:db8:0:0::1").unwrap(), "2001:db8::1");
        assert_eq!(host("h", "127.0.0.1").unwrap(), "127.0.0.1");
        assert_eq!(host("h", "Sip.Carrier.NET").unwrap(), "sip.carrier.net");
        for bad in ["", "1.2.3.256", "host:5060", "a b", "sip:x.com"] {
            assert!(host("h", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cidr_blocks() {
        assert_eq!(cidr("a", "127.0.0.1/32").unwrap(), "127.0.0.1/32");
        assert_eq!(cidr("a", "203.0.113.0/24").unwrap(), "203.0.113.0/24");
        assert_eq!(cidr("a", "0.0.0.0/0").unwrap(), "0.0.0.0/0");
        assert_eq!(cidr("a", "198.51.100.7").unwrap(), "198.51.100.7");
        assert_eq!(cidr("a", "2001:DB8::/32").unwrap(), "2001:db8::/32");
        assert_eq!(cidr("a", "::1").unwrap(), "::1");
        assert_eq!(cidr("a", "::/0").unwrap(), "::/0");
        let e = cidr("a", "203.0.113.5/24").unwrap_err();
        assert!(
            e.message().contains("did you mean 203.0.113.0/24"),
            "{}",
            e.message()
        );
        for bad in [
            "",
            "1.2.3.4/33",
            "1.2.3.4/",
            "1.2.3.4/-1",
            "1.2.3.4/+8",
            "::1/129",
            "1.2.3/24",
            "host/24",
            "1.2.3.4/24/1",
            "1.2.3.4 /32",
            "1.2.3.4/0032",
        ] {
            assert!(cidr("a", bad).is_err(), "{bad}");
        }
        assert_eq!(
            cidrs("a", "127.0.0.1/32, 10.0.0.0/8,127.0.0.1/32").unwrap(),
            vec!["127.0.0.1/32", "10.0.0.0/8"]
        );
        assert!(cidrs("a", "").is_err());
        assert!(cidrs("a", "10.0.0.0/8,").is_err());
    }

    #[test]
    fn ports_and_ranges() {
        assert_eq!(port("p", "5060").unwrap(), 5060);
        assert_eq!(port("p", "1").unwrap(), 1);
        assert_eq!(port("p", "65535").unwrap(), 65535);
        for bad in ["0", "65536", "-1", "", "50 60", "5060x", "0x10"] {
            assert!(port("p", bad).is_err(), "{bad}");
        }
        assert_eq!(int_range("m", "0", 0, 10).unwrap(), 0);
        assert!(int_range("m", "11", 0, 10).is_err());
    }

    #[test]
    fn time_zones() {
        assert_eq!(
            time_zone("t", "America/New_York").unwrap(),
            "America/New_York"
        );
        assert_eq!(time_zone("t", "UTC").unwrap(), "UTC");
        assert_eq!(time_zone("t", "Europe/Paris").unwrap(), "Europe/Paris");
        for bad in ["", "Mars/Olympus", "EST5EDT6", "america/new york"] {
            assert!(time_zone("t", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn texts() {
        assert_eq!(text("n", "Acme Corp", 10).unwrap(), "Acme Corp");
        assert!(text("n", "", 10).is_err());
        assert!(text("n", "   ", 10).is_err());
        assert!(text("n", "a\nb", 10).is_err());
        assert!(text("n", "abcdefghijk", 10).is_err());
        assert_eq!(text("n", "éééééééééé", 10).unwrap().chars().count(), 10);
        assert!(caller_id_name("c", "Acme \"Corp\"").is_err());
        assert!(caller_id_name("c", "a\\b").is_err());
        assert_eq!(caller_id_name("c", "Acme Corp").unwrap(), "Acme Corp");
    }

    #[test]
    fn sip_identities() {
        assert_eq!(extension("e", "1001").unwrap(), "1001");
        assert_eq!(extension("e", "sales.1").unwrap(), "sales.1");
        for bad in ["", "-1", "10 01", "1001@x", &"1".repeat(33), "*97"] {
            assert!(extension("e", bad).is_err(), "{bad}");
        }
        assert_eq!(sip_username("u", "1001").unwrap(), "1001");
        assert_eq!(sip_username("u", "alice.smith+1").unwrap(), "alice.smith+1");
        for bad in ["", "a b", "a:b", "a@b", "a\"b", "a'b", &"u".repeat(65)] {
            assert!(sip_username("u", bad).is_err(), "{bad}");
        }
        assert!(password("p", "acme-1001-secret").is_ok());
        assert!(password("p", "short").is_err());
        assert!(password("p", "abc\tdefgh").is_err());
        assert!(password("p", &"x".repeat(129)).is_err());
        assert!(password("p", "pässwörd").is_ok());
        assert!(email("m", "alice@acme.example").is_ok());
        for bad in ["alice", "@x.io", "a@", "a b@x.io", "a@b@c.io", "a@-x.io"] {
            assert!(email("m", bad).is_err(), "{bad}");
        }
        assert!(tech_prefix("p", "").is_ok());
        assert!(tech_prefix("p", "1234#").is_ok());
        assert!(tech_prefix("p", "12 34").is_err());
        assert!(tech_prefix("p", "12';").is_err());
    }

    #[test]
    fn one_of_words() {
        assert_eq!(one_of("t", "udp", &["udp", "tcp"]).unwrap(), "udp");
        assert!(one_of("t", "UDP", &["udp", "tcp"]).is_err());
    }

    #[test]
    fn calendars_use_the_routing_validator() {
        let weekly = r#"{"mon":[["09:00","17:00"]],"tue":[["09:00","12:00"],["13:00","24:00"]],"sat":[["22:00","02:00"]],"sun":[]}"#;
        let (w, h, o) = calendar(
            "America/New_York",
            weekly,
            r#"[{"date":"2026-12-25","name":"Christmas Day"}]"#,
            "[]",
        )
        .unwrap();
        assert_eq!(w["mon"][0][0], "09:00");
        assert_eq!(h[0]["date"], "2026-12-25");
        assert_eq!(o, serde_json::json!([]));
        assert!(calendar("UTC", "{}", "[]", r#"[{"start":"2026-12-24T12:00","end":"2026-12-24T23:59","state":"closed","name":"Xmas eve"}]"#).is_ok());
        let bad: &[(&str, &str, &str, &str)] = &[
            ("Nowhere/City", "{}", "[]", "[]"),
            ("UTC", "", "[]", "[]"),
            ("UTC", "[]", "[]", "[]"),
            ("UTC", r#"{"monday":[]}"#, "[]", "[]"),
            ("UTC", r#"{"mon":"09:00-17:00"}"#, "[]", "[]"),
            ("UTC", r#"{"mon":[["09:00"]]}"#, "[]", "[]"),
            ("UTC", r#"{"mon":[["09:00","25:00"]]}"#, "[]", "[]"),
            ("UTC", r#"{"mon":[["24:00","23:00"]]}"#, "[]", "[]"),
            ("UTC", r#"{"mon":[["09:00","09:00"]]}"#, "[]", "[]"),
            ("UTC", "{}", "{}", "[]"),
            ("UTC", "{}", r#"[{"date":"2026-02-29"}]"#, "[]"),
            ("UTC", "{}", r#"[{"date":"2026-12-25","nmae":"x"}]"#, "[]"),
            (
                "UTC",
                "{}",
                "[]",
                r#"[{"start":"2026-12-24T12:00","end":"2026-12-24T11:00","state":"closed"}]"#,
            ),
            (
                "UTC",
                "{}",
                "[]",
                r#"[{"start":"2026-12-24T12:00","end":"2026-12-24T13:00","state":"shut"}]"#,
            ),
            (
                "UTC",
                "{}",
                "[]",
                r#"[{"start":"2026-12-24T12:00","end":"2026-12-24T13:00","state":"open","extra":1}]"#,
            ),
            ("UTC", "{}", "[]", "{}"),
        ];
        for (tz, w, h, o) in bad {
            let e = calendar(tz, w, h, o)
                .err()
                .unwrap_or_else(|| panic!("accepted {tz} {w} {h} {o}"));
            assert_eq!(e.exit_code(), 2);
        }
    }
}
