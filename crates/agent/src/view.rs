//! The agent's replica of its host's slice of the model, kept current by the
//! feed: a snapshot replaces it, a delta patches it.

use std::collections::{BTreeMap, BTreeSet};

use neutrino_agent_rpc::{
    FeedReply, MemberInfo, NetworkInfo, PortInfo, RouterInfo, SecurityGroupInfo, SubnetInfo,
};

#[derive(Debug, Default, Clone)]
pub struct HostView {
    /// Revision of the last reply applied.
    pub revision: u64,
    /// False until the first reply: an agent must not reconcile an empty
    /// view it has not been told about (that would tear the host down).
    pub initialized: bool,
    networks: BTreeMap<String, NetworkInfo>,
    subnets: BTreeMap<String, SubnetInfo>,
    ports: BTreeMap<String, PortInfo>,
    /// network id → its subnets and ports, so a pass never scans every port
    /// once per network.
    subnets_by_network: BTreeMap<String, BTreeSet<String>>,
    ports_by_network: BTreeMap<String, BTreeSet<String>>,
    /// host → VXLAN tunnel IP.
    pub vteps: BTreeMap<String, String>,
    pub agents_version: u64,
    pub dns_domain: String,
    /// network id → the change counter when it last changed, and the counter
    /// for what every network depends on (VTEPs, domain, a snapshot): lets
    /// the planner redo only the networks that changed.
    versions: BTreeMap<String, u64>,
    global: u64,
    counter: u64,
    /// Security groups the host's firewall needs, and the membership of
    /// ports anywhere in them (port id → record; group → ports).
    groups: BTreeMap<String, SecurityGroupInfo>,
    members: BTreeMap<String, MemberInfo>,
    members_by_group: BTreeMap<String, BTreeSet<String>>,
    /// Changes whenever a group or a membership changes.
    groups_version: u64,
    /// Routers this host runs.
    routers: BTreeMap<String, RouterInfo>,
}

fn unlink(index: &mut BTreeMap<String, BTreeSet<String>>, network_id: &str, id: &str) {
    if let Some(set) = index.get_mut(network_id) {
        set.remove(id);
        if set.is_empty() {
            index.remove(network_id);
        }
    }
}

impl HostView {
    /// Applies a feed reply; returns whether anything the host depends on changed.
    pub fn apply(&mut self, r: FeedReply) -> bool {
        let mut changed = !self.initialized || r.snapshot;
        if changed || self.vteps != r.vteps || self.dns_domain != r.dns_domain {
            self.bump_global();
        }
        if r.snapshot {
            self.networks.clear();
            self.subnets.clear();
            self.ports.clear();
            self.subnets_by_network.clear();
            self.ports_by_network.clear();
            self.versions.clear();
            self.groups.clear();
            self.members.clear();
            self.members_by_group.clear();
        }
        if r.snapshot {
            self.routers.clear();
        }
        for id in &r.deleted_routers {
            changed |= self.routers.remove(id).is_some();
        }
        for router in r.routers {
            if self.routers.get(&router.id) != Some(&router) {
                self.routers.insert(router.id.clone(), router);
                changed = true;
            }
        }
        let groups_changed = r.snapshot
            || !r.security_groups.is_empty()
            || !r.deleted_groups.is_empty()
            || !r.members.is_empty()
            || r.deleted_ports.iter().any(|p| self.members.contains_key(p));
        for id in &r.deleted_groups {
            self.groups.remove(id);
            self.members_by_group.remove(id);
        }
        for id in &r.deleted_ports {
            self.remove_member(id);
        }
        for g in r.security_groups {
            self.groups.insert(g.id.clone(), g);
        }
        for m in r.members {
            self.remove_member(&m.port_id);
            for g in &m.groups {
                self.members_by_group
                    .entry(g.clone())
                    .or_default()
                    .insert(m.port_id.clone());
            }
            self.members.insert(m.port_id.clone(), m);
        }
        if groups_changed {
            self.counter += 1;
            self.groups_version = self.counter;
            changed = true;
        }
        for id in &r.deleted_networks {
            changed |= self.remove_network(id);
        }
        for id in &r.deleted_subnets {
            changed |= self.remove_subnet(id);
        }
        for id in &r.deleted_ports {
            changed |= self.remove_port(id);
        }
        for n in r.networks {
            changed |= self.upsert_network(n);
        }
        for s in r.subnets {
            changed |= self.upsert_subnet(s);
        }
        for p in r.ports {
            changed |= self.upsert_port(p);
        }
        changed |= self.vteps != r.vteps || self.dns_domain != r.dns_domain;
        self.vteps = r.vteps;
        self.revision = r.revision;
        self.agents_version = r.agents_version;
        self.dns_domain = r.dns_domain;
        self.initialized = true;
        changed
    }

    fn remove_member(&mut self, port_id: &str) {
        if let Some(old) = self.members.remove(port_id) {
            for g in &old.groups {
                unlink(&mut self.members_by_group, g, port_id);
            }
        }
    }

    /// Routers the host runs (the feed's cursor).
    pub fn held_routers(&self) -> Vec<String> {
        self.routers.keys().cloned().collect()
    }

    pub fn routers(&self) -> impl Iterator<Item = &RouterInfo> {
        self.routers.values()
    }

    /// Groups whose rules and members the host holds (the feed's cursor).
    pub fn held_groups(&self) -> Vec<String> {
        self.groups.keys().cloned().collect()
    }

    pub fn group(&self, id: &str) -> Option<&SecurityGroupInfo> {
        self.groups.get(id)
    }

    pub fn groups(&self) -> impl Iterator<Item = &SecurityGroupInfo> {
        self.groups.values()
    }

    /// Addresses of every member of a group.
    pub fn member_addresses<'a>(&'a self, group: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.members_by_group
            .get(group)
            .into_iter()
            .flatten()
            .filter_map(|p| self.members.get(p))
            .flat_map(|m| m.addresses.iter().map(String::as_str))
    }

    /// Changes whenever a group or a membership changes.
    pub fn groups_version(&self) -> u64 {
        self.groups_version
    }

    fn bump_global(&mut self) {
        self.counter += 1;
        self.global = self.counter;
    }

    fn bump(&mut self, network_id: &str) {
        self.counter += 1;
        self.versions.insert(network_id.to_string(), self.counter);
    }

    /// Changes whenever anything every network depends on changes.
    pub fn global_version(&self) -> u64 {
        self.global
    }

    /// Changes whenever the network, one of its subnets or ports changes.
    pub fn network_version(&self, id: &str) -> u64 {
        self.versions.get(id).copied().unwrap_or(0)
    }

    pub fn network(&self, id: &str) -> Option<&NetworkInfo> {
        self.networks.get(id)
    }

    pub fn has_network(&self, id: &str) -> bool {
        self.networks.contains_key(id)
    }

    fn remove_network(&mut self, id: &str) -> bool {
        self.versions.remove(id);
        let had = self.networks.remove(id).is_some();
        for s in self.subnets_by_network.remove(id).unwrap_or_default() {
            self.subnets.remove(&s);
        }
        for p in self.ports_by_network.remove(id).unwrap_or_default() {
            self.ports.remove(&p);
        }
        had
    }

    fn remove_subnet(&mut self, id: &str) -> bool {
        let Some(s) = self.subnets.remove(id) else {
            return false;
        };
        unlink(&mut self.subnets_by_network, &s.network_id, id);
        self.bump(&s.network_id);
        true
    }

    pub fn remove_port(&mut self, id: &str) -> bool {
        let Some(p) = self.ports.remove(id) else {
            return false;
        };
        unlink(&mut self.ports_by_network, &p.network_id, id);
        self.bump(&p.network_id);
        true
    }

    pub fn upsert_network(&mut self, n: NetworkInfo) -> bool {
        if self.networks.get(&n.id) == Some(&n) {
            return false;
        }
        self.bump(&n.id);
        self.networks.insert(n.id.clone(), n);
        true
    }

    pub fn upsert_subnet(&mut self, s: SubnetInfo) -> bool {
        if self.subnets.get(&s.id) == Some(&s) {
            return false;
        }
        self.remove_subnet(&s.id);
        self.bump(&s.network_id);
        self.subnets_by_network
            .entry(s.network_id.clone())
            .or_default()
            .insert(s.id.clone());
        self.subnets.insert(s.id.clone(), s);
        true
    }

    /// Adds or replaces a port; returns whether it differed.
    pub fn upsert_port(&mut self, p: PortInfo) -> bool {
        if self.ports.get(&p.id) == Some(&p) {
            return false;
        }
        self.remove_port(&p.id);
        self.bump(&p.network_id);
        self.ports_by_network
            .entry(p.network_id.clone())
            .or_default()
            .insert(p.id.clone());
        self.ports.insert(p.id.clone(), p);
        true
    }

    pub fn held_networks(&self) -> Vec<String> {
        self.networks.keys().cloned().collect()
    }

    pub fn networks(&self) -> impl Iterator<Item = &NetworkInfo> {
        self.networks.values()
    }

    pub fn port(&self, id: &str) -> Option<&PortInfo> {
        self.ports.get(id)
    }

    pub fn ports(&self) -> impl Iterator<Item = &PortInfo> {
        self.ports.values()
    }

    pub fn subnets_of<'a>(&'a self, network_id: &str) -> impl Iterator<Item = &'a SubnetInfo> + 'a {
        self.subnets_by_network
            .get(network_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.subnets.get(id))
    }

    pub fn ports_of<'a>(&'a self, network_id: &str) -> impl Iterator<Item = &'a PortInfo> + 'a {
        self.ports_by_network
            .get(network_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.ports.get(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use neutrino_agent_rpc::FixedIp;

    fn net(id: &str) -> NetworkInfo {
        NetworkInfo {
            id: id.into(),
            name: id.into(),
            project_id: "p".into(),
            network_type: "vxlan".into(),
            physical_network: None,
            segmentation_id: Some(7),
            mtu: 1450,
            admin_state_up: true,
        }
    }

    fn port(id: &str, net: &str) -> PortInfo {
        PortInfo {
            id: id.into(),
            network_id: net.into(),
            mac_address: "fa:16:3e:00:00:01".into(),
            fixed_ips: vec![FixedIp {
                subnet_id: "s".into(),
                ip_address: "10.0.0.5".into(),
            }],
            host: "h1".into(),
            device_owner: "compute:nova".into(),
            device_id: "vm".into(),
            admin_state_up: true,
            status: "DOWN".into(),
            dns_name: String::new(),
            extra_dhcp_opts: Vec::new(),
            port_security_enabled: true,
            security_groups: vec!["sg".into()],
            allowed_address_pairs: Vec::new(),
        }
    }

    #[test]
    fn snapshot_replaces_and_delta_patches() {
        let mut v = HostView::default();
        assert!(v.apply(FeedReply {
            revision: 5,
            snapshot: true,
            networks: vec![net("a"), net("b")],
            ports: vec![port("p1", "a"), port("p2", "b")],
            ..FeedReply::default()
        }));
        assert_eq!(v.held_networks(), vec!["a", "b"]);
        // A delta that repeats what we have changes nothing.
        assert!(!v.apply(FeedReply {
            revision: 6,
            ports: vec![port("p1", "a")],
            ..FeedReply::default()
        }));
        assert_eq!(v.revision, 6);
        // Deleting a network drops its ports too.
        assert!(v.apply(FeedReply {
            revision: 7,
            deleted_networks: vec!["b".into()],
            ..FeedReply::default()
        }));
        assert_eq!(
            v.ports().map(|p| p.id.as_str()).collect::<Vec<_>>(),
            vec!["p1"]
        );
        assert_eq!(v.ports_of("a").count(), 1);
        assert_eq!(v.ports_of("b").count(), 0);
        // A snapshot forgets what it does not list.
        v.apply(FeedReply {
            revision: 9,
            snapshot: true,
            networks: vec![net("c")],
            ..FeedReply::default()
        });
        assert_eq!(v.held_networks(), vec!["c"]);
        assert_eq!(v.ports().count(), 0);
        // A port moving networks leaves the old network's index.
        v.apply(FeedReply {
            revision: 10,
            ports: vec![port("p9", "c")],
            ..FeedReply::default()
        });
        v.apply(FeedReply {
            revision: 11,
            ports: vec![port("p9", "d")],
            ..FeedReply::default()
        });
        assert_eq!((v.ports_of("c").count(), v.ports_of("d").count()), (0, 1));
    }
}
