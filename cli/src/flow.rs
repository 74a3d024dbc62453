//! `flow create` (version 1, published) and `flow publish` (version N+1, published).
//! A published version is immutable: publishing always adds a version.

use serde_json::json;

use crate::account::{account_probe, require_account};
use crate::args::{val, Flag, Flags};
use crate::env::{lookup_one, new_id, Env};
use crate::error::{failure, usage, Result};
use crate::sql::{col_i64, col_str, insert, lit, update, Plan, V};
use crate::validate as v;

pub const CREATE_FLAGS: &[Flag] = &[val("account"), val("name"), val("file")];
pub const PUBLISH_FLAGS: &[Flag] = &[val("flow"), val("file")];

/// Read and check a flow definition file: a JSON object, stored exactly as written (trimmed).
/// (The flow format itself is validated by the flow engine.)
fn definition(env: &mut dyn Env, path: &str) -> Result<String> {
    if path.is_empty() {
        return usage("--file needs a path");
    }
    let text = env.read_file(path)?;
    let text = text.trim().to_string();
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(_)) => Ok(text),
        Ok(_) => usage(format!(
            "--file {path}: a flow definition must be a JSON object"
        )),
        Err(e) => usage(format!("--file {path} is not valid JSON: {e}")),
    }
}

fn version_row(flow: &str, version: i64, def: &str, now: u64) -> Result<String> {
    insert(
        "flow_versions",
        false,
        &[
            ("flow_id", V::text(flow)),
            ("version", V::Int(version)),
            ("definition", V::text(def)),
            ("created_at", V::Int(now as i64)),
        ],
    )
}

pub fn create(f: &Flags, env: &mut dyn Env) -> Result<Plan> {
    let account = v::id("account", f.req("account")?, "acc", "an account")?;
    let name = v::text("name", f.req("name")?, 200)?;
    let def = definition(env, f.req("file")?)?;
    let row = lookup_one(env, &format!("SELECT {}", account_probe(&account)?))?;
    require_account(&row, &account)?;
    let now = env.now_ms();
    let id = new_id(env, "flow", now)?;
    let statements = vec![
        insert(
            "flows",
            false,
            &[
                ("id", V::text(&id)),
                ("account_id", V::text(&account)),
                ("name", V::text(&name)),
                ("published_version", V::Int(1)),
                ("created_at", V::Int(now as i64)),
            ],
        )?,
        version_row(&id, 1, &def, now)?,
    ];
    Ok(Plan::new(
        statements,
        json!({"id": id, "account_id": account, "name": name, "version": 1, "published_version": 1, "created_at": now}),
    ))
}

pub fn publish(f: &Flags, env: &mut dyn Env) -> Result<Plan> {
    let flow = v::id("flow", f.req("flow")?, "flow", "a flow")?;
    let def = definition(env, f.req("file")?)?;
    let rows = env.query(&format!(
        "SELECT account_id, name, (SELECT COALESCE(MAX(version), 0) FROM flow_versions WHERE flow_id = flows.id) AS max_version FROM flows WHERE id = {}",
        lit(&flow)?
    ))?;
    let Some(row) = rows.first() else {
        return failure(format!("flow {flow} not found"));
    };
    let (Some(account), Some(max)) = (col_str(row, "account_id"), col_i64(row, "max_version"))
    else {
        return failure(format!("unexpected lookup result for flow {flow}"));
    };
    let version = max + 1;
    let now = env.now_ms();
    // A concurrent publish of the same version makes the INSERT fail on the primary key
    // (the whole file is rolled back) instead of silently overwriting.
    let statements = vec![
        version_row(&flow, version, &def, now)?,
        update(
            "flows",
            &[("published_version", V::Int(version))],
            "id",
            &flow,
            None,
        )?,
    ];
    Ok(Plan::new(
        statements,
        json!({"id": flow, "account_id": account, "name": col_str(row, "name"), "version": version, "published_version": version, "created_at": now}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::testing::TestEnv;
    use crate::testutil::flags;

    const DEF: &str = r#"{"version":1,"start":"bye","nodes":{"bye":{"type":"hangup"}}}"#;

    #[test]
    fn create_flow_publishes_v1() {
        let acc = callplane::typeid::new("acc", 1, [7; 10]);
        let mut env = TestEnv::row(json!({"account": 1}));
        env.files.insert("/f.json".into(), format!("\n  {DEF}\n"));
        let p = create(
            &flags(
                CREATE_FLAGS,
                &["--account", &acc, "--name", "Main IVR", "--file", "/f.json"],
            ),
            &mut env,
        )
        .unwrap();
        let id = p.output["id"].as_str().unwrap().to_string();
        assert!(callplane::typeid::is_valid(&id, "flow"));
        assert_eq!(
            p.sql(),
            format!(
                "INSERT INTO flows (id, account_id, name, published_version, created_at) VALUES ('{id}', '{acc}', 'Main IVR', 1, 1767225600000);\n\
                 INSERT INTO flow_versions (flow_id, version, definition, created_at) VALUES ('{id}', 1, '{DEF}', 1767225600000);\n"
            )
        );
        assert_eq!(p.output["version"], 1);
    }

    #[test]
    fn publish_adds_next_version() {
        let flow = callplane::typeid::new("flow", 1, [7; 10]);
        let mut env =
            TestEnv::row(json!({"account_id": "acc_x", "name": "Main IVR", "max_version": 3}));
        env.files
            .insert("/f.json".into(), "{\"note\":\"it's v4\"}".into());
        let p = publish(
            &flags(PUBLISH_FLAGS, &["--flow", &flow, "--file", "/f.json"]),
            &mut env,
        )
        .unwrap();
        assert_eq!(
            p.sql(),
            format!(
                "INSERT INTO flow_versions (flow_id, version, definition, created_at) VALUES ('{flow}', 4, '{{\"note\":\"it''s v4\"}}', 1767225600000);\n\
                 UPDATE flows SET published_version = 4 WHERE id = '{flow}';\n"
            )
        );
        assert_eq!(p.output["version"], 4);
        assert_eq!(
            env.queries[0],
            format!("SELECT account_id, name, (SELECT COALESCE(MAX(version), 0) FROM flow_versions WHERE flow_id = flows.id) AS max_version FROM flows WHERE id = '{flow}'")
        );
        let mut env = TestEnv::with(|_| vec![]);
        env.files.insert("/f.json".into(), "{}".into());
        let e = publish(
            &flags(PUBLISH_FLAGS, &["--flow", &flow, "--file", "/f.json"]),
            &mut env,
        )
        .err()
        .unwrap();
        assert_eq!(e.message(), format!("flow {flow} not found"));
    }

    #[test]
    fn flow_file_errors() {
        let acc = callplane::typeid::new("acc", 1, [7; 10]);
        for (content, code) in [(Some("{"), 2), (Some("[1,2]"), 2), (Some(""), 2), (None, 1)] {
            let mut env = TestEnv::new();
            if let Some(c) = content {
                env.files.insert("/f.json".into(), c.into());
            }
            let e = create(
                &flags(
                    CREATE_FLAGS,
                    &["--account", &acc, "--name", "X", "--file", "/f.json"],
                ),
                &mut env,
            )
            .err()
            .unwrap();
            assert_eq!(e.exit_code(), code, "{content:?}: {}", e.message());
        }
    }
}
