//! Desired vs observed → the minimal list of kernel changes. Pure.
//!
//! When the host already matches, the plan is empty: an agent restart must
//! not disturb traffic, so nothing that is already right is recreated. The
//! only recreate is a vxlan device whose vni/local/port are wrong (those
//! cannot be changed in place).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use neutrino_net::names;

use crate::model::{
    DesiredHost, FdbEntry, LinkKind, Mac, NsEndpoint, NsRoute, NsRouting, ObservedHost,
    ObservedLink, Ownership, Uplink, VxlanParams,
};

/// One minimal netlink change. Link names refer to the agent's namespace
/// unless the variant starts with `Ns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    CreateNamespace {
        name: String,
    },
    DeleteNamespace {
        name: String,
    },
    /// Also pins the MTU (so the bridge stops following its ports' MTUs).
    CreateBridge {
        name: String,
        mtu: u32,
    },
    /// nolearning, no multicast group: BUM goes to the all-zero FDB entries.
    CreateVxlan {
        name: String,
        vni: u32,
        local: Ipv4Addr,
        dstport: u16,
        mtu: u32,
    },
    /// Creates the pair with the peer born inside `namespace` as `ns_side`.
    CreateVethIntoNs {
        host_side: String,
        ns_side: String,
        namespace: String,
        mac: Mac,
        mtu: u32,
    },
    DeleteLink {
        name: String,
    },
    SetMaster {
        link: String,
        master: String,
    },
    NoMaster {
        link: String,
    },
    SetMtu {
        link: String,
        mtu: u32,
    },
    SetUp {
        link: String,
    },
    /// `self permanent`, appended (several all-zero entries coexist).
    AddFdb {
        dev: String,
        mac: Mac,
        dst: Ipv4Addr,
    },
    DelFdb {
        dev: String,
        mac: Mac,
        dst: Ipv4Addr,
    },
    NsDeleteLink {
        namespace: String,
        link: String,
    },
    NsSetMtu {
        namespace: String,
        link: String,
        mtu: u32,
    },
    NsSetMac {
        namespace: String,
        link: String,
        mac: Mac,
    },
    NsSetUp {
        namespace: String,
        link: String,
    },
    NsAddAddr {
        namespace: String,
        link: String,
        addr: IpAddr,
        prefix: u8,
    },
    NsDelAddr {
        namespace: String,
        link: String,
        addr: IpAddr,
        prefix: u8,
    },
    NsSetForwarding {
        namespace: String,
        on: bool,
    },
    NsAddRoute {
        namespace: String,
        route: NsRoute,
    },
    NsDelRoute {
        namespace: String,
        route: NsRoute,
    },
}

/// Ops collected per phase, concatenated in an order that applies cleanly.
#[derive(Default)]
struct Phases {
    /// Deletes that would conflict with creates (recreated vxlan, stale vxlan
    /// holding a VNI, wrong-kind links squatting a desired name).
    early_del: Vec<Op>,
    ns_create: Vec<Op>,
    create: Vec<Op>,
    mtu: Vec<Op>,
    detach: Vec<Op>,
    master: Vec<Op>,
    port_up: Vec<Op>,
    bridge_up: Vec<Op>,
    ns: Vec<Op>,
    /// After addresses: a route's next hop must be on a connected subnet.
    ns_routes: Vec<Op>,
    fdb_del_unicast: Vec<Op>,
    fdb_add: Vec<Op>,
    /// Flood entries are removed after adds so BUM delivery never gaps.
    fdb_del_flood: Vec<Op>,
    late_del: Vec<Op>,
    ns_del: Vec<Op>,
}

impl Phases {
    fn into_ops(self) -> Vec<Op> {
        [
            self.early_del,
            self.ns_create,
            self.create,
            self.mtu,
            self.detach,
            self.master,
            self.port_up,
            self.bridge_up,
            self.ns,
            self.ns_routes,
            self.fdb_del_unicast,
            self.fdb_add,
            self.fdb_del_flood,
            self.late_del,
            self.ns_del,
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

struct Planner<'a> {
    observed: &'a ObservedHost,
    /// Links deleted early in this plan: treat as absent.
    gone: BTreeSet<String>,
    /// Namespaces this plan already creates or brings `lo` up in.
    namespaces_seen: BTreeSet<String>,
    p: Phases,
}

impl<'a> Planner<'a> {
    fn live(&self, name: &str) -> Option<&'a ObservedLink> {
        if self.gone.contains(name) {
            return None;
        }
        self.observed.links.get(name)
    }

    fn delete_early(&mut self, name: &str) {
        if self.gone.insert(name.to_owned()) {
            self.p.early_del.push(Op::DeleteLink {
                name: name.to_owned(),
            });
        }
    }

    /// Put a port on `master`: `existing` is None for a link this plan creates
    /// (created with the right MTU, down, no master).
    fn attach(
        &mut self,
        name: &str,
        existing: Option<&ObservedLink>,
        master: &str,
        mtu: Option<u32>,
    ) {
        let link = name.to_owned();
        match existing {
            None => {
                self.p.master.push(Op::SetMaster {
                    link: link.clone(),
                    master: master.to_owned(),
                });
                self.p.port_up.push(Op::SetUp { link });
            }
            Some(l) => {
                if let Some(mtu) = mtu.filter(|m| *m != l.mtu) {
                    self.p.mtu.push(Op::SetMtu {
                        link: link.clone(),
                        mtu,
                    });
                }
                // A master deleted earlier in this plan took its ports' enslavement with it.
                if l.master.as_deref() != Some(master) || self.gone.contains(master) {
                    self.p.master.push(Op::SetMaster {
                        link: link.clone(),
                        master: master.to_owned(),
                    });
                }
                if !l.up {
                    self.p.port_up.push(Op::SetUp { link });
                }
            }
        }
    }

    fn bridge(&mut self, b: &crate::model::Bridge) {
        match self.live(&b.name) {
            Some(l) if l.kind == LinkKind::Bridge => {
                if l.mtu != b.mtu {
                    self.p.mtu.push(Op::SetMtu {
                        link: b.name.clone(),
                        mtu: b.mtu,
                    });
                }
                if !l.up {
                    self.p.bridge_up.push(Op::SetUp {
                        link: b.name.clone(),
                    });
                }
            }
            other => {
                if other.is_some() {
                    self.delete_early(&b.name);
                }
                self.p.create.push(Op::CreateBridge {
                    name: b.name.clone(),
                    mtu: b.mtu,
                });
                self.p.bridge_up.push(Op::SetUp {
                    link: b.name.clone(),
                });
            }
        }

        match &b.uplink {
            Uplink::None => {}
            Uplink::Physical { ifname } => {
                // Not ours: enslave and bring up, never change otherwise.
                if let Some(l) = self.live(ifname) {
                    self.attach(ifname, Some(l), &b.name, None);
                }
            }
            Uplink::Vxlan(v) => {
                let want = VxlanParams {
                    vni: v.vni,
                    local: Some(v.local),
                    dstport: v.dstport,
                };
                let existing = match self.live(&v.name) {
                    Some(l) if l.kind == LinkKind::Vxlan && l.vxlan == Some(want) => Some(l),
                    Some(_) => {
                        self.delete_early(&v.name);
                        None
                    }
                    None => None,
                };
                if existing.is_none() {
                    self.p.create.push(Op::CreateVxlan {
                        name: v.name.clone(),
                        vni: v.vni,
                        local: v.local,
                        dstport: v.dstport,
                        mtu: b.mtu,
                    });
                }
                self.attach(&v.name, existing, &b.name, Some(b.mtu));
                let observed_fdb = match existing {
                    Some(_) => self.observed.fdb.get(&v.name).cloned().unwrap_or_default(),
                    None => BTreeSet::new(),
                };
                self.fdb(v, &observed_fdb);
            }
        }

        for m in &b.members {
            if names::is_owned_link(m) {
                continue; // a tap never has an owned name; refuse to treat ours as one
            }
            if let Some(l) = self.live(m) {
                self.attach(m, Some(l), &b.name, Some(b.mtu));
            }
        }
    }

    fn fdb(&mut self, v: &crate::model::Vxlan, observed: &BTreeSet<FdbEntry>) {
        let desired: BTreeSet<FdbEntry> = v
            .flood
            .iter()
            .map(|dst| FdbEntry {
                mac: Mac::ZERO,
                dst: *dst,
            })
            .chain(v.macs.iter().map(|(mac, dst)| FdbEntry {
                mac: *mac,
                dst: *dst,
            }))
            .collect();
        for e in observed.difference(&desired) {
            let op = Op::DelFdb {
                dev: v.name.clone(),
                mac: e.mac,
                dst: e.dst,
            };
            if e.mac == Mac::ZERO {
                self.p.fdb_del_flood.push(op);
            } else {
                self.p.fdb_del_unicast.push(op);
            }
        }
        for e in desired.difference(observed) {
            self.p.fdb_add.push(Op::AddFdb {
                dev: v.name.clone(),
                mac: e.mac,
                dst: e.dst,
            });
        }
    }

    /// Creates a namespace (with `lo` up) unless it is there or planned.
    fn namespace(&mut self, name: &str) {
        if !self.namespaces_seen.insert(name.to_owned()) {
            return;
        }
        let ns = self.observed.namespaces.get(name);
        if ns.is_none() {
            self.p.ns_create.push(Op::CreateNamespace {
                name: name.to_owned(),
            });
        }
        let lo_up = ns.and_then(|n| n.links.get("lo")).is_some_and(|l| l.up);
        if !lo_up {
            self.p.ns.push(Op::NsSetUp {
                namespace: name.to_owned(),
                link: "lo".into(),
            });
        }
    }

    fn routing(&mut self, namespace: &str, r: &NsRouting) {
        self.namespace(namespace);
        let ns = self.observed.namespaces.get(namespace);
        let (forwarding, empty) = (ns.is_some_and(|n| n.forwarding), BTreeSet::new());
        let have = ns.map(|n| &n.routes).unwrap_or(&empty);
        if forwarding != r.forwarding {
            self.p.ns.push(Op::NsSetForwarding {
                namespace: namespace.to_owned(),
                on: r.forwarding,
            });
        }
        for route in have.difference(&r.routes) {
            self.p.ns_routes.push(Op::NsDelRoute {
                namespace: namespace.to_owned(),
                route: *route,
            });
        }
        for route in r.routes.difference(have) {
            self.p.ns_routes.push(Op::NsAddRoute {
                namespace: namespace.to_owned(),
                route: *route,
            });
        }
    }

    fn endpoint(&mut self, e: &NsEndpoint) {
        self.namespace(&e.namespace);
        let ns = self.observed.namespaces.get(&e.namespace);
        let ns_link = ns.and_then(|n| n.links.get(&e.ns_side));
        let host = self.live(&e.host_side);
        let paired = host.is_some_and(|h| {
            h.kind == LinkKind::Veth && h.peer == Some((e.namespace.clone(), e.ns_side.clone()))
        });
        let nsop = |link: &str| (e.namespace.clone(), link.to_owned());

        match (paired, ns_link) {
            (true, Some(nl)) => {
                self.attach(&e.host_side, host, &e.bridge, Some(e.mtu));
                let (namespace, link) = nsop(&e.ns_side);
                if nl.mtu != e.mtu {
                    self.p.ns.push(Op::NsSetMtu {
                        namespace: namespace.clone(),
                        link: link.clone(),
                        mtu: e.mtu,
                    });
                }
                if nl.mac != Some(e.mac) {
                    self.p.ns.push(Op::NsSetMac {
                        namespace: namespace.clone(),
                        link: link.clone(),
                        mac: e.mac,
                    });
                }
                if !nl.up {
                    self.p.ns.push(Op::NsSetUp {
                        namespace: namespace.clone(),
                        link: link.clone(),
                    });
                }
                for (addr, prefix) in nl.addrs.difference(&e.addrs) {
                    self.p.ns.push(Op::NsDelAddr {
                        namespace: namespace.clone(),
                        link: link.clone(),
                        addr: *addr,
                        prefix: *prefix,
                    });
                }
                for (addr, prefix) in e.addrs.difference(&nl.addrs) {
                    self.p.ns.push(Op::NsAddAddr {
                        namespace: namespace.clone(),
                        link: link.clone(),
                        addr: *addr,
                        prefix: *prefix,
                    });
                }
            }
            _ => {
                if host.is_some() {
                    self.delete_early(&e.host_side);
                }
                if ns_link.is_some() {
                    let (namespace, link) = nsop(&e.ns_side);
                    self.p.early_del.push(Op::NsDeleteLink { namespace, link });
                }
                self.p.create.push(Op::CreateVethIntoNs {
                    host_side: e.host_side.clone(),
                    ns_side: e.ns_side.clone(),
                    namespace: e.namespace.clone(),
                    mac: e.mac,
                    mtu: e.mtu,
                });
                self.attach(&e.host_side, None, &e.bridge, None);
                let (namespace, link) = nsop(&e.ns_side);
                self.p.ns.push(Op::NsSetUp {
                    namespace: namespace.clone(),
                    link: link.clone(),
                });
                for (addr, prefix) in &e.addrs {
                    self.p.ns.push(Op::NsAddAddr {
                        namespace: namespace.clone(),
                        link: link.clone(),
                        addr: *addr,
                        prefix: *prefix,
                    });
                }
            }
        }
    }
}

/// Plan the ops that take `observed` to `desired`. Empty when they match.
pub fn plan(desired: &DesiredHost, observed: &ObservedHost, own: &Ownership) -> Vec<Op> {
    let mut pl = Planner {
        observed,
        gone: BTreeSet::new(),
        namespaces_seen: BTreeSet::new(),
        p: Phases::default(),
    };

    // Which master each desired port should have; everything else on an
    // owned bridge gets detached.
    let mut want_master: BTreeMap<&str, &str> = BTreeMap::new();
    let mut want_links: BTreeSet<&str> = BTreeSet::new();
    for b in desired.bridges.values() {
        want_links.insert(&b.name);
        match &b.uplink {
            Uplink::None => {}
            Uplink::Physical { ifname } => {
                want_master.insert(ifname, &b.name);
            }
            Uplink::Vxlan(v) => {
                want_master.insert(&v.name, &b.name);
                want_links.insert(&v.name);
            }
        }
        for m in &b.members {
            want_master.insert(m, &b.name);
        }
    }
    for e in desired.endpoints.values() {
        want_master.insert(&e.host_side, &e.bridge);
        want_links.insert(&e.host_side);
    }

    // Stale vxlan devices go first: they may hold the VNI a new one needs.
    for l in observed.links.values() {
        if l.kind == LinkKind::Vxlan
            && names::is_vxlan(&l.name)
            && !want_links.contains(l.name.as_str())
        {
            pl.delete_early(&l.name);
        }
    }

    for b in desired.bridges.values() {
        pl.bridge(b);
    }
    for e in desired.endpoints.values() {
        pl.endpoint(e);
    }
    for (ns, r) in &desired.ns_routing {
        pl.routing(ns, r);
    }

    for l in observed.links.values() {
        if pl.gone.contains(&l.name) {
            continue;
        }
        let owned = names::is_owned_link(&l.name) || l.peer.is_some();
        if owned && !want_links.contains(l.name.as_str()) {
            pl.p.late_del.push(Op::DeleteLink {
                name: l.name.clone(),
            });
            continue;
        }
        let on_owned_bridge = l.master.as_deref().is_some_and(names::is_bridge);
        if on_owned_bridge && !want_master.contains_key(l.name.as_str()) {
            // A deleted port must lose L2 access; the tap itself is not ours.
            pl.p.detach.push(Op::NoMaster {
                link: l.name.clone(),
            });
        }
    }
    let wanted_ns: BTreeSet<&str> = desired
        .endpoints
        .values()
        .map(|e| e.namespace.as_str())
        .chain(desired.ns_routing.keys().map(String::as_str))
        .collect();
    for name in observed.namespaces.keys() {
        if own.owns_namespace(name) && !wanted_ns.contains(name.as_str()) {
            pl.p.ns_del.push(Op::DeleteNamespace { name: name.clone() });
        }
    }
    pl.p.into_ops()
}

#[cfg(test)]
mod tests;
