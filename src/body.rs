//! Request bodies: JSON or `application/x-www-form-urlencoded`, bounded in size,
//! decoded into typed requests. Kamailio's http_client sends either.

use crate::error::{ApiError, ApiResult};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Largest request body any control-plane endpoint accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Parse `bytes` according to `content_type` into `T`.
/// Form fields are all strings; fields named in `T` as numbers accept numeric strings
/// because [`form_to_json`] converts values that look like integers only for keys in `numeric_keys`.
pub fn parse<T: DeserializeOwned>(content_type: Option<&str>, bytes: &[u8], numeric_keys: &[&str]) -> ApiResult<T> {
    let value = parse_value(content_type, bytes, numeric_keys)?;
    serde_json::from_value(value).map_err(|e| ApiError::bad_request(format!("invalid request: {e}")))
}

/// Parse into a JSON value (object) without a target type.
pub fn parse_value(content_type: Option<&str>, bytes: &[u8], numeric_keys: &[&str]) -> ApiResult<Value> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::payload_too_large(format!("request body over {MAX_BODY_BYTES} bytes")));
    }
    let ct = content_type.unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let text = std::str::from_utf8(bytes).map_err(|_| ApiError::bad_request("request body is not UTF-8"))?;
    match ct.as_str() {
        "application/x-www-form-urlencoded" => Ok(form_to_json(text, numeric_keys)?),
        "application/json" | "" | "text/json" => {
            if text.trim().is_empty() {
                return Err(ApiError::bad_request("request body is empty"));
            }
            let v: Value = serde_json::from_str(text)?;
            if !v.is_object() {
                return Err(ApiError::bad_request("request body must be a JSON object"));
            }
            Ok(v)
        }
        other => Err(ApiError::unsupported_media_type(format!(
            "unsupported content type \"{other}\"; send application/json or application/x-www-form-urlencoded"
        ))),
    }
}

/// Decode `a=1&b=x%20y` into a JSON object of strings (numbers for `numeric_keys`).
pub fn form_to_json(text: &str, numeric_keys: &[&str]) -> ApiResult<Value> {
    let mut map = Map::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_decode(k)?;
        let v = percent_decode(v)?;
        if map.contains_key(&k) {
            return Err(ApiError::bad_request(format!("duplicate form field \"{k}\"")));
        }
        let value = if numeric_keys.contains(&k.as_str()) && !v.is_empty() {
            match v.parse::<i64>() {
                Ok(n) => Value::from(n),
                Err(_) => return Err(ApiError::bad_request(format!("form field \"{k}\" must be an integer"))),
            }
        } else {
            Value::String(v)
        };
        map.insert(k, value);
    }
    Ok(Value::Object(map))
}

/// `application/x-www-form-urlencoded` decoding ('+' is a space).
pub fn percent_decode(s: &str) -> ApiResult<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or_else(|| ApiError::bad_request("truncated %-escape in form body"))?;
                let hex = std::str::from_utf8(hex).map_err(|_| ApiError::bad_request("bad %-escape in form body"))?;
                let b = u8::from_str_radix(hex, 16).map_err(|_| ApiError::bad_request("bad %-escape in form body"))?;
                out.push(b);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| ApiError::bad_request("form body is not UTF-8"))
}

/// Percent-encode everything but RFC 3986 unreserved characters (for a path segment or a
/// query value; `percent_decode` reverses it).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-decoding of a URL path segment: unlike form bodies, '+' is a plus (Call-IDs carry it).
pub fn percent_decode_path(s: &str) -> ApiResult<String> {
    percent_decode(&s.replace('+', "%2B")).map_err(|_| ApiError::bad_request("bad %-escape in the URL path"))
}

/// Parse a query string into (key, value) pairs.
pub fn query_pairs(query: &str) -> ApiResult<Vec<(String, String)>> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[test]
    fn percent_encode_round_trips() {
        for s in ["a84bc1@pbx.example", "x y+z/%", "plain-id_1.2~"] {
            let e = percent_encode(s);
            assert!(e.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)), "{e}");
            assert_eq!(percent_decode(&e).unwrap(), s);
        }
    }

    #[derive(Deserialize, Debug)]
    struct R {
        a: String,
        n: Option<i64>,
    }

    #[test]
    fn json_and_form_decode_to_the_same_request() {
        let j: R = parse(Some("application/json"), br#"{"a":"x y","n":5}"#, &["n"]).unwrap();
        let f: R = parse(Some("application/x-www-form-urlencoded; charset=utf-8"), b"a=x+y&n=5", &["n"]).unwrap();
        assert_eq!((j.a.as_str(), j.n), ("x y", Some(5)));
        assert_eq!((f.a.as_str(), f.n), ("x y", Some(5)));
    }

    #[test]
    fn bad_bodies_are_4xx() {
        assert_eq!(parse_value(Some("application/json"), b"[1]", &[]).unwrap_err().status, 400);
        assert_eq!(parse_value(Some("application/json"), b"", &[]).unwrap_err().status, 400);
        assert_eq!(parse_value(Some("application/json"), b"{", &[]).unwrap_err().status, 400);
        assert_eq!(parse_value(Some("text/xml"), b"<a/>", &[]).unwrap_err().status, 415);
        assert_eq!(parse_value(Some("application/x-www-form-urlencoded"), b"a=%zz", &[]).unwrap_err().status, 400);
        assert_eq!(parse_value(Some("application/x-www-form-urlencoded"), b"a=%4", &[]).unwrap_err().status, 400);
        assert_eq!(parse_value(Some("application/x-www-form-urlencoded"), b"a=1&a=2", &[]).unwrap_err().status, 400);
        assert_eq!(parse_value(Some("application/x-www-form-urlencoded"), b"n=abc", &["n"]).unwrap_err().status, 400);
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(parse_value(Some("application/json"), &big, &[]).unwrap_err().status, 413);
        assert_eq!(parse_value(Some("application/json"), &[0xff, 0xfe], &[]).unwrap_err().status, 400);
    }

    #[test]
    fn paths_keep_plus_signs() {
        assert_eq!(percent_decode_path("a+b%40pbx").unwrap(), "a+b@pbx");
        assert_eq!(percent_decode_path("%zz").unwrap_err().message, "bad %-escape in the URL path");
    }

    #[test]
    fn form_keeps_percent_encoded_specials() {
        let v = form_to_json("authorization=Digest%20username%3D%22a%22%2C%20nc%3D00000001", &[]).unwrap();
        assert_eq!(v["authorization"], "Digest username=\"a\", nc=00000001");
    }
}
