//! `trunk create`: an outbound SIP trunk for one account, or a wholesale default (no account).

use serde_json::json;

use crate::account::{account_probe, require_account};
use crate::args::{sw, val, Flag, Flags};
use crate::env::{lookup_one, new_id, Env};
use crate::error::{usage, Result};
use crate::media_node::TRANSPORTS;
use crate::sql::{insert, Plan, V};
use crate::validate as v;

pub const CREATE_FLAGS: &[Flag] = &[
    val("account"),
    sw("wholesale"),
    val("name"),
    val("host"),
    val("port"),
    val("transport"),
    val("priority"),
    val("format"),
    val("prefix"),
    val("caller-id-mode"),
    val("caller-id-number"),
    val("fr-timer-ms"),
    val("fr-inv-timer-ms"),
];

pub const FORMATS: &[&str] = &["e164", "e164_no_plus", "national"];
pub const CALLER_ID_MODES: &[&str] = &["account", "fixed", "passthrough"];

pub fn create(f: &Flags, env: &mut dyn Env) -> Result<Plan> {
    let account = match (f.get("account"), f.on("wholesale")) {
        (Some(a), false) => Some(v::id("account", a, "acc", "an account")?),
        (None, true) => None,
        _ => return usage("trunk create needs exactly one of --account ID or --wholesale"),
    };
    let name = v::text("name", f.req("name")?, 200)?;
    let host = v::host("host", f.req("host")?)?;
    let port = f.get("port").map_or(Ok(5060), |p| v::port("port", p))?;
    let transport = v::one_of("transport", f.get("transport").unwrap_or("udp"), TRANSPORTS)?;
    let priority = f
        .get("priority")
        .map_or(Ok(10), |p| v::int_range("priority", p, 0, 1_000_000))?;
    let format = v::one_of("format", f.get("format").unwrap_or("e164"), FORMATS)?;
    let prefix = v::tech_prefix("prefix", f.get("prefix").unwrap_or(""))?;
    let mode = v::one_of(
        "caller-id-mode",
        f.get("caller-id-mode").unwrap_or("account"),
        CALLER_ID_MODES,
    )?;
    let cid = f
        .get("caller-id-number")
        .map(|c| v::e164("caller-id-number", c))
        .transpose()?;
    match (mode.as_str(), &cid) {
        ("fixed", None) => return usage("--caller-id-mode fixed needs --caller-id-number"),
        ("fixed", Some(_)) | (_, None) => {}
        (_, Some(_)) => {
            return usage("--caller-id-number is only used with --caller-id-mode fixed")
        }
    }
    let fr = f
        .get("fr-timer-ms")
        .map_or(Ok(3000), |t| v::int_range("fr-timer-ms", t, 100, 600_000))?;
    let fr_inv = f.get("fr-inv-timer-ms").map_or(Ok(30000), |t| {
        v::int_range("fr-inv-timer-ms", t, 1000, 600_000)
    })?;

    if let Some(a) = &account {
        let row = lookup_one(env, &format!("SELECT {}", account_probe(a)?))?;
        require_account(&row, a)?;
    }

    let now = env.now_ms();
    let id = new_id(env, "trk", now)?;
    let stmt = insert(
        "trunks",
        false,
        &[
            ("id", V::text(&id)),
            ("account_id", V::opt_text(account.clone())),
            ("name", V::text(&name)),
            ("priority", V::Int(priority)),
            ("host", V::text(&host)),
            ("port", V::Int(port)),
            ("transport", V::text(&transport)),
            ("number_format", V::text(&format)),
            ("prefix", V::text(&prefix)),
            ("caller_id_mode", V::text(&mode)),
            ("caller_id_number", V::opt_text(cid.clone())),
            ("fr_timer_ms", V::Int(fr)),
            ("fr_inv_timer_ms", V::Int(fr_inv)),
            ("enabled", V::Int(1)),
            ("created_at", V::Int(now as i64)),
        ],
    )?;
    Ok(Plan::new(
        vec![stmt],
        json!({
            "id": id, "account_id": account, "wholesale": account.is_none(), "name": name, "priority": priority,
            "host": host, "port": port, "transport": transport, "number_format": format, "prefix": prefix,
            "caller_id_mode": mode, "caller_id_number": cid, "fr_timer_ms": fr, "fr_inv_timer_ms": fr_inv,
            "enabled": true, "created_at": now
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::testing::TestEnv;
    use crate::testutil::flags;

    #[test]
    fn account_trunk_defaults() {
        let acc = callplane::typeid::new("acc", 1, [7; 10]);
        let mut env = TestEnv::row(json!({"account": 1}));
        let p = create(
            &flags(
                CREATE_FLAGS,
                &[
                    "--account",
                    &acc,
                    "--name",
                    "primary",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "5090",
                ],
            ),
            &mut env,
        )
        .unwrap();
        let id = p.output["id"].as_str().unwrap().to_string();
        assert!(callplane::typeid::is_valid(&id, "trk"));
        assert_eq!(
            p.sql(),
            format!("INSERT INTO trunks (id, account_id, name, priority, host, port, transport, number_format, prefix, caller_id_mode, caller_id_number, fr_timer_ms, fr_inv_timer_ms, enabled, created_at) VALUES ('{id}', '{acc}', 'primary', 10, '127.0.0.1', 5090, 'udp', 'e164', '', 'account', NULL, 3000, 30000, 1, 1767225600000);\n")
        );
        assert_eq!(env.queries.len(), 1);
        assert_eq!(p.output["wholesale"], false);
    }

    #[test]
    fn wholesale_trunk_everything() {
        let mut env = TestEnv::new(); // no lookup for wholesale trunks
        let p = create(
            &flags(
                CREATE_FLAGS,
                &[
                    "--wholesale",
                    "--name",
                    "carrier-x",
                    "--host",
                    "sip.carrier.example",
                    "--transport",
                    "tls",
                    "--port",
                    "5061",
                    "--priority",
                    "100",
                    "--format",
                    "e164_no_plus",
                    "--prefix",
                    "1234#",
                    "--caller-id-mode",
                    "fixed",
                    "--caller-id-number",
                    "+15551230100",
                    "--fr-timer-ms",
                    "2000",
                    "--fr-inv-timer-ms",
                    "60000",
                ],
            ),
            &mut env,
        )
        .unwrap();
        assert!(p.sql().contains("NULL, 'carrier-x', 100, 'sip.carrier.example', 5061, 'tls', 'e164_no_plus', '1234#', 'fixed', '+15551230100', 2000, 60000, 1,"), "{}", p.sql());
        assert_eq!(p.output["account_id"], serde_json::Value::Null);
        assert_eq!(p.output["wholesale"], true);
    }

    #[test]
    fn trunk_errors() {
        let acc = callplane::typeid::new("acc", 1, [7; 10]);
        for args in [
            vec!["--name", "t", "--host", "h.example"],
            vec![
                "--account",
                &acc,
                "--wholesale",
                "--name",
                "t",
                "--host",
                "h.example",
            ],
            vec![
                "--wholesale",
                "--name",
                "t",
                "--host",
                "h.example",
                "--transport",
                "ws",
            ],
            vec![
                "--wholesale",
                "--name",
                "t",
                "--host",
                "h.example",
                "--format",
                "intl",
            ],
            vec![
                "--wholesale",
                "--name",
                "t",
                "--host",
                "h.example",
                "--caller-id-mode",
                "fixed",
            ],
            vec![
                "--wholesale",
                "--name",
                "t",
                "--host",
                "h.example",
                "--caller-id-number",
                "+15551230100",
            ],
            vec![
                "--wholesale",
                "--name",
                "t",
                "--host",
                "h.example",
                "--prefix",
                "9;",
            ],
            vec![
                "--wholesale",
                "--name",
                "t",
                "--host",
                "h.example",
                "--fr-timer-ms",
                "0",
            ],
            vec![
                "--wholesale",
                "--name",
                "t",
                "--host",
                "h.example",
                "--priority",
                "-1",
            ],
            vec!["--wholesale", "--name", "t", "--host", "h.example:5060"],
        ] {
            let mut env = TestEnv::new();
            assert_eq!(
                create(&flags(CREATE_FLAGS, &args), &mut env)
                    .err()
                    .unwrap()
                    .exit_code(),
                2,
                "{args:?}"
            );
        }
    }
}
