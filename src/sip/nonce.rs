//! Stateless nonces: timestamp + salt + HMAC-SHA256, nothing stored.
//!
//! A nonce is 64 lowercase hex characters: the 8-byte big-endian issue time in
//! milliseconds, 8 random bytes (the caller's salt: two challenges in the same
//! millisecond must not share a nonce, or their nonce counts would collide), then
//! the first 16 bytes of HMAC-SHA256(secret, ts || salt || realm).
//! The realm is compared byte-exactly: callers must normalise it (e.g. lowercase
//! the domain) the same way when issuing and checking.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Length of a nonce in hex characters.
pub const NONCE_LEN: usize = 64;
/// How far in the future (relative to `now_ms`) a nonce's timestamp may be, to
/// tolerate clock skew between Worker isolates.
pub const MAX_FUTURE_SKEW_MS: u64 = 30_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceState {
    /// Issued by us and younger than the lifetime.
    Fresh,
    /// Issued by us but older than the lifetime: challenge again with stale=true.
    Stale,
    /// Not ours (bad MAC, bad encoding, issued in the future beyond skew).
    Invalid,
}

fn mac16(secret: &[u8], realm: &str, ts: [u8; 8], salt: [u8; 8]) -> [u8; 16] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(&ts);
    mac.update(&salt);
    mac.update(realm.as_bytes());
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

/// Decode a nonce into (timestamp bytes, salt, MAC) if it has our exact shape
/// (64 lowercase hex characters).
fn decode(nonce: &str) -> Option<([u8; 8], [u8; 8], [u8; 16])> {
    let b = nonce.as_bytes();
    if b.len() != NONCE_LEN {
        return None;
    }
    let mut raw = [0u8; NONCE_LEN / 2];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        raw[i] = (lower_hex_val(pair[0])? << 4) | lower_hex_val(pair[1])?;
    }
    let mut ts = [0u8; 8];
    ts.copy_from_slice(&raw[..8]);
    let mut salt = [0u8; 8];
    salt.copy_from_slice(&raw[8..16]);
    let mut mac = [0u8; 16];
    mac.copy_from_slice(&raw[16..]);
    Some((ts, salt, mac))
}

fn lower_hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Issue a nonce at `now_ms` bound to `realm`, keyed by `secret`, made unique by `salt`
/// (8 random bytes from the caller). Shape: lowercase hex of
/// (8-byte big-endian ms timestamp || salt || first 16 bytes of HMAC-SHA256(secret, ts || salt || realm)).
pub fn issue(secret: &[u8], realm: &str, now_ms: u64, salt: [u8; 8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let ts = now_ms.to_be_bytes();
    let mac = mac16(secret, realm, ts, salt);
    let mut s = String::with_capacity(NONCE_LEN);
    for byte in ts.iter().chain(salt.iter()).chain(mac.iter()) {
        s.push(HEX[(byte >> 4) as usize] as char);
        s.push(HEX[(byte & 0x0f) as usize] as char);
    }
    s
}

/// Check a nonce for `realm` at `now_ms` with lifetime `max_age_ms` (MAC compared in constant time).
///
/// A nonce exactly `max_age_ms` old is still Fresh; one millisecond later it is Stale.
/// Uppercase hex is Invalid (we only issue lowercase, and one nonce must have one spelling).
pub fn check(secret: &[u8], realm: &str, nonce: &str, now_ms: u64, max_age_ms: u64) -> NonceState {
    let Some((ts, salt, mac)) = decode(nonce) else {
        return NonceState::Invalid;
    };
    let expected = mac16(secret, realm, ts, salt);
    if !crate::sip::digest::ct_eq(&mac, &expected) {
        return NonceState::Invalid;
    }
    let issued = u64::from_be_bytes(ts);
    if issued > now_ms.saturating_add(MAX_FUTURE_SKEW_MS) {
        return NonceState::Invalid;
    }
    if now_ms.saturating_sub(issued) > max_age_ms {
        NonceState::Stale
    } else {
        NonceState::Fresh
    }
}

/// The issue time embedded in a nonce we issued (None if malformed). Used to expire nc tracking.
///
/// This does not authenticate the nonce: call [`check`] first.
pub fn issued_at(nonce: &str) -> Option<u64> {
    decode(nonce).map(|(ts, _, _)| u64::from_be_bytes(ts))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const REALM: &str = "acme.sip.io";
    const T0: u64 = 1_700_000_000_000;
    const LIFE: u64 = 300_000;
    const SALT: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

    #[test]
    fn shape_and_determinism() {
        let n = issue(SECRET, REALM, T0, SALT);
        assert_eq!(n.len(), NONCE_LEN);
        assert!(n.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        assert!(n.starts_with(&format!("{T0:016x}")), "timestamp is the big-endian prefix: {n}");
        assert_eq!(issue(SECRET, REALM, T0, SALT), n, "deterministic");
        assert_ne!(issue(SECRET, REALM, T0 + 1, SALT), n);
        assert_eq!(issued_at(&n), Some(T0));
    }

    #[test]
    fn mac_is_truncated_hmac_sha256_of_ts_salt_and_realm() {
        // Independent recomputation through the one-shot API.
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(SECRET).unwrap();
        let mut msg = T0.to_be_bytes().to_vec();
        msg.extend_from_slice(&SALT);
        msg.extend_from_slice(REALM.as_bytes());
        m.update(&msg);
        let full = m.finalize().into_bytes();
        let hex: String = full[..16].iter().map(|b| format!("{b:02x}")).collect();
        let n = issue(SECRET, REALM, T0, SALT);
        assert_eq!(&n[16..32], "0102030405060708", "the salt follows the timestamp");
        assert_eq!(&n[32..], hex);
    }

    #[test]
    fn same_millisecond_different_salt_gives_different_valid_nonces() {
        let a = issue(SECRET, REALM, T0, SALT);
        let b = issue(SECRET, REALM, T0, [9; 8]);
        assert_ne!(a, b);
        assert_eq!(check(SECRET, REALM, &a, T0, LIFE), NonceState::Fresh);
        assert_eq!(check(SECRET, REALM, &b, T0, LIFE), NonceState::Fresh);
        // The salt is authenticated: swapping it breaks the MAC.
        let forged = format!("{}{}{}", &a[..16], &b[16..32], &a[32..]);
        assert_eq!(check(SECRET, REALM, &forged, T0, LIFE), NonceState::Invalid);
    }

    #[test]
    fn fresh_and_boundaries() {
        let n = issue(SECRET, REALM, T0, SALT);
        assert_eq!(check(SECRET, REALM, &n, T0, LIFE), NonceState::Fresh);
        assert_eq!(check(SECRET, REALM, &n, T0 + 1, LIFE), NonceState::Fresh);
        assert_eq!(check(SECRET, REALM, &n, T0 + LIFE, LIFE), NonceState::Fresh, "exactly at expiry");
        assert_eq!(check(SECRET, REALM, &n, T0 + LIFE + 1, LIFE), NonceState::Stale, "1 ms past expiry");
        assert_eq!(check(SECRET, REALM, &n, T0 + 10 * LIFE, LIFE), NonceState::Stale);
        assert_eq!(check(SECRET, REALM, &n, u64::MAX, LIFE), NonceState::Stale);
    }

    #[test]
    fn future_skew() {
        let n = issue(SECRET, REALM, T0 + MAX_FUTURE_SKEW_MS, SALT);
        assert_eq!(check(SECRET, REALM, &n, T0, LIFE), NonceState::Fresh, "30 s ahead is tolerated");
        let n = issue(SECRET, REALM, T0 + MAX_FUTURE_SKEW_MS + 1, SALT);
        assert_eq!(check(SECRET, REALM, &n, T0, LIFE), NonceState::Invalid, "beyond skew");
        let n = issue(SECRET, REALM, u64::MAX, SALT);
        assert_eq!(check(SECRET, REALM, &n, T0, LIFE), NonceState::Invalid);
        // now near u64::MAX must not overflow.
        let n = issue(SECRET, REALM, u64::MAX, SALT);
        assert_eq!(check(SECRET, REALM, &n, u64::MAX - 1, LIFE), NonceState::Fresh);
    }

    #[test]
    fn tampering_is_invalid() {
        let n = issue(SECRET, REALM, T0, SALT);
        // Flip each character in turn (timestamp and MAC part alike).
        for i in 0..n.len() {
            let mut b = n.clone().into_bytes();
            b[i] = if b[i] == b'0' { b'1' } else { b'0' };
            let t = String::from_utf8(b).unwrap();
            assert_eq!(check(SECRET, REALM, &t, T0, LIFE), NonceState::Invalid, "flipped char {i}");
        }
        // Re-dating the nonce (to make it look fresh) breaks the MAC.
        let later = format!("{:016x}{}", T0 + LIFE * 2, &n[16..]);
        assert_eq!(check(SECRET, REALM, &later, T0 + LIFE * 2, LIFE), NonceState::Invalid);
    }

    #[test]
    fn other_realm_or_secret_is_invalid() {
        let n = issue(SECRET, REALM, T0, SALT);
        assert_eq!(check(SECRET, "evil.sip.io", &n, T0, LIFE), NonceState::Invalid);
        assert_eq!(check(SECRET, "ACME.sip.io", &n, T0, LIFE), NonceState::Invalid, "realm is byte-exact");
        assert_eq!(check(SECRET, "", &n, T0, LIFE), NonceState::Invalid);
        assert_eq!(check(b"another secret", REALM, &n, T0, LIFE), NonceState::Invalid);
        assert_eq!(check(b"", REALM, &n, T0, LIFE), NonceState::Invalid);
        // And the other secret's own nonce is fine for it, not for us.
        let m = issue(b"another secret", REALM, T0, SALT);
        assert_eq!(check(b"another secret", REALM, &m, T0, LIFE), NonceState::Fresh);
        assert_eq!(check(SECRET, REALM, &m, T0, LIFE), NonceState::Invalid);
    }

    #[test]
    fn garbage_is_invalid() {
        let n = issue(SECRET, REALM, T0, SALT);
        let upper = n.to_ascii_uppercase();
        let cases = [
            String::new(),
            "x".into(),
            n[..47].to_string(),
            format!("{n}0"),
            format!("{}g", &n[..47]),
            format!("{} ", &n[..47]),
            upper.clone(),
            "\u{e9}".repeat(24), // 48 bytes, not hex
            "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
        ];
        for c in &cases {
            assert_eq!(check(SECRET, REALM, c, T0, LIFE), NonceState::Invalid, "{c:?}");
            assert_eq!(issued_at(c), None, "{c:?}");
        }
        assert_ne!(upper, n, "the uppercase case must actually differ");
    }
}
