//! `queue create`, `queue add-member`: ACD queues and their agents (docs/acd.md).
//!
//! A queue's settings go through the ACD core's own validator (`QueueConfig::validate`), so
//! provisioning accepts exactly what the account's Durable Object will run.

use serde_json::json;

use callplane::acd::{QueueConfig, Strategy, TierRule};

use crate::account::{account_probe, require_account};
use crate::args::{val, Flag, Flags};
use crate::env::{lookup_one, new_id, Env};
use crate::error::{failure, usage, Result};
use crate::sql::{col_i64, col_str, insert, lit, Plan, V};
use crate::validate as v;

pub const CREATE_FLAGS: &[Flag] = &[
    val("account"),
    val("name"),
    val("strategy"),
    val("tiers"),
    val("offer-timeout"),
    val("wrapup"),
    val("no-answer-penalty"),
    val("max-no-answer"),
    val("max-wait"),
    val("max-size"),
    val("hold-music"),
    val("announce-every"),
    val("overflow"),
];

pub const ADD_MEMBER_FLAGS: &[Flag] = &[val("queue"), val("user"), val("tier"), val("position")];

/// A queue name as flows write it in `enqueue`: 1-64 of `A-Z a-z 0-9 _ -`.
pub fn queue_name(flag: &str, s: &str) -> Result<String> {
    if callplane::acd::is_ident(s, 64) {
        Ok(s.to_string())
    } else {
        usage(format!(
            "--{flag} must be 1-64 of A-Z a-z 0-9 _ - (flows name queues by it), got {s:?}"
        ))
    }
}

fn opt_int(f: &Flags, flag: &str, default: i64, min: i64, max: i64) -> Result<i64> {
    f.get(flag)
        .map_or(Ok(default), |s| v::int_range(flag, s, min, max))
}

pub fn create(f: &Flags, env: &mut dyn Env) -> Result<Plan> {
    let account = v::id("account", f.req("account")?, "acc", "an account")?;
    let name = queue_name("name", f.req("name")?)?;
    let strategy_s = f.req("strategy")?;
    let strategy = Strategy::parse(strategy_s).map_or_else(
        || {
            usage(format!(
                "--strategy must be one of {} (got {strategy_s:?})",
                Strategy::ALL.map(Strategy::as_str).join(", ")
            ))
        },
        Ok,
    )?;
    let tiers: Vec<TierRule> = match f.get("tiers") {
        Some(t) => serde_json::from_value(v::json("tiers", t)?).or_else(|e| {
            usage(format!(
                "--tiers must be a JSON array like [{{\"level\":2,\"afterSecs\":30}}]: {e}"
            ))
        })?,
        None => Vec::new(),
    };
    let offer_timeout = opt_int(f, "offer-timeout", 20, 1, 600)?;
    let wrapup = opt_int(f, "wrapup", 10, 0, 3600)?;
    let penalty = opt_int(f, "no-answer-penalty", 30, 0, 3600)?;
    let max_no_answer = opt_int(f, "max-no-answer", 3, 0, 1000)?;
    let max_wait = match f.get("max-wait") {
        Some("none") => None,
        Some(s) => Some(v::int_range("max-wait", s, 1, 86_400)?),
        None => Some(3600),
    };
    let max_size = match f.get("max-size") {
        Some("none") | None => None,
        Some(s) => Some(v::int_range("max-size", s, 0, 10_000)?),
    };
    let hold_music = f
        .get("hold-music")
        .map(|s| v::text("hold-music", s, 256))
        .transpose()?;
    let announce = f
        .get("announce-every")
        .map(|s| v::int_range("announce-every", s, 15, 3600))
        .transpose()?;
    let overflow = f
        .get("overflow")
        .map(|s| v::id("overflow", s, "que", "a queue"))
        .transpose()?;

    let now = env.now_ms();
    let id = new_id(env, "que", now)?;
    // The core's validator decides (ranges, tier rules).
    let cfg = QueueConfig {
        id: id.clone(),
        strategy,
        tiers: tiers.clone(),
        offer_timeout_secs: offer_timeout as u32,
        wrap_up_secs: wrapup as u32,
        no_answer_penalty_secs: penalty as u32,
        max_no_answer: max_no_answer as u32,
        max_wait_secs: max_wait.map(|w| w as u32),
        max_size: max_size.map(|m| m as u32),
        hold_music: hold_music.clone(),
        announce_position_every_secs: announce.map(|a| a as u32),
        overflow_queue: overflow.clone(),
    };
    if let Err(e) = cfg.validate() {
        return usage(format!("queue settings refused: {e}"));
    }

    let overflow_probe = match &overflow {
        Some(o) => format!("(SELECT account_id FROM queues WHERE id = {})", lit(o)?),
        None => "NULL".to_string(),
    };
    let row = lookup_one(
        env,
        &format!(
            "SELECT {}, (SELECT id FROM queues WHERE account_id = {} AND name = {}) AS existing, {overflow_probe} AS overflow_account",
            account_probe(&account)?,
            lit(&account)?,
            lit(&name)?
        ),
    )?;
    require_account(&row, &account)?;
    if let Some(existing) = col_str(&row, "existing") {
        return failure(format!(
            "queue {name:?} already exists in account {account} ({existing})"
        ));
    }
    if let Some(o) = &overflow {
        match col_str(&row, "overflow_account") {
            Some(a) if a == account => {}
            Some(_) => return failure(format!("overflow queue {o} belongs to another account")),
            None => return failure(format!("overflow queue {o} not found")),
        }
    }

    let tiers_json = serde_json::to_string(&tiers).expect("tiers serialize");
    let opt_int_v = |x: Option<i64>| x.map_or(V::Null, V::Int);
    let stmt = insert(
        "queues",
        false,
        &[
            ("id", V::text(&id)),
            ("account_id", V::text(&account)),
            ("name", V::text(&name)),
            ("strategy", V::text(strategy.as_str())),
            ("tiers", V::text(&tiers_json)),
            ("offer_timeout_secs", V::Int(offer_timeout)),
            ("wrapup_secs", V::Int(wrapup)),
            ("no_answer_penalty_secs", V::Int(penalty)),
            ("max_no_answer", V::Int(max_no_answer)),
            ("max_wait_secs", opt_int_v(max_wait)),
            ("max_size", opt_int_v(max_size)),
            ("hold_music", V::opt_text(hold_music.clone())),
            ("announce_every_secs", opt_int_v(announce)),
            ("overflow_queue_id", V::opt_text(overflow.clone())),
            ("created_at", V::Int(now as i64)),
        ],
    )?;
    Ok(Plan::new(
        vec![stmt],
        json!({
            "id": id, "account_id": account, "name": name, "strategy": strategy.as_str(), "tiers": tiers,
            "offer_timeout_secs": offer_timeout, "wrapup_secs": wrapup, "no_answer_penalty_secs": penalty,
            "max_no_answer": max_no_answer, "max_wait_secs": max_wait, "max_size": max_size, "hold_music": hold_music,
            "announce_every_secs": announce, "overflow_queue_id": overflow, "created_at": now
        }),
    ))
}

pub fn add_member(f: &Flags, env: &mut dyn Env) -> Result<Plan> {
    let queue = v::id("queue", f.req("queue")?, "que", "a queue")?;
    let user = v::id("user", f.req("user")?, "usr", "a user")?;
    let tier = opt_int(f, "tier", 1, 1, 99)?;
    let position = f
        .get("position")
        .map(|p| v::int_range("position", p, 0, 1_000_000))
        .transpose()?;
    let row = lookup_one(
        env,
        &format!(
            "SELECT (SELECT account_id FROM queues WHERE id = {q}) AS queue_account, (SELECT account_id FROM users WHERE id = {u}) AS user_account, \
             (SELECT COUNT(*) FROM queue_members WHERE queue_id = {q} AND user_id = {u}) AS existing, \
             (SELECT COALESCE(MAX(position) + 1, 0) FROM queue_members WHERE queue_id = {q}) AS next_position",
            q = lit(&queue)?,
            u = lit(&user)?
        ),
    )?;
    let Some(qa) = col_str(&row, "queue_account") else {
        return failure(format!("queue {queue} not found"));
    };
    match col_str(&row, "user_account") {
        None => return failure(format!("user {user} not found")),
        Some(ua) if ua != qa => {
            return failure(format!(
                "user {user} belongs to another account than queue {queue}"
            ))
        }
        Some(_) => {}
    }
    if col_i64(&row, "existing").unwrap_or(0) > 0 {
        return failure(format!("user {user} is already a member of queue {queue}"));
    }
    // Default position: after the current members (top_down / round_robin order).
    let position = position.unwrap_or_else(|| col_i64(&row, "next_position").unwrap_or(0));
    let stmt = insert(
        "queue_members",
        false,
        &[
            ("queue_id", V::text(&queue)),
            ("user_id", V::text(&user)),
            ("tier", V::Int(tier)),
            ("position", V::Int(position)),
        ],
    )?;
    Ok(Plan::new(
        vec![stmt],
        json!({"queue_id": queue, "user_id": user, "account_id": qa, "tier": tier, "position": position}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::testing::TestEnv;
    use crate::testutil::flags;

    #[test]
    fn create_queue_defaults_and_options() {
        let acc = callplane::typeid::new("acc", 1, [7; 10]);
        let mut env =
            TestEnv::row(json!({"account": 1, "existing": null, "overflow_account": null}));
        let p = create(
            &flags(
                CREATE_FLAGS,
                &[
                    "--account",
                    &acc,
                    "--name",
                    "sales",
                    "--strategy",
                    "ring_all",
                ],
            ),
            &mut env,
        )
        .unwrap();
        let id = p.output["id"].as_str().unwrap().to_string();
        assert!(callplane::typeid::is_valid(&id, "que"));
        assert_eq!(
            p.sql(),
            format!("INSERT INTO queues (id, account_id, name, strategy, tiers, offer_timeout_secs, wrapup_secs, no_answer_penalty_secs, max_no_answer, max_wait_secs, max_size, hold_music, announce_every_secs, overflow_queue_id, created_at) VALUES ('{id}', '{acc}', 'sales', 'ring_all', '[]', 20, 10, 30, 3, 3600, NULL, NULL, NULL, NULL, 1767225600000);\n")
        );
        assert_eq!(
            env.queries[0],
            format!("SELECT (SELECT COUNT(*) FROM accounts WHERE id = '{acc}') AS account, (SELECT id FROM queues WHERE account_id = '{acc}' AND name = 'sales') AS existing, NULL AS overflow_account")
        );

        let over = callplane::typeid::new("que", 1, [9; 10]);
        let mut env =
            TestEnv::row(json!({"account": 1, "existing": null, "overflow_account": acc}));
        let p = create(
            &flags(
                CREATE_FLAGS,
                &[
                    "--account",
                    &acc,
                    "--name",
                    "support-2",
                    "--strategy",
                    "top_down",
                    "--tiers",
                    r#"[{"level":2,"afterSecs":30}]"#,
                    "--offer-timeout",
                    "15",
                    "--wrapup",
                    "0",
                    "--max-wait",
                    "none",
                    "--max-size",
                    "50",
                    "--hold-music",
                    "moh/jazz.wav",
                    "--announce-every",
                    "60",
                    "--overflow",
                    &over,
                    "--max-no-answer",
                    "0",
                    "--no-answer-penalty",
                    "5",
                ],
            ),
            &mut env,
        )
        .unwrap();
        assert!(p.sql().contains(&format!("'support-2', 'top_down', '[{{\"level\":2,\"afterSecs\":30}}]', 15, 0, 5, 0, NULL, 50, 'moh/jazz.wav', 60, '{over}', ")), "{}", p.sql());
        assert_eq!(p.output["max_wait_secs"], serde_json::Value::Null);
    }

    #[test]
    fn create_queue_errors() {
        let acc = callplane::typeid::new("acc", 1, [7; 10]);
        let over = callplane::typeid::new("que", 1, [9; 10]);
        for args in [
            vec!["--account", acc.as_str(), "--name", "sales"],
            vec![
                "--account",
                &acc,
                "--name",
                "sales queue",
                "--strategy",
                "ring_all",
            ],
            vec![
                "--account",
                &acc,
                "--name",
                "sales",
                "--strategy",
                "fastest",
            ],
            vec![
                "--account",
                &acc,
                "--name",
                "sales",
                "--strategy",
                "random",
                "--offer-timeout",
                "0",
            ],
            vec![
                "--account",
                &acc,
                "--name",
                "sales",
                "--strategy",
                "random",
                "--tiers",
                r#"[{"level":0,"afterSecs":1}]"#,
            ],
            vec![
                "--account",
                &acc,
                "--name",
                "sales",
                "--strategy",
                "random",
                "--tiers",
                r#"[{"level":2,"afterSecs":1},{"level":2,"afterSecs":5}]"#,
            ],
            vec![
                "--account",
                &acc,
                "--name",
                "sales",
                "--strategy",
                "random",
                "--tiers",
                r#"{"level":2}"#,
            ],
            vec![
                "--account",
                &acc,
                "--name",
                "sales",
                "--strategy",
                "random",
                "--announce-every",
                "5",
            ],
            vec![
                "--account",
                &acc,
                "--name",
                "sales",
                "--strategy",
                "random",
                "--overflow",
                "sales",
            ],
            vec![
                "--account",
                "acc_x",
                "--name",
                "sales",
                "--strategy",
                "random",
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
        let base = [
            "--account",
            acc.as_str(),
            "--name",
            "sales",
            "--strategy",
            "ring_all",
        ];
        let mut env =
            TestEnv::row(json!({"account": 1, "existing": "que_x", "overflow_account": null}));
        assert!(create(&flags(CREATE_FLAGS, &base), &mut env)
            .err()
            .unwrap()
            .message()
            .contains("already exists"));
        let mut env =
            TestEnv::row(json!({"account": 0, "existing": null, "overflow_account": null}));
        assert!(create(&flags(CREATE_FLAGS, &base), &mut env)
            .err()
            .unwrap()
            .message()
            .contains("not found"));
        let mut with_over = base.to_vec();
        with_over.extend(["--overflow", over.as_str()]);
        let mut env =
            TestEnv::row(json!({"account": 1, "existing": null, "overflow_account": "acc_other"}));
        assert!(create(&flags(CREATE_FLAGS, &with_over), &mut env)
            .err()
            .unwrap()
            .message()
            .contains("another account"));
        let mut env =
            TestEnv::row(json!({"account": 1, "existing": null, "overflow_account": null}));
        assert!(create(&flags(CREATE_FLAGS, &with_over), &mut env)
            .err()
            .unwrap()
            .message()
            .contains("not found"));
    }

    #[test]
    fn add_member() {
        let q = callplane::typeid::new("que", 1, [7; 10]);
        let u = callplane::typeid::new("usr", 1, [7; 10]);
        let mut env = TestEnv::row(
            json!({"queue_account": "acc_a", "user_account": "acc_a", "existing": 0, "next_position": 2}),
        );
        let p = super::add_member(
            &flags(
                ADD_MEMBER_FLAGS,
                &["--queue", &q, "--user", &u, "--tier", "2"],
            ),
            &mut env,
        )
        .unwrap();
        assert_eq!(p.sql(), format!("INSERT INTO queue_members (queue_id, user_id, tier, position) VALUES ('{q}', '{u}', 2, 2);\n"));
        let mut env = TestEnv::row(
            json!({"queue_account": "acc_a", "user_account": "acc_a", "existing": 0, "next_position": 2}),
        );
        let p = super::add_member(
            &flags(
                ADD_MEMBER_FLAGS,
                &["--queue", &q, "--user", &u, "--position", "0"],
            ),
            &mut env,
        )
        .unwrap();
        assert_eq!(
            (p.output["tier"].as_i64(), p.output["position"].as_i64()),
            (Some(1), Some(0))
        );
        for (row, msg) in [
            (
                json!({"queue_account": null, "user_account": "acc_a", "existing": 0, "next_position": 0}),
                "queue",
            ),
            (
                json!({"queue_account": "acc_a", "user_account": null, "existing": 0, "next_position": 0}),
                "not found",
            ),
            (
                json!({"queue_account": "acc_a", "user_account": "acc_b", "existing": 0, "next_position": 0}),
                "another account",
            ),
            (
                json!({"queue_account": "acc_a", "user_account": "acc_a", "existing": 1, "next_position": 1}),
                "already a member",
            ),
        ] {
            let mut env = TestEnv::row(row);
            let e = super::add_member(
                &flags(ADD_MEMBER_FLAGS, &["--queue", &q, "--user", &u]),
                &mut env,
            )
            .err()
            .unwrap();
            assert!(e.message().contains(msg), "{}", e.message());
        }
        for args in [
            vec!["--queue", q.as_str()],
            vec!["--queue", "que_x", "--user", &u],
            vec!["--queue", &q, "--user", &u, "--tier", "100"],
        ] {
            let mut env = TestEnv::new();
            assert_eq!(
                super::add_member(&flags(ADD_MEMBER_FLAGS, &args), &mut env)
                    .err()
                    .unwrap()
                    .exit_code(),
                2,
                "{args:?}"
            );
        }
    }
}
