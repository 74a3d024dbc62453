//! `demo`: the DEV ONLY demo dataset (Acme Corp). Fully deterministic: fixed TypeIDs (fixed
//! timestamp, fixed "random" bytes), fixed passwords and tokens, `INSERT OR IGNORE` everywhere so
//! running it again changes nothing. Checks before and after executing make sure the rows that
//! matter are (or become) the demo's own: an `INSERT OR IGNORE` skipped because of conflicting
//! data would otherwise be silent.

use serde_json::{json, Value};

use crate::args::{Flag, Flags};
use crate::device::ha1_pair;
use crate::env::Env;
use crate::error::{failure, Result};
use crate::sql::{col_str, insert, lit, Check, Plan, Row, V};
use crate::token::sha256_hex;

pub const FLAGS: &[Flag] = &[];

/// 2026-01-01T00:00:00Z: timestamp of every demo id and `created_at`.
pub const DEMO_MS: u64 = 1_767_225_600_000;

pub const DOMAIN: &str = "acme.sip.io";
pub const DID: &str = "+15551230100";
pub const FLOW_DEFINITION: &str = r#"{"version":1,"start":"welcome","nodes":{"welcome":{"type":"play","tts":{"text":"Welcome to Acme"},"next":"bye"},"bye":{"type":"hangup"}}}"#;
pub const WEEKLY: &str = r#"{"mon":[["09:00","17:00"]],"tue":[["09:00","17:00"]],"wed":[["09:00","17:00"]],"thu":[["09:00","17:00"]],"fri":[["09:00","17:00"]],"sat":[],"sun":[]}"#;
pub const HOLIDAYS: &str = r#"[{"date":"2026-12-25","name":"Christmas Day"}]"#;

/// (extension, name, device password)
pub const USERS: [(&str, &str, &str); 2] = [
    ("1001", "Alice", "acme-1001-secret"),
    ("1002", "Bob", "acme-1002-secret"),
];
/// (name, account trunk?, port, priority)
pub const TRUNKS: [(&str, bool, i64, i64); 3] = [
    ("primary", true, 5090, 10),
    ("backup", true, 5091, 20),
    ("wholesale-default", false, 5092, 100),
];
/// (role, secret, scoped to the demo account?)
pub const CREDENTIALS: [(&str, &str, bool); 4] = [
    ("sip-edge", "demo-sip-edge-0000000000000000", false),
    ("media-node", "demo-media-node-0000000000000000", false),
    ("agent-app", "demo-agent-app-0000000000000000", true),
    ("operator", "demo-operator-0000000000000000", false),
];

/// The demo's fixed TypeID number `n` for `prefix`: DEMO_MS and random bytes `0…0n`.
pub fn demo_id(prefix: &str, n: u8) -> String {
    let mut random = [0u8; 10];
    random[9] = n;
    callplane::typeid::new(prefix, DEMO_MS, random)
}

pub fn account_id() -> String {
    demo_id("acc", 1)
}

/// The token of a demo credential (`<id>.<secret>`), by index in [`CREDENTIALS`].
pub fn token(i: usize) -> String {
    format!("{}.{}", demo_id("cred", i as u8 + 1), CREDENTIALS[i].1)
}

pub fn run(_f: &Flags, _env: &mut dyn Env) -> Result<Plan> {
    plan()
}

pub fn plan() -> Result<Plan> {
    let at = V::Int(DEMO_MS as i64);
    let acc = account_id();
    let cal = demo_id("cal", 1);
    let flow = demo_id("flow", 1);
    let num = demo_id("num", 1);
    let car = demo_id("car", 1);
    let mn = demo_id("mn", 1);
    let mut s = Vec::new();

    s.push(insert(
        "accounts",
        true,
        &[
            ("id", V::text(&acc)),
            ("name", V::text("Acme Corp")),
            ("status", V::text("active")),
            ("time_zone", V::text("America/New_York")),
            ("max_concurrent_calls", V::Int(10)),
            ("country_code", V::text("1")),
            ("allow_international", V::Int(0)),
            ("allow_premium", V::Int(0)),
            ("premium_prefixes", V::text("[]")),
            ("caller_id_name", V::text("Acme Corp")),
            ("caller_id_number", V::text(DID)),
            ("digest_algorithms", V::text("SHA-256,MD5")),
            ("created_at", at.clone()),
        ],
    )?);
    s.push(insert(
        "sip_domains",
        true,
        &[
            ("domain", V::text(DOMAIN)),
            ("account_id", V::text(&acc)),
            ("created_at", at.clone()),
        ],
    )?);

    let mut users = serde_json::Map::new();
    let mut devices = serde_json::Map::new();
    for (i, (ext, name, password)) in USERS.iter().enumerate() {
        let usr = demo_id("usr", i as u8 + 1);
        let dev = demo_id("dev", i as u8 + 1);
        s.push(insert(
            "users",
            true,
            &[
                ("id", V::text(&usr)),
                ("account_id", V::text(&acc)),
                ("extension", V::text(*ext)),
                ("name", V::text(*name)),
                ("created_at", at.clone()),
            ],
        )?);
        let (md5, sha256) = ha1_pair(ext, DOMAIN, password);
        s.push(insert(
            "devices",
            true,
            &[
                ("id", V::text(&dev)),
                ("account_id", V::text(&acc)),
                ("user_id", V::text(&usr)),
                ("username", V::text(*ext)),
                ("realm", V::text(DOMAIN)),
                ("ha1_md5", V::text(md5)),
                ("ha1_sha256", V::text(sha256)),
                ("enabled", V::Int(1)),
                ("created_at", at.clone()),
            ],
        )?);
        users.insert(ext.to_string(), json!({"id": usr, "name": name}));
        devices.insert(ext.to_string(), json!({"id": dev, "user_id": usr, "username": ext, "password": password, "realm": DOMAIN}));
    }

    s.push(insert(
        "calendars",
        true,
        &[
            ("id", V::text(&cal)),
            ("account_id", V::text(&acc)),
            ("name", V::text("Business hours")),
            ("time_zone", V::text("America/New_York")),
            ("weekly", V::text(WEEKLY)),
            ("holidays", V::text(HOLIDAYS)),
            ("overrides", V::text("[]")),
            ("created_at", at.clone()),
        ],
    )?);
    s.push(insert(
        "flows",
        true,
        &[
            ("id", V::text(&flow)),
            ("account_id", V::text(&acc)),
            ("name", V::text("Main IVR")),
            ("published_version", V::Int(1)),
            ("created_at", at.clone()),
        ],
    )?);
    s.push(insert(
        "flow_versions",
        true,
        &[
            ("flow_id", V::text(&flow)),
            ("version", V::Int(1)),
            ("definition", V::text(FLOW_DEFINITION)),
            ("created_at", at.clone()),
        ],
    )?);
    s.push(insert(
        "phone_numbers",
        true,
        &[
            ("id", V::text(&num)),
            ("e164", V::text(DID)),
            ("account_id", V::text(&acc)),
            ("target_type", V::text("flow")),
            ("target_value", V::text(&flow)),
            ("calendar_id", V::text(&cal)),
            ("after_hours_type", V::text("flow")),
            ("after_hours_value", V::text(&flow)),
            ("created_at", at.clone()),
        ],
    )?);
    s.push(insert(
        "carriers",
        true,
        &[
            ("id", V::text(&car)),
            ("name", V::text("Demo Carrier")),
            ("enabled", V::Int(1)),
            ("created_at", at.clone()),
        ],
    )?);
    s.push(insert(
        "carrier_addresses",
        true,
        &[
            ("carrier_id", V::text(&car)),
            ("cidr", V::text("127.0.0.1/32")),
            ("port", V::Int(5080)),
        ],
    )?);

    let mut trunks = serde_json::Map::new();
    for (i, (name, per_account, port, priority)) in TRUNKS.iter().enumerate() {
        let trk = demo_id("trk", i as u8 + 1);
        let owner = if *per_account { V::text(&acc) } else { V::Null };
        s.push(insert(
            "trunks",
            true,
            &[
                ("id", V::text(&trk)),
                ("account_id", owner),
                ("name", V::text(*name)),
                ("priority", V::Int(*priority)),
                ("host", V::text("127.0.0.1")),
                ("port", V::Int(*port)),
                ("transport", V::text("udp")),
                ("number_format", V::text("e164")),
                ("prefix", V::text("")),
                ("caller_id_mode", V::text("account")),
                ("caller_id_number", V::Null),
                ("fr_timer_ms", V::Int(3000)),
                ("fr_inv_timer_ms", V::Int(30000)),
                ("enabled", V::Int(1)),
                ("created_at", at.clone()),
            ],
        )?);
        trunks.insert(
            name.to_string(),
            json!({"id": trk, "account_id": if *per_account { Value::from(acc.as_str()) } else { Value::Null }, "host": "127.0.0.1", "port": port, "priority": priority}),
        );
    }

    s.push(insert(
        "media_nodes",
        true,
        &[
            ("id", V::text(&mn)),
            ("name", V::text("fs-1")),
            ("sip_host", V::text("127.0.0.1")),
            ("sip_port", V::Int(5070)),
            ("transport", V::text("udp")),
            ("status", V::text("active")),
            ("created_at", at.clone()),
        ],
    )?);

    let mut creds = serde_json::Map::new();
    for (i, (role, _, scoped)) in CREDENTIALS.iter().enumerate() {
        let id = demo_id("cred", i as u8 + 1);
        let tok = token(i);
        let owner = if *scoped { Some(acc.clone()) } else { None };
        s.push(insert(
            "credentials",
            true,
            &[
                ("id", V::text(&id)),
                ("name", V::text(format!("demo-{role}"))),
                ("role", V::text(*role)),
                ("account_id", V::opt_text(owner.clone())),
                ("token_hash", V::text(sha256_hex(&tok))),
                ("created_at", at.clone()),
            ],
        )?);
        creds.insert(
            role.to_string(),
            json!({"id": id, "account_id": owner, "token": tok}),
        );
    }

    let output = json!({
        "dev_only": "DEV ONLY: fixed, published passwords and tokens; never load into production",
        "account": {"id": acc, "name": "Acme Corp", "domain": DOMAIN},
        "users": users,
        "devices": devices,
        "calendar": {"id": cal, "name": "Business hours"},
        "flow": {"id": flow, "name": "Main IVR", "version": 1},
        "number": {"id": num, "e164": DID},
        "carrier": {"id": car, "name": "Demo Carrier", "address": "127.0.0.1/32", "port": 5080},
        "trunks": trunks,
        "media_node": {"id": mn, "name": "fs-1", "sip_host": "127.0.0.1", "sip_port": 5070},
        "credentials": creds,
    });
    Ok(Plan {
        statements: s,
        output,
        pre_check: Some(Check {
            sql: check_sql()?,
            verdict: check_before,
        }),
        post_check: Some(Check {
            sql: check_sql()?,
            verdict: check_after,
        }),
    })
}

/// The rows whose ownership matters: (column name, scalar subquery, expected demo id).
fn expectations() -> Result<Vec<(String, String, String)>> {
    let acc = account_id();
    let mut e = vec![
        (
            "domain".to_string(),
            format!(
                "(SELECT account_id FROM sip_domains WHERE domain = {})",
                lit(DOMAIN)?
            ),
            acc.clone(),
        ),
        (
            "number".to_string(),
            format!("(SELECT id FROM phone_numbers WHERE e164 = {})", lit(DID)?),
            demo_id("num", 1),
        ),
    ];
    for (i, (ext, ..)) in USERS.iter().enumerate() {
        let n = i as u8 + 1;
        e.push((
            format!("user_{ext}"),
            format!(
                "(SELECT id FROM users WHERE account_id = {} AND extension = {})",
                lit(&acc)?,
                lit(ext)?
            ),
            demo_id("usr", n),
        ));
        e.push((
            format!("device_{ext}"),
            format!(
                "(SELECT id FROM devices WHERE username = {} AND realm = {})",
                lit(ext)?,
                lit(DOMAIN)?
            ),
            demo_id("dev", n),
        ));
    }
    Ok(e)
}

fn check_sql() -> Result<String> {
    let cols: Vec<String> = expectations()?
        .into_iter()
        .map(|(name, sel, _)| format!("{sel} AS {name}"))
        .collect();
    Ok(format!("SELECT {}", cols.join(", ")))
}

/// Before loading: each row must be absent (first run) or the demo's own (re-run).
fn check_before(rows: &[Row]) -> Result<()> {
    verdict(rows, true)
}

/// After loading: each row must be the demo's own.
fn check_after(rows: &[Row]) -> Result<()> {
    verdict(rows, false)
}

fn verdict(rows: &[Row], absent_ok: bool) -> Result<()> {
    let Some(row) = rows.first() else {
        return failure("demo check returned no rows");
    };
    let mut conflicts = Vec::new();
    for (name, _, expected) in expectations()? {
        let got = col_str(row, &name);
        let fine = match got.as_deref() {
            Some(g) => g == expected,
            None => absent_ok,
        };
        if !fine {
            conflicts.push(format!(
                "{name} is {} (demo expects {expected})",
                got.as_deref().unwrap_or("missing")
            ));
        }
    }
    match (conflicts.is_empty(), absent_ok) {
        (true, _) => Ok(()),
        (false, true) => failure(format!(
            "the demo data conflicts with existing rows, nothing was loaded: {}; remove the conflicting rows or use a fresh database",
            conflicts.join("; ")
        )),
        (false, false) => failure(format!(
            "the demo data conflicts with existing rows, so parts of it were not loaded: {}; remove the conflicting rows or use a fresh database",
            conflicts.join("; ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callplane::sip::digest::{ha1, Algorithm};

    #[test]
    fn demo_is_deterministic_and_idempotent_sql() {
        let a = plan().unwrap();
        let b = plan().unwrap();
        assert_eq!(a.sql(), b.sql());
        assert_eq!(a.output, b.output);
        assert_eq!(a.statements.len(), 20);
        for stmt in &a.statements {
            assert!(stmt.starts_with("INSERT OR IGNORE INTO "), "{stmt}");
        }
    }

    #[test]
    fn demo_ids_are_valid_and_distinct() {
        let mut all = Vec::new();
        for (prefix, n) in [
            ("acc", 1),
            ("usr", 2),
            ("dev", 2),
            ("cal", 1),
            ("flow", 1),
            ("num", 1),
            ("car", 1),
            ("trk", 3),
            ("mn", 1),
            ("cred", 4),
        ] {
            for i in 1..=n {
                let id = demo_id(prefix, i);
                assert!(callplane::typeid::is_valid(&id, prefix), "{id}");
                all.push(id);
            }
        }
        let mut dedup = all.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), all.len());
    }

    #[test]
    fn demo_devices_and_tokens() {
        let p = plan().unwrap();
        let sql = p.sql();
        assert!(!sql.contains("acme-1001-secret"));
        assert!(sql.contains(&ha1(
            Algorithm::Md5,
            "1001",
            "acme.sip.io",
            "acme-1001-secret"
        )));
        assert!(sql.contains(&ha1(
            Algorithm::Sha256,
            "1002",
            "acme.sip.io",
            "acme-1002-secret"
        )));
        for (i, (role, secret, _)) in CREDENTIALS.iter().enumerate() {
            let tok = p.output["credentials"][role]["token"]
                .as_str()
                .unwrap()
                .to_string();
            assert_eq!(tok, token(i));
            assert!(tok.ends_with(&format!(".{secret}")));
            assert!(crate::token::parse_supplied("token", &tok).is_ok(), "{tok}");
            assert!(sql.contains(&sha256_hex(&tok)));
            assert!(!sql.contains(secret));
        }
        assert_eq!(
            p.output["credentials"]["agent-app"]["account_id"],
            account_id().as_str()
        );
        assert_eq!(
            p.output["credentials"]["operator"]["account_id"],
            Value::Null
        );
        assert!(sql.contains(&format!("'{}'", FLOW_DEFINITION)));
        assert!(sql.contains(&format!("INSERT OR IGNORE INTO trunks (id, account_id, name, priority, host, port, transport, number_format, prefix, caller_id_mode, caller_id_number, fr_timer_ms, fr_inv_timer_ms, enabled, created_at) VALUES ('{}', NULL, 'wholesale-default', 100, '127.0.0.1', 5092,", demo_id("trk", 3))));
        // The demo calendar passes the routing core's validation.
        crate::validate::calendar("America/New_York", WEEKLY, HOLIDAYS, "[]").unwrap();
    }

    #[test]
    fn demo_checks() {
        let p = plan().unwrap();
        let pre = p.pre_check.unwrap();
        let post = p.post_check.unwrap();
        assert!(post.sql.starts_with(
            "SELECT (SELECT account_id FROM sip_domains WHERE domain = 'acme.sip.io') AS domain, "
        ));
        assert_eq!(pre.sql, post.sql);
        let mut good = Row::new();
        let mut empty = Row::new();
        for (name, _, expected) in expectations().unwrap() {
            good.insert(name.clone(), json!(expected));
            empty.insert(name, Value::Null);
        }
        (pre.verdict)(&[good.clone()]).unwrap();
        (post.verdict)(&[good.clone()]).unwrap();
        // A fresh database is fine before, not after.
        (pre.verdict)(&[empty.clone()]).unwrap();
        assert!((post.verdict)(&[empty]).is_err());
        let mut bad = good.clone();
        bad.insert("domain".into(), json!("acc_someoneelse"));
        bad.insert("device_1002".into(), Value::Null);
        let e = (pre.verdict)(&[bad.clone()]).unwrap_err();
        assert!(
            e.message()
                .contains("nothing was loaded: domain is acc_someoneelse"),
            "{}",
            e.message()
        );
        assert!(!e.message().contains("device_1002"), "{}", e.message());
        let e = (post.verdict)(&[bad]).unwrap_err();
        assert!(
            e.message().contains("domain is acc_someoneelse"),
            "{}",
            e.message()
        );
        assert!(
            e.message().contains("device_1002 is missing"),
            "{}",
            e.message()
        );
        assert!((pre.verdict)(&[]).is_err());
    }
}
