//! The pluggable IPAM interface and the built-in driver (Neutron's
//! `neutrondb_ipam` equivalent).

use std::net::IpAddr;
use std::sync::Arc;

use imbl::{HashMap, OrdSet};

use crate::addr::{AddrRange, Cidr, ip_to_u128};
use crate::error::IpamError;
use crate::free_ranges::FreeRanges;

/// What a port asks a subnet for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressRequest {
    /// Any free address from the pools.
    Any,
    /// Exactly this address (anywhere in the CIDR, not only in the pools).
    Specific(IpAddr),
}

/// An IP address manager. The engine holds one per server and calls it inside
/// its single writer, so implementations need no locking. An external IPAM
/// (Infoblox, later) implements the same trait.
pub trait Ipam: Send + Sync {
    /// Starts managing a subnet whose ports draw from `pools`.
    fn add_subnet(
        &mut self,
        subnet_id: &str,
        cidr: Cidr,
        pools: Vec<AddrRange>,
    ) -> Result<(), IpamError>;
    /// Replace the pools; `allocated` are the addresses ports hold now (kept even if now outside the pools).
    fn update_pools(
        &mut self,
        subnet_id: &str,
        pools: Vec<AddrRange>,
        allocated: &[IpAddr],
    ) -> Result<(), IpamError>;
    /// Forgets a subnet and all its allocations.
    fn remove_subnet(&mut self, subnet_id: &str);
    /// Hands out an address.
    fn allocate(&mut self, subnet_id: &str, req: AddressRequest) -> Result<IpAddr, IpamError>;
    /// Makes the address reusable at once (nova-network's force_dhcp_release). Releasing an address that is not allocated is a no-op.
    fn release(&mut self, subnet_id: &str, ip: IpAddr) -> Result<(), IpamError>;
    /// True when a port holds `ip` in the subnet.
    fn is_allocated(&self, subnet_id: &str, ip: IpAddr) -> bool;
}

/// Allocation state of one subnet.
///
/// Addresses in the pools are tracked by what is still free ([`FreeRanges`]),
/// addresses outside the pools by what is taken (`outside`): ports may ask for
/// any address of the CIDR (EUI-64 addresses, an admin's pick), and uniqueness
/// must hold there too, yet such addresses are few. Every field is O(1) to
/// clone, so cloning the whole IPAM stays cheap.
#[derive(Clone, Debug)]
pub struct SubnetAllocations {
    cidr: Cidr,
    pools: Arc<[AddrRange]>,
    free: FreeRanges,
    outside: OrdSet<u128>,
}

impl SubnetAllocations {
    /// The subnet's prefix.
    pub fn cidr(&self) -> Cidr {
        self.cidr
    }

    /// The pools, sorted ascending.
    pub fn pools(&self) -> &[AddrRange] {
        &self.pools
    }

    /// The free addresses of the pools.
    pub fn free(&self) -> &FreeRanges {
        &self.free
    }

    /// Number of free pool addresses (for `network-ip-availability`).
    pub fn free_count(&self) -> u128 {
        self.free.free_count()
    }

    /// Number of addresses held outside the pools.
    pub fn outside_count(&self) -> usize {
        self.outside.len()
    }

    fn in_pools(&self, v: u128) -> bool {
        self.pools.iter().any(|p| p.contains(v))
    }

    /// True when `ip` may be assigned at all: same family, inside the CIDR, and
    /// not the IPv4 network or broadcast address (which hosts cannot use).
    fn assignable(&self, ip: IpAddr) -> bool {
        if !self.cidr.contains(ip) {
            return false;
        }
        let v = ip_to_u128(ip);
        !(self.cidr.is_v4()
            && self.cidr.prefix() <= 30
            && (v == self.cidr.first() || v == self.cidr.last()))
    }
}

/// Checks pools handed to the driver: the engine validates client input with
/// [`crate::validate_pools`], this only guards the driver's own invariant that
/// pools are non-empty and inside the CIDR. Returns them sorted.
fn checked_pools(cidr: &Cidr, mut pools: Vec<AddrRange>) -> Result<Arc<[AddrRange]>, IpamError> {
    let v4 = cidr.is_v4();
    if let Some(bad) = pools.iter().find(|p| p.is_empty()) {
        return Err(IpamError::InvalidAllocationPool {
            pool: bad.to_text(v4),
        });
    }
    let whole = AddrRange::of(cidr);
    if let Some(out) = pools
        .iter()
        .find(|p| p.first < whole.first || p.last > whole.last)
    {
        return Err(IpamError::OutOfBoundsAllocationPool {
            pool: out.to_text(v4),
            subnet_cidr: cidr.network().to_string(),
        });
    }
    pools.sort();
    Ok(pools.into())
}

/// The built-in IPAM: per-subnet state in an `imbl::HashMap`, so the engine can
/// clone the whole manager in O(1) for each committed snapshot.
#[derive(Clone, Debug, Default)]
pub struct BuiltinIpam {
    subnets: HashMap<Arc<str>, SubnetAllocations>,
}

impl BuiltinIpam {
    /// An IPAM managing no subnet.
    pub fn new() -> BuiltinIpam {
        BuiltinIpam::default()
    }

    /// The state of one subnet, for reporting (free counts, pools).
    pub fn subnet(&self, subnet_id: &str) -> Option<&SubnetAllocations> {
        self.subnets.get(subnet_id)
    }

    /// Number of managed subnets.
    pub fn subnet_count(&self) -> usize {
        self.subnets.len()
    }

    fn subnet_mut(&mut self, subnet_id: &str) -> Result<&mut SubnetAllocations, IpamError> {
        self.subnets
            .get_mut(subnet_id)
            .ok_or_else(|| IpamError::UnknownSubnet {
                subnet_id: subnet_id.to_string(),
            })
    }
}

impl Ipam for BuiltinIpam {
    fn add_subnet(
        &mut self,
        subnet_id: &str,
        cidr: Cidr,
        pools: Vec<AddrRange>,
    ) -> Result<(), IpamError> {
        if self.subnets.contains_key(subnet_id) {
            return Err(IpamError::SubnetExists {
                subnet_id: subnet_id.to_string(),
            });
        }
        let pools = checked_pools(&cidr, pools)?;
        let free = FreeRanges::from_pools(&pools);
        self.subnets.insert(
            subnet_id.into(),
            SubnetAllocations {
                cidr,
                pools,
                free,
                outside: OrdSet::new(),
            },
        );
        Ok(())
    }

    fn update_pools(
        &mut self,
        subnet_id: &str,
        pools: Vec<AddrRange>,
        allocated: &[IpAddr],
    ) -> Result<(), IpamError> {
        let subnet = self.subnet_mut(subnet_id)?;
        let pools = checked_pools(&subnet.cidr, pools)?;
        let held: Vec<u128> = allocated
            .iter()
            .filter(|ip| subnet.cidr.contains(**ip))
            .map(|ip| ip_to_u128(*ip))
            .collect();
        let in_any_pool = |v: &u128| pools.iter().any(|p| p.contains(*v));
        subnet.outside = held.iter().copied().filter(|v| !in_any_pool(v)).collect();
        subnet.free =
            FreeRanges::from_pools_minus(&pools, held.iter().copied().filter(in_any_pool));
        subnet.pools = pools;
        Ok(())
    }

    fn remove_subnet(&mut self, subnet_id: &str) {
        self.subnets.remove(subnet_id);
    }

    fn allocate(&mut self, subnet_id: &str, req: AddressRequest) -> Result<IpAddr, IpamError> {
        let subnet = self.subnet_mut(subnet_id)?;
        match req {
            AddressRequest::Any => match subnet.free.allocate_lowest() {
                Some(v) => Ok(crate::addr::u128_to_ip(v, subnet.cidr.is_v4())),
                None => Err(IpamError::Exhausted {
                    subnet_id: subnet_id.to_string(),
                }),
            },
            AddressRequest::Specific(ip) => {
                if !subnet.assignable(ip) {
                    return Err(IpamError::NotInSubnet {
                        ip: ip.to_string(),
                        subnet_id: subnet_id.to_string(),
                    });
                }
                let v = ip_to_u128(ip);
                let newly_taken = if subnet.in_pools(v) {
                    subnet.free.take(v)
                } else {
                    subnet.outside.insert(v).is_none()
                };
                if newly_taken {
                    Ok(ip)
                } else {
                    Err(IpamError::InUse {
                        ip: ip.to_string(),
                        subnet_id: subnet_id.to_string(),
                    })
                }
            }
        }
    }

    fn release(&mut self, subnet_id: &str, ip: IpAddr) -> Result<(), IpamError> {
        let subnet = self.subnet_mut(subnet_id)?;
        if !subnet.cidr.contains(ip) {
            return Ok(());
        }
        let v = ip_to_u128(ip);
        if subnet.in_pools(v) {
            let pools = Arc::clone(&subnet.pools);
            subnet.free.give_back(v, &pools);
        } else {
            subnet.outside.remove(&v);
        }
        Ok(())
    }

    fn is_allocated(&self, subnet_id: &str, ip: IpAddr) -> bool {
        let Some(subnet) = self.subnets.get(subnet_id) else {
            return false;
        };
        if !subnet.cidr.contains(ip) {
            return false;
        }
        let v = ip_to_u128(ip);
        if subnet.in_pools(v) {
            !subnet.free.is_free(v)
        } else {
            subnet.outside.contains(&v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subnet_plan::{default_gateway, default_pools};

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn ipam_with(id: &str, cidr: &str) -> BuiltinIpam {
        let c = Cidr::parse(cidr).unwrap();
        let mut ipam = BuiltinIpam::new();
        ipam.add_subnet(id, c, default_pools(&c, default_gateway(&c)))
            .unwrap();
        ipam
    }

    #[test]
    fn any_is_lowest_free_and_exhausts() {
        let mut ipam = ipam_with("s", "10.0.0.0/29"); // pool .2-.6
        let got: Vec<IpAddr> = (0..5)
            .map(|_| ipam.allocate("s", AddressRequest::Any).unwrap())
            .collect();
        assert_eq!(
            got,
            ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"].map(ip)
        );
        let err = ipam.allocate("s", AddressRequest::Any).unwrap_err();
        assert_eq!(
            err,
            IpamError::Exhausted {
                subnet_id: "s".into()
            }
        );
        assert_eq!(err.http_status(), 409);
        ipam.release("s", ip("10.0.0.4")).unwrap();
        assert_eq!(ipam.allocate("s", AddressRequest::Any), Ok(ip("10.0.0.4")));
    }

    #[test]
    fn specific_inside_and_outside_pools() {
        let mut ipam = ipam_with("s", "10.0.0.0/24");
        // The gateway is outside the pools but allocatable once (router interface).
        assert_eq!(
            ipam.allocate("s", AddressRequest::Specific(ip("10.0.0.1"))),
            Ok(ip("10.0.0.1"))
        );
        assert_eq!(
            ipam.allocate("s", AddressRequest::Specific(ip("10.0.0.1"))),
            Err(IpamError::InUse {
                ip: "10.0.0.1".into(),
                subnet_id: "s".into()
            })
        );
        assert!(ipam.is_allocated("s", ip("10.0.0.1")));
        assert_eq!(ipam.subnet("s").unwrap().outside_count(), 1);
        assert_eq!(
            ipam.allocate("s", AddressRequest::Specific(ip("10.0.0.50"))),
            Ok(ip("10.0.0.50"))
        );
        assert!(
            ipam.allocate("s", AddressRequest::Specific(ip("10.0.0.50")))
                .is_err()
        );
        assert_eq!(ipam.subnet("s").unwrap().free_count(), 252);
        ipam.release("s", ip("10.0.0.1")).unwrap();
        ipam.release("s", ip("10.0.0.1")).unwrap();
        assert!(!ipam.is_allocated("s", ip("10.0.0.1")));
        assert_eq!(
            ipam.allocate("s", AddressRequest::Specific(ip("10.0.0.1"))),
            Ok(ip("10.0.0.1"))
        );
    }

    #[test]
    fn specific_not_in_subnet() {
        let mut ipam = ipam_with("s", "10.0.0.0/24");
        for bad in ["10.0.0.0", "10.0.0.255", "10.0.1.1", "2001:db8::1"] {
            assert_eq!(
                ipam.allocate("s", AddressRequest::Specific(ip(bad))),
                Err(IpamError::NotInSubnet {
                    ip: bad.into(),
                    subnet_id: "s".into()
                }),
                "{bad}"
            );
        }
        let mut v6 = ipam_with("s6", "2001:db8::/64");
        // The IPv6 network address (router anycast / gateway) may be taken.
        assert_eq!(
            v6.allocate("s6", AddressRequest::Specific(ip("2001:db8::"))),
            Ok(ip("2001:db8::"))
        );
        assert_eq!(
            v6.allocate("s6", AddressRequest::Any),
            Ok(ip("2001:db8::1"))
        );
    }

    #[test]
    fn unknown_and_duplicate_subnets() {
        let mut ipam = ipam_with("s", "10.0.0.0/24");
        assert_eq!(
            ipam.allocate("x", AddressRequest::Any),
            Err(IpamError::UnknownSubnet {
                subnet_id: "x".into()
            })
        );
        assert_eq!(
            ipam.release("x", ip("10.0.0.2")).unwrap_err().http_status(),
            404
        );
        assert!(!ipam.is_allocated("x", ip("10.0.0.2")));
        let c = Cidr::parse("10.0.0.0/24").unwrap();
        assert_eq!(
            ipam.add_subnet("s", c, vec![]),
            Err(IpamError::SubnetExists {
                subnet_id: "s".into()
            })
        );
        ipam.remove_subnet("s");
        assert_eq!(ipam.subnet_count(), 0);
        assert!(
            ipam.add_subnet("s", c, vec![AddrRange::new(0x0a00_0000, 0x0a00_0100)])
                .is_err(),
            "pool beyond the cidr"
        );
        assert!(ipam.add_subnet("s", c, vec![]).is_ok());
        assert_eq!(
            ipam.allocate("s", AddressRequest::Any),
            Err(IpamError::Exhausted {
                subnet_id: "s".into()
            })
        );
    }

    #[test]
    fn update_pools_keeps_held_addresses() {
        let mut ipam = ipam_with("s", "10.0.0.0/24");
        for _ in 0..3 {
            ipam.allocate("s", AddressRequest::Any).unwrap(); // .2 .3 .4
        }
        let held = [ip("10.0.0.2"), ip("10.0.0.3"), ip("10.0.0.4")];
        // Shrink the pools to .3-.10: .2 is now outside the pools but still held.
        ipam.update_pools("s", vec![AddrRange::new(0x0a00_0003, 0x0a00_000a)], &held)
            .unwrap();
        let s = ipam.subnet("s").unwrap();
        assert_eq!(s.free_count(), 6);
        assert_eq!(s.outside_count(), 1);
        assert!(ipam.is_allocated("s", ip("10.0.0.2")));
        assert!(
            ipam.allocate("s", AddressRequest::Specific(ip("10.0.0.2")))
                .is_err()
        );
        assert_eq!(ipam.allocate("s", AddressRequest::Any), Ok(ip("10.0.0.5")));
        // Releasing .2 frees it (outside set) without adding it to the pools.
        ipam.release("s", ip("10.0.0.2")).unwrap();
        assert!(!ipam.is_allocated("s", ip("10.0.0.2")));
        assert_eq!(ipam.subnet("s").unwrap().free_count(), 5);
        assert!(ipam.update_pools("nope", vec![], &[]).is_err());
    }

    #[test]
    fn clone_is_an_independent_snapshot() {
        let mut ipam = ipam_with("s", "10.0.0.0/24");
        let snapshot = ipam.clone();
        ipam.allocate("s", AddressRequest::Specific(ip("10.0.0.9")))
            .unwrap();
        assert!(ipam.is_allocated("s", ip("10.0.0.9")));
        assert!(!snapshot.is_allocated("s", ip("10.0.0.9")));
    }

    #[test]
    fn trait_object_works() {
        let mut boxed: Box<dyn Ipam> = Box::new(ipam_with("s", "10.0.0.0/24"));
        assert_eq!(boxed.allocate("s", AddressRequest::Any), Ok(ip("10.0.0.2")));
    }
}
