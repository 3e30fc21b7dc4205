//! The firewall step of a pass: the desired port filters and groups become
//! one nftables transaction holding only what differs. Each port gets a
//! number (its packet mark) that stays with it across restarts: the numbers
//! are read back from the kernel's `ports` map at start, so a restarted
//! agent renders the very ruleset the kernel holds and changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use neutrino_dataplane::firewall::{
    self, Cidr, Family, FirewallSpec, Observed, Part, Plan, PortFilter, Touched, Value, nft,
};

use crate::desired::Desired;

/// How often the kernel's tables are read again to catch drift.
const REREAD: Duration = Duration::from_secs(60);

pub struct Firewall {
    allow_same_net_traffic: bool,
    /// What the kernel holds, as of the last read or successful apply.
    observed: Option<Observed>,
    read_at: Option<Instant>,
    /// tap → mark.
    marks: BTreeMap<String, u32>,
    /// bridge → conntrack zone.
    zones: BTreeMap<String, u16>,
    /// The spec last applied (a pass whose spec is unchanged does nothing).
    last: Option<FirewallSpec>,
}

impl Firewall {
    pub fn new(allow_same_net_traffic: bool) -> Firewall {
        Firewall {
            allow_same_net_traffic,
            observed: None,
            read_at: None,
            marks: BTreeMap::new(),
            zones: BTreeMap::new(),
            last: None,
        }
    }

    /// Brings the kernel in line with `want`; returns the plan applied
    /// (empty when nothing differed). Blocking: runs `nft`. How the change
    /// is written is [`firewall::apply`]'s choice.
    pub fn sync(&mut self, want: &Desired) -> Result<Plan, firewall::ApplyError> {
        if self.read_at.is_none_or(|t| t.elapsed() > REREAD) {
            self.observed = None;
        }
        let observed = match &mut self.observed {
            Some(o) => o,
            None => {
                nft::enable_bridge_netfilter().map_err(nft::NftError::Spawn)?;
                let o = nft::observe()?;
                if self.marks.is_empty() {
                    self.marks = numbers_in(&o, Family::Bridge, "ports");
                }
                if self.zones.is_empty() {
                    self.zones = numbers_in(&o, Family::Inet, "zones")
                        .into_iter()
                        .filter_map(|(b, z)| Some((b, u16::try_from(z).ok()?)))
                        .collect();
                }
                self.read_at = Some(Instant::now());
                self.last = None;
                self.observed.insert(o)
            }
        };
        let (spec, touched) = spec(
            want,
            self.allow_same_net_traffic,
            self.last.as_ref(),
            &mut self.marks,
            &mut self.zones,
        );
        match firewall::apply(self.last.as_ref(), &spec, observed, &touched) {
            Ok(applied) => {
                self.last = Some(spec);
                Ok(applied.plan)
            }
            Err(e) => {
                // What the kernel holds is unknown now: read it next time.
                self.observed = None;
                self.last = None;
                Err(e)
            }
        }
    }
}

/// The spec for `want`, and the keys that differ from `last`. Marks (tap →
/// packet mark) and zones (bridge → conntrack zone) stay with their owners.
fn spec(
    want: &Desired,
    allow_same_net_traffic: bool,
    last: Option<&FirewallSpec>,
    marks: &mut BTreeMap<String, u32>,
    zones: &mut BTreeMap<String, u16>,
) -> (FirewallSpec, Touched) {
    let mut touched = Touched::default();
    marks.retain(|tap, _| want.port_filters.contains_key(tap));
    let mut used: BTreeSet<u32> = marks.values().copied().collect();
    let mut next = 1u32;
    // From the last spec, touching only what changed: the persistent
    // maps then share everything else, and the delta skips it.
    let prev = last.cloned().unwrap_or_default();
    let mut ports = prev.ports.clone();
    for (tap, f) in &want.port_filters {
        let mark = *marks.entry(tap.clone()).or_insert_with(|| {
            while used.contains(&next) {
                next += 1;
            }
            used.insert(next);
            next
        });
        // Everything but the mark, which the desired state leaves at 0
        // (destructured so a new field cannot be forgotten here).
        let PortFilter {
            mark: _,
            network_id,
            sources,
            macs,
            groups,
        } = f;
        let same = ports.get(tap).is_some_and(|p| {
            p.mark == mark
                && &p.network_id == network_id
                && &p.sources == sources
                && &p.macs == macs
                && &p.groups == groups
        });
        if !same {
            let mut f = f.clone();
            f.mark = mark;
            ports.insert(tap.clone(), f);
            touched.ports.insert(tap.clone());
        }
    }
    let gone: Vec<String> = ports
        .keys()
        .filter(|t| !want.port_filters.contains_key(*t))
        .cloned()
        .collect();
    for t in gone {
        ports.remove(&t);
        touched.ports.insert(t);
    }
    let members = sync_sets(&prev.members, &want.groups.members, &mut touched.members);
    let network_addresses = sync_sets(
        &prev.network_addresses,
        &want.network_addresses,
        &mut touched.networks,
    );
    // One conntrack zone per network bridge, kept like the marks.
    let bridges = &want.host.bridges;
    zones.retain(|b, _| bridges.contains_key(b));
    let mut used: BTreeSet<u16> = zones.values().copied().collect();
    let mut next = 1u16;
    for b in bridges.keys() {
        if !zones.contains_key(b) {
            while used.contains(&next) {
                next = next.saturating_add(1);
            }
            used.insert(next);
            zones.insert(b.clone(), next);
        }
    }
    let spec = FirewallSpec {
        zones: zones.clone(),
        ports,
        groups: want.groups.groups.clone(),
        members,
        allow_same_net_traffic,
        network_addresses,
        uplinks: if want.router_macs.is_empty() {
            BTreeSet::new()
        } else {
            crate::desired::l3::uplinks(want)
        },
        router_macs: want.router_macs.clone(),
    };
    (spec, touched)
}

/// `prev` updated to hold `want`, sharing every set that did not change.
fn sync_sets(
    prev: &imbl::OrdMap<String, imbl::OrdSet<Cidr>>,
    want: &BTreeMap<String, BTreeSet<Cidr>>,
    touched: &mut BTreeSet<String>,
) -> imbl::OrdMap<String, imbl::OrdSet<Cidr>> {
    let mut out = prev.clone();
    for (id, addrs) in want {
        let same = out
            .get(id)
            .is_some_and(|have| have.len() == addrs.len() && have.iter().eq(addrs.iter()));
        if !same {
            out.insert(id.clone(), addrs.iter().copied().collect());
            touched.insert(id.clone());
        }
    }
    let gone: Vec<String> = out
        .keys()
        .filter(|k| !want.contains_key(*k))
        .cloned()
        .collect();
    for k in gone {
        out.remove(&k);
        touched.insert(k);
    }
    out
}

/// name → number as one of the kernel's maps has them (tap → mark,
/// bridge → zone).
fn numbers_in(o: &Observed, family: Family, map: &str) -> BTreeMap<String, u32> {
    let mut marks = BTreeMap::new();
    for e in o.sets.get(&(family, map.to_string())).into_iter().flatten() {
        if let ([Part::Ifname(tap)], Some(Value::Mark(m))) = (e.key.as_slice(), &e.value) {
            marks.insert(tap.clone(), *m);
        }
    }
    marks
}
