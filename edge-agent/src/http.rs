//! A minimal HTTP/1.1 client for the agent's calls to callplane (relays, later the
//! flow runner): `http://` only, one keep-alive connection per [`HttpClient`],
//! bounded in time and size, no dependencies beyond tokio.
//!
//! **TLS.** callplane in production is `https://`. The agent does not link a TLS
//! stack (rustls + ring would double the build on a 2-core CI for one outbound
//! connection); point `CALLPLANE_URL` at a TLS-terminating forward proxy on
//! loopback instead (stunnel in client mode, HAProxy, nginx `proxy_pass https://`),
//! which also gives certificate pinning and connection reuse — see the README
//! ("Talking to callplane over HTTPS").
//!
//! The response parser ([`parse_response`]) is pure and handles `Content-Length`,
//! `chunked` and close-delimited bodies, interim `1xx` responses, and
//! `Connection: close`.

use std::fmt;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    /// Path prefix from the URL (no trailing `/`), prepended to every request path.
    pub base_path: String,
    /// `Host` header to send instead of `host:port` (the Worker's hostname when the
    /// URL points at a TLS-terminating TCP proxy such as stunnel: Cloudflare routes
    /// by Host).
    pub virtual_host: Option<String>,
}

impl Endpoint {
    /// `http://host[:port][/prefix]`. `https://` is refused with a pointer to the
    /// TLS-proxy setup.
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        if url.starts_with("https://") {
            return Err(format!(
                "{url}: the edge-agent speaks plain HTTP only; run a TLS-terminating proxy on 127.0.0.1 and set CALLPLANE_URL=http://127.0.0.1:<port> (README: \"Talking to callplane over HTTPS\")"
            ));
        }
        let rest = url.strip_prefix("http://").ok_or_else(|| format!("{url}: not an http:// URL"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') || authority.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("{url}: bad host"));
        }
        let (host, port) = if let Some(r) = authority.strip_prefix('[') {
            let end = r.find(']').ok_or_else(|| format!("{url}: bad IPv6 host"))?;
            let port = match &r[end + 1..] {
                "" => 80,
                p => p.strip_prefix(':').and_then(|p| p.parse().ok()).ok_or_else(|| format!("{url}: bad port"))?,
            };
            (r[..end].to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse::<u16>().map_err(|_| format!("{url}: bad port"))?),
                None => (authority.to_string(), 80),
            }
        };
        if path.contains(['?', '#']) || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("{url}: the URL may have a path prefix, not a query or fragment"));
        }
        Ok(Endpoint { host, port, base_path: path.trim_end_matches('/').to_string(), virtual_host: None })
    }

    /// A valid `Host` value: `name[:port]` of letters, digits, `.`, `-`.
    pub fn check_virtual_host(h: &str) -> Result<(), String> {
        let (name, port) = match h.rsplit_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (h, None),
        };
        let ok_name = !name.is_empty() && name.len() <= 253 && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-');
        let ok_port = port.is_none_or(|p| p.parse::<u16>().is_ok());
        if ok_name && ok_port {
            Ok(())
        } else {
            Err(format!("{h:?} is not a host name"))
        }
    }

    fn host_header(&self) -> String {
        if let Some(v) = &self.virtual_host {
            return v.clone();
        }
        let h = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        if self.port == 80 {
            h
        } else {
            format!("{h}:{}", self.port)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    /// The server keeps the connection open.
    pub keep_alive: bool,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
    /// `message` of callplane's error envelope, else the body's start.
    pub fn message(&self) -> String {
        match self.json().as_ref().and_then(|v| v.get("message")).and_then(|m| m.as_str()) {
            Some(m) => m.to_string(),
            None => self.text().chars().take(200).collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    Connect(String),
    Io(String),
    Timeout,
    Protocol(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Connect(e) => write!(f, "connect: {e}"),
            HttpError::Io(e) => write!(f, "I/O: {e}"),
            HttpError::Timeout => write!(f, "timed out"),
            HttpError::Protocol(e) => write!(f, "bad HTTP response: {e}"),
        }
    }
}
impl std::error::Error for HttpError {}

/// Parse one response from the start of `buf`. `Ok(None)`: need more bytes;
/// `eof`: the peer closed (completes a close-delimited body). Returns the response
/// and the bytes it used.
pub fn parse_response(buf: &[u8], eof: bool, head_request: bool) -> Result<Option<(Response, usize)>, String> {
    parse_response_limited(buf, eof, head_request, MAX_BODY)
}

/// [`parse_response`] with a body limit of `max_body` bytes.
pub fn parse_response_limited(buf: &[u8], eof: bool, head_request: bool, max_body: usize) -> Result<Option<(Response, usize)>, String> {
    let mut start = 0;
    loop {
        let rest = &buf[start..];
        let Some(he) = rest.windows(4).position(|w| w == b"\r\n\r\n") else {
            if rest.len() > MAX_HEAD {
                return Err("response head too large".into());
            }
            return if eof && !rest.is_empty() { Err("connection closed inside the response head".into()) } else { Ok(None) };
        };
        let head = std::str::from_utf8(&rest[..he]).map_err(|_| "non-UTF-8 response head".to_string())?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let mut sp = status_line.splitn(3, ' ');
        let version = sp.next().unwrap_or("");
        if !version.starts_with("HTTP/1.") {
            return Err(format!("bad status line {status_line:?}"));
        }
        let status: u16 = sp.next().and_then(|s| s.parse().ok()).filter(|s| (100..600).contains(s)).ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let mut content_length: Option<usize> = None;
        let mut chunked = false;
        let mut keep_alive = version != "HTTP/1.0";
        for l in lines {
            let Some((k, v)) = l.split_once(':') else { return Err(format!("bad header line {l:?}")) };
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                let n: usize = v.parse().map_err(|_| format!("bad Content-Length {v:?}"))?;
                if content_length.is_some_and(|c| c != n) {
                    return Err("conflicting Content-Length headers".into());
                }
                content_length = Some(n);
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                chunked = v.to_ascii_lowercase().split(',').any(|t| t.trim() == "chunked");
            } else if k.eq_ignore_ascii_case("connection") {
                let v = v.to_ascii_lowercase();
                if v.contains("close") {
                    keep_alive = false;
                } else if v.contains("keep-alive") {
                    keep_alive = true;
                }
            }
        }
        let body_start = start + he + 4;
        if (100..200).contains(&status) {
            start = body_start; // interim response: skip it
            continue;
        }
        if head_request || status == 204 || status == 304 {
            return Ok(Some((Response { status, body: Vec::new(), keep_alive }, body_start)));
        }
        let body = &buf[body_start..];
        if chunked {
            let mut out = Vec::new();
            let mut i = 0;
            loop {
                let Some(le) = body[i..].windows(2).position(|w| w == b"\r\n") else {
                    return if eof { Err("connection closed inside a chunk".into()) } else { Ok(None) };
                };
                let size_s = std::str::from_utf8(&body[i..i + le]).map_err(|_| "bad chunk size".to_string())?;
                let size = usize::from_str_radix(size_s.split(';').next().unwrap_or("").trim(), 16).map_err(|_| format!("bad chunk size {size_s:?}"))?;
                i += le + 2;
                if size == 0 {
                    // Trailers until an empty line.
                    loop {
                        let Some(te) = body[i..].windows(2).position(|w| w == b"\r\n") else {
                            return if eof { Err("connection closed in trailers".into()) } else { Ok(None) };
                        };
                        i += te + 2;
                        if te == 0 {
                            return Ok(Some((Response { status, body: out, keep_alive }, body_start + i)));
                        }
                    }
                }
                if out.len() + size > max_body {
                    return Err("response body too large".into());
                }
                if body.len() < i + size + 2 {
                    return if eof { Err("connection closed inside a chunk".into()) } else { Ok(None) };
                }
                out.extend_from_slice(&body[i..i + size]);
                if &body[i + size..i + size + 2] != b"\r\n" {
                    return Err("chunk not followed by CRLF".into());
                }
                i += size + 2;
            }
        }
        if let Some(n) = content_length {
            if n > max_body {
                return Err("response body too large".into());
            }
            if body.len() < n {
                return if eof { Err("connection closed before the whole body".into()) } else { Ok(None) };
            }
            return Ok(Some((Response { status, body: body[..n].to_vec(), keep_alive }, body_start + n)));
        }
        // Close-delimited.
        if body.len() > max_body {
            return Err("response body too large".into());
        }
        if !eof {
            return Ok(None);
        }
        return Ok(Some((Response { status, body: body.to_vec(), keep_alive: false }, buf.len())));
    }
}

/// One keep-alive connection to callplane with a bearer token.
pub struct HttpClient {
    ep: Endpoint,
    auth: Option<String>,
    timeout: Duration,
    conn: Option<TcpStream>,
}

impl HttpClient {
    pub fn new(ep: Endpoint, token: Option<&str>, timeout: Duration) -> HttpClient {
        HttpClient { ep, auth: token.map(|t| format!("Bearer {t}")), timeout, conn: None }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.ep
    }

    pub async fn post_json(&mut self, path: &str, body: &str) -> Result<Response, HttpError> {
        self.request("POST", path, Some(body)).await
    }

    pub async fn get(&mut self, path: &str) -> Result<Response, HttpError> {
        self.request("GET", path, None).await
    }

    /// Send one request, bounded by the timeout. A reused connection that turns
    /// out closed before any response byte is replaced once (the server dropped an
    /// idle keep-alive connection; the request was not processed).
    pub async fn request(&mut self, method: &str, path: &str, body: Option<&str>) -> Result<Response, HttpError> {
        self.send(method, path, &[], body.map(|b| ("application/json", b.as_bytes())), MAX_BODY).await
    }

    /// [`request`](Self::request) with extra headers (names and values checked: no
    /// control characters, no `:` in names), any body with its content type, and a body
    /// limit for the response (media downloads are larger than API answers).
    pub async fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<(&str, &[u8])>, max_body: usize) -> Result<Response, HttpError> {
        if !path.starts_with('/') || path.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(HttpError::Protocol(format!("bad request path {path:?}")));
        }
        let mut req = format!("{method} {}{path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: callplane-edge-agent/{}\r\n", self.ep.base_path, self.ep.host_header(), env!("CARGO_PKG_VERSION")).into_bytes();
        if let Some(a) = &self.auth {
            req.extend_from_slice(format!("Authorization: {a}\r\n").as_bytes());
        }
        for (k, v) in headers {
            if k.is_empty() || k.contains(':') || k.chars().chain(v.chars()).any(|c| c.is_control()) {
                return Err(HttpError::Protocol(format!("bad request header {k:?}")));
            }
            req.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        match body {
            Some((ctype, b)) => {
                req.extend_from_slice(format!("Content-Type: {ctype}\r\nContent-Length: {}\r\n\r\n", b.len()).as_bytes());
                req.extend_from_slice(b);
            }
            None if method == "PUT" || method == "POST" => req.extend_from_slice(b"Content-Length: 0\r\n\r\n"),
            None => req.extend_from_slice(b"\r\n"),
        }
        let fut = async {
            for attempt in 0..2 {
                let reused = self.conn.is_some();
                if self.conn.is_none() {
                    let s = TcpStream::connect((self.ep.host.as_str(), self.ep.port)).await.map_err(|e| HttpError::Connect(e.to_string()))?;
                    let _ = s.set_nodelay(true);
                    self.conn = Some(s);
                }
                match exchange(self.conn.as_mut().expect("connected"), &req, method == "HEAD", max_body).await {
                    Ok(resp) => {
                        if !resp.keep_alive {
                            self.conn = None;
                        }
                        return Ok(resp);
                    }
                    Err((e, nothing_read)) => {
                        self.conn = None;
                        if reused && nothing_read && attempt == 0 {
                            continue;
                        }
                        return Err(e);
                    }
                }
            }
            unreachable!("second attempt returns")
        };
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r,
            Err(_) => {
                self.conn = None;
                Err(HttpError::Timeout)
            }
        }
    }
}

async fn exchange(s: &mut TcpStream, req: &[u8], head: bool, max_body: usize) -> Result<Response, (HttpError, bool)> {
    s.write_all(req).await.map_err(|e| (HttpError::Io(e.to_string()), true))?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 8192];
    loop {
        let n = s.read(&mut chunk).await.map_err(|e| (HttpError::Io(e.to_string()), buf.is_empty()))?;
        if n > 0 {
            buf.extend_from_slice(&chunk[..n]);
        }
        match parse_response_limited(&buf, n == 0, head, max_body) {
            Ok(Some((resp, used))) => {
                if used != buf.len() {
                    // Bytes after the response: the connection is not reusable.
                    return Ok(Response { keep_alive: false, ..resp });
                }
                return Ok(resp);
            }
            Ok(None) if n == 0 => return Err((HttpError::Io("connection closed".into()), buf.is_empty())),
            Ok(None) => {}
            Err(e) if n == 0 && buf.is_empty() => return Err((HttpError::Io(e), true)),
            Err(e) => return Err((HttpError::Protocol(e), false)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(Endpoint::parse("http://127.0.0.1:8787").unwrap(), Endpoint { host: "127.0.0.1".into(), port: 8787, base_path: String::new(), virtual_host: None });
        assert_eq!(Endpoint::parse("http://localhost/cp/").unwrap(), Endpoint { host: "localhost".into(), port: 80, base_path: "/cp".into(), virtual_host: None });
        assert_eq!(Endpoint::parse("http://[::1]:9000").unwrap().host, "::1");
        assert_eq!(Endpoint::parse("http://[::1]:9000").unwrap().host_header(), "[::1]:9000");
        let mut ep = Endpoint::parse("http://127.0.0.1:8443").unwrap();
        ep.virtual_host = Some("cp.example.com".into());
        assert_eq!(ep.host_header(), "cp.example.com");
        assert!(Endpoint::check_virtual_host("cp.example.com").is_ok());
        assert!(Endpoint::check_virtual_host("cp.example.com:8443").is_ok());
        assert!(Endpoint::check_virtual_host("cp example").is_err());
        assert!(Endpoint::check_virtual_host("cp\r\nX: y").is_err());
        let e = Endpoint::parse("https://cp.example").unwrap_err();
        assert!(e.contains("TLS-terminating proxy"), "{e}");
        for bad in ["ftp://x", "http://", "http://u@h", "http://h:x", "http://h:70000", "http://h/p?q", "http://h p"] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    fn whole(raw: &str) -> Response {
        let (r, used) = parse_response(raw.as_bytes(), false, false).unwrap().unwrap();
        assert_eq!(used, raw.len());
        r
    }

    #[test]
    fn content_length_chunked_and_close_delimited() {
        let r = whole("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nContent-Length: 11\r\n\r\n{\"a\":\"ok\"}\n");
        assert_eq!((r.status, r.keep_alive), (200, true));
        assert_eq!(r.json().unwrap()["a"], "ok");
        let r = whole("HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n");
        assert_eq!((r.status, r.text().as_str()), (404, "hello world"));
        let raw = "HTTP/1.0 200 OK\r\n\r\nuntil close";
        assert_eq!(parse_response(raw.as_bytes(), false, false), Ok(None));
        let (r, _) = parse_response(raw.as_bytes(), true, false).unwrap().unwrap();
        assert_eq!((r.text().as_str(), r.keep_alive), ("until close", false));
        let r = whole("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        assert_eq!((r.status, r.keep_alive), (204, false));
    }

    #[test]
    fn partial_and_broken_responses() {
        let full = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd";
        for cut in 0..full.len() {
            assert_eq!(parse_response(&full.as_bytes()[..cut], false, false), Ok(None), "cut at {cut}");
            if cut > 0 {
                assert!(parse_response(&full.as_bytes()[..cut], true, false).is_err(), "eof at {cut}");
            }
        }
        assert!(parse_response(b"SIP/2.0 200 OK\r\n\r\n", false, false).is_err());
        assert!(parse_response(b"HTTP/1.1 2000 OK\r\n\r\n", false, false).is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false, false).is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", false, false).is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY", false, false).is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n", false, false).is_err());
        assert!(parse_response(&[b'x'; MAX_HEAD + 10], false, false).is_err());
    }
}
