//! What a command needs from the outside world: the clock, randomness, read-only lookups in D1
//! and input files. `RealEnv` is the process's; tests use a deterministic one.

use std::io::{BufRead, Read};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::args::Global;
use crate::error::{failure, CliError, Result};
use crate::sql::Row;
use crate::wrangler::Wrangler;

pub trait Env {
    /// Unix epoch milliseconds.
    fn now_ms(&mut self) -> u64;
    /// Fill `buf` with cryptographically secure random bytes.
    fn fill_random(&mut self, buf: &mut [u8]) -> Result<()>;
    /// Run one read-only `SELECT` against the target database.
    fn query(&mut self, sql: &str) -> Result<Vec<Row>>;
    /// Read an input file (flow definitions).
    fn read_file(&mut self, path: &str) -> Result<String>;
    /// Read one line from standard input, without its line ending (`--password -`).
    fn read_stdin_line(&mut self) -> Result<String>;
}

/// Strip one trailing "\n" or "\r\n".
pub fn chomp(mut s: String) -> String {
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
    s
}

/// A fresh TypeID for `prefix` at `now_ms`.
pub fn new_id(env: &mut dyn Env, prefix: &str, now_ms: u64) -> Result<String> {
    let mut random = [0u8; 10];
    env.fill_random(&mut random)?;
    Ok(callplane::typeid::new(prefix, now_ms, random))
}

/// Run a lookup that returns exactly one row (`SELECT (…) AS a, (…) AS b`).
pub fn lookup_one(env: &mut dyn Env, sql: &str) -> Result<Row> {
    let mut rows = env.query(sql)?;
    if rows.len() != 1 {
        return failure(format!(
            "unexpected lookup result ({} rows) for: {sql}",
            rows.len()
        ));
    }
    Ok(rows.remove(0))
}

/// The real environment: system clock, /dev/urandom, wrangler (located on first use).
pub struct RealEnv {
    global: Global,
    wrangler: Option<Wrangler>,
}

impl RealEnv {
    pub fn new(global: Global) -> RealEnv {
        RealEnv {
            global,
            wrangler: None,
        }
    }

    pub fn wrangler(&mut self) -> Result<&Wrangler> {
        if self.wrangler.is_none() {
            self.wrangler = Some(Wrangler::locate(&self.global)?);
        }
        Ok(self.wrangler.as_ref().expect("just set"))
    }
}

impl Env for RealEnv {
    fn now_ms(&mut self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    fn fill_random(&mut self, buf: &mut [u8]) -> Result<()> {
        let mut f = std::fs::File::open("/dev/urandom")
            .map_err(|e| CliError::Failure(format!("cannot open /dev/urandom: {e}")))?;
        f.read_exact(buf)
            .map_err(|e| CliError::Failure(format!("cannot read /dev/urandom: {e}")))
    }

    fn query(&mut self, sql: &str) -> Result<Vec<Row>> {
        self.wrangler()?.query(sql)
    }

    fn read_file(&mut self, path: &str) -> Result<String> {
        std::fs::read_to_string(path)
            .map_err(|e| CliError::Failure(format!("cannot read {path}: {e}")))
    }

    fn read_stdin_line(&mut self) -> Result<String> {
        let mut line = String::new();
        let n = std::io::stdin()
            .lock()
            .take(4096)
            .read_line(&mut line)
            .map_err(|e| CliError::Failure(format!("cannot read standard input: {e}")))?;
        if n == 0 {
            return failure("standard input is empty (expected the value on one line)");
        }
        Ok(chomp(line))
    }
}

#[cfg(test)]
pub mod testing {
    //! A deterministic environment for unit tests: fixed clock, counting "random" bytes,
    //! lookups answered by a closure (and recorded), files from a map.

    use super::*;
    use std::collections::BTreeMap;

    pub type Answer = Box<dyn FnMut(&str) -> Vec<Row>>;

    pub struct TestEnv {
        pub now: u64,
        pub counter: u8,
        pub queries: Vec<String>,
        pub answer: Answer,
        pub files: BTreeMap<String, String>,
        pub stdin: Option<String>,
    }

    impl TestEnv {
        /// No lookups expected: any query panics.
        pub fn new() -> TestEnv {
            TestEnv::with(|sql| panic!("unexpected query: {sql}"))
        }

        pub fn with(answer: impl FnMut(&str) -> Vec<Row> + 'static) -> TestEnv {
            TestEnv {
                now: 1_767_225_600_000,
                counter: 0,
                queries: Vec::new(),
                answer: Box::new(answer),
                files: BTreeMap::new(),
                stdin: None,
            }
        }

        /// Lookups answered with this one row.
        pub fn row(v: serde_json::Value) -> TestEnv {
            let row: Row = serde_json::from_value(v).expect("object");
            TestEnv::with(move |_| vec![row.clone()])
        }
    }

    impl Env for TestEnv {
        fn now_ms(&mut self) -> u64 {
            self.now
        }
        fn fill_random(&mut self, buf: &mut [u8]) -> Result<()> {
            for b in buf.iter_mut() {
                self.counter = self.counter.wrapping_add(1);
                *b = self.counter;
            }
            Ok(())
        }
        fn query(&mut self, sql: &str) -> Result<Vec<Row>> {
            self.queries.push(sql.to_string());
            Ok((self.answer)(sql))
        }
        fn read_file(&mut self, path: &str) -> Result<String> {
            match self.files.get(path) {
                Some(s) => Ok(s.clone()),
                None => failure(format!(
                    "cannot read {path}: No such file or directory (os error 2)"
                )),
            }
        }
        fn read_stdin_line(&mut self) -> Result<String> {
            match self.stdin.take() {
                Some(s) => Ok(chomp(
                    s.lines()
                        .next()
                        .map(|l| format!("{l}\n"))
                        .unwrap_or_default(),
                )),
                None => failure("standard input is empty (expected the value on one line)"),
            }
        }
    }
}
