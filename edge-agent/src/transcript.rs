//! Reader for the byte-exact ESL transcripts in `../shared/fixtures/esl/` (see its
//! README): marker lines `>>>> C->S [label] <n> bytes t=<s>` / `<<<< S->C ...`, each
//! followed by exactly n payload bytes and one separator `\n`. Payloads are read by
//! byte count, never by line scanning (some bodies do not end in `\n`). Used by the
//! tests' fake ESL server and by the parsing bench.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    C2S,
    S2C,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub dir: Dir,
    /// Connection label (`conn1`, `inbound-8021`, ...); `None` on single-connection
    /// transcripts (and for the unlabelled first connection of 20).
    pub label: Option<String>,
    pub bytes: Vec<u8>,
    pub t: f64,
}

#[derive(Debug, Clone)]
pub struct Transcript {
    pub name: String,
    pub blocks: Vec<Block>,
}

impl Transcript {
    pub fn parse(name: &str, data: &[u8]) -> Result<Transcript, String> {
        let mut blocks = Vec::new();
        let mut i = 0;
        while i < data.len() {
            let eol = data[i..].iter().position(|&c| c == b'\n').map(|p| i + p).unwrap_or(data.len());
            let line = std::str::from_utf8(&data[i..eol]).map_err(|_| format!("{name}: non-UTF-8 marker line at byte {i}"))?;
            let dir = if line.starts_with(">>>> C->S") {
                Some(Dir::C2S)
            } else if line.starts_with("<<<< S->C") {
                Some(Dir::S2C)
            } else {
                None
            };
            let Some(dir) = dir else {
                i = eol + 1;
                continue;
            };
            let rest = line[9..].trim();
            let (label, rest) = if let Some(r) = rest.strip_prefix('[') {
                let end = r.find(']').ok_or_else(|| format!("{name}: bad label in {line:?}"))?;
                (Some(r[..end].to_string()), r[end + 1..].trim())
            } else {
                (None, rest)
            };
            let mut parts = rest.split_whitespace();
            let n: usize = parts
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("{name}: bad byte count in {line:?}"))?;
            if parts.next() != Some("bytes") {
                return Err(format!("{name}: bad marker {line:?}"));
            }
            let t = parts.next().and_then(|s| s.strip_prefix("t=")).and_then(|s| s.parse().ok()).unwrap_or(0.0);
            let start = eol + 1;
            let end = start + n;
            if data.get(end) != Some(&b'\n') {
                return Err(format!("{name}: payload of {line:?} is not followed by the separator newline"));
            }
            blocks.push(Block { dir, label, bytes: data[start..end].to_vec(), t });
            i = end + 1;
        }
        Ok(Transcript { name: name.to_string(), blocks })
    }

    pub fn load(path: &Path) -> Result<Transcript, String> {
        let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("?").to_string();
        Transcript::parse(&name, &data)
    }

    /// Connection labels in order of first appearance (`None` = unlabelled).
    pub fn labels(&self) -> Vec<Option<String>> {
        let mut v: Vec<Option<String>> = Vec::new();
        for b in &self.blocks {
            if !v.contains(&b.label) {
                v.push(b.label.clone());
            }
        }
        v
    }

    /// Blocks of one connection.
    pub fn connection(&self, label: Option<&str>) -> Vec<&Block> {
        self.blocks.iter().filter(|b| b.label.as_deref() == label).collect()
    }

    /// Concatenated bytes of one connection and direction.
    pub fn stream(&self, label: Option<&str>, dir: Dir) -> Vec<u8> {
        self.connection(label).into_iter().filter(|b| b.dir == dir).flat_map(|b| b.bytes.iter().copied()).collect()
    }

    /// The `raw/` file name stem of a connection: `NN-name[.label]`.
    pub fn raw_stem(&self, label: Option<&str>) -> String {
        let base = self.name.trim_end_matches(".txt");
        match label {
            Some(l) => format!("{base}.{l}"),
            None => base.to_string(),
        }
    }
}

/// `../shared/fixtures/esl` seen from the repository root, resolved from this crate's
/// manifest directory (`ESL_FIXTURES` overrides).
pub fn fixtures_dir() -> PathBuf {
    if let Ok(p) = std::env::var("ESL_FIXTURES") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..").join("shared").join("fixtures").join("esl")
}

/// All `NN-*.txt` transcripts, sorted by name.
pub fn all_transcript_paths(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.ends_with(".txt") && n.as_bytes().first().is_some_and(u8::is_ascii_digit)
        })
        .collect();
    v.sort();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_payloads_by_count_even_without_trailing_newline() {
        let data = b"# comment\n#----\n<<<< S->C 28 bytes t=0.000\nContent-Type: auth/request\n\n\n>>>> C->S [c1] 6 bytes t=0.5\nexit\n\n\n<<<< S->C [c1] 5 bytes t=1\nfalse\n#### note: x\n";
        let t = Transcript::parse("x.txt", data).unwrap();
        assert_eq!(t.blocks.len(), 3);
        assert_eq!(t.blocks[0].bytes, b"Content-Type: auth/request\n\n");
        assert_eq!(t.blocks[1].label.as_deref(), Some("c1"));
        assert_eq!(t.blocks[1].dir, Dir::C2S);
        assert_eq!(t.blocks[2].bytes, b"false");
        assert_eq!(t.blocks[1].t, 0.5);
        assert_eq!(t.labels(), vec![None, Some("c1".to_string())]);
        assert_eq!(t.raw_stem(Some("c1")), "x.c1");
    }

    #[test]
    fn missing_separator_is_an_error() {
        assert!(Transcript::parse("x", b"<<<< S->C 4 bytes t=0\nabcdX").is_err());
        assert!(Transcript::parse("x", b"<<<< S->C 40 bytes t=0\nabcd\n").is_err());
    }
}
