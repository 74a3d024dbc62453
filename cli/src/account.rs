//! `account create`, `account update`, `domain add`.

use serde_json::{json, Map, Value};

use crate::args::{sw, val, Flag, Flags};
use crate::env::{lookup_one, new_id, Env};
use crate::error::{failure, usage, Result};
use crate::sql::{col_i64, col_str, insert, lit, update, Plan, V};
use crate::validate as v;

pub const CREATE_FLAGS: &[Flag] = &[
    val("domain"),
    val("name"),
    val("max-calls"),
    val("country"),
    val("time-zone"),
    sw("allow-international"),
    sw("allow-premium"),
    val("premium-prefixes"),
    val("caller-id-number"),
    val("caller-id-name"),
    val("digest-algorithms"),
    val("status"),
];

pub const UPDATE_FLAGS: &[Flag] = &[
    val("account"),
    val("domain"),
    val("name"),
    val("max-calls"),
    val("country"),
    val("time-zone"),
    sw("allow-international"),
    sw("allow-premium"),
    val("premium-prefixes"),
    val("caller-id-number"),
    val("caller-id-name"),
    val("digest-algorithms"),
    val("status"),
];

pub const DOMAIN_ADD_FLAGS: &[Flag] = &[val("account"), val("domain")];

pub const STATUSES: &[&str] = &["active", "suspended", "disabled"];
pub const MAX_CALLS_LIMIT: i64 = 1_000_000;

/// A column to set: name, SQL value, JSON value for the output.
type Field = (&'static str, V, Value);

/// The account columns given on the command line. In `update` mode an empty
/// `--caller-id-number`/`--caller-id-name` clears the column.
fn account_fields(f: &Flags, update_mode: bool) -> Result<Vec<Field>> {
    let mut out: Vec<Field> = Vec::new();
    if let Some(s) = f.get("name") {
        let s = v::text("name", s, 200)?;
        out.push(("name", V::text(&s), json!(s)));
    }
    if let Some(s) = f.get("status") {
        let s = v::one_of("status", s, STATUSES)?;
        out.push(("status", V::text(&s), json!(s)));
    }
    if let Some(s) = f.get("time-zone") {
        let s = v::time_zone("time-zone", s)?;
        out.push(("time_zone", V::text(&s), json!(s)));
    }
    if let Some(s) = f.get("max-calls") {
        let n = v::int_range("max-calls", s, 0, MAX_CALLS_LIMIT)?;
        out.push(("max_concurrent_calls", V::Int(n), json!(n)));
    }
    if let Some(s) = f.get("country") {
        let s = v::country_code("country", s)?;
        out.push(("country_code", V::text(&s), json!(s)));
    }
    if let Some(b) = f.switch("allow-international") {
        out.push(("allow_international", V::bool(b), json!(b)));
    }
    if let Some(b) = f.switch("allow-premium") {
        out.push(("allow_premium", V::bool(b), json!(b)));
    }
    if let Some(s) = f.get("premium-prefixes") {
        let list = v::e164_prefixes("premium-prefixes", s)?;
        let text = serde_json::to_string(&list).expect("strings serialize");
        out.push(("premium_prefixes", V::text(text), json!(list)));
    }
    for (flag, col) in [
        ("caller-id-name", "caller_id_name"),
        ("caller-id-number", "caller_id_number"),
    ] {
        if let Some(s) = f.get(flag) {
            if s.is_empty() && update_mode {
                out.push((col, V::Null, Value::Null));
                continue;
            }
            let s = if flag == "caller-id-name" {
                v::caller_id_name(flag, s)?
            } else {
                v::e164(flag, s)?
            };
            out.push((col, V::text(&s), json!(s)));
        }
    }
    if let Some(s) = f.get("digest-algorithms") {
        let s = v::digest_algorithms("digest-algorithms", s)?;
        out.push(("digest_algorithms", V::text(&s), json!(s)));
    }
    Ok(out)
}

pub fn create(f: &Flags, env: &mut dyn Env) -> Result<Plan> {
    let name = v::text("name", f.req("name")?, 200)?;
    let domain = v::domain("domain", f.req("domain")?)?;
    let given = account_fields(f, false)?;
    let now = env.now_ms();
    let id = new_id(env, "acc", now)?;
    // Defaults (as in the schema), then what was given.
    let mut fields: Vec<Field> = vec![
        ("name", V::text(&name), json!(name)),
        ("status", V::text("active"), json!("active")),
        ("time_zone", V::text("UTC"), json!("UTC")),
        ("max_concurrent_calls", V::Int(10), json!(10)),
        ("country_code", V::text("1"), json!("1")),
        ("allow_international", V::Int(0), json!(false)),
        ("allow_premium", V::Int(0), json!(false)),
        ("premium_prefixes", V::text("[]"), json!([])),
        ("caller_id_name", V::Null, Value::Null),
        ("caller_id_number", V::Null, Value::Null),
        (
            "digest_algorithms",
            V::text("SHA-256,MD5"),
            json!("SHA-256,MD5"),
        ),
    ];
    for g in given {
        let slot = fields
            .iter_mut()
            .find(|x| x.0 == g.0)
            .expect("every field has a default");
        *slot = g;
    }
    let mut cols: Vec<(&str, V)> = vec![("id", V::text(&id))];
    let mut out = Map::new();
    out.insert("id".into(), json!(id));
    for (col, sqlv, jv) in fields {
        cols.push((col, sqlv));
        out.insert(col.into(), jv);
    }
    cols.push(("created_at", V::Int(now as i64)));
    out.insert("domain".into(), json!(domain));
    out.insert("created_at".into(), json!(now));
    let statements = vec![
        insert("accounts", false, &cols)?,
        insert(
            "sip_domains",
            false,
            &[
                ("domain", V::text(&domain)),
                ("account_id", V::text(&id)),
                ("created_at", V::Int(now as i64)),
            ],
        )?,
    ];
    Ok(Plan::new(statements, Value::Object(out)))
}

/// Fail unless the lookup column `account` (a COUNT) is 1.
pub fn require_account(row: &crate::sql::Row, account: &str) -> Result<()> {
    if col_i64(row, "account") == Some(1) {
        Ok(())
    } else {
        failure(format!("account {account} not found"))
    }
}

/// `(SELECT COUNT(*) FROM accounts WHERE id = …) AS account` for combined lookups.
pub fn account_probe(account: &str) -> Result<String> {
    Ok(format!(
        "(SELECT COUNT(*) FROM accounts WHERE id = {}) AS account",
        lit(account)?
    ))
}

pub fn update_account(f: &Flags, env: &mut dyn Env) -> Result<Plan> {
    let account = v::id("account", f.req("account")?, "acc", "an account")?;
    if f.has("domain") {
        return usage(
            "account update does not change domains; use `domain add --account ID --domain DOMAIN`",
        );
    }
    let fields = account_fields(f, true)?;
    if fields.is_empty() {
        return usage("account update: give at least one option to change (e.g. --max-calls 20)");
    }
    let row = lookup_one(env, &format!("SELECT {}", account_probe(&account)?))?;
    require_account(&row, &account)?;
    let mut out = Map::new();
    out.insert("id".into(), json!(account));
    let mut sets = Vec::new();
    for (col, sqlv, jv) in fields {
        sets.push((col, sqlv));
        out.insert(col.into(), jv);
    }
    Ok(Plan::new(
        vec![update("accounts", &sets, "id", &account, None)?],
        Value::Object(out),
    ))
}

pub fn domain_add(f: &Flags, env: &mut dyn Env) -> Result<Plan> {
    let account = v::id("account", f.req("account")?, "acc", "an account")?;
    let domain = v::domain("domain", f.req("domain")?)?;
    let row = lookup_one(
        env,
        &format!(
            "SELECT {}, (SELECT account_id FROM sip_domains WHERE domain = {}) AS owner",
            account_probe(&account)?,
            lit(&domain)?
        ),
    )?;
    require_account(&row, &account)?;
    if let Some(owner) = col_str(&row, "owner") {
        return if owner == account {
            failure(format!(
                "domain {domain} already belongs to account {account}"
            ))
        } else {
            failure(format!(
                "domain {domain} already belongs to another account ({owner})"
            ))
        };
    }
    let now = env.now_ms();
    let stmt = insert(
        "sip_domains",
        false,
        &[
            ("domain", V::text(&domain)),
            ("account_id", V::text(&account)),
            ("created_at", V::Int(now as i64)),
        ],
    )?;
    Ok(Plan::new(
        vec![stmt],
        json!({"domain": domain, "account_id": account, "created_at": now}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::testing::TestEnv;
    use crate::testutil::flags;

    #[test]
    fn create_minimal_uses_schema_defaults() {
        let mut env = TestEnv::new();
        let p = create(
            &flags(
                CREATE_FLAGS,
                &["--name", "Acme Corp", "--domain", "Acme.SIP.io"],
            ),
            &mut env,
        )
        .unwrap();
        let id = p.output["id"].as_str().unwrap().to_string();
        assert!(callplane::typeid::is_valid(&id, "acc"));
        assert_eq!(
            p.sql(),
            format!(
                "INSERT INTO accounts (id, name, status, time_zone, max_concurrent_calls, country_code, allow_international, allow_premium, premium_prefixes, caller_id_name, caller_id_number, digest_algorithms, created_at) VALUES ('{id}', 'Acme Corp', 'active', 'UTC', 10, '1', 0, 0, '[]', NULL, NULL, 'SHA-256,MD5', 1767225600000);\n\
                 INSERT INTO sip_domains (domain, account_id, created_at) VALUES ('acme.sip.io', '{id}', 1767225600000);\n"
            )
        );
        assert_eq!(p.output["domain"], "acme.sip.io");
        assert_eq!(p.output["max_concurrent_calls"], 10);
        assert_eq!(p.output["allow_premium"], false);
        assert_eq!(p.output["premium_prefixes"], json!([]));
        assert_eq!(p.output["created_at"], 1_767_225_600_000u64);
    }

    #[test]
    fn create_with_everything() {
        let mut env = TestEnv::new();
        let p = create(
            &flags(
                CREATE_FLAGS,
                &[
                    "--name",
                    "O'Brien & Co",
                    "--domain",
                    "obrien.example",
                    "--max-calls",
                    "0",
                    "--country",
                    "44",
                    "--time-zone",
                    "Europe/London",
                    "--allow-international",
                    "--allow-premium=false",
                    "--premium-prefixes",
                    "+44909,+4487",
                    "--caller-id-number",
                    "+442079460000",
                    "--caller-id-name",
                    "O'Brien",
                    "--digest-algorithms",
                    "md5",
                    "--status",
                    "suspended",
                ],
            ),
            &mut env,
        )
        .unwrap();
        let sql = p.sql();
        assert!(sql.contains("VALUES ('acc_"), "{sql}");
        assert!(sql.contains(
            "'O''Brien & Co', 'suspended', 'Europe/London', 0, '44', 1, 0, '[\"+44909\",\"+4487\"]', 'O''Brien', '+442079460000', 'MD5', 1767225600000)"
        ), "{sql}");
        assert_eq!(p.output["premium_prefixes"], json!(["+44909", "+4487"]));
        assert_eq!(p.output["allow_international"], true);
        assert_eq!(p.output["caller_id_name"], "O'Brien");
    }

    #[test]
    fn create_validation() {
        let cases: &[&[&str]] = &[
            &["--domain", "a.example"],
            &["--name", "A"],
            &["--name", "A", "--domain", "not a domain"],
            &["--name", "A", "--domain", "a.example", "--max-calls", "-1"],
            &["--name", "A", "--domain", "a.example", "--country", "0"],
            &[
                "--name",
                "A",
                "--domain",
                "a.example",
                "--time-zone",
                "Nowhere/City",
            ],
            &[
                "--name",
                "A",
                "--domain",
                "a.example",
                "--premium-prefixes",
                "1900",
            ],
            &[
                "--name",
                "A",
                "--domain",
                "a.example",
                "--caller-id-number",
                "5551230100",
            ],
            &[
                "--name",
                "A",
                "--domain",
                "a.example",
                "--caller-id-number",
                "",
            ],
            &[
                "--name",
                "A",
                "--domain",
                "a.example",
                "--caller-id-name",
                "a\"b",
            ],
            &[
                "--name",
                "A",
                "--domain",
                "a.example",
                "--digest-algorithms",
                "SHA-512",
            ],
            &[
                "--name",
                "A",
                "--domain",
                "a.example",
                "--digest-algorithms",
                "MD5,md5",
            ],
            &["--name", "A", "--domain", "a.example", "--status", "closed"],
            &["--name", "", "--domain", "a.example"],
        ];
        for args in cases {
            let mut env = TestEnv::new();
            let e = create(&flags(CREATE_FLAGS, args), &mut env)
                .err()
                .unwrap_or_else(|| panic!("accepted {args:?}"));
            assert_eq!(e.exit_code(), 2, "{args:?}: {}", e.message());
        }
    }

    #[test]
    fn update_changes_only_given_fields() {
        let acc = callplane::typeid::new("acc", 1, [7; 10]);
        let mut env = TestEnv::row(json!({"account": 1}));
        let p = update_account(
            &flags(
                UPDATE_FLAGS,
                &[
                    "--account",
                    &acc,
                    "--max-calls",
                    "25",
                    "--allow-premium=false",
                    "--caller-id-name",
                    "",
                ],
            ),
            &mut env,
        )
        .unwrap();
        assert_eq!(
            p.sql(),
            format!("UPDATE accounts SET max_concurrent_calls = 25, allow_premium = 0, caller_id_name = NULL WHERE id = '{acc}';\n")
        );
        assert_eq!(
            p.output,
            json!({"id": acc, "max_concurrent_calls": 25, "allow_premium": false, "caller_id_name": null})
        );
        assert_eq!(
            env.queries,
            vec![format!(
                "SELECT (SELECT COUNT(*) FROM accounts WHERE id = '{acc}') AS account"
            )]
        );
    }

    #[test]
    fn update_errors() {
        let acc = callplane::typeid::new("acc", 1, [7; 10]);
        // Nothing to change, domain, bad id: usage errors without touching the database.
        for args in [
            vec!["--account", acc.as_str()],
            vec!["--account", &acc, "--domain", "x.io"],
            vec!["--account", "usr_1", "--name", "x"],
        ] {
            let mut env = TestEnv::new();
            assert_eq!(
                update_account(&flags(UPDATE_FLAGS, &args), &mut env)
                    .err()
                    .unwrap()
                    .exit_code(),
                2
            );
        }
        let mut env = TestEnv::row(json!({"account": 0}));
        let e = update_account(
            &flags(UPDATE_FLAGS, &["--account", &acc, "--name", "X"]),
            &mut env,
        )
        .err()
        .unwrap();
        assert_eq!(e.exit_code(), 1);
        assert_eq!(e.message(), format!("account {acc} not found"));
    }

    #[test]
    fn domain_add_checks_owner() {
        let acc = callplane::typeid::new("acc", 1, [7; 10]);
        let mut env = TestEnv::row(json!({"account": 1, "owner": null}));
        let p = domain_add(
            &flags(
                DOMAIN_ADD_FLAGS,
                &["--account", &acc, "--domain", "Sales.Acme.io"],
            ),
            &mut env,
        )
        .unwrap();
        assert_eq!(p.sql(), format!("INSERT INTO sip_domains (domain, account_id, created_at) VALUES ('sales.acme.io', '{acc}', 1767225600000);\n"));
        assert_eq!(
            p.output,
            json!({"domain": "sales.acme.io", "account_id": acc, "created_at": 1_767_225_600_000u64})
        );
        assert_eq!(
            env.queries[0],
            format!("SELECT (SELECT COUNT(*) FROM accounts WHERE id = '{acc}') AS account, (SELECT account_id FROM sip_domains WHERE domain = 'sales.acme.io') AS owner")
        );

        let mut env = TestEnv::row(json!({"account": 1, "owner": "acc_other"}));
        let e = domain_add(
            &flags(DOMAIN_ADD_FLAGS, &["--account", &acc, "--domain", "x.io"]),
            &mut env,
        )
        .err()
        .unwrap();
        assert_eq!(
            e.message(),
            "domain x.io already belongs to another account (acc_other)"
        );
        let mut env = TestEnv::row(json!({"account": 0, "owner": null}));
        assert_eq!(
            domain_add(
                &flags(DOMAIN_ADD_FLAGS, &["--account", &acc, "--domain", "x.io"]),
                &mut env
            )
            .err()
            .unwrap()
            .exit_code(),
            1
        );
    }
}
