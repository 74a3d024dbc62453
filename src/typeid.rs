//! TypeIDs: `prefix_` + 26 chars of lowercase Crockford base32 of a UUIDv7 (jetify typeid spec).
//! OWNER: helper "sip-core". Interface below is fixed; fill in the bodies.
//!
//! Spec (v0.3): the prefix is 0–63 characters of `a-z` and `_`, not starting or
//! ending with `_`; an empty prefix means no separator. The suffix is exactly 26
//! characters of the alphabet below, the first one at most `7` (128 bits in 130).
//! Like the spec's reference decoders, [`parse`] accepts any UUID in the suffix
//! (not only version 7); [`new`] always produces UUIDv7.

/// Crockford base32, lowercase, as used by TypeID.
pub const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// Length of the base32 suffix.
pub const SUFFIX_LEN: usize = 26;
/// Longest allowed prefix.
pub const MAX_PREFIX_LEN: usize = 63;

/// Whether `prefix` is a valid TypeID prefix (the empty prefix is valid).
pub fn is_valid_prefix(prefix: &str) -> bool {
    let b = prefix.as_bytes();
    b.len() <= MAX_PREFIX_LEN
        && b.iter().all(|&c| c.is_ascii_lowercase() || c == b'_')
        && b.first() != Some(&b'_')
        && b.last() != Some(&b'_')
}

/// UUIDv7 bytes: 48-bit big-endian ms timestamp (`unix_ms` is taken modulo 2^48),
/// version 7, variant `10`, and the 74 remaining bits from `random`.
pub fn uuid_v7(unix_ms: u64, random: [u8; 10]) -> [u8; 16] {
    let mut u = [0u8; 16];
    u[..6].copy_from_slice(&unix_ms.to_be_bytes()[2..]);
    u[6] = 0x70 | (random[0] & 0x0f);
    u[7] = random[1];
    u[8] = 0x80 | (random[2] & 0x3f);
    u[9..].copy_from_slice(&random[3..]);
    u
}

/// Base32 suffix of a UUID (26 chars).
pub fn encode_suffix(uuid: &[u8; 16]) -> String {
    let v = u128::from_be_bytes(*uuid);
    (0..SUFFIX_LEN).map(|i| ALPHABET[((v >> (5 * (SUFFIX_LEN - 1 - i))) & 31) as usize] as char).collect()
}

/// UUID of a base32 suffix, `None` unless it is exactly 26 valid characters with the
/// first one at most `7`. Uppercase is rejected, as the spec requires.
pub fn decode_suffix(suffix: &str) -> Option<[u8; 16]> {
    let b = suffix.as_bytes();
    if b.len() != SUFFIX_LEN || b[0] > b'7' {
        return None;
    }
    let mut v: u128 = 0;
    for &c in b {
        let d = ALPHABET.iter().position(|&a| a == c)? as u128;
        v = (v << 5) | d;
    }
    Some(v.to_be_bytes())
}

/// Build a TypeID, or `None` if `prefix` is not a valid prefix.
pub fn try_new(prefix: &str, unix_ms: u64, random: [u8; 10]) -> Option<String> {
    if !is_valid_prefix(prefix) {
        return None;
    }
    let suffix = encode_suffix(&uuid_v7(unix_ms, random));
    Some(if prefix.is_empty() { suffix } else { format!("{prefix}_{suffix}") })
}

/// Build a TypeID from the time and 10 random bytes (the caller supplies both: no clock, no RNG here).
///
/// Panics if `prefix` is invalid: prefixes are constants of this code base, an invalid
/// one is a programming error (use [`try_new`] for prefixes from outside).
pub fn new(prefix: &str, unix_ms: u64, random: [u8; 10]) -> String {
    match try_new(prefix, unix_ms, random) {
        Some(id) => id,
        None => panic!("invalid TypeID prefix {prefix:?}"),
    }
}

/// Check that `s` is a well-formed TypeID with exactly this prefix.
pub fn is_valid(s: &str, prefix: &str) -> bool {
    matches!(parse(s), Some((p, _)) if p == prefix)
}

/// Split into (prefix, 16 UUID bytes).
pub fn parse(s: &str) -> Option<(String, [u8; 16])> {
    let (prefix, suffix) = match s.rfind('_') {
        Some(i) => {
            let p = &s[..i];
            // `_suffix` (empty prefix with a separator) is invalid.
            if p.is_empty() {
                return None;
            }
            (p, &s[i + 1..])
        }
        None => ("", s),
    };
    if !is_valid_prefix(prefix) {
        return None;
    }
    let uuid = decode_suffix(suffix)?;
    Some((prefix.to_string(), uuid))
}

/// Millisecond timestamp of a UUIDv7-based TypeID (`None` if malformed or not version 7).
pub fn unix_ms(s: &str) -> Option<u64> {
    let (_, u) = parse(s)?;
    if u[6] >> 4 != 7 {
        return None;
    }
    let mut ts = [0u8; 8];
    ts[2..].copy_from_slice(&u[..6]);
    Some(u64::from_be_bytes(ts))
}

/// Canonical hyphenated lowercase UUID text (`8-4-4-4-12`).
pub fn uuid_string(u: &[u8; 16]) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uuid(hex: &str) -> [u8; 16] {
        let h: String = hex.chars().filter(|&c| c != '-').collect();
        let mut u = [0u8; 16];
        for (i, b) in u.iter_mut().enumerate() {
            *b = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap();
        }
        u
    }

    #[test]
    fn spec_vector_encode_and_decode() {
        let u = uuid("0188bac7-4afa-78aa-bc3b-bd1eef28d881");
        assert_eq!(encode_suffix(&u), "01h2xcejqtf2nbrexx3vqjhp41");
        assert_eq!(parse("prefix_01h2xcejqtf2nbrexx3vqjhp41"), Some(("prefix".to_string(), u)));
        assert_eq!(parse("01h2xcejqtf2nbrexx3vqjhp41"), Some((String::new(), u)));
        assert_eq!(uuid_string(&u), "0188bac7-4afa-78aa-bc3b-bd1eef28d881");
        assert_eq!(unix_ms("prefix_01h2xcejqtf2nbrexx3vqjhp41"), Some(0x0188_bac7_4afa));
        // The same UUID rebuilt through new(): ts 0x0188bac74afa, rand_a 0x8aa, variant 0b10 + rest.
        let random = [0x08, 0xaa, 0x3c, 0x3b, 0xbd, 0x1e, 0xef, 0x28, 0xd8, 0x81];
        assert_eq!(uuid_v7(0x0188_bac7_4afa, random), u);
        assert_eq!(new("prefix", 0x0188_bac7_4afa, random), "prefix_01h2xcejqtf2nbrexx3vqjhp41");
    }

    #[test]
    fn spec_boundary_vectors() {
        assert_eq!(parse("00000000000000000000000000"), Some((String::new(), [0u8; 16])));
        assert_eq!(encode_suffix(&[0u8; 16]), "00000000000000000000000000");
        assert_eq!(parse("7zzzzzzzzzzzzzzzzzzzzzzzzz"), Some((String::new(), [0xff; 16])));
        assert_eq!(encode_suffix(&[0xff; 16]), "7zzzzzzzzzzzzzzzzzzzzzzzzz");
        assert_eq!(parse("00000000000000000000000001").unwrap().1[15], 1);
        assert_eq!(parse("0000000000000000000000000z").unwrap().1[15], 31);
        assert_eq!(parse("00000000000000000000000010").unwrap().1[15], 32);
        assert_eq!(parse("pre_fix_00000000000000000000000000"), Some(("pre_fix".to_string(), [0u8; 16])));
    }

    #[test]
    fn new_builds_uuid_v7() {
        let id = new("acc", 1_734_000_000_123, [0xff; 10]);
        let (p, u) = parse(&id).unwrap();
        assert_eq!(p, "acc");
        assert_eq!(id.len(), 3 + 1 + 26);
        assert_eq!(u[6] >> 4, 7, "version nibble");
        assert_eq!(u[8] >> 6, 0b10, "variant bits");
        assert_eq!(u[6] & 0x0f, 0x0f, "rand_a high nibble from random[0]");
        assert_eq!(u[8] & 0x3f, 0x3f);
        assert_eq!(&u[9..], &[0xff; 7]);
        assert_eq!(unix_ms(&id), Some(1_734_000_000_123));
        let zero = parse(&new("acc", 1_734_000_000_123, [0; 10])).unwrap().1;
        assert_eq!((zero[6], zero[7], zero[8]), (0x70, 0, 0x80));
        assert_eq!(&zero[9..], &[0; 7]);
        // Empty prefix: no separator.
        let bare = new("", 5, [1; 10]);
        assert_eq!(bare.len(), 26);
        assert!(!bare.contains('_'));
        // Timestamps wider than 48 bits wrap (year 10889).
        assert_eq!(unix_ms(&new("x", (1 << 48) + 7, [0; 10])), Some(7));
        // First char never exceeds '7'.
        assert!(new("x", u64::MAX, [0xff; 10]).as_bytes()[2] <= b'7');
    }

    #[test]
    fn ordering_follows_time() {
        let mut prev = new("call", 1_700_000_000_000, [0xff; 10]);
        for ms in [1_700_000_000_001u64, 1_700_000_001_000, 1_800_000_000_000, (1 << 48) - 1] {
            // Later ms sorts later even when the earlier id has maximal random bits.
            let next = new("call", ms, [0x00; 10]);
            assert!(next > prev, "{next} should sort after {prev}");
            prev = new("call", ms, [0xff; 10]);
        }
        // Same ms: random bits decide, still consistent with UUID byte order.
        let a = new("call", 42, [0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        let b = new("call", 42, [0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        assert!(a < b);
        assert!(parse(&a).unwrap().1 < parse(&b).unwrap().1);
    }

    #[test]
    fn roundtrip_many() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..500 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut u = [0u8; 16];
            u[..8].copy_from_slice(&x.to_le_bytes());
            u[8..].copy_from_slice(&x.rotate_left(29).to_be_bytes());
            let s = encode_suffix(&u);
            assert_eq!(decode_suffix(&s), Some(u));
            assert_eq!(parse(&format!("ab_c_{s}")), Some(("ab_c".to_string(), u)));
        }
    }

    #[test]
    fn prefix_rules() {
        assert!(is_valid_prefix(""));
        assert!(is_valid_prefix("acc"));
        assert!(is_valid_prefix("pre_fix"));
        assert!(is_valid_prefix(&"a".repeat(63)));
        for bad in ["Acc", "acc1", "a.c", "a c", "a-c", "_acc", "acc_", "\u{e9}t\u{e9}", &"a".repeat(64)] {
            assert!(!is_valid_prefix(bad), "{bad:?}");
            assert_eq!(try_new(bad, 0, [0; 10]), None, "{bad:?}");
        }
    }

    #[test]
    #[should_panic(expected = "invalid TypeID prefix")]
    fn new_panics_on_bad_prefix() {
        new("Bad", 0, [0; 10]);
    }

    #[test]
    fn spec_invalid_vectors() {
        let s = "00000000000000000000000000";
        let cases = [
            format!("PREFIX_{s}"),
            format!("12345_{s}"),
            format!("pre.fix_{s}"),
            format!("pr\u{e9}fix_{s}"),
            format!("  prefix_{s}"),
            format!("{}_{s}", "a".repeat(64)),
            format!("_{s}"),
            "prefix_".to_string(),
            "_".to_string(),
            String::new(),
            "prefix_1".to_string(),
            "prefix_1234567890123456789012345".to_string(),
            "prefix_123456789012345678901234567".to_string(),
            "prefix_1234567890123456789012345 ".to_string(),
            "prefix_01H2XCEJQTF2NBREXX3VQJHP41".to_string(),
            "prefix_123456789-123456789-123456".to_string(),
            "prefix_0ooooooiiiiiiuuuuuuullllll".to_string(),
            "prefix_0i3456789abcdefghjkmnpqrst".to_string(),
            "prefix_8zzzzzzzzzzzzzzzzzzzzzzzzz".to_string(),
            format!("_prefix_{s}"),
            format!("prefix__{s}"),
            format!("prefix_{s}_"),
        ];
        for c in &cases {
            assert_eq!(parse(c), None, "{c:?}");
            assert!(!is_valid(c, "prefix"), "{c:?}");
        }
    }

    #[test]
    fn is_valid_requires_exact_prefix() {
        let id = new("acc", 1_700_000_000_000, [7; 10]);
        assert!(is_valid(&id, "acc"));
        assert!(!is_valid(&id, "ac"));
        assert!(!is_valid(&id, "acct"));
        assert!(!is_valid(&id, ""));
        let suffix = &id[4..];
        assert!(is_valid(suffix, ""));
        assert!(!is_valid(suffix, "acc"));
        assert!(!is_valid(&format!("sub_{id}"), "acc"));
        assert!(is_valid(&format!("sub_{id}"), "sub_acc"));
    }
}
