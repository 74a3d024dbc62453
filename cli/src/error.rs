//! The CLI's one error type: usage errors (exit 2) and failures (exit 1).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    /// Bad command line: unknown command or flag, missing or malformed value. Exit code 2.
    Usage(String),
    /// Valid command that could not be carried out: missing rows, conflicts, wrangler errors. Exit code 1.
    Failure(String),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Failure(_) => 1,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            CliError::Usage(m) | CliError::Failure(m) => m,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// Shorthand constructors.
pub fn usage<T>(msg: impl Into<String>) -> Result<T> {
    Err(CliError::Usage(msg.into()))
}

pub fn failure<T>(msg: impl Into<String>) -> Result<T> {
    Err(CliError::Failure(msg.into()))
}

pub type Result<T> = std::result::Result<T, CliError>;
