//! The stored form of every resource. These structs are what the store keeps
//! (as JSON) and what the engine's in-memory model holds; the API's response
//! shapes are built from them in `view`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which kind of resource a stored document or a change is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Network,
    Subnet,
    Port,
    SecurityGroup,
    SecurityGroupRule,
    /// Per-project quota overrides (id = project id).
    Quota,
    Router,
    FloatingIp,
    /// What the builtin metadata service tells an instance (id = device id).
    InstanceMetadata,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Network,
        Kind::Subnet,
        Kind::Port,
        Kind::SecurityGroup,
        Kind::SecurityGroupRule,
        Kind::Quota,
        Kind::Router,
        Kind::FloatingIp,
        Kind::InstanceMetadata,
    ];

    /// The name used in the store and the change feed.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Network => "network",
            Kind::Subnet => "subnet",
            Kind::Port => "port",
            Kind::SecurityGroup => "security_group",
            Kind::SecurityGroupRule => "security_group_rule",
            Kind::Quota => "quota",
            Kind::Router => "router",
            Kind::FloatingIp => "floatingip",
            Kind::InstanceMetadata => "instance_metadata",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Attributes every standard-attr resource carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct StdAttrs {
    pub project_id: String,
    pub description: String,
    /// Sorted, unique.
    pub tags: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub revision_number: u64,
}

/// What every stored resource has: an id and the standard attributes.
pub trait Record {
    fn id(&self) -> &str;
    fn std(&self) -> &StdAttrs;
    fn std_mut(&mut self) -> &mut StdAttrs;
}

macro_rules! records {
    ($($t:ty),*) => {$(
        impl Record for $t {
            fn id(&self) -> &str {
                &self.id
            }
            fn std(&self) -> &StdAttrs {
                &self.std
            }
            fn std_mut(&mut self) -> &mut StdAttrs {
                &mut self.std
            }
        }
    )*};
}

records!(
    Network,
    Subnet,
    Port,
    SecurityGroup,
    SecurityGroupRule,
    Router,
    FloatingIp
);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    pub id: String,
    pub name: String,
    pub admin_state_up: bool,
    pub status: String,
    pub shared: bool,
    pub router_external: bool,
    pub mtu: u32,
    pub port_security_enabled: bool,
    /// `provider:network_type`: flat, vlan, vxlan or local.
    pub network_type: String,
    pub physical_network: Option<String>,
    pub segmentation_id: Option<u32>,
    /// `dns_domain` (dns-integration): the FQDN its ports' names live in.
    #[serde(default)]
    pub dns_domain: String,
    #[serde(flatten)]
    pub std: StdAttrs,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationPool {
    pub start: String,
    pub end: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRoute {
    pub destination: String,
    pub nexthop: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subnet {
    pub id: String,
    pub name: String,
    pub network_id: String,
    pub ip_version: u8,
    pub cidr: String,
    pub gateway_ip: Option<String>,
    pub allocation_pools: Vec<AllocationPool>,
    pub dns_nameservers: Vec<String>,
    pub host_routes: Vec<HostRoute>,
    pub enable_dhcp: bool,
    pub ipv6_ra_mode: Option<String>,
    pub ipv6_address_mode: Option<String>,
    #[serde(flatten)]
    pub std: StdAttrs,
}

impl Subnet {
    /// SLAAC and DHCPv6-stateless subnets derive addresses from the MAC (EUI-64).
    pub fn is_auto_address(&self) -> bool {
        self.ip_version == 6
            && matches!(
                self.ipv6_address_mode
                    .as_deref()
                    .or(self.ipv6_ra_mode.as_deref()),
                Some("slaac") | Some("dhcpv6-stateless")
            )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FixedIp {
    pub subnet_id: String,
    pub ip_address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressPair {
    pub ip_address: String,
    pub mac_address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraDhcpOpt {
    pub opt_name: String,
    pub opt_value: String,
    pub ip_version: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Port {
    pub id: String,
    pub name: String,
    pub network_id: String,
    pub admin_state_up: bool,
    pub status: String,
    pub mac_address: String,
    pub fixed_ips: Vec<FixedIp>,
    pub device_id: String,
    pub device_owner: String,
    pub security_groups: Vec<String>,
    pub port_security_enabled: bool,
    pub allowed_address_pairs: Vec<AddressPair>,
    pub extra_dhcp_opts: Vec<ExtraDhcpOpt>,
    pub binding_host_id: String,
    pub binding_vnic_type: String,
    pub binding_profile: Value,
    pub binding_vif_type: String,
    pub binding_vif_details: Value,
    pub dns_name: String,
    /// `dns_domain` (dns-domain-ports): where external DNS publishes the
    /// port, before its network's.
    #[serde(default)]
    pub dns_domain: String,
    #[serde(flatten)]
    pub std: StdAttrs,
}

impl Port {
    /// `network:*` owners (DHCP, router) are trusted: no security groups, no port security.
    pub fn is_network_owned(&self) -> bool {
        self.device_owner.starts_with("network:")
    }
}

/// Device owners of the ports the L3 API creates (neutron-lib constants).
pub const OWNER_ROUTER_INTERFACE: &str = "network:router_interface";
pub const OWNER_ROUTER_GATEWAY: &str = "network:router_gateway";
pub const OWNER_FLOATINGIP: &str = "network:floatingip";

/// A router's uplink: `external_gateway_info` as the API shows it. The
/// addresses are those of the gateway port (`Router::gw_port_id`), kept here
/// too so the router document alone describes the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalGateway {
    pub network_id: String,
    pub enable_snat: bool,
    pub external_fixed_ips: Vec<FixedIp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Router {
    pub id: String,
    pub name: String,
    pub admin_state_up: bool,
    pub status: String,
    pub external_gateway: Option<ExternalGateway>,
    /// The `network:router_gateway` port (project ""), when there is a gateway.
    pub gw_port_id: Option<String>,
    /// Extra routes (`extraroute`); each nexthop is on a subnet the router is attached to.
    pub routes: Vec<HostRoute>,
    #[serde(flatten)]
    pub std: StdAttrs,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloatingIp {
    pub id: String,
    pub floating_network_id: String,
    pub floating_ip_address: String,
    /// The hidden `network:floatingip` port (project "", device_id = FIP id)
    /// that holds `floating_ip_address` on the external network.
    pub floating_port_id: String,
    /// The internal port the address is translated to, if associated.
    pub port_id: Option<String>,
    /// Which of that port's IPv4 addresses (set iff `port_id` is).
    pub fixed_ip_address: Option<String>,
    /// The router doing the NAT: gateway on `floating_network_id` and an
    /// interface on the fixed IP's subnet (set iff `port_id` is).
    pub router_id: Option<String>,
    /// DOWN unassociated, ACTIVE associated.
    pub status: String,
    #[serde(flatten)]
    pub std: StdAttrs,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
    pub stateful: bool,
    /// The project's `default` group (created lazily, never renamed).
    pub is_default: bool,
    #[serde(flatten)]
    pub std: StdAttrs,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroupRule {
    pub id: String,
    pub security_group_id: String,
    pub direction: String,
    pub ethertype: String,
    pub protocol: Option<String>,
    pub port_range_min: Option<u32>,
    pub port_range_max: Option<u32>,
    pub remote_ip_prefix: Option<String>,
    pub remote_group_id: Option<String>,
    /// `remote_ip_prefix` with its host bits cleared (`10.0.0.5/24` → `10.0.0.0/24`).
    #[serde(default)]
    pub normalized_cidr: Option<String>,
    /// Whether the rule is in its project's `default` group.
    #[serde(default)]
    pub belongs_to_default_sg: bool,
    #[serde(flatten)]
    pub std: StdAttrs,
}

/// IANA protocol names Neutron accepts in security group rules, with their numbers.
pub const IP_PROTOCOLS: &[(&str, u8)] = &[
    ("ah", 51),
    ("dccp", 33),
    ("egp", 8),
    ("esp", 50),
    ("gre", 47),
    ("hopopt", 0),
    ("icmp", 1),
    ("igmp", 2),
    ("ip", 0),
    ("ipip", 4),
    ("ipv6-encap", 41),
    ("ipv6-frag", 44),
    ("ipv6-icmp", 58),
    ("icmpv6", 58),
    ("ipv6-nonxt", 59),
    ("ipv6-opts", 60),
    ("ipv6-route", 43),
    ("ospf", 89),
    ("pgm", 113),
    ("rsvp", 46),
    ("sctp", 132),
    ("tcp", 6),
    ("udp", 17),
    ("udplite", 136),
    ("vrrp", 112),
];

/// The number of a protocol as a rule names it (`tcp` or `6`).
pub fn protocol_number(p: &str) -> Option<u8> {
    IP_PROTOCOLS
        .iter()
        .find(|(n, _)| *n == p)
        .map(|(_, n)| *n)
        .or_else(|| p.parse().ok())
}

impl SecurityGroupRule {
    /// The identity of a rule for duplicate detection: `0.0.0.0/0`, `::/0`
    /// and no prefix are the same, and a protocol name is the same as its
    /// number (`tcp` ≡ `6`), as Neutron compares them.
    pub fn dedup_key(&self) -> String {
        let prefix = match self.remote_ip_prefix.as_deref() {
            None | Some("0.0.0.0/0") | Some("::/0") => "",
            Some(p) => p,
        };
        let protocol = self
            .protocol
            .as_deref()
            .map(|p| protocol_number(p).map_or_else(|| p.to_string(), |n| n.to_string()));
        format!(
            "{}|{}|{}|{:?}|{:?}|{:?}|{}|{}",
            self.security_group_id,
            self.direction,
            self.ethertype,
            protocol,
            self.port_range_min,
            self.port_range_max,
            prefix,
            self.remote_group_id.as_deref().unwrap_or("")
        )
    }
}

/// An instance's own metadata for the builtin metadata service, set by an
/// admin (or the orchestrator) through `/v2.0/instance-metadata/{device_id}`:
/// what Nova would otherwise know. Everything else an instance is told comes
/// from its ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct InstanceMetadata {
    pub device_id: String,
    /// The project whose ports it is told to: a port of another project
    /// with the same `device_id` is told none of it.
    pub project_id: String,
    pub name: String,
    pub availability_zone: String,
    /// base64, as Nova's API takes it.
    pub user_data: Option<String>,
    /// key name → public key.
    pub public_keys: std::collections::BTreeMap<String, String>,
    pub meta: std::collections::BTreeMap<String, String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Per-project quota limits that differ from the configured defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct QuotaOverrides {
    pub project_id: String,
    pub limits: std::collections::BTreeMap<String, i64>,
}
