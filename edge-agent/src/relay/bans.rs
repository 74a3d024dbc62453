//! The node's ban snapshot (pure): parse the ban file, build the `/security/report` body.
//!
//! ## Ban file (`BAN_FILE`)
//!
//! One ban per line: `ip[/prefix] [expires]`, where `expires` is a Unix time in
//! seconds (absent: no expiry). Blank lines and `#` comments are ignored. Examples:
//!
//! ```text
//! # written by fail2ban (edge-agent/contrib/fail2ban-action-callplane.conf)
//! 203.0.113.7 1795319355
//! 198.51.100.0/24
//! 2001:db8::/32 1795320000
//! ```
//!
//! The file is the whole current list (a snapshot, not a log): writers replace it
//! atomically (write a temporary file, then rename), as the shipped fail2ban action
//! and nftables export do. Entries already expired are left out; a line that does
//! not parse is skipped and counted (logged), never fatal; an address listed twice
//! keeps its longest ban.
//!
//! ## Report (`POST /security/report`, media-node credential)
//!
//! ```json
//! {"node":"fs-1","bans":[{"ip":"198.51.100.0/24"},{"ip":"203.0.113.7","expiresAt":1795319355}]}
//! ```
//!
//! `node` is this media node's name as provisioned (`callplane-admin media-node
//! create --name`); `bans` is sorted by address; `expiresAt` is Unix seconds, absent
//! for bans without expiry. At most [`MAX_BANS`] entries are sent (the Worker
//! refuses bodies over 64 KiB); when more are listed, `"truncated":true` is added and
//! the longest-lasting bans are kept.

use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

pub const MAX_BANS: usize = 800;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ban {
    pub ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub bans: Vec<Ban>,
    /// Lines that did not parse: (line number, reason), at most 10 kept.
    pub errors: Vec<(usize, String)>,
    pub bad_lines: usize,
    pub expired: usize,
}

/// Parse the ban file's text; entries expiring at or before `now_unix` are dropped.
pub fn parse(text: &str, now_unix: u64) -> Parsed {
    let mut by: BTreeMap<(IpAddr, u8, bool), Option<u64>> = BTreeMap::new();
    let (mut errors, mut bad_lines, mut expired) = (Vec::new(), 0usize, 0usize);
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        match parse_line(line) {
            Ok((ip, prefix, has_prefix, exp)) => {
                if exp.is_some_and(|e| e <= now_unix) {
                    expired += 1;
                    continue;
                }
                let slot = by.entry((ip, prefix, has_prefix)).or_insert(exp);
                // Longest ban wins; None (no expiry) is the longest.
                *slot = match (*slot, exp) {
                    (None, _) | (_, None) => None,
                    (Some(a), Some(b)) => Some(a.max(b)),
                };
            }
            Err(e) => {
                bad_lines += 1;
                if errors.len() < 10 {
                    errors.push((i + 1, e));
                }
            }
        }
    }
    let bans = by
        .into_iter()
        .map(|((ip, prefix, has_prefix), expires_at)| Ban { ip: if has_prefix { format!("{ip}/{prefix}") } else { ip.to_string() }, expires_at })
        .collect();
    Parsed { bans, errors, bad_lines, expired }
}

fn parse_line(line: &str) -> Result<(IpAddr, u8, bool, Option<u64>), String> {
    let mut parts = line.split_whitespace();
    let addr = parts.next().ok_or("empty")?;
    let exp = match parts.next() {
        None => None,
        Some(e) => Some(e.parse::<u64>().map_err(|_| format!("expiry {e:?} is not a Unix time in seconds"))?),
    };
    if parts.next().is_some() {
        return Err("more than two fields".into());
    }
    let (ip_s, prefix_s) = match addr.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (addr, None),
    };
    let ip: IpAddr = ip_s.parse().map_err(|_| format!("{ip_s:?} is not an IP address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix_s {
        None => max,
        Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("bad prefix length /{p}"))?,
    };
    if prefix == 0 {
        return Err("a /0 ban would ban everyone".into());
    }
    Ok((ip, prefix, prefix_s.is_some(), exp))
}

/// The `/security/report` body.
pub fn report_body(node: &str, bans: &[Ban]) -> String {
    #[derive(Serialize)]
    struct Body<'a> {
        node: &'a str,
        bans: Vec<&'a Ban>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        truncated: bool,
    }
    let mut list: Vec<&Ban> = bans.iter().collect();
    let truncated = list.len() > MAX_BANS;
    if truncated {
        // Keep the longest-lasting (no expiry first), then restore address order.
        list.sort_by_key(|b| std::cmp::Reverse(b.expires_at.unwrap_or(u64::MAX)));
        list.truncate(MAX_BANS);
        list.sort_by(|a, b| a.ip.cmp(&b.ip));
    }
    serde_json::to_string(&Body { node, bans: list, truncated }).expect("serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses_prefixes_expiry_and_comments() {
        let text = "# fail2ban\n203.0.113.7 2000\n\n198.51.100.0/24\n2001:db8::/32 3000  # v6\n203.0.113.7 2500\n10.0.0.1 900\nnot-an-ip\n1.2.3.4/33\n1.2.3.4 soon\n0.0.0.0/0\n1.2.3.4 5 6\n";
        let p = parse(text, 1000);
        assert_eq!(
            p.bans,
            vec![
                Ban { ip: "198.51.100.0/24".into(), expires_at: None },
                Ban { ip: "203.0.113.7".into(), expires_at: Some(2500) },
                Ban { ip: "2001:db8::/32".into(), expires_at: Some(3000) },
            ]
        );
        assert_eq!(p.expired, 1);
        assert_eq!(p.bad_lines, 5);
        assert_eq!(p.errors[0].0, 8);
        assert!(p.errors[0].1.contains("not an IP"), "{:?}", p.errors);
    }

    #[test]
    fn permanent_beats_expiring_for_the_same_address() {
        let p = parse("192.0.2.1 5000\n192.0.2.1\n", 0);
        assert_eq!(p.bans, vec![Ban { ip: "192.0.2.1".into(), expires_at: None }]);
    }

    #[test]
    fn report_shape_and_truncation() {
        let bans = vec![Ban { ip: "192.0.2.1".into(), expires_at: Some(7) }, Ban { ip: "192.0.2.2".into(), expires_at: None }];
        assert_eq!(report_body("fs-1", &bans), r#"{"node":"fs-1","bans":[{"ip":"192.0.2.1","expiresAt":7},{"ip":"192.0.2.2"}]}"#);
        assert_eq!(report_body("fs-1", &[]), r#"{"node":"fs-1","bans":[]}"#);
        let many: Vec<Ban> = (0..MAX_BANS as u64 + 5).map(|i| Ban { ip: format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256), expires_at: Some(i + 10) }).collect();
        let body = report_body("n", &many);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["truncated"], true);
        let kept = v["bans"].as_array().unwrap();
        assert_eq!(kept.len(), MAX_BANS);
        // The five shortest bans were dropped.
        assert!(kept.iter().all(|b| b["expiresAt"].as_u64().unwrap() >= 15));
        assert!(body.len() < 64 * 1024);
    }
}
