//! IP addresses and CIDR blocks (IPv4 and IPv6), for carrier trust and allowlists.

use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// "203.0.113.0/24", "2001:db8::/32" or a single address ("127.0.0.1" = /32).
    pub fn parse(s: &str) -> Option<Cidr> {
        let s = s.trim();
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.len() <= 3 => p.parse::<u8>().ok()?,
            Some(_) => return None,
            None => max,
        };
        if prefix > max {
            return None;
        }
        Some(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - self.prefix) };
                (u32::from(net) & mask) == (u32::from(*ip) & mask)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - self.prefix) };
                (u128::from(net) & mask) == (u128::from(*ip) & mask)
            }
            (IpAddr::V4(_), IpAddr::V6(ip6)) => ip6.to_ipv4_mapped().is_some_and(|v4| self.contains(&IpAddr::V4(v4))),
            _ => false,
        }
    }
}

/// Parse an address as SIP stacks print it (IPv6 may come bracketed: "[2001:db8::1]").
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    s.trim().trim_start_matches('[').trim_end_matches(']').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_blocks() {
        let c = Cidr::parse("203.0.113.0/24").unwrap();
        assert!(c.contains(&parse_ip("203.0.113.77").unwrap()));
        assert!(!c.contains(&parse_ip("203.0.114.1").unwrap()));
        let one = Cidr::parse("127.0.0.1").unwrap();
        assert_eq!(one.prefix, 32);
        assert!(one.contains(&parse_ip("127.0.0.1").unwrap()));
        assert!(!one.contains(&parse_ip("127.0.0.2").unwrap()));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(&parse_ip("8.8.8.8").unwrap()));
    }

    #[test]
    fn v6_blocks_and_mapped_v4() {
        let c = Cidr::parse("2001:db8::/32").unwrap();
        assert!(c.contains(&parse_ip("[2001:db8:1::5]").unwrap()));
        assert!(!c.contains(&parse_ip("2001:db9::1").unwrap()));
        let v4 = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(v4.contains(&parse_ip("::ffff:10.1.2.3").unwrap()));
        assert!(!c.contains(&parse_ip("10.1.2.3").unwrap()));
    }

    #[test]
    fn junk_is_refused() {
        for s in ["", "1.2.3.4/33", "1.2.3.4/", "1.2.3.4/-1", "::/129", "x/8", "1.2.3/8", "1.2.3.4/8/9", "1.2.3.4/ 8"] {
            assert!(Cidr::parse(s).is_none(), "{s}");
        }
    }
}
