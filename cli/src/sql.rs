//! SQL text generation: literal escaping, INSERT/UPDATE builders and the `Plan` a command produces.
//!
//! Every value that reaches SQL goes through [`lit`] (text) or is an `i64` rendered by Rust: no
//! user input is ever spliced into SQL unescaped.

use serde_json::{Map, Value};

use crate::error::{failure, usage, Result};

/// One result row from D1 (`wrangler … --json`).
pub type Row = Map<String, Value>;

/// D1's documented maximum length of one SQL statement.
pub const MAX_STATEMENT_BYTES: usize = 100_000;

/// wrangler (workers-utils `trimSqlQuery`) deletes the text `BEGIN TRANSACTION;` and `COMMIT;`
/// anywhere in a file that contains `BEGIN TRANSACTION`, string literals included. We never let
/// that byte sequence appear in generated SQL: inside a literal it is split with `||`.
const WRANGLER_TRAP: &str = "BEGIN TRANSACTION";

/// A SQL string literal: single quotes doubled, NUL rejected.
pub fn lit(s: &str) -> Result<String> {
    if s.contains('\0') {
        return usage("values must not contain NUL characters");
    }
    let escaped = s.replace('\'', "''");
    let escaped = escaped.replace(WRANGLER_TRAP, "BEGIN TRANS' || 'ACTION");
    Ok(format!("'{escaped}'"))
}

/// A value in a generated statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V {
    Text(String),
    Int(i64),
    Null,
}

impl V {
    pub fn text(s: impl Into<String>) -> V {
        V::Text(s.into())
    }
    pub fn opt_text(s: Option<impl Into<String>>) -> V {
        s.map_or(V::Null, |s| V::Text(s.into()))
    }
    pub fn bool(b: bool) -> V {
        V::Int(b as i64)
    }
    pub fn render(&self) -> Result<String> {
        match self {
            V::Text(s) => lit(s),
            V::Int(i) => Ok(i.to_string()),
            V::Null => Ok("NULL".to_string()),
        }
    }
}

fn check_len(stmt: String) -> Result<String> {
    if stmt.len() > MAX_STATEMENT_BYTES {
        return failure(format!(
            "generated SQL statement is {} bytes, over D1's limit of {MAX_STATEMENT_BYTES} bytes (is an input file too large?)",
            stmt.len()
        ));
    }
    Ok(stmt)
}

/// `INSERT [OR IGNORE] INTO table (cols) VALUES (values)`.
pub fn insert(table: &str, or_ignore: bool, cols: &[(&str, V)]) -> Result<String> {
    let names: Vec<&str> = cols.iter().map(|(c, _)| *c).collect();
    let values = cols
        .iter()
        .map(|(_, v)| v.render())
        .collect::<Result<Vec<_>>>()?;
    check_len(format!(
        "INSERT {}INTO {table} ({}) VALUES ({})",
        if or_ignore { "OR IGNORE " } else { "" },
        names.join(", "),
        values.join(", ")
    ))
}

/// `UPDATE table SET a = x, … WHERE key = value [AND extra]`.
pub fn update(
    table: &str,
    sets: &[(&str, V)],
    key: &str,
    key_value: &str,
    extra_where: Option<&str>,
) -> Result<String> {
    if sets.is_empty() {
        return usage("nothing to update");
    }
    let sets = sets
        .iter()
        .map(|(c, v)| Ok(format!("{c} = {}", v.render()?)))
        .collect::<Result<Vec<_>>>()?;
    let mut stmt = format!(
        "UPDATE {table} SET {} WHERE {key} = {}",
        sets.join(", "),
        lit(key_value)?
    );
    if let Some(extra) = extra_where {
        stmt.push_str(" AND ");
        stmt.push_str(extra);
    }
    check_len(stmt)
}

/// A read-only query and a verdict on its rows, run around the execution when the plan is
/// executed (not with `--print-sql`); e.g. that `demo`'s `INSERT OR IGNORE`s will not / did not
/// silently skip rows because of conflicting data.
pub struct Check {
    pub sql: String,
    pub verdict: fn(&[Row]) -> Result<()>,
}

/// What a command will do: the statements to execute (atomically, as one file) and the JSON
/// object printed on success.
pub struct Plan {
    pub statements: Vec<String>,
    pub output: Value,
    pub pre_check: Option<Check>,
    pub post_check: Option<Check>,
}

impl Plan {
    pub fn new(statements: Vec<String>, output: Value) -> Plan {
        Plan {
            statements,
            output,
            pre_check: None,
            post_check: None,
        }
    }

    /// The SQL file: one statement per line, each terminated by `;`.
    pub fn sql(&self) -> String {
        let mut s = String::new();
        for stmt in &self.statements {
            s.push_str(stmt);
            s.push_str(";\n");
        }
        s
    }

    /// `--print-sql` output: a comment line with the JSON result, then the SQL.
    /// The JSON is one line (control characters are escaped by the serializer), so the comment
    /// cannot end early; the wrangler trap sequence is escaped as a JSON `\u0020`.
    pub fn printed_sql(&self) -> String {
        let json = output_line(&self.output).replace(WRANGLER_TRAP, "BEGIN\\u0020TRANSACTION");
        let mut s = format!("-- callplane-admin result: {json}\n");
        if self.statements.is_empty() {
            s.push_str("-- (nothing to execute)\n");
        }
        s.push_str(&self.sql());
        s
    }
}

/// The one-line JSON printed on stdout.
pub fn output_line(v: &Value) -> String {
    serde_json::to_string(v).expect("serializing a serde_json::Value cannot fail")
}

/// Read a column of a lookup row as text (NULL → None).
pub fn col_str(row: &Row, col: &str) -> Option<String> {
    match row.get(col) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// Read a column of a lookup row as an integer (NULL or missing → None).
pub fn col_i64(row: &Row, col: &str) -> Option<i64> {
    match row.get(col) {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn literal_escaping() {
        assert_eq!(lit("abc").unwrap(), "'abc'");
        assert_eq!(lit("").unwrap(), "''");
        assert_eq!(lit("O'Brien").unwrap(), "'O''Brien'");
        assert_eq!(lit("''").unwrap(), "''''''");
        assert_eq!(
            lit("x'); DROP TABLE accounts; --").unwrap(),
            "'x''); DROP TABLE accounts; --'"
        );
        // Backslashes, double quotes, newlines are literal in SQLite strings.
        assert_eq!(lit("a\\b\"c\nd").unwrap(), "'a\\b\"c\nd'");
        assert_eq!(lit("é ☎").unwrap(), "'é ☎'");
    }

    #[test]
    fn literal_rejects_nul() {
        let e = lit("a\0b").unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn literal_never_contains_wrangler_trap() {
        let l = lit("x BEGIN TRANSACTION; COMMIT; y").unwrap();
        assert!(!l.contains("BEGIN TRANSACTION"), "{l}");
        assert_eq!(l, "'x BEGIN TRANS' || 'ACTION; COMMIT; y'");
        let l = lit("BEGIN TRANSACTIONBEGIN TRANSACTION'").unwrap();
        assert!(!l.contains("BEGIN TRANSACTION"), "{l}");
        assert_eq!(l, "'BEGIN TRANS' || 'ACTIONBEGIN TRANS' || 'ACTION'''");
    }

    #[test]
    fn insert_and_update_text() {
        let s = insert(
            "users",
            false,
            &[
                ("id", V::text("usr_1")),
                ("name", V::text("O'Hara")),
                ("email", V::Null),
                ("n", V::Int(-3)),
                ("b", V::bool(true)),
            ],
        )
        .unwrap();
        assert_eq!(
            s,
            "INSERT INTO users (id, name, email, n, b) VALUES ('usr_1', 'O''Hara', NULL, -3, 1)"
        );
        let s = insert("t", true, &[("a", V::opt_text(None::<String>))]).unwrap();
        assert_eq!(s, "INSERT OR IGNORE INTO t (a) VALUES (NULL)");
        let s = update(
            "devices",
            &[("enabled", V::Int(0))],
            "id",
            "dev_'x",
            Some("revoked_at IS NULL"),
        )
        .unwrap();
        assert_eq!(
            s,
            "UPDATE devices SET enabled = 0 WHERE id = 'dev_''x' AND revoked_at IS NULL"
        );
        assert!(update("t", &[], "id", "x", None).is_err());
    }

    #[test]
    fn statement_length_is_bounded() {
        let big = "x".repeat(MAX_STATEMENT_BYTES);
        let e = insert("t", false, &[("a", V::text(big))]).unwrap_err();
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn plan_rendering() {
        let p = Plan::new(
            vec![
                "INSERT INTO a (x) VALUES (1)".into(),
                "DELETE FROM b".into(),
            ],
            json!({"id": "acc_1", "name": "BEGIN TRANSACTION\nx"}),
        );
        assert_eq!(p.sql(), "INSERT INTO a (x) VALUES (1);\nDELETE FROM b;\n");
        let printed = p.printed_sql();
        let first = printed.lines().next().unwrap();
        assert!(first.starts_with("-- callplane-admin result: {"));
        assert!(!printed.contains("BEGIN TRANSACTION"));
        let json: Value =
            serde_json::from_str(first.trim_start_matches("-- callplane-admin result: ")).unwrap();
        assert_eq!(json["name"], "BEGIN TRANSACTION\nx");
        assert_eq!(printed.lines().count(), 3);
    }

    #[test]
    fn columns() {
        let row: Row =
            serde_json::from_value(json!({"a": "x", "b": 3, "c": null, "d": "7"})).unwrap();
        assert_eq!(col_str(&row, "a").as_deref(), Some("x"));
        assert_eq!(col_str(&row, "b").as_deref(), Some("3"));
        assert_eq!(col_str(&row, "c"), None);
        assert_eq!(col_i64(&row, "b"), Some(3));
        assert_eq!(col_i64(&row, "d"), Some(7));
        assert_eq!(col_i64(&row, "zz"), None);
    }
}
