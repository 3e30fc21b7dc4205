//! The free addresses of one subnet's pools, kept as ranges rather than as a
//! set of addresses. Neutron's reference driver rebuilds a netaddr `IPSet` of
//! the pools on every allocation, which is slow for large IPv6 pools; here a
//! /64 pool costs the same as a /24: one map entry until addresses are taken
//! out of its middle.

use imbl::OrdMap;

use crate::addr::AddrRange;

/// Free addresses as disjoint, non-adjacent ranges (`start -> end`, inclusive)
/// plus a running count.
///
/// The map is an `imbl::OrdMap`, so `clone` is O(1) with structural sharing:
/// the engine snapshots the IPAM state on every commit without copying it.
/// Every operation is O(log n) in the number of ranges, never in the number of
/// addresses. The count saturates at `u128::MAX` (only reachable with a pool
/// spanning the whole IPv6 space).
#[derive(Clone, Debug, Default)]
pub struct FreeRanges {
    ranges: OrdMap<u128, u128>,
    free: u128,
}

impl FreeRanges {
    /// All addresses of `pools` free. Overlapping or adjacent pools are merged
    /// and empty ones (`last < first`) ignored, so the invariant holds for any input.
    pub fn from_pools(pools: &[AddrRange]) -> FreeRanges {
        let mut sorted: Vec<AddrRange> = pools.iter().copied().filter(|r| !r.is_empty()).collect();
        sorted.sort();
        let mut merged: Vec<AddrRange> = Vec::with_capacity(sorted.len());
        for r in sorted {
            match merged.last_mut() {
                Some(prev) if r.first <= prev.last.saturating_add(1) => {
                    prev.last = prev.last.max(r.last)
                }
                _ => merged.push(r),
            }
        }
        let mut out = FreeRanges::default();
        for r in merged {
            out.free = out.free.saturating_add(r.len());
            out.ranges.insert(r.first, r.last);
        }
        out
    }

    /// The pools' addresses minus those already `allocated` (used at startup
    /// and when pools change). Allocated addresses outside the pools are ignored.
    pub fn from_pools_minus(
        pools: &[AddrRange],
        allocated: impl IntoIterator<Item = u128>,
    ) -> FreeRanges {
        let mut out = FreeRanges::from_pools(pools);
        for addr in allocated {
            out.take(addr);
        }
        out
    }

    /// The free range holding `addr`, if any.
    fn range_containing(&self, addr: u128) -> Option<AddrRange> {
        let (&first, &last) = self.ranges.get_prev(&addr)?;
        (addr <= last).then_some(AddrRange { first, last })
    }

    /// Takes the lowest free address. Sequential allocation therefore only
    /// shrinks the first range and never adds ranges.
    pub fn allocate_lowest(&mut self) -> Option<u128> {
        let &(first, _) = self.ranges.get_min()?;
        self.take(first).then_some(first)
    }

    /// Marks `addr` as used. Returns false when it was not free (already
    /// allocated, or outside the pools).
    pub fn take(&mut self, addr: u128) -> bool {
        let Some(r) = self.range_containing(addr) else {
            return false;
        };
        self.ranges.remove(&r.first);
        if r.first < addr {
            self.ranges.insert(r.first, addr - 1);
        }
        if addr < r.last {
            self.ranges.insert(addr + 1, r.last);
        }
        self.free = self.free.saturating_sub(1);
        true
    }

    /// Makes `addr` free again if it lies in one of `pools` and is not free
    /// already, merging it with adjacent ranges. Idempotent; an address outside
    /// the pools (e.g. after the pools shrank) stays out.
    pub fn give_back(&mut self, addr: u128, pools: &[AddrRange]) {
        if !pools.iter().any(|p| p.contains(addr)) || self.is_free(addr) {
            return;
        }
        let mut first = addr;
        let mut last = addr;
        if let Some(below) = addr.checked_sub(1).and_then(|b| self.range_containing(b)) {
            self.ranges.remove(&below.first);
            first = below.first;
        }
        if let Some(above_first) = addr.checked_add(1)
            && let Some(above_last) = self.ranges.remove(&above_first)
        {
            last = above_last;
        }
        self.ranges.insert(first, last);
        self.free = self.free.saturating_add(1);
    }

    /// True when `addr` is free.
    pub fn is_free(&self, addr: u128) -> bool {
        self.range_containing(addr).is_some()
    }

    /// Number of free addresses.
    pub fn free_count(&self) -> u128 {
        self.free
    }

    /// Number of disjoint free ranges: the real size of this structure.
    pub fn range_count(&self) -> usize {
        self.ranges.len()
    }

    /// The free ranges in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = AddrRange> + '_ {
        self.ranges
            .iter()
            .map(|(&first, &last)| AddrRange { first, last })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn ranges(f: &FreeRanges) -> Vec<(u128, u128)> {
        f.iter().map(|r| (r.first, r.last)).collect()
    }

    #[test]
    fn from_pools_merges_and_counts() {
        let f = FreeRanges::from_pools(&[
            AddrRange::new(10, 20),
            AddrRange::new(21, 25),
            AddrRange::new(5, 12),
            AddrRange::new(40, 30),
        ]);
        assert_eq!(ranges(&f), vec![(5, 25)]);
        assert_eq!(f.free_count(), 21);
    }

    #[test]
    fn take_splits_and_give_back_merges() {
        let pools = [AddrRange::new(1, 10)];
        let mut f = FreeRanges::from_pools(&pools);
        assert!(f.take(5));
        assert!(!f.take(5), "already taken");
        assert!(!f.take(11), "outside the pools");
        assert_eq!(ranges(&f), vec![(1, 4), (6, 10)]);
        assert_eq!(f.free_count(), 9);
        f.give_back(5, &pools);
        f.give_back(5, &pools);
        assert_eq!(ranges(&f), vec![(1, 10)]);
        assert_eq!(f.free_count(), 10);
        f.give_back(11, &pools);
        assert_eq!(f.free_count(), 10, "address outside the pools is not added");
    }

    #[test]
    fn allocate_lowest_is_sequential_and_exhausts() {
        let mut f = FreeRanges::from_pools(&[AddrRange::new(7, 8), AddrRange::new(20, 20)]);
        assert_eq!(f.allocate_lowest(), Some(7));
        assert_eq!(f.allocate_lowest(), Some(8));
        assert_eq!(f.allocate_lowest(), Some(20));
        assert_eq!(f.allocate_lowest(), None);
        assert_eq!(f.free_count(), 0);
        assert_eq!(f.range_count(), 0);
    }

    #[test]
    fn from_pools_minus_skips_allocated() {
        let f = FreeRanges::from_pools_minus(&[AddrRange::new(1, 5)], [1, 3, 99]);
        assert_eq!(ranges(&f), vec![(2, 2), (4, 5)]);
        assert_eq!(f.free_count(), 3);
    }

    #[test]
    fn edges_of_the_u128_space_do_not_overflow() {
        let pools = [
            AddrRange::new(0, 1),
            AddrRange::new(u128::MAX - 1, u128::MAX),
        ];
        let mut f = FreeRanges::from_pools(&pools);
        assert!(f.take(0) && f.take(u128::MAX));
        f.give_back(0, &pools);
        f.give_back(u128::MAX, &pools);
        assert_eq!(ranges(&f), vec![(0, 1), (u128::MAX - 1, u128::MAX)]);
        let whole = FreeRanges::from_pools(&[AddrRange::new(0, u128::MAX)]);
        assert_eq!(whole.free_count(), u128::MAX);
    }

    #[test]
    fn clone_is_a_snapshot() {
        let pools = [AddrRange::new(1, 10)];
        let mut f = FreeRanges::from_pools(&pools);
        let snapshot = f.clone();
        f.take(3);
        assert!(snapshot.is_free(3));
        assert!(!f.is_free(3));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Take(u128),
        GiveBack(u128),
        Lowest,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u128..70).prop_map(Op::Take),
            (0u128..70).prop_map(Op::GiveBack),
            Just(Op::Lowest),
        ]
    }

    proptest! {
        /// FreeRanges behaves like a plain set of free addresses and keeps its
        /// ranges disjoint, non-adjacent and non-empty.
        #[test]
        fn matches_set_model(
            raw_pools in prop::collection::vec((0u128..60, 0u128..8), 1..4),
            ops in prop::collection::vec(op(), 0..120),
        ) {
            let pools: Vec<AddrRange> = raw_pools.iter().map(|&(s, l)| AddrRange::new(s, s + l)).collect();
            let in_pools = |a: u128| pools.iter().any(|p| p.contains(a));
            let mut model: BTreeSet<u128> = (0u128..70).filter(|&a| in_pools(a)).collect();
            let mut f = FreeRanges::from_pools(&pools);
            for op in ops {
                match op {
                    Op::Take(a) => prop_assert_eq!(f.take(a), model.remove(&a)),
                    Op::GiveBack(a) => {
                        f.give_back(a, &pools);
                        if in_pools(a) { model.insert(a); }
                    }
                    Op::Lowest => {
                        let expected = model.iter().next().copied();
                        if let Some(a) = expected { model.remove(&a); }
                        prop_assert_eq!(f.allocate_lowest(), expected);
                    }
                }
                prop_assert_eq!(f.free_count(), model.len() as u128);
                let listed: BTreeSet<u128> = f.iter().flat_map(|r| r.first..=r.last).collect();
                prop_assert_eq!(&listed, &model);
                let rs: Vec<AddrRange> = f.iter().collect();
                for w in rs.windows(2) {
                    prop_assert!(w[0].last + 1 < w[1].first, "ranges must be disjoint and non-adjacent: {:?}", rs);
                }
                prop_assert!(rs.iter().all(|r| !r.is_empty()));
            }
        }
    }
}
