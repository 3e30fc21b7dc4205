//! IP prefixes: [`Cidr`], either family, as the API and IPAM write them (host
//! bits kept, strict Neutron parsing) and as the firewall keys its sets
//! (host bits cleared, a bare address meaning a host prefix); and
//! [`Ipv4Net`], an IPv4 network for the DHCP server (mask, broadcast).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use crate::addr::{DottedQuad, family_bits, ip_to_u128, parse_ip, read_dotted_quad, u128_to_ip};

/// Prefix text refused, or a prefix length too long for its family.
/// `Display` is neutron-lib's wording, which the API returns as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CidrError {
    input: String,
    /// What the input most likely meant, when it is understandable.
    recommended: Option<Cidr>,
}

impl CidrError {
    fn invalid(input: impl Into<String>) -> CidrError {
        CidrError {
            input: input.into(),
            recommended: None,
        }
    }

    /// The refused text.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// The canonical spelling of what was meant, if the input was readable.
    pub fn recommended(&self) -> Option<Cidr> {
        self.recommended
    }
}

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.recommended {
            None => write!(f, "'{}' is not a valid IP subnet", self.input),
            Some(c) => write!(
                f,
                "'{}' isn't a recognized IP subnet cidr, '{c}' is recommended",
                self.input
            ),
        }
    }
}

impl std::error::Error for CidrError {}

/// An IP prefix of either family. The address is kept as written, because a
/// subnet's gateway may be written as `10.0.0.1/24`; [`Cidr::network`] gives
/// the normalised form. Orders by address, then prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Builds a prefix; fails when `prefix` exceeds the family's bit width.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Cidr, CidrError> {
        if prefix > family_bits(addr) {
            return Err(CidrError::invalid(format!("{addr}/{prefix}")));
        }
        Ok(Cidr { addr, prefix })
    }

    /// The single address `addr` (/32 or /128).
    pub fn host(addr: IpAddr) -> Cidr {
        Cidr {
            addr,
            prefix: family_bits(addr),
        }
    }

    /// Parses `addr/prefix` like neutron-lib's `validate_subnet`: the '/' is
    /// mandatory (a bare address is ambiguous about the subnet size), the
    /// prefix is plain decimal within the family's width, and the address is
    /// as strict as [`parse_ip`]. Host bits are kept.
    pub fn parse(s: &str) -> Result<Cidr, CidrError> {
        let not_valid = || CidrError::invalid(s);
        let recommend = |c: Cidr| CidrError {
            input: s.to_owned(),
            recommended: Some(c.network()),
        };
        let Some((addr_text, prefix_text)) = s.split_once('/') else {
            return match parse_ip(s) {
                Ok(ip) => Err(recommend(Cidr::host(ip))),
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

    /// An address (a host prefix) or a prefix, with the host bits cleared:
    /// how the agent reads the feed's fixed IPs, address pairs and remote
    /// prefixes into firewall sets. The text rules are [`Cidr::parse`]'s.
    pub fn parse_host_or_network(s: &str) -> Result<Cidr, CidrError> {
        if s.contains('/') {
            Cidr::parse(s).map(|c| c.network())
        } else {
            parse_ip(s)
                .map(Cidr::host)
                .map_err(|_| CidrError::invalid(s))
        }
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

    /// True for a single address (/32 or /128).
    pub fn is_host(&self) -> bool {
        self.prefix == family_bits(self.addr)
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

    /// True when every address of `other` is inside this prefix.
    pub fn covers(&self, other: &Cidr) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
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

    /// First and last address of an IPv6 prefix as integers ((0, 0) for IPv4).
    pub fn v6_bounds(&self) -> (u128, u128) {
        if self.is_v4() {
            (0, 0)
        } else {
            (self.first(), self.last())
        }
    }

    /// The IPv6 prefix spanning `lo..=hi`, if that range is one.
    pub fn from_v6_bounds(lo: u128, hi: u128) -> Option<Cidr> {
        let size = hi.checked_sub(lo)?.checked_add(1);
        let prefix = match size {
            None => 0, // the whole space
            Some(n) if n.is_power_of_two() && lo.is_multiple_of(n) => {
                u8::try_from(128 - n.trailing_zeros()).ok()?
            }
            Some(_) => return None,
        };
        Some(Cidr {
            addr: IpAddr::V6(lo.into()),
            prefix,
        })
    }

    /// Prints a host prefix as the bare address and any other as
    /// `addr/len`: nft's spelling of set elements.
    pub fn compact(&self) -> impl fmt::Display + '_ {
        Compact(self)
    }
}

struct Compact<'a>(&'a Cidr);

impl fmt::Display for Compact<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_host() {
            write!(f, "{}", self.0.addr)
        } else {
            write!(f, "{}", self.0)
        }
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    /// [`Cidr::parse`].
    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        Cidr::parse(s)
    }
}

impl fmt::Display for Cidr {
    /// `addr/len`, the address as written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An IPv4 network: the address has its host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    prefix: u8,
}

fn v4_mask(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0)
}

impl Ipv4Net {
    /// The network of `addr` with `prefix` bits (host bits are cleared);
    /// fails when `prefix` > 32.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Ipv4Net, CidrError> {
        if prefix > 32 {
            return Err(CidrError::invalid(format!("{addr}/{prefix}")));
        }
        Ok(Ipv4Net {
            addr: Ipv4Addr::from(u32::from(addr) & v4_mask(prefix)),
            prefix,
        })
    }

    /// The network address.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The netmask (`255.255.255.0` for a /24).
    pub fn mask(&self) -> Ipv4Addr {
        Ipv4Addr::from(v4_mask(self.prefix))
    }

    /// The last address of the network.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !v4_mask(self.prefix))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & v4_mask(self.prefix) == u32::from(self.addr)
    }
}

impl FromStr for Ipv4Net {
    type Err = CidrError;

    /// [`Cidr::parse`]'s text rules, IPv4 only; host bits are cleared
    /// ("10.0.0.5/24" is 10.0.0.0/24).
    fn from_str(s: &str) -> Result<Ipv4Net, CidrError> {
        Ipv4Net::try_from(Cidr::parse(s)?).map_err(|_| CidrError::invalid(s))
    }
}

impl TryFrom<Cidr> for Ipv4Net {
    type Error = CidrError;

    /// The IPv4 network of `c`; an IPv6 prefix is refused.
    fn try_from(c: Cidr) -> Result<Ipv4Net, CidrError> {
        match c.addr {
            IpAddr::V4(a) => Ipv4Net::new(a, c.prefix),
            IpAddr::V6(_) => Err(CidrError::invalid(c.to_string())),
        }
    }
}

impl From<Ipv4Net> for Cidr {
    fn from(n: Ipv4Net) -> Cidr {
        Cidr {
            addr: IpAddr::V4(n.addr),
            prefix: n.prefix,
        }
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn cidr(s: &str) -> Cidr {
        Cidr::parse(s).expect("test prefix")
    }

    #[test]
    fn parse_and_display() {
        let c = cidr("10.0.0.5/24");
        assert_eq!(c.addr(), ip("10.0.0.5"));
        assert_eq!(c.prefix(), 24);
        assert!(!c.is_network());
        assert_eq!(c.to_string(), "10.0.0.5/24");
        assert_eq!(c.network().to_string(), "10.0.0.0/24");
        assert!(c.network().is_network());
        assert_eq!(c.first(), ip_to_u128(ip("10.0.0.0")));
        assert_eq!(c.last(), ip_to_u128(ip("10.0.0.255")));
        assert_eq!(c.size(), 256);
        assert_eq!(cidr("2001:DB8:0::/64").to_string(), "2001:db8::/64");
        assert_eq!(cidr("::/0").size(), u128::MAX);
        assert_eq!(cidr("0.0.0.0/0").size(), 1 << 32);
        assert_eq!(cidr("10.1.2.3/32").size(), 1);
        for text in [
            "10.0.0.0/8",
            "10.0.0.1/24",
            "2001:db8::1/64",
            "::/0",
            "0.0.0.0/0",
        ] {
            assert_eq!(cidr(text).to_string(), text);
            assert_eq!(text.parse::<Cidr>().unwrap(), cidr(text));
        }
    }

    #[test]
    fn parse_errors_in_neutrons_words() {
        let msg = |s: &str| Cidr::parse(s).unwrap_err().to_string();
        assert_eq!(
            msg("10.0.0.0"),
            "'10.0.0.0' isn't a recognized IP subnet cidr, '10.0.0.0/32' is recommended"
        );
        assert_eq!(
            msg("010.0.0.0/8"),
            "'010.0.0.0/8' isn't a recognized IP subnet cidr, '10.0.0.0/8' is recommended"
        );
        assert_eq!(
            Cidr::parse("010.0.0.0/8").unwrap_err().recommended(),
            Some(cidr("10.0.0.0/8"))
        );
        assert_eq!(msg("10.0.0.0/33"), "'10.0.0.0/33' is not a valid IP subnet");
        assert_eq!(
            msg("2001:db8::/129"),
            "'2001:db8::/129' is not a valid IP subnet"
        );
        for bad in [
            "",
            "/",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/ 8",
            "10.0.0.0/0024",
            "10.0.0.0/024",
            "/24",
            "x/24",
            "10.0.0.0/24/1",
            "10.0.0.0/256",
            "10.0.0.0/é",
            "é/24",
        ] {
            let err = Cidr::parse(bad).unwrap_err();
            assert_eq!(err.input(), bad);
            assert_eq!(err.to_string(), format!("'{bad}' is not a valid IP subnet"));
        }
        assert!(Cidr::new(ip("10.0.0.0"), 33).is_err());
        assert_eq!(
            Cidr::new(ip("10.0.0.0"), 33).unwrap_err().to_string(),
            "'10.0.0.0/33' is not a valid IP subnet"
        );
        assert!(Cidr::new(ip("::"), 128).is_ok());
    }

    #[test]
    fn contains_covers_overlaps() {
        let c = cidr("10.0.0.0/24");
        assert!(c.contains(ip("10.0.0.0")));
        assert!(c.contains(ip("10.0.0.255")));
        assert!(!c.contains(ip("10.0.1.0")));
        assert!(!c.contains(ip("::a00:1")));
        let v6 = cidr("::/96");
        assert!(
            !v6.contains(ip("10.0.0.1")),
            "families never mix even with equal integers"
        );
        assert!(c.overlaps(&cidr("10.0.0.128/25")));
        assert!(c.overlaps(&cidr("10.0.0.0/8")));
        assert!(!c.overlaps(&cidr("10.0.1.0/24")));
        assert!(!c.overlaps(&v6));
        assert!(c.covers(&cidr("10.0.0.128/25")));
        assert!(c.covers(&Cidr::host(ip("10.0.0.7"))));
        assert!(c.covers(&c));
        assert!(!c.covers(&cidr("10.0.0.0/8")));
        assert!(!c.covers(&cidr("10.0.1.0/25")));
        assert!(!v6.covers(&Cidr::host(ip("10.0.0.1"))));
    }

    #[test]
    fn host_or_network_for_firewall_sets() {
        let p = |s: &str| Cidr::parse_host_or_network(s);
        assert_eq!(p("10.0.0.5"), Ok(Cidr::host(ip("10.0.0.5"))));
        assert!(p("10.0.0.5").unwrap().is_host());
        assert_eq!(p("10.1.2.3/8"), Ok(cidr("10.0.0.0/8")));
        assert_eq!(p("2001:db8::1/32"), Ok(cidr("2001:db8::/32")));
        assert_eq!(p("2001:db8::1"), Ok(Cidr::host(ip("2001:db8::1"))));
        for bad in ["", "10.0.0", "10.0.0.0/33", "x", "010.0.0.1", "10.0.0.0/+8"] {
            assert_eq!(p(bad).unwrap_err().input(), bad);
        }
    }

    #[test]
    fn compact_display_drops_host_lengths() {
        assert_eq!(Cidr::host(ip("10.0.0.5")).compact().to_string(), "10.0.0.5");
        assert_eq!(
            Cidr::host(ip("2001:db8::5")).compact().to_string(),
            "2001:db8::5"
        );
        assert_eq!(cidr("10.0.0.0/24").compact().to_string(), "10.0.0.0/24");
        assert_eq!(Cidr::host(ip("10.0.0.5")).to_string(), "10.0.0.5/32");
    }

    #[test]
    fn v6_bounds_round_trip() {
        let c = cidr("2001:db8::/32");
        let (lo, hi) = c.v6_bounds();
        assert_eq!(Cidr::from_v6_bounds(lo, hi), Some(c));
        let h = Cidr::host(ip("2001:db8::1"));
        let (lo, hi) = h.v6_bounds();
        assert_eq!(lo, hi);
        assert_eq!(Cidr::from_v6_bounds(lo, hi), Some(h));
        assert_eq!(Cidr::from_v6_bounds(0, u128::MAX), Some(cidr("::/0")));
        assert_eq!(Cidr::from_v6_bounds(1, 2), None);
        assert_eq!(Cidr::from_v6_bounds(2, 1), None);
        assert_eq!(cidr("10.0.0.0/8").v6_bounds(), (0, 0));
    }

    #[test]
    fn orders_by_address_then_length() {
        let mut v = [
            cidr("10.0.0.0/24"),
            cidr("::/0"),
            cidr("10.0.0.0/8"),
            cidr("9.0.0.0/8"),
        ];
        v.sort();
        let text: Vec<String> = v.iter().map(Cidr::to_string).collect();
        assert_eq!(text, ["9.0.0.0/8", "10.0.0.0/8", "10.0.0.0/24", "::/0"]);
    }

    #[test]
    fn ipv4_net_math() {
        let n: Ipv4Net = "10.1.2.3/24".parse().unwrap();
        assert_eq!(n.addr(), Ipv4Addr::new(10, 1, 2, 0));
        assert_eq!(n.mask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(n.broadcast(), Ipv4Addr::new(10, 1, 2, 255));
        assert!(n.contains(Ipv4Addr::new(10, 1, 2, 200)));
        assert!(!n.contains(Ipv4Addr::new(10, 1, 3, 1)));
        let all: Ipv4Net = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(all.mask(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(all.broadcast(), Ipv4Addr::BROADCAST);
        let host: Ipv4Net = "10.0.0.7/32".parse().unwrap();
        assert_eq!(host.mask(), Ipv4Addr::BROADCAST);
        assert_eq!(host.broadcast(), Ipv4Addr::new(10, 0, 0, 7));
        for bad in ["10.0.0.0/33", "10.0.0.0", "fe80::/64", "", "x/8"] {
            assert_eq!(bad.parse::<Ipv4Net>().unwrap_err().input(), bad);
        }
        assert!(Ipv4Net::new(Ipv4Addr::new(10, 0, 0, 0), 33).is_err());
        assert_eq!(n.to_string(), "10.1.2.0/24");
        assert_eq!(Cidr::from(n), cidr("10.1.2.0/24"));
        assert_eq!(Ipv4Net::try_from(cidr("10.1.2.3/24")), Ok(n));
        assert!(Ipv4Net::try_from(cidr("2001:db8::/64")).is_err());
    }
}
