//! Digest header parsing and response computation (RFC 2617, RFC 7616, RFC 8760).
//! OWNER: helper "sip-core". Interface below is fixed; fill in the bodies.
//!
//! Scope: algorithms MD5 and SHA-256, qop absent (RFC 2069 style) or `auth`.
//! `-sess` algorithms, `auth-int`, `userhash=true` and the extended `username*`
//! notation are refused as [`ParseError::Unsupported`].

use md5::Md5;
use sha2::{Digest as _, Sha256};

/// Largest header value accepted by [`parse_credentials`], in bytes.
pub const MAX_HEADER_LEN: usize = 4096;

/// Hash algorithm of a digest exchange. `-sess` variants are not supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    /// "MD5" / "SHA-256" (case-insensitive). Absent algorithm means MD5 (caller decides).
    pub fn parse(s: &str) -> Option<Algorithm> {
        if s.eq_ignore_ascii_case("MD5") {
            Some(Algorithm::Md5)
        } else if s.eq_ignore_ascii_case("SHA-256") {
            Some(Algorithm::Sha256)
        } else {
            None
        }
    }
    /// Canonical token: "MD5" or "SHA-256".
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }
    /// Length of a hex digest of this algorithm (32 for MD5, 64 for SHA-256).
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Md5 => 32,
            Algorithm::Sha256 => 64,
        }
    }
    /// Lowercase hex digest of `data`.
    pub fn hash_hex(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 => to_hex(&Md5::digest(data)),
            Algorithm::Sha256 => to_hex(&Sha256::digest(data)),
        }
    }
}

/// Parsed `Authorization` / `Proxy-Authorization` Digest credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Algorithm,
    pub cnonce: Option<String>,
    pub opaque: Option<String>,
    /// The qop the client chose ("auth"); `None` for RFC 2069-style.
    pub qop: Option<String>,
    /// nc exactly as sent (8 hex digits), needed to recompute the response.
    pub nc_raw: Option<String>,
    /// nc parsed as hexadecimal.
    pub nc: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    NotDigest,
    Malformed(&'static str),
    Missing(&'static str),
    Unsupported(&'static str),
    TooLong,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::NotDigest => f.write_str("authorization scheme is not Digest"),
            ParseError::Malformed(what) => write!(f, "malformed digest credentials: {what}"),
            ParseError::Missing(what) => write!(f, "digest credentials lack {what}"),
            ParseError::Unsupported(what) => write!(f, "unsupported digest feature: {what}"),
            ParseError::TooLong => write!(f, "authorization header longer than {MAX_HEADER_LEN} bytes"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Parse a raw header value such as `Digest username="bob", realm="x", ...`.
///
/// The `response` field is returned lowercased (hex digests compare lowercase).
pub fn parse_credentials(header: &str) -> Result<Credentials, ParseError> {
    if header.len() > MAX_HEADER_LEN {
        return Err(ParseError::TooLong);
    }
    let text = unfold(header)?;
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);

    // Scheme.
    let start = i;
    while i < b.len() && is_tchar(b[i]) {
        i += 1;
    }
    if !text[start..i].eq_ignore_ascii_case("Digest") {
        return Err(ParseError::NotDigest);
    }
    if i < b.len() && !is_ws(b[i]) {
        // e.g. `Digest,` or `Digest"x"`: the scheme token is not cleanly delimited.
        return Err(ParseError::NotDigest);
    }

    // auth-params, `#rule`: empty list elements are tolerated.
    let mut params: Vec<(String, String)> = Vec::new();
    loop {
        i = skip_ws(b, i);
        while i < b.len() && b[i] == b',' {
            i = skip_ws(b, i + 1);
        }
        if i >= b.len() {
            break;
        }
        let key_start = i;
        while i < b.len() && is_tchar(b[i]) {
            i += 1;
        }
        if i == key_start {
            return Err(ParseError::Malformed("expected parameter name"));
        }
        let key = text[key_start..i].to_ascii_lowercase();
        i = skip_ws(b, i);
        if i >= b.len() || b[i] != b'=' {
            return Err(ParseError::Malformed("expected '=' after parameter name"));
        }
        i = skip_ws(b, i + 1);
        let value = if i < b.len() && b[i] == b'"' {
            let (v, next) = parse_quoted(b, i)?;
            i = next;
            v
        } else {
            let vs = i;
            while i < b.len() && is_tchar(b[i]) {
                i += 1;
            }
            if i == vs {
                return Err(ParseError::Malformed("expected parameter value"));
            }
            text[vs..i].to_string()
        };
        i = skip_ws(b, i);
        if i < b.len() && b[i] != b',' {
            return Err(ParseError::Malformed("expected ',' between parameters"));
        }
        if params.iter().any(|(k, _)| *k == key) {
            return Err(ParseError::Malformed("duplicate parameter"));
        }
        params.push((key, value));
    }

    let mut take = |name: &str| -> Option<String> { params.iter().position(|(k, _)| k == name).map(|p| params.swap_remove(p).1) };

    if take("username*").is_some() {
        return Err(ParseError::Unsupported("username*"));
    }
    if let Some(uh) = take("userhash") {
        if uh.eq_ignore_ascii_case("true") {
            return Err(ParseError::Unsupported("userhash"));
        }
        if !uh.eq_ignore_ascii_case("false") {
            return Err(ParseError::Malformed("userhash"));
        }
    }

    let algorithm = match take("algorithm") {
        None => Algorithm::Md5,
        Some(a) => match Algorithm::parse(&a) {
            Some(alg) => alg,
            None if a.len() >= 5 && a[a.len() - 5..].eq_ignore_ascii_case("-sess") => {
                return Err(ParseError::Unsupported("-sess algorithm"))
            }
            None => return Err(ParseError::Unsupported("algorithm")),
        },
    };

    let username = required(take("username"), "username")?;
    let realm = required(take("realm"), "realm")?;
    let nonce = required(take("nonce"), "nonce")?;
    let uri = required(take("uri"), "uri")?;
    let response = required(take("response"), "response")?;
    if response.len() != algorithm.hex_len() || !response.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(ParseError::Malformed("response"));
    }
    let response = response.to_ascii_lowercase();
    let opaque = take("opaque");
    let cnonce = take("cnonce");
    let nc_raw = take("nc");
    let qop = take("qop");

    let (qop, cnonce, nc_raw, nc) = match qop {
        None => {
            // RFC 2617 §3.2.2: cnonce and nc MUST NOT be sent without qop.
            if cnonce.is_some() || nc_raw.is_some() {
                return Err(ParseError::Malformed("cnonce/nc without qop"));
            }
            (None, None, None, None)
        }
        Some(q) => {
            if q.eq_ignore_ascii_case("auth-int") {
                return Err(ParseError::Unsupported("qop=auth-int"));
            }
            if !q.eq_ignore_ascii_case("auth") {
                return Err(ParseError::Malformed("qop"));
            }
            let cnonce = cnonce.ok_or(ParseError::Missing("cnonce"))?;
            if cnonce.is_empty() {
                return Err(ParseError::Malformed("cnonce"));
            }
            let nc_raw = nc_raw.ok_or(ParseError::Missing("nc"))?;
            if nc_raw.len() != 8 || !nc_raw.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(ParseError::Malformed("nc"));
            }
            let nc = u32::from_str_radix(&nc_raw, 16).map_err(|_| ParseError::Malformed("nc"))?;
            (Some(q), Some(cnonce), Some(nc_raw), Some(nc))
        }
    };

    Ok(Credentials { username, realm, nonce, uri, response, algorithm, cnonce, opaque, qop, nc_raw, nc })
}

fn required(v: Option<String>, name: &'static str) -> Result<String, ParseError> {
    match v {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(ParseError::Missing(name)),
    }
}

/// Undo header folding (CRLF followed by SP/HTAB becomes one SP) and refuse any
/// other control character (including bare CR or LF).
fn unfold(header: &str) -> Result<String, ParseError> {
    let b = header.as_bytes();
    let mut out = String::with_capacity(header.len());
    let mut last = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\r' && b.get(i + 1) == Some(&b'\n') && matches!(b.get(i + 2), Some(b' ' | b'\t')) {
            out.push_str(&header[last..i]);
            out.push(' ');
            i += 2;
            last = i;
            continue;
        }
        if (c < 0x20 && c != b'\t') || c == 0x7f {
            return Err(ParseError::Malformed("control character"));
        }
        i += 1;
    }
    out.push_str(&header[last..]);
    Ok(out)
}

/// Parse a quoted-string starting at `b[start] == '"'`; returns the unescaped
/// content and the index just after the closing quote.
fn parse_quoted(b: &[u8], start: usize) -> Result<(String, usize), ParseError> {
    let mut out = Vec::new();
    let mut i = start + 1;
    loop {
        match b.get(i) {
            None => return Err(ParseError::Malformed("unterminated quoted string")),
            Some(b'"') => break,
            Some(b'\\') => match b.get(i + 1) {
                None => return Err(ParseError::Malformed("unterminated quoted string")),
                Some(&c) => {
                    out.push(c);
                    i += 2;
                }
            },
            Some(&c) => {
                out.push(c);
                i += 1;
            }
        }
    }
    // Only ASCII bytes were removed (quotes, backslashes): still valid UTF-8.
    let s = String::from_utf8(out).map_err(|_| ParseError::Malformed("invalid UTF-8"))?;
    Ok((s, i + 1))
}

fn is_ws(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_ws(b[i]) {
        i += 1;
    }
    i
}

/// RFC 7230 tchar. Values containing `/`, `@`, `:` etc. must be quoted.
fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~')
}

fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        s.push(HEX[(byte >> 4) as usize] as char);
        s.push(HEX[(byte & 0x0f) as usize] as char);
    }
    s
}

/// HA1 = H(username:realm:password), lowercase hex.
pub fn ha1(alg: Algorithm, username: &str, realm: &str, password: &str) -> String {
    alg.hash_hex(format!("{username}:{realm}:{password}").as_bytes())
}

/// The response the client should have sent, lowercase hex, given the stored HA1.
///
/// HA2 = H(method:uri) with the `uri` from the credentials (what the client hashed),
/// not the Request-URI. A stored HA1 in uppercase hex is lowercased first.
pub fn expected_response(alg: Algorithm, ha1_hex: &str, method: &str, c: &Credentials) -> String {
    let ha1_hex = ha1_hex.to_ascii_lowercase();
    let ha2 = alg.hash_hex(format!("{method}:{}", c.uri).as_bytes());
    let data = match (&c.qop, &c.nc_raw, &c.cnonce) {
        (Some(qop), Some(nc), Some(cnonce)) => format!("{ha1_hex}:{}:{nc}:{cnonce}:{qop}:{ha2}", c.nonce),
        _ => format!("{ha1_hex}:{}:{ha2}", c.nonce),
    };
    alg.hash_hex(data.as_bytes())
}

/// Constant-time check of `c.response` against the expected response.
///
/// False when `ha1_hex` is not a hex digest of `c.algorithm` (e.g. an MD5 HA1
/// offered against SHA-256 credentials).
pub fn verify(ha1_hex: &str, method: &str, c: &Credentials) -> bool {
    if ha1_hex.len() != c.algorithm.hex_len() || !ha1_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let expected = expected_response(c.algorithm, ha1_hex, method, c);
    ct_eq(expected.as_bytes(), c.response.to_ascii_lowercase().as_bytes())
}

/// Constant-time byte comparison (length leak only).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b.iter()) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

/// Which header a challenge goes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeKind {
    /// 401, `WWW-Authenticate` (REGISTER and other requests to a registrar)
    Www,
    /// 407, `Proxy-Authenticate` (INVITE and other requests through the proxy)
    Proxy,
}

impl ChallengeKind {
    /// Header name of the challenge.
    pub fn header_name(self) -> &'static str {
        match self {
            ChallengeKind::Www => "WWW-Authenticate",
            ChallengeKind::Proxy => "Proxy-Authenticate",
        }
    }
    /// SIP status code that carries this challenge (401 / 407).
    pub fn status(self) -> u16 {
        match self {
            ChallengeKind::Www => 401,
            ChallengeKind::Proxy => 407,
        }
    }
}

/// Make `s` safe inside a quoted-string: drops `"`, `\` and every control
/// character (CR, LF, NUL, ...). Realms come from SIP From/To domains, so they
/// are attacker-influenced; dropping is preferred to escaping because clients
/// disagree on unescaping and the realm is echoed back and hashed.
pub fn sanitize_quoted(s: &str) -> String {
    s.chars().filter(|&c| c != '"' && c != '\\' && !c.is_control()).collect()
}

/// One header line (no CRLF), e.g.
/// `WWW-Authenticate: Digest realm="acme.sip.io", nonce="…", opaque="…", algorithm=SHA-256, qop="auth"`
/// plus `, stale=true` when `stale`.
pub fn challenge_line(kind: ChallengeKind, alg: Algorithm, realm: &str, nonce: &str, opaque: &str, stale: bool) -> String {
    let mut line = format!(
        "{}: Digest realm=\"{}\", nonce=\"{}\", opaque=\"{}\", algorithm={}, qop=\"auth\"",
        kind.header_name(),
        sanitize_quoted(realm),
        sanitize_quoted(nonce),
        sanitize_quoted(opaque),
        alg.as_str()
    );
    if stale {
        line.push_str(", stale=true");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    const PW: &str = "Circle of Life";
    const R7616_REALM: &str = "http-auth@example.org";
    const R7616_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const R7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    const R7616_OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";

    fn header_7616(alg: &str, response: &str) -> String {
        format!(
            "Digest username=\"Mufasa\",\r\n       realm=\"{R7616_REALM}\",\r\n       uri=\"/dir/index.html\",\r\n       \
             algorithm={alg},\r\n       nonce=\"{R7616_NONCE}\",\r\n       nc=00000001,\r\n       \
             cnonce=\"{R7616_CNONCE}\",\r\n       qop=auth,\r\n       response=\"{response}\",\r\n       \
             opaque=\"{R7616_OPAQUE}\""
        )
    }

    /// A well-formed SIP header with the given qop/nc; response is recomputed by callers.
    fn sip_creds(extra: &str) -> String {
        format!(
            "Digest username=\"1001\", realm=\"acme.sip.io\", nonce=\"abc\", uri=\"sip:acme.sip.io\", \
             response=\"{}\"{extra}",
            "0".repeat(32)
        )
    }

    fn err(h: &str) -> ParseError {
        parse_credentials(h).expect_err(h)
    }

    // ---------- RFC vectors ----------

    #[test]
    fn rfc2617_mufasa_md5_qop_auth() {
        let h = "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
                 nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", qop=auth, \
                 nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\", \
                 opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
        let c = parse_credentials(h).unwrap();
        assert_eq!(c.algorithm, Algorithm::Md5, "absent algorithm means MD5");
        assert_eq!(c.nc, Some(1));
        assert_eq!(c.opaque.as_deref(), Some("5ccc069c403ebaf9f0171e9517f40e41"));
        // RFC 2617 capitalises "Of" in the password.
        let ha1 = ha1(Algorithm::Md5, "Mufasa", "testrealm@host.com", "Circle Of Life");
        assert_eq!(expected_response(Algorithm::Md5, &ha1, "GET", &c), "6629fae49393a05397450978507c4ef1");
        assert!(verify(&ha1, "GET", &c));
        assert!(!verify(&ha1, "POST", &c));
        let wrong = super::ha1(Algorithm::Md5, "Mufasa", "testrealm@host.com", PW);
        assert!(!verify(&wrong, "GET", &c));
    }

    #[test]
    fn rfc7616_sha256_vector() {
        let resp = "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1";
        let c = parse_credentials(&header_7616("SHA-256", resp)).unwrap();
        assert_eq!(c.algorithm, Algorithm::Sha256);
        assert_eq!(c.username, "Mufasa");
        assert_eq!(c.realm, R7616_REALM);
        assert_eq!(c.nonce, R7616_NONCE);
        assert_eq!(c.cnonce.as_deref(), Some(R7616_CNONCE));
        assert_eq!(c.opaque.as_deref(), Some(R7616_OPAQUE));
        assert_eq!(c.qop.as_deref(), Some("auth"));
        assert_eq!(c.nc_raw.as_deref(), Some("00000001"));
        let ha1 = ha1(Algorithm::Sha256, "Mufasa", R7616_REALM, PW);
        assert_eq!(ha1.len(), 64);
        assert_eq!(expected_response(Algorithm::Sha256, &ha1, "GET", &c), resp);
        assert!(verify(&ha1, "GET", &c));
        // An MD5 HA1 for the same user cannot verify SHA-256 credentials.
        assert!(!verify(&super::ha1(Algorithm::Md5, "Mufasa", R7616_REALM, PW), "GET", &c));
    }

    #[test]
    fn rfc7616_md5_vector() {
        let resp = "8ca523f5e9506fed4657c9700eebdbec";
        let c = parse_credentials(&header_7616("MD5", resp)).unwrap();
        assert_eq!(c.algorithm, Algorithm::Md5);
        let ha1 = ha1(Algorithm::Md5, "Mufasa", R7616_REALM, PW);
        assert_eq!(expected_response(Algorithm::Md5, &ha1, "GET", &c), resp);
        assert!(verify(&ha1, "GET", &c));
        // Uppercase stored HA1 and uppercase client response are normalised.
        assert!(verify(&ha1.to_ascii_uppercase(), "GET", &c));
        let upper = parse_credentials(&header_7616("MD5", &resp.to_ascii_uppercase())).unwrap();
        assert_eq!(upper.response, resp);
        assert!(verify(&ha1, "GET", &upper));
    }

    #[test]
    fn every_response_bit_matters() {
        let resp = "8ca523f5e9506fed4657c9700eebdbec";
        let ha1 = ha1(Algorithm::Md5, "Mufasa", R7616_REALM, PW);
        let mut c = parse_credentials(&header_7616("MD5", resp)).unwrap();
        for (field, val) in [("cnonce", "x"), ("nc", "00000002"), ("nonce", "x"), ("uri", "/x")] {
            let mut m = c.clone();
            match field {
                "cnonce" => m.cnonce = Some(val.into()),
                "nc" => m.nc_raw = Some(val.into()),
                "nonce" => m.nonce = val.into(),
                _ => m.uri = val.into(),
            }
            assert!(!verify(&ha1, "GET", &m), "changing {field} must break the response");
        }
        c.response.replace_range(31..32, "d");
        assert!(!verify(&ha1, "GET", &c));
    }

    // ---------- SIP specifics ----------

    #[test]
    fn sip_register_uses_header_uri_not_request_uri() {
        // Request-URI might be `sip:acme.sip.io;transport=tls` after a proxy rewrite;
        // the client hashed the uri it put in the header.
        let ha1 = ha1(Algorithm::Sha256, "1001", "acme.sip.io", "s3cret");
        let ha2 = Algorithm::Sha256.hash_hex(b"REGISTER:sip:acme.sip.io");
        let resp = Algorithm::Sha256.hash_hex(format!("{ha1}:n0nce:0000000a:c1:auth:{ha2}").as_bytes());
        let h = format!(
            "Digest username=\"1001\",realm=\"acme.sip.io\",nonce=\"n0nce\",uri=\"sip:acme.sip.io\",\
             response=\"{resp}\",algorithm=SHA-256,cnonce=\"c1\",nc=0000000a,qop=auth"
        );
        let c = parse_credentials(&h).unwrap();
        assert_eq!(c.uri, "sip:acme.sip.io");
        assert_eq!(c.nc, Some(10));
        assert!(verify(&ha1, "REGISTER", &c));
        // Had we hashed the Request-URI instead, it would not match.
        let mut other = c.clone();
        other.uri = "sip:acme.sip.io;transport=tls".into();
        assert!(!verify(&ha1, "REGISTER", &other));
        assert!(!verify(&ha1, "INVITE", &c));
    }

    #[test]
    fn rfc2069_style_without_qop() {
        let ha1 = ha1(Algorithm::Md5, "bob", "biloxi.com", "zanzibar");
        let ha2 = Algorithm::Md5.hash_hex(b"INVITE:sip:bob@biloxi.com");
        let resp = Algorithm::Md5.hash_hex(format!("{ha1}:dcd98b:{ha2}").as_bytes());
        let h = format!("digest USERNAME=\"bob\", Realm=\"biloxi.com\", nonce=\"dcd98b\", uri=\"sip:bob@biloxi.com\", response=\"{resp}\"");
        let c = parse_credentials(&h).unwrap();
        assert_eq!((c.qop.clone(), c.nc, c.nc_raw.clone(), c.cnonce.clone()), (None, None, None, None));
        assert!(verify(&ha1, "INVITE", &c));
        assert_eq!(expected_response(Algorithm::Md5, &ha1, "INVITE", &c), resp);
    }

    #[test]
    fn nc_is_hexadecimal() {
        for (raw, want) in
            [("00000001", 1u32), ("00000010", 16), ("000000ff", 255), ("000000FF", 255), ("00000100", 256), ("ffffffff", u32::MAX)]
        {
            let c = parse_credentials(&sip_creds(&format!(", qop=auth, cnonce=\"c\", nc={raw}"))).unwrap();
            assert_eq!(c.nc, Some(want), "nc={raw}");
            assert_eq!(c.nc_raw.as_deref(), Some(raw), "nc_raw kept verbatim");
        }
        // The raw form is what gets hashed: 000000FF and 000000ff give different responses.
        let a = parse_credentials(&sip_creds(", qop=auth, cnonce=\"c\", nc=000000ff")).unwrap();
        let b = parse_credentials(&sip_creds(", qop=auth, cnonce=\"c\", nc=000000FF")).unwrap();
        let ha1 = "0".repeat(32);
        assert_ne!(expected_response(Algorithm::Md5, &ha1, "REGISTER", &a), expected_response(Algorithm::Md5, &ha1, "REGISTER", &b));
    }

    #[test]
    fn nc_must_be_eight_hex_digits() {
        for bad in ["1", "0000001", "000000001", "0000000g", "\"0000 001\"", "-0000001", "+0000001"] {
            assert_eq!(err(&sip_creds(&format!(", qop=auth, cnonce=\"c\", nc={bad}"))), ParseError::Malformed("nc"), "nc={bad}");
        }
        // Quoted nc is tolerated if its content is valid.
        let c = parse_credentials(&sip_creds(", qop=auth, cnonce=\"c\", nc=\"00000002\"")).unwrap();
        assert_eq!(c.nc, Some(2));
    }

    #[test]
    fn escaped_quotes_and_backslashes_in_values() {
        let h = r#"Digest username="al\"ice\\x", realm="a\,b", nonce="n\"", uri="sip:x", response="00000000000000000000000000000000", opaque="o,p=q""#;
        let c = parse_credentials(h).unwrap();
        assert_eq!(c.username, "al\"ice\\x");
        assert_eq!(c.realm, "a,b");
        assert_eq!(c.nonce, "n\"");
        assert_eq!(c.opaque.as_deref(), Some("o,p=q"), "commas and '=' inside quotes are data");
        // The unescaped username is what is hashed.
        let ha1 = ha1(Algorithm::Md5, "al\"ice\\x", "a,b", "pw");
        let resp = expected_response(Algorithm::Md5, &ha1, "REGISTER", &c);
        let h2 = h.replace("00000000000000000000000000000000", &resp);
        assert!(verify(&ha1, "REGISTER", &parse_credentials(&h2).unwrap()));
    }

    #[test]
    fn whitespace_folding_and_case_tolerance() {
        let h = "  DIGEST\tusername = \"u\" ,realm=\"r\"\r\n\t, nonce=\"n\"\r\n , uri=\"sip:r\",\r\n  response=00000000000000000000000000000000 , ALGORITHM=md5,,";
        let c = parse_credentials(h).unwrap();
        assert_eq!((c.username.as_str(), c.realm.as_str(), c.nonce.as_str(), c.uri.as_str()), ("u", "r", "n", "sip:r"));
        assert_eq!(c.algorithm, Algorithm::Md5);
        // Folding inside a quoted string becomes a single space.
        let c = parse_credentials(
            "Digest username=\"a\r\n b\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"00000000000000000000000000000000\"",
        )
        .unwrap();
        assert_eq!(c.username, "a  b");
        // Quoted algorithm and qop are accepted too; unknown params are ignored.
        let c =
            parse_credentials(&sip_creds(", algorithm=\"md5\", qop=\"auth\", cnonce=c, nc=00000001, x-ext=\"1\", userhash=false")).unwrap();
        assert_eq!(c.qop.as_deref(), Some("auth"));
        assert_eq!(c.cnonce.as_deref(), Some("c"));
    }

    // ---------- error branches ----------

    #[test]
    fn not_digest() {
        for h in ["", "   ", "Basic dXNlcjpwYXNz", "Digestusername=\"a\"", "Digest,username=\"a\"", "\"Digest\" username=\"u\"", "Bearer x"]
        {
            assert_eq!(err(h), ParseError::NotDigest, "{h:?}");
        }
    }

    #[test]
    fn too_long() {
        let base = sip_creds(", opaque=\"");
        let pad = MAX_HEADER_LEN - base.len() - 1;
        let exact = format!("{base}{}\"", "a".repeat(pad));
        assert_eq!(exact.len(), MAX_HEADER_LEN);
        assert!(parse_credentials(&exact).is_ok());
        let over = format!("{base}{}\"", "a".repeat(pad + 1));
        assert_eq!(err(&over), ParseError::TooLong);
    }

    #[test]
    fn missing_required_fields() {
        let full = [
            ("username", "username=\"u\""),
            ("realm", "realm=\"r\""),
            ("nonce", "nonce=\"n\""),
            ("uri", "uri=\"sip:r\""),
            ("response", "response=\"00000000000000000000000000000000\""),
        ];
        for (skip, _) in full {
            let h = format!("Digest {}", full.iter().filter(|(k, _)| *k != skip).map(|(_, v)| *v).collect::<Vec<_>>().join(", "));
            assert_eq!(err(&h), ParseError::Missing(skip));
            let empty = format!(
                "Digest {}",
                full.iter().map(|(k, v)| if *k == skip { format!("{k}=\"\"") } else { v.to_string() }).collect::<Vec<_>>().join(", ")
            );
            assert_eq!(err(&empty), ParseError::Missing(skip), "empty {skip}");
        }
        assert_eq!(err("Digest"), ParseError::Missing("username"));
        assert_eq!(err("Digest "), ParseError::Missing("username"));
    }

    #[test]
    fn qop_requires_cnonce_and_nc() {
        assert_eq!(err(&sip_creds(", qop=auth, nc=00000001")), ParseError::Missing("cnonce"));
        assert_eq!(err(&sip_creds(", qop=auth, cnonce=\"c\"")), ParseError::Missing("nc"));
        assert_eq!(err(&sip_creds(", qop=auth, cnonce=\"\", nc=00000001")), ParseError::Malformed("cnonce"));
        assert_eq!(err(&sip_creds(", qop=auth-int, cnonce=\"c\", nc=00000001")), ParseError::Unsupported("qop=auth-int"));
        assert_eq!(err(&sip_creds(", qop=\"auth,auth-int\", cnonce=\"c\", nc=00000001")), ParseError::Malformed("qop"));
        assert_eq!(err(&sip_creds(", qop=token, cnonce=\"c\", nc=00000001")), ParseError::Malformed("qop"));
        assert_eq!(err(&sip_creds(", cnonce=\"c\"")), ParseError::Malformed("cnonce/nc without qop"));
        assert_eq!(err(&sip_creds(", nc=00000001")), ParseError::Malformed("cnonce/nc without qop"));
    }

    #[test]
    fn algorithm_errors() {
        assert_eq!(err(&sip_creds(", algorithm=MD5-sess")), ParseError::Unsupported("-sess algorithm"));
        assert_eq!(err(&sip_creds(", algorithm=sha-256-SESS")), ParseError::Unsupported("-sess algorithm"));
        assert_eq!(err(&sip_creds(", algorithm=SHA-512-256")), ParseError::Unsupported("algorithm"));
        assert_eq!(err(&sip_creds(", algorithm=\"\"")), ParseError::Unsupported("algorithm"));
        assert_eq!(err(&sip_creds(", userhash=true")), ParseError::Unsupported("userhash"));
        assert_eq!(err(&sip_creds(", userhash=maybe")), ParseError::Malformed("userhash"));
        assert_eq!(err(&sip_creds(", username*=UTF-8''J%C3%A4s")), ParseError::Unsupported("username*"));
        assert_eq!(Algorithm::parse("md5"), Some(Algorithm::Md5));
        assert_eq!(Algorithm::parse("Sha-256"), Some(Algorithm::Sha256));
        assert_eq!(Algorithm::parse("SHA256"), None);
        assert_eq!(Algorithm::Md5.as_str(), "MD5");
        assert_eq!(Algorithm::Sha256.as_str(), "SHA-256");
    }

    #[test]
    fn response_must_match_algorithm_length_and_be_hex() {
        let md5 = "0".repeat(32);
        let sha = "0".repeat(64);
        let mk =
            |alg: &str, resp: &str| format!("Digest username=u, realm=r, nonce=n, uri=\"sip:r\", algorithm={alg}, response=\"{resp}\"");
        assert!(parse_credentials(&mk("MD5", &md5)).is_ok());
        assert!(parse_credentials(&mk("SHA-256", &sha)).is_ok());
        assert_eq!(err(&mk("MD5", &sha)), ParseError::Malformed("response"));
        assert_eq!(err(&mk("SHA-256", &md5)), ParseError::Malformed("response"));
        assert_eq!(err(&mk("MD5", &"0".repeat(31))), ParseError::Malformed("response"));
        assert_eq!(err(&mk("MD5", &format!("{}g", "0".repeat(31)))), ParseError::Malformed("response"));
    }

    #[test]
    fn syntax_errors() {
        let ok_tail = "realm=\"r\", nonce=\"n\", uri=\"u\", response=\"00000000000000000000000000000000\"";
        let cases: &[(&str, ParseError)] = &[
            ("Digest username=\"u", ParseError::Malformed("unterminated quoted string")),
            ("Digest username=\"u\\", ParseError::Malformed("unterminated quoted string")),
            ("Digest username=\"u\\\"", ParseError::Malformed("unterminated quoted string")),
            ("Digest username", ParseError::Malformed("expected '=' after parameter name")),
            ("Digest username \"u\"", ParseError::Malformed("expected '=' after parameter name")),
            ("Digest username=", ParseError::Malformed("expected parameter value")),
            ("Digest username=, realm=r", ParseError::Malformed("expected parameter value")),
            ("Digest =u", ParseError::Malformed("expected parameter name")),
            ("Digest username=\"u\" realm=\"r\"", ParseError::Malformed("expected ',' between parameters")),
            ("Digest username=u v, realm=r", ParseError::Malformed("expected ',' between parameters")),
            ("Digest username=\"u\"x, realm=r", ParseError::Malformed("expected ',' between parameters")),
        ];
        for (h, e) in cases {
            assert_eq!(&err(h), e, "{h:?}");
        }
        assert_eq!(err(&format!("Digest username=\"u\", {ok_tail}, Username=\"v\"")), ParseError::Malformed("duplicate parameter"));
        assert_eq!(err(&format!("Digest username=\"u\", {ok_tail}, opaque=a, OPAQUE=a")), ParseError::Malformed("duplicate parameter"));
    }

    #[test]
    fn control_characters_rejected() {
        for bad in ["u\0", "u\n", "u\r", "u\r\nx", "u\x7f", "u\x1b", "u\r\n"] {
            let h =
                format!("Digest username=\"{bad}\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"00000000000000000000000000000000\"");
            assert_eq!(err(&h), ParseError::Malformed("control character"), "{bad:?}");
        }
        // A bare LF followed by a space is not folding either.
        assert_eq!(err("Digest username=\"u\",\n realm=\"r\""), ParseError::Malformed("control character"));
        // HTAB and non-ASCII UTF-8 are fine inside quotes.
        let c = parse_credentials(
            "Digest username=\"j\u{e4}s\tx\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"00000000000000000000000000000000\"",
        )
        .unwrap();
        assert_eq!(c.username, "j\u{e4}s\tx");
    }

    #[test]
    fn parse_error_display() {
        assert_eq!(ParseError::Missing("nonce").to_string(), "digest credentials lack nonce");
        assert!(ParseError::TooLong.to_string().contains("4096"));
    }

    // ---------- ct_eq ----------

    #[test]
    fn ct_eq_semantics() {
        assert!(ct_eq(b"", b""));
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"bbc"));
        assert!(!ct_eq(b"abc", b"abcd"));
        assert!(!ct_eq(b"abcd", b"abc"));
        assert!(!ct_eq(b"", b"a"));
        // Every single-bit difference anywhere is detected.
        let a = [0x5au8; 16];
        for i in 0..16 {
            for bit in 0..8 {
                let mut b = a;
                b[i] ^= 1 << bit;
                assert!(!ct_eq(&a, &b));
            }
        }
    }

    // ---------- challenges ----------

    #[test]
    fn challenge_lines() {
        assert_eq!(
            challenge_line(ChallengeKind::Www, Algorithm::Sha256, "acme.sip.io", "N", "O", false),
            "WWW-Authenticate: Digest realm=\"acme.sip.io\", nonce=\"N\", opaque=\"O\", algorithm=SHA-256, qop=\"auth\""
        );
        assert_eq!(
            challenge_line(ChallengeKind::Proxy, Algorithm::Md5, "acme.sip.io", "N", "O", true),
            "Proxy-Authenticate: Digest realm=\"acme.sip.io\", nonce=\"N\", opaque=\"O\", algorithm=MD5, qop=\"auth\", stale=true"
        );
        assert_eq!(ChallengeKind::Www.status(), 401);
        assert_eq!(ChallengeKind::Proxy.status(), 407);
    }

    #[test]
    fn challenge_realm_cannot_inject() {
        let evil = "evil.com\"\r\nX-Injected: 1\\\u{0}";
        let line = challenge_line(ChallengeKind::Www, Algorithm::Md5, evil, "n\"", "o\r\n", false);
        assert!(!line.contains('\r') && !line.contains('\n') && !line.contains('\\') && !line.contains('\0'));
        assert_eq!(
            line,
            "WWW-Authenticate: Digest realm=\"evil.comX-Injected: 1\", nonce=\"n\", opaque=\"o\", algorithm=MD5, qop=\"auth\""
        );
        // Exactly 8 quotes: every value stays inside its own quoted-string.
        assert_eq!(line.matches('"').count(), 8);
    }

    #[test]
    fn challenge_round_trips_through_a_client() {
        // Play the client: take the challenge values, answer, and parse/verify the answer.
        let nonce = "0000018c5d3a2b10aabbccddeeff00112233445566778899";
        let line = challenge_line(ChallengeKind::Proxy, Algorithm::Sha256, "acme.sip.io", nonce, "op", false);
        let params = line.strip_prefix("Proxy-Authenticate: ").unwrap();
        // The challenge itself uses the same auth-param grammar: reuse the parser via a
        // credentials-shaped header built from it.
        let h = format!(
            "{params}, username=\"1001\", uri=\"sip:2000@acme.sip.io\", cnonce=\"cn\", nc=00000001, response=\"{}\"",
            "0".repeat(64)
        );
        let mut c = parse_credentials(&h).unwrap();
        assert_eq!((c.realm.as_str(), c.nonce.as_str(), c.algorithm), ("acme.sip.io", nonce, Algorithm::Sha256));
        let ha1 = ha1(Algorithm::Sha256, "1001", "acme.sip.io", "pw");
        c.response = expected_response(Algorithm::Sha256, &ha1, "INVITE", &c);
        assert!(verify(&ha1, "INVITE", &c));
    }
}
