//! Command encoder. Every piece of a command is validated when it is built, and the
//! types have no unchecked constructor: no ESL command can be made from input that
//! carries a newline (which would end the command and start another: `uuid_kill x\n\napi
//! system ...`), another control character, or — for positional arguments — a space
//! (which would shift FreeSWITCH's argument positions).

use super::event::EventFormat;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    Empty(&'static str),
    ControlCharacter(&'static str),
    Whitespace(&'static str),
    TooLong(&'static str),
    InvalidUuid,
    InvalidName(&'static str),
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Empty(w) => write!(f, "{w} must not be empty"),
            CommandError::ControlCharacter(w) => write!(f, "{w} must not contain newlines or control characters"),
            CommandError::Whitespace(w) => write!(f, "{w} must not contain spaces"),
            CommandError::TooLong(w) => write!(f, "{w} is too long"),
            CommandError::InvalidUuid => write!(f, "invalid UUID (expected 8-4-4-4-12 hex digits)"),
            CommandError::InvalidName(w) => write!(f, "invalid {w}"),
        }
    }
}
impl std::error::Error for CommandError {}

const MAX_ARG: usize = 1024;

/// Refuse ASCII control characters (incl. `\n`, `\r`, `\t`, NUL, DEL) and C1 controls.
pub fn check_text(s: &str, what: &'static str) -> Result<(), CommandError> {
    if s.chars().any(|c| c.is_control()) {
        return Err(CommandError::ControlCharacter(what));
    }
    if s.len() > MAX_ARG {
        return Err(CommandError::TooLong(what));
    }
    Ok(())
}

/// A positional argument: non-empty, no control characters, no whitespace.
pub fn check_word(s: &str, what: &'static str) -> Result<(), CommandError> {
    if s.is_empty() {
        return Err(CommandError::Empty(what));
    }
    check_text(s, what)?;
    if s.chars().any(char::is_whitespace) {
        return Err(CommandError::Whitespace(what));
    }
    Ok(())
}

/// A FreeSWITCH UUID, canonical lowercase `8-4-4-4-12` hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Uuid(String);

impl Uuid {
    pub fn parse(s: &str) -> Result<Uuid, CommandError> {
        let b = s.as_bytes();
        if b.len() != 36 {
            return Err(CommandError::InvalidUuid);
        }
        for (i, &c) in b.iter().enumerate() {
            let ok = match i {
                8 | 13 | 18 | 23 => c == b'-',
                _ => c.is_ascii_hexdigit(),
            };
            if !ok {
                return Err(CommandError::InvalidUuid);
            }
        }
        Ok(Uuid(s.to_ascii_lowercase()))
    }
    /// Random (version 4) UUID from the given 16 bytes.
    pub fn from_random_bytes(mut b: [u8; 16]) -> Uuid {
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        Uuid(format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]))
    }
    /// A fresh random UUID from the OS.
    pub fn new_v4() -> Uuid {
        let mut b = [0u8; 16];
        getrandom::getrandom(&mut b).expect("OS randomness");
        Uuid::from_random_bytes(b)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An `api`/`bgapi` command line: a command name followed by validated words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiCommand {
    line: String,
}

impl ApiCommand {
    /// `name` is a FreeSWITCH API name: `[a-z0-9_]+` (e.g. `uuid_kill`, `status`, `show`).
    pub fn new(name: &str) -> Result<ApiCommand, CommandError> {
        if name.is_empty() || !name.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_') {
            return Err(CommandError::InvalidName("API command name"));
        }
        Ok(ApiCommand { line: name.to_string() })
    }
    pub fn uuid(mut self, u: &Uuid) -> ApiCommand {
        self.line.push(' ');
        self.line.push_str(u.as_str());
        self
    }
    /// One positional word (checked with [`check_word`]).
    pub fn arg(mut self, word: &str, what: &'static str) -> Result<ApiCommand, CommandError> {
        check_word(word, what)?;
        self.line.push(' ');
        self.line.push_str(word);
        Ok(self)
    }
    /// A word that may hold plain spaces only inside single quotes, for originate's
    /// `{name='Front Desk'}aleg` block (FreeSWITCH's splitter keeps quoted text whole).
    pub fn arg_quoted_block(mut self, word: &str) -> Result<ApiCommand, CommandError> {
        if word.is_empty() {
            return Err(CommandError::Empty("argument"));
        }
        check_text(word, "argument")?;
        let mut quoted = false;
        for c in word.chars() {
            if c == '\'' {
                quoted = !quoted;
            } else if c.is_whitespace() && !(quoted && c == ' ') {
                return Err(CommandError::Whitespace("argument"));
            }
        }
        if quoted {
            return Err(CommandError::InvalidName("argument (unbalanced quote)"));
        }
        self.line.push(' ');
        self.line.push_str(word);
        Ok(self)
    }
    pub fn as_str(&self) -> &str {
        &self.line
    }
}

impl fmt::Display for ApiCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line)
    }
}

/// Event names for `event <format> ...`: `[A-Z0-9_]+` or `CUSTOM` subclasses
/// (`sofia::register`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    format: EventFormat,
    events: Vec<String>,
}

impl Subscription {
    pub fn new(format: EventFormat, events: &[&str]) -> Result<Subscription, CommandError> {
        if events.is_empty() {
            return Err(CommandError::Empty("event list"));
        }
        for e in events {
            check_word(e, "event name")?;
            if !e.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':' || c == b'-') {
                return Err(CommandError::InvalidName("event name"));
            }
        }
        Ok(Subscription { format, events: events.iter().map(|s| s.to_string()).collect() })
    }
    pub fn format(&self) -> EventFormat {
        self.format
    }
    pub fn events(&self) -> &[String] {
        &self.events
    }
}

/// A complete ESL command. Fields are private: values only come from the checked
/// constructors, so [`Command::encode`] cannot fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command(Inner);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Inner {
    Auth(String),
    Api(ApiCommand),
    BgApi(ApiCommand, Uuid),
    Event(Subscription),
    NoEvents,
    Exit,
    SendMsg(Uuid, Vec<(String, String)>),
    SendMsgBody(Uuid, Vec<(String, String)>, String),
}

/// Longest `sendmsg` body (an application argument too long for a header).
pub const MAX_SENDMSG_BODY: usize = 16 * 1024;

impl Command {
    /// `auth <password>`; the password may contain spaces, never control characters.
    pub fn auth(password: &str) -> Result<Command, CommandError> {
        if password.is_empty() {
            return Err(CommandError::Empty("ESL password"));
        }
        check_text(password, "ESL password")?;
        Ok(Command(Inner::Auth(password.to_string())))
    }
    pub fn api(cmd: ApiCommand) -> Command {
        Command(Inner::Api(cmd))
    }
    /// `bgapi <cmd>` with a client-chosen `Job-UUID` header (FreeSWITCH honours it,
    /// transcript 16), so the result can be matched even before the reply is read.
    pub fn bgapi(cmd: ApiCommand, job_uuid: Uuid) -> Command {
        Command(Inner::BgApi(cmd, job_uuid))
    }
    pub fn event(sub: Subscription) -> Command {
        Command(Inner::Event(sub))
    }
    pub fn noevents() -> Command {
        Command(Inner::NoEvents)
    }
    pub fn exit() -> Command {
        Command(Inner::Exit)
    }
    /// `sendmsg <uuid>` with `name: value` headers (e.g. `call-command: execute`).
    pub fn sendmsg(uuid: Uuid, headers: &[(&str, &str)]) -> Result<Command, CommandError> {
        let mut v = Vec::new();
        for (k, val) in headers {
            check_word(k, "sendmsg header name")?;
            if k.contains(':') {
                return Err(CommandError::InvalidName("sendmsg header name"));
            }
            check_text(val, "sendmsg header value")?;
            v.push((k.to_string(), val.to_string()));
        }
        Ok(Command(Inner::SendMsg(uuid, v)))
    }
    /// `sendmsg <uuid>` with the application argument in a body (`content-type:
    /// text/plain` + `content-length`, transcript 09's third form): for arguments longer
    /// than a header value may be. The body is length-delimited, but control characters
    /// are refused all the same (FreeSWITCH would pass them to the application).
    pub fn sendmsg_body(uuid: Uuid, headers: &[(&str, &str)], body: &str) -> Result<Command, CommandError> {
        if body.is_empty() {
            return Err(CommandError::Empty("sendmsg body"));
        }
        if body.chars().any(char::is_control) {
            return Err(CommandError::ControlCharacter("sendmsg body"));
        }
        if body.len() > MAX_SENDMSG_BODY {
            return Err(CommandError::TooLong("sendmsg body"));
        }
        let Command(Inner::SendMsg(u, v)) = Command::sendmsg(uuid, headers)? else { unreachable!("sendmsg builds SendMsg") };
        if v.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("content-type")) {
            return Err(CommandError::InvalidName("sendmsg header name (content-* is set from the body)"));
        }
        Ok(Command(Inner::SendMsgBody(u, v, body.to_string())))
    }

    /// Wire bytes, terminated by the blank line.
    pub fn encode(&self) -> Vec<u8> {
        let s = match &self.0 {
            Inner::Auth(p) => format!("auth {p}\n\n"),
            Inner::Api(c) => format!("api {c}\n\n"),
            Inner::BgApi(c, j) => format!("bgapi {c}\nJob-UUID: {j}\n\n"),
            Inner::Event(s) => format!("event {} {}\n\n", s.format.as_str(), s.events.join(" ")),
            Inner::NoEvents => "noevents\n\n".to_string(),
            Inner::Exit => "exit\n\n".to_string(),
            Inner::SendMsg(u, h) => {
                let mut s = format!("sendmsg {u}\n");
                for (k, v) in h {
                    s.push_str(k);
                    s.push_str(": ");
                    s.push_str(v);
                    s.push('\n');
                }
                s.push('\n');
                s
            }
            Inner::SendMsgBody(u, h, body) => {
                let mut s = format!("sendmsg {u}\n");
                for (k, v) in h {
                    s.push_str(k);
                    s.push_str(": ");
                    s.push_str(v);
                    s.push('\n');
                }
                s.push_str(&format!("content-type: text/plain\ncontent-length: {}\n\n{body}", body.len()));
                s
            }
        };
        s.into_bytes()
    }

    /// Short description for logs (never includes the password).
    pub fn describe(&self) -> String {
        match &self.0 {
            Inner::Auth(_) => "auth ***".into(),
            Inner::Api(c) => format!("api {c}"),
            Inner::BgApi(c, j) => format!("bgapi {c} (Job-UUID {j})"),
            Inner::Event(s) => format!("event {} {}", s.format.as_str(), s.events.join(" ")),
            Inner::NoEvents => "noevents".into(),
            Inner::Exit => "exit".into(),
            Inner::SendMsg(u, _) | Inner::SendMsgBody(u, _, _) => format!("sendmsg {u}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_validation() {
        let u = Uuid::parse("EBFF9A6F-7ccc-43ea-8a29-b648e8d5653e").unwrap();
        assert_eq!(u.as_str(), "ebff9a6f-7ccc-43ea-8a29-b648e8d5653e");
        for bad in [
            "",
            "ebff9a6f-7ccc-43ea-8a29-b648e8d5653",
            "ebff9a6f-7ccc-43ea-8a29-b648e8d5653e0",
            "ebff9a6f7ccc-43ea-8a29-b648e8d5653e0",
            "gbff9a6f-7ccc-43ea-8a29-b648e8d5653e",
            "ebff9a6f-7ccc-43ea-8a29-b648e8d5653\n",
            "ebff9a6f-7ccc-43ea-8a29 b648e8d5653e",
        ] {
            assert_eq!(Uuid::parse(bad), Err(CommandError::InvalidUuid), "{bad:?}");
        }
        let r = Uuid::new_v4();
        assert!(Uuid::parse(r.as_str()).is_ok());
        assert_eq!(&r.as_str()[14..15], "4");
    }

    #[test]
    fn injection_is_refused_everywhere() {
        let u = Uuid::parse("00000000-1111-2222-3333-444444444444").unwrap();
        for evil in ["NORMAL_CLEARING\n\napi system reboot", "a\rb", "a\tb", "a\0b", "a\u{7f}", "a\u{85}b"] {
            assert!(ApiCommand::new("uuid_kill").unwrap().uuid(&u).arg(evil, "cause").is_err(), "{evil:?}");
            assert!(Command::auth(evil).is_err());
            assert!(Command::sendmsg(u.clone(), &[("execute-app-arg", evil)]).is_err());
            assert!(Subscription::new(EventFormat::Json, &[evil]).is_err());
        }
        assert_eq!(
            ApiCommand::new("uuid_kill").unwrap().arg("NORMAL CLEARING", "cause"),
            Err(CommandError::Whitespace("cause"))
        );
        assert!(ApiCommand::new("uuid_kill").unwrap().arg("", "cause").is_err());
        assert!(ApiCommand::new("uuid_kill\n").is_err());
        assert!(ApiCommand::new("uuid kill").is_err());
        assert!(ApiCommand::new("").is_err());
        assert!(Command::sendmsg(u.clone(), &[("a: b", "x")]).is_err());
        assert!(Command::sendmsg(u, &[("a:b", "x")]).is_err());
        assert!(ApiCommand::new("echo").unwrap().arg(&"x".repeat(2000), "arg").is_err());
        let o = ApiCommand::new("originate").unwrap();
        assert!(o.clone().arg_quoted_block("{a='x y'}user/1").is_ok());
        assert!(o.clone().arg_quoted_block("{a=x y}user/1").is_err());
        assert!(o.clone().arg_quoted_block("{a='x\ny'}user/1").is_err());
        assert!(o.clone().arg_quoted_block("{a='x\ty'}user/1").is_err());
        assert!(o.arg_quoted_block("{a='x y}user/1").is_err());
    }

    #[test]
    fn encodings_match_transcript_bytes() {
        let u = Uuid::parse("00000000-1111-2222-3333-444444444444").unwrap();
        assert_eq!(Command::auth("ClueCon").unwrap().encode(), b"auth ClueCon\n\n");
        assert_eq!(
            Command::api(ApiCommand::new("uuid_kill").unwrap().uuid(&u)).encode(),
            b"api uuid_kill 00000000-1111-2222-3333-444444444444\n\n"
        );
        let job = Uuid::parse("11111111-2222-3333-4444-555555555555").unwrap();
        assert_eq!(
            Command::bgapi(ApiCommand::new("status").unwrap(), job).encode(),
            b"bgapi status\nJob-UUID: 11111111-2222-3333-4444-555555555555\n\n"
        );
        assert_eq!(
            Command::event(Subscription::new(EventFormat::Plain, &["CUSTOM", "sofia::register"]).unwrap()).encode(),
            b"event plain CUSTOM sofia::register\n\n"
        );
        assert_eq!(
            Command::sendmsg(u, &[("call-command", "hangup"), ("hangup-cause", "NORMAL_CLEARING")]).unwrap().encode(),
            b"sendmsg 00000000-1111-2222-3333-444444444444\ncall-command: hangup\nhangup-cause: NORMAL_CLEARING\n\n"
        );
        assert_eq!(Command::exit().encode(), b"exit\n\n");
        // 09's third form, byte for byte.
        let b = Uuid::parse("937d8c1a-a9bf-4960-98f3-923e240c1703").unwrap();
        assert_eq!(
            Command::sendmsg_body(b.clone(), &[("call-command", "execute"), ("execute-app-name", "playback")], "tone_stream://%(100,0,500)").unwrap().encode(),
            b"sendmsg 937d8c1a-a9bf-4960-98f3-923e240c1703\ncall-command: execute\nexecute-app-name: playback\ncontent-type: text/plain\ncontent-length: 26\n\ntone_stream://%(100,0,500)"
        );
        assert!(Command::sendmsg_body(b.clone(), &[], "a\nb").is_err());
        assert!(Command::sendmsg_body(b.clone(), &[], "").is_err());
        assert!(Command::sendmsg_body(b.clone(), &[("content-length", "1")], "x").is_err());
        assert!(Command::sendmsg_body(b, &[], &"x".repeat(MAX_SENDMSG_BODY + 1)).is_err());
        assert_eq!(Command::auth("x y").unwrap().describe(), "auth ***");
    }
}
