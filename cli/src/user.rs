//! `user create`.

use serde_json::json;

use crate::account::{account_probe, require_account};
use crate::args::{val, Flag, Flags};
use crate::env::{lookup_one, new_id, Env};
use crate::error::{failure, Result};
use crate::sql::{col_str, insert, lit, Plan, V};
use crate::validate as v;

pub const CREATE_FLAGS: &[Flag] = &[
    val("account"),
    val("extension"),
    val("name"),
    val("email"),
    val("caller-id-number"),
];

pub fn create(f: &Flags, env: &mut dyn Env) -> Result<Plan> {
    let account = v::id("account", f.req("account")?, "acc", "an account")?;
    let extension = v::extension("extension", f.req("extension")?)?;
    let name = match f.get("name") {
        Some(s) => v::text("name", s, 200)?,
        None => String::new(),
    };
    let email = f.get("email").map(|s| v::email("email", s)).transpose()?;
    let cid = f
        .get("caller-id-number")
        .map(|s| v::e164("caller-id-number", s))
        .transpose()?;

    let row = lookup_one(
        env,
        &format!(
            "SELECT {}, (SELECT id FROM users WHERE account_id = {} AND extension = {}) AS existing",
            account_probe(&account)?,
            lit(&account)?,
            lit(&extension)?
        ),
    )?;
    require_account(&row, &account)?;
    if let Some(existing) = col_str(&row, "existing") {
        return failure(format!(
            "extension {extension} already exists in account {account} (user {existing})"
        ));
    }

    let now = env.now_ms();
    let id = new_id(env, "usr", now)?;
    let stmt = insert(
        "users",
        false,
        &[
            ("id", V::text(&id)),
            ("account_id", V::text(&account)),
            ("extension", V::text(&extension)),
            ("name", V::text(&name)),
            ("email", V::opt_text(email.clone())),
            ("caller_id_number", V::opt_text(cid.clone())),
            ("created_at", V::Int(now as i64)),
        ],
    )?;
    Ok(Plan::new(
        vec![stmt],
        json!({"id": id, "account_id": account, "extension": extension, "name": name, "email": email, "caller_id_number": cid, "created_at": now}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::testing::TestEnv;
    use crate::testutil::flags;

    #[test]
    fn create_user() {
        let acc = callplane::typeid::new("acc", 1, [7; 10]);
        let mut env = TestEnv::row(json!({"account": 1, "existing": null}));
        let p = create(
            &flags(
                CREATE_FLAGS,
                &[
                    "--account",
                    &acc,
                    "--extension",
                    "1001",
                    "--name",
                    "Alice O'Neil",
                    "--email",
                    "alice@acme.example",
                ],
            ),
            &mut env,
        )
        .unwrap();
        let id = p.output["id"].as_str().unwrap().to_string();
        assert!(callplane::typeid::is_valid(&id, "usr"));
        assert_eq!(
            p.sql(),
            format!("INSERT INTO users (id, account_id, extension, name, email, caller_id_number, created_at) VALUES ('{id}', '{acc}', '1001', 'Alice O''Neil', 'alice@acme.example', NULL, 1767225600000);\n")
        );
        assert_eq!(
            env.queries[0],
            format!("SELECT (SELECT COUNT(*) FROM accounts WHERE id = '{acc}') AS account, (SELECT id FROM users WHERE account_id = '{acc}' AND extension = '1001') AS existing")
        );
        assert_eq!(p.output["name"], "Alice O'Neil");
        assert_eq!(p.output["caller_id_number"], serde_json::Value::Null);
    }

    #[test]
    fn create_user_errors() {
        let acc = callplane::typeid::new("acc", 1, [7; 10]);
        let mut env = TestEnv::row(json!({"account": 1, "existing": "usr_x"}));
        let e = create(
            &flags(CREATE_FLAGS, &["--account", &acc, "--extension", "1001"]),
            &mut env,
        )
        .err()
        .unwrap();
        assert_eq!(e.exit_code(), 1);
        assert!(e.message().contains("already exists"));
        let mut env = TestEnv::row(json!({"account": 0, "existing": null}));
        assert!(create(
            &flags(CREATE_FLAGS, &["--account", &acc, "--extension", "1001"]),
            &mut env
        )
        .is_err());
        for args in [
            vec!["--account", acc.as_str()],
            vec!["--account", "acc_bad", "--extension", "1001"],
            vec!["--account", &acc, "--extension", "10 01"],
            vec!["--account", &acc, "--extension", "1001", "--email", "nope"],
            vec![
                "--account",
                &acc,
                "--extension",
                "1001",
                "--caller-id-number",
                "123",
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
    }
}
