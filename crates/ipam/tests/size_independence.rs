//! The cost of a subnet must not depend on its size: a /8 or a /64 is stored
//! as a handful of ranges, and sequential allocation does not fragment them.

use neutrino_ipam::{AddressRequest, BuiltinIpam, Cidr, Ipam, default_gateway, default_pools};

fn allocate_many(cidr_text: &str) {
    let cidr = Cidr::parse(cidr_text).unwrap();
    let pools = default_pools(&cidr, default_gateway(&cidr));
    let total: u128 = pools.iter().map(|p| p.len()).sum();
    let mut ipam = BuiltinIpam::new();
    ipam.add_subnet("big", cidr, pools).unwrap();
    assert_eq!(ipam.subnet("big").unwrap().free().range_count(), 1);

    for _ in 0..10_000 {
        ipam.allocate("big", AddressRequest::Any).unwrap();
    }
    let state = ipam.subnet("big").unwrap();
    assert_eq!(
        state.free().range_count(),
        1,
        "{cidr_text}: sequential allocation must not add ranges"
    );
    assert_eq!(state.free_count(), total - 10_000);

    // Releasing every other address fragments the pool; allocating again
    // refills the holes lowest-first and the ranges collapse back to one.
    let holes: Vec<_> = (0..10_000u128)
        .step_by(2)
        .map(|i| {
            let first = state.pools()[0].first;
            neutrino_ipam::u128_to_ip(first + i, cidr.is_v4())
        })
        .collect();
    for ip in &holes {
        ipam.release("big", *ip).unwrap();
    }
    assert_eq!(ipam.subnet("big").unwrap().free().range_count(), 5_001);
    for ip in &holes {
        assert_eq!(ipam.allocate("big", AddressRequest::Any).unwrap(), *ip);
    }
    assert_eq!(ipam.subnet("big").unwrap().free().range_count(), 1);
    assert_eq!(ipam.subnet("big").unwrap().free_count(), total - 10_000);
}

#[test]
fn ipv4_slash8_stays_one_range() {
    allocate_many("10.0.0.0/8");
}

#[test]
fn ipv6_slash64_stays_one_range() {
    allocate_many("2001:db8::/64");
}

#[test]
fn v6_slash64_free_count_exceeds_u64() {
    let cidr = Cidr::parse("2001:db8::/64").unwrap();
    let mut ipam = BuiltinIpam::new();
    ipam.add_subnet("s", cidr, default_pools(&cidr, default_gateway(&cidr)))
        .unwrap();
    assert_eq!(ipam.subnet("s").unwrap().free_count(), u128::from(u64::MAX));
}
