//! Modified EUI-64 addresses for SLAAC and DHCPv6-stateless subnets. Neutron
//! computes the address the host will autoconfigure from its MAC (oslo.utils
//! `get_ipv6_addr_by_EUI64`) and records it on the port, so anti-spoofing rules
//! and the API show the same address the guest actually uses.

use std::net::Ipv6Addr;

use crate::addr::Cidr;
use crate::error::IpamError;

/// The SLAAC address of `mac` on `prefix`.
///
/// Only a /64 works: SLAAC interface identifiers are exactly 64 bits, so any
/// other prefix length would give an address the host never configures.
/// The identifier is the MAC with the universal/local bit (0x02 of the first
/// octet) flipped and `ff:fe` inserted in the middle (RFC 4291 appendix A).
pub fn eui64(prefix: &Cidr, mac: [u8; 6]) -> Result<Ipv6Addr, IpamError> {
    if prefix.is_v4() || prefix.prefix() != 64 {
        return Err(IpamError::NotSlaacPrefix {
            cidr: prefix.to_string(),
        });
    }
    let interface_id = [
        mac[0] ^ 0x02,
        mac[1],
        mac[2],
        0xff,
        0xfe,
        mac[3],
        mac[4],
        mac[5],
    ];
    let iid = u64::from_be_bytes(interface_id);
    Ok(Ipv6Addr::from(prefix.first() | u128::from(iid)))
}

/// Parses `xx:xx:xx:xx:xx:xx` (or with '-' separators), any case.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let sep = if s.contains('-') { '-' } else { ':' };
    let mut mac = [0u8; 6];
    let mut parts = s.split(sep);
    for byte in &mut mac {
        let part = parts.next()?;
        if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutron_reference_example() {
        let prefix = Cidr::parse("2001:db8::/64").unwrap();
        let mac = parse_mac("fa:16:3e:12:34:56").unwrap();
        let expected: Ipv6Addr = "2001:db8::f816:3eff:fe12:3456".parse().unwrap();
        assert_eq!(eui64(&prefix, mac), Ok(expected));
    }

    #[test]
    fn ul_bit_is_flipped_both_ways() {
        let prefix = Cidr::parse("2001:db8:1:2::/64").unwrap();
        let got = eui64(&prefix, [0x00, 0x11, 0x22, 0x33, 0x44, 0x55]).unwrap();
        assert_eq!(got.to_string(), "2001:db8:1:2:211:22ff:fe33:4455");
        // Host bits in the written prefix are ignored.
        let with_host_bits = Cidr::parse("2001:db8:1:2::99/64").unwrap();
        assert_eq!(
            eui64(&with_host_bits, [0x00, 0x11, 0x22, 0x33, 0x44, 0x55]),
            Ok(got)
        );
    }

    #[test]
    fn requires_v6_slash64() {
        let mac = [0xfa, 0x16, 0x3e, 0, 0, 1];
        for bad in ["2001:db8::/63", "2001:db8::/80", "10.0.0.0/24"] {
            let err = eui64(&Cidr::parse(bad).unwrap(), mac).unwrap_err();
            assert_eq!(err, IpamError::NotSlaacPrefix { cidr: bad.into() });
            assert_eq!(err.http_status(), 400);
        }
    }

    #[test]
    fn mac_parsing() {
        assert_eq!(
            parse_mac("FA-16-3E-12-34-56"),
            Some([0xfa, 0x16, 0x3e, 0x12, 0x34, 0x56])
        );
        assert_eq!(
            parse_mac("fa:16:3e:12:34:56"),
            Some([0xfa, 0x16, 0x3e, 0x12, 0x34, 0x56])
        );
        for bad in [
            "",
            "fa:16:3e:12:34",
            "fa:16:3e:12:34:56:78",
            "fa:16:3e:12:34:5",
            "fa:16:3e-12:34:56",
            "fa:16:3e:12:34:5g",
            "+a:16:3e:12:34:56",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }
}
