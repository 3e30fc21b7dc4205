//! Modified EUI-64 addresses for SLAAC and DHCPv6-stateless subnets. Neutron
//! computes the address the host will autoconfigure from its MAC (oslo.utils
//! `get_ipv6_addr_by_EUI64`) and records it on the port, so anti-spoofing rules
//! and the API show the same address the guest actually uses.

use std::net::Ipv6Addr;

use neutrino_net::Mac;

use crate::addr::Cidr;
use crate::error::IpamError;

/// The SLAAC address of `mac` on `prefix`.
///
/// Only a /64 works: SLAAC interface identifiers are exactly 64 bits, so any
/// other prefix length would give an address the host never configures.
/// The identifier is [`Mac::eui64_interface_id`] (RFC 4291 appendix A).
pub fn eui64(prefix: &Cidr, mac: Mac) -> Result<Ipv6Addr, IpamError> {
    if prefix.is_v4() || prefix.prefix() != 64 {
        return Err(IpamError::NotSlaacPrefix {
            cidr: prefix.to_string(),
        });
    }
    let iid = mac.eui64_interface_id();
    Ok(Ipv6Addr::from(prefix.first() | u128::from(iid)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutron_reference_example() {
        let prefix = Cidr::parse("2001:db8::/64").unwrap();
        let mac: Mac = "fa:16:3e:12:34:56".parse().unwrap();
        let expected: Ipv6Addr = "2001:db8::f816:3eff:fe12:3456".parse().unwrap();
        assert_eq!(eui64(&prefix, mac), Ok(expected));
    }

    #[test]
    fn ul_bit_is_flipped_both_ways() {
        let prefix = Cidr::parse("2001:db8:1:2::/64").unwrap();
        let got = eui64(&prefix, Mac::new([0x00, 0x11, 0x22, 0x33, 0x44, 0x55])).unwrap();
        assert_eq!(got.to_string(), "2001:db8:1:2:211:22ff:fe33:4455");
        // Host bits in the written prefix are ignored.
        let with_host_bits = Cidr::parse("2001:db8:1:2::99/64").unwrap();
        assert_eq!(
            eui64(
                &with_host_bits,
                Mac::new([0x00, 0x11, 0x22, 0x33, 0x44, 0x55])
            ),
            Ok(got)
        );
    }

    #[test]
    fn requires_v6_slash64() {
        let mac = Mac::new([0xfa, 0x16, 0x3e, 0, 0, 1]);
        for bad in ["2001:db8::/63", "2001:db8::/80", "10.0.0.0/24"] {
            let err = eui64(&Cidr::parse(bad).unwrap(), mac).unwrap_err();
            assert_eq!(err, IpamError::NotSlaacPrefix { cidr: bad.into() });
            assert_eq!(err.http_status(), 400);
        }
    }
}
