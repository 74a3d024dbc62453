//! Event bodies in the three formats FreeSWITCH sends (`event plain|json|xml`).
//!
//! * plain: `Name: value` lines, values percent-encoded; an inner `Content-Length`
//!   header announces a body after the blank line (BACKGROUND_JOB output).
//! * json: one object, every value a string, the body in `_body`.
//! * xml: `<event><headers>..</headers><Content-Length>N</Content-Length><body>..</body></event>`,
//!   values still percent-encoded inside the elements, the body XML-escaped.
//!
//! The result is the same [`Event`] whatever the format.

use super::message::{percent_decode, Headers, Message, MessageKind};
use super::parser::parse_content_length;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFormat {
    Plain,
    Json,
    Xml,
}

impl EventFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            EventFormat::Plain => "plain",
            EventFormat::Json => "json",
            EventFormat::Xml => "xml",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub format: EventFormat,
    /// Decoded header values, in the order received (json: key order of the object).
    pub headers: Headers,
    pub body: Option<String>,
}

impl Event {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }
    pub fn name(&self) -> Option<&str> {
        self.get("Event-Name")
    }
    pub fn unique_id(&self) -> Option<&str> {
        self.get("Unique-ID")
    }
    pub fn job_uuid(&self) -> Option<&str> {
        self.get("Job-UUID")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventError {
    NotAnEvent,
    Json(String),
    Xml(&'static str),
    Plain(String),
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventError::NotAnEvent => write!(f, "message is not an event"),
            EventError::Json(e) => write!(f, "bad json event: {e}"),
            EventError::Xml(e) => write!(f, "bad xml event: {e}"),
            EventError::Plain(e) => write!(f, "bad plain event: {e}"),
        }
    }
}
impl std::error::Error for EventError {}

/// Decode the event carried by `msg` (a `text/event-*` message).
pub fn parse_event(msg: &Message) -> Result<Event, EventError> {
    let body = msg.body.as_deref().unwrap_or(&[]);
    match msg.kind() {
        MessageKind::EventPlain => parse_plain(body),
        MessageKind::EventJson => parse_json(body),
        MessageKind::EventXml => parse_xml(body),
        _ => Err(EventError::NotAnEvent),
    }
}

/// Plain events; also used for the outbound `connect` reply's headers.
pub fn parse_plain(body: &[u8]) -> Result<Event, EventError> {
    let (head, rest) = match body.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&body[..i], &body[i + 2..]),
        None => (body, &[][..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut headers = Headers::new();
    for line in head.split('\n') {
        if line.is_empty() {
            continue;
        }
        let Some(colon) = line.find(':') else {
            return Err(EventError::Plain(format!("line without colon: {:.60}", line)));
        };
        let v = &line[colon + 1..];
        headers.push(&line[..colon], percent_decode(v.strip_prefix(' ').unwrap_or(v)));
    }
    let body = match headers.get("Content-Length") {
        Some(cl) => {
            let n = parse_content_length(cl).map_err(|e| EventError::Plain(e.to_string()))?;
            if n > rest.len() {
                return Err(EventError::Plain(format!("inner Content-Length {n} > {} bytes left", rest.len())));
            }
            Some(String::from_utf8_lossy(&rest[..n]).into_owned())
        }
        None => None,
    };
    Ok(Event { format: EventFormat::Plain, headers, body })
}

fn parse_json(body: &[u8]) -> Result<Event, EventError> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| EventError::Json(e.to_string()))?;
    let serde_json::Value::Object(map) = v else {
        return Err(EventError::Json("not an object".into()));
    };
    let mut headers = Headers::new();
    let mut ev_body = None;
    for (k, v) in map {
        let s = match v {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        if k == "_body" {
            ev_body = Some(s);
        } else {
            headers.push(k, s);
        }
    }
    Ok(Event { format: EventFormat::Json, headers, body: ev_body })
}

fn parse_xml(body: &[u8]) -> Result<Event, EventError> {
    let text = String::from_utf8_lossy(body);
    let hs = text.find("<headers>").ok_or(EventError::Xml("no <headers>"))? + "<headers>".len();
    let he = text[hs..].find("</headers>").ok_or(EventError::Xml("no </headers>"))? + hs;
    let mut headers = Headers::new();
    let mut rest = &text[hs..he];
    loop {
        let Some(open) = rest.find('<') else { break };
        let Some(close) = rest[open..].find('>') else { return Err(EventError::Xml("unterminated tag")) };
        let name = &rest[open + 1..open + close];
        if name.is_empty() || name.starts_with('/') || name.ends_with('/') {
            return Err(EventError::Xml("unexpected tag in <headers>"));
        }
        let after = &rest[open + close + 1..];
        let end_tag = format!("</{name}>");
        let Some(vend) = after.find(&end_tag) else { return Err(EventError::Xml("element not closed")) };
        headers.push(name, percent_decode(&xml_unescape(&after[..vend])));
        rest = &after[vend + end_tag.len()..];
    }
    let tail = &text[he..];
    let body = match tail.find("<body>") {
        Some(bs) => {
            let bs = bs + "<body>".len();
            let be = tail[bs..].find("</body>").ok_or(EventError::Xml("no </body>"))? + bs;
            let raw = xml_unescape(&tail[bs..be]);
            // FreeSWITCH pretty-prints: the element text ends with indentation that is
            // not part of the body. The inner Content-Length says how much is.
            let len = element(tail, "Content-Length").and_then(|v| v.trim().parse::<usize>().ok());
            Some(match len {
                Some(n) if n <= raw.len() => String::from_utf8_lossy(&raw.as_bytes()[..n]).into_owned(),
                _ => raw,
            })
        }
        None => None,
    };
    Ok(Event { format: EventFormat::Xml, headers, body })
}

fn element<'a>(s: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let i = s.find(&open)? + open.len();
    let j = s[i..].find(&format!("</{name}>"))? + i;
    Some(&s[i..j])
}

fn xml_unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_with_inner_body() {
        let body = b"Event-Name: BACKGROUND_JOB\nJob-UUID: abc\nJob-Command-Arg: error/CALL_REJECTED%20%26park()\nContent-Length: 19\n\n-ERR CALL_REJECTED\n";
        let ev = parse_plain(body).unwrap();
        assert_eq!(ev.name(), Some("BACKGROUND_JOB"));
        assert_eq!(ev.get("Job-Command-Arg"), Some("error/CALL_REJECTED &park()"));
        assert_eq!(ev.body.as_deref(), Some("-ERR CALL_REJECTED\n"));
    }

    #[test]
    fn plain_inner_length_overflow_is_an_error() {
        assert!(parse_plain(b"Event-Name: X\nContent-Length: 50\n\nshort").is_err());
    }

    #[test]
    fn xml_body_is_cut_at_inner_length_and_unescaped() {
        let body = b"<event>\n  <headers>\n    <Event-Name>CUSTOM</Event-Name>\n    <X>a%20b&amp;c</X>\n  </headers>\n  <Content-Length>6</Content-Length>\n  <body>1 &lt; 2\n  </body>\n</event>\n";
        let ev = parse_xml(body).unwrap();
        assert_eq!(ev.name(), Some("CUSTOM"));
        assert_eq!(ev.get("X"), Some("a b&c"));
        assert_eq!(ev.body.as_deref(), Some("1 < 2\n"));
    }

    #[test]
    fn json_body_and_non_string_values() {
        let ev = parse_json(br#"{"Event-Name":"API","n":3,"_body":"x\n"}"#).unwrap();
        assert_eq!(ev.get("n"), Some("3"));
        assert_eq!(ev.body.as_deref(), Some("x\n"));
        assert!(parse_json(b"[1]").is_err());
        assert!(parse_json(b"{").is_err());
    }
}
