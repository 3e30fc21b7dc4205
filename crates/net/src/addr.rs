//! Address text and arithmetic: the strict parser the API applies to every
//! address it is given (neutron-lib's `validate_ip_address`), and addresses as
//! `u128` so IPv4 and IPv6 share one code path.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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

/// Number of address bits of the family: 32 or 128.
pub(crate) fn family_bits(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

/// Address text [`parse_ip`] refuses. `Display` is neutron-lib's wording,
/// which the API returns as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrError {
    /// "'x' is not a valid IP address"
    Invalid { input: String },
    /// A dotted quad readable only by ignoring leading zeros:
    /// "'010.0.0.1' is not an accepted IP address, '10.0.0.1' is recommended".
    LeadingZeros {
        input: String,
        recommended: Ipv4Addr,
    },
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddrError::Invalid { input } => write!(f, "'{input}' is not a valid IP address"),
            AddrError::LeadingZeros { input, recommended } => write!(
                f,
                "'{input}' is not an accepted IP address, '{recommended}' is recommended"
            ),
        }
    }
}

impl std::error::Error for AddrError {}

/// The outcome of reading a dotted quad: either exact, or readable only by
/// ignoring leading zeros (which Neutron rejects but names the fix for).
pub(crate) enum DottedQuad {
    Exact(Ipv4Addr),
    LeadingZeros(Ipv4Addr),
}

/// Reads `a.b.c.d` with decimal octets only. `u8::from_str` would accept
/// '+1', so digits are checked by hand.
pub(crate) fn read_dotted_quad(s: &str) -> Option<DottedQuad> {
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
pub fn parse_ip(s: &str) -> Result<IpAddr, AddrError> {
    let invalid = || AddrError::Invalid {
        input: s.to_owned(),
    };
    if s.contains(':') {
        return s.parse::<Ipv6Addr>().map(IpAddr::V6).map_err(|_| invalid());
    }
    if s.bytes().filter(|&b| b == b'.').count() != 3 {
        return Err(invalid());
    }
    match read_dotted_quad(s) {
        Some(DottedQuad::Exact(ip)) => Ok(IpAddr::V4(ip)),
        Some(DottedQuad::LeadingZeros(ip)) => Err(AddrError::LeadingZeros {
            input: s.to_owned(),
            recommended: ip,
        }),
        None => Err(invalid()),
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
    fn accepts_canonical() {
        assert_eq!(parse_ip("10.0.0.1"), Ok(ip("10.0.0.1")));
        assert_eq!(parse_ip("0.0.0.0"), Ok(ip("0.0.0.0")));
        assert_eq!(parse_ip("2001:DB8:0:0::1"), Ok(ip("2001:db8::1")));
    }

    #[test]
    fn leading_zeros_name_the_fix() {
        let err = parse_ip("010.0.0.1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "'010.0.0.1' is not an accepted IP address, '10.0.0.1' is recommended"
        );
        assert!(parse_ip("10.0.0.01").is_err());
        assert!(parse_ip("10.00.0.1").is_err());
    }

    #[test]
    fn refuses_malformed() {
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
            "1.2.3.4é",
            "0000001.0.0.1",
        ] {
            let err = parse_ip(bad).unwrap_err();
            assert_eq!(err, AddrError::Invalid { input: bad.into() });
            assert_eq!(
                err.to_string(),
                format!("'{bad}' is not a valid IP address")
            );
        }
    }
}
