//! Service credential tokens: `<credential id>.<secret>`; only SHA-256 of the whole token is stored.

use sha2::{Digest, Sha256};

use crate::env::{new_id, Env};
use crate::error::{usage, Result};

/// Lowercase RFC 4648 base32 without padding (20 bytes → 32 characters).
pub fn base32_lower(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        buffer = (buffer << 8) | b as u32;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Lowercase hex SHA-256 of a string.
pub fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub const MIN_SECRET_LEN: usize = 16;
const MAX_SECRET_LEN: usize = 128;

/// A fresh credential: (id, token).
pub fn generate(env: &mut dyn Env, now_ms: u64) -> Result<(String, String)> {
    let id = new_id(env, "cred", now_ms)?;
    let mut secret = [0u8; 20];
    env.fill_random(&mut secret)?;
    let token = format!("{id}.{}", base32_lower(&secret));
    Ok((id, token))
}

/// Check a supplied token `<cred_ TypeID>.<secret>` and return its id.
pub fn parse_supplied(flag: &str, token: &str) -> Result<String> {
    let Some((id, secret)) = token.split_once('.') else {
        return usage(format!("--{flag} must look like cred_<typeid>.<secret>"));
    };
    if !callplane::typeid::is_valid(id, "cred") {
        return usage(format!(
            "--{flag}: {id:?} is not a credential id (cred_ followed by 26 base32 characters)"
        ));
    }
    let n = secret.len();
    if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&n) {
        return usage(format!("--{flag}: the secret after '.' must be {MIN_SECRET_LEN} to {MAX_SECRET_LEN} characters (got {n})"));
    }
    if !secret
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return usage(format!(
            "--{flag}: the secret may only contain letters, digits, '-' and '_'"
        ));
    }
    Ok(id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::testing::TestEnv;

    #[test]
    fn base32_vectors() {
        // RFC 4648 test vectors, lowercased, unpadded.
        assert_eq!(base32_lower(b""), "");
        assert_eq!(base32_lower(b"f"), "my");
        assert_eq!(base32_lower(b"fo"), "mzxq");
        assert_eq!(base32_lower(b"foo"), "mzxw6");
        assert_eq!(base32_lower(b"foob"), "mzxw6yq");
        assert_eq!(base32_lower(b"fooba"), "mzxw6ytb");
        assert_eq!(base32_lower(b"foobar"), "mzxw6ytboi");
        assert_eq!(base32_lower(&[0u8; 20]), "a".repeat(32));
        assert_eq!(base32_lower(&[0xffu8; 20]), "7".repeat(32));
    }

    #[test]
    fn sha256_vectors() {
        assert_eq!(
            sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn generated_token_shape() {
        let mut env = TestEnv::new();
        let (id, token) = generate(&mut env, 1_767_225_600_000).unwrap();
        assert!(callplane::typeid::is_valid(&id, "cred"));
        let (tid, secret) = token.split_once('.').unwrap();
        assert_eq!(tid, id);
        assert_eq!(secret.len(), 32);
        assert!(secret
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)));
        assert_eq!(parse_supplied("token", &token).unwrap(), id);
    }

    #[test]
    fn supplied_tokens() {
        let id = callplane::typeid::new("cred", 1_767_225_600_000, [1; 10]);
        assert_eq!(
            parse_supplied("token", &format!("{id}.demo-sip-edge-0000000000000000")).unwrap(),
            id
        );
        for bad in [
            id.to_string(),
            format!("{id}."),
            format!("{id}.short"),
            format!("{id}.has space in it 12345"),
            format!("{id}.dots.are.not.allowed.123"),
            format!("{id}.{}", "x".repeat(129)),
            "acc_01jf18ah3jeb5w6dfp27sgjsbt.0123456789abcdef".to_string(),
            "cred_xyz.0123456789abcdef".to_string(),
            ".0123456789abcdef".to_string(),
        ] {
            let e = parse_supplied("token", &bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
        }
    }
}
