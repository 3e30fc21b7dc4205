//! Neutron's defaults and validation for a subnet's gateway and allocation
//! pools (neutron `ipam/utils.py` and `db/ipam_backend_mixin.py`). Clients
//! create subnets without pools and expect exactly Neutron's pools back, so the
//! defaults here are part of the API contract, not a policy choice.

use std::net::IpAddr;

use crate::addr::{AddrRange, Cidr, ip_to_u128, u128_to_ip};
use crate::error::IpamError;

/// IPv4 prefixes up to /30 reserve the network and broadcast addresses; /31
/// (RFC 3021 point-to-point) and /32 have none to spare.
fn has_v4_broadcast(cidr: &Cidr) -> bool {
    cidr.is_v4() && cidr.prefix() <= 30
}

/// The gateway Neutron assigns when the client omits `gateway_ip`.
///
/// IPv4 up to /30 takes the first host address. /31 and /32 get none: on a /31
/// Neutron's default would be the last address, which it then rejects, so
/// clients must pass `gateway_ip: null` anyway. IPv6 uses the network address
/// itself (the subnet-router anycast address), as Neutron does.
pub fn default_gateway(cidr: &Cidr) -> Option<IpAddr> {
    if cidr.is_v4() {
        if cidr.prefix() <= 30 {
            Some(u128_to_ip(cidr.first().saturating_add(1), true))
        } else {
            None
        }
    } else {
        Some(u128_to_ip(cidr.first(), false))
    }
}

/// The addresses that may ever be handed to ports from pools.
///
/// IPv4 up to /30 excludes network and broadcast; /31 and /32 use every
/// address. IPv6 excludes the network (anycast) address, except on a /128
/// whose only address is the network address.
pub fn usable_range(cidr: &Cidr) -> AddrRange {
    let (first, last) = (cidr.first(), cidr.last());
    if has_v4_broadcast(cidr) {
        AddrRange::new(first.saturating_add(1), last.saturating_sub(1))
    } else if cidr.is_v4() || first == last {
        AddrRange::new(first, last)
    } else {
        AddrRange::new(first.saturating_add(1), last)
    }
}

/// The pools Neutron generates when the client gives none: the usable range
/// minus the gateway, so a gateway in the middle splits it into two pools.
pub fn default_pools(cidr: &Cidr, gateway: Option<IpAddr>) -> Vec<AddrRange> {
    let usable = usable_range(cidr);
    let gw = gateway
        .filter(|g| g.is_ipv4() == cidr.is_v4())
        .map(ip_to_u128);
    match gw {
        Some(g) if usable.contains(g) => {
            let mut pools = Vec::with_capacity(2);
            if g > usable.first {
                pools.push(AddrRange::new(usable.first, g - 1));
            }
            if g < usable.last {
                pools.push(AddrRange::new(g + 1, usable.last));
            }
            pools
        }
        _ => vec![usable],
    }
}

/// Checks an explicit gateway like Neutron's `_validate_subnet`.
///
/// A gateway outside the CIDR is accepted: Neutron allows on-link gateways
/// reachable through a host route, and cannot check them without knowing the
/// gateway's own subnet.
pub fn validate_gateway(cidr: &Cidr, gw: IpAddr) -> Result<(), IpamError> {
    if gw.is_ipv4() != cidr.is_v4() {
        let version = if cidr.is_v4() { 4 } else { 6 };
        return Err(IpamError::InvalidGateway {
            message: format!("gateway_ip '{gw}' does not match the ip_version '{version}'"),
        });
    }
    let g = ip_to_u128(gw);
    if has_v4_broadcast(cidr) && (g == cidr.first() || g == cidr.last()) {
        return Err(IpamError::InvalidGateway {
            message: "Gateway is not valid on subnet".into(),
        });
    }
    Ok(())
}

/// Validates client-given pools and returns them sorted ascending (the order
/// Neutron reports them in).
///
/// Checks run in Neutron's order so the first error matches: shape of each pool
/// (400 `InvalidAllocationPool`), bounds (400 `OutOfBoundsAllocationPool`),
/// overlap (409 `OverlappingAllocationPools`), gateway inside a pool
/// (409 `GatewayConflictWithAllocationPools`).
pub fn validate_pools(
    cidr: &Cidr,
    pools: &[(IpAddr, IpAddr)],
    gateway: Option<IpAddr>,
) -> Result<Vec<AddrRange>, IpamError> {
    let v4 = cidr.is_v4();
    let subnet_cidr = cidr.network().to_string();
    let mut ranges = Vec::with_capacity(pools.len());
    for &(start, end) in pools {
        let same_family = start.is_ipv4() == v4 && end.is_ipv4() == v4;
        let range = AddrRange::new(ip_to_u128(start), ip_to_u128(end));
        if !same_family || range.is_empty() {
            return Err(IpamError::InvalidAllocationPool {
                pool: format!("{start}-{end}"),
            });
        }
        ranges.push(range);
    }
    let usable = usable_range(cidr);
    if let Some(out) = ranges
        .iter()
        .find(|r| r.first < usable.first || r.last > usable.last)
    {
        return Err(IpamError::OutOfBoundsAllocationPool {
            pool: out.to_text(v4),
            subnet_cidr,
        });
    }
    ranges.sort();
    if let Some(pair) = ranges.windows(2).find(|w| w[0].overlaps(&w[1])) {
        return Err(IpamError::OverlappingAllocationPools {
            pool_1: pair[0].to_text(v4),
            pool_2: pair[1].to_text(v4),
            subnet_cidr,
        });
    }
    if let Some(gw) = gateway.filter(|g| g.is_ipv4() == v4) {
        let g = ip_to_u128(gw);
        if let Some(hit) = ranges.iter().find(|r| r.contains(g)) {
            return Err(IpamError::GatewayConflictWithAllocationPools {
                pool: hit.to_text(v4),
                ip_address: gw.to_string(),
            });
        }
    }
    Ok(ranges)
}

/// Pools as `(start, end)` text for the API's `allocation_pools`.
pub fn pools_to_strings(ranges: &[AddrRange], v4: bool) -> Vec<(String, String)> {
    ranges
        .iter()
        .map(|r| {
            (
                u128_to_ip(r.first, v4).to_string(),
                u128_to_ip(r.last, v4).to_string(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Cidr {
        Cidr::parse(s).expect("test cidr")
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }
    fn strings(ranges: &[AddrRange], v4: bool) -> Vec<(String, String)> {
        pools_to_strings(ranges, v4)
    }
    fn pair(a: &str, b: &str) -> (String, String) {
        (a.to_string(), b.to_string())
    }

    #[test]
    fn v4_slash24_defaults() {
        let c = cidr("10.0.0.0/24");
        let gw = default_gateway(&c);
        assert_eq!(gw, Some(ip("10.0.0.1")));
        assert_eq!(
            strings(&default_pools(&c, gw), true),
            vec![pair("10.0.0.2", "10.0.0.254")]
        );
        assert_eq!(
            strings(&default_pools(&c, None), true),
            vec![pair("10.0.0.1", "10.0.0.254")]
        );
    }

    #[test]
    fn v4_mid_range_gateway_splits_pool() {
        let c = cidr("10.0.0.0/24");
        assert_eq!(
            strings(&default_pools(&c, Some(ip("10.0.0.100"))), true),
            vec![
                pair("10.0.0.1", "10.0.0.99"),
                pair("10.0.0.101", "10.0.0.254")
            ]
        );
        // Gateway at the end of the usable range or outside the subnet: one pool.
        assert_eq!(
            strings(&default_pools(&c, Some(ip("10.0.0.254"))), true),
            vec![pair("10.0.0.1", "10.0.0.253")]
        );
        assert_eq!(
            strings(&default_pools(&c, Some(ip("192.168.0.1"))), true),
            vec![pair("10.0.0.1", "10.0.0.254")]
        );
    }

    #[test]
    fn v4_slash30_31_32() {
        let c30 = cidr("10.0.0.0/30");
        assert_eq!(default_gateway(&c30), Some(ip("10.0.0.1")));
        assert_eq!(
            strings(&default_pools(&c30, default_gateway(&c30)), true),
            vec![pair("10.0.0.2", "10.0.0.2")]
        );

        let c31 = cidr("10.0.0.0/31");
        assert_eq!(default_gateway(&c31), None);
        assert_eq!(usable_range(&c31), AddrRange::new(0x0a00_0000, 0x0a00_0001));
        assert_eq!(
            strings(&default_pools(&c31, None), true),
            vec![pair("10.0.0.0", "10.0.0.1")]
        );

        let c32 = cidr("10.0.0.7/32");
        assert_eq!(default_gateway(&c32), None);
        assert_eq!(
            strings(&default_pools(&c32, None), true),
            vec![pair("10.0.0.7", "10.0.0.7")]
        );
        // A gateway equal to the only address leaves no pool.
        assert!(default_pools(&c32, Some(ip("10.0.0.7"))).is_empty());
    }

    #[test]
    fn v6_slash64_defaults() {
        let c = cidr("2001:db8:1::/64");
        let gw = default_gateway(&c);
        assert_eq!(gw, Some(ip("2001:db8:1::")));
        assert_eq!(
            strings(&default_pools(&c, gw), false),
            vec![pair("2001:db8:1::1", "2001:db8:1:0:ffff:ffff:ffff:ffff")]
        );
        let c128 = cidr("2001:db8::5/128");
        assert_eq!(usable_range(&c128).len(), 1);
    }

    #[test]
    fn defaults_use_network_when_host_bits_given() {
        let c = cidr("10.0.0.77/24");
        assert_eq!(default_gateway(&c), Some(ip("10.0.0.1")));
        assert_eq!(
            strings(&default_pools(&c, None), true),
            vec![pair("10.0.0.1", "10.0.0.254")]
        );
    }

    #[test]
    fn gateway_validation() {
        let c = cidr("10.0.0.0/24");
        assert_eq!(validate_gateway(&c, ip("10.0.0.1")), Ok(()));
        assert_eq!(validate_gateway(&c, ip("10.0.0.254")), Ok(()));
        assert_eq!(
            validate_gateway(&c, ip("192.168.1.1")),
            Ok(()),
            "on-link gateway outside the cidr"
        );
        for bad in ["10.0.0.0", "10.0.0.255"] {
            assert_eq!(
                validate_gateway(&c, ip(bad)),
                Err(IpamError::InvalidGateway {
                    message: "Gateway is not valid on subnet".into()
                })
            );
        }
        let err = validate_gateway(&c, ip("2001:db8::1")).unwrap_err();
        assert_eq!(err.http_status(), 400);
        assert!(matches!(err, IpamError::InvalidGateway { .. }));
        assert_eq!(
            validate_gateway(&cidr("10.0.0.0/31"), ip("10.0.0.0")),
            Ok(())
        );
        assert_eq!(
            validate_gateway(&cidr("2001:db8::/64"), ip("2001:db8::")),
            Ok(())
        );
    }

    #[test]
    fn pools_valid_are_sorted() {
        let c = cidr("10.0.0.0/24");
        let got = validate_pools(
            &c,
            &[
                (ip("10.0.0.100"), ip("10.0.0.200")),
                (ip("10.0.0.2"), ip("10.0.0.50")),
            ],
            Some(ip("10.0.0.1")),
        )
        .unwrap();
        assert_eq!(
            strings(&got, true),
            vec![
                pair("10.0.0.2", "10.0.0.50"),
                pair("10.0.0.100", "10.0.0.200")
            ]
        );
    }

    #[test]
    fn pool_errors() {
        let c = cidr("10.0.0.0/24");
        let err = validate_pools(&c, &[(ip("10.0.0.20"), ip("10.0.0.10"))], None).unwrap_err();
        assert_eq!(
            err,
            IpamError::InvalidAllocationPool {
                pool: "10.0.0.20-10.0.0.10".into()
            }
        );
        assert_eq!(err.http_status(), 400);

        let err = validate_pools(&c, &[(ip("2001:db8::1"), ip("2001:db8::2"))], None).unwrap_err();
        assert_eq!(err.neutron_type(), "InvalidAllocationPool");

        let err = validate_pools(&c, &[(ip("10.0.0.0"), ip("10.0.0.10"))], None).unwrap_err();
        assert_eq!(
            err,
            IpamError::OutOfBoundsAllocationPool {
                pool: "10.0.0.0-10.0.0.10".into(),
                subnet_cidr: "10.0.0.0/24".into()
            }
        );
        let err = validate_pools(&c, &[(ip("10.0.0.200"), ip("10.0.0.255"))], None).unwrap_err();
        assert_eq!(
            (err.neutron_type(), err.http_status()),
            ("OutOfBoundsAllocationPool", 400)
        );
        let err = validate_pools(&c, &[(ip("10.0.1.2"), ip("10.0.1.3"))], None).unwrap_err();
        assert_eq!(err.neutron_type(), "OutOfBoundsAllocationPool");

        let err = validate_pools(
            &c,
            &[
                (ip("10.0.0.50"), ip("10.0.0.60")),
                (ip("10.0.0.2"), ip("10.0.0.50")),
            ],
            None,
        )
        .unwrap_err();
        assert_eq!(
            err,
            IpamError::OverlappingAllocationPools {
                pool_1: "10.0.0.2-10.0.0.50".into(),
                pool_2: "10.0.0.50-10.0.0.60".into(),
                subnet_cidr: "10.0.0.0/24".into()
            }
        );
        assert_eq!(err.http_status(), 409);

        let err = validate_pools(
            &c,
            &[(ip("10.0.0.1"), ip("10.0.0.10"))],
            Some(ip("10.0.0.1")),
        )
        .unwrap_err();
        assert_eq!(
            err,
            IpamError::GatewayConflictWithAllocationPools {
                pool: "10.0.0.1-10.0.0.10".into(),
                ip_address: "10.0.0.1".into()
            }
        );
        assert_eq!(err.http_status(), 409);
        // Adjacent pools are not overlapping.
        assert!(
            validate_pools(
                &c,
                &[
                    (ip("10.0.0.2"), ip("10.0.0.9")),
                    (ip("10.0.0.10"), ip("10.0.0.20"))
                ],
                None
            )
            .is_ok()
        );
    }

    #[test]
    fn v6_pools_bounds() {
        let c = cidr("2001:db8::/64");
        assert_eq!(
            validate_pools(&c, &[(ip("2001:db8::"), ip("2001:db8::5"))], None)
                .unwrap_err()
                .neutron_type(),
            "OutOfBoundsAllocationPool"
        );
        assert!(
            validate_pools(
                &c,
                &[(ip("2001:db8::1"), ip("2001:db8::ffff:ffff:ffff:ffff"))],
                Some(ip("2001:db8::"))
            )
            .is_ok()
        );
    }
}
