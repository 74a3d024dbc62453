//! Media keys, signed media URLs and HTTP Range parsing for `/media/{key}` (R2).
//!
//! Keys are scoped per account: `acc_…/<path>` belongs to that account; `system/<path>` holds
//! platform prompts readable by every account. A media node never chooses keys itself: the flow
//! engine hands it URLs signed for one key, one method and an expiry
//! (`/media/<key>?exp=<unix s>&sig=<hex>`), so a node serving account A cannot read account B's
//! voicemail even though its credential is platform-wide. Pure: time and secret are arguments.

use crate::sip::digest::ct_eq;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 512;
/// Largest upload accepted (a 10-minute 16 kHz 16-bit mono WAV is ~19 MB; the Worker holds the
/// whole body in memory).
pub const MAX_UPLOAD_BYTES: usize = 32 * 1024 * 1024;

/// Content types media may be stored as.
pub const CONTENT_TYPES: &[&str] = &["audio/wav", "audio/x-wav", "audio/wave", "audio/mpeg", "audio/ogg", "audio/opus", "audio/basic", "audio/L16"];

/// Who a key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Account(String),
    System,
}

/// Validate a key and tell who owns it. Keys are `/`-separated segments of
/// `[A-Za-z0-9._-]`, no empty, `.` or `..` segments, at most [`MAX_KEY_LEN`] bytes.
pub fn parse_key(key: &str) -> Result<Owner, String> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(format!("media key must be 1..={MAX_KEY_LEN} bytes"));
    }
    let segments: Vec<&str> = key.split('/').collect();
    if segments.len() < 2 {
        return Err("media key must be <account id or \"system\">/<path>".into());
    }
    for s in &segments {
        if s.is_empty() || *s == "." || *s == ".." {
            return Err("media key has an empty, \".\" or \"..\" segment".into());
        }
        if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
            return Err("media key segments may only contain A-Z a-z 0-9 . _ -".into());
        }
    }
    match segments[0] {
        "system" => Ok(Owner::System),
        acc if crate::typeid::is_valid(acc, "acc") => Ok(Owner::Account(acc.to_string())),
        _ => Err("media key must start with an account id (acc_…) or \"system\"".into()),
    }
}

fn mac(secret: &[u8], method: &str, key: &str, exp_s: u64) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(method.as_bytes());
    m.update(b"\n");
    m.update(key.as_bytes());
    m.update(b"\n");
    m.update(exp_s.to_string().as_bytes());
    m.finalize().into_bytes().to_vec()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The query string that authorizes `method` on `key` until `exp_s` (Unix seconds).
pub fn sign(secret: &[u8], method: &str, key: &str, exp_s: u64) -> String {
    format!("exp={exp_s}&sig={}", hex(&mac(secret, method, key, exp_s)))
}

/// A relative URL for the edge: `/media/<key>?exp=…&sig=…`.
pub fn signed_path(secret: &[u8], method: &str, key: &str, exp_s: u64) -> String {
    format!("/media/{key}?{}", sign(secret, method, key, exp_s))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigCheck {
    Valid,
    Expired,
    Invalid,
}

/// Check a signature (constant-time) for `method` on `key` at `now_s`. HEAD is checked as GET.
pub fn verify(secret: &[u8], method: &str, key: &str, exp: &str, sig: &str, now_s: u64) -> SigCheck {
    let method = if method == "HEAD" { "GET" } else { method };
    let Ok(exp_s) = exp.parse::<u64>() else { return SigCheck::Invalid };
    if sig.len() != 64 || exp.starts_with('0') {
        return SigCheck::Invalid;
    }
    let expected = hex(&mac(secret, method, key, exp_s));
    if !ct_eq(expected.as_bytes(), sig.to_ascii_lowercase().as_bytes()) {
        return SigCheck::Invalid;
    }
    if exp_s < now_s {
        SigCheck::Expired
    } else {
        SigCheck::Valid
    }
}

/// A single byte range, resolved against the object size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub offset: u64,
    pub length: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No Range header, or one we ignore (multiple ranges, other units): serve the whole object.
    Whole,
    Partial(ByteRange),
    /// 416 Range Not Satisfiable.
    Unsatisfiable,
}

/// Parse a `Range` header against an object of `size` bytes (RFC 9110 §14).
pub fn parse_range(header: Option<&str>, size: u64) -> RangeRequest {
    let Some(h) = header.map(str::trim).filter(|h| !h.is_empty()) else { return RangeRequest::Whole };
    let Some(spec) = h.strip_prefix("bytes=") else { return RangeRequest::Whole };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return RangeRequest::Unsatisfiable };
    let num = |s: &str| if !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) && s.len() <= 19 { s.parse::<u64>().ok() } else { None };
    match (a.trim(), b.trim()) {
        ("", suffix) => match num(suffix) {
            Some(0) | None => RangeRequest::Unsatisfiable,
            Some(_) if size == 0 => RangeRequest::Unsatisfiable,
            Some(n) => {
                let length = n.min(size);
                RangeRequest::Partial(ByteRange { offset: size - length, length })
            }
        },
        (start, "") => match num(start) {
            Some(s) if s < size => RangeRequest::Partial(ByteRange { offset: s, length: size - s }),
            _ => RangeRequest::Unsatisfiable,
        },
        (start, end) => match (num(start), num(end)) {
            (Some(s), Some(e)) if s <= e && s < size => RangeRequest::Partial(ByteRange { offset: s, length: e.min(size - 1) - s + 1 }),
            _ => RangeRequest::Unsatisfiable,
        },
    }
}

/// Normalize and check an upload's content type (parameters dropped, case-insensitive).
pub fn content_type(header: Option<&str>) -> Result<String, String> {
    let ct = header.unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    CONTENT_TYPES
        .iter()
        .find(|c| c.eq_ignore_ascii_case(&ct))
        .map(|c| c.to_string())
        .ok_or_else(|| format!("content type \"{ct}\" is not accepted; use one of {}", CONTENT_TYPES.join(", ")))
}

/// Does an `If-None-Match` header match this entity tag (quoted form, or `*`)?
pub fn if_none_match(header: Option<&str>, http_etag: &str) -> bool {
    header.is_some_and(|h| h.split(',').map(|t| t.trim().trim_start_matches("W/")).any(|t| t == "*" || t == http_etag))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACC: &str = "acc_01jf18ah3jeb5w6dfp27sgjsbt";

    #[test]
    fn keys_are_scoped_and_safe() {
        assert_eq!(parse_key(&format!("{ACC}/voicemail/x.wav")), Ok(Owner::Account(ACC.into())));
        assert_eq!(parse_key("system/prompts/en/welcome.wav"), Ok(Owner::System));
        for bad in ["", "x.wav", "acc_bogus/x.wav", &format!("{ACC}/../other/x"), &format!("{ACC}//x"), &format!("{ACC}/a b"), &format!("{ACC}/a%2e"), "system/./x", &format!("{ACC}/{}", "a".repeat(600))] {
            assert!(parse_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn signatures_bind_method_key_and_expiry() {
        let s = b"media-secret-0123456789";
        let key = format!("{ACC}/vm/1.wav");
        let q = sign(s, "GET", &key, 1000);
        let (exp, sig) = q.strip_prefix("exp=").unwrap().split_once("&sig=").unwrap();
        assert_eq!(verify(s, "GET", &key, exp, sig, 999), SigCheck::Valid);
        assert_eq!(verify(s, "HEAD", &key, exp, sig, 999), SigCheck::Valid);
        assert_eq!(verify(s, "GET", &key, exp, sig, 1001), SigCheck::Expired);
        assert_eq!(verify(s, "PUT", &key, exp, sig, 999), SigCheck::Invalid);
        assert_eq!(verify(s, "GET", &format!("{ACC}/vm/2.wav"), exp, sig, 999), SigCheck::Invalid);
        assert_eq!(verify(s, "GET", &key, "1001", sig, 999), SigCheck::Invalid);
        assert_eq!(verify(b"other-secret-0123456789", "GET", &key, exp, sig, 999), SigCheck::Invalid);
        assert_eq!(verify(s, "GET", &key, "x", sig, 999), SigCheck::Invalid);
        assert_eq!(verify(s, "GET", &key, "01000", sig, 999), SigCheck::Invalid);
        assert_eq!(verify(s, "GET", &key, exp, &sig[..10], 999), SigCheck::Invalid);
        assert!(signed_path(s, "PUT", &key, 5).starts_with(&format!("/media/{key}?exp=5&sig=")));
    }

    #[test]
    fn ranges() {
        use RangeRequest::*;
        assert_eq!(parse_range(None, 100), Whole);
        assert_eq!(parse_range(Some("bytes=0-9"), 100), Partial(ByteRange { offset: 0, length: 10 }));
        assert_eq!(parse_range(Some("bytes=90-"), 100), Partial(ByteRange { offset: 90, length: 10 }));
        assert_eq!(parse_range(Some("bytes=-10"), 100), Partial(ByteRange { offset: 90, length: 10 }));
        assert_eq!(parse_range(Some("bytes=-500"), 100), Partial(ByteRange { offset: 0, length: 100 }));
        assert_eq!(parse_range(Some("bytes=50-5000"), 100), Partial(ByteRange { offset: 50, length: 50 }));
        assert_eq!(parse_range(Some("bytes=100-"), 100), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=9-3"), 100), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 100), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=x-1"), 100), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), Whole);
        assert_eq!(parse_range(Some("items=0-1"), 100), Whole);
        assert_eq!(parse_range(Some("bytes=0-0"), 0), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=99999999999999999999-"), 100), Unsatisfiable);
    }

    #[test]
    fn content_types_and_etags() {
        assert_eq!(content_type(Some("audio/WAV; rate=8000")), Ok("audio/wav".into()));
        assert!(content_type(Some("text/html")).is_err());
        assert!(content_type(None).is_err());
        assert!(if_none_match(Some("\"abc\""), "\"abc\""));
        assert!(if_none_match(Some("W/\"abc\", \"x\""), "\"abc\""));
        assert!(if_none_match(Some("*"), "\"abc\""));
        assert!(!if_none_match(Some("\"abd\""), "\"abc\""));
        assert!(!if_none_match(None, "\"abc\""));
    }
}
