//! Who is asking the metadata service, and what it is told: a request that
//! arrived on a network (an isolated network's DHCP namespace) or a router
//! (a router namespace), from a source address, is matched to the one port
//! on those networks holding that address, never to anything the instance
//! sent. The facts for the answer are read from the same snapshot.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use neutrino_metadata::{Instance, Link, SubnetFacts};
use neutrino_model::{OWNER_FLOATINGIP, OWNER_ROUTER_INTERFACE, Port, Subnet};
use neutrino_net::{Cidr, Mac};

use crate::State;

/// Where a metadata request arrived: what the agent's listener stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrival {
    Network(String),
    Router(String),
}

const DHCP_OWNER: &str = neutrino_agent_rpc::DHCP_OWNER;
/// neutron-lib's `METADATA_V4_IP`.
const METADATA_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);

/// The networks a request could have come from.
fn networks(state: &State, arrival: &Arrival) -> Vec<String> {
    match arrival {
        Arrival::Network(id) => vec![id.clone()],
        Arrival::Router(id) => {
            let mut v: Vec<String> = state
                .interfaces_of(id)
                .map(|p| p.network_id.clone())
                .collect();
            v.sort();
            v.dedup();
            v
        }
    }
}

fn holds_fixed(p: &Port, addr: IpAddr) -> bool {
    p.fixed_ips
        .iter()
        .any(|f| f.ip_address.parse::<IpAddr>().ok() == Some(addr))
}

fn holds_pair(p: &Port, addr: IpAddr) -> bool {
    p.allowed_address_pairs.iter().any(|a| {
        Cidr::parse_host_or_network(&a.ip_address).is_ok_and(|c| c.network().contains(addr))
    })
}

/// The instance's port: the one whose fixed IP the address is, else the one
/// with an address pair covering it (a virtual IP is its holder's), on the
/// arrival's networks only. Two candidates are as good as none.
/// The error is Neutron's message for the instance.
pub fn identify(state: &State, arrival: &Arrival, addr: IpAddr) -> Result<Arc<Port>, String> {
    let nets = networks(state, arrival);
    let instance_ports = || {
        nets.iter()
            .flat_map(|n| state.ports_of(n))
            .filter(|p| !p.is_network_owned() && !p.device_id.is_empty())
    };
    let by_fixed: Vec<_> = instance_ports().filter(|p| holds_fixed(p, addr)).collect();
    let found = match by_fixed.as_slice() {
        [one] => Some(*one),
        [] => {
            let by_pair: Vec<_> = instance_ports().filter(|p| holds_pair(p, addr)).collect();
            match by_pair.as_slice() {
                [one] => Some(*one),
                _ => None,
            }
        }
        _ => None,
    };
    found.map(Arc::clone).ok_or_else(|| match arrival {
        Arrival::Network(id) => format!("Instance was not found on network {id}."),
        Arrival::Router(id) => format!("Instance was not found on router {id}."),
    })
}

/// Neutron's name for an address without a `dns_name`: `host-10-0-0-5`.
pub fn default_hostname(ip: IpAddr) -> String {
    format!("host-{}", ip.to_string().replace(['.', ':'], "-"))
}

/// What the asking port's instance is told, from the current model.
pub fn instance(state: &State, port: &Port, addr: IpAddr) -> Instance {
    let local_ipv4 = match addr {
        IpAddr::V4(a) if holds_fixed(port, addr) => Some(a),
        _ => port
            .fixed_ips
            .iter()
            .find_map(|f| f.ip_address.parse::<Ipv4Addr>().ok()),
    };
    let public_ipv4 = {
        let fips: Vec<_> = state.fips_of_port(&port.id).collect();
        fips.iter()
            .find(|f| {
                local_ipv4.is_some_and(|l| f.fixed_ip_address.as_deref() == Some(&l.to_string()))
            })
            .or(fips.first())
            .and_then(|f| f.floating_ip_address.parse().ok())
    };
    let hostname = if port.dns_name.is_empty() {
        default_hostname(local_ipv4.map_or(addr, IpAddr::V4))
    } else {
        port.dns_name.clone()
    };
    let md = state
        .instance_metadata
        .get(&port.device_id)
        .filter(|m| m.project_id == port.std.project_id);
    let mut siblings: Vec<&Port> = state
        .ports_by_device
        .get(&port.device_id)
        .into_iter()
        .flatten()
        .filter_map(|id| state.ports.get(id))
        .filter(|p| {
            p.id != port.id
                && p.std.project_id == port.std.project_id
                && !p.is_network_owned()
                && p.device_owner != OWNER_FLOATINGIP
        })
        .map(|p| &**p)
        .collect();
    siblings.sort_by(|a, b| (a.std.created_at, &a.id).cmp(&(b.std.created_at, &b.id)));
    let links = std::iter::once(port)
        .chain(siblings)
        .filter_map(|p| link(state, p))
        .collect();
    Instance {
        port_id: port.id.clone(),
        device_id: port.device_id.clone(),
        project_id: port.std.project_id.clone(),
        address: addr,
        name: md
            .map(|m| m.name.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| hostname.clone()),
        hostname,
        availability_zone: md
            .map(|m| m.availability_zone.clone())
            .filter(|z| !z.is_empty())
            .unwrap_or_else(|| "nova".into()),
        public_keys: md
            .map(|m| {
                m.public_keys
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        // Checked when stored.
        user_data: md
            .and_then(|m| m.user_data.as_deref())
            .and_then(|u| base64::engine::general_purpose::STANDARD.decode(u).ok())
            .map(Bytes::from),
        meta: md.map(|m| m.meta.clone()).unwrap_or_default(),
        local_ipv4,
        public_ipv4,
        mac: port.mac_address.parse().unwrap_or(Mac::from([0; 6])),
        security_groups: port
            .security_groups
            .iter()
            .filter_map(|g| state.security_groups.get(g))
            .map(|g| g.name.clone())
            .collect(),
        links,
    }
}

fn link(state: &State, p: &Port) -> Option<Link> {
    let net = state.networks.get(&p.network_id)?;
    Some(Link {
        port_id: p.id.clone(),
        network_id: p.network_id.clone(),
        mac: p.mac_address.parse().ok()?,
        mtu: net.mtu,
        subnets: p
            .fixed_ips
            .iter()
            .filter_map(|f| {
                let s = state.subnets.get(&f.subnet_id)?;
                subnet_facts(state, s, f.ip_address.parse().ok()?, &p.binding_host_id)
            })
            .collect(),
    })
}

/// Where an isolated IPv4 subnet's instances reach 169.254.169.254: the
/// DHCP port on their own host (multi-host), else the subnet's first.
/// None for a routed subnet (its gateway leads there) or one without DHCP.
fn metadata_next_hop(state: &State, s: &Subnet, host: &str) -> Option<IpAddr> {
    if s.ip_version != 4 || !s.enable_dhcp {
        return None;
    }
    let routed = s.gateway_ip.as_deref().is_some_and(|gw| {
        state.ports_of(&s.network_id).any(|p| {
            p.device_owner == OWNER_ROUTER_INTERFACE
                && p.fixed_ips
                    .iter()
                    .any(|f| f.subnet_id == s.id && f.ip_address == gw)
        })
    });
    if routed {
        return None;
    }
    let mut servers: Vec<(bool, IpAddr)> = state
        .ports_of(&s.network_id)
        .filter(|p| p.device_owner == DHCP_OWNER)
        .flat_map(|p| {
            p.fixed_ips
                .iter()
                .filter(|f| f.subnet_id == s.id)
                .filter_map(move |f| Some((p.binding_host_id != host, f.ip_address.parse().ok()?)))
        })
        .collect();
    servers.sort();
    servers.first().map(|(_, ip)| *ip)
}

fn subnet_facts(state: &State, s: &Subnet, address: IpAddr, host: &str) -> Option<SubnetFacts> {
    let cidr = Cidr::parse(&s.cidr).ok()?;
    let mut host_routes: Vec<(Cidr, IpAddr)> = s
        .host_routes
        .iter()
        .filter_map(|r| {
            Some((
                Cidr::parse_host_or_network(&r.destination).ok()?,
                r.nexthop.parse().ok()?,
            ))
        })
        .collect();
    // Kept in a configuration rendered from this, as DHCP's option 121 has it.
    if let Some(via) = metadata_next_hop(state, s, host) {
        host_routes.push((Cidr::host(IpAddr::V4(METADATA_V4)), via));
    }
    Some(SubnetFacts {
        address,
        cidr,
        gateway: s.gateway_ip.as_deref().and_then(|g| g.parse().ok()),
        ipv6_address_mode: s.ipv6_address_mode.clone(),
        host_routes,
        // The subnet's own resolvers only: the DHCP port answers no DNS yet.
        dns: s
            .dns_nameservers
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect(),
    })
}
