//! `calendar create`: business hours (weekly schedule, holidays, overrides) in an IANA time zone.
//! JSON shapes as documented in `src/routing/calendar.rs`; stored as given once validated.

use serde_json::json;

use crate::account::{account_probe, require_account};
use crate::args::{val, Flag, Flags};
use crate::env::{lookup_one, new_id, Env};
use crate::error::Result;
use crate::sql::{insert, Plan, V};
use crate::validate as v;

pub const CREATE_FLAGS: &[Flag] = &[
    val("account"),
    val("name"),
    val("time-zone"),
    val("weekly"),
    val("holidays"),
    val("overrides"),
];

pub fn create(f: &Flags, env: &mut dyn Env) -> Result<Plan> {
    let account = v::id("account", f.req("account")?, "acc", "an account")?;
    let name = v::text("name", f.req("name")?, 200)?;
    let tz = v::time_zone("time-zone", f.req("time-zone")?)?;
    let weekly_text = f.req("weekly")?.trim().to_string();
    let holidays_text = f.get("holidays").unwrap_or("[]").trim().to_string();
    let overrides_text = f.get("overrides").unwrap_or("[]").trim().to_string();
    let (weekly, holidays, overrides) =
        v::calendar(&tz, &weekly_text, &holidays_text, &overrides_text)?;

    let row = lookup_one(env, &format!("SELECT {}", account_probe(&account)?))?;
    require_account(&row, &account)?;

    let now = env.now_ms();
    let id = new_id(env, "cal", now)?;
    let stmt = insert(
        "calendars",
        false,
        &[
            ("id", V::text(&id)),
            ("account_id", V::text(&account)),
            ("name", V::text(&name)),
            ("time_zone", V::text(&tz)),
            ("weekly", V::text(weekly_text)),
            ("holidays", V::text(holidays_text)),
            ("overrides", V::text(overrides_text)),
            ("created_at", V::Int(now as i64)),
        ],
    )?;
    Ok(Plan::new(
        vec![stmt],
        json!({"id": id, "account_id": account, "name": name, "time_zone": tz, "weekly": weekly, "holidays": holidays, "overrides": overrides, "created_at": now}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::testing::TestEnv;
    use crate::testutil::flags;

    #[test]
    fn create_calendar() {
        let acc = callplane::typeid::new("acc", 1, [7; 10]);
        let mut env = TestEnv::row(json!({"account": 1}));
        let weekly = r#"{"mon":[["09:00","17:00"]],"fri":[["09:00","17:00"]]}"#;
        let p = create(
            &flags(
                CREATE_FLAGS,
                &[
                    "--account",
                    &acc,
                    "--name",
                    "Business hours",
                    "--time-zone",
                    "America/New_York",
                    "--weekly",
                    weekly,
                    "--holidays",
                    r#"[{"date":"2026-12-25","name":"Xmas"}]"#,
                ],
            ),
            &mut env,
        )
        .unwrap();
        let id = p.output["id"].as_str().unwrap().to_string();
        assert!(callplane::typeid::is_valid(&id, "cal"));
        assert_eq!(
            p.sql(),
            format!("INSERT INTO calendars (id, account_id, name, time_zone, weekly, holidays, overrides, created_at) VALUES ('{id}', '{acc}', 'Business hours', 'America/New_York', '{weekly}', '[{{\"date\":\"2026-12-25\",\"name\":\"Xmas\"}}]', '[]', 1767225600000);\n")
        );
        assert_eq!(p.output["weekly"]["mon"][0][1], "17:00");
        assert_eq!(p.output["overrides"], json!([]));
    }

    #[test]
    fn calendar_errors() {
        let acc = callplane::typeid::new("acc", 1, [7; 10]);
        for args in [
            vec![
                "--account",
                &acc,
                "--name",
                "B",
                "--time-zone",
                "America/New_York",
            ],
            vec![
                "--account",
                &acc,
                "--name",
                "B",
                "--time-zone",
                "Nowhere",
                "--weekly",
                "{}",
            ],
            vec![
                "--account",
                &acc,
                "--name",
                "B",
                "--time-zone",
                "UTC",
                "--weekly",
                "{",
            ],
            vec![
                "--account",
                &acc,
                "--name",
                "B",
                "--time-zone",
                "UTC",
                "--weekly",
                "{}",
                "--holidays",
                "[{\"date\":\"2026-02-30\"}]",
            ],
            vec![
                "--account",
                &acc,
                "--name",
                "B",
                "--time-zone",
                "UTC",
                "--weekly",
                "{}",
                "--overrides",
                "[1]",
            ],
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
        let mut env = TestEnv::row(json!({"account": 0}));
        let e = create(
            &flags(
                CREATE_FLAGS,
                &[
                    "--account",
                    &acc,
                    "--name",
                    "B",
                    "--time-zone",
                    "UTC",
                    "--weekly",
                    "{}",
                ],
            ),
            &mut env,
        )
        .err()
        .unwrap();
        assert_eq!(e.exit_code(), 1);
    }
}
