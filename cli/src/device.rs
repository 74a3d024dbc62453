//! `device create`, `device set-password`, `device enable`, `device disable`.
//!
//! Only HA1 = H(username:realm:password) is stored (MD5 and SHA-256), never the password, and
//! HA1 is never printed (it is password-equivalent for its realm).

use callplane::sip::digest::{ha1, Algorithm};
use serde_json::json;

use crate::account::{account_probe, require_account};
use crate::args::{sw, val, Flag, Flags};
use crate::env::{lookup_one, new_id, Env};
use crate::error::{failure, usage, Result};
use crate::sql::{col_i64, col_str, insert, lit, update, Plan, V};
use crate::validate as v;

pub const CREATE_FLAGS: &[Flag] = &[
    val("account"),
    val("user"),
    val("extension"),
    val("username"),
    val("password"),
    val("realm"),
    sw("disabled"),
];
pub const SET_PASSWORD_FLAGS: &[Flag] = &[val("device"), val("password")];
pub const TOGGLE_FLAGS: &[Flag] = &[val("device")];

/// `--password P`, or `--password -` to read it from the first line of standard input
/// (keeps it out of process listings and shell history).
fn password(f: &Flags, env: &mut dyn Env) -> Result<String> {
    let raw = f.req("password")?;
    if raw == "-" {
        let line = env.read_stdin_line()?;
        v::password("password", &line)
    } else {
        v::password("password", raw)
    }
}

/// The two stored hashes, (ha1_md5, ha1_sha256).
pub fn ha1_pair(username: &str, realm: &str, password: &str) -> (String, String) {
    (
        ha1(Algorithm::Md5, username, realm, password),
        ha1(Algorithm::Sha256, username, realm, password),
    )
}

pub fn create(f: &Flags, env: &mut dyn Env) -> Result<Plan> {
    let account = v::id("account", f.req("account")?, "acc", "an account")?;
    let user_sel = match (f.get("user"), f.get("extension")) {
        (Some(u), None) => {
            let u = v::id("user", u, "usr", "a user")?;
            format!("(SELECT id FROM users WHERE account_id = {} AND id = {}) AS user_id, (SELECT account_id FROM users WHERE id = {}) AS user_account", lit(&account)?, lit(&u)?, lit(&u)?)
        }
        (None, Some(e)) => {
            let e = v::extension("extension", e)?;
            format!("(SELECT id FROM users WHERE account_id = {} AND extension = {}) AS user_id, NULL AS user_account", lit(&account)?, lit(&e)?)
        }
        _ => return usage("device create needs exactly one of --user ID or --extension EXT"),
    };
    let username = v::sip_username("username", f.req("username")?)?;
    let password = password(f, env)?;
    let realm_given = f.get("realm").map(|r| v::domain("realm", r)).transpose()?;
    let enabled = !f.on("disabled");

    let realm_sel = match &realm_given {
        Some(r) => format!("(SELECT domain FROM sip_domains WHERE account_id = {} AND domain = {})", lit(&account)?, lit(r)?),
        None => format!("(SELECT domain FROM sip_domains WHERE account_id = {} ORDER BY created_at, domain LIMIT 1)", lit(&account)?),
    };
    let row = lookup_one(
        env,
        &format!(
            "SELECT {}, {user_sel}, {realm_sel} AS realm, (SELECT id FROM devices WHERE username = {} AND realm = {realm_sel}) AS existing",
            account_probe(&account)?,
            lit(&username)?
        ),
    )?;
    require_account(&row, &account)?;
    let Some(user_id) = col_str(&row, "user_id") else {
        return match (f.get("user"), col_str(&row, "user_account")) {
            (Some(u), Some(other)) => failure(format!(
                "user {u} belongs to account {other}, not {account}"
            )),
            (Some(u), None) => failure(format!("user {u} not found")),
            _ => failure(format!(
                "no user with extension {} in account {account}",
                f.get("extension").unwrap_or_default()
            )),
        };
    };
    let Some(realm) = col_str(&row, "realm") else {
        return match realm_given {
            Some(r) => failure(format!("realm {r} is not a domain of account {account} (add it with `domain add`)")),
            None => failure(format!("account {account} has no SIP domain to use as the realm; add one with `domain add` or pass --realm")),
        };
    };
    if let Some(existing) = col_str(&row, "existing") {
        return failure(format!(
            "a device with username {username} already exists in realm {realm} ({existing})"
        ));
    }

    let (md5, sha256) = ha1_pair(&username, &realm, &password);
    let now = env.now_ms();
    let id = new_id(env, "dev", now)?;
    let stmt = insert(
        "devices",
        false,
        &[
            ("id", V::text(&id)),
            ("account_id", V::text(&account)),
            ("user_id", V::text(&user_id)),
            ("username", V::text(&username)),
            ("realm", V::text(&realm)),
            ("ha1_md5", V::text(md5)),
            ("ha1_sha256", V::text(sha256)),
            ("enabled", V::bool(enabled)),
            ("created_at", V::Int(now as i64)),
        ],
    )?;
    Ok(Plan::new(
        vec![stmt],
        json!({"id": id, "account_id": account, "user_id": user_id, "username": username, "realm": realm, "enabled": enabled, "created_at": now}),
    ))
}

/// Look a device up: (username, realm, enabled).
fn find_device(env: &mut dyn Env, device: &str) -> Result<(String, String, bool)> {
    let rows = env.query(&format!(
        "SELECT username, realm, enabled FROM devices WHERE id = {}",
        lit(device)?
    ))?;
    let Some(row) = rows.first() else {
        return failure(format!("device {device} not found"));
    };
    match (col_str(row, "username"), col_str(row, "realm")) {
        (Some(u), Some(r)) => Ok((u, r, col_i64(row, "enabled") == Some(1))),
        _ => failure(format!("unexpected lookup result for device {device}")),
    }
}

pub fn set_password(f: &Flags, env: &mut dyn Env) -> Result<Plan> {
    let device = v::id("device", f.req("device")?, "dev", "a device")?;
    let password = password(f, env)?;
    let (username, realm, _) = find_device(env, &device)?;
    let (md5, sha256) = ha1_pair(&username, &realm, &password);
    let stmt = update(
        "devices",
        &[("ha1_md5", V::text(md5)), ("ha1_sha256", V::text(sha256))],
        "id",
        &device,
        None,
    )?;
    Ok(Plan::new(
        vec![stmt],
        json!({"id": device, "username": username, "realm": realm, "password_changed": true}),
    ))
}

fn toggle(f: &Flags, env: &mut dyn Env, enabled: bool) -> Result<Plan> {
    let device = v::id("device", f.req("device")?, "dev", "a device")?;
    let (username, realm, _) = find_device(env, &device)?;
    let stmt = update(
        "devices",
        &[("enabled", V::bool(enabled))],
        "id",
        &device,
        None,
    )?;
    Ok(Plan::new(
        vec![stmt],
        json!({"id": device, "username": username, "realm": realm, "enabled": enabled}),
    ))
}

pub fn enable(f: &Flags, env: &mut dyn Env) -> Result<Plan> {
    toggle(f, env, true)
}

pub fn disable(f: &Flags, env: &mut dyn Env) -> Result<Plan> {
    toggle(f, env, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::testing::TestEnv;
    use crate::testutil::flags;

    fn ids() -> (String, String) {
        (
            callplane::typeid::new("acc", 1, [7; 10]),
            callplane::typeid::new("usr", 1, [8; 10]),
        )
    }

    #[test]
    fn create_stores_only_ha1() {
        let (acc, usr) = ids();
        let mut env = TestEnv::row(
            json!({"account": 1, "user_id": usr, "user_account": acc, "realm": "acme.sip.io", "existing": null}),
        );
        let p = create(
            &flags(
                CREATE_FLAGS,
                &[
                    "--account",
                    &acc,
                    "--user",
                    &usr,
                    "--username",
                    "1001",
                    "--password",
                    "acme-1001-secret",
                ],
            ),
            &mut env,
        )
        .unwrap();
        let id = p.output["id"].as_str().unwrap().to_string();
        let md5 = ha1(Algorithm::Md5, "1001", "acme.sip.io", "acme-1001-secret");
        let sha = ha1(Algorithm::Sha256, "1001", "acme.sip.io", "acme-1001-secret");
        assert_eq!(md5.len(), 32);
        assert_eq!(sha.len(), 64);
        assert_eq!(
            p.sql(),
            format!("INSERT INTO devices (id, account_id, user_id, username, realm, ha1_md5, ha1_sha256, enabled, created_at) VALUES ('{id}', '{acc}', '{usr}', '1001', 'acme.sip.io', '{md5}', '{sha}', 1, 1767225600000);\n")
        );
        assert!(!p.sql().contains("acme-1001-secret"));
        assert!(!p.printed_sql().contains("acme-1001-secret"));
        assert!(!p.output.to_string().contains(&md5));
        assert_eq!(p.output["realm"], "acme.sip.io");
        assert_eq!(p.output["enabled"], true);
        // Default realm: the account's first domain.
        let q = &env.queries[0];
        assert!(q.contains(&format!("(SELECT domain FROM sip_domains WHERE account_id = '{acc}' ORDER BY created_at, domain LIMIT 1) AS realm")), "{q}");
        assert!(
            q.contains(&format!(
                "(SELECT id FROM users WHERE account_id = '{acc}' AND id = '{usr}') AS user_id"
            )),
            "{q}"
        );
    }

    #[test]
    fn create_by_extension_with_realm_disabled() {
        let (acc, usr) = ids();
        let mut env = TestEnv::row(
            json!({"account": 1, "user_id": usr, "user_account": null, "realm": "sales.acme.io", "existing": null}),
        );
        let p = create(
            &flags(
                CREATE_FLAGS,
                &[
                    "--account",
                    &acc,
                    "--extension",
                    "1002",
                    "--username",
                    "bob",
                    "--password",
                    "x'x'x'x'x",
                    "--realm",
                    "SALES.acme.io",
                    "--disabled",
                ],
            ),
            &mut env,
        )
        .unwrap();
        let q = &env.queries[0];
        assert!(q.contains(&format!("(SELECT id FROM users WHERE account_id = '{acc}' AND extension = '1002') AS user_id")), "{q}");
        assert!(q.contains(&format!("(SELECT domain FROM sip_domains WHERE account_id = '{acc}' AND domain = 'sales.acme.io') AS realm")), "{q}");
        assert!(p.sql().contains(&format!(
            "'{}'",
            ha1(Algorithm::Sha256, "bob", "sales.acme.io", "x'x'x'x'x")
        )));
        assert!(p.sql().ends_with(", 0, 1767225600000);\n"));
        assert_eq!(p.output["enabled"], false);
    }

    #[test]
    fn create_lookup_failures() {
        let (acc, usr) = ids();
        let args = [
            "--account",
            acc.as_str(),
            "--user",
            usr.as_str(),
            "--username",
            "1001",
            "--password",
            "acme-1001-secret",
        ];
        for (row, expect) in [
            (
                json!({"account": 0, "user_id": null, "user_account": null, "realm": null, "existing": null}),
                "not found",
            ),
            (
                json!({"account": 1, "user_id": null, "user_account": null, "realm": "a.io", "existing": null}),
                "not found",
            ),
            (
                json!({"account": 1, "user_id": null, "user_account": "acc_other", "realm": "a.io", "existing": null}),
                "belongs to account acc_other",
            ),
            (
                json!({"account": 1, "user_id": usr, "user_account": acc, "realm": null, "existing": null}),
                "has no SIP domain",
            ),
            (
                json!({"account": 1, "user_id": usr, "user_account": acc, "realm": "a.io", "existing": "dev_x"}),
                "already exists",
            ),
        ] {
            let mut env = TestEnv::row(row);
            let e = create(&flags(CREATE_FLAGS, &args), &mut env).err().unwrap();
            assert_eq!(e.exit_code(), 1);
            assert!(e.message().contains(expect), "{}", e.message());
        }
    }

    #[test]
    fn create_usage_errors() {
        let (acc, usr) = ids();
        for args in [
            vec![
                "--account",
                &acc,
                "--username",
                "1001",
                "--password",
                "acme-1001-secret",
            ],
            vec![
                "--account",
                &acc,
                "--user",
                &usr,
                "--extension",
                "1001",
                "--username",
                "1001",
                "--password",
                "acme-1001-secret",
            ],
            vec![
                "--account",
                &acc,
                "--user",
                &acc,
                "--username",
                "1001",
                "--password",
                "acme-1001-secret",
            ],
            vec![
                "--account",
                &acc,
                "--user",
                &usr,
                "--username",
                "10 01",
                "--password",
                "acme-1001-secret",
            ],
            vec![
                "--account",
                &acc,
                "--user",
                &usr,
                "--username",
                "1001",
                "--password",
                "short",
            ],
            vec![
                "--account",
                &acc,
                "--user",
                &usr,
                "--username",
                "1001",
                "--password",
                "acme-1001-secret",
                "--realm",
                "bad realm",
            ],
            vec!["--account", &acc, "--user", &usr, "--username", "1001"],
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
    fn password_from_stdin() {
        let dev = callplane::typeid::new("dev", 1, [9; 10]);
        let mut env =
            TestEnv::row(json!({"username": "1001", "realm": "acme.sip.io", "enabled": 1}));
        env.stdin = Some("from-stdin-secret\r\nignored\n".into());
        let p = set_password(
            &flags(SET_PASSWORD_FLAGS, &["--device", &dev, "--password", "-"]),
            &mut env,
        )
        .unwrap();
        let (md5, _) = ha1_pair("1001", "acme.sip.io", "from-stdin-secret");
        assert!(p.sql().contains(&md5));
        // Empty stdin is a failure, a short line a usage error.
        let e = set_password(
            &flags(SET_PASSWORD_FLAGS, &["--device", &dev, "--password", "-"]),
            &mut env,
        )
        .err()
        .unwrap();
        assert_eq!(e.exit_code(), 1);
        env.stdin = Some("short\n".into());
        let e = set_password(
            &flags(SET_PASSWORD_FLAGS, &["--device", &dev, "--password", "-"]),
            &mut env,
        )
        .err()
        .unwrap();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn set_password_and_toggle() {
        let dev = callplane::typeid::new("dev", 1, [9; 10]);
        let mut env =
            TestEnv::row(json!({"username": "1001", "realm": "acme.sip.io", "enabled": 1}));
        let p = set_password(
            &flags(
                SET_PASSWORD_FLAGS,
                &["--device", &dev, "--password", "new-secret-1"],
            ),
            &mut env,
        )
        .unwrap();
        let (md5, sha) = ha1_pair("1001", "acme.sip.io", "new-secret-1");
        assert_eq!(
            p.sql(),
            format!(
                "UPDATE devices SET ha1_md5 = '{md5}', ha1_sha256 = '{sha}' WHERE id = '{dev}';\n"
            )
        );
        assert!(!p.output.to_string().contains("new-secret-1"));
        assert_eq!(
            env.queries[0],
            format!("SELECT username, realm, enabled FROM devices WHERE id = '{dev}'")
        );

        let p = disable(&flags(TOGGLE_FLAGS, &["--device", &dev]), &mut env).unwrap();
        assert_eq!(
            p.sql(),
            format!("UPDATE devices SET enabled = 0 WHERE id = '{dev}';\n")
        );
        assert_eq!(p.output["enabled"], false);
        let p = enable(&flags(TOGGLE_FLAGS, &["--device", &dev]), &mut env).unwrap();
        assert_eq!(
            p.sql(),
            format!("UPDATE devices SET enabled = 1 WHERE id = '{dev}';\n")
        );

        let mut env = TestEnv::with(|_| vec![]);
        let e = enable(&flags(TOGGLE_FLAGS, &["--device", &dev]), &mut env)
            .err()
            .unwrap();
        assert_eq!(e.message(), format!("device {dev} not found"));
        let mut env = TestEnv::new();
        assert_eq!(
            enable(&flags(TOGGLE_FLAGS, &["--device", "usr_x"]), &mut env)
                .err()
                .unwrap()
                .exit_code(),
            2
        );
    }
}
