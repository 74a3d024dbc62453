//! callplane-admin: scriptable provisioning of callplane's configuration in D1 (local or remote).
//!
//! Every command validates its input, runs the read-only lookups it needs, generates SQL and
//! executes it as one file through `wrangler d1 execute callplane … --file F --json` (atomic),
//! then prints ONE JSON object on stdout. Errors go to stderr; exit code 2 = usage, 1 = failure.
//! See docs/provisioning.md.

mod account;
mod args;
mod calendar;
mod carrier;
mod credential;
mod demo;
mod device;
mod env;
mod error;
mod flow;
mod media_node;
mod number;
mod queue;
mod sql;
mod token;
mod trunk;
mod user;
mod validate;
mod wrangler;

use std::io::Write;

use args::{Flag, Flags, GLOBAL_FLAGS};
use env::{Env, RealEnv};
use error::{usage, CliError, Result};
use sql::Plan;

type Handler = fn(&Flags, &mut dyn Env) -> Result<Plan>;

struct Command {
    group: &'static str,
    /// `None` for single-word commands (`demo`).
    action: Option<&'static str>,
    flags: &'static [Flag],
    run: Handler,
}

const COMMANDS: &[Command] = &[
    Command {
        group: "account",
        action: Some("create"),
        flags: account::CREATE_FLAGS,
        run: account::create,
    },
    Command {
        group: "account",
        action: Some("update"),
        flags: account::UPDATE_FLAGS,
        run: account::update_account,
    },
    Command {
        group: "domain",
        action: Some("add"),
        flags: account::DOMAIN_ADD_FLAGS,
        run: account::domain_add,
    },
    Command {
        group: "user",
        action: Some("create"),
        flags: user::CREATE_FLAGS,
        run: user::create,
    },
    Command {
        group: "device",
        action: Some("create"),
        flags: device::CREATE_FLAGS,
        run: device::create,
    },
    Command {
        group: "device",
        action: Some("set-password"),
        flags: device::SET_PASSWORD_FLAGS,
        run: device::set_password,
    },
    Command {
        group: "device",
        action: Some("enable"),
        flags: device::TOGGLE_FLAGS,
        run: device::enable,
    },
    Command {
        group: "device",
        action: Some("disable"),
        flags: device::TOGGLE_FLAGS,
        run: device::disable,
    },
    Command {
        group: "number",
        action: Some("create"),
        flags: number::CREATE_FLAGS,
        run: number::create,
    },
    Command {
        group: "calendar",
        action: Some("create"),
        flags: calendar::CREATE_FLAGS,
        run: calendar::create,
    },
    Command {
        group: "carrier",
        action: Some("create"),
        flags: carrier::CREATE_FLAGS,
        run: carrier::create,
    },
    Command {
        group: "trunk",
        action: Some("create"),
        flags: trunk::CREATE_FLAGS,
        run: trunk::create,
    },
    Command {
        group: "media-node",
        action: Some("create"),
        flags: media_node::CREATE_FLAGS,
        run: media_node::create,
    },
    Command {
        group: "flow",
        action: Some("create"),
        flags: flow::CREATE_FLAGS,
        run: flow::create,
    },
    Command {
        group: "flow",
        action: Some("publish"),
        flags: flow::PUBLISH_FLAGS,
        run: flow::publish,
    },
    Command {
        group: "queue",
        action: Some("create"),
        flags: queue::CREATE_FLAGS,
        run: queue::create,
    },
    Command {
        group: "queue",
        action: Some("add-member"),
        flags: queue::ADD_MEMBER_FLAGS,
        run: queue::add_member,
    },
    Command {
        group: "credential",
        action: Some("create"),
        flags: credential::CREATE_FLAGS,
        run: credential::create,
    },
    Command {
        group: "credential",
        action: Some("revoke"),
        flags: credential::REVOKE_FLAGS,
        run: credential::revoke,
    },
    Command {
        group: "demo",
        action: None,
        flags: demo::FLAGS,
        run: demo::run,
    },
];

const USAGE: &str = "\
callplane-admin: provision callplane's configuration (Cloudflare D1) — see docs/provisioning.md

usage: callplane-admin [--local [--persist-to DIR] | --remote] [--print-sql] [--wrangler-config PATH] <group> <action> [options]

  account create    --name NAME --domain DOMAIN [--max-calls N=10] [--country CC=1] [--time-zone TZ=UTC]
                    [--allow-international] [--allow-premium] [--premium-prefixes +1900,+1976]
                    [--caller-id-number +E164] [--caller-id-name NAME] [--digest-algorithms SHA-256,MD5]
                    [--status active|suspended|disabled]
  account update    --account ID [same options as create except --domain; only those given change;
                    switches take =false; an empty --caller-id-number/--caller-id-name clears it]
  domain add        --account ID --domain DOMAIN
  user create       --account ID --extension EXT [--name NAME] [--email E] [--caller-id-number +E164]
  device create     --account ID (--user ID | --extension EXT) --username U --password P
                    [--realm R (one of the account's domains; default: its first)] [--disabled]
  device set-password --device ID --password P      (--password - reads it from stdin's first line)
  device enable|disable --device ID
  number create     --account ID --e164 +1555... --target flow:ID|user:ID|external:+E164
                    [--calendar ID] [--after-hours flow:ID|user:ID|external:+E164]
  calendar create   --account ID --name N --time-zone TZ --weekly JSON [--holidays JSON] [--overrides JSON]
  carrier create    --name N --address CIDR[,CIDR...] [--port P]
  trunk create      (--account ID | --wholesale) --name N --host H [--port 5060] [--transport udp|tcp|tls]
                    [--priority 10] [--format e164|e164_no_plus|national] [--prefix P]
                    [--caller-id-mode account|fixed|passthrough] [--caller-id-number +E164]
                    [--fr-timer-ms 3000] [--fr-inv-timer-ms 30000]
  media-node create --name N --host H [--port 5060] [--transport udp|tcp|tls] [--status active|draining|down]
  flow create       --account ID --name N --file PATH.json     (validates; stores version 1 and publishes it)
  flow publish      --flow ID --file PATH.json                 (validates; adds version N+1 and publishes it)
  queue create      --account ID --name NAME --strategy ring_all|longest_idle|round_robin|top_down|fewest_calls|least_talk_time|random
                    [--tiers JSON e.g. [{\"level\":2,\"afterSecs\":30}]] [--offer-timeout 20] [--wrapup 10] [--no-answer-penalty 30]
                    [--max-no-answer 3] [--max-wait 3600|none] [--max-size N|none] [--hold-music KEY]
                    [--announce-every SECS] [--overflow QUEUE_ID]
  queue add-member  --queue ID --user ID [--tier 1] [--position N (default: after the current members)]
  credential create --name N --role sip-edge|media-node|agent-app|operator [--account ID] [--token TOKEN]
  credential revoke --id ID
  demo              (loads the DEV ONLY demo dataset; idempotent)

Default target: --local (wrangler's default local state unless --persist-to).
Output: one JSON object on stdout. Errors: stderr, exit 2 (usage) or 1 (failure).
--print-sql: print the SQL (after a `-- callplane-admin result: {json}` line) instead of executing it;
read-only lookups a command needs still run.
";

/// Run one command line; the text to print on stdout.
fn run(argv: &[String]) -> Result<String> {
    let inv = args::split(argv)?;
    if inv.help {
        return Ok(USAGE.to_string());
    }
    let Some(group) = inv.words.first() else {
        return usage("no command given");
    };
    let candidates: Vec<&Command> = COMMANDS.iter().filter(|c| c.group == group).collect();
    if candidates.is_empty() {
        let groups: Vec<&str> = COMMANDS
            .iter()
            .map(|c| c.group)
            .fold(Vec::new(), |mut v, g| {
                if !v.contains(&g) {
                    v.push(g);
                }
                v
            });
        return usage(format!(
            "unknown command {group:?} (commands: {})",
            groups.join(", ")
        ));
    }
    let action = inv.words.get(1).map(String::as_str);
    let cmd = match candidates
        .iter()
        .find(|c| c.action == action || (c.action.is_none() && action.is_none()))
    {
        Some(c) => *c,
        None if candidates[0].action.is_none() => {
            return usage(format!(
                "unexpected argument {:?} after `{group}`",
                action.unwrap_or_default()
            ))
        }
        None => {
            let actions: Vec<&str> = candidates.iter().filter_map(|c| c.action).collect();
            return match action {
                Some(a) => usage(format!(
                    "unknown action {a:?} for `{group}` (actions: {})",
                    actions.join(", ")
                )),
                None => usage(format!("`{group}` needs an action: {}", actions.join(", "))),
            };
        }
    };
    let context = match cmd.action {
        Some(a) => format!("{group} {a}"),
        None => group.to_string(),
    };
    let mut spec: Vec<Flag> = cmd.flags.to_vec();
    spec.extend_from_slice(GLOBAL_FLAGS);
    let mut flags = inv.leading.clone();
    args::parse_flags(&inv.rest, &spec, &mut flags, &context)?;
    let global = flags.global()?;
    let print_sql = global.print_sql;
    let mut env = RealEnv::new(global);
    let plan = (cmd.run)(&flags, &mut env)?;
    if print_sql {
        return Ok(plan.printed_sql());
    }
    if let Some(c) = &plan.pre_check {
        let rows = env.query(&c.sql)?;
        (c.verdict)(&rows)?;
    }
    if !plan.statements.is_empty() {
        env.wrangler()?.execute(&plan.sql())?;
    }
    if let Some(c) = &plan.post_check {
        let rows = env.query(&c.sql)?;
        (c.verdict)(&rows)?;
    }
    Ok(sql::output_line(&plan.output) + "\n")
}

fn main() {
    let argv: std::result::Result<Vec<String>, _> = std::env::args_os()
        .skip(1)
        .map(|a| a.into_string())
        .collect();
    let result = match argv {
        Ok(argv) if argv.is_empty() => Err(CliError::Usage("no command given".into())),
        Ok(argv) => run(&argv),
        Err(bad) => Err(CliError::Usage(format!(
            "arguments must be valid UTF-8 (got {bad:?})"
        ))),
    };
    match result {
        Ok(text) => {
            let mut out = std::io::stdout().lock();
            if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
                eprintln!("callplane-admin: cannot write to stdout: {e}");
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("callplane-admin: error: {e}");
            if let CliError::Usage(_) = e {
                eprintln!("Run `callplane-admin help` for usage.");
            }
            std::process::exit(e.exit_code());
        }
    }
}

#[cfg(test)]
mod testutil {
    use crate::args::{parse_flags, Flag, Flags};

    /// Parse `args` with `spec` (panics on a parse error: tests of parsing use `parse_flags`).
    pub fn flags(spec: &[Flag], args: &[&str]) -> Flags {
        let mut f = Flags::default();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse_flags(&args, spec, &mut f, "test").unwrap_or_else(|e| panic!("{args:?}: {e}"));
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_designed_command_exists_and_is_documented() {
        for (g, a) in [
            ("account", Some("create")),
            ("account", Some("update")),
            ("domain", Some("add")),
            ("user", Some("create")),
            ("device", Some("create")),
            ("device", Some("set-password")),
            ("device", Some("enable")),
            ("device", Some("disable")),
            ("number", Some("create")),
            ("calendar", Some("create")),
            ("carrier", Some("create")),
            ("trunk", Some("create")),
            ("media-node", Some("create")),
            ("flow", Some("create")),
            ("flow", Some("publish")),
            ("queue", Some("create")),
            ("queue", Some("add-member")),
            ("credential", Some("create")),
            ("credential", Some("revoke")),
            ("demo", None),
        ] {
            assert!(
                COMMANDS.iter().any(|c| c.group == g && c.action == a),
                "{g} {a:?}"
            );
            assert!(USAGE.contains(g));
        }
        // Flag names are unique per command and never shadow a global option.
        for c in COMMANDS {
            for (i, f) in c.flags.iter().enumerate() {
                assert!(!GLOBAL_FLAGS.iter().any(|g| g.name == f.name), "{}", f.name);
                assert!(
                    !c.flags[i + 1..].iter().any(|o| o.name == f.name),
                    "{}",
                    f.name
                );
                assert!(
                    USAGE.contains(&format!("--{}", f.name)),
                    "--{} undocumented in usage",
                    f.name
                );
            }
        }
    }

    #[test]
    fn help_and_usage_errors() {
        assert!(run(&argv(&["help"]))
            .unwrap()
            .starts_with("callplane-admin:"));
        assert!(run(&argv(&["--help"])).unwrap().contains("usage:"));
        for bad in [
            vec!["nope"],
            vec!["account"],
            vec!["account", "delete"],
            vec!["demo", "now"],
            vec!["--local"],
            vec!["--local", "--remote", "demo"],
            vec!["--remote", "--persist-to", "/tmp/x", "demo"],
            vec![
                "account",
                "create",
                "--name",
                "A",
                "--domain",
                "a.example",
                "--bogus",
            ],
            vec![
                "account",
                "create",
                "--name",
                "A",
                "--domain",
                "a.example",
                "extra",
            ],
            vec![
                "carrier",
                "create",
                "--name",
                "C",
                "--address",
                "10.0.0.1/8",
            ],
        ] {
            let e = run(&argv(&bad)).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}: {}", e.message());
        }
    }

    #[test]
    fn print_sql_needs_no_database_for_lookup_free_commands() {
        let out = run(&argv(&[
            "--print-sql",
            "carrier",
            "create",
            "--name",
            "Demo Carrier",
            "--address",
            "127.0.0.1/32",
            "--port",
            "5080",
        ]))
        .unwrap();
        let mut lines = out.lines();
        let head = lines.next().unwrap();
        let json: serde_json::Value =
            serde_json::from_str(head.strip_prefix("-- callplane-admin result: ").unwrap())
                .unwrap();
        let id = json["id"].as_str().unwrap();
        assert!(callplane::typeid::is_valid(id, "car"));
        assert!(lines.next().unwrap().starts_with(&format!("INSERT INTO carriers (id, name, enabled, created_at) VALUES ('{id}', 'Demo Carrier', 1, ")));
        assert_eq!(lines.next().unwrap(), format!("INSERT INTO carrier_addresses (carrier_id, cidr, port) VALUES ('{id}', '127.0.0.1/32', 5080);"));
        assert_eq!(lines.next(), None);

        // Global options may also follow the command; ids are fresh each run.
        let a = run(&argv(&[
            "account",
            "create",
            "--name",
            "A",
            "--domain",
            "a.example",
            "--print-sql",
        ]))
        .unwrap();
        let b = run(&argv(&[
            "account",
            "create",
            "--name",
            "A",
            "--domain",
            "a.example",
            "--print-sql",
        ]))
        .unwrap();
        assert_ne!(a, b);
        assert!(a.contains(
            "INSERT INTO sip_domains (domain, account_id, created_at) VALUES ('a.example', 'acc_"
        ));

        // The token is printed exactly once (in the result line) and only its hash is in the SQL.
        let out = run(&argv(&[
            "--print-sql",
            "credential",
            "create",
            "--name",
            "edge",
            "--role",
            "sip-edge",
        ]))
        .unwrap();
        let head: serde_json::Value = serde_json::from_str(
            out.lines()
                .next()
                .unwrap()
                .strip_prefix("-- callplane-admin result: ")
                .unwrap(),
        )
        .unwrap();
        let tok = head["token"].as_str().unwrap();
        assert_eq!(out.matches(tok).count(), 1);
        assert!(out.contains(&token::sha256_hex(tok)));
    }

    #[test]
    fn demo_print_sql_is_stable() {
        let a = run(&argv(&["--print-sql", "demo"])).unwrap();
        let b = run(&argv(&["demo", "--print-sql", "--local"])).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a.lines()
                .filter(|l| l.starts_with("INSERT OR IGNORE INTO "))
                .count(),
            23
        );
    }
}
