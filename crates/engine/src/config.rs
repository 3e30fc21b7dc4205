//! The engine's settings: how networks get segments and MTUs, how MACs are
//! generated, quota defaults and API limits. The server fills this from the
//! `[network]`, `[quotas]` and `[api]` sections of its TOML file.

use std::collections::BTreeMap;

use neutrino_ipam::Mac;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// `base_mac`: the first three octets are kept; the fourth too when non-zero.
    pub base_mac: Mac,
    /// Network types for project networks, in order of preference.
    pub tenant_network_types: Vec<String>,
    /// VXLAN VNI ranges for project networks (inclusive).
    pub vxlan_ranges: Vec<(u32, u32)>,
    /// VLAN ranges per physical network (inclusive) for project networks.
    pub vlan_ranges: Vec<(String, u32, u32)>,
    /// Physical networks that may carry flat networks (`*` = any).
    pub flat_networks: Vec<String>,
    /// MTU of the physical networks; overlay networks subtract their overhead.
    pub global_physnet_mtu: u32,
    /// Domain for `dns_assignment` fqdns.
    pub dns_domain: String,
    /// Default per-project limits (-1 = unlimited).
    pub quota_defaults: BTreeMap<String, i64>,
    pub max_dns_nameservers: usize,
    pub max_subnet_host_routes: usize,
    pub max_allowed_address_pairs: usize,
    /// Most extra routes on one router (Neutron's `max_routes`).
    pub max_routes: usize,
    /// Largest page a list returns (0 = no cap).
    pub pagination_max_limit: usize,
    /// Largest number of resources in one bulk create.
    pub max_bulk: usize,
    /// How many recent changes the agents' feed keeps; an agent further
    /// behind resyncs from a snapshot.
    pub feed_history: usize,
}

/// The quota resources Neutrino counts, with Neutron's defaults.
pub const QUOTA_RESOURCES: [(&str, i64); 7] = [
    ("network", 100),
    ("subnet", 100),
    ("port", 500),
    ("router", 10),
    ("floatingip", 50),
    ("security_group", 10),
    ("security_group_rule", 100),
];

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            base_mac: Mac::new([0xfa, 0x16, 0x3e, 0, 0, 0]),
            tenant_network_types: vec!["vxlan".into()],
            vxlan_ranges: vec![(1, 16_777_215)],
            vlan_ranges: Vec::new(),
            flat_networks: vec!["*".into()],
            global_physnet_mtu: 1500,
            dns_domain: "openstacklocal".into(),
            quota_defaults: QUOTA_RESOURCES
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            max_dns_nameservers: 5,
            max_subnet_host_routes: 20,
            max_allowed_address_pairs: 10,
            max_routes: 30,
            pagination_max_limit: 0,
            feed_history: 100_000,
            max_bulk: 10_000,
        }
    }
}

impl EngineConfig {
    /// The MTU a network of this type gets by default: VXLAN loses 50 bytes
    /// to its IPv4 + UDP + VXLAN + inner Ethernet headers.
    pub fn default_mtu(&self, network_type: &str) -> u32 {
        match network_type {
            "vxlan" => self.global_physnet_mtu.saturating_sub(50),
            _ => self.global_physnet_mtu,
        }
    }

    pub fn quota_default(&self, resource: &str) -> i64 {
        self.quota_defaults.get(resource).copied().unwrap_or(-1)
    }

    pub fn is_physnet_known(&self, physnet: &str) -> bool {
        self.flat_networks.iter().any(|p| p == "*" || p == physnet)
            || self.vlan_ranges.iter().any(|(p, _, _)| p == physnet)
    }
}
