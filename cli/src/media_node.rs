//! `media-node create`: a FreeSWITCH + edge-agent node.

use serde_json::json;

use crate::args::{val, Flag, Flags};
use crate::env::{new_id, Env};
use crate::error::Result;
use crate::sql::{insert, Plan, V};
use crate::validate as v;

pub const CREATE_FLAGS: &[Flag] = &[
    val("name"),
    val("host"),
    val("port"),
    val("transport"),
    val("status"),
];

pub const TRANSPORTS: &[&str] = &["udp", "tcp", "tls"];
pub const STATUSES: &[&str] = &["active", "draining", "down"];

pub fn create(f: &Flags, env: &mut dyn Env) -> Result<Plan> {
    let name = v::text("name", f.req("name")?, 200)?;
    let host = v::host("host", f.req("host")?)?;
    let port = f.get("port").map_or(Ok(5060), |p| v::port("port", p))?;
    let transport = v::one_of("transport", f.get("transport").unwrap_or("udp"), TRANSPORTS)?;
    let status = v::one_of("status", f.get("status").unwrap_or("active"), STATUSES)?;
    let now = env.now_ms();
    let id = new_id(env, "mn", now)?;
    let stmt = insert(
        "media_nodes",
        false,
        &[
            ("id", V::text(&id)),
            ("name", V::text(&name)),
            ("sip_host", V::text(&host)),
            ("sip_port", V::Int(port)),
            ("transport", V::text(&transport)),
            ("status", V::text(&status)),
            ("created_at", V::Int(now as i64)),
        ],
    )?;
    Ok(Plan::new(
        vec![stmt],
        json!({"id": id, "name": name, "sip_host": host, "sip_port": port, "transport": transport, "status": status, "created_at": now}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::testing::TestEnv;
    use crate::testutil::flags;

    #[test]
    fn create_media_node() {
        let mut env = TestEnv::new();
        let p = create(
            &flags(
                CREATE_FLAGS,
                &["--name", "fs-1", "--host", "127.0.0.1", "--port", "5070"],
            ),
            &mut env,
        )
        .unwrap();
        let id = p.output["id"].as_str().unwrap().to_string();
        assert!(callplane::typeid::is_valid(&id, "mn"));
        assert_eq!(
            p.sql(),
            format!("INSERT INTO media_nodes (id, name, sip_host, sip_port, transport, status, created_at) VALUES ('{id}', 'fs-1', '127.0.0.1', 5070, 'udp', 'active', 1767225600000);\n")
        );
        let p = create(
            &flags(
                CREATE_FLAGS,
                &[
                    "--name",
                    "fs-2",
                    "--host",
                    "[::1]",
                    "--transport",
                    "tcp",
                    "--status",
                    "draining",
                ],
            ),
            &mut env,
        )
        .unwrap();
        assert!(
            p.sql().contains("'fs-2', '::1', 5060, 'tcp', 'draining'"),
            "{}",
            p.sql()
        );
    }

    #[test]
    fn media_node_errors() {
        for args in [
            vec!["--name", "fs"],
            vec!["--name", "fs", "--host", "bad host"],
            vec!["--name", "fs", "--host", "h.example", "--transport", "sctp"],
            vec!["--name", "fs", "--host", "h.example", "--status", "up"],
            vec!["--name", "fs", "--host", "h.example", "--port", "x"],
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
