//! Incremental, sans-IO ESL framer: feed it byte chunks of any size, pull messages.
//!
//! Framing (mod_event_socket): a header block of `Name: value` lines ending at the
//! first `\n\n`; if it has `Content-Length: N`, exactly N body bytes follow (the body
//! may or may not end in `\n`). Header order is not relied upon (replies put
//! `Content-Type` first, events put `Content-Length` first, the outbound `connect`
//! reply puts it after ~100 channel headers). Sizes are capped: a peer can never make
//! the parser buffer more than `max_header_block + max_body` bytes.

use super::message::{Headers, Message};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest header block (up to and including the blank line).
    pub max_header_block: usize,
    /// Largest `Content-Length`.
    pub max_body: usize,
    /// Most header lines in one block.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // The biggest header block in the transcripts is the outbound `connect`
        // reply (~10 KiB of channel data); SIP-heavy channels reach a few tens of KiB.
        // `show channels as json` on a loaded node is the biggest body (MiBs).
        Limits { max_header_block: 256 * 1024, max_body: 16 * 1024 * 1024, max_headers: 4096 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    HeaderBlockTooLarge { limit: usize },
    TooManyHeaders { limit: usize },
    BodyTooLarge { length: usize, limit: usize },
    InvalidContentLength(String),
    MalformedHeaderLine(String),
    InvalidUtf8InHeaders,
    MissingContentType,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::HeaderBlockTooLarge { limit } => write!(f, "ESL header block larger than {limit} bytes"),
            ParseError::TooManyHeaders { limit } => write!(f, "ESL header block has more than {limit} headers"),
            ParseError::BodyTooLarge { length, limit } => {
                write!(f, "ESL Content-Length {length} exceeds the {limit}-byte limit")
            }
            ParseError::InvalidContentLength(v) => write!(f, "invalid Content-Length {v:?}"),
            ParseError::MalformedHeaderLine(l) => write!(f, "malformed ESL header line {l:?}"),
            ParseError::InvalidUtf8InHeaders => write!(f, "ESL header block is not UTF-8"),
            ParseError::MissingContentType => write!(f, "ESL message without Content-Type (stream out of sync)"),
        }
    }
}

impl std::error::Error for ParseError {}

#[derive(Debug)]
struct PendingBody {
    headers: Headers,
    len: usize,
    header_len: usize,
}

/// The framer. After an error it stays failed: the stream position is unknown, so
/// the only sound recovery is a new connection.
#[derive(Debug)]
pub struct Parser {
    buf: Vec<u8>,
    /// Start of unconsumed data in `buf`.
    start: usize,
    /// Bytes after `start` already searched for `\n\n` (keeps 1-byte feeding linear).
    scanned: usize,
    pending: Option<PendingBody>,
    limits: Limits,
    failed: Option<ParseError>,
}

impl Default for Parser {
    fn default() -> Self {
        Parser::new(Limits::default())
    }
}

impl Parser {
    pub fn new(limits: Limits) -> Self {
        Parser { buf: Vec::new(), start: 0, scanned: 0, pending: None, limits, failed: None }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Bytes received but not yet returned as a message.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Append received bytes. Never fails by itself; limits are checked by [`Parser::next`].
    pub fn feed(&mut self, data: &[u8]) {
        if self.start > 0 && (self.start >= self.buf.len() / 2 || self.start > 64 * 1024) {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Next complete message, `Ok(None)` when more bytes are needed.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Message>, ParseError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.next_inner() {
            Err(e) => {
                self.failed = Some(e.clone());
                Err(e)
            }
            ok => ok,
        }
    }

    fn next_inner(&mut self) -> Result<Option<Message>, ParseError> {
        loop {
            if let Some(p) = &self.pending {
                if self.buffered() < p.len {
                    return Ok(None);
                }
                let p = self.pending.take().expect("pending body");
                let body = self.buf[self.start..self.start + p.len].to_vec();
                self.start += p.len;
                return Ok(Some(Message { headers: p.headers, body: Some(body), wire_len: p.header_len + p.len }));
            }

            let avail = &self.buf[self.start..];
            // Stray line ends between messages are tolerated (some proxies add them).
            let skip = avail.iter().take_while(|&&c| c == b'\n' || c == b'\r').count();
            if skip > 0 {
                self.start += skip;
                self.scanned = self.scanned.saturating_sub(skip);
                continue;
            }
            let from = self.scanned.saturating_sub(1);
            let Some(rel) = find_blank_line(&avail[from..]) else {
                self.scanned = avail.len();
                if avail.len() > self.limits.max_header_block {
                    return Err(ParseError::HeaderBlockTooLarge { limit: self.limits.max_header_block });
                }
                return Ok(None);
            };
            let end = from + rel; // index of the first '\n' of "\n\n"
            let header_len = end + 2;
            if header_len > self.limits.max_header_block {
                return Err(ParseError::HeaderBlockTooLarge { limit: self.limits.max_header_block });
            }
            let block = std::str::from_utf8(&avail[..end]).map_err(|_| ParseError::InvalidUtf8InHeaders)?;
            let headers = parse_header_block(block, self.limits.max_headers)?;
            self.start += header_len;
            self.scanned = 0;
            if headers.get("Content-Type").is_none() {
                return Err(ParseError::MissingContentType);
            }
            match headers.get("Content-Length") {
                None => return Ok(Some(Message { headers, body: None, wire_len: header_len })),
                Some(v) => {
                    let len = parse_content_length(v)?;
                    if len > self.limits.max_body {
                        return Err(ParseError::BodyTooLarge { length: len, limit: self.limits.max_body });
                    }
                    self.pending = Some(PendingBody { headers, len, header_len });
                }
            }
        }
    }
}

fn find_blank_line(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\n\n")
}

pub(crate) fn parse_content_length(v: &str) -> Result<usize, ParseError> {
    let t = v.trim();
    if t.is_empty() || t.len() > 12 || !t.bytes().all(|c| c.is_ascii_digit()) {
        return Err(ParseError::InvalidContentLength(v.to_string()));
    }
    t.parse().map_err(|_| ParseError::InvalidContentLength(v.to_string()))
}

/// `Name: value` lines (value may be empty: `User-Data: `). `\r` before `\n` is dropped.
pub(crate) fn parse_header_block(block: &str, max_headers: usize) -> Result<Headers, ParseError> {
    let mut headers = Headers::new();
    for line in block.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let Some(colon) = line.find(':') else {
            return Err(ParseError::MalformedHeaderLine(truncate(line)));
        };
        let name = &line[..colon];
        if name.is_empty() || name.contains(' ') {
            return Err(ParseError::MalformedHeaderLine(truncate(line)));
        }
        let value = &line[colon + 1..];
        let value = value.strip_prefix(' ').unwrap_or(value);
        if headers.len() >= max_headers {
            return Err(ParseError::TooManyHeaders { limit: max_headers });
        }
        headers.push(name, value);
    }
    Ok(headers)
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::esl::message::MessageKind;

    fn all(p: &mut Parser) -> Vec<Message> {
        let mut v = Vec::new();
        while let Some(m) = p.next().unwrap() {
            v.push(m);
        }
        v
    }

    #[test]
    fn reply_without_body_then_api_with_body_without_newline() {
        let wire = b"Content-Type: command/reply\nReply-Text: +OK accepted\n\nContent-Type: api/response\nContent-Length: 5\n\nfalseContent-Type: auth/request\n\n";
        let mut p = Parser::default();
        p.feed(wire);
        let m = all(&mut p);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].kind(), MessageKind::CommandReply);
        assert_eq!(m[0].reply_text().as_deref(), Some("+OK accepted"));
        assert_eq!(m[0].body, None);
        assert_eq!(m[1].body.as_deref(), Some(&b"false"[..]));
        assert_eq!(m[1].wire_len, 50 + 5 - 4);
        assert_eq!(m[2].kind(), MessageKind::AuthRequest);
        assert_eq!(p.buffered(), 0);
    }

    #[test]
    fn byte_at_a_time_is_identical() {
        let wire = b"Content-Length: 3\nContent-Type: text/event-plain\n\nabcContent-Type: command/reply\nReply-Text: -ERR x\n\n";
        let mut whole = Parser::default();
        whole.feed(wire);
        let a = all(&mut whole);
        let mut p = Parser::default();
        let mut b = Vec::new();
        for c in wire.chunks(1) {
            p.feed(c);
            b.extend(all(&mut p));
        }
        assert_eq!(a, b);
        assert_eq!(a.len(), 2);
    }

    #[test]
    fn header_block_cap() {
        let mut p = Parser::new(Limits { max_header_block: 32, ..Limits::default() });
        p.feed(b"Content-Type: command/reply\nReply-Text: +OK this is long\n\n");
        assert_eq!(p.next(), Err(ParseError::HeaderBlockTooLarge { limit: 32 }));
        // stays failed
        p.feed(b"Content-Type: auth/request\n\n");
        assert!(p.next().is_err());
    }

    #[test]
    fn header_block_cap_without_terminator_yet() {
        let mut p = Parser::new(Limits { max_header_block: 16, ..Limits::default() });
        p.feed(b"Content-Type: comm");
        assert_eq!(p.next(), Err(ParseError::HeaderBlockTooLarge { limit: 16 }));
    }

    #[test]
    fn body_cap_is_checked_before_buffering_the_body() {
        let mut p = Parser::new(Limits { max_body: 10, ..Limits::default() });
        p.feed(b"Content-Type: api/response\nContent-Length: 11\n\n");
        assert_eq!(p.next(), Err(ParseError::BodyTooLarge { length: 11, limit: 10 }));
    }

    #[test]
    fn bad_content_length_and_missing_type() {
        for bad in ["-1", "12a", "", "99999999999999999"] {
            let mut p = Parser::default();
            p.feed(format!("Content-Type: api/response\nContent-Length: {bad}\n\n").as_bytes());
            assert!(matches!(p.next(), Err(ParseError::InvalidContentLength(_))), "{bad}");
        }
        let mut p = Parser::default();
        p.feed(b"Reply-Text: +OK\n\n");
        assert_eq!(p.next(), Err(ParseError::MissingContentType));
        let mut p = Parser::default();
        p.feed(b"garbage line\n\n");
        assert!(matches!(p.next(), Err(ParseError::MalformedHeaderLine(_))));
        let mut p = Parser::new(Limits { max_headers: 2, ..Limits::default() });
        p.feed(b"A: 1\nB: 2\nContent-Type: x\n\n");
        assert_eq!(p.next(), Err(ParseError::TooManyHeaders { limit: 2 }));
        let mut p = Parser::default();
        p.feed(b"Content-Type: \xff\n\n");
        assert_eq!(p.next(), Err(ParseError::InvalidUtf8InHeaders));
    }

    #[test]
    fn crlf_and_empty_values() {
        let mut p = Parser::default();
        p.feed(b"Content-Type: log/data\r\nUser-Data: \r\nContent-Length: 2\n\nok");
        let m = p.next().unwrap().unwrap();
        assert_eq!(m.headers.get("User-Data"), Some(""));
        assert_eq!(m.kind(), MessageKind::LogData);
        assert_eq!(m.body.as_deref(), Some(&b"ok"[..]));
    }
}
