//! Address arithmetic: addresses as `u128` so IPv4 and IPv6 share one code
//! path, strict text parsing matching neutron-lib's validators, and the
//! [`Cidr`] / [`AddrRange`] value types.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::IpamError;

/// The address as an integer (IPv4 occupies the low 32 bits), so ranges and
/// arithmetic work the same for both families.
pub fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The inverse of [`ip_to_u128`]. For IPv4 only the low 32 bits are used,
/// so an out-of-range value cannot panic.
pub fn u128_to_ip(v: u128, v4: bool) -> IpAddr {
    if v4 {
        let low = u32::try_from(v & u128::from(u32::MAX)).unwrap_or(u32::MAX);
        IpAddr::V4(Ipv4Addr::from(low))
    } else {
        IpAddr::V6(Ipv6Addr::from(v))
    }
}

fn not_valid_ip(s: &str) -> IpamError {
    IpamError::InvalidAddress {
        message: format!("'{s}' is not a valid IP address"),
    }
}

/// The outcome of reading a dotted quad: either exact, or readable only by
/// ignoring leading zeros (which Neutron rejects but names the fix for).
enum DottedQuad {
    Exact(Ipv4Addr),
    LeadingZeros(Ipv4Addr),
}

/// Reads `a.b.c.d` with decimal octets only. std's parser would accept '+1'
/// nowhere, but `u8::from_str` does, so digits are checked by hand.
fn read_dotted_quad(s: &str) -> Option<DottedQuad> {
    let mut octets = [0u8; 4];
    let mut parts = s.split('.');
    let mut zero_padded = false;
    for octet in &mut octets {
        let part = parts.next()?;
        // Longer than 6 digits cannot be a zero-padded octet worth recommending.
        if part.is_empty() || part.len() > 6 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if part.len() > 1 && part.starts_with('0') {
            zero_padded = true;
        }
        *octet = part.parse::<u8>().ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    let ip = Ipv4Addr::from(octets);
    Some(if zero_padded {
        DottedQuad::LeadingZeros(ip)
    } else {
        DottedQuad::Exact(ip)
    })
}

/// Parses an address as strictly as neutron-lib's `validate_ip_address`.
///
/// IPv4 must be a dotted quad without leading zeros: '010.0.0.1' could mean
/// octal 8 to some tools and decimal 10 to others, so Neutron refuses the
/// ambiguity and recommends the canonical spelling. IPv6 accepts any form std
/// understands; callers print it back in canonical form via `Display`.
pub fn parse_ip(s: &str) -> Result<IpAddr, IpamError> {
    if s.contains(':') {
        return s
            .parse::<Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| not_valid_ip(s));
    }
    if s.bytes().filter(|&b| b == b'.').count() != 3 {
        return Err(not_valid_ip(s));
    }
    match read_dotted_quad(s) {
        Some(DottedQuad::Exact(ip)) => Ok(IpAddr::V4(ip)),
        Some(DottedQuad::LeadingZeros(ip)) => Err(IpamError::InvalidAddress {
            message: format!("'{s}' is not an accepted IP address, '{ip}' is recommended"),
        }),
        None => Err(not_valid_ip(s)),
    }
}

/// Number of address bits of the family: 32 or 128.
fn family_bits(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

/// A prefix as written: the address keeps any host bits it was given, because
/// a subnet's gateway may be written as `10.0.0.1/24`; [`Cidr::network`] gives
/// the normalised form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Builds a prefix; fails when `prefix` exceeds the family's bit width.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Cidr, IpamError> {
        if prefix > family_bits(addr) {
            return Err(IpamError::InvalidCidr {
                message: format!("'{addr}/{prefix}' is not a valid IP subnet"),
            });
        }
        Ok(Cidr { addr, prefix })
    }

    /// Parses `addr/prefix` like neutron-lib's `validate_subnet`: the '/' is
    /// mandatory (a bare address is ambiguous about the subnet size), the
    /// prefix is plain decimal within the family's width, and the address is
    /// as strict as [`parse_ip`].
    pub fn parse(s: &str) -> Result<Cidr, IpamError> {
        let not_valid = || IpamError::InvalidCidr {
            message: format!("'{s}' is not a valid IP subnet"),
        };
        let recommend = |c: Cidr| IpamError::InvalidCidr {
            message: format!(
                "'{s}' isn't a recognized IP subnet cidr, '{}' is recommended",
                c.network()
            ),
        };
        let Some((addr_text, prefix_text)) = s.split_once('/') else {
            return match parse_ip(s) {
                Ok(ip) => Err(recommend(Cidr {
                    addr: ip,
                    prefix: family_bits(ip),
                })),
                Err(_) => Err(not_valid()),
            };
        };
        let plain_decimal = !prefix_text.is_empty()
            && prefix_text.len() <= 3
            && prefix_text.bytes().all(|b| b.is_ascii_digit())
            && !(prefix_text.len() > 1 && prefix_text.starts_with('0'));
        if !plain_decimal {
            return Err(not_valid());
        }
        let prefix: u8 = prefix_text.parse().map_err(|_| not_valid())?;
        let addr = match parse_ip(addr_text) {
            Ok(ip) => ip,
            Err(_) => {
                // A zero-padded IPv4 address is understandable: name the fix.
                return match (
                    addr_text.bytes().filter(|&b| b == b'.').count(),
                    read_dotted_quad(addr_text),
                ) {
                    (3, Some(DottedQuad::LeadingZeros(ip))) => {
                        match Cidr::new(IpAddr::V4(ip), prefix) {
                            Ok(c) => Err(recommend(c)),
                            Err(_) => Err(not_valid()),
                        }
                    }
                    _ => Err(not_valid()),
                };
            }
        };
        Cidr::new(addr, prefix).map_err(|_| not_valid())
    }

    /// The address as written (host bits kept).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// True for IPv4.
    pub fn is_v4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// Mask of the host bits, as a u128 in the family's bit width.
    fn host_mask(&self) -> u128 {
        let host_bits = u32::from(family_bits(self.addr).saturating_sub(self.prefix));
        1u128.checked_shl(host_bits).map_or(u128::MAX, |v| v - 1)
    }

    /// The same prefix with host bits zeroed.
    pub fn network(&self) -> Cidr {
        Cidr {
            addr: u128_to_ip(self.first(), self.is_v4()),
            prefix: self.prefix,
        }
    }

    /// True when no host bits are set (the canonical way to write a subnet).
    pub fn is_network(&self) -> bool {
        ip_to_u128(self.addr) & self.host_mask() == 0
    }

    /// The network address as an integer.
    pub fn first(&self) -> u128 {
        ip_to_u128(self.addr) & !self.host_mask()
    }

    /// The last address (IPv4 broadcast) as an integer.
    pub fn last(&self) -> u128 {
        self.first() | self.host_mask()
    }

    /// True when `ip` is of the same family and inside the prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        if ip.is_ipv4() != self.is_v4() {
            return false;
        }
        let v = ip_to_u128(ip);
        self.first() <= v && v <= self.last()
    }

    /// True when both prefixes are of the same family and share an address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.is_v4() == other.is_v4()
            && self.first() <= other.last()
            && other.first() <= self.last()
    }

    /// Number of addresses; saturates at `u128::MAX` for `::/0`.
    pub fn size(&self) -> u128 {
        self.host_mask().saturating_add(1)
    }

    /// All addresses of the prefix as one range.
    pub fn range(&self) -> AddrRange {
        AddrRange {
            first: self.first(),
            last: self.last(),
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An inclusive range of addresses as integers; the unit in which pools and
/// free space are kept so that their cost never depends on how many addresses
/// they span.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AddrRange {
    pub first: u128,
    pub last: u128,
}

impl AddrRange {
    /// A range from `first` to `last`, both included.
    pub fn new(first: u128, last: u128) -> AddrRange {
        AddrRange { first, last }
    }

    /// Number of addresses (0 if `last < first`); saturates for the whole IPv6 space.
    pub fn len(&self) -> u128 {
        self.last
            .checked_sub(self.first)
            .map_or(0, |d| d.saturating_add(1))
    }

    /// True when the range holds no address (`last < first`).
    pub fn is_empty(&self) -> bool {
        self.last < self.first
    }

    /// True when `v` lies in the range.
    pub fn contains(&self, v: u128) -> bool {
        self.first <= v && v <= self.last
    }

    /// True when the ranges share an address.
    pub fn overlaps(&self, other: &AddrRange) -> bool {
        !self.is_empty()
            && !other.is_empty()
            && self.first <= other.last
            && other.first <= self.last
    }

    /// Neutron's `start-end` spelling, used in error messages.
    pub fn to_text(&self, v4: bool) -> String {
        format!(
            "{}-{}",
            u128_to_ip(self.first, v4),
            u128_to_ip(self.last, v4)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn u128_roundtrip() {
        assert_eq!(ip_to_u128(ip("10.0.0.1")), 0x0a00_0001);
        assert_eq!(u128_to_ip(0x0a00_0001, true), ip("10.0.0.1"));
        assert_eq!(
            u128_to_ip(ip_to_u128(ip("2001:db8::1")), false),
            ip("2001:db8::1")
        );
        // Out-of-range IPv4 values do not panic.
        assert_eq!(u128_to_ip(u128::MAX, true), ip("255.255.255.255"));
    }

    #[test]
    fn parse_ip_accepts_canonical() {
        assert_eq!(parse_ip("10.0.0.1"), Ok(ip("10.0.0.1")));
        assert_eq!(parse_ip("0.0.0.0"), Ok(ip("0.0.0.0")));
        assert_eq!(parse_ip("2001:DB8:0:0::1"), Ok(ip("2001:db8::1")));
        assert_eq!(
            parse_ip("2001:DB8:0:0::1").map(|a| a.to_string()),
            Ok("2001:db8::1".to_string())
        );
    }

    #[test]
    fn parse_ip_rejects_leading_zeros_with_recommendation() {
        let err = parse_ip("010.0.0.1").unwrap_err();
        assert_eq!(
            err,
            IpamError::InvalidAddress {
                message: "'010.0.0.1' is not an accepted IP address, '10.0.0.1' is recommended"
                    .into()
            }
        );
        assert!(parse_ip("10.0.0.01").is_err());
        assert!(parse_ip("10.00.0.1").is_err());
    }

    #[test]
    fn parse_ip_rejects_malformed() {
        for bad in [
            "",
            "10.0.0",
            "10.0.0.1.2",
            "10.0.0.256",
            "1",
            "10..0.1",
            "+1.0.0.1",
            "a.b.c.d",
            " 10.0.0.1",
            "::g",
            "1:2",
        ] {
            let err = parse_ip(bad).unwrap_err();
            assert_eq!(
                err,
                IpamError::InvalidAddress {
                    message: format!("'{bad}' is not a valid IP address")
                },
                "{bad}"
            );
        }
    }

    #[test]
    fn cidr_parse_and_display() {
        let c = Cidr::parse("10.0.0.5/24").unwrap();
        assert_eq!(c.addr(), ip("10.0.0.5"));
        assert_eq!(c.prefix(), 24);
        assert!(!c.is_network());
        assert_eq!(c.network().to_string(), "10.0.0.0/24");
        assert!(c.network().is_network());
        assert_eq!(c.first(), ip_to_u128(ip("10.0.0.0")));
        assert_eq!(c.last(), ip_to_u128(ip("10.0.0.255")));
        assert_eq!(c.size(), 256);
        assert_eq!(
            Cidr::parse("2001:DB8:0::/64").unwrap().to_string(),
            "2001:db8::/64"
        );
        assert_eq!(Cidr::parse("::/0").unwrap().size(), u128::MAX);
        assert_eq!(Cidr::parse("0.0.0.0/0").unwrap().size(), 1 << 32);
        assert_eq!(Cidr::parse("10.1.2.3/32").unwrap().size(), 1);
    }

    #[test]
    fn cidr_parse_errors() {
        let msg = |s: &str| match Cidr::parse(s) {
            Err(IpamError::InvalidCidr { message }) => message,
            other => panic!("{s}: expected InvalidCidr, got {other:?}"),
        };
        assert_eq!(
            msg("10.0.0.0"),
            "'10.0.0.0' isn't a recognized IP subnet cidr, '10.0.0.0/32' is recommended"
        );
        assert_eq!(
            msg("010.0.0.0/8"),
            "'010.0.0.0/8' isn't a recognized IP subnet cidr, '10.0.0.0/8' is recommended"
        );
        assert_eq!(msg("10.0.0.0/33"), "'10.0.0.0/33' is not a valid IP subnet");
        assert_eq!(
            msg("2001:db8::/129"),
            "'2001:db8::/129' is not a valid IP subnet"
        );
        for bad in [
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/ 8",
            "10.0.0.0/0024",
            "10.0.0.0/024",
            "/24",
            "x/24",
            "10.0.0.0/24/1",
        ] {
            assert_eq!(msg(bad), format!("'{bad}' is not a valid IP subnet"));
        }
        assert!(Cidr::new(ip("10.0.0.0"), 33).is_err());
        assert!(Cidr::new(ip("::"), 128).is_ok());
    }

    #[test]
    fn cidr_contains_and_overlaps() {
        let c = Cidr::parse("10.0.0.0/24").unwrap();
        assert!(c.contains(ip("10.0.0.0")));
        assert!(c.contains(ip("10.0.0.255")));
        assert!(!c.contains(ip("10.0.1.0")));
        assert!(!c.contains(ip("::a00:1")));
        let v6 = Cidr::parse("::/96").unwrap();
        assert!(
            !v6.contains(ip("10.0.0.1")),
            "families never mix even with equal integers"
        );
        assert!(c.overlaps(&Cidr::parse("10.0.0.128/25").unwrap()));
        assert!(c.overlaps(&Cidr::parse("10.0.0.0/8").unwrap()));
        assert!(!c.overlaps(&Cidr::parse("10.0.1.0/24").unwrap()));
        assert!(!c.overlaps(&v6));
    }

    #[test]
    fn addr_range_len_and_contains() {
        assert_eq!(AddrRange::new(2, 254).len(), 253);
        assert_eq!(AddrRange::new(5, 4).len(), 0);
        assert_eq!(AddrRange::new(0, u128::MAX).len(), u128::MAX);
        assert!(AddrRange::new(2, 4).contains(4));
        assert!(!AddrRange::new(2, 4).contains(5));
        assert_eq!(
            AddrRange::new(0x0a00_0002, 0x0a00_00fe).to_text(true),
            "10.0.0.2-10.0.0.254"
        );
    }
}
