//! What the server and its host agents say to each other under `/agent/v1`.
//! Plain data: the server builds these from its model, the agent turns them
//! into desired host state. Only what a host needs is carried, not whole
//! API resources.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Path prefix of the agent protocol on the server's listener.
pub const PREFIX: &str = "/agent/v1";

/// Metadata requests an agent relays: the instance's request goes to
/// `{PREFIX}{METADATA_PATH}{the instance's path}` with the same method, query
/// and body, and these headers say where it arrived (exactly one of the
/// first two) and from which address. The server's answer is the instance's
/// when it carries [`METADATA_ANSWER_HEADER`]; anything else is a fault
/// between agent and server, which the instance sees as a 502.
pub const METADATA_PATH: &str = "/metadata";
pub const METADATA_NETWORK_HEADER: &str = "x-neutrino-network-id";
pub const METADATA_ROUTER_HEADER: &str = "x-neutrino-router-id";
pub const METADATA_ADDRESS_HEADER: &str = "x-neutrino-instance-address";
pub const METADATA_ANSWER_HEADER: &str = "x-neutrino-metadata-answer";
/// Largest request body relayed (Nova takes at most a 1020-byte password).
pub const METADATA_MAX_BODY: usize = 4096;

/// `device_owner` of the ports the DHCP service holds on each network.
pub const DHCP_OWNER: &str = "network:dhcp";

/// How much DHCP an agent serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DhcpMode {
    /// Every network with a DHCP-enabled subnet (single-host: the network node).
    All,
    /// Only the ports bound to this host (multi-host, nova-network's host filter).
    Local,
    /// No DHCP (an L2-only compute host in single-host mode).
    #[default]
    Off,
}

/// How much routing an agent does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum L3Mode {
    /// Every router (single-host: the network node).
    All,
    /// A copy of each router that serves an instance of this host, doing the
    /// NAT of this host's instances only (multi-host, nova-network's
    /// multi_host).
    Local,
    /// No routers.
    #[default]
    Off,
}

/// `device_owner` of the per-host external port a router copy uses in
/// multi-host mode (Neutron's DVR calls its per-host port the same).
pub const HOST_GATEWAY_OWNER: &str = "network:floatingip_agent_gateway";

/// Heartbeat and registration in one: sent at start and every report interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentReport {
    pub host: String,
    /// VXLAN underlay address of this host, if it carries vxlan networks.
    #[serde(default)]
    pub tunnel_ip: Option<String>,
    pub dhcp_mode: DhcpMode,
    #[serde(default)]
    pub l3_mode: L3Mode,
    /// `native` or `dnsmasq`.
    #[serde(default)]
    pub dhcp_driver: String,
    /// physical network → interface.
    #[serde(default)]
    pub physical_interface_mappings: BTreeMap<String, String>,
    /// Counts the agent reports for `GET /v2.0/agents` (`configurations`).
    #[serde(default)]
    pub counters: BTreeMap<String, u64>,
    /// Unix seconds when this agent process started.
    pub started_at: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportReply {
    pub agents_version: u64,
    /// The server does not know this host's port states for sure (it had
    /// marked the host dead, or it restarted): send them all again.
    #[serde(default)]
    pub resend_port_status: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedRequest {
    pub host: String,
    /// Revision the agent has applied; 0 asks for a snapshot.
    pub since: u64,
    /// Networks the agent holds now.
    #[serde(default)]
    pub networks: Vec<String>,
    /// Decides which networks the host carries (all DHCP networks, or its own).
    #[serde(default)]
    pub dhcp_mode: DhcpMode,
    /// VTEP map version the agent has; a different one on the server answers at once.
    #[serde(default)]
    pub agents_version: u64,
    /// Longest the server may hold the request when nothing changed.
    #[serde(default)]
    pub wait_ms: u64,
    /// Security groups whose rules and members the agent holds now.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Decides which routers the host runs.
    #[serde(default)]
    pub l3_mode: L3Mode,
    /// Routers the agent holds now.
    #[serde(default)]
    pub routers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FeedReply {
    pub revision: u64,
    /// True: this is the whole view; drop everything not in it.
    pub snapshot: bool,
    pub networks: Vec<NetworkInfo>,
    pub subnets: Vec<SubnetInfo>,
    pub ports: Vec<PortInfo>,
    pub deleted_networks: Vec<String>,
    pub deleted_subnets: Vec<String>,
    pub deleted_ports: Vec<String>,
    /// host → tunnel IP of every live agent with one.
    pub vteps: BTreeMap<String, String>,
    pub agents_version: u64,
    /// The server's `dns_domain` (for DHCP option 15).
    pub dns_domain: String,
    /// Security groups the host needs (used by its ports, or named by their
    /// rules as a remote group), each whole whenever it or a rule changed.
    #[serde(default)]
    pub security_groups: Vec<SecurityGroupInfo>,
    /// Groups the host no longer needs (or that were deleted).
    #[serde(default)]
    pub deleted_groups: Vec<String>,
    /// Ports anywhere whose membership in the host's groups changed: each
    /// replaces what the agent held for that port. Deleted ports come in
    /// `deleted_ports`.
    #[serde(default)]
    pub members: Vec<MemberInfo>,
    /// Routers the host runs (whole, whenever one changed or its floating
    /// IPs did); in a snapshot, all of them.
    #[serde(default)]
    pub routers: Vec<RouterInfo>,
    /// Routers the host no longer runs.
    #[serde(default)]
    pub deleted_routers: Vec<String>,
}

impl FeedReply {
    pub fn is_empty(&self) -> bool {
        !self.snapshot
            && self.networks.is_empty()
            && self.subnets.is_empty()
            && self.ports.is_empty()
            && self.deleted_networks.is_empty()
            && self.deleted_subnets.is_empty()
            && self.deleted_ports.is_empty()
            && self.security_groups.is_empty()
            && self.deleted_groups.is_empty()
            && self.members.is_empty()
            && self.routers.is_empty()
            && self.deleted_routers.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInfo {
    pub id: String,
    pub name: String,
    pub project_id: String,
    /// `flat`, `vxlan`, `vlan` or `local`.
    pub network_type: String,
    pub physical_network: Option<String>,
    pub segmentation_id: Option<u32>,
    pub mtu: u32,
    pub admin_state_up: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetInfo {
    pub id: String,
    pub network_id: String,
    pub ip_version: u8,
    pub cidr: String,
    pub gateway_ip: Option<String>,
    pub enable_dhcp: bool,
    pub dns_nameservers: Vec<String>,
    pub host_routes: Vec<HostRoute>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRoute {
    pub destination: String,
    pub nexthop: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedIp {
    pub subnet_id: String,
    pub ip_address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraDhcpOpt {
    pub opt_name: String,
    pub opt_value: String,
    pub ip_version: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortInfo {
    pub id: String,
    pub network_id: String,
    pub mac_address: String,
    pub fixed_ips: Vec<FixedIp>,
    /// `binding:host_id` ("" when unbound).
    pub host: String,
    pub device_owner: String,
    pub device_id: String,
    pub admin_state_up: bool,
    pub status: String,
    pub dns_name: String,
    pub extra_dhcp_opts: Vec<ExtraDhcpOpt>,
    /// False: no security groups and no anti-spoofing for this port.
    #[serde(default)]
    pub port_security_enabled: bool,
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub allowed_address_pairs: Vec<AddressPair>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressPair {
    /// An address or a CIDR.
    pub ip_address: String,
    pub mac_address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroupInfo {
    pub id: String,
    pub stateful: bool,
    pub rules: Vec<RuleInfo>,
}

/// A security group rule as the firewall needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleInfo {
    pub id: String,
    /// `ingress` or `egress`.
    pub direction: String,
    /// `IPv4` or `IPv6`.
    pub ethertype: String,
    /// IP protocol number; None for any.
    pub protocol: Option<u8>,
    /// Ports for TCP/UDP/SCTP/DCCP/UDP-Lite; ICMP type and code for ICMP.
    pub port_range_min: Option<u32>,
    pub port_range_max: Option<u32>,
    /// Normalised CIDR (host bits clear); None for any.
    pub remote_ip_prefix: Option<String>,
    pub remote_group_id: Option<String>,
}

/// A router as a host needs it to run it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterInfo {
    pub id: String,
    pub admin_state_up: bool,
    /// Legs on tenant networks (`network:router_interface` ports).
    pub interfaces: Vec<RouterLeg>,
    /// The router's own gateway leg (None: no external gateway).
    pub gateway: Option<RouterLeg>,
    /// This host's gateway leg for the router (multi-host mode), once the
    /// server has given it one.
    pub host_gateway: Option<RouterLeg>,
    pub enable_snat: bool,
    /// Extra routes.
    pub routes: Vec<HostRoute>,
    pub floating_ips: Vec<FloatingIpInfo>,
}

/// One leg of a router: a port on a network, with its addresses and the
/// prefix and gateway of each address's subnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterLeg {
    pub port_id: String,
    pub network_id: String,
    pub mac_address: String,
    pub addresses: Vec<LegAddress>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegAddress {
    pub ip_address: String,
    pub subnet_id: String,
    /// The subnet's CIDR.
    pub cidr: String,
    /// The subnet's gateway (on a gateway leg: the router's next hop).
    pub gateway_ip: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloatingIpInfo {
    pub id: String,
    pub floating_ip_address: String,
    pub fixed_ip_address: String,
    pub port_id: String,
    /// Where the instance is (`binding:host_id` of its port).
    pub host: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostGatewayRequest {
    pub host: String,
    pub router_id: String,
}

/// Which of the host's groups a port is in, with the addresses it speaks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    pub port_id: String,
    pub groups: Vec<String>,
    /// Fixed IPs and allowed address pairs (addresses or CIDRs).
    pub addresses: Vec<String>,
}

impl PortInfo {
    pub fn is_dhcp(&self) -> bool {
        self.device_owner == DHCP_OWNER
    }

    /// A router's leg on a tenant network (neutron-lib's
    /// `DEVICE_OWNER_ROUTER_INTF`).
    pub fn is_router_interface(&self) -> bool {
        self.device_owner == "network:router_interface"
    }

    /// DHCP, router and floating IP ports: trusted, never an instance.
    pub fn is_network_owned(&self) -> bool {
        self.device_owner.starts_with("network:")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhcpPortRequest {
    pub host: String,
    pub network_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortStatusReport {
    pub host: String,
    #[serde(default)]
    pub active: Vec<String>,
    #[serde(default)]
    pub down: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindRequest {
    pub host: String,
    pub port_id: String,
}
