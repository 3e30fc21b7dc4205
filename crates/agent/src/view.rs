//! The agent's replica of its host's slice of the model, kept current by the
//! feed: a snapshot replaces it, a delta patches it.

use std::collections::BTreeMap;

use neutrino_agent_rpc::{FeedReply, NetworkInfo, PortInfo, SubnetInfo};

#[derive(Debug, Default, Clone)]
pub struct HostView {
    /// Revision of the last reply applied.
    pub revision: u64,
    /// False until the first reply: an agent must not reconcile an empty
    /// view it has not been told about (that would tear the host down).
    pub initialized: bool,
    pub networks: BTreeMap<String, NetworkInfo>,
    pub subnets: BTreeMap<String, SubnetInfo>,
    pub ports: BTreeMap<String, PortInfo>,
    /// host → VXLAN tunnel IP.
    pub vteps: BTreeMap<String, String>,
    pub agents_version: u64,
    pub dns_domain: String,
}

impl HostView {
    /// Applies a feed reply; returns whether anything the host depends on changed.
    pub fn apply(&mut self, r: FeedReply) -> bool {
        let before = (
            self.networks.clone(),
            self.subnets.clone(),
            self.ports.clone(),
            self.vteps.clone(),
        );
        if r.snapshot {
            self.networks.clear();
            self.subnets.clear();
            self.ports.clear();
        }
        for id in &r.deleted_networks {
            self.networks.remove(id);
            self.subnets.retain(|_, s| &s.network_id != id);
            self.ports.retain(|_, p| &p.network_id != id);
        }
        for id in &r.deleted_subnets {
            self.subnets.remove(id);
        }
        for id in &r.deleted_ports {
            self.ports.remove(id);
        }
        for n in r.networks {
            self.networks.insert(n.id.clone(), n);
        }
        for s in r.subnets {
            self.subnets.insert(s.id.clone(), s);
        }
        for p in r.ports {
            self.ports.insert(p.id.clone(), p);
        }
        self.vteps = r.vteps;
        self.revision = r.revision;
        self.agents_version = r.agents_version;
        self.dns_domain = r.dns_domain;
        let was = self.initialized;
        self.initialized = true;
        !was || before
            != (
                self.networks.clone(),
                self.subnets.clone(),
                self.ports.clone(),
                self.vteps.clone(),
            )
    }

    pub fn held_networks(&self) -> Vec<String> {
        self.networks.keys().cloned().collect()
    }

    pub fn subnets_of<'a>(
        &'a self,
        network_id: &'a str,
    ) -> impl Iterator<Item = &'a SubnetInfo> + 'a {
        self.subnets
            .values()
            .filter(move |s| s.network_id == network_id)
    }

    pub fn ports_of<'a>(&'a self, network_id: &'a str) -> impl Iterator<Item = &'a PortInfo> + 'a {
        self.ports
            .values()
            .filter(move |p| p.network_id == network_id)
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
        assert_eq!(v.ports.keys().collect::<Vec<_>>(), vec!["p1"]);
        // A snapshot forgets what it does not list.
        v.apply(FeedReply {
            revision: 9,
            snapshot: true,
            networks: vec![net("c")],
            ..FeedReply::default()
        });
        assert_eq!(v.held_networks(), vec!["c"]);
        assert!(v.ports.is_empty());
    }
}
