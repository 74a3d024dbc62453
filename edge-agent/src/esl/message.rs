//! One framed ESL message (header block + optional `Content-Length` body) and its kind.

use std::borrow::Cow;

/// Ordered header list. Lookups are case-insensitive (FreeSWITCH is consistent in
/// its casing, but nothing here may depend on it); order is kept as received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub fn new() -> Self {
        Headers(Vec::new())
    }
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }
    /// Replace the first value of `name` (case-insensitive), or append it.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        match self.0.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
            Some(slot) => slot.1 = value.into(),
            None => self.0.push((name.to_string(), value.into())),
        }
    }
    /// First value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Position of `name` in the block (tests use it to check order independence).
    pub fn position(&self, name: &str) -> Option<usize> {
        self.0.iter().position(|(k, _)| k.eq_ignore_ascii_case(name))
    }
}

/// What a message is, from its `Content-Type` (wherever it sits in the block).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageKind {
    AuthRequest,
    CommandReply,
    ApiResponse,
    EventPlain,
    EventJson,
    EventXml,
    DisconnectNotice,
    RudeRejection,
    LogData,
    Other(String),
}

impl MessageKind {
    pub fn from_content_type(ct: &str) -> MessageKind {
        match ct.trim() {
            "auth/request" => MessageKind::AuthRequest,
            "command/reply" => MessageKind::CommandReply,
            "api/response" => MessageKind::ApiResponse,
            "text/event-plain" => MessageKind::EventPlain,
            "text/event-json" => MessageKind::EventJson,
            "text/event-xml" => MessageKind::EventXml,
            "text/disconnect-notice" => MessageKind::DisconnectNotice,
            "text/rude-rejection" => MessageKind::RudeRejection,
            "log/data" => MessageKind::LogData,
            other => MessageKind::Other(other.to_string()),
        }
    }
    pub fn is_event(&self) -> bool {
        matches!(self, MessageKind::EventPlain | MessageKind::EventJson | MessageKind::EventXml)
    }
}

/// A complete ESL message as framed on the wire. Outer header values are kept raw
/// (not percent-decoded): only the outbound `connect` reply encodes them, see
/// [`Message::reply_text`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub headers: Headers,
    /// `None` when the block had no `Content-Length`; `Some(empty)` for `Content-Length: 0`.
    pub body: Option<Vec<u8>>,
    /// Bytes this message took on the wire (header block + blank line + body).
    pub wire_len: usize,
}

impl Message {
    pub fn content_type(&self) -> &str {
        self.headers.get("Content-Type").unwrap_or("")
    }
    pub fn kind(&self) -> MessageKind {
        MessageKind::from_content_type(self.content_type())
    }
    /// `Reply-Text` of a `command/reply`, percent-decoded and trimmed of the line end.
    /// (The outbound `connect` reply sends `Reply-Text: %2BOK%0A`.)
    pub fn reply_text(&self) -> Option<String> {
        self.headers
            .get("Reply-Text")
            .map(|v| percent_decode(v).trim_end_matches(['\n', '\r']).to_string())
    }
    pub fn body_str(&self) -> Cow<'_, str> {
        match &self.body {
            Some(b) => String::from_utf8_lossy(b),
            None => Cow::Borrowed(""),
        }
    }
}

/// Decode `%XX` escapes (FreeSWITCH's `switch_url_encode`). `+` stays `+`; a `%` not
/// followed by two hex digits is kept literally; invalid UTF-8 is replaced.
pub fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h << 4) | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("fd00%3A%3A2"), "fd00::2");
        assert_eq!(percent_decode("%2BOK%0A"), "+OK\n");
        assert_eq!(percent_decode("a+b"), "a+b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%zz1"), "%zz1");
        assert_eq!(percent_decode("x%41"), "xA");
        assert_eq!(percent_decode("%C3%A9t%C3%A9"), "été");
    }

    #[test]
    fn header_lookup_is_case_insensitive_and_ordered() {
        let mut h = Headers::new();
        h.push("Content-Length", "3");
        h.push("Content-Type", "text/event-plain");
        assert_eq!(h.get("content-type"), Some("text/event-plain"));
        assert_eq!(h.position("Content-Type"), Some(1));
        assert_eq!(h.get("missing"), None);
    }
}
