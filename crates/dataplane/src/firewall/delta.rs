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
use super::render::{SetKey, address_elements, combo_chains, is_interval_set, port_elements};
use super::ruleset::{Elem, Family};

/// The plan from `old` (what `observed` reflects) to `new`, and what the
/// kernel holds after it; None when only a full render can say.
pub fn plan_delta(
    old: &FirewallSpec,
    new: &FirewallSpec,
    observed: &Observed,
) -> Option<(Plan, Observed)> {
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
    // Ports: a merge of the two maps, so only changed ports cost more than a compare.
    for (tap, p) in &old.ports {
        if new.ports.get(tap) != Some(p) {
            put(&mut gone, port_elements(tap, p, isolate));
        }
    }
    for (tap, p) in &new.ports {
        if old.ports.get(tap) == Some(p) {
            continue;
        }
        // Its chains must exist already (another port with the same groups).
        let (pi, pe) = combo_chains(p, isolate);
        if !observed.chains.contains_key(&(Family::Inet, pi))
            || !observed.chains.contains_key(&(Family::Inet, pe))
        {
            return None;
        }
        put(&mut added, port_elements(tap, p, isolate));
    }
    // Address sets: only those the kernel has (remote groups named by a rule,
    // networks isolated here), and only those whose addresses changed.
    let empty = BTreeSet::new();
    for (prefix, before, after) in [
        ("g", &old.members, &new.members),
        ("n", &old.network_addresses, &new.network_addresses),
    ] {
        let ids: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
        for id in ids {
            let was = before.get(id).unwrap_or(&empty);
            let now = after.get(id).unwrap_or(&empty);
            let v4 = format!("{prefix}4-{id}");
            if was == now || !observed.sets.contains_key(&(Family::Inet, v4)) {
                continue;
            }
            put(&mut gone, address_elements(prefix, id, was));
            put(&mut added, address_elements(prefix, id, now));
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
    let mut after = observed.clone();
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
        if let Some(s) = after.sets.get_mut(k) {
            for e in set {
                s.remove(e);
            }
        }
    }
    for (k, set) in &added {
        let v: Vec<&Elem> = set.iter().collect();
        element_commands(&mut plan, "add", k.0, &k.1, &v, false);
        after
            .sets
            .entry(k.clone())
            .or_default()
            .extend(set.iter().cloned());
    }
    Some((plan, after))
}
