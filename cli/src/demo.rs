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
/// The "Main IVR" (issue 3 §6), stored byte for byte as written here (docs/provisioning.md
/// quotes it, and a test keeps the two identical). Business-hours branch on the demo calendar
/// (`cal_…1`): open → menu (1 → queue "sales", 2 → Bob = user 1002 `usr_…2`, 3 → voicemail);
/// closed → after-hours message, holiday → holiday message, both then voicemail. TTS only: the
/// demo has no audio in R2. If the calendar cannot be evaluated, callers get the menu.
pub const FLOW_DEFINITION: &str = r##"{"version": 1, "start": "welcome", "nodes": {
  "welcome": {"type": "play", "tts": {"text": "Thank you for calling Acme."}, "next": "hours"},
  "hours": {"type": "branch", "cases": [
      {"when": {"calendar": "cal_01kdvdna00e008000000000001", "is": "open"}, "next": "main"},
      {"when": {"calendar": "cal_01kdvdna00e008000000000001", "is": "holiday"}, "next": "holiday"},
      {"when": {"calendar": "cal_01kdvdna00e008000000000001", "is": "closed"}, "next": "after_hours"}],
    "default": "main"},
  "main": {"type": "menu", "prompt": {"tts": {"text": "For sales press 1. For Bob press 2. To leave a message press 3."}},
           "options": {"1": "sales", "2": "bob", "3": "voicemail"}, "retries": 2,
           "invalidPrompt": {"tts": {"text": "Sorry, that is not a valid choice."}},
           "noInputPrompt": {"tts": {"text": "Sorry, I did not hear anything."}}, "fallback": "voicemail"},
  "sales": {"type": "enqueue", "queue": "sales", "holdMusic": {"tts": {"text": "Please stay on the line. Your call is important to us."}},
            "maxWaitSecs": 300, "announce": {"everySecs": 60, "position": true},
            "on": {"answered": "bye", "abandoned": "bye", "error": "sales_busy"}, "next": "sales_busy"},
  "sales_busy": {"type": "play", "tts": {"text": "Sorry, no one in sales is available right now."}, "next": "voicemail"},
  "bob": {"type": "dial", "targets": [{"user": "usr_01kdvdna00e008000000000002"}], "timeoutSecs": 20, "on": {"answered": "bye"}, "next": "voicemail"},
  "after_hours": {"type": "play", "tts": {"text": "We are closed. Our hours are 9 to 5, Monday to Friday."}, "next": "voicemail"},
  "holiday": {"type": "play", "tts": {"text": "We are closed today for the holiday."}, "next": "voicemail"},
  "voicemail": {"type": "record", "prompt": {"tts": {"text": "Please leave a message after the tone. Press pound when you are done."}},
                "beep": true, "maxSecs": 120, "silenceSecs": 5, "finishKey": "#", "mailbox": "main",
                "on": {"recorded": "thanks"}, "next": "bye"},
  "thanks": {"type": "play", "tts": {"text": "Thank you. Goodbye."}, "next": "bye"},
  "bye": {"type": "hangup"}
}}"##;
/// The demo ACD queue (docs/acd.md): what the IVR's "sales" node enqueues into.
pub const QUEUE_NAME: &str = "sales";
pub const QUEUE_STRATEGY: &str = "longest_idle";
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
    // The demo goes through the same validator as `flow create` (its references are the demo's
    // own calendar and user, inserted below; a unit test checks that).
    if let Err(errors) = callplane::flow::definition::parse_and_validate(FLOW_DEFINITION) {
        return failure(format!(
            "the demo flow definition is invalid: {}",
            callplane::flow::definition::describe(&errors)
        ));
    }
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

    // The "sales" queue the demo IVR's `enqueue` names, with Alice (1001) and Bob (1002).
    let que = demo_id("que", 1);
    s.push(insert(
        "queues",
        true,
        &[
            ("id", V::text(&que)),
            ("account_id", V::text(&acc)),
            ("name", V::text(QUEUE_NAME)),
            ("strategy", V::text(QUEUE_STRATEGY)),
            ("tiers", V::text("[]")),
            ("offer_timeout_secs", V::Int(20)),
            ("wrapup_secs", V::Int(10)),
            ("no_answer_penalty_secs", V::Int(30)),
            ("max_no_answer", V::Int(3)),
            ("max_wait_secs", V::Int(600)),
            ("max_size", V::Null),
            ("hold_music", V::Null),
            ("announce_every_secs", V::Int(60)),
            ("overflow_queue_id", V::Null),
            ("created_at", at.clone()),
        ],
    )?);
    let mut members = Vec::new();
    for (i, _) in USERS.iter().enumerate() {
        let usr = demo_id("usr", i as u8 + 1);
        s.push(insert(
            "queue_members",
            true,
            &[
                ("queue_id", V::text(&que)),
                ("user_id", V::text(&usr)),
                ("tier", V::Int(1)),
                ("position", V::Int(i as i64)),
            ],
        )?);
        members.push(usr);
    }

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
        "queue": {"id": que, "name": QUEUE_NAME, "strategy": QUEUE_STRATEGY, "members": members},
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
    // A database loaded by an older demo keeps its old flow version 1 (INSERT OR IGNORE, and
    // published versions are immutable): say so rather than silently run the old flow.
    e.push((
        "flow_v1".to_string(),
        format!(
            "(SELECT CASE WHEN definition = {} THEN 'the demo IVR' ELSE 'another definition' END FROM flow_versions WHERE flow_id = {} AND version = 1)",
            lit(FLOW_DEFINITION)?,
            lit(&demo_id("flow", 1))?
        ),
        "the demo IVR".to_string(),
    ));
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
    e.push((
        "queue_sales".to_string(),
        format!(
            "(SELECT id FROM queues WHERE account_id = {} AND name = {})",
            lit(&acc)?,
            lit(QUEUE_NAME)?
        ),
        demo_id("que", 1),
    ));
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
        assert_eq!(a.statements.len(), 23);
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
            ("que", 1),
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
        assert!(
            sql.contains(&format!("'{}'", FLOW_DEFINITION)),
            "the flow text is stored as written"
        );
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
        // A database loaded by an older demo (another flow version 1) is refused, not kept silently.
        let mut old_flow = good.clone();
        old_flow.insert("flow_v1".into(), json!("another definition"));
        let e = (pre.verdict)(&[old_flow]).unwrap_err();
        assert!(
            e.message()
                .contains("flow_v1 is another definition (demo expects the demo IVR)"),
            "{}",
            e.message()
        );
        assert!(pre.sql.contains(&format!(
            "(SELECT CASE WHEN definition = '{FLOW_DEFINITION}' THEN 'the demo IVR' ELSE 'another definition' END FROM flow_versions WHERE flow_id = '{}' AND version = 1) AS flow_v1",
            demo_id("flow", 1)
        )));
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

    // -----------------------------------------------------------------------------------
    // The demo IVR, checked with the flow core and driven through its interpreter
    // -----------------------------------------------------------------------------------

    use callplane::flow::definition::{parse_and_validate, Endpoint};
    use callplane::flow::interpreter::{self, Resolved};
    use callplane::flow::wire::FlowStart;
    use callplane::routing::calendar::Calendar;

    /// Wednesday 2026-11-18 10:00 in New York: open.
    const WED_OPEN: u64 = 1_795_014_000_000;
    /// Sunday 2026-11-22 10:00 in New York: closed.
    const SUN: u64 = 1_795_359_600_000;
    /// Friday 2026-12-25 10:00 in New York: the demo calendar's holiday.
    const XMAS: u64 = 1_798_210_800_000;

    #[test]
    fn demo_flow_is_valid_and_refers_only_to_demo_rows() {
        let def = parse_and_validate(FLOW_DEFINITION)
            .unwrap_or_else(|e| panic!("{}", callplane::flow::definition::describe(&e)));
        let refs: Vec<(&str, String)> = crate::flow::references(&def)
            .into_iter()
            .map(|r| (r.table, r.id))
            .collect();
        let cal = demo_id("cal", 1);
        let bob = demo_id("usr", 2);
        assert_eq!(
            refs,
            [
                ("users", bob.clone()),
                ("calendars", cal.clone()),
                ("calendars", cal.clone()),
                ("calendars", cal.clone()),
            ]
        );
        // …and those rows are inserted by the demo, in the demo account; Bob is user 1002.
        let p = plan().unwrap();
        let sql = p.sql();
        let acc = account_id();
        assert!(sql.contains(&format!("INSERT OR IGNORE INTO calendars (id, account_id, name, time_zone, weekly, holidays, overrides, created_at) VALUES ('{cal}', '{acc}', ")));
        assert!(sql.contains(&format!("INSERT OR IGNORE INTO users (id, account_id, extension, name, created_at) VALUES ('{bob}', '{acc}', '1002', 'Bob', ")));
        assert_eq!(p.output["users"]["1002"]["id"], bob.as_str());
        // TTS only: no media key or URL that the demo's R2 bucket would not hold.
        assert!(!FLOW_DEFINITION.contains("\"media\"") && !FLOW_DEFINITION.contains("\"url\""));
    }

    #[test]
    fn demo_flow_is_quoted_exactly_in_the_docs() {
        let docs = include_str!("../../docs/provisioning.md");
        let quoted = docs
            .split("```json\n")
            .skip(1)
            .filter_map(|b| b.split("\n```").next())
            .find(|b| b.contains(r#""start": "welcome""#))
            .expect("docs/provisioning.md quotes the demo flow in a ```json block");
        assert_eq!(quoted, FLOW_DEFINITION);
    }

    fn demo_env(calendar: bool) -> Resolved {
        let mut e = Resolved::new(format!("https://cp.example.com/media/{}/", account_id()));
        let cal = calendar.then(|| Calendar {
            time_zone: "America/New_York".into(),
            weekly: serde_json::from_str(WEEKLY).unwrap(),
            holidays: serde_json::from_str(HOLIDAYS).unwrap(),
            overrides: json!([]),
        });
        e.set_calendar(&demo_id("cal", 1), cal);
        e.set_endpoint(
            Endpoint::User(demo_id("usr", 2)),
            Some(vec!["sip:1002@acme.sip.io".into()]),
        );
        e
    }

    /// A call to the demo IVR at `now`: each outcome answers the last command (`recorded`
    /// stands for `recorded:<the record command's key>`). Returns every command, as JSON.
    fn call(now: u64, env: &Resolved, outcomes: &[&str]) -> Vec<Value> {
        let def = parse_and_validate(FLOW_DEFINITION).unwrap();
        let req = FlowStart {
            call_id: "demo-call@pbx".into(),
            account_id: account_id(),
            flow_id: demo_id("flow", 1),
            vars: Default::default(),
        };
        let (mut session, first) = interpreter::start(&req, 1, &def, now, env).unwrap();
        let mut out = vec![serde_json::to_value(&first).unwrap()];
        for (i, o) in outcomes.iter().enumerate() {
            let last = out.last().unwrap();
            let outcome = match *o {
                "recorded" => format!("recorded:{}", last["key"].as_str().unwrap()),
                o => o.to_string(),
            };
            let seq = last["seq"].as_u64().unwrap();
            let now = now + 1000 * (i as u64 + 1);
            let r = interpreter::step(
                &mut session,
                &def,
                seq,
                &outcome.parse().unwrap(),
                None,
                now,
                env,
            )
            .unwrap_or_else(|e| panic!("step {seq} {outcome}: {e:?}"));
            out.push(serde_json::to_value(&r.response).unwrap());
        }
        out
    }

    fn said(cmd: &Value) -> Vec<String> {
        let list = cmd.get("media").or_else(|| cmd.get("prompts")).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_string())
            .collect()
    }

    fn commands(cmds: &[Value]) -> Vec<&str> {
        cmds.iter()
            .map(|c| c["command"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn demo_ivr_open_hours_menu() {
        let env = demo_env(true);
        // 1 → the sales queue; nobody answers in time → apology, voicemail, thanks, hangup.
        let c = call(
            WED_OPEN,
            &env,
            &[
                "played",
                "digit:1",
                "queue:timeout",
                "played",
                "recorded",
                "played",
                "hangup",
            ],
        );
        assert_eq!(
            commands(&c),
            ["play", "gather", "enqueue", "play", "record", "play", "hangup", "hangup"]
        );
        assert_eq!(said(&c[0]), ["Thank you for calling Acme."]);
        assert_eq!(
            said(&c[1]),
            ["For sales press 1. For Bob press 2. To leave a message press 3."]
        );
        assert_eq!(
            (
                c[1]["minDigits"].as_u64(),
                c[1]["maxDigits"].as_u64(),
                c[1]["maxAttempts"].as_u64()
            ),
            (Some(1), Some(1), Some(3))
        );
        assert_eq!(c[2]["queue"], "sales");
        assert_eq!(c[2]["maxWaitSecs"], 300);
        assert_eq!(
            c[2]["holdMusic"]["text"],
            "Please stay on the line. Your call is important to us."
        );
        assert_eq!(
            (
                c[2]["announce"]["everySecs"].as_u64(),
                c[2]["announce"]["position"].as_bool()
            ),
            (Some(60), Some(true))
        );
        assert_eq!(
            said(&c[3]),
            ["Sorry, no one in sales is available right now."]
        );
        let vm = &c[4];
        assert_eq!(
            (
                vm["beep"].as_bool(),
                vm["maxSecs"].as_u64(),
                vm["silenceSecs"].as_u64()
            ),
            (Some(true), Some(120), Some(5))
        );
        assert_eq!(
            (vm["finishKey"].as_str(), vm["mailbox"].as_str()),
            (Some("#"), Some("main"))
        );
        assert_eq!(
            said(vm),
            ["Please leave a message after the tone. Press pound when you are done."]
        );
        assert_eq!(said(&c[5]), ["Thank you. Goodbye."]);
        assert_eq!(c[7]["done"], true);
        // Answered by an agent → goodbye without voicemail.
        let c = call(WED_OPEN, &env, &["played", "digit:1", "queue:answered"]);
        assert_eq!(commands(&c), ["play", "gather", "enqueue", "hangup"]);

        // 2 → Bob (user 1002); no answer → voicemail.
        let c = call(WED_OPEN, &env, &["played", "digit:2", "no-answer"]);
        assert_eq!(commands(&c), ["play", "gather", "dial", "record"]);
        assert_eq!(c[2]["targets"][0]["uris"], json!(["sip:1002@acme.sip.io"]));
        assert_eq!(
            c[2]["targets"][0]["label"],
            format!("user {}", demo_id("usr", 2))
        );
        assert_eq!(c[2]["timeoutSecs"], 20);
        let c = call(WED_OPEN, &env, &["played", "digit:2", "answered"]);
        assert_eq!(commands(&c), ["play", "gather", "dial", "hangup"]);

        // 3 → voicemail.
        let c = call(WED_OPEN, &env, &["played", "digit:3", "recorded", "played"]);
        assert_eq!(commands(&c), ["play", "gather", "record", "play", "hangup"]);

        // Invalid key, then silence twice: re-prompted with the right apology, then voicemail.
        let c = call(
            WED_OPEN,
            &env,
            &["played", "digit:9", "no-input", "no-input"],
        );
        assert_eq!(
            commands(&c),
            ["play", "gather", "gather", "gather", "record"]
        );
        assert_eq!(said(&c[2])[0], "Sorry, that is not a valid choice.");
        assert_eq!(said(&c[3])[0], "Sorry, I did not hear anything.");
        assert_eq!(c[3]["attempt"], 3);
    }

    #[test]
    fn demo_ivr_closed_holiday_and_no_calendar() {
        let env = demo_env(true);
        let c = call(SUN, &env, &["played", "played", "recorded", "played"]);
        assert_eq!(commands(&c), ["play", "play", "record", "play", "hangup"]);
        assert_eq!(
            said(&c[1]),
            ["We are closed. Our hours are 9 to 5, Monday to Friday."]
        );
        let c = call(XMAS, &env, &["played", "played"]);
        assert_eq!(commands(&c), ["play", "play", "record"]);
        assert_eq!(said(&c[1]), ["We are closed today for the holiday."]);
        // A calendar that cannot be evaluated (deleted…) does not lock callers out: the menu.
        let c = call(SUN, &demo_env(false), &["played"]);
        assert_eq!(commands(&c), ["play", "gather"]);
    }
}
