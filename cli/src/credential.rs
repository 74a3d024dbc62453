//! `credential create` (prints the token once) and `credential revoke`.

use serde_json::json;

use crate::account::{account_probe, require_account};
use crate::args::{val, Flag, Flags};
use crate::env::{lookup_one, Env};
use crate::error::{failure, Result};
use crate::sql::{col_i64, col_str, insert, lit, update, Plan, V};
use crate::token;
use crate::validate as v;

pub const CREATE_FLAGS: &[Flag] = &[val("name"), val("role"), val("account"), val("token")];
pub const REVOKE_FLAGS: &[Flag] = &[val("id")];

pub const ROLES: &[&str] = &["sip-edge", "media-node", "agent-app", "operator"];

pub fn create(f: &Flags, env: &mut dyn Env) -> Result<Plan> {
    let name = v::text("name", f.req("name")?, 200)?;
    let role = v::one_of("role", f.req("role")?, ROLES)?;
    let account = f
        .get("account")
        .map(|a| v::id("account", a, "acc", "an account"))
        .transpose()?;
    let supplied = f
        .get("token")
        .map(|t| token::parse_supplied("token", t).map(|id| (id, t.to_string())))
        .transpose()?;

    let mut sel = Vec::new();
    if let Some((id, _)) = &supplied {
        sel.push(format!(
            "(SELECT COUNT(*) FROM credentials WHERE id = {}) AS existing",
            lit(id)?
        ));
    }
    if let Some(a) = &account {
        sel.push(account_probe(a)?);
    }
    if !sel.is_empty() {
        let row = lookup_one(env, &format!("SELECT {}", sel.join(", ")))?;
        if let Some(a) = &account {
            require_account(&row, a)?;
        }
        if let Some((id, _)) = &supplied {
            if col_i64(&row, "existing") != Some(0) {
                return failure(format!("credential {id} already exists"));
            }
        }
    }

    let now = env.now_ms();
    let (id, tok) = match supplied {
        Some(s) => s,
        None => token::generate(env, now)?,
    };
    let stmt = insert(
        "credentials",
        false,
        &[
            ("id", V::text(&id)),
            ("name", V::text(&name)),
            ("role", V::text(&role)),
            ("account_id", V::opt_text(account.clone())),
            ("token_hash", V::text(token::sha256_hex(&tok))),
            ("created_at", V::Int(now as i64)),
        ],
    )?;
    Ok(Plan::new(
        vec![stmt],
        json!({"id": id, "name": name, "role": role, "account_id": account, "token": tok, "created_at": now}),
    ))
}

pub fn revoke(f: &Flags, env: &mut dyn Env) -> Result<Plan> {
    let id = v::id("id", f.req("id")?, "cred", "a credential")?;
    let rows = env.query(&format!(
        "SELECT id, revoked_at FROM credentials WHERE id = {}",
        lit(&id)?
    ))?;
    let Some(row) = rows.first() else {
        return failure(format!("credential {id} not found"));
    };
    if let Some(at) = col_i64(row, "revoked_at") {
        // Idempotent: nothing to execute.
        return Ok(Plan::new(
            vec![],
            json!({"id": id, "revoked_at": at, "already_revoked": true}),
        ));
    }
    debug_assert_eq!(col_str(row, "id").as_deref(), Some(id.as_str()));
    let now = env.now_ms();
    let stmt = update(
        "credentials",
        &[("revoked_at", V::Int(now as i64))],
        "id",
        &id,
        Some("revoked_at IS NULL"),
    )?;
    Ok(Plan::new(
        vec![stmt],
        json!({"id": id, "revoked_at": now, "already_revoked": false}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::testing::TestEnv;
    use crate::testutil::flags;

    #[test]
    fn create_generates_token_and_stores_hash() {
        let mut env = TestEnv::new(); // platform-wide, generated token: no lookup
        let p = create(
            &flags(
                CREATE_FLAGS,
                &["--name", "kamailio-1", "--role", "sip-edge"],
            ),
            &mut env,
        )
        .unwrap();
        let id = p.output["id"].as_str().unwrap().to_string();
        let tok = p.output["token"].as_str().unwrap().to_string();
        assert!(callplane::typeid::is_valid(&id, "cred"));
        assert!(tok.starts_with(&format!("{id}.")));
        assert_eq!(tok.len(), id.len() + 1 + 32);
        let hash = token::sha256_hex(&tok);
        assert_eq!(
            p.sql(),
            format!("INSERT INTO credentials (id, name, role, account_id, token_hash, created_at) VALUES ('{id}', 'kamailio-1', 'sip-edge', NULL, '{hash}', 1767225600000);\n")
        );
        // The token itself never reaches the database.
        assert!(!p.sql().contains(&tok));
        let secret = tok.split_once('.').unwrap().1;
        assert!(!p.sql().contains(secret));
    }

    #[test]
    fn create_with_supplied_token_and_account() {
        let acc = callplane::typeid::new("acc", 1, [7; 10]);
        let cred = callplane::typeid::new("cred", 1, [8; 10]);
        let tok = format!("{cred}.dev-agent-app-0000000000");
        let mut env = TestEnv::row(json!({"existing": 0, "account": 1}));
        let p = create(
            &flags(
                CREATE_FLAGS,
                &[
                    "--name",
                    "agents",
                    "--role",
                    "agent-app",
                    "--account",
                    &acc,
                    "--token",
                    &tok,
                ],
            ),
            &mut env,
        )
        .unwrap();
        assert_eq!(p.output["id"], cred.as_str());
        assert_eq!(p.output["token"], tok.as_str());
        assert_eq!(p.output["account_id"], acc.as_str());
        assert!(p.sql().contains(&format!(
            "'{cred}', 'agents', 'agent-app', '{acc}', '{}'",
            token::sha256_hex(&tok)
        )));
        assert_eq!(
            env.queries[0],
            format!("SELECT (SELECT COUNT(*) FROM credentials WHERE id = '{cred}') AS existing, (SELECT COUNT(*) FROM accounts WHERE id = '{acc}') AS account")
        );
        let mut env = TestEnv::row(json!({"existing": 1}));
        let e = create(
            &flags(
                CREATE_FLAGS,
                &["--name", "agents", "--role", "operator", "--token", &tok],
            ),
            &mut env,
        )
        .err()
        .unwrap();
        assert_eq!(e.message(), format!("credential {cred} already exists"));
    }

    #[test]
    fn create_errors() {
        for args in [
            vec!["--name", "x"],
            vec!["--role", "operator"],
            vec!["--name", "x", "--role", "admin"],
            vec!["--name", "x", "--role", "operator", "--account", "usr_1"],
            vec![
                "--name",
                "x",
                "--role",
                "operator",
                "--token",
                "cred_abc.0000000000000000",
            ],
            vec!["--name", "x", "--role", "operator", "--token", "nodot"],
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

    #[test]
    fn revoke_is_idempotent() {
        let cred = callplane::typeid::new("cred", 1, [8; 10]);
        let c2 = cred.clone();
        let mut env = TestEnv::with(move |_| {
            vec![serde_json::from_value(json!({"id": c2, "revoked_at": null})).unwrap()]
        });
        let p = revoke(&flags(REVOKE_FLAGS, &["--id", &cred]), &mut env).unwrap();
        assert_eq!(p.sql(), format!("UPDATE credentials SET revoked_at = 1767225600000 WHERE id = '{cred}' AND revoked_at IS NULL;\n"));
        assert_eq!(p.output["already_revoked"], false);

        let c3 = cred.clone();
        let mut env = TestEnv::with(move |_| {
            vec![serde_json::from_value(json!({"id": c3, "revoked_at": 5})).unwrap()]
        });
        let p = revoke(&flags(REVOKE_FLAGS, &["--id", &cred]), &mut env).unwrap();
        assert!(p.statements.is_empty());
        assert_eq!(
            p.output,
            json!({"id": cred, "revoked_at": 5, "already_revoked": true})
        );

        let mut env = TestEnv::with(|_| vec![]);
        assert_eq!(
            revoke(&flags(REVOKE_FLAGS, &["--id", &cred]), &mut env)
                .err()
                .unwrap()
                .exit_code(),
            1
        );
    }
}
