//! `carrier create`: a carrier whose INVITEs are trusted by source address.

use serde_json::json;

use crate::args::{val, Flag, Flags};
use crate::env::{new_id, Env};
use crate::error::Result;
use crate::sql::{insert, Plan, V};
use crate::validate as v;

pub const CREATE_FLAGS: &[Flag] = &[val("name"), val("address"), val("port")];

pub fn create(f: &Flags, env: &mut dyn Env) -> Result<Plan> {
    let name = v::text("name", f.req("name")?, 200)?;
    let addresses = v::cidrs("address", f.req("address")?)?;
    let port = f.get("port").map(|p| v::port("port", p)).transpose()?;
    let now = env.now_ms();
    let id = new_id(env, "car", now)?;
    let mut statements = vec![insert(
        "carriers",
        false,
        &[
            ("id", V::text(&id)),
            ("name", V::text(&name)),
            ("enabled", V::Int(1)),
            ("created_at", V::Int(now as i64)),
        ],
    )?];
    for a in &addresses {
        statements.push(insert(
            "carrier_addresses",
            false,
            &[
                ("carrier_id", V::text(&id)),
                ("cidr", V::text(a)),
                ("port", port.map_or(V::Null, V::Int)),
            ],
        )?);
    }
    Ok(Plan::new(
        statements,
        json!({"id": id, "name": name, "addresses": addresses, "port": port, "enabled": true, "created_at": now}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::testing::TestEnv;
    use crate::testutil::flags;

    #[test]
    fn create_carrier() {
        let mut env = TestEnv::new();
        let p = create(
            &flags(
                CREATE_FLAGS,
                &[
                    "--name",
                    "Demo Carrier",
                    "--address",
                    "127.0.0.1/32, 2001:DB8::/32",
                    "--port",
                    "5080",
                ],
            ),
            &mut env,
        )
        .unwrap();
        let id = p.output["id"].as_str().unwrap().to_string();
        assert!(callplane::typeid::is_valid(&id, "car"));
        assert_eq!(
            p.sql(),
            format!(
                "INSERT INTO carriers (id, name, enabled, created_at) VALUES ('{id}', 'Demo Carrier', 1, 1767225600000);\n\
                 INSERT INTO carrier_addresses (carrier_id, cidr, port) VALUES ('{id}', '127.0.0.1/32', 5080);\n\
                 INSERT INTO carrier_addresses (carrier_id, cidr, port) VALUES ('{id}', '2001:db8::/32', 5080);\n"
            )
        );
        assert_eq!(
            p.output["addresses"],
            json!(["127.0.0.1/32", "2001:db8::/32"])
        );
        let p = create(
            &flags(
                CREATE_FLAGS,
                &["--name", "Any port", "--address", "203.0.113.7"],
            ),
            &mut env,
        )
        .unwrap();
        assert!(p.sql().contains("'203.0.113.7', NULL);"), "{}", p.sql());
        assert_eq!(p.output["port"], serde_json::Value::Null);
    }

    #[test]
    fn carrier_errors() {
        for args in [
            vec!["--name", "C"],
            vec!["--address", "10.0.0.0/8"],
            vec!["--name", "C", "--address", "10.0.0.1/8"],
            vec!["--name", "C", "--address", "carrier.example"],
            vec!["--name", "C", "--address", "10.0.0.0/8", "--port", "0"],
            vec!["--name", "C", "--address", "10.0.0.0/8", "--port", "70000"],
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
