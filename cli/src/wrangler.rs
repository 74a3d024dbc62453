//! Running `wrangler d1 execute callplane …` and reading its `--json` output.
//!
//! wrangler is `node_modules/.bin/wrangler` found by walking up from the directory that holds
//! `wrangler.toml` (the repo root, found by walking up from the current directory, then from this
//! executable; `--wrangler-config PATH` names the file). It runs with the caller's environment
//! (PATH must already put Node >= 22 first: `source scripts/env.sh`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::args::{Global, Target};
use crate::error::{failure, usage, CliError, Result};
use crate::sql::Row;

/// The D1 database name (wrangler.toml `database_name`).
pub const DATABASE: &str = "callplane";

/// Upper bound for one wrangler run (remote imports poll the API; local runs take seconds).
const TIMEOUT: Duration = Duration::from_secs(600);

pub struct Wrangler {
    bin: PathBuf,
    root: PathBuf,
    config: PathBuf,
    target: Target,
}

fn find_upwards(start: &Path, rel: &str) -> Option<PathBuf> {
    let mut dir = Some(start);
    while let Some(d) = dir {
        let candidate = d.join(rel);
        if candidate.is_file() {
            return Some(candidate);
        }
        dir = d.parent();
    }
    None
}

fn absolute(p: &str) -> Result<PathBuf> {
    std::path::absolute(p).map_err(|e| CliError::Failure(format!("bad path {p:?}: {e}")))
}

impl Wrangler {
    pub fn locate(global: &Global) -> Result<Wrangler> {
        let config = match &global.wrangler_config {
            Some(p) => {
                let p = absolute(p)?;
                if !p.is_file() {
                    return usage(format!("--wrangler-config: {} is not a file", p.display()));
                }
                p
            }
            None => {
                let cwd = std::env::current_dir().map_err(|e| {
                    CliError::Failure(format!("cannot read the current directory: {e}"))
                })?;
                let from_exe = std::env::current_exe()
                    .ok()
                    .and_then(|e| e.parent().map(Path::to_path_buf));
                match find_upwards(&cwd, "wrangler.toml").or_else(|| from_exe.and_then(|d| find_upwards(&d, "wrangler.toml"))) {
                    Some(p) => p,
                    None => {
                        return failure(
                            "cannot find wrangler.toml in the current directory or its parents; run inside the callplane checkout or pass --wrangler-config PATH",
                        )
                    }
                }
            }
        };
        let root = config.parent().expect("a file has a parent").to_path_buf();
        // The checkout's wrangler: above the config, else above the current directory or this executable.
        let cwd = std::env::current_dir().ok();
        let exe_dir = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf));
        let bin = [Some(root.clone()), cwd, exe_dir]
            .into_iter()
            .flatten()
            .find_map(|d| find_upwards(&d, "node_modules/.bin/wrangler"));
        let Some(bin) = bin else {
            return failure(format!(
                "wrangler not found in node_modules/.bin above {} (or the current directory); install it first (npm ci, or scripts/bootstrap.sh)",
                root.display()
            ));
        };
        let target = match &global.target {
            Target::Local {
                persist_to: Some(dir),
            } => Target::Local {
                persist_to: Some(absolute(dir)?.to_string_lossy().into_owned()),
            },
            t => t.clone(),
        };
        Ok(Wrangler {
            bin,
            root,
            config,
            target,
        })
    }

    fn base_args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec!["d1".into(), "execute".into(), DATABASE.into()];
        match &self.target {
            Target::Local { persist_to } => {
                args.push("--local".into());
                if let Some(dir) = persist_to {
                    args.push("--persist-to".into());
                    args.push(dir.clone());
                }
            }
            Target::Remote => args.push("--remote".into()),
        }
        args.push("--config".into());
        args.push(self.config.to_string_lossy().into_owned());
        args.push("--json".into());
        args
    }

    /// A read-only `SELECT` through `--command`; the rows of the last result set.
    pub fn query(&self, sql: &str) -> Result<Vec<Row>> {
        let mut args = self.base_args();
        args.push("--command".into());
        args.push(sql.into());
        let out = self.run(&args)?;
        let last = out
            .as_array()
            .and_then(|a| a.last())
            .cloned()
            .unwrap_or(Value::Null);
        match last.get("results") {
            Some(Value::Array(rows)) => rows
                .iter()
                .map(|r| match r {
                    Value::Object(m) => Ok(m.clone()),
                    other => failure(format!("unexpected row from wrangler: {other}")),
                })
                .collect(),
            _ => failure(format!(
                "unexpected output from wrangler for a query: {out}"
            )),
        }
    }

    /// Execute a SQL file (all statements in one batch: D1 applies it atomically).
    pub fn execute(&self, sql: &str) -> Result<Value> {
        let tmp = TempSql::create(sql)?;
        let mut args = self.base_args();
        args.push("--file".into());
        args.push(tmp.path.to_string_lossy().into_owned());
        self.run(&args)
    }

    fn run(&self, args: &[String]) -> Result<Value> {
        let mut child = Command::new(&self.bin)
            .args(args)
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| CliError::Failure(format!("cannot run {}: {e}", self.bin.display())))?;
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let out_reader = std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = stdout.read_to_end(&mut s);
            s
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = stderr.read_to_end(&mut s);
            s
        });
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return failure(format!(
                        "wrangler did not finish within {} s; killed it",
                        TIMEOUT.as_secs()
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => return failure(format!("waiting for wrangler failed: {e}")),
            }
        };
        let stdout = String::from_utf8_lossy(&out_reader.join().unwrap_or_default()).into_owned();
        let stderr = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
        interpret(status.success(), status.code(), &stdout, &stderr)
    }
}

/// Make sense of one wrangler run: the JSON it printed, or the best error message.
pub fn interpret(success: bool, code: Option<i32>, stdout: &str, stderr: &str) -> Result<Value> {
    let json = parse_json_output(stdout);
    if let Some(text) = json.as_ref().and_then(|v| v.get("error")).map(error_text) {
        return failure(explain_d1_error(&text));
    }
    if !success {
        let detail = [strip_ansi(stderr).trim(), strip_ansi(stdout).trim()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        let code = code.map_or("a signal".to_string(), |c| format!("code {c}"));
        return failure(format!(
            "wrangler failed (exit {code}): {}",
            if detail.is_empty() {
                "no output"
            } else {
                &detail
            }
        ));
    }
    match json {
        Some(v)
            if v.as_array().is_some_and(|a| {
                a.iter()
                    .all(|r| r.get("success") != Some(&Value::Bool(false)))
            }) =>
        {
            Ok(v)
        }
        Some(v) => failure(format!("wrangler reported a failure: {v}")),
        None => failure(format!(
            "could not parse wrangler's --json output: {}",
            strip_ansi(stdout).trim()
        )),
    }
}

fn error_text(e: &Value) -> String {
    match e.get("text").and_then(Value::as_str) {
        Some(t) => {
            let notes: Vec<&str> = e
                .get("notes")
                .and_then(Value::as_array)
                .map(|ns| {
                    ns.iter()
                        .filter_map(|n| n.get("text").and_then(Value::as_str))
                        .collect()
                })
                .unwrap_or_default();
            if notes.is_empty() {
                t.to_string()
            } else {
                format!("{t} ({})", notes.join("; "))
            }
        }
        None => e.to_string(),
    }
}

/// wrangler prints a blank line (and sometimes warnings) before the JSON document.
fn parse_json_output(stdout: &str) -> Option<Value> {
    let trimmed = stdout.trim();
    if let Ok(v) = serde_json::from_str(trimmed) {
        return Some(v);
    }
    let start = stdout.lines().scan(0usize, |off, line| {
        let here = *off;
        *off += line.len() + 1;
        Some((here, line))
    });
    for (off, line) in start {
        if line.starts_with('[') || line.starts_with('{') {
            if let Ok(v) = serde_json::from_str(stdout[off..].trim()) {
                return Some(v);
            }
        }
    }
    None
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Operator-friendly wording for the constraint errors a provisioning command can hit
/// (the raw D1 text is kept).
pub fn explain_d1_error(raw: &str) -> String {
    const KNOWN: &[(&str, &str)] = &[
        (
            "UNIQUE constraint failed: sip_domains.domain",
            "that domain already belongs to an account",
        ),
        (
            "UNIQUE constraint failed: phone_numbers.e164",
            "that number is already provisioned",
        ),
        (
            "UNIQUE constraint failed: users.account_id, users.extension",
            "that extension already exists in the account",
        ),
        (
            "UNIQUE constraint failed: devices.username, devices.realm",
            "a device with that username already exists in the realm",
        ),
        (
            "UNIQUE constraint failed: credentials.id",
            "a credential with that id already exists",
        ),
        (
            "UNIQUE constraint failed: carrier_addresses",
            "duplicate carrier address",
        ),
        (
            "FOREIGN KEY constraint failed",
            "a referenced row does not exist (deleted meanwhile?)",
        ),
        (
            "CHECK constraint failed",
            "a value was rejected by the schema",
        ),
    ];
    for (needle, meaning) in KNOWN {
        if raw.contains(needle) {
            return format!("{meaning} (D1: {raw})");
        }
    }
    format!("wrangler d1 execute failed: {raw}")
}

/// A private temporary SQL file, removed on drop (it may hold HA1 hashes).
struct TempSql {
    path: PathBuf,
}

impl TempSql {
    fn create(sql: &str) -> Result<TempSql> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = std::env::temp_dir();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        for attempt in 0..100u32 {
            let path = dir.join(format!(
                "callplane-admin-{}-{nanos}-{attempt}.sql",
                std::process::id()
            ));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(mut f) => {
                    let guard = TempSql { path };
                    f.write_all(sql.as_bytes())
                        .and_then(|_| f.sync_all())
                        .map_err(|e| {
                            CliError::Failure(format!("cannot write {}: {e}", guard.path.display()))
                        })?;
                    return Ok(guard);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return failure(format!(
                        "cannot create a temporary file in {}: {e}",
                        dir.display()
                    ))
                }
            }
        }
        failure(format!(
            "cannot create a temporary file in {}",
            dir.display()
        ))
    }
}

impl Drop for TempSql {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_success_output() {
        let out = "\n[\n  {\n    \"results\": [{\"n\": 1}],\n    \"success\": true,\n    \"meta\": {\"duration\": 0}\n  }\n]\n";
        let v = interpret(true, Some(0), out, "").unwrap();
        assert_eq!(v[0]["results"][0]["n"], 1);
        // Leading noise lines before the JSON.
        let v = interpret(true, Some(0), &format!("▲ [WARNING] something\n{out}"), "").unwrap();
        assert_eq!(v[0]["success"], true);
    }

    #[test]
    fn surfaces_d1_errors() {
        let out = "\n{\n  \"error\": {\n    \"text\": \"UNIQUE constraint failed: sip_domains.domain: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_PRIMARYKEY)\"\n  }\n}\n";
        let e = interpret(false, Some(1), out, "").unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert!(e.message().starts_with("that domain already belongs to an account (D1: UNIQUE constraint failed: sip_domains.domain"), "{}", e.message());
        let e = interpret(
            false,
            Some(1),
            "{\"error\":{\"text\":\"no such table: x\"}}",
            "",
        )
        .unwrap_err();
        assert_eq!(e.message(), "wrangler d1 execute failed: no such table: x");
    }

    #[test]
    fn surfaces_stderr_when_no_json() {
        let e = interpret(
            false,
            Some(1),
            "",
            "\u{1b}[31m✘ [ERROR]\u{1b}[0m You are not logged in.\n",
        )
        .unwrap_err();
        assert_eq!(
            e.message(),
            "wrangler failed (exit code 1): ✘ [ERROR] You are not logged in."
        );
        let e = interpret(true, Some(0), "garbage", "").unwrap_err();
        assert!(e.message().contains("could not parse"));
        let e = interpret(true, Some(0), "[{\"success\": false}]", "").unwrap_err();
        assert!(e.message().contains("reported a failure"));
    }

    #[test]
    fn temp_file_is_private_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let t = TempSql::create("SELECT 1;\n").unwrap();
        let p = t.path.clone();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "SELECT 1;\n");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        drop(t);
        assert!(!p.exists());
    }

    #[test]
    fn finds_files_upwards() {
        let base =
            std::env::temp_dir().join(format!("callplane-admin-test-{}", std::process::id()));
        let deep = base.join("a/b/c");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(base.join("wrangler.toml"), "name = \"x\"\n").unwrap();
        assert_eq!(
            find_upwards(&deep, "wrangler.toml"),
            Some(base.join("wrangler.toml"))
        );
        assert_eq!(find_upwards(&deep, "no-such-file-here.toml"), None);
        std::fs::remove_dir_all(&base).unwrap();
    }
}
