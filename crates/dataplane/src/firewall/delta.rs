//! A change of a few ports or members, planned without rendering the whole
//! ruleset: only the elements of what differs between the spec the kernel
//! holds and the new one. This keeps a port's arrival or departure, and a
//! remote group gaining a member, at a cost that does not grow with the
//! number of ports on the host. Anything structural (rules, flags, a set of
//! groups no chain exists for yet) is left to a full render and plan.

use std::collections::{BTreeMap, BTreeSet};

use super::model::FirewallSpec;
use super::nfnl::ElemOp;
use super::observe::Observed;
use super::plan::{Plan, element_commands};
use super::render::{SetKey, combo_chains, is_interval_set, port_elements};
use super::ruleset::{Elem, Family, Part};

/// The keys a change touched (ports by tap, member sets by group, address
/// sets by network): the caller knows them, so nothing else is compared.
/// (imbl's structural `diff` was tried: it misses changes after churn.)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touched {
    pub ports: BTreeSet<String>,
    pub members: BTreeSet<String>,
    pub networks: BTreeSet<String>,
}

impl Touched {
    /// Every key that differs, found by comparing everything (O(N): tests
    /// and callers that do not track their changes).
    pub fn between(old: &FirewallSpec, new: &FirewallSpec) -> Touched {
        fn keys<V: PartialEq + Clone>(
            a: &imbl::OrdMap<String, V>,
            b: &imbl::OrdMap<String, V>,
        ) -> BTreeSet<String> {
            a.keys()
                .chain(b.keys())
                .filter(|k| a.get(*k) != b.get(*k))
                .cloned()
                .collect()
        }
        Touched {
            ports: keys(&old.ports, &new.ports),
            members: keys(&old.members, &new.members),
            networks: keys(&old.network_addresses, &new.network_addresses),
        }
    }
}

/// The plan from `old` (what `observed` reflects) to `new`, given the keys
/// the change touched; None when only a full render can say.
pub fn plan_delta(
    old: &FirewallSpec,
    new: &FirewallSpec,
    observed: &Observed,
    touched: &Touched,
) -> Option<Plan> {
    if old.groups != new.groups
        || old.allow_same_net_traffic != new.allow_same_net_traffic
        || old.router_macs != new.router_macs
        || old.uplinks != new.uplinks
        || old.zones != new.zones
    {
        return None;
    }
    let isolate = !new.allow_same_net_traffic;
    let mut gone: BTreeMap<SetKey, BTreeSet<Elem>> = BTreeMap::new();
    let mut added: BTreeMap<SetKey, BTreeSet<Elem>> = BTreeMap::new();
    let put = |into: &mut BTreeMap<SetKey, BTreeSet<Elem>>, elems: Vec<(SetKey, Elem)>| {
        for (k, e) in elems {
            into.entry(k).or_default().insert(e);
        }
    };
    // Ports: only those the change touched.
    for tap in &touched.ports {
        let (was, now) = (old.ports.get(tap), new.ports.get(tap));
        if was == now {
            continue;
        }
        if let Some(p) = was {
            put(&mut gone, port_elements(tap, p, isolate));
        }
        if let Some(p) = now {
            // Its chains must exist already (another port with the same groups).
            let (pi, pe) = combo_chains(p, isolate);
            if !observed.chains.contains_key(&(Family::Inet, pi))
                || !observed.chains.contains_key(&(Family::Inet, pe))
            {
                return None;
            }
            put(&mut added, port_elements(tap, p, isolate));
        }
    }
    // Address sets (only those the kernel has: remote groups named by a
    // rule, networks isolated here): the addresses that came or went.
    for (prefix, before, after, ids) in [
        ("g", &old.members, &new.members, &touched.members),
        (
            "n",
            &old.network_addresses,
            &new.network_addresses,
            &touched.networks,
        ),
    ] {
        for id in ids {
            let (was, now) = (before.get(id), after.get(id));
            if was == now {
                continue;
            }
            if !observed
                .sets
                .contains_key(&(Family::Inet, format!("{prefix}4-{id}")))
            {
                continue;
            }
            let empty = imbl::OrdSet::new();
            let (was, now) = (was.unwrap_or(&empty), now.unwrap_or(&empty));
            // Networks cover addresses: only a full plan sorts that out.
            if was.iter().chain(now.iter()).any(|c| !c.is_host()) {
                return None;
            }
            for (into, set, other) in [(&mut gone, was, now), (&mut added, now, was)] {
                for c in set.iter().filter(|c| !other.contains(c)) {
                    let v = if c.is_v4() { 4 } else { 6 };
                    into.entry((Family::Inet, format!("{prefix}{v}-{id}")))
                        .or_default()
                        .insert(Elem::key(vec![Part::Net(*c)]));
                }
            }
        }
    }
    // What is in both (an unchanged part of a changed port) stays.
    for (k, set) in gone.iter_mut() {
        if let Some(a) = added.get_mut(k) {
            let common: Vec<Elem> = set.intersection(a).cloned().collect();
            for e in common {
                set.remove(&e);
                a.remove(&e);
            }
        }
    }
    // Networks (allowed address pairs with a prefix) live in interval sets,
    // which only a full plan through nft handles.
    if gone
        .iter()
        .chain(added.iter())
        .any(|((_, name), set)| !set.is_empty() && is_interval_set(name))
    {
        return None;
    }
    let mut plan = Plan::default();
    for (add, changes) in [(false, &gone), (true, &added)] {
        for ((family, set), elems) in changes {
            plan.element_ops.extend(elems.iter().map(|e| ElemOp {
                add,
                family: *family,
                set: set.clone(),
                elem: e.clone(),
            }));
        }
    }
    for (k, set) in &gone {
        let v: Vec<&Elem> = set.iter().collect();
        element_commands(&mut plan, "delete", k.0, &k.1, &v, true);
    }
    for (k, set) in &added {
        let v: Vec<&Elem> = set.iter().collect();
        element_commands(&mut plan, "add", k.0, &k.1, &v, false);
    }
    Some(plan)
}

impl Observed {
    /// What the kernel holds once a delta's elements are applied (in place:
    /// no copy of the whole table per change).
    pub fn apply_elements(&mut self, ops: &[ElemOp]) {
        for op in ops.iter().filter(|o| !o.add) {
            if let Some(s) = self.sets.get_mut(&(op.family, op.set.clone())) {
                s.remove(&op.elem);
            }
        }
        for op in ops.iter().filter(|o| o.add) {
            self.sets
                .entry((op.family, op.set.clone()))
                .or_default()
                .insert(op.elem.clone());
        }
    }
}
