//! The in-memory logical model: every resource plus the indexes the write
//! path needs (ports per network, MACs, rule keys, usage counts, IPAM). It is
//! built from persistent maps, so a clone is O(1): the writer mutates its own
//! copy and publishes it as an immutable snapshot after each durable commit.

use std::net::IpAddr;
use std::sync::Arc;

use imbl::{HashMap, OrdMap, OrdSet, Vector};
use neutrino_agent_rpc::HOST_GATEWAY_OWNER;
use neutrino_ipam::{BuiltinIpam, Cidr, Ipam, IpamError, parse_ip, subnet_plan};
use neutrino_model::{
    FloatingIp, InstanceMetadata, Kind, Network, OWNER_ROUTER_GATEWAY, OWNER_ROUTER_INTERFACE,
    Port, QuotaOverrides, Router, SecurityGroup, SecurityGroupRule, Subnet,
};
use neutrino_store::Document;

use crate::error::EngineError;

#[derive(Clone, Default)]
pub struct State {
    /// Revision of the last committed change reflected here.
    pub revision: u64,
    pub networks: OrdMap<String, Arc<Network>>,
    pub subnets: OrdMap<String, Arc<Subnet>>,
    pub ports: OrdMap<String, Arc<Port>>,
    pub security_groups: OrdMap<String, Arc<SecurityGroup>>,
    pub rules: OrdMap<String, Arc<SecurityGroupRule>>,
    pub quotas: OrdMap<String, Arc<QuotaOverrides>>,
    pub routers: OrdMap<String, Arc<Router>>,
    pub floatingips: OrdMap<String, Arc<FloatingIp>>,
    pub instance_metadata: OrdMap<String, Arc<InstanceMetadata>>,
    /// network id → its subnets in creation order.
    pub subnets_by_network: HashMap<String, Vector<String>>,
    /// network id → its ports.
    pub ports_by_network: HashMap<String, OrdSet<String>>,
    /// `binding:host_id` → the ports bound to that host (the agents' feed).
    pub ports_by_host: HashMap<String, OrdSet<String>>,
    /// device id → its ports (an instance's NICs, for the metadata service).
    pub ports_by_device: HashMap<String, OrdSet<String>>,
    /// (network id, mac) → port id: MACs are unique per network.
    pub macs: HashMap<(String, String), String>,
    /// security group id → its rules.
    pub rules_by_group: HashMap<String, OrdSet<String>>,
    /// rule dedup key → rule id.
    pub rule_keys: HashMap<String, String>,
    /// security group id → the ports in it (remote-group membership).
    pub ports_by_group: HashMap<String, OrdSet<String>>,
    /// project id → its `default` security group.
    pub default_groups: HashMap<String, String>,
    /// (project id, quota resource) → count.
    pub usage: HashMap<(String, &'static str), i64>,
    /// router id → its `network:router_interface` ports (device_id = router id).
    pub router_interfaces: HashMap<String, OrdSet<String>>,
    /// router id → its `network:router_gateway` port (device_id = router id).
    pub router_gateways: HashMap<String, String>,
    /// router id → the per-host gateway ports of its multi-host copies.
    pub host_gateways: HashMap<String, OrdSet<String>>,
    /// internal port id → the floating IPs associated with it.
    pub fips_by_port: HashMap<String, OrdSet<String>>,
    /// router id → the floating IPs it translates.
    pub fips_by_router: HashMap<String, OrdSet<String>>,
    /// (external network id, address) → floating IP id: unique per network.
    pub fip_addresses: HashMap<(String, String), String>,
    /// (network type, physical network, segmentation id) in use.
    pub segments: OrdSet<(String, String, u32)>,
    pub ipam: BuiltinIpam,
}

impl State {
    /// Rebuilds the model from stored documents (at start).
    pub fn load(docs: Vec<Document>, revision: u64) -> Result<State, EngineError> {
        let mut s = State {
            revision,
            ..State::default()
        };
        let mut subnets = Vec::new();
        let mut ports = Vec::new();
        for d in docs {
            let corrupt =
                |e: serde_json::Error| EngineError::Corrupt(format!("{} {}: {e}", d.kind, d.id));
            match Kind::parse(&d.kind) {
                Some(Kind::Network) => {
                    s.index_network(Arc::new(serde_json::from_str(&d.body).map_err(corrupt)?))
                }
                Some(Kind::Subnet) => {
                    subnets.push(serde_json::from_str::<Subnet>(&d.body).map_err(corrupt)?)
                }
                Some(Kind::Port) => {
                    ports.push(serde_json::from_str::<Port>(&d.body).map_err(corrupt)?)
                }
                Some(Kind::SecurityGroup) => {
                    s.index_group(Arc::new(serde_json::from_str(&d.body).map_err(corrupt)?));
                }
                Some(Kind::SecurityGroupRule) => {
                    s.index_rule(Arc::new(serde_json::from_str(&d.body).map_err(corrupt)?));
                }
                Some(Kind::Quota) => {
                    let q: QuotaOverrides = serde_json::from_str(&d.body).map_err(corrupt)?;
                    s.quotas.insert(q.project_id.clone(), Arc::new(q));
                }
                Some(Kind::Router) => {
                    s.index_router(Arc::new(serde_json::from_str(&d.body).map_err(corrupt)?));
                }
                Some(Kind::FloatingIp) => {
                    s.index_fip(Arc::new(serde_json::from_str(&d.body).map_err(corrupt)?));
                }
                Some(Kind::InstanceMetadata) => {
                    let m: InstanceMetadata = serde_json::from_str(&d.body).map_err(corrupt)?;
                    s.instance_metadata.insert(m.device_id.clone(), Arc::new(m));
                }
                None => return Err(EngineError::Corrupt(format!("unknown kind {}", d.kind))),
            }
        }
        // Subnets in creation order so each network lists them as created.
        subnets.sort_by(|a, b| (a.std.created_at, &a.id).cmp(&(b.std.created_at, &b.id)));
        for sub in subnets {
            s.index_subnet(Arc::new(sub), false)?;
        }
        // IPAM: the free ranges are the pools minus what ports hold.
        let mut held: std::collections::HashMap<String, Vec<IpAddr>> =
            std::collections::HashMap::new();
        for p in &ports {
            for ip in &p.fixed_ips {
                if let Ok(a) = parse_ip(&ip.ip_address) {
                    held.entry(ip.subnet_id.clone()).or_default().push(a);
                }
            }
        }
        for (subnet_id, addrs) in &held {
            if let Some(sub) = s.subnets.get(subnet_id).cloned() {
                let pools = pools_of(&sub)?;
                s.ipam
                    .update_pools(subnet_id, pools, addrs)
                    .map_err(|e| EngineError::Corrupt(format!("subnet {subnet_id}: {e}")))?;
            }
        }
        for p in ports {
            s.index_port(Arc::new(p));
        }
        Ok(s)
    }

    pub fn index_network(&mut self, n: Arc<Network>) {
        if let Some(old) = self.networks.get(&n.id).cloned() {
            self.unindex_segment(&old);
        } else {
            self.bump_usage(&n.std.project_id, "network", 1);
        }
        if let Some(seg) = n.segmentation_id {
            let physnet = n.physical_network.clone().unwrap_or_default();
            self.segments.insert((n.network_type.clone(), physnet, seg));
        } else if n.network_type == "flat" {
            let physnet = n.physical_network.clone().unwrap_or_default();
            self.segments.insert(("flat".into(), physnet, 0));
        }
        self.networks.insert(n.id.clone(), n);
    }

    fn unindex_segment(&mut self, n: &Network) {
        let physnet = n.physical_network.clone().unwrap_or_default();
        match (n.network_type.as_str(), n.segmentation_id) {
            (t, Some(seg)) => self.segments.remove(&(t.to_string(), physnet, seg)),
            ("flat", None) => self.segments.remove(&("flat".to_string(), physnet, 0)),
            _ => None,
        };
    }

    pub fn unindex_network(&mut self, id: &str) {
        if let Some(n) = self.networks.remove(id) {
            self.unindex_segment(&n);
            self.bump_usage(&n.std.project_id, "network", -1);
            self.subnets_by_network.remove(id);
            self.ports_by_network.remove(id);
        }
    }

    /// Indexes a subnet; `new_in_ipam` registers its pools with IPAM.
    pub fn index_subnet(
        &mut self,
        sub: Arc<Subnet>,
        _new_in_ipam: bool,
    ) -> Result<(), EngineError> {
        if !self.subnets.contains_key(&sub.id) {
            self.bump_usage(&sub.std.project_id, "subnet", 1);
            // In creation order, ties by id: the order a restart rebuilds.
            let created = |s: &State, id: &String| {
                s.subnets.get(id).map(|x| (x.std.created_at, x.id.clone()))
            };
            let key = (sub.std.created_at, sub.id.clone());
            let list = self.subnets_by_network.get(&sub.network_id);
            let at = list.map_or(0, |l| {
                l.iter()
                    .take_while(|id| created(self, id).is_some_and(|k| k < key))
                    .count()
            });
            self.subnets_by_network
                .entry(sub.network_id.clone())
                .or_default()
                .insert(at, sub.id.clone());
            let cidr = Cidr::parse(&sub.cidr)
                .map_err(|e| EngineError::Corrupt(IpamError::from(e).to_string()))?;
            self.ipam
                .add_subnet(&sub.id, cidr, pools_of(&sub)?)
                .map_err(|e| EngineError::Corrupt(e.to_string()))?;
        }
        self.subnets.insert(sub.id.clone(), sub);
        Ok(())
    }

    pub fn unindex_subnet(&mut self, id: &str) {
        if let Some(sub) = self.subnets.remove(id) {
            self.bump_usage(&sub.std.project_id, "subnet", -1);
            if let Some(list) = self.subnets_by_network.get_mut(&sub.network_id) {
                list.retain(|s| s != id);
            }
            self.ipam.remove_subnet(id);
        }
    }

    /// Indexes a port (IPAM is handled by the caller).
    pub fn index_port(&mut self, p: Arc<Port>) {
        if let Some(old) = self.ports.get(&p.id).cloned() {
            self.unindex_port_refs(&old);
        } else {
            self.bump_usage(&p.std.project_id, "port", 1);
        }
        link(&mut self.ports_by_network, &p.network_id, &p.id);
        if !p.binding_host_id.is_empty() {
            link(&mut self.ports_by_host, &p.binding_host_id, &p.id);
        }
        if !p.device_id.is_empty() {
            link(&mut self.ports_by_device, &p.device_id, &p.id);
        }
        self.macs
            .insert((p.network_id.clone(), p.mac_address.clone()), p.id.clone());
        for g in &p.security_groups {
            link(&mut self.ports_by_group, g, &p.id);
        }
        match p.device_owner.as_str() {
            _ if p.device_id.is_empty() => {}
            OWNER_ROUTER_INTERFACE => link(&mut self.router_interfaces, &p.device_id, &p.id),
            HOST_GATEWAY_OWNER => link(&mut self.host_gateways, &p.device_id, &p.id),
            OWNER_ROUTER_GATEWAY => {
                self.router_gateways
                    .insert(p.device_id.clone(), p.id.clone());
            }
            _ => {}
        }
        self.ports.insert(p.id.clone(), p);
    }

    fn unindex_port_refs(&mut self, old: &Port) {
        unlink(&mut self.ports_by_network, &old.network_id, &old.id);
        unlink(&mut self.ports_by_host, &old.binding_host_id, &old.id);
        unlink(&mut self.ports_by_device, &old.device_id, &old.id);
        self.macs
            .remove(&(old.network_id.clone(), old.mac_address.clone()));
        for g in &old.security_groups {
            unlink(&mut self.ports_by_group, g, &old.id);
        }
        match old.device_owner.as_str() {
            OWNER_ROUTER_INTERFACE => unlink(&mut self.router_interfaces, &old.device_id, &old.id),
            HOST_GATEWAY_OWNER => unlink(&mut self.host_gateways, &old.device_id, &old.id),
            OWNER_ROUTER_GATEWAY if self.router_gateways.get(&old.device_id) == Some(&old.id) => {
                self.router_gateways.remove(&old.device_id);
            }
            _ => {}
        }
    }

    /// How many ports use a security group.
    pub fn group_users(&self, group_id: &str) -> usize {
        self.ports_by_group.get(group_id).map_or(0, |s| s.len())
    }

    pub fn unindex_port(&mut self, id: &str) -> Option<Arc<Port>> {
        let p = self.ports.remove(id)?;
        self.unindex_port_refs(&p);
        self.bump_usage(&p.std.project_id, "port", -1);
        Some(p)
    }

    pub fn index_group(&mut self, g: Arc<SecurityGroup>) {
        if !self.security_groups.contains_key(&g.id) {
            self.bump_usage(&g.std.project_id, "security_group", 1);
        }
        if g.is_default {
            self.default_groups
                .insert(g.std.project_id.clone(), g.id.clone());
        }
        self.security_groups.insert(g.id.clone(), g);
    }

    pub fn unindex_group(&mut self, id: &str) {
        if let Some(g) = self.security_groups.remove(id) {
            self.bump_usage(&g.std.project_id, "security_group", -1);
            if g.is_default {
                self.default_groups.remove(&g.std.project_id);
            }
            self.rules_by_group.remove(id);
        }
    }

    pub fn index_rule(&mut self, r: Arc<SecurityGroupRule>) {
        if !self.rules.contains_key(&r.id) {
            self.bump_usage(&r.std.project_id, "security_group_rule", 1);
        }
        self.rules_by_group
            .entry(r.security_group_id.clone())
            .or_default()
            .insert(r.id.clone());
        self.rule_keys.insert(r.dedup_key(), r.id.clone());
        self.rules.insert(r.id.clone(), r);
    }

    pub fn unindex_rule(&mut self, id: &str) {
        if let Some(r) = self.rules.remove(id) {
            self.bump_usage(&r.std.project_id, "security_group_rule", -1);
            if let Some(set) = self.rules_by_group.get_mut(&r.security_group_id) {
                set.remove(id);
            }
            self.rule_keys.remove(&r.dedup_key());
        }
    }

    fn bump_usage(&mut self, project: &str, resource: &'static str, delta: i64) {
        *self
            .usage
            .entry((project.to_string(), resource))
            .or_default() += delta;
    }

    pub fn index_router(&mut self, r: Arc<Router>) {
        if !self.routers.contains_key(&r.id) {
            self.bump_usage(&r.std.project_id, "router", 1);
        }
        self.routers.insert(r.id.clone(), r);
    }

    pub fn unindex_router(&mut self, id: &str) {
        if let Some(r) = self.routers.remove(id) {
            self.bump_usage(&r.std.project_id, "router", -1);
        }
    }

    pub fn index_fip(&mut self, f: Arc<FloatingIp>) {
        match self.floatingips.get(&f.id).cloned() {
            Some(old) => self.unindex_fip_refs(&old),
            None => self.bump_usage(&f.std.project_id, "floatingip", 1),
        }
        self.fip_addresses.insert(
            (f.floating_network_id.clone(), f.floating_ip_address.clone()),
            f.id.clone(),
        );
        if let Some(p) = &f.port_id {
            self.fips_by_port
                .entry(p.clone())
                .or_default()
                .insert(f.id.clone());
        }
        if let Some(r) = &f.router_id {
            self.fips_by_router
                .entry(r.clone())
                .or_default()
                .insert(f.id.clone());
        }
        self.floatingips.insert(f.id.clone(), f);
    }

    fn unindex_fip_refs(&mut self, old: &FloatingIp) {
        self.fip_addresses.remove(&(
            old.floating_network_id.clone(),
            old.floating_ip_address.clone(),
        ));
        for (map, key) in [
            (&mut self.fips_by_port, &old.port_id),
            (&mut self.fips_by_router, &old.router_id),
        ] {
            if let Some(k) = key
                && let Some(set) = map.get_mut(k)
            {
                set.remove(&old.id);
                if set.is_empty() {
                    map.remove(k);
                }
            }
        }
    }

    pub fn unindex_fip(&mut self, id: &str) {
        if let Some(f) = self.floatingips.remove(id) {
            self.unindex_fip_refs(&f);
            self.bump_usage(&f.std.project_id, "floatingip", -1);
        }
    }

    /// A router's `network:router_interface` ports.
    pub fn interfaces_of(&self, router_id: &str) -> impl Iterator<Item = &Arc<Port>> {
        self.router_interfaces
            .get(router_id)
            .into_iter()
            .flat_map(|v| v.iter())
            .filter_map(|id| self.ports.get(id))
    }

    /// A router's gateway port, if it has a gateway.
    pub fn gateway_port_of(&self, router_id: &str) -> Option<&Arc<Port>> {
        self.router_gateways
            .get(router_id)
            .and_then(|id| self.ports.get(id))
    }

    /// The floating IPs associated with a port.
    pub fn fips_of_port(&self, port_id: &str) -> impl Iterator<Item = &Arc<FloatingIp>> {
        self.fips_by_port
            .get(port_id)
            .into_iter()
            .flat_map(|v| v.iter())
            .filter_map(|id| self.floatingips.get(id))
    }

    /// The floating IPs a router translates.
    pub fn fips_of_router(&self, router_id: &str) -> impl Iterator<Item = &Arc<FloatingIp>> {
        self.fips_by_router
            .get(router_id)
            .into_iter()
            .flat_map(|v| v.iter())
            .filter_map(|id| self.floatingips.get(id))
    }

    pub fn used(&self, project: &str, resource: &'static str) -> i64 {
        self.usage
            .get(&(project.to_string(), resource))
            .copied()
            .unwrap_or(0)
    }

    pub fn subnets_of(&self, network_id: &str) -> impl Iterator<Item = &Arc<Subnet>> {
        self.subnets_by_network
            .get(network_id)
            .into_iter()
            .flat_map(|v| v.iter())
            .filter_map(|id| self.subnets.get(id))
    }

    pub fn ports_of(&self, network_id: &str) -> impl Iterator<Item = &Arc<Port>> {
        self.ports_by_network
            .get(network_id)
            .into_iter()
            .flat_map(|v| v.iter())
            .filter_map(|id| self.ports.get(id))
    }

    pub fn rules_of(&self, group_id: &str) -> impl Iterator<Item = &Arc<SecurityGroupRule>> {
        self.rules_by_group
            .get(group_id)
            .into_iter()
            .flat_map(|v| v.iter())
            .filter_map(|id| self.rules.get(id))
    }
}

impl State {
    /// Every index in a comparable form, with empty sets and zero counts left
    /// out: a rebuild from the stored documents must give the same digest.
    /// `State` is taken apart whole, so an index added to it cannot be missed.
    pub fn index_digest(&self) -> std::collections::BTreeMap<&'static str, Vec<String>> {
        let State {
            revision: _,
            networks,
            subnets,
            ports,
            security_groups,
            rules,
            quotas,
            routers,
            floatingips,
            instance_metadata,
            subnets_by_network,
            ports_by_network,
            ports_by_host,
            ports_by_device,
            macs,
            rules_by_group,
            rule_keys,
            ports_by_group,
            default_groups,
            usage,
            router_interfaces,
            router_gateways,
            host_gateways,
            fips_by_port,
            fips_by_router,
            fip_addresses,
            segments,
            ipam,
        } = self;
        fn keys<V>(m: &OrdMap<String, V>) -> Vec<String> {
            m.keys().cloned().collect()
        }
        fn lines<K: std::fmt::Debug, V: std::fmt::Debug>(
            m: &HashMap<K, V>,
            keep: impl Fn(&V) -> bool,
        ) -> Vec<String> {
            let mut v: Vec<String> = m
                .iter()
                .filter(|(_, v)| keep(v))
                .map(|(k, v)| format!("{k:?} {v:?}"))
                .collect();
            v.sort();
            v
        }
        let any = |_: &_| true;
        let mut d = std::collections::BTreeMap::new();
        d.insert("networks", keys(networks));
        d.insert("subnets", keys(subnets));
        d.insert("ports", keys(ports));
        d.insert("security_groups", keys(security_groups));
        d.insert("rules", keys(rules));
        d.insert("quotas", keys(quotas));
        d.insert("routers", keys(routers));
        d.insert("floatingips", keys(floatingips));
        d.insert("instance_metadata", keys(instance_metadata));
        d.insert(
            "subnets_by_network",
            lines(subnets_by_network, |v: &Vector<String>| !v.is_empty()),
        );
        d.insert(
            "ports_by_network",
            lines(ports_by_network, |v: &OrdSet<String>| !v.is_empty()),
        );
        d.insert(
            "ports_by_host",
            lines(ports_by_host, |v: &OrdSet<String>| !v.is_empty()),
        );
        d.insert(
            "ports_by_device",
            lines(ports_by_device, |v: &OrdSet<String>| !v.is_empty()),
        );
        d.insert("macs", lines(macs, any));
        d.insert(
            "rules_by_group",
            lines(rules_by_group, |v: &OrdSet<String>| !v.is_empty()),
        );
        d.insert("rule_keys", lines(rule_keys, any));
        d.insert(
            "ports_by_group",
            lines(ports_by_group, |v: &OrdSet<String>| !v.is_empty()),
        );
        d.insert("default_groups", lines(default_groups, any));
        d.insert("usage", lines(usage, |n: &i64| *n != 0));
        d.insert(
            "router_interfaces",
            lines(router_interfaces, |v: &OrdSet<String>| !v.is_empty()),
        );
        d.insert("router_gateways", lines(router_gateways, any));
        d.insert(
            "host_gateways",
            lines(host_gateways, |v: &OrdSet<String>| !v.is_empty()),
        );
        d.insert(
            "fips_by_port",
            lines(fips_by_port, |v: &OrdSet<String>| !v.is_empty()),
        );
        d.insert(
            "fips_by_router",
            lines(fips_by_router, |v: &OrdSet<String>| !v.is_empty()),
        );
        d.insert("fip_addresses", lines(fip_addresses, any));
        d.insert(
            "segments",
            segments.iter().map(|s| format!("{s:?}")).collect(),
        );
        // IPAM: each subnet's pools, free ranges and outside addresses.
        let mut held: Vec<String> = subnets
            .keys()
            .map(|id| format!("{id} {:?}", ipam.subnet(id)))
            .collect();
        held.push(format!("subnets managed: {}", ipam.subnet_count()));
        d.insert("ipam", held);
        d
    }
}

/// A subnet's pools as IPAM ranges.
pub fn pools_of(sub: &Subnet) -> Result<Vec<neutrino_ipam::AddrRange>, EngineError> {
    let cidr =
        Cidr::parse(&sub.cidr).map_err(|e| EngineError::Corrupt(IpamError::from(e).to_string()))?;
    let pairs = pool_pairs(sub);
    let gw = sub.gateway_ip.as_deref().and_then(|g| parse_ip(g).ok());
    subnet_plan::validate_pools(&cidr, &pairs, gw).map_err(|e| EngineError::Corrupt(e.to_string()))
}

/// A subnet's stored pools as address pairs.
pub fn pool_pairs(sub: &Subnet) -> Vec<(IpAddr, IpAddr)> {
    sub.allocation_pools
        .iter()
        .filter_map(|p| Some((parse_ip(&p.start).ok()?, parse_ip(&p.end).ok()?)))
        .collect()
}

/// IPAM ranges in the API's `allocation_pools` form.
pub fn pool_objects(
    ranges: &[neutrino_ipam::AddrRange],
    v4: bool,
) -> Vec<neutrino_model::AllocationPool> {
    subnet_plan::pools_to_strings(ranges, v4)
        .into_iter()
        .map(|(start, end)| neutrino_model::AllocationPool { start, end })
        .collect()
}

/// Adds `id` to the set under `key` (an index of ids by something).
fn link(index: &mut HashMap<String, OrdSet<String>>, key: &str, id: &str) {
    index
        .entry(key.to_string())
        .or_default()
        .insert(id.to_string());
}

/// Removes `id` from the set under `key`, and the set once it is empty.
fn unlink(index: &mut HashMap<String, OrdSet<String>>, key: &str, id: &str) {
    if let Some(set) = index.get_mut(key) {
        set.remove(id);
        if set.is_empty() {
            index.remove(key);
        }
    }
}
