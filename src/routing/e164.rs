//! E.164 normalization, number classification and trunk formatting.
//! OWNER: helper "routing-core". Interface below is fixed; fill in the bodies.
//!
//! Conventions (all tables below are deliberately small and documented; an account can add
//! premium prefixes through [`DialPlan::premium_prefixes`]):
//! - International access prefix (IDD), see [`idd_prefix`]: "011" for NANP (+1), "0011" for
//!   Australia (+61), "010" for Japan (+81), "810" for Russia/Kazakhstan (+7), "00" elsewhere.
//! - National trunk prefix, see [`trunk_prefix`]: "1" for NANP, "8" for +7, "06" for Hungary,
//!   none for countries whose numbers are dialled nationally without one (Italy, Spain,
//!   Portugal, Denmark, Norway, Greece, Luxembourg, Mexico, …), "0" elsewhere.
//! - NANP: 10-digit national numbers and 11-digit "1"+10 digits are accepted; the area code
//!   must start with 2-9. 7-digit local dialling is rejected (we do not know the caller's
//!   area code).
//! - A valid E.164 number has 7 to 15 digits after '+', the first one not 0; +1 numbers have
//!   exactly 10 digits after the 1; for the countries of [`EMERGENCY_CODES`] that use a trunk
//!   prefix, the national number may not start with 0 ("+44 020…" is rejected, "+44 (0)20…"
//!   is understood).
//! - [`NumberFormat::National`]: NANP → the 10-digit NSN ("2125550123"), elsewhere trunk
//!   prefix + NSN ("02079460000"); a number outside the plan's country falls back to the
//!   plan's IDD form ("011442079460000" from NANP, "0012125550123" from the UK); a plan
//!   without a country code gets the E.164 form.

use serde::{Deserialize, Serialize};

/// An account's dialing context (from the `accounts` row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialPlan {
    /// Country calling code without '+', e.g. "1" (NANP), "44", "33".
    pub country_code: String,
    /// Extra premium-rate E.164 prefixes (with '+') on top of the built-in ones for well-known countries.
    #[serde(default)]
    pub premium_prefixes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumberClass {
    /// Emergency short code (911, 112, 999, …) — never blocked by policy.
    Emergency,
    Domestic,
    International,
    Premium,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumberFormat {
    /// "+15551234567"
    E164,
    /// "15551234567"
    E164NoPlus,
    /// national significant number with the national prefix: "5551234567" for NANP, "02079460000" for UK
    National,
}

/// Shortest accepted E.164 number, digits after '+' (country code included).
pub const E164_MIN_DIGITS: usize = 7;
/// Longest E.164 number allowed by ITU-T E.164, digits after '+'.
pub const E164_MAX_DIGITS: usize = 15;

/// Emergency short codes dialled by users, per country calling code. "112" is recognised
/// in every plan (GSM standard, and routed to the local PSAP in most networks).
pub const EMERGENCY_CODES: &[(&str, &[&str])] = &[
    ("1", &["911"]),                              // NANP (US, Canada, Caribbean)
    ("7", &["101", "102", "103", "104"]),         // Russia / Kazakhstan
    ("27", &["10111", "10177"]),                  // South Africa
    ("30", &["100", "166", "199"]),               // Greece
    ("31", &[]),                                  // Netherlands (112 only)
    ("32", &["100", "101"]),                      // Belgium
    ("33", &["15", "17", "18", "114"]),           // France (SAMU, police, pompiers, deaf relay)
    ("34", &["091", "092", "061", "080"]),        // Spain
    ("39", &["113", "115", "118"]),               // Italy
    ("41", &["117", "118", "144"]),               // Switzerland
    ("43", &["122", "133", "144"]),               // Austria
    ("44", &["999"]),                             // United Kingdom
    ("45", &[]),                                  // Denmark (112 only)
    ("46", &[]),                                  // Sweden (112 only)
    ("47", &["110", "113"]),                      // Norway (+ 112 police)
    ("49", &["110"]),                             // Germany (police; 112 fire/ambulance)
    ("52", &["911"]),                             // Mexico
    ("55", &["190", "192", "193"]),               // Brazil
    ("61", &["000", "106"]),                      // Australia (000, TTY relay 106)
    ("64", &["111"]),                             // New Zealand
    ("81", &["110", "118", "119"]),               // Japan
    ("86", &["110", "119", "120", "122"]),        // China
    ("91", &["100", "101", "102", "108"]),        // India
    ("353", &["999"]),                            // Ireland
];

/// Built-in premium-rate / high-cost E.164 prefixes. Applied in every plan (a +1900 number is
/// premium for a UK account too). NANP numbers whose exchange (digits 5-7 after +1) is 976
/// are premium as well (the historic "976" pay-per-call exchanges).
pub const PREMIUM_PREFIXES: &[&str] = &[
    "+1900",  // NANP pay-per-call
    "+1976",  // NANP 976 (kept for tables that list it as an NPA; see also the 976 exchange rule)
    "+449",   // UK 09 premium rate
    "+4470",  // UK 070 "personal numbers" (heavily abused, mobile-like prices)
    "+44871", // UK 0871/0872/0873 service charge
    "+44872",
    "+44873",
    "+3389",  // France 089 premium SVA
    "+49900", // Germany 0900 premium
    "+49137", // Germany 0137 mass calling / televoting
    "+61190", // Australia 190 premium
    "+979",   // ITU International Premium Rate Service
    "+881",   // Global mobile satellite systems (Iridium, Inmarsat, …)
    "+882",   // International networks
    "+883",   // International networks
];

/// Countries whose national numbers are dialled without a trunk prefix (the leading digit,
/// if any, is part of the national significant number — e.g. Italy's "06…").
const NO_TRUNK_PREFIX: &[&str] = &["30", "34", "39", "45", "47", "52", "298", "299", "351", "352", "376", "378", "420"];

/// The international access prefix (IDD) callers of this country dial before a country code.
pub fn idd_prefix(country_code: &str) -> &'static str {
    match country_code {
        "1" => "011",
        "7" => "810",
        "61" => "0011",
        "81" => "010",
        _ => "00",
    }
}

/// The national trunk prefix callers of this country dial before a national number
/// ("" when there is none).
pub fn trunk_prefix(country_code: &str) -> &'static str {
    match country_code {
        "1" => "1",
        "7" => "8",
        "36" => "06",
        cc if NO_TRUNK_PREFIX.contains(&cc) => "",
        _ => "0",
    }
}

/// The user part of a `sip:`/`sips:`/`tel:` URI or a bare user ("sip:+1555@x;user=phone" → "+1555").
///
/// Accepts name-addr forms (`"Alice" <sip:+1555@x>;tag=1`), strips URI/user parameters,
/// headers, a password and, for a SIP URI without '@', the port (the host part is then
/// returned: "sip:1000" → "1000").
pub fn user_part(uri_or_user: &str) -> &str {
    let mut s = uri_or_user.trim();
    // name-addr: take what is inside <...>, dropping the display name and header params.
    if let Some(open) = s.find('<') {
        let inner = &s[open + 1..];
        s = match inner.find('>') {
            Some(close) => &inner[..close],
            None => inner,
        };
        s = s.trim();
    }
    let lower_starts = |s: &str, p: &str| s.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p));
    if lower_starts(s, "tel:") {
        let rest = &s[4..];
        return rest.split([';', '?']).next().unwrap_or("").trim();
    }
    let is_sip = if lower_starts(s, "sips:") {
        s = &s[5..];
        true
    } else if lower_starts(s, "sip:") {
        s = &s[4..];
        true
    } else {
        false
    };
    // URI headers never belong to the user; a user never contains a raw '@'.
    s = s.split('?').next().unwrap_or("");
    match s.find('@') {
        Some(at) => {
            // userinfo = user [":" password]; user may carry its own ";params" (RFC 4694 npdi…)
            let userinfo = &s[..at];
            let user = userinfo.split(';').next().unwrap_or("");
            user.split(':').next().unwrap_or("").trim()
        }
        None => {
            let base = s.split(';').next().unwrap_or("");
            if is_sip {
                // host[:port] only: strip the port, unless it is an IPv6 reference.
                if base.starts_with('[') {
                    base.trim()
                } else {
                    base.split(':').next().unwrap_or("").trim()
                }
            } else {
                base.trim()
            }
        }
    }
}

/// Digits of `s` after removing visual separators; `None` if anything but digits, separators
/// and a single leading '+' is present. Returns (had_plus, digits).
fn clean(s: &str) -> Option<(bool, String)> {
    let mut s = s.trim();
    let mut plus = false;
    if let Some(rest) = s.strip_prefix('+') {
        plus = true;
        s = rest;
    } else if s.get(..3).is_some_and(|h| h.eq_ignore_ascii_case("%2B")) {
        // percent-encoded '+' as sent by some user agents
        plus = true;
        s = &s[3..];
    }
    let mut digits = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' | '/' | '\u{a0}' => {}
            _ => return None,
        }
    }
    Some((plus, digits))
}

/// Whether "+" + `digits` is a plausible E.164 number (length limits, no leading 0, NANP shape).
pub fn is_valid_e164_digits(digits: &str) -> bool {
    if digits.len() < E164_MIN_DIGITS || digits.len() > E164_MAX_DIGITS {
        return false;
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) || digits.starts_with('0') {
        return false;
    }
    if let Some(nsn) = digits.strip_prefix('1') {
        return nanp_nsn_ok(nsn);
    }
    // Known countries with a trunk prefix never have a national number starting with 0
    // ("+44 020 7946 0000" is a typo for +44 20 7946 0000 and is not guessed at).
    for (cc, _) in EMERGENCY_CODES {
        if let Some(nsn) = digits.strip_prefix(cc) {
            return !nsn.starts_with('0') || trunk_prefix(cc).is_empty();
        }
    }
    true
}

/// A NANP national significant number: 10 digits, area code starting with 2-9.
fn nanp_nsn_ok(nsn: &str) -> bool {
    nsn.len() == 10 && nsn.bytes().all(|b| b.is_ascii_digit()) && (b'2'..=b'9').contains(&nsn.as_bytes()[0])
}

fn finish(digits: String) -> Option<String> {
    if is_valid_e164_digits(&digits) {
        Some(format!("+{digits}"))
    } else {
        None
    }
}

/// Normalize what a caller dialed (user part, visual separators, '+', 00/011, national prefix,
/// NANP 10-digit) to E.164 with a leading '+'. `None` if it is not a phone number
/// (letters, too short/long, emergency short codes).
pub fn normalize(dialed: &str, plan: &DialPlan) -> Option<String> {
    let user = user_part(dialed);
    if user.is_empty() || is_emergency(user, plan) {
        return None;
    }
    // "+44 (0)20 7946 0000": the "(0)" is the optional trunk prefix, not part of the number.
    let owned;
    let user = if user.contains("(0)") && (user.starts_with('+') || user.starts_with("00") || user.starts_with("011")) {
        owned = user.replacen("(0)", "", 1);
        owned.as_str()
    } else {
        user
    };
    let (plus, digits) = clean(user)?;
    if digits.is_empty() {
        return None;
    }
    if plus {
        return finish(digits);
    }
    let cc = plan.country_code.trim().trim_start_matches('+');
    if cc.is_empty() || !cc.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let idd = idd_prefix(cc);
    if let Some(rest) = digits.strip_prefix(idd) {
        return finish(rest.to_string());
    }
    if cc == "1" {
        return match digits.len() {
            10 => finish(format!("1{digits}")),
            11 if digits.starts_with('1') => finish(digits),
            _ => None,
        };
    }
    let tp = trunk_prefix(cc);
    if tp.is_empty() {
        // Dialled nationally without a trunk prefix; a leading 0 is part of the number.
        return finish(format!("{cc}{digits}"));
    }
    match digits.strip_prefix(tp) {
        Some(nsn) if !nsn.is_empty() && !nsn.starts_with('0') => finish(format!("{cc}{nsn}")),
        // No trunk prefix: a local number without area code, an extension, or junk.
        _ => None,
    }
}

/// Whether `dialed` (user part, before normalization) is an emergency short code in this plan.
pub fn is_emergency(dialed: &str, plan: &DialPlan) -> bool {
    let Some((false, digits)) = clean(user_part(dialed)) else {
        return false;
    };
    if digits == "112" {
        return true;
    }
    let cc = plan.country_code.trim().trim_start_matches('+');
    EMERGENCY_CODES
        .iter()
        .find(|(c, _)| *c == cc)
        .is_some_and(|(_, codes)| codes.contains(&digits.as_str()))
}

/// Digits (without '+') of an E.164 string or of something that normalizes to one.
fn e164_digits(e164: &str, plan: &DialPlan) -> Option<String> {
    match clean(e164) {
        Some((true, d)) if is_valid_e164_digits(&d) => Some(d),
        _ => normalize(e164, plan).map(|n| n[1..].to_string()),
    }
}

/// Whether `digits` (E.164 without '+') matches a premium prefix given with or without '+'.
fn matches_prefix(digits: &str, prefix: &str) -> bool {
    match clean(prefix) {
        Some((_, p)) if !p.is_empty() => digits.starts_with(&p),
        _ => false,
    }
}

/// Whether an E.164 number is premium-rate: built-in table, NANP 976 exchanges, or the plan's own list.
pub fn is_premium(e164: &str, plan: &DialPlan) -> bool {
    let Some(digits) = e164_digits(e164, plan) else {
        return false;
    };
    if PREMIUM_PREFIXES.iter().any(|p| matches_prefix(&digits, p)) {
        return true;
    }
    if digits.len() == 11 && digits.starts_with('1') && &digits[4..7] == "976" {
        return true;
    }
    plan.premium_prefixes.iter().any(|p| matches_prefix(&digits, p))
}

/// Classify an E.164 number from the account's point of view.
///
/// `Emergency` only for an emergency short code passed as-is (an E.164 number is never an
/// emergency call). Input that is neither E.164 nor normalizable in the plan is classified
/// `Premium`, the most restricted non-emergency class (fail closed).
pub fn classify(e164: &str, plan: &DialPlan) -> NumberClass {
    if !e164.trim_start().starts_with('+') && is_emergency(e164, plan) {
        return NumberClass::Emergency;
    }
    let Some(digits) = e164_digits(e164, plan) else {
        return NumberClass::Premium;
    };
    let plus = format!("+{digits}");
    if is_premium(&plus, plan) {
        return NumberClass::Premium;
    }
    let cc = plan.country_code.trim().trim_start_matches('+');
    // Country codes are prefix-free, so a prefix test is exact (+1 covers all of NANP).
    if !cc.is_empty() && digits.starts_with(cc) {
        NumberClass::Domestic
    } else {
        NumberClass::International
    }
}

/// Render an E.164 number the way a trunk wants it.
///
/// Input that is not a valid E.164 number is normalized in the plan first; if that fails too
/// (an emergency short code, an extension) it is returned unchanged (trimmed).
pub fn format_for_trunk(e164: &str, format: NumberFormat, plan: &DialPlan) -> String {
    let Some(digits) = e164_digits(e164, plan) else {
        return e164.trim().to_string();
    };
    match format {
        NumberFormat::E164 => format!("+{digits}"),
        NumberFormat::E164NoPlus => digits,
        NumberFormat::National => {
            let cc = plan.country_code.trim().trim_start_matches('+');
            if cc.is_empty() || !cc.bytes().all(|b| b.is_ascii_digit()) {
                // No national conventions without a country: the only unambiguous form.
                return format!("+{digits}");
            }
            match digits.strip_prefix(cc) {
                Some(nsn) => {
                    if cc == "1" {
                        nsn.to_string()
                    } else {
                        format!("{}{nsn}", trunk_prefix(cc))
                    }
                }
                _ => format!("{}{digits}", idd_prefix(cc)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(cc: &str) -> DialPlan {
        DialPlan { country_code: cc.to_string(), premium_prefixes: vec![] }
    }

    fn n(dialed: &str, cc: &str) -> Option<String> {
        normalize(dialed, &plan(cc))
    }

    #[test]
    fn user_part_of_sip_uris() {
        assert_eq!(user_part("sip:+15551234567@x;user=phone"), "+15551234567");
        assert_eq!(user_part("sip:+1555@x;user=phone"), "+1555");
        assert_eq!(user_part("sips:alice@example.com"), "alice");
        assert_eq!(user_part("SIP:2125550123@10.0.0.1:5060;transport=udp"), "2125550123");
        assert_eq!(user_part("sip:2125550123@[2001:db8::1]:5060"), "2125550123");
        assert_eq!(user_part("sip:1000:secret@pbx.example.com"), "1000");
        assert_eq!(user_part("sip:+12125550123;npdi;rn=+12125550000@gw.example.com;user=phone"), "+12125550123");
        assert_eq!(user_part("sip:911@pbx.example.com?Priority=emergency"), "911");
        assert_eq!(user_part("sip:pbx.example.com:5060;transport=tcp"), "pbx.example.com");
        assert_eq!(user_part("sip:1000"), "1000");
    }

    #[test]
    fn user_part_of_name_addr_tel_and_bare() {
        assert_eq!(user_part("\"Alice Smith\" <sip:+442079460000@uk.example.com>;tag=a6c85cf"), "+442079460000");
        assert_eq!(user_part("Bob <sips:bob@biloxi.example.com>"), "bob");
        assert_eq!(user_part("<sip:1001@pbx>"), "1001");
        assert_eq!(user_part("tel:+1-201-555-0123"), "+1-201-555-0123");
        assert_eq!(user_part("tel:7042;phone-context=example.com"), "7042");
        assert_eq!(user_part("TEL:+33123456789;ext=12"), "+33123456789");
        assert_eq!(user_part("<tel:+49301234567>"), "+49301234567");
        assert_eq!(user_part("  +44 20 7946 0000  "), "+44 20 7946 0000");
        assert_eq!(user_part("2125550123@gw"), "2125550123");
        assert_eq!(user_part("2125550123;user=phone"), "2125550123");
        assert_eq!(user_part(""), "");
        assert_eq!(user_part("sip:@host"), "");
        assert_eq!(user_part("<sip:broken"), "broken");
    }

    #[test]
    fn nanp_dial_strings() {
        let e = Some("+12125550123".to_string());
        for d in [
            "2125550123",
            "12125550123",
            "+12125550123",
            "(212) 555-0123",
            "212-555-0123",
            "212.555.0123",
            "1 (212) 555-0123",
            "1-212-555-0123",
            "+1 212 555 0123",
            "sip:2125550123@pbx.example.com",
            "sip:+12125550123@pbx.example.com;user=phone",
            "tel:+1-212-555-0123",
            "\"Front desk\" <sip:12125550123@10.1.1.1>",
            "%2B12125550123",
        ] {
            assert_eq!(n(d, "1"), e, "dialed {d:?}");
        }
        // international from NANP: 011
        assert_eq!(n("011 44 20 7946 0000", "1"), Some("+442079460000".into()));
        assert_eq!(n("01133123456789", "1"), Some("+33123456789".into()));
        assert_eq!(n("011 49 30 12345678", "1"), Some("+493012345678".into()));
        // toll free and Canada are plain NANP numbers
        assert_eq!(n("1-800-555-0199", "1"), Some("+18005550199".into()));
        assert_eq!(n("(416) 555-0100", "1"), Some("+14165550100".into()));
    }

    #[test]
    fn nanp_rejects() {
        for d in [
            "5550123",       // 7-digit local: area code unknown
            "0125550123",    // area code cannot start with 0
            "1125550123",    // … nor 1
            "212555012",     // 9 digits
            "212555012345",  // 12 digits
            "22125550123",   // 11 digits not starting with 1
            "+1212555012",   // +1 with 9 digits
            "+121255501234", // +1 with 11 digits
            "00442079460000", // 00 is not the NANP IDD
            "1001",          // extension
            "011",           // IDD alone
        ] {
            assert_eq!(n(d, "1"), None, "dialed {d:?}");
        }
    }

    #[test]
    fn uk_dial_strings() {
        let e = Some("+442079460000".to_string());
        for d in [
            "020 7946 0000",
            "02079460000",
            "(020) 7946 0000",
            "+44 20 7946 0000",
            "+44 (0)20 7946 0000",
            "+44(0)2079460000",
            "0044 20 7946 0000",
            "00442079460000",
            "sip:02079460000@sbc.example.co.uk",
            "tel:+44-20-7946-0000",
        ] {
            assert_eq!(n(d, "44"), e, "dialed {d:?}");
        }
        assert_eq!(n("07700 900123", "44"), Some("+447700900123".into()));
        assert_eq!(n("0800 123 4567", "44"), Some("+448001234567".into()));
        assert_eq!(n("001 212 555 0123", "44"), Some("+12125550123".into()));
        assert_eq!(n("0033 1 23 45 67 89", "44"), Some("+33123456789".into()));
        // '+' and the trunk prefix together is a typo we do not guess at; Italy keeps its 0
        assert_eq!(n("+44 020 7946 0000", "44"), None);
        assert_eq!(n("+44 020 7946 0000", "1"), None);
        assert_eq!(n("0044 020 7946 0000", "44"), None);
        assert_eq!(n("011 33 01 23 45 67 89", "1"), None);
        assert_eq!(n("+39 06 1234 5678", "44"), Some("+390612345678".into()));
        // local number without area code, extension, double trunk prefix
        assert_eq!(n("7946 0000", "44"), None);
        assert_eq!(n("2001", "44"), None);
        assert_eq!(n("0", "44"), None);
        assert_eq!(n("00", "44"), None);
    }

    #[test]
    fn france_and_germany_dial_strings() {
        assert_eq!(n("01 23 45 67 89", "33"), Some("+33123456789".into()));
        assert_eq!(n("01.23.45.67.89", "33"), Some("+33123456789".into()));
        assert_eq!(n("06 12 34 56 78", "33"), Some("+33612345678".into()));
        assert_eq!(n("+33 (0)1 23 45 67 89", "33"), Some("+33123456789".into()));
        assert_eq!(n("0033123456789", "33"), Some("+33123456789".into()));
        assert_eq!(n("00 1 212 555 0123", "33"), Some("+12125550123".into()));
        assert_eq!(n("00 44 20 7946 0000", "33"), Some("+442079460000".into()));

        assert_eq!(n("030 12345678", "49"), Some("+493012345678".into()));
        assert_eq!(n("030/12345678", "49"), Some("+493012345678".into()));
        assert_eq!(n("(089) 1234-5678", "49"), Some("+498912345678".into()));
        assert_eq!(n("0151 23456789", "49"), Some("+4915123456789".into()));
        assert_eq!(n("+49 30 12345678", "49"), Some("+493012345678".into()));
        assert_eq!(n("0049 30 12345678", "49"), Some("+493012345678".into()));
        assert_eq!(n("0033 1 23 45 67 89", "49"), Some("+33123456789".into()));
    }

    #[test]
    fn other_prefix_conventions() {
        // Italy: no trunk prefix, the 0 belongs to the number
        assert_eq!(n("06 1234 5678", "39"), Some("+390612345678".into()));
        assert_eq!(n("+39 06 1234 5678", "39"), Some("+390612345678".into()));
        // Australia: IDD 0011, trunk 0
        assert_eq!(n("0011 44 20 7946 0000", "61"), Some("+442079460000".into()));
        assert_eq!(n("02 9876 5432", "61"), Some("+61298765432".into()));
        // Japan: IDD 010
        assert_eq!(n("010 1 212 555 0123", "81"), Some("+12125550123".into()));
        assert_eq!(n("03-1234-5678", "81"), Some("+81312345678".into()));
        // Russia: trunk 8, IDD 810
        assert_eq!(n("8 495 123-45-67", "7"), Some("+74951234567".into()));
        assert_eq!(n("810 49 30 12345678", "7"), Some("+493012345678".into()));
    }

    #[test]
    fn junk_and_limits() {
        for d in [
            "", "   ", "+", "abc", "1-800-FLOWERS", "0207946000O", "*72", "#31#2125550123", "+44+2079460000",
            "++442079460000", "sip:alice@example.com", "tel:", "+0442079460000", "+123456", "+1234567890123456",
            "2125550123x12", "١٢٣٤٥٦٧٨٩٠",
        ] {
            assert_eq!(n(d, "1"), None, "dialed {d:?}");
            assert_eq!(n(d, "44"), None, "dialed {d:?}");
        }
        // E.164 length limits: 7 and 15 digits are fine
        assert_eq!(n("+6834002", "44"), Some("+6834002".into()));
        assert_eq!(n("+123456789012345", "44"), None, "+1 must have exactly 10 digits");
        assert_eq!(n("+491234567890123", "44"), Some("+491234567890123".into()));
        assert_eq!(n("+4912345678901234", "44"), None);
        // missing / bad country code in the plan: only '+' numbers work
        assert_eq!(n("+442079460000", ""), Some("+442079460000".into()));
        assert_eq!(n("02079460000", ""), None);
        assert_eq!(n("02079460000", "4x"), None);
    }

    #[test]
    fn emergency_codes() {
        let us = plan("1");
        let uk = plan("44");
        assert!(is_emergency("911", &us));
        assert!(is_emergency("sip:911@pbx.example.com;user=phone", &us));
        assert!(is_emergency("112", &us));
        assert!(is_emergency("112", &uk));
        assert!(is_emergency("999", &uk));
        assert!(!is_emergency("999", &us));
        assert!(!is_emergency("911", &uk));
        assert!(is_emergency("000", &plan("61")));
        assert!(is_emergency("111", &plan("64")));
        assert!(is_emergency("15", &plan("33")));
        assert!(is_emergency("17", &plan("33")));
        assert!(is_emergency("110", &plan("49")));
        assert!(is_emergency("112", &plan("49")));
        assert!(is_emergency("tel:119", &plan("81")));
        assert!(is_emergency("999", &plan("353")));
        assert!(is_emergency("911", &plan("52")));
        // not emergency: longer numbers, '+', unknown plans only get 112
        assert!(!is_emergency("9110", &us));
        assert!(!is_emergency("+911", &us));
        assert!(!is_emergency("+112", &uk));
        assert!(!is_emergency("1120", &uk));
        assert!(!is_emergency("911", &plan("999")));
        assert!(is_emergency("112", &plan("999")));
        assert!(!is_emergency("", &us));
        // emergency codes never normalize (they must not be rewritten into E.164)
        assert_eq!(normalize("911", &us), None);
        assert_eq!(normalize("112", &uk), None);
        assert_eq!(normalize("999", &uk), None);
        assert_eq!(normalize("sip:000@pbx", &plan("61")), None);
        // every table entry is a short digit string
        for (cc, codes) in EMERGENCY_CODES {
            assert!(cc.bytes().all(|b| b.is_ascii_digit()));
            for c in *codes {
                assert!(c.len() <= 5 && c.bytes().all(|b| b.is_ascii_digit()), "{cc}: {c}");
                assert!(is_emergency(c, &plan(cc)));
            }
        }
    }

    #[test]
    fn classify_numbers() {
        let us = plan("1");
        let uk = plan("44");
        let fr = plan("33");
        let de = plan("49");
        assert_eq!(classify("911", &us), NumberClass::Emergency);
        assert_eq!(classify("sip:112@pbx", &de), NumberClass::Emergency);
        assert_eq!(classify("999", &uk), NumberClass::Emergency);

        assert_eq!(classify("+12125550123", &us), NumberClass::Domestic);
        assert_eq!(classify("+14165550100", &us), NumberClass::Domestic, "Canada is +1");
        assert_eq!(classify("+18765550100", &us), NumberClass::Domestic, "NANP Caribbean is +1");
        assert_eq!(classify("+442079460000", &us), NumberClass::International);
        assert_eq!(classify("+12125550123", &uk), NumberClass::International);
        assert_eq!(classify("+442079460000", &uk), NumberClass::Domestic);
        assert_eq!(classify("+447700900123", &uk), NumberClass::Domestic);
        assert_eq!(classify("+33123456789", &fr), NumberClass::Domestic);
        assert_eq!(classify("+33123456789", &de), NumberClass::International);
        assert_eq!(classify("+493012345678", &de), NumberClass::Domestic);
        // +4 vs +44 vs +49: prefix-free country codes, no false "domestic"
        assert_eq!(classify("+4930123456", &uk), NumberClass::International);
        // 3-digit country code
        assert_eq!(classify("+35312345678", &plan("353")), NumberClass::Domestic);
        assert_eq!(classify("+35212345678", &plan("353")), NumberClass::International);

        // premium: built-in tables, both domestic and from abroad
        assert_eq!(classify("+19005550123", &us), NumberClass::Premium);
        assert_eq!(classify("+12129765555", &us), NumberClass::Premium, "976 exchange");
        assert_eq!(classify("+19765550123", &us), NumberClass::Premium);
        assert_eq!(classify("+19005550123", &uk), NumberClass::Premium);
        assert_eq!(classify("+449098790000", &uk), NumberClass::Premium);
        assert_eq!(classify("+447000123456", &uk), NumberClass::Premium);
        assert_eq!(classify("+448712345678", &uk), NumberClass::Premium);
        assert_eq!(classify("+448001234567", &uk), NumberClass::Domestic, "0800 is freephone");
        assert_eq!(classify("+447700900123", &uk), NumberClass::Domestic, "07700 mobile is not 070");
        assert_eq!(classify("+33899123456", &fr), NumberClass::Premium);
        assert_eq!(classify("+499001234567", &de), NumberClass::Premium);
        assert_eq!(classify("+97912345678", &us), NumberClass::Premium);
        assert_eq!(classify("+881612345678", &us), NumberClass::Premium);

        // plan-specific premium prefixes (with or without '+', separators tolerated)
        let custom = DialPlan { country_code: "1".into(), premium_prefixes: vec!["+1876".into(), "1 809".into(), "".into()] };
        assert_eq!(classify("+18765550100", &custom), NumberClass::Premium);
        assert_eq!(classify("+18095550100", &custom), NumberClass::Premium);
        assert_eq!(classify("+12125550123", &custom), NumberClass::Domestic, "empty prefix matches nothing");

        // not E.164 but normalizable in the plan
        assert_eq!(classify("(212) 555-0123", &us), NumberClass::Domestic);
        assert_eq!(classify("011 44 20 7946 0000", &us), NumberClass::International);
        // junk fails closed
        assert_eq!(classify("hello", &us), NumberClass::Premium);
        assert_eq!(classify("+1212", &us), NumberClass::Premium);
        assert_eq!(classify("", &us), NumberClass::Premium);
    }

    #[test]
    fn format_for_trunks() {
        let us = plan("1");
        let uk = plan("44");
        let fr = plan("33");
        let it = plan("39");
        let f = format_for_trunk;
        assert_eq!(f("+12125550123", NumberFormat::E164, &us), "+12125550123");
        assert_eq!(f("+12125550123", NumberFormat::E164NoPlus, &us), "12125550123");
        assert_eq!(f("+12125550123", NumberFormat::National, &us), "2125550123");
        assert_eq!(f("+442079460000", NumberFormat::National, &us), "011442079460000");
        assert_eq!(f("+442079460000", NumberFormat::National, &uk), "02079460000");
        assert_eq!(f("+442079460000", NumberFormat::E164NoPlus, &uk), "442079460000");
        assert_eq!(f("+12125550123", NumberFormat::National, &uk), "0012125550123");
        assert_eq!(f("+33123456789", NumberFormat::National, &fr), "0123456789");
        assert_eq!(f("+390612345678", NumberFormat::National, &it), "0612345678");
        assert_eq!(f("+442079460000", NumberFormat::National, &plan("61")), "0011442079460000");
        assert_eq!(f("+74951234567", NumberFormat::National, &plan("7")), "84951234567");
        // non-E.164 input is normalized first; what cannot be is passed through
        assert_eq!(f("(212) 555-0123", NumberFormat::E164, &us), "+12125550123");
        assert_eq!(f("911", NumberFormat::E164, &us), "911");
        assert_eq!(f("911", NumberFormat::National, &us), "911");
        assert_eq!(f(" 1001 ", NumberFormat::E164NoPlus, &us), "1001");
        // no country in the plan: National cannot be national, E.164 is the safe form
        assert_eq!(f("+442079460000", NumberFormat::National, &plan("")), "+442079460000");
    }

    #[test]
    fn format_round_trips() {
        let cases: &[(&str, &[&str])] = &[
            ("1", &["+12125550123", "+14165550100", "+442079460000", "+33612345678", "+493012345678", "+6834002"]),
            ("44", &["+442079460000", "+447700900123", "+12125550123", "+390612345678", "+61298765432"]),
            ("33", &["+33123456789", "+33612345678", "+442079460000", "+12125550123"]),
            ("49", &["+493012345678", "+4915123456789", "+33123456789", "+12125550123"]),
            ("39", &["+390612345678", "+393471234567", "+442079460000"]),
            ("61", &["+61298765432", "+442079460000", "+12125550123"]),
            ("7", &["+74951234567", "+493012345678"]),
        ];
        for (cc, numbers) in cases {
            let p = plan(cc);
            for e in *numbers {
                for fmt in [NumberFormat::E164, NumberFormat::E164NoPlus, NumberFormat::National] {
                    let rendered = format_for_trunk(e, fmt, &p);
                    let back = if fmt == NumberFormat::E164NoPlus { normalize(&format!("+{rendered}"), &p) } else { normalize(&rendered, &p) };
                    assert_eq!(back.as_deref(), Some(*e), "cc {cc}, {fmt:?}: {e} -> {rendered}");
                }
            }
        }
    }

    #[test]
    fn normalize_is_idempotent() {
        for (cc, d) in [("1", "(212) 555-0123"), ("44", "020 7946 0000"), ("33", "06 12 34 56 78"), ("49", "030 12345678")] {
            let p = plan(cc);
            let once = normalize(d, &p).unwrap();
            assert_eq!(normalize(&once, &p).as_deref(), Some(once.as_str()));
            // and valid in every other plan too, since it carries '+'
            for other in ["1", "44", "33", "49", "61"] {
                assert_eq!(normalize(&once, &plan(other)).as_deref(), Some(once.as_str()));
            }
        }
    }

    /// Deterministic fuzz: arbitrary fragments never panic, and whatever `normalize` returns is
    /// valid E.164 that survives the other functions unchanged.
    #[test]
    fn fuzz_never_panics_and_outputs_are_valid() {
        const PIECES: &[&str] = &[
            "sip:", "sips:", "tel:", "<", ">", "@", ";", ":", "?", "+", "%2B", "(0)", "(", ")", "-", ".", " ", "0", "00", "011", "0011",
            "1", "2", "4", "44", "9", "911", "112", "999", "5550123", "20", "7946", "x", "é", "४", "\"", "user=phone", "host",
        ];
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let plans: Vec<DialPlan> = ["1", "44", "33", "49", "61", "39", "7", "81", ""].iter().map(|cc| plan(cc)).collect();
        let mut produced = 0;
        for _ in 0..8_000 {
            let len = 1 + next() % 8;
            let input: String = (0..len).map(|_| PIECES[(next() % PIECES.len() as u64) as usize]).collect();
            let user = user_part(&input);
            assert!(input.contains(user), "{input:?} -> {user:?}");
            for p in &plans {
                let _ = is_emergency(&input, p);
                let _ = classify(&input, p);
                for f in [NumberFormat::E164, NumberFormat::E164NoPlus, NumberFormat::National] {
                    let _ = format_for_trunk(&input, f, p);
                }
                if let Some(e) = normalize(&input, p) {
                    produced += 1;
                    let digits = &e[1..];
                    assert!(e.starts_with('+') && is_valid_e164_digits(digits), "{input:?} -> {e:?}");
                    assert_eq!(normalize(&e, p).as_deref(), Some(e.as_str()), "{input:?}");
                    assert_ne!(classify(&e, p), NumberClass::Emergency, "{input:?}");
                    assert_eq!(format_for_trunk(&e, NumberFormat::E164, p), e);
                    assert_eq!(normalize(&format_for_trunk(&e, NumberFormat::National, p), p).as_deref(), Some(e.as_str()), "{input:?}");
                }
            }
        }
        assert!(produced > 100, "the fuzz must reach valid numbers too ({produced})");
    }

    #[test]
    fn serde_shapes() {
        let p: DialPlan = serde_json::from_str(r#"{"country_code":"44"}"#).unwrap();
        assert_eq!(p, plan("44"));
        assert_eq!(serde_json::to_string(&NumberClass::International).unwrap(), "\"international\"");
        assert_eq!(serde_json::to_string(&NumberFormat::E164NoPlus).unwrap(), "\"e164_no_plus\"");
    }
}
