//! Model-based property tests: random sequences of Any / Specific / release
//! against a `HashSet` of allocated addresses.

use std::collections::HashSet;
use std::net::IpAddr;

use neutrino_ipam::{
    AddrRange, AddressRequest, BuiltinIpam, Cidr, Ipam, IpamError, ip_to_u128, u128_to_ip,
    usable_range,
};
use proptest::prelude::*;

const SUBNET: &str = "subnet-1";

#[derive(Debug, Clone)]
struct Scenario {
    cidr: Cidr,
    pools: Vec<AddrRange>,
}

#[derive(Debug, Clone)]
enum Op {
    Any,
    /// Near the first (or last) address of pool `pool % n`, shifted by `delta`.
    SpecificNearPool {
        pool: usize,
        at_end: bool,
        delta: i8,
    },
    /// Near the first (or last) address of the CIDR (network / broadcast area).
    SpecificNearEdge {
        at_end: bool,
        delta: u8,
    },
    /// An address already handed out (index into the model, modulo).
    SpecificHeld(usize),
    /// Anywhere in the CIDR.
    SpecificRandom(u128),
    /// An address of the other family.
    SpecificOtherFamily,
    Release(usize),
    /// Release then immediately ask for the same address again.
    ReleaseAndRetake(usize),
    /// Release an arbitrary address of the CIDR (usually not allocated: a no-op).
    ReleaseRandom(u128),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Any),
        3 => (any::<usize>(), any::<bool>(), -2i8..=2).prop_map(|(pool, at_end, delta)| Op::SpecificNearPool { pool, at_end, delta }),
        1 => (any::<bool>(), 0u8..3).prop_map(|(at_end, delta)| Op::SpecificNearEdge { at_end, delta }),
        2 => any::<usize>().prop_map(Op::SpecificHeld),
        1 => any::<u128>().prop_map(Op::SpecificRandom),
        1 => Just(Op::SpecificOtherFamily),
        2 => any::<usize>().prop_map(Op::Release),
        2 => any::<usize>().prop_map(Op::ReleaseAndRetake),
        1 => any::<u128>().prop_map(Op::ReleaseRandom),
    ]
}

fn cidr_choice() -> impl Strategy<Value = Cidr> {
    prop_oneof![
        Just("10.0.0.0/24"),
        Just("10.4.0.0/22"),
        Just("10.0.0.0/8"),
        Just("2001:db8::/64"),
    ]
    .prop_map(|s| Cidr::parse(s).expect("fixed cidr"))
}

/// Pools cut from the usable range at random points: disjoint, possibly huge.
fn wide_scenario() -> impl Strategy<Value = Scenario> {
    cidr_choice()
        .prop_flat_map(|cidr| {
            let n = usable_range(&cidr).len();
            (Just(cidr), prop::collection::btree_set(0..n, 2..=6))
        })
        .prop_map(|(cidr, cuts)| {
            let base = usable_range(&cidr).first;
            let cuts: Vec<u128> = cuts.into_iter().collect();
            let pools = cuts
                .chunks_exact(2)
                .map(|c| AddrRange::new(base + c[0], base + c[1]))
                .collect();
            Scenario { cidr, pools }
        })
}

/// A few tiny pools (1..=5 addresses each) so exhaustion is reachable.
fn small_scenario() -> impl Strategy<Value = Scenario> {
    cidr_choice()
        .prop_flat_map(|cidr| {
            let n = usable_range(&cidr).len();
            (
                Just(cidr),
                0..(n - 40),
                prop::collection::vec((0u128..4, 1u128..=5), 1..=3),
            )
        })
        .prop_map(|(cidr, start, shape)| {
            let mut cur = usable_range(&cidr).first + start;
            let mut pools = Vec::new();
            for (gap, len) in shape {
                let first = cur + gap;
                let last = first + len - 1;
                pools.push(AddrRange::new(first, last));
                cur = last + 2; // keep pools apart so they stay distinct
            }
            Scenario { cidr, pools }
        })
}

struct Model {
    cidr: Cidr,
    pools: Vec<AddrRange>,
    allocated: HashSet<u128>,
    /// Allocation order, to pick held addresses by index deterministically.
    held: Vec<u128>,
}

impl Model {
    fn in_pools(&self, v: u128) -> bool {
        self.pools.iter().any(|p| p.contains(v))
    }
    fn assignable(&self, v: u128) -> bool {
        let c = &self.cidr;
        v >= c.first()
            && v <= c.last()
            && !(c.is_v4() && c.prefix() <= 30 && (v == c.first() || v == c.last()))
    }
    fn pool_total(&self) -> u128 {
        self.pools.iter().map(AddrRange::len).sum()
    }
    fn pool_allocated(&self) -> u128 {
        self.allocated.iter().filter(|v| self.in_pools(**v)).count() as u128
    }
    fn lowest_free(&self) -> Option<u128> {
        let mut pools = self.pools.clone();
        pools.sort();
        for p in pools {
            let mut v = p.first;
            loop {
                if !self.allocated.contains(&v) {
                    return Some(v);
                }
                if v == p.last {
                    break;
                }
                v += 1;
            }
        }
        None
    }
    fn insert(&mut self, v: u128) {
        assert!(self.allocated.insert(v));
        self.held.push(v);
    }
    fn remove(&mut self, v: u128) {
        self.allocated.remove(&v);
        self.held.retain(|h| *h != v);
    }
    fn ip(&self, v: u128) -> IpAddr {
        u128_to_ip(v, self.cidr.is_v4())
    }
}

fn specific(ipam: &mut BuiltinIpam, model: &mut Model, v: u128) -> Result<(), TestCaseError> {
    let ip = model.ip(v);
    let got = ipam.allocate(SUBNET, AddressRequest::Specific(ip));
    if !model.assignable(v) {
        prop_assert_eq!(
            got,
            Err(IpamError::NotInSubnet {
                ip: ip.to_string(),
                subnet_id: SUBNET.into()
            })
        );
    } else if model.allocated.contains(&v) {
        prop_assert_eq!(
            got,
            Err(IpamError::InUse {
                ip: ip.to_string(),
                subnet_id: SUBNET.into()
            })
        );
    } else {
        prop_assert_eq!(got, Ok(ip));
        model.insert(v);
    }
    Ok(())
}

fn release(ipam: &mut BuiltinIpam, model: &mut Model, v: u128) -> Result<(), TestCaseError> {
    prop_assert_eq!(ipam.release(SUBNET, model.ip(v)), Ok(()));
    model.remove(v);
    prop_assert!(!ipam.is_allocated(SUBNET, model.ip(v)));
    Ok(())
}

fn run(scenario: Scenario, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let Scenario { cidr, pools } = scenario;
    let mut ipam = BuiltinIpam::new();
    ipam.add_subnet(SUBNET, cidr, pools.clone())
        .expect("valid pools");
    let mut model = Model {
        cidr,
        pools,
        allocated: HashSet::new(),
        held: Vec::new(),
    };
    let in_cidr = |r: u128| cidr.first() + r % cidr.size();

    for op in ops {
        match op {
            Op::Any => {
                let got = ipam.allocate(SUBNET, AddressRequest::Any);
                match model.lowest_free() {
                    Some(expected) => {
                        let ip = got.map_err(|e| {
                            TestCaseError::fail(format!("Any failed with free space: {e}"))
                        })?;
                        let v = ip_to_u128(ip);
                        prop_assert_eq!(ip.is_ipv4(), cidr.is_v4());
                        prop_assert!(model.in_pools(v), "Any returned {} outside the pools", ip);
                        prop_assert!(!model.allocated.contains(&v), "{} handed out twice", ip);
                        prop_assert_eq!(v, expected, "Any must take the lowest free address");
                        model.insert(v);
                    }
                    None => {
                        prop_assert_eq!(model.pool_allocated(), model.pool_total());
                        prop_assert_eq!(
                            got,
                            Err(IpamError::Exhausted {
                                subnet_id: SUBNET.into()
                            })
                        );
                    }
                }
            }
            Op::SpecificNearPool {
                pool,
                at_end,
                delta,
            } => {
                let p = model.pools[pool % model.pools.len()];
                let anchor = if at_end { p.last } else { p.first };
                let v = anchor.saturating_add_signed(i128::from(delta));
                // Keep the address inside the family's space; outside the CIDR is fine.
                let v = if cidr.is_v4() {
                    v.min(u128::from(u32::MAX))
                } else {
                    v
                };
                specific(&mut ipam, &mut model, v)?;
            }
            Op::SpecificNearEdge { at_end, delta } => {
                let v = if at_end {
                    cidr.last() - u128::from(delta)
                } else {
                    cidr.first() + u128::from(delta)
                };
                specific(&mut ipam, &mut model, v)?;
            }
            Op::SpecificHeld(i) => {
                if let Some(&v) = model.held.get(i % model.held.len().max(1)) {
                    let ip = model.ip(v);
                    prop_assert_eq!(
                        ipam.allocate(SUBNET, AddressRequest::Specific(ip)),
                        Err(IpamError::InUse {
                            ip: ip.to_string(),
                            subnet_id: SUBNET.into()
                        })
                    );
                }
            }
            Op::SpecificRandom(r) => specific(&mut ipam, &mut model, in_cidr(r))?,
            Op::SpecificOtherFamily => {
                let other: IpAddr = if cidr.is_v4() {
                    "2001:db8::5".parse().unwrap()
                } else {
                    "10.0.0.5".parse().unwrap()
                };
                let got = ipam.allocate(SUBNET, AddressRequest::Specific(other));
                prop_assert!(
                    matches!(got, Err(IpamError::NotInSubnet { .. })),
                    "{:?}",
                    got
                );
            }
            Op::Release(i) => {
                if let Some(&v) = model.held.get(i % model.held.len().max(1)) {
                    release(&mut ipam, &mut model, v)?;
                }
            }
            Op::ReleaseAndRetake(i) => {
                if let Some(&v) = model.held.get(i % model.held.len().max(1)) {
                    release(&mut ipam, &mut model, v)?;
                    prop_assert_eq!(
                        ipam.allocate(SUBNET, AddressRequest::Specific(model.ip(v))),
                        Ok(model.ip(v))
                    );
                    model.insert(v);
                }
            }
            Op::ReleaseRandom(r) => release(&mut ipam, &mut model, in_cidr(r))?,
        }

        let state = ipam.subnet(SUBNET).expect("subnet exists");
        prop_assert_eq!(
            state.free_count(),
            model.pool_total() - model.pool_allocated()
        );
        prop_assert_eq!(
            state.outside_count() as u128,
            model.allocated.len() as u128 - model.pool_allocated()
        );
    }
    for &v in &model.allocated {
        prop_assert!(ipam.is_allocated(SUBNET, model.ip(v)));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn wide_pools_match_model(scenario in wide_scenario(), ops in prop::collection::vec(op(), 1..150)) {
        run(scenario, ops)?;
    }

    #[test]
    fn small_pools_exhaust_exactly(scenario in small_scenario(), ops in prop::collection::vec(op(), 1..80)) {
        run(scenario, ops)?;
    }

    /// With only Any requests, a small pool set yields exactly its addresses,
    /// each once, and then Exhausted.
    #[test]
    fn any_drains_every_pool_address(scenario in small_scenario()) {
        let mut ipam = BuiltinIpam::new();
        ipam.add_subnet(SUBNET, scenario.cidr, scenario.pools.clone()).expect("valid pools");
        let total: u128 = scenario.pools.iter().map(AddrRange::len).sum();
        let mut seen = HashSet::new();
        for _ in 0..total {
            let ip = ipam.allocate(SUBNET, AddressRequest::Any).expect("free space left");
            prop_assert!(scenario.pools.iter().any(|p| p.contains(ip_to_u128(ip))));
            prop_assert!(seen.insert(ip));
        }
        prop_assert_eq!(ipam.allocate(SUBNET, AddressRequest::Any), Err(IpamError::Exhausted { subnet_id: SUBNET.into() }));
        prop_assert_eq!(ipam.subnet(SUBNET).unwrap().free_count(), 0);
    }
}
