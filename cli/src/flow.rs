//! `flow create` (version 1, published) and `flow publish` (version N+1, published).
//! A published version is immutable: publishing always adds a version.
//!
//! Before anything is written, the file is checked by the flow core's own validator
//! (`callplane::flow::definition::parse_and_validate`, the same code the interpreter runs), and
//! the rows the definition refers to (dial users and devices, branch calendars, sub-flows) are
//! looked up, in the same `SELECT` as the account / flow, and must belong to the flow's account.
//! Every problem is reported, one line each, naming the node. The text is stored byte for byte
//! as read: calls pin a version by the SHA-256 of its stored text.

use std::collections::BTreeMap;

use callplane::flow::definition::{self, Condition, Endpoint, FlowDefinition, Node};
use serde_json::json;

use crate::account::{account_probe, require_account};
use crate::args::{val, Flag, Flags};
use crate::env::{lookup_one, new_id, Env};
use crate::error::{failure, usage, Result};
use crate::sql::{col_i64, col_str, insert, lit, update, Plan, Row, V};
use crate::validate as v;

pub const CREATE_FLAGS: &[Flag] = &[val("account"), val("name"), val("file")];
pub const PUBLISH_FLAGS: &[Flag] = &[val("flow"), val("file")];

/// Most distinct ids one definition may refer to (they all go into one lookup `SELECT`,
/// passed to wrangler on its command line).
pub const MAX_REFERENCES: usize = 1000;

/// A checked flow definition file: the text exactly as read, and what it refers to.
struct Definition {
    path: String,
    text: String,
    refs: Vec<Reference>,
}

/// An id in a definition that must be a row of the flow's account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The table holding it (`users`, `devices`, `calendars`, `flows`).
    pub table: &'static str,
    /// What it is, for messages (`user`, `device`, `calendar`, `flow`).
    pub what: &'static str,
    pub id: String,
    /// Where it is written: node id and field.
    pub node: String,
    pub field: String,
}

/// Every account-scoped id `def` refers to, in node order (a node's own order within it):
/// dial targets `user` / `device`, `calendar` conditions of branches (nested too), sub-flows.
/// External numbers, SIP URIs, media keys and queue ids are not rows of the account.
pub fn references(def: &FlowDefinition) -> Vec<Reference> {
    fn conditions(c: &Condition, node: &str, field: String, out: &mut Vec<Reference>) {
        match c {
            Condition::Calendar { calendar, .. } => out.push(Reference {
                table: "calendars",
                what: "calendar",
                id: calendar.clone(),
                node: node.to_string(),
                field: format!("{field}.calendar"),
            }),
            Condition::All(list) | Condition::Any(list) => {
                let name = if matches!(c, Condition::All(_)) {
                    "all"
                } else {
                    "any"
                };
                for (i, c) in list.iter().enumerate() {
                    conditions(c, node, format!("{field}.{name}[{i}]"), out);
                }
            }
            Condition::Not(c) => conditions(c, node, format!("{field}.not"), out),
            Condition::Var { .. } => {}
        }
    }
    let mut out = Vec::new();
    for (id, node) in &def.nodes {
        match node {
            Node::Dial(d) => {
                for (i, t) in d.targets.iter().enumerate() {
                    let (table, what, value) = match t {
                        Endpoint::User(u) => ("users", "user", u),
                        Endpoint::Device(d) => ("devices", "device", d),
                        Endpoint::Number(_) | Endpoint::Sip(_) => continue,
                    };
                    out.push(Reference {
                        table,
                        what,
                        id: value.clone(),
                        node: id.clone(),
                        field: format!("targets[{i}]"),
                    });
                }
            }
            Node::Branch(b) => {
                for (i, c) in b.cases.iter().enumerate() {
                    conditions(&c.when, id, format!("cases[{i}].when"), &mut out);
                }
            }
            Node::Subflow(s) => out.push(Reference {
                table: "flows",
                what: "flow",
                id: s.flow.clone(),
                node: id.clone(),
                field: "flow".into(),
            }),
            _ => {}
        }
    }
    out
}

/// One error line per problem: `PATH: node "menu": options."9": no node "sales2"`.
fn definition_errors(path: &str, lines: &[String]) -> crate::error::CliError {
    let n = lines.len();
    let mut msg = format!(
        "{path}: the flow definition has {n} error{} (nothing was written):",
        if n == 1 { "" } else { "s" }
    );
    for l in lines {
        msg.push('\n');
        msg.push_str(path);
        msg.push_str(": ");
        msg.push_str(l);
    }
    crate::error::CliError::Failure(msg)
}

/// Read a flow definition file and validate it with the flow core. The text is kept exactly
/// as read (no trimming, no re-serialization).
fn definition(env: &mut dyn Env, path: &str) -> Result<Definition> {
    if path.is_empty() {
        return usage("--file needs a path");
    }
    let text = env.read_file(path)?;
    let def = definition::parse_and_validate(&text).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        definition_errors(path, &lines)
    })?;
    let refs = references(&def);
    let mut distinct: Vec<(&str, &str)> = refs.iter().map(|r| (r.table, r.id.as_str())).collect();
    distinct.sort();
    distinct.dedup();
    if distinct.len() > MAX_REFERENCES {
        return failure(format!(
            "{path}: the flow refers to {} distinct users, devices, calendars and flows, at most {MAX_REFERENCES} (split it into sub-flows)",
            distinct.len()
        ));
    }
    Ok(Definition {
        path: path.to_string(),
        text,
        refs,
    })
}

/// Lookup columns for the references: per table, `id:account_id` of the referenced rows that
/// exist (`ref_users`, …), one scalar subquery each.
fn reference_columns(refs: &[Reference]) -> Result<Vec<String>> {
    let mut by_table: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in refs {
        let ids = by_table.entry(r.table).or_default();
        if !ids.contains(&r.id.as_str()) {
            ids.push(&r.id);
        }
    }
    by_table
        .into_iter()
        .map(|(table, ids)| {
            let list = ids.into_iter().map(lit).collect::<Result<Vec<_>>>()?;
            Ok(format!(
                "(SELECT group_concat(id || ':' || account_id, ',') FROM {table} WHERE id IN ({})) AS ref_{table}",
                list.join(", ")
            ))
        })
        .collect()
}

/// Every reference must exist and belong to `account` (all problems reported at once).
fn check_references(d: &Definition, row: &Row, account: &str) -> Result<()> {
    let mut tables: Vec<&str> = d.refs.iter().map(|r| r.table).collect();
    tables.sort();
    tables.dedup();
    let mut owners: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    let found: Vec<(&str, String)> = tables
        .into_iter()
        .map(|t| (t, col_str(row, &format!("ref_{t}")).unwrap_or_default()))
        .collect();
    for (table, list) in &found {
        for pair in list.split(',') {
            if let Some((id, owner)) = pair.split_once(':') {
                owners.insert((table, id), owner);
            }
        }
    }
    let mut lines = Vec::new();
    for r in &d.refs {
        let problem = match owners.get(&(r.table, r.id.as_str())) {
            Some(owner) if *owner == account => continue,
            Some(owner) => {
                format!("belongs to account {owner}, not to the flow's account {account}")
            }
            None => "not found".to_string(),
        };
        lines.push(format!(
            "node {:?}: {}: {} {} {problem}",
            r.node, r.field, r.what, r.id
        ));
    }
    if lines.is_empty() {
        Ok(())
    } else {
        Err(definition_errors(&d.path, &lines))
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
    let mut sel = vec![account_probe(&account)?];
    sel.extend(reference_columns(&def.refs)?);
    let row = lookup_one(env, &format!("SELECT {}", sel.join(", ")))?;
    require_account(&row, &account)?;
    check_references(&def, &row, &account)?;
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
        version_row(&id, 1, &def.text, now)?,
    ];
    Ok(Plan::new(
        statements,
        json!({"id": id, "account_id": account, "name": name, "version": 1, "published_version": 1, "created_at": now}),
    ))
}

pub fn publish(f: &Flags, env: &mut dyn Env) -> Result<Plan> {
    let flow = v::id("flow", f.req("flow")?, "flow", "a flow")?;
    let def = definition(env, f.req("file")?)?;
    let mut sel = vec![
        "account_id".to_string(),
        "name".to_string(),
        "(SELECT COALESCE(MAX(version), 0) FROM flow_versions WHERE flow_id = flows.id) AS max_version".to_string(),
    ];
    sel.extend(reference_columns(&def.refs)?);
    let rows = env.query(&format!(
        "SELECT {} FROM flows WHERE id = {}",
        sel.join(", "),
        lit(&flow)?
    ))?;
    let Some(row) = rows.first() else {
        return failure(format!("flow {flow} not found"));
    };
    let (Some(account), Some(max)) = (col_str(row, "account_id"), col_i64(row, "max_version"))
    else {
        return failure(format!("unexpected lookup result for flow {flow}"));
    };
    check_references(&def, row, &account)?;
    let version = max + 1;
    let now = env.now_ms();
    // A concurrent publish of the same version makes the INSERT fail on the primary key
    // (the whole file is rolled back) instead of silently overwriting.
    let statements = vec![
        version_row(&flow, version, &def.text, now)?,
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
    use serde_json::Value;

    const DEF: &str = r#"{"version":1,"start":"bye","nodes":{"bye":{"type":"hangup"}}}"#;

    fn acc() -> String {
        callplane::typeid::new("acc", 1, [7; 10])
    }

    fn create_with(env: &mut TestEnv, content: Option<&str>) -> Result<Plan> {
        if let Some(c) = content {
            env.files.insert("/f.json".into(), c.into());
        }
        create(
            &flags(
                CREATE_FLAGS,
                &[
                    "--account",
                    &acc(),
                    "--name",
                    "Main IVR",
                    "--file",
                    "/f.json",
                ],
            ),
            env,
        )
    }

    #[test]
    fn create_flow_publishes_v1_storing_the_text_exactly() {
        let acc = acc();
        let mut env = TestEnv::row(json!({"account": 1}));
        let text = format!("\n  {DEF}\n");
        let p = create_with(&mut env, Some(&text)).unwrap();
        let id = p.output["id"].as_str().unwrap().to_string();
        assert!(callplane::typeid::is_valid(&id, "flow"));
        // Byte for byte, surrounding whitespace included: a call pins SHA-256 of this text.
        assert_eq!(
            p.sql(),
            format!(
                "INSERT INTO flows (id, account_id, name, published_version, created_at) VALUES ('{id}', '{acc}', 'Main IVR', 1, 1767225600000);\n\
                 INSERT INTO flow_versions (flow_id, version, definition, created_at) VALUES ('{id}', 1, '{text}', 1767225600000);\n"
            )
        );
        assert_eq!(p.output["version"], 1);
        // No references: the lookup is the account probe alone.
        assert_eq!(
            env.queries,
            [format!(
                "SELECT (SELECT COUNT(*) FROM accounts WHERE id = '{acc}') AS account"
            )]
        );
        let mut env = TestEnv::row(json!({"account": 0}));
        let e = create_with(&mut env, Some(DEF)).err().unwrap();
        assert_eq!(e.message(), format!("account {acc} not found"));
    }

    #[test]
    fn publish_adds_next_version() {
        let flow = callplane::typeid::new("flow", 1, [7; 10]);
        let def =
            r#"{"version":1,"start":"bye","nodes":{"bye":{"type":"hangup","reason":"it's v4"}}}"#;
        let mut env =
            TestEnv::row(json!({"account_id": "acc_x", "name": "Main IVR", "max_version": 3}));
        env.files.insert("/f.json".into(), def.into());
        let p = publish(
            &flags(PUBLISH_FLAGS, &["--flow", &flow, "--file", "/f.json"]),
            &mut env,
        )
        .unwrap();
        assert_eq!(
            p.sql(),
            format!(
                "INSERT INTO flow_versions (flow_id, version, definition, created_at) VALUES ('{flow}', 4, '{}', 1767225600000);\n\
                 UPDATE flows SET published_version = 4 WHERE id = '{flow}';\n",
                def.replace('\'', "''")
            )
        );
        assert_eq!(p.output["version"], 4);
        assert_eq!(p.output["account_id"], "acc_x");
        assert_eq!(
            env.queries,
            [format!("SELECT account_id, name, (SELECT COALESCE(MAX(version), 0) FROM flow_versions WHERE flow_id = flows.id) AS max_version FROM flows WHERE id = '{flow}'")]
        );
        let mut env = TestEnv::with(|_| vec![]);
        env.files.insert("/f.json".into(), DEF.into());
        let e = publish(
            &flags(PUBLISH_FLAGS, &["--flow", &flow, "--file", "/f.json"]),
            &mut env,
        )
        .err()
        .unwrap();
        assert_eq!(e.message(), format!("flow {flow} not found"));
    }

    #[test]
    fn an_invalid_flow_is_refused_with_every_error_naming_its_node() {
        // The validation example of docs/flows.md, plus a dial to a malformed user id.
        let bad = json!({"version": 1, "start": "menu", "nodes": {
            "menu": {"type": "menu", "options": {"1": "sales", "2": "nowhere"}},
            "sales": {"type": "enqueue", "queue": "sales", "next": "bye"},
            "bye": {"type": "hangup"},
            "lost": {"type": "dial", "targets": [{"user": "usr_nope"}]}
        }})
        .to_string();
        // TestEnv::new panics on any query: nothing is looked up, let alone written.
        let e = create_with(&mut TestEnv::new(), Some(&bad)).err().unwrap();
        assert_eq!(e.exit_code(), 1);
        assert_eq!(
            e.message(),
            "/f.json: the flow definition has 4 errors (nothing was written):\n\
             /f.json: node \"lost\": targets[0]: expected a usr_ id, got \"usr_nope\"\n\
             /f.json: node \"menu\": prompt: missing (a menu needs something to play)\n\
             /f.json: node \"menu\": options.\"2\": no node \"nowhere\"\n\
             /f.json: node \"lost\": unreachable from start \"menu\""
        );
        // What the core says is what the CLI says, error for error.
        let core = definition::parse_and_validate(&bad).unwrap_err();
        assert_eq!(e.message().lines().count(), core.len() + 1);
        for err in &core {
            assert!(e.message().contains(&format!("/f.json: {err}")), "{err}");
        }
        // The same check guards publish.
        let flow = callplane::typeid::new("flow", 1, [7; 10]);
        let mut env = TestEnv::new();
        env.files.insert("/f.json".into(), bad);
        let e2 = publish(
            &flags(PUBLISH_FLAGS, &["--flow", &flow, "--file", "/f.json"]),
            &mut env,
        )
        .err()
        .unwrap();
        assert_eq!(e2, e);
    }

    #[test]
    fn flow_file_errors() {
        for (content, code, says) in [
            (Some("{"), 1, "/f.json: not valid JSON"),
            (
                Some("[1,2]"),
                1,
                "/f.json: a flow definition is a JSON object",
            ),
            (Some(""), 1, "/f.json: not valid JSON"),
            (
                Some(r#"{"note":"hi"}"#),
                1,
                "/f.json: unknown field \"note\"",
            ),
            (
                Some(r#"{"version":1,"start":"bye","nodes":{"bye":{"type":"hangup","note":"x"}}}"#),
                1,
                "/f.json: node \"bye\": unknown field `note`",
            ),
            (None, 1, "cannot read /f.json"),
        ] {
            let e = create_with(&mut TestEnv::new(), content).err().unwrap();
            assert_eq!(e.exit_code(), code, "{content:?}: {}", e.message());
            assert!(e.message().contains(says), "{content:?}: {}", e.message());
        }
        let e = create(
            &flags(
                CREATE_FLAGS,
                &["--account", &acc(), "--name", "X", "--file", ""],
            ),
            &mut TestEnv::new(),
        )
        .err()
        .unwrap();
        assert_eq!(e.exit_code(), 2);
    }

    fn id(prefix: &str, n: u8) -> String {
        callplane::typeid::new(prefix, 1, [n; 10])
    }

    /// A flow referring to two users (one twice), a device, a calendar (nested in a
    /// condition) and a sub-flow, besides a number and a SIP URI (not account rows).
    fn referring_flow() -> String {
        json!({"version": 1, "start": "hours", "nodes": {
            "hours": {"type": "branch", "cases": [
                {"when": {"all": [{"var": "x", "exists": true}, {"not": {"calendar": id("cal", 3), "is": "open"}}]}, "next": "ring"}
            ], "default": "sub"},
            "ring": {"type": "dial", "targets": [{"user": id("usr", 1)}, {"number": "+15557654321"}, {"sip": "sip:a@b.example"}, {"device": id("dev", 2)}, {"user": id("usr", 4)}], "next": "again"},
            "again": {"type": "dial", "targets": [{"user": id("usr", 1)}], "next": "sub"},
            "sub": {"type": "subflow", "flow": id("flow", 5)}
        }})
        .to_string()
    }

    #[test]
    fn references_are_the_account_rows_a_flow_names() {
        let def = definition::parse_and_validate(&referring_flow()).unwrap();
        let got: Vec<(&str, &str, String, String, String)> = references(&def)
            .into_iter()
            .map(|r| (r.table, r.what, r.id, r.node, r.field))
            .collect();
        let r = |t, w, i: String, n: &str, f: &str| (t, w, i, n.to_string(), f.to_string());
        assert_eq!(
            got,
            [
                r("users", "user", id("usr", 1), "again", "targets[0]"),
                r(
                    "calendars",
                    "calendar",
                    id("cal", 3),
                    "hours",
                    "cases[0].when.all[1].not.calendar"
                ),
                r("users", "user", id("usr", 1), "ring", "targets[0]"),
                r("devices", "device", id("dev", 2), "ring", "targets[3]"),
                r("users", "user", id("usr", 4), "ring", "targets[4]"),
                r("flows", "flow", id("flow", 5), "sub", "flow"),
            ]
        );
    }

    #[test]
    fn references_must_exist_in_the_flows_account() {
        let acc = acc();
        let (u1, u4, dev, cal, sub) = (
            id("usr", 1),
            id("usr", 4),
            id("dev", 2),
            id("cal", 3),
            id("flow", 5),
        );
        // All present and the account's own: one SELECT, then the insert.
        let all_ok = json!({"account": 1, "ref_users": format!("{u4}:{acc},{u1}:{acc}"), "ref_devices": format!("{dev}:{acc}"),
                            "ref_calendars": format!("{cal}:{acc}"), "ref_flows": format!("{sub}:{acc}")});
        let mut env = TestEnv::row(all_ok.clone());
        let p = create_with(&mut env, Some(&referring_flow())).unwrap();
        assert_eq!(p.statements.len(), 2);
        assert_eq!(
            env.queries,
            [format!(
                "SELECT (SELECT COUNT(*) FROM accounts WHERE id = '{acc}') AS account, \
                 (SELECT group_concat(id || ':' || account_id, ',') FROM calendars WHERE id IN ('{cal}')) AS ref_calendars, \
                 (SELECT group_concat(id || ':' || account_id, ',') FROM devices WHERE id IN ('{dev}')) AS ref_devices, \
                 (SELECT group_concat(id || ':' || account_id, ',') FROM flows WHERE id IN ('{sub}')) AS ref_flows, \
                 (SELECT group_concat(id || ':' || account_id, ',') FROM users WHERE id IN ('{u1}', '{u4}')) AS ref_users"
            )]
        );

        // A missing user (named at both places), a device of another account, no calendar rows at all.
        let mut row = all_ok;
        row["ref_users"] = json!(format!("{u4}:{acc}"));
        row["ref_devices"] = json!(format!("{dev}:acc_other"));
        row["ref_calendars"] = Value::Null;
        let e = create_with(&mut TestEnv::row(row.clone()), Some(&referring_flow()))
            .err()
            .unwrap();
        assert_eq!(e.exit_code(), 1);
        assert_eq!(
            e.message(),
            format!(
                "/f.json: the flow definition has 4 errors (nothing was written):\n\
                 /f.json: node \"again\": targets[0]: user {u1} not found\n\
                 /f.json: node \"hours\": cases[0].when.all[1].not.calendar: calendar {cal} not found\n\
                 /f.json: node \"ring\": targets[0]: user {u1} not found\n\
                 /f.json: node \"ring\": targets[3]: device {dev} belongs to account acc_other, not to the flow's account {acc}"
            )
        );

        // publish checks against the account that owns the flow.
        let flow = id("flow", 9);
        let mut pub_row = row;
        pub_row["ref_users"] = json!(format!("{u4}:acc_x,{u1}:acc_x"));
        pub_row["ref_devices"] = json!(format!("{dev}:acc_x"));
        pub_row["ref_calendars"] = json!(format!("{cal}:acc_x"));
        pub_row["ref_flows"] = json!(format!("{sub}:{acc}"));
        pub_row["account_id"] = json!("acc_x");
        pub_row["name"] = json!("IVR");
        pub_row["max_version"] = json!(1);
        let mut env = TestEnv::row(pub_row);
        env.files.insert("/f.json".into(), referring_flow());
        let e = publish(
            &flags(PUBLISH_FLAGS, &["--flow", &flow, "--file", "/f.json"]),
            &mut env,
        )
        .err()
        .unwrap();
        assert!(
            e.message().ends_with(&format!("/f.json: node \"sub\": flow: flow {sub} belongs to account {acc}, not to the flow's account acc_x")),
            "{}",
            e.message()
        );
        assert!(env.queries[0].starts_with("SELECT account_id, name, (SELECT COALESCE(MAX(version), 0) FROM flow_versions WHERE flow_id = flows.id) AS max_version, (SELECT group_concat("));
        assert!(env.queries[0].ends_with(&format!(" AS ref_users FROM flows WHERE id = '{flow}'")));
    }

    #[test]
    fn too_many_references_fail_before_any_lookup() {
        // 51 chained dial nodes of 20 distinct users each: 1020 > MAX_REFERENCES.
        let mut nodes = serde_json::Map::new();
        for n in 0..51u32 {
            let targets: Vec<Value> = (0..20u32)
                .map(|t| {
                    let k = n * 20 + t;
                    let mut random = [0u8; 10];
                    random[8] = (k >> 8) as u8;
                    random[9] = k as u8;
                    json!({"user": callplane::typeid::new("usr", 1, random)})
                })
                .collect();
            let mut node = json!({"type": "dial", "targets": targets});
            if n < 50 {
                node["next"] = json!(format!("d{}", n + 1));
            }
            nodes.insert(format!("d{n}"), node);
        }
        let text = json!({"version": 1, "start": "d0", "nodes": nodes}).to_string();
        definition::parse_and_validate(&text).unwrap();
        let e = create_with(&mut TestEnv::new(), Some(&text)).err().unwrap();
        assert_eq!(e.exit_code(), 1);
        assert!(
            e.message().contains("refers to 1020 distinct"),
            "{}",
            e.message()
        );
    }
}
