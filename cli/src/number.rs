//! `number create`: a DID (E.164) routed to a flow, a user or an external number, optionally
//! with a business-hours calendar and an after-hours target.

use serde_json::json;

use crate::account::{account_probe, require_account};
use crate::args::{val, Flag, Flags};
use crate::env::{lookup_one, new_id, Env};
use crate::error::{failure, usage, Result};
use crate::sql::{col_str, insert, lit, Plan, Row, V};
use crate::validate as v;

pub const CREATE_FLAGS: &[Flag] = &[
    val("account"),
    val("e164"),
    val("target"),
    val("calendar"),
    val("after-hours"),
];

/// SQL selecting the owning account of a flow/user target (NULL for external targets).
fn owner_sel(kind: &str, value: &str) -> Result<String> {
    Ok(match kind {
        "flow" => format!("(SELECT account_id FROM flows WHERE id = {})", lit(value)?),
        "user" => format!("(SELECT account_id FROM users WHERE id = {})", lit(value)?),
        _ => "NULL".to_string(),
    })
}

/// A flow/user/calendar reference must exist and belong to `account`.
fn check_owner(row: &Row, col: &str, what: &str, id: &str, account: &str) -> Result<()> {
    match col_str(row, col) {
        Some(owner) if owner == account => Ok(()),
        Some(owner) => failure(format!(
            "{what} {id} belongs to account {owner}, not {account}"
        )),
        None => failure(format!("{what} {id} not found")),
    }
}

pub fn create(f: &Flags, env: &mut dyn Env) -> Result<Plan> {
    let account = v::id("account", f.req("account")?, "acc", "an account")?;
    let e164 = v::e164("e164", f.req("e164")?)?;
    let (t_kind, t_value) = v::target("target", f.req("target")?)?;
    let calendar = f
        .get("calendar")
        .map(|c| v::id("calendar", c, "cal", "a calendar"))
        .transpose()?;
    let after = f
        .get("after-hours")
        .map(|t| v::target("after-hours", t))
        .transpose()?;
    if after.is_some() && calendar.is_none() {
        return usage(
            "--after-hours needs --calendar (the calendar decides when it is after hours)",
        );
    }
    for (kind, value) in
        std::iter::once((&t_kind, &t_value)).chain(after.iter().map(|(k, v)| (k, v)))
    {
        if kind == "external" && *value == e164 {
            return usage(format!("a number cannot forward to itself ({e164})"));
        }
    }

    let mut sel = vec![
        account_probe(&account)?,
        format!(
            "(SELECT account_id FROM phone_numbers WHERE e164 = {}) AS number_owner",
            lit(&e164)?
        ),
        format!("{} AS target_owner", owner_sel(&t_kind, &t_value)?),
    ];
    if let Some(c) = &calendar {
        sel.push(format!(
            "(SELECT account_id FROM calendars WHERE id = {}) AS calendar_owner",
            lit(c)?
        ));
    }
    if let Some((k, val)) = &after {
        sel.push(format!("{} AS after_hours_owner", owner_sel(k, val)?));
    }
    let row = lookup_one(env, &format!("SELECT {}", sel.join(", ")))?;
    require_account(&row, &account)?;
    if let Some(owner) = col_str(&row, "number_owner") {
        return if owner == account {
            failure(format!(
                "{e164} is already provisioned in account {account}"
            ))
        } else {
            failure(format!(
                "{e164} is already provisioned in another account ({owner})"
            ))
        };
    }
    if t_kind != "external" {
        check_owner(&row, "target_owner", &t_kind, &t_value, &account)?;
    }
    if let Some(c) = &calendar {
        check_owner(&row, "calendar_owner", "calendar", c, &account)?;
    }
    if let Some((k, val)) = &after {
        if k != "external" {
            check_owner(&row, "after_hours_owner", k, val, &account)?;
        }
    }

    let now = env.now_ms();
    let id = new_id(env, "num", now)?;
    let (a_kind, a_value) = after.clone().unzip();
    let stmt = insert(
        "phone_numbers",
        false,
        &[
            ("id", V::text(&id)),
            ("e164", V::text(&e164)),
            ("account_id", V::text(&account)),
            ("target_type", V::text(&t_kind)),
            ("target_value", V::text(&t_value)),
            ("calendar_id", V::opt_text(calendar.clone())),
            ("after_hours_type", V::opt_text(a_kind.clone())),
            ("after_hours_value", V::opt_text(a_value.clone())),
            ("created_at", V::Int(now as i64)),
        ],
    )?;
    Ok(Plan::new(
        vec![stmt],
        json!({
            "id": id, "e164": e164, "account_id": account, "target_type": t_kind, "target_value": t_value,
            "calendar_id": calendar, "after_hours_type": a_kind, "after_hours_value": a_value, "created_at": now
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::testing::TestEnv;
    use crate::testutil::flags;

    fn ids() -> (String, String, String, String) {
        (
            callplane::typeid::new("acc", 1, [7; 10]),
            callplane::typeid::new("flow", 1, [8; 10]),
            callplane::typeid::new("cal", 1, [9; 10]),
            callplane::typeid::new("usr", 1, [10; 10]),
        )
    }

    #[test]
    fn number_to_flow_with_calendar_and_after_hours() {
        let (acc, flow, cal, usr) = ids();
        let mut env = TestEnv::row(
            json!({"account": 1, "number_owner": null, "target_owner": acc, "calendar_owner": acc, "after_hours_owner": acc}),
        );
        let target = format!("flow:{flow}");
        let after = format!("user:{usr}");
        let p = create(
            &flags(
                CREATE_FLAGS,
                &[
                    "--account",
                    &acc,
                    "--e164",
                    "+15551230100",
                    "--target",
                    &target,
                    "--calendar",
                    &cal,
                    "--after-hours",
                    &after,
                ],
            ),
            &mut env,
        )
        .unwrap();
        let id = p.output["id"].as_str().unwrap().to_string();
        assert_eq!(
            p.sql(),
            format!("INSERT INTO phone_numbers (id, e164, account_id, target_type, target_value, calendar_id, after_hours_type, after_hours_value, created_at) VALUES ('{id}', '+15551230100', '{acc}', 'flow', '{flow}', '{cal}', 'user', '{usr}', 1767225600000);\n")
        );
        assert_eq!(
            env.queries[0],
            format!("SELECT (SELECT COUNT(*) FROM accounts WHERE id = '{acc}') AS account, (SELECT account_id FROM phone_numbers WHERE e164 = '+15551230100') AS number_owner, (SELECT account_id FROM flows WHERE id = '{flow}') AS target_owner, (SELECT account_id FROM calendars WHERE id = '{cal}') AS calendar_owner, (SELECT account_id FROM users WHERE id = '{usr}') AS after_hours_owner")
        );
        assert_eq!(p.output["after_hours_type"], "user");
    }

    #[test]
    fn number_to_external() {
        let (acc, ..) = ids();
        let mut env =
            TestEnv::row(json!({"account": 1, "number_owner": null, "target_owner": null}));
        let p = create(
            &flags(
                CREATE_FLAGS,
                &[
                    "--account",
                    &acc,
                    "--e164",
                    "+15551230199",
                    "--target",
                    "external:+442079460000",
                ],
            ),
            &mut env,
        )
        .unwrap();
        assert!(
            p.sql()
                .contains("'external', '+442079460000', NULL, NULL, NULL,"),
            "{}",
            p.sql()
        );
        assert_eq!(p.output["calendar_id"], serde_json::Value::Null);
    }

    #[test]
    fn number_ownership_failures() {
        let (acc, flow, cal, _) = ids();
        let target = format!("flow:{flow}");
        let args = [
            "--account",
            acc.as_str(),
            "--e164",
            "+15551230100",
            "--target",
            target.as_str(),
            "--calendar",
            cal.as_str(),
        ];
        for (row, expect) in [
            (
                json!({"account": 1, "number_owner": acc, "target_owner": acc, "calendar_owner": acc}),
                "already provisioned in account",
            ),
            (
                json!({"account": 1, "number_owner": "acc_x", "target_owner": acc, "calendar_owner": acc}),
                "another account",
            ),
            (
                json!({"account": 1, "number_owner": null, "target_owner": null, "calendar_owner": acc}),
                "not found",
            ),
            (
                json!({"account": 1, "number_owner": null, "target_owner": "acc_x", "calendar_owner": acc}),
                "belongs to account acc_x",
            ),
            (
                json!({"account": 1, "number_owner": null, "target_owner": acc, "calendar_owner": "acc_y"}),
                "calendar",
            ),
            (
                json!({"account": 0, "number_owner": null, "target_owner": null, "calendar_owner": null}),
                "account",
            ),
        ] {
            let mut env = TestEnv::row(row);
            let e = create(&flags(CREATE_FLAGS, &args), &mut env).err().unwrap();
            assert_eq!(e.exit_code(), 1);
            assert!(e.message().contains(expect), "{} / {expect}", e.message());
        }
    }

    #[test]
    fn number_usage_errors() {
        let (acc, flow, cal, usr) = ids();
        let good_t = format!("flow:{flow}");
        let wrong_prefix = format!("flow:{usr}");
        let user_t = format!("user:{flow}");
        for args in [
            vec![
                "--account",
                &acc,
                "--e164",
                "5551230100",
                "--target",
                &good_t,
            ],
            vec![
                "--account",
                &acc,
                "--e164",
                "+15551230100",
                "--target",
                &wrong_prefix,
            ],
            vec![
                "--account",
                &acc,
                "--e164",
                "+15551230100",
                "--target",
                &user_t,
            ],
            vec![
                "--account",
                &acc,
                "--e164",
                "+15551230100",
                "--target",
                "external:123",
            ],
            vec![
                "--account",
                &acc,
                "--e164",
                "+15551230100",
                "--target",
                "queue:1",
            ],
            vec![
                "--account",
                &acc,
                "--e164",
                "+15551230100",
                "--target",
                &good_t,
                "--after-hours",
                &good_t,
            ],
            vec![
                "--account",
                &acc,
                "--e164",
                "+15551230100",
                "--target",
                &good_t,
                "--calendar",
                &flow,
            ],
            vec![
                "--account",
                &acc,
                "--e164",
                "+15551230100",
                "--target",
                "external:+15551230100",
            ],
            vec![
                "--account",
                &acc,
                "--e164",
                "+15551230100",
                "--target",
                &good_t,
                "--calendar",
                &cal,
                "--after-hours",
                "external:+15551230100",
            ],
            vec!["--account", &acc, "--e164", "+15551230100"],
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
