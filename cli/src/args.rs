//! Hand-rolled command-line parsing (no clap: keeps CI builds small).
//!
//! Shape: `callplane-admin [global options] <group> [<action>] [options]`.
//! Options are `--name VALUE`, `--name=VALUE` or switches `--name` (also `--name=true|false`).
//! Global options may appear anywhere; each option may be given once.

use std::collections::BTreeMap;

use crate::error::{usage, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Takes a value.
    Value,
    /// Boolean switch.
    Switch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag {
    pub name: &'static str,
    pub kind: Kind,
}

pub const fn val(name: &'static str) -> Flag {
    Flag {
        name,
        kind: Kind::Value,
    }
}

pub const fn sw(name: &'static str) -> Flag {
    Flag {
        name,
        kind: Kind::Switch,
    }
}

/// Options valid for every command.
pub const GLOBAL_FLAGS: &[Flag] = &[
    sw("local"),
    sw("remote"),
    val("persist-to"),
    sw("print-sql"),
    val("wrangler-config"),
];

/// Where the SQL goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Local { persist_to: Option<String> },
    Remote,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    pub target: Target,
    pub print_sql: bool,
    pub wrangler_config: Option<String>,
}

/// Parsed options of one command (global options included).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    values: BTreeMap<&'static str, String>,
    switches: BTreeMap<&'static str, bool>,
}

impl Flags {
    /// The value of `--name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The value of a required `--name`.
    pub fn req(&self, name: &str) -> Result<&str> {
        match self.get(name) {
            Some(v) => Ok(v),
            None => usage(format!("missing required option --{name}")),
        }
    }

    /// `Some(true/false)` if the switch was given, `None` if not.
    pub fn switch(&self, name: &str) -> Option<bool> {
        self.switches.get(name).copied()
    }

    /// Switch given and true.
    pub fn on(&self, name: &str) -> bool {
        self.switch(name) == Some(true)
    }

    /// Whether `--name` was given at all (value or switch).
    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name) || self.switches.contains_key(name)
    }

    pub fn global(&self) -> Result<Global> {
        let local = self.on("local");
        let remote = self.on("remote");
        if local && remote {
            return usage("--local and --remote are mutually exclusive");
        }
        let persist_to = self.get("persist-to").map(str::to_string);
        if remote && persist_to.is_some() {
            return usage("--persist-to only applies to --local");
        }
        if let Some(p) = &persist_to {
            if p.is_empty() {
                return usage("--persist-to needs a directory");
            }
        }
        let target = if remote {
            Target::Remote
        } else {
            Target::Local { persist_to }
        };
        let wrangler_config = self.get("wrangler-config").map(str::to_string);
        if wrangler_config.as_deref() == Some("") {
            return usage("--wrangler-config needs a path");
        }
        Ok(Global {
            target,
            print_sql: self.on("print-sql"),
            wrangler_config,
        })
    }
}

/// The command line split into command words and options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// `account`, `device`, `demo`, … (empty: no command given)
    pub words: Vec<String>,
    /// Option arguments that follow the command words, not yet parsed.
    pub rest: Vec<String>,
    /// Global options that came before the command words.
    pub leading: Flags,
    pub help: bool,
}

fn parse_bool(name: &str, v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => usage(format!(
            "--{name} takes no value or one of true/false (got {v:?})"
        )),
    }
}

/// Parse options from `args` according to `spec` into `into`. Positional arguments are an error.
pub fn parse_flags(args: &[String], spec: &[Flag], into: &mut Flags, context: &str) -> Result<()> {
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        let Some(body) = arg.strip_prefix("--") else {
            return usage(format!("unexpected argument {arg:?} for `{context}`"));
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let Some(flag) = spec.iter().find(|f| f.name == name) else {
            return usage(format!("unknown option --{name} for `{context}`"));
        };
        if into.has(flag.name) {
            return usage(format!("option --{name} given more than once"));
        }
        match flag.kind {
            Kind::Switch => {
                let v = match inline {
                    Some(v) => parse_bool(name, &v)?,
                    None => true,
                };
                into.switches.insert(flag.name, v);
            }
            Kind::Value => {
                let v = match inline {
                    Some(v) => v,
                    None => match args.get(i) {
                        Some(next) if !next.starts_with("--") => {
                            i += 1;
                            next.clone()
                        }
                        Some(_) => {
                            return usage(format!(
                                "option --{name} needs a value (write --{name}=VALUE for a value starting with --)"
                            ))
                        }
                        None => return usage(format!("option --{name} needs a value")),
                    },
                };
                into.values.insert(flag.name, v);
            }
        }
    }
    Ok(())
}

/// Split the raw arguments (without the program name): leading global options, then command words
/// (arguments not starting with `-`, at most `max_words`), then the rest.
pub fn split(args: &[String]) -> Result<Invocation> {
    let help = args.iter().any(|a| a == "--help" || a == "-h")
        || args.first().map(String::as_str) == Some("help");
    let mut leading = Flags::default();
    let mut i = 0;
    // Leading global options.
    while i < args.len() && args[i].starts_with('-') {
        let arg = &args[i];
        if arg == "--help" || arg == "-h" {
            i += 1;
            continue;
        }
        let Some(body) = arg.strip_prefix("--") else {
            return usage(format!("unknown option {arg:?}"));
        };
        let name = body.split_once('=').map_or(body, |(n, _)| n);
        let Some(flag) = GLOBAL_FLAGS.iter().find(|f| f.name == name) else {
            return usage(format!("unknown global option --{name} (global options: --local, --persist-to DIR, --remote, --print-sql, --wrangler-config PATH)"));
        };
        let take = if flag.kind == Kind::Value && !body.contains('=') {
            2
        } else {
            1
        };
        let end = (i + take).min(args.len());
        parse_flags(&args[i..end], GLOBAL_FLAGS, &mut leading, "callplane-admin")?;
        i = end;
    }
    // Command words: group and action.
    let mut words = Vec::new();
    while i < args.len() && words.len() < 2 && !args[i].starts_with('-') {
        words.push(args[i].clone());
        i += 1;
    }
    let rest: Vec<String> = args[i..]
        .iter()
        .filter(|a| *a != "--help" && *a != "-h")
        .cloned()
        .collect();
    Ok(Invocation {
        words,
        rest,
        leading,
        help,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    const SPEC: &[Flag] = &[val("name"), val("max-calls"), sw("allow-premium")];

    fn spec_with_globals() -> Vec<Flag> {
        let mut v = SPEC.to_vec();
        v.extend_from_slice(GLOBAL_FLAGS);
        v
    }

    #[test]
    fn values_switches_and_equals_form() {
        let mut f = Flags::default();
        parse_flags(
            &s(&["--name", "Acme Corp", "--max-calls=5", "--allow-premium"]),
            SPEC,
            &mut f,
            "t",
        )
        .unwrap();
        assert_eq!(f.get("name"), Some("Acme Corp"));
        assert_eq!(f.get("max-calls"), Some("5"));
        assert_eq!(f.switch("allow-premium"), Some(true));
        assert!(f.on("allow-premium"));
        assert_eq!(f.get("nope"), None);
    }

    #[test]
    fn switch_with_explicit_boolean() {
        let mut f = Flags::default();
        parse_flags(&s(&["--allow-premium=false"]), SPEC, &mut f, "t").unwrap();
        assert_eq!(f.switch("allow-premium"), Some(false));
        assert!(!f.on("allow-premium"));
        let mut f = Flags::default();
        let e = parse_flags(&s(&["--allow-premium=maybe"]), SPEC, &mut f, "t").unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn value_may_start_with_single_dash_or_be_empty() {
        let mut f = Flags::default();
        parse_flags(&s(&["--name", "-x-", "--max-calls="]), SPEC, &mut f, "t").unwrap();
        assert_eq!(f.get("name"), Some("-x-"));
        assert_eq!(f.get("max-calls"), Some(""));
    }

    #[test]
    fn errors_are_usage_errors() {
        for bad in [
            vec!["--name"],
            vec!["--name", "--max-calls", "3"],
            vec!["--bogus", "1"],
            vec!["positional"],
            vec!["--name", "a", "--name", "b"],
            vec!["-n", "a"],
        ] {
            let mut f = Flags::default();
            let e = parse_flags(&s(&bad), SPEC, &mut f, "t").unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
        let mut f = Flags::default();
        let e = parse_flags(&s(&["--bogus"]), SPEC, &mut f, "account create").unwrap_err();
        assert_eq!(e.message(), "unknown option --bogus for `account create`");
        let mut f = Flags::default();
        let e = parse_flags(&s(&["--name"]), SPEC, &mut f, "t").unwrap_err();
        assert_eq!(e.message(), "option --name needs a value");
    }

    #[test]
    fn required_reports_the_flag() {
        let f = Flags::default();
        assert_eq!(
            f.req("name").unwrap_err().message(),
            "missing required option --name"
        );
    }

    #[test]
    fn split_leading_globals_words_and_rest() {
        let inv = split(&s(&[
            "--local",
            "--persist-to",
            "/tmp/x",
            "--print-sql",
            "account",
            "create",
            "--name",
            "A",
        ]))
        .unwrap();
        assert_eq!(inv.words, s(&["account", "create"]));
        assert_eq!(inv.rest, s(&["--name", "A"]));
        assert!(!inv.help);
        let g = inv.leading.global().unwrap();
        assert_eq!(
            g.target,
            Target::Local {
                persist_to: Some("/tmp/x".into())
            }
        );
        assert!(g.print_sql);

        let inv = split(&s(&["--persist-to=/d", "demo"])).unwrap();
        assert_eq!(inv.words, s(&["demo"]));
        assert!(inv.rest.is_empty());
        assert_eq!(inv.leading.get("persist-to"), Some("/d"));

        // `demo --remote`: words stop at the first option.
        let inv = split(&s(&["demo", "--remote"])).unwrap();
        assert_eq!(inv.words, s(&["demo"]));
        assert_eq!(inv.rest, s(&["--remote"]));
    }

    #[test]
    fn split_rejects_unknown_leading_option() {
        assert_eq!(
            split(&s(&["--name", "x", "account"]))
                .unwrap_err()
                .exit_code(),
            2
        );
        assert_eq!(split(&s(&["-x", "account"])).unwrap_err().exit_code(), 2);
        assert_eq!(split(&s(&["--persist-to"])).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn help_anywhere() {
        assert!(split(&s(&["help"])).unwrap().help);
        assert!(split(&s(&["account", "create", "--help"])).unwrap().help);
        assert!(split(&s(&["-h"])).unwrap().help);
        assert!(
            !split(&s(&["account", "create", "--name", "help"]))
                .unwrap()
                .help
        );
    }

    #[test]
    fn globals_after_the_command_merge() {
        let inv = split(&s(&["--local", "demo", "--print-sql"])).unwrap();
        let mut f = inv.leading.clone();
        parse_flags(&inv.rest, &spec_with_globals(), &mut f, "demo").unwrap();
        let g = f.global().unwrap();
        assert!(g.print_sql);
        assert_eq!(g.target, Target::Local { persist_to: None });
        // Given twice (before and after) is an error.
        let inv = split(&s(&["--local", "demo", "--local"])).unwrap();
        let mut f = inv.leading.clone();
        assert!(parse_flags(&inv.rest, &spec_with_globals(), &mut f, "demo").is_err());
    }

    #[test]
    fn global_conflicts() {
        let mut f = Flags::default();
        parse_flags(&s(&["--local", "--remote"]), GLOBAL_FLAGS, &mut f, "t").unwrap();
        assert_eq!(f.global().unwrap_err().exit_code(), 2);
        let mut f = Flags::default();
        parse_flags(
            &s(&["--remote", "--persist-to", "/x"]),
            GLOBAL_FLAGS,
            &mut f,
            "t",
        )
        .unwrap();
        assert_eq!(f.global().unwrap_err().exit_code(), 2);
        let mut f = Flags::default();
        parse_flags(&s(&["--remote"]), GLOBAL_FLAGS, &mut f, "t").unwrap();
        assert_eq!(f.global().unwrap().target, Target::Remote);
        // Default is local, default persistence.
        let f = Flags::default();
        assert_eq!(
            f.global().unwrap().target,
            Target::Local { persist_to: None }
        );
    }
}
