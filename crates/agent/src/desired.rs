//! From the host's view of the model to what the host should have: bridges,
//! uplinks, forwarding entries, DHCP endpoints, and the DHCP service of each
//! network. Pure, so every rule here is tested without root.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use neutrino_agent_rpc::{DhcpMode, NetworkInfo, PortInfo, SubnetInfo};
use neutrino_dataplane::firewall::{Cidr, PortFilter};
use neutrino_dataplane::{Bridge, DesiredHost, Mac, NsEndpoint, Uplink, Vxlan};
use neutrino_net::{Ipv4Net, names};

use crate::config::AgentConfig;
use crate::view::HostView;

pub mod firewall;
pub mod l3;
pub use firewall::GroupState;

/// One DHCPv4 subnet served on a network, with our address on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpSubnet {
    pub id: String,
    pub network: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    /// (destination, prefix length, next hop)
    pub routes: Vec<(Ipv4Addr, u8, Ipv4Addr)>,
    pub server_ip: Ipv4Addr,
}

/// A reservation: the controller's address for a MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpHost {
    pub port_id: String,
    pub mac: Mac,
    pub ip: Ipv4Addr,
    pub subnet_id: String,
    pub hostname: String,
    /// `extra_dhcp_opts` (IPv4 ones): (name, value).
    pub extra: Vec<(String, String)>,
}

/// Everything a DHCP driver needs to serve one network on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpService {
    pub network_id: String,
    pub namespace: String,
    /// The DHCP port's interface inside the namespace.
    pub interface: String,
    pub mtu: u32,
    pub domain: String,
    pub lease_secs: u32,
    pub subnets: Vec<DhcpSubnet>,
    pub hosts: Vec<DhcpHost>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    pub host: DesiredHost,
    /// network id → its DHCP service here (shared, so drivers can tell an
    /// unchanged service by pointer).
    pub dhcp: BTreeMap<String, Arc<DhcpService>>,
    /// Networks this host must serve DHCP on whose DHCP port is missing or
    /// lacks an address on a DHCP subnet (the server creates or completes it).
    pub need_dhcp_port: BTreeSet<String>,
    /// Networks where this host holds a DHCP port it no longer serves.
    pub drop_dhcp_port: BTreeSet<String>,
    /// Ports bound here (instances and DHCP): port id → (device on the host, bridge).
    pub local_ports: BTreeMap<String, (String, String)>,
    /// Those of them the server shows ACTIVE (the host step corrects it where
    /// the host says otherwise).
    pub server_active: BTreeSet<String>,
    /// network id → why it cannot be wired here.
    pub problems: BTreeMap<String, String>,
    /// bridge → the network it carries (to name a network a failure
    /// concerns).
    pub bridge_networks: BTreeMap<String, String>,
    /// tap → its filter, for local ports with port security.
    pub port_filters: BTreeMap<String, PortFilter>,
    /// network id → its instances' addresses (only when
    /// `allow_same_net_traffic` is false).
    pub network_addresses: BTreeMap<String, BTreeSet<Cidr>>,
    /// Rules and members of the host's security groups.
    pub groups: Arc<GroupState>,
    /// Routers run here, by id.
    pub routers: l3::Routers,
    /// Routers whose per-host gateway port this host lacks (multi-host).
    pub need_host_gateway: BTreeSet<String>,
    /// Router legs to bind to this host (the network node).
    pub need_bind: BTreeSet<String>,
    /// MACs of router copies' legs (multi-host), kept off the uplinks.
    pub router_macs: BTreeSet<Mac>,
    /// Metadata listeners, by the namespace each listens in.
    pub metadata: BTreeMap<String, MetadataListener>,
}

/// Where a metadata request arrived, as the server is told it: the
/// listener, not anything the instance sends, decides this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrival {
    /// An isolated network's DHCP namespace.
    Network(String),
    /// A router's namespace.
    Router(String),
}

/// One listener of the metadata service inside a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataListener {
    pub arrival: Arrival,
    pub bind: SocketAddr,
}

/// The metadata service's address (neutron-lib's `METADATA_V4_IP`) and port.
pub const METADATA_IP: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
pub const METADATA_PORT: u16 = 80;

/// Neutron's default hostname for a port without `dns_name`: `host-10-0-0-5`.
pub fn hostname(p: &PortInfo, ip: Ipv4Addr) -> String {
    if p.dns_name.is_empty() {
        format!("host-{}", ip.to_string().replace('.', "-"))
    } else {
        p.dns_name.clone()
    }
}

/// A subnet no router serves: without a gateway, or with one no router
/// interface on the network holds (Neutron's `get_isolated_subnets`).
fn is_isolated(s: &SubnetInfo, ports: &[&PortInfo]) -> bool {
    let Some(gw) = s.gateway_ip.as_deref() else {
        return true;
    };
    !ports.iter().any(|p| {
        p.is_router_interface()
            && p.fixed_ips
                .iter()
                .any(|f| f.subnet_id == s.id && f.ip_address == gw)
    })
}

fn is_dhcp4(s: &SubnetInfo) -> bool {
    s.enable_dhcp && s.ip_version == 4
}

/// Everything that follows from the view, computed from scratch.
pub fn compute(view: &HostView, cfg: &AgentConfig) -> Desired {
    Planner::default().compute(view, cfg)
}

/// Computes the desired state network by network and keeps each network's
/// share until that network (or something all networks depend on) changes,
/// so a port added to one of fifty networks costs one network's work.
#[derive(Default)]
pub struct Planner {
    cache: BTreeMap<String, (u64, Arc<Desired>)>,
    global: Option<u64>,
    groups: Option<(u64, Arc<GroupState>)>,
}

impl Planner {
    pub fn compute(&mut self, view: &HostView, cfg: &AgentConfig) -> Desired {
        if self.global != Some(view.global_version()) {
            self.cache.clear();
            self.global = Some(view.global_version());
        }
        self.cache.retain(|id, _| view.has_network(id));
        let mut d = Desired::default();
        for net in view.networks() {
            let version = view.network_version(&net.id);
            let part = match self.cache.get(&net.id) {
                Some((v, part)) if *v == version => part.clone(),
                _ => {
                    let part = Arc::new(network(view, cfg, net));
                    self.cache.insert(net.id.clone(), (version, part.clone()));
                    part
                }
            };
            d.merge(&part);
        }
        l3::add_routers(&mut d, view, cfg);
        if cfg.firewall.enabled {
            let v = view.groups_version();
            d.groups = match &self.groups {
                Some((have, g)) if *have == v => g.clone(),
                _ => {
                    let g = Arc::new(firewall::group_state(view));
                    self.groups = Some((v, g.clone()));
                    g
                }
            };
        }
        d
    }
}

impl Desired {
    fn merge(&mut self, part: &Desired) {
        self.host.bridges.extend(
            part.host
                .bridges
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        self.host.endpoints.extend(
            part.host
                .endpoints
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        self.host.ns_routing.extend(
            part.host
                .ns_routing
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        self.dhcp
            .extend(part.dhcp.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.need_dhcp_port
            .extend(part.need_dhcp_port.iter().cloned());
        self.drop_dhcp_port
            .extend(part.drop_dhcp_port.iter().cloned());
        self.local_ports
            .extend(part.local_ports.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.server_active
            .extend(part.server_active.iter().cloned());
        self.problems
            .extend(part.problems.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.bridge_networks.extend(
            part.bridge_networks
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        self.port_filters.extend(
            part.port_filters
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        self.network_addresses.extend(
            part.network_addresses
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        self.metadata
            .extend(part.metadata.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
}

/// One network's share of the desired state.
fn network(view: &HostView, cfg: &AgentConfig, net: &NetworkInfo) -> Desired {
    let me = cfg.agent.host.as_str();
    let mode = cfg.dhcp.mode;
    let mut d = Desired::default();
    let bridge = names::bridge(&net.id);
    let ports: Vec<&PortInfo> = view.ports_of(&net.id).collect();
    let uplink = match net.network_type.as_str() {
        "local" => Uplink::None,
        "flat" => {
            let physnet = net.physical_network.clone().unwrap_or_default();
            match cfg.l2.physical_interface_mappings.get(&physnet) {
                Some(ifname) => Uplink::Physical {
                    ifname: ifname.clone(),
                },
                None => {
                    d.problems.insert(
                        net.id.clone(),
                        format!("physical network {physnet:?} is not mapped on this host"),
                    );
                    return d;
                }
            }
        }
        "vxlan" => {
            let (Some(local), Some(vni)) = (cfg.l2.tunnel_ip, net.segmentation_id) else {
                d.problems.insert(
                    net.id.clone(),
                    "vxlan needs l2.tunnel_ip on this host".into(),
                );
                return d;
            };
            let mut flood = BTreeSet::new();
            let mut macs = BTreeMap::new();
            for p in &ports {
                if p.host.is_empty() || p.host == me {
                    continue;
                }
                let Some(vtep) = view
                    .vteps
                    .get(&p.host)
                    .and_then(|v| v.parse::<Ipv4Addr>().ok())
                else {
                    continue;
                };
                if vtep == local {
                    continue;
                }
                flood.insert(vtep);
                // A multicast-bit MAC (the API takes one, as Neutron does)
                // is flooded like any group address: the kernel keeps no
                // forwarding entry for it.
                if let Ok(mac) = p.mac_address.parse::<Mac>()
                    && !mac.is_multicast()
                {
                    macs.insert(mac, vtep);
                }
            }
            Uplink::Vxlan(Vxlan {
                name: names::vxlan(vni),
                vni,
                local,
                dstport: cfg.l2.vxlan_port,
                flood,
                macs,
            })
        }
        other => {
            d.problems.insert(
                net.id.clone(),
                format!("network type {other} is not supported by this agent"),
            );
            return d;
        }
    };
    let mut members = BTreeSet::new();
    let mut has_local_instances = false;
    // Instances: router and DHCP legs bound here are not taps.
    for p in ports
        .iter()
        .filter(|p| p.host == me && !p.is_network_owned())
    {
        let tap = names::tap(&p.id);
        has_local_instances = true;
        // An administratively down port stays off the bridge (and so DOWN).
        if p.admin_state_up {
            members.insert(tap.clone());
        }
        d.local_ports.insert(p.id.clone(), (tap, bridge.clone()));
        if cfg.firewall.enabled
            && let Some((tap, f)) = firewall::port_filter(p)
        {
            d.port_filters.insert(tap, f);
        }
        if p.status == "ACTIVE" {
            d.server_active.insert(p.id.clone());
        }
    }
    if cfg.firewall.enabled && !cfg.firewall.allow_same_net_traffic && has_local_instances {
        d.network_addresses.insert(
            net.id.clone(),
            firewall::instance_addresses(ports.iter().copied()),
        );
    }
    d.bridge_networks.insert(bridge.clone(), net.id.clone());
    d.host.bridges.insert(
        bridge.clone(),
        Bridge {
            name: bridge.clone(),
            mtu: net.mtu,
            uplink,
            members,
        },
    );

    let dhcp_subnets: Vec<&SubnetInfo> = view.subnets_of(&net.id).filter(|s| is_dhcp4(s)).collect();
    let serve = !dhcp_subnets.is_empty()
        && match mode {
            DhcpMode::All => true,
            DhcpMode::Local => has_local_instances,
            DhcpMode::Off => false,
        };
    let my_dhcp_port = ports.iter().find(|p| p.is_dhcp() && p.host == me);
    match (serve, my_dhcp_port) {
        (false, Some(_)) => {
            d.drop_dhcp_port.insert(net.id.clone());
        }
        (false, None) => {}
        (true, None) => {
            d.need_dhcp_port.insert(net.id.clone());
        }
        (true, Some(dp)) => {
            if dhcp_subnets
                .iter()
                .any(|s| !dp.fixed_ips.iter().any(|f| f.subnet_id == s.id))
            {
                d.need_dhcp_port.insert(net.id.clone());
            }
            let Ok(mac) = dp.mac_address.parse::<Mac>() else {
                return d;
            };
            let namespace = names::dhcp_namespace(&cfg.agent.namespace_prefix, &net.id);
            let interface = names::dhcp_ns_side(&dp.id);
            let mut addrs = BTreeSet::new();
            let mut subnets = Vec::new();
            let mut isolated_metadata = false;
            for s in &dhcp_subnets {
                let Ok(net4) = s.cidr.parse::<Ipv4Net>() else {
                    continue;
                };
                let (network, prefix) = (net4.addr(), net4.prefix());
                let Some(server_ip) = dp
                    .fixed_ips
                    .iter()
                    .find(|f| f.subnet_id == s.id)
                    .and_then(|f| f.ip_address.parse::<Ipv4Addr>().ok())
                else {
                    continue;
                };
                addrs.insert((IpAddr::V4(server_ip), prefix));
                let mut routes: Vec<(Ipv4Addr, u8, Ipv4Addr)> = s
                    .host_routes
                    .iter()
                    .filter_map(|r| {
                        let dst = r.destination.parse::<Ipv4Net>().ok()?;
                        Some((dst.addr(), dst.prefix(), r.nexthop.parse().ok()?))
                    })
                    .collect();
                // No router answers metadata here: this namespace does, and
                // DHCP tells instances the way (Neutron's isolated metadata).
                if cfg.metadata.enabled && is_isolated(s, &ports) {
                    isolated_metadata = true;
                    routes.retain(|(dst, len, _)| !(*dst == METADATA_IP && *len == 32));
                    routes.push((METADATA_IP, 32, server_ip));
                }
                subnets.push(DhcpSubnet {
                    id: s.id.clone(),
                    network,
                    prefix,
                    gateway: s.gateway_ip.as_deref().and_then(|g| g.parse().ok()),
                    dns: s
                        .dns_nameservers
                        .iter()
                        .filter_map(|a| a.parse().ok())
                        .collect(),
                    routes,
                    server_ip,
                });
            }
            if isolated_metadata {
                addrs.insert((IpAddr::V4(METADATA_IP), 32));
                d.metadata.insert(
                    namespace.clone(),
                    MetadataListener {
                        arrival: Arrival::Network(net.id.clone()),
                        bind: SocketAddr::new(IpAddr::V4(METADATA_IP), METADATA_PORT),
                    },
                );
            }
            let host_side = names::tap(&dp.id);
            d.local_ports
                .insert(dp.id.clone(), (host_side.clone(), bridge.clone()));
            if dp.status == "ACTIVE" {
                d.server_active.insert(dp.id.clone());
            }
            d.host.endpoints.insert(
                host_side.clone(),
                NsEndpoint {
                    namespace: namespace.clone(),
                    bridge: bridge.clone(),
                    host_side,
                    ns_side: interface.clone(),
                    mac,
                    mtu: net.mtu,
                    addrs,
                },
            );
            let served: BTreeSet<&str> = subnets.iter().map(|s| s.id.as_str()).collect();
            let mut hosts = Vec::new();
            for p in ports
                .iter()
                .filter(|p| !p.is_dhcp() && (mode == DhcpMode::All || p.host == me))
            {
                let Ok(mac) = p.mac_address.parse::<Mac>() else {
                    continue;
                };
                for f in p
                    .fixed_ips
                    .iter()
                    .filter(|f| served.contains(f.subnet_id.as_str()))
                {
                    let Ok(ip) = f.ip_address.parse::<Ipv4Addr>() else {
                        continue;
                    };
                    hosts.push(DhcpHost {
                        port_id: p.id.clone(),
                        mac,
                        ip,
                        subnet_id: f.subnet_id.clone(),
                        hostname: hostname(p, ip),
                        extra: p
                            .extra_dhcp_opts
                            .iter()
                            .filter(|o| o.ip_version == 4)
                            .map(|o| (o.opt_name.clone(), o.opt_value.clone()))
                            .collect(),
                    });
                }
            }
            d.dhcp.insert(
                net.id.clone(),
                Arc::new(DhcpService {
                    network_id: net.id.clone(),
                    namespace,
                    interface,
                    mtu: net.mtu,
                    domain: view.dns_domain.clone(),
                    lease_secs: cfg.dhcp.lease_time_secs,
                    subnets,
                    hosts,
                }),
            );
        }
    }
    d
}

#[cfg(test)]
mod tests;
