//! Address text and ranges for IPAM: [`parse_ip`] with IPAM's error, and
//! [`AddrRange`], the unit pools and free space are kept in. The value types
//! themselves ([`Cidr`], the `u128` conversions) are `neutrino-net`'s.

use neutrino_net::{AddrError, CidrError};
pub use neutrino_net::{Cidr, ip_to_u128, u128_to_ip};
use std::net::IpAddr;

use crate::error::IpamError;

/// Parses an address as strictly as neutron-lib's `validate_ip_address`
/// ([`neutrino_net::parse_ip`]), failing with IPAM's error.
pub fn parse_ip(s: &str) -> Result<IpAddr, IpamError> {
    neutrino_net::parse_ip(s).map_err(IpamError::from)
}

impl From<AddrError> for IpamError {
    fn from(e: AddrError) -> IpamError {
        IpamError::InvalidAddress {
            message: e.to_string(),
        }
    }
}

impl From<CidrError> for IpamError {
    fn from(e: CidrError) -> IpamError {
        IpamError::InvalidCidr {
            message: e.to_string(),
        }
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

    /// All addresses of `cidr`.
    pub fn of(cidr: &Cidr) -> AddrRange {
        AddrRange::new(cidr.first(), cidr.last())
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

    /// The text rules and their full list of cases are `neutrino-net`'s;
    /// here: the API's errors carry neutron-lib's wording unchanged.
    #[test]
    fn errors_keep_neutrons_wording() {
        assert_eq!(
            parse_ip("2001:DB8:0:0::1").map(|a| a.to_string()),
            Ok("2001:db8::1".to_string())
        );
        assert_eq!(
            parse_ip("010.0.0.1"),
            Err(IpamError::InvalidAddress {
                message: "'010.0.0.1' is not an accepted IP address, '10.0.0.1' is recommended"
                    .into()
            })
        );
        assert_eq!(
            parse_ip("10.0.0"),
            Err(IpamError::InvalidAddress {
                message: "'10.0.0' is not a valid IP address".into()
            })
        );
        let cidr = |s: &str| Cidr::parse(s).map_err(IpamError::from);
        assert_eq!(
            cidr("10.0.0.0"),
            Err(IpamError::InvalidCidr {
                message:
                    "'10.0.0.0' isn't a recognized IP subnet cidr, '10.0.0.0/32' is recommended"
                        .into()
            })
        );
        assert_eq!(
            cidr("10.0.0.0/33").map_err(|e| e.to_string()),
            Err("Invalid input for operation: '10.0.0.0/33' is not a valid IP subnet.".into())
        );
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
