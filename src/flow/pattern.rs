//! DTMF digit patterns for gather branches and branch conditions (no regex crate).
//!
//! The syntax is the familiar PBX dial-pattern subset (Asterisk style, without the
//! leading `_`). A pattern is a sequence of elements; each element matches exactly one key,
//! except the trailing wildcards:
//!
//! | element      | matches                                                        |
//! |--------------|----------------------------------------------------------------|
//! | `0`-`9` `*` `#` | that key                                                    |
//! | `X` / `x`    | any digit `0`-`9`                                              |
//! | `Z` / `z`    | any digit `1`-`9`                                              |
//! | `N` / `n`    | any digit `2`-`9`                                              |
//! | `[...]`      | one key of the class: keys and digit ranges, e.g. `[1-3*]`, `[0#]` |
//! | `.` (last)   | one or more further keys (any of `0-9*#`)                      |
//! | `!` (last)   | zero or more further keys                                      |
//!
//! Examples: `1XX` (100-199), `[1-3]` (1, 2 or 3), `*NX` (star code), `9.` (9 then
//! anything), `0!` (0 alone or followed by anything). A pattern always matches the
//! whole input. At most [`MAX_PATTERN_LEN`] characters.

use std::fmt;

/// DTMF keys in the order of their bit in a class mask.
pub const KEYS: &str = "0123456789*#";
/// Longest pattern source accepted.
pub const MAX_PATTERN_LEN: usize = 32;

const ALL_KEYS: u16 = (1 << 12) - 1;
const DIGITS: u16 = (1 << 10) - 1;

fn key_bit(c: char) -> Option<u16> {
    KEYS.find(c).map(|i| 1u16 << i)
}

/// Whether `c` is a DTMF key (`0-9`, `*`, `#`).
pub fn is_key(c: char) -> bool {
    key_bit(c).is_some()
}

/// Trailing wildcard of a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tail {
    None,
    /// `.`: one or more further keys.
    OneOrMore,
    /// `!`: zero or more further keys.
    ZeroOrMore,
}

/// A compiled digit pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigitPattern {
    source: String,
    /// One key mask per fixed position.
    elems: Vec<u16>,
    tail: Tail,
}

/// Why a pattern did not compile (the message names the offending character and its position).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(pub String);

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl DigitPattern {
    /// Compile a pattern.
    pub fn parse(source: &str) -> Result<DigitPattern, PatternError> {
        let bad = |msg: String| Err(PatternError(format!("bad digit pattern {source:?}: {msg}")));
        if source.is_empty() {
            return bad("empty".into());
        }
        if source.chars().count() > MAX_PATTERN_LEN {
            return bad(format!("longer than {MAX_PATTERN_LEN} characters"));
        }
        let chars: Vec<char> = source.chars().collect();
        let mut elems = Vec::new();
        let mut tail = Tail::None;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let pos = i + 1;
            match c {
                '.' | '!' => {
                    if i + 1 != chars.len() {
                        return bad(format!("{c:?} at position {pos} is only allowed as the last character"));
                    }
                    tail = if c == '.' { Tail::OneOrMore } else { Tail::ZeroOrMore };
                }
                'X' | 'x' => elems.push(DIGITS),
                'Z' | 'z' => elems.push(DIGITS & !1),
                'N' | 'n' => elems.push(DIGITS & !3),
                '[' => {
                    let Some(close) = chars[i + 1..].iter().position(|&c| c == ']').map(|p| p + i + 1) else {
                        return bad(format!("'[' at position {pos} is not closed"));
                    };
                    let class = &chars[i + 1..close];
                    if class.is_empty() {
                        return bad(format!("empty class at position {pos}"));
                    }
                    let mut mask = 0u16;
                    let mut j = 0;
                    while j < class.len() {
                        let a = class[j];
                        if j + 2 < class.len() && class[j + 1] == '-' {
                            let b = class[j + 2];
                            let (Some(da), Some(db)) = (a.to_digit(10), b.to_digit(10)) else {
                                return bad(format!("range {a}-{b} in class at position {pos}: ranges are digits only"));
                            };
                            if da > db {
                                return bad(format!("range {a}-{b} in class at position {pos} is backwards"));
                            }
                            for d in da..=db {
                                mask |= 1 << d;
                            }
                            j += 3;
                        } else {
                            match key_bit(a) {
                                Some(bit) => mask |= bit,
                                None => return bad(format!("{a:?} in class at position {pos} is not a key (0-9 * #)")),
                            }
                            j += 1;
                        }
                    }
                    elems.push(mask);
                    i = close;
                }
                c => match key_bit(c) {
                    Some(bit) => elems.push(bit),
                    None => return bad(format!("unexpected {c:?} at position {pos} (use 0-9 * # X Z N [..] and a final . or !)")),
                },
            }
            i += 1;
        }
        if elems.is_empty() && tail == Tail::ZeroOrMore {
            // "!" alone would match the empty input, which is never a gather result.
            return bad("matches nothing but the empty input; use \".\" for any input".into());
        }
        Ok(DigitPattern { source: source.to_string(), elems, tail })
    }

    /// Whether the whole of `digits` matches.
    pub fn matches(&self, digits: &str) -> bool {
        let keys: Vec<char> = digits.chars().collect();
        let n = self.elems.len();
        let len_ok = match self.tail {
            Tail::None => keys.len() == n,
            Tail::OneOrMore => keys.len() > n,
            Tail::ZeroOrMore => keys.len() >= n,
        };
        if !len_ok {
            return false;
        }
        let fixed = self.elems.iter().zip(&keys).all(|(mask, &c)| key_bit(c).is_some_and(|b| mask & b != 0));
        fixed && keys[n..].iter().all(|&c| key_bit(c).is_some_and(|b| ALL_KEYS & b != 0))
    }

    /// Fewest keys an input needs to match.
    pub fn min_len(&self) -> usize {
        self.elems.len() + usize::from(self.tail == Tail::OneOrMore)
    }

    /// Most keys an input may have (`None`: unbounded).
    pub fn max_len(&self) -> Option<usize> {
        (self.tail == Tail::None).then_some(self.elems.len())
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, input: &str) -> bool {
        DigitPattern::parse(p).unwrap().matches(input)
    }

    #[test]
    fn literals_and_wildcards() {
        assert!(m("1", "1"));
        assert!(!m("1", "2"));
        assert!(!m("1", "11"), "a pattern matches the whole input");
        assert!(m("*#0", "*#0"));
        assert!(m("1XX", "100") && m("1XX", "199"));
        assert!(!m("1XX", "1*0"), "X is digits only");
        assert!(!m("1XX", "10") && !m("1XX", "1000") && !m("1XX", "200"));
        assert!(m("Z", "1") && m("Z", "9") && !m("Z", "0"));
        assert!(m("N", "2") && !m("N", "1") && !m("N", "0") && m("n", "9"));
        assert!(m("x", "5") && m("z", "5"));
    }

    #[test]
    fn classes() {
        assert!(m("[1-3]", "1") && m("[1-3]", "2") && m("[1-3]", "3"));
        assert!(!m("[1-3]", "4") && !m("[1-3]", "0"));
        assert!(m("[0#]", "#") && m("[0#]", "0") && !m("[0#]", "*"));
        assert!(m("[1-35-7*]", "6") && m("[1-35-7*]", "*") && !m("[1-35-7*]", "4"));
        assert!(m("9[0-1]X", "905") && !m("9[0-1]X", "925"));
    }

    #[test]
    fn tails() {
        assert!(m("9.", "91") && m("9.", "9123#"));
        assert!(!m("9.", "9"), "'.' needs one or more keys");
        assert!(m("0!", "0") && m("0!", "0*1"));
        assert!(!m("0!", "1"));
        assert!(m(".", "5") && !m(".", ""));
        let p = DigitPattern::parse("1X.").unwrap();
        assert_eq!((p.min_len(), p.max_len()), (3, None));
        let p = DigitPattern::parse("1X!").unwrap();
        assert_eq!((p.min_len(), p.max_len()), (2, None));
        let p = DigitPattern::parse("[1-3]X").unwrap();
        assert_eq!((p.min_len(), p.max_len()), (2, Some(2)));
        assert_eq!(p.as_str(), "[1-3]X");
    }

    #[test]
    fn non_keys_in_input_never_match() {
        assert!(!m("X", "a"));
        assert!(!m(".", "1a"));
        assert!(!m("X!", "1 "));
    }

    #[test]
    fn errors_name_the_problem() {
        let e = |p: &str| DigitPattern::parse(p).unwrap_err().0;
        assert_eq!(e(""), "bad digit pattern \"\": empty");
        assert_eq!(e("1A"), "bad digit pattern \"1A\": unexpected 'A' at position 2 (use 0-9 * # X Z N [..] and a final . or !)");
        assert_eq!(e("1.2"), "bad digit pattern \"1.2\": '.' at position 2 is only allowed as the last character");
        assert_eq!(e("[12"), "bad digit pattern \"[12\": '[' at position 1 is not closed");
        assert_eq!(e("1[]"), "bad digit pattern \"1[]\": empty class at position 2");
        assert_eq!(e("[3-1]"), "bad digit pattern \"[3-1]\": range 3-1 in class at position 1 is backwards");
        assert_eq!(e("[1-#]"), "bad digit pattern \"[1-#]\": range 1-# in class at position 1: ranges are digits only");
        assert_eq!(e("[a]"), "bad digit pattern \"[a]\": 'a' in class at position 1 is not a key (0-9 * #)");
        assert_eq!(e("[-]"), "bad digit pattern \"[-]\": '-' in class at position 1 is not a key (0-9 * #)");
        assert_eq!(e("!"), "bad digit pattern \"!\": matches nothing but the empty input; use \".\" for any input");
        assert!(e(&"1".repeat(33)).ends_with("longer than 32 characters"));
        assert!(DigitPattern::parse(&"1".repeat(32)).is_ok());
    }
}
