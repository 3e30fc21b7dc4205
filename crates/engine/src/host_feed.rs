//! What one host's agent needs to know, cut from the model: the networks it
//! carries (ports bound to it, plus every DHCP-served network when it is the
//! DHCP node), with their subnets and all their ports (remote ports feed the
//! VXLAN forwarding entries). Pure: the API layer adds long polling and the
//! VTEP map.

use std::collections::{BTreeMap, BTreeSet};

use neutrino_agent_rpc::{
    AddressPair, DhcpMode, ExtraDhcpOpt, FeedReply, FixedIp, FloatingIpInfo, HOST_GATEWAY_OWNER,
    HostRoute, L3Mode, LegAddress, MemberInfo, NetworkInfo, PortInfo, RouterInfo, RouterLeg,
    RuleInfo, SecurityGroupInfo, SubnetInfo,
};
use neutrino_model::{
    Network, OWNER_ROUTER_GATEWAY, OWNER_ROUTER_INTERFACE, Port, Router, SecurityGroupRule, Subnet,
    protocol_number,
};

use crate::changes::{Changed, MEMBER_MARKER, RESYNC_GROUPS_MARKER, ROUTER_MARKER, Since};
use crate::state::State;

/// A port that is a leg of a router (its device_id is the router's).
pub fn is_router_leg(p: &Port) -> bool {
    matches!(
        p.device_owner.as_str(),
        OWNER_ROUTER_INTERFACE | OWNER_ROUTER_GATEWAY | HOST_GATEWAY_OWNER
    )
}

/// The routers a host runs: every one on the network node (`all`); in
/// multi-host mode (`local`), those with an interface on a network where
/// the host has an instance.
pub fn host_routers(state: &State, host: &str, l3: L3Mode) -> BTreeSet<String> {
    match l3 {
        L3Mode::Off => BTreeSet::new(),
        L3Mode::All => state.routers.keys().cloned().collect(),
        L3Mode::Local => {
            let nets: BTreeSet<&str> = state
                .ports_by_host
                .get(host)
                .into_iter()
                .flat_map(|ids| ids.iter())
                .filter_map(|id| state.ports.get(id))
                .filter(|p| !p.is_network_owned())
                .map(|p| p.network_id.as_str())
                .collect();
            state
                .routers
                .keys()
                .filter(|r| {
                    state
                        .interfaces_of(r)
                        .any(|p| nets.contains(p.network_id.as_str()))
                })
                .cloned()
                .collect()
        }
    }
}

/// The networks a host carries now: those of its ports, of the routers it
/// runs, and every DHCP network on the DHCP node.
pub fn host_networks_with_routers(
    state: &State,
    host: &str,
    dhcp: DhcpMode,
    routers: &BTreeSet<String>,
) -> BTreeSet<String> {
    let mut nets = host_networks(state, host, dhcp);
    for r in routers {
        nets.extend(state.interfaces_of(r).map(|p| p.network_id.clone()));
        if let Some(g) = state
            .routers
            .get(r)
            .and_then(|r| r.external_gateway.as_ref())
        {
            nets.insert(g.network_id.clone());
        }
    }
    nets
}

/// The networks a host carries for its ports and DHCP.
pub fn host_networks(state: &State, host: &str, dhcp: DhcpMode) -> BTreeSet<String> {
    let mut nets: BTreeSet<String> = state
        .ports_by_host
        .get(host)
        .into_iter()
        .flat_map(|ids| ids.iter())
        .filter_map(|id| state.ports.get(id))
        .map(|p| p.network_id.clone())
        .collect();
    if dhcp == DhcpMode::All {
        for (id, _) in state.networks.iter() {
            if state
                .subnets_of(id)
                .any(|s| s.enable_dhcp && s.ip_version == 4)
            {
                nets.insert(id.clone());
            }
        }
    }
    nets
}

/// The security groups a host's firewall needs: those of its own ports with
/// port security, plus every group their rules name as a remote group.
pub fn host_groups(state: &State, host: &str) -> BTreeSet<String> {
    let mut groups = BTreeSet::new();
    for p in state
        .ports_by_host
        .get(host)
        .into_iter()
        .flat_map(|ids| ids.iter())
        .filter_map(|id| state.ports.get(id))
        .filter(|p| p.port_security_enabled && !p.is_network_owned())
    {
        groups.extend(p.security_groups.iter().cloned());
    }
    let mut remote = BTreeSet::new();
    for g in &groups {
        for r in state.rules_of(g) {
            if let Some(rg) = &r.remote_group_id {
                remote.insert(rg.clone());
            }
        }
    }
    groups.extend(remote);
    groups
}

/// What the host holds: the networks, security groups and routers it has.
pub struct Held<'a> {
    pub networks: &'a BTreeSet<String>,
    pub groups: &'a BTreeSet<String>,
    pub routers: &'a BTreeSet<String>,
}

/// How the host serves: its DHCP and L3 modes.
#[derive(Debug, Clone, Copy)]
pub struct Modes {
    pub dhcp: DhcpMode,
    pub l3: L3Mode,
}

/// The feed reply for a host that holds `held` at revision `since`.
pub fn feed(state: &State, since: Since, host: &str, modes: Modes, held: Held<'_>) -> FeedReply {
    let routers = host_routers(state, host, modes.l3);
    let view = host_networks_with_routers(state, host, modes.dhcp, &routers);
    let groups = host_groups(state, host);
    let mut reply = FeedReply {
        revision: state.revision,
        ..FeedReply::default()
    };
    let mut members = BTreeMap::new();
    let changed = match since {
        Since::Gone => {
            reply.snapshot = true;
            for id in &view {
                add_whole_network(state, id, &mut reply);
            }
            for g in &groups {
                add_whole_group(state, g, &groups, &mut reply, &mut members);
            }
            reply.members = members.into_values().collect();
            reply.routers = routers
                .iter()
                .filter_map(|r| state.routers.get(r))
                .map(|r| router_info(state, r, host))
                .collect();
            return reply;
        }
        Since::Changes(c) => c,
    };
    let mut resent_routers: BTreeSet<String> = routers.difference(held.routers).cloned().collect();
    reply.deleted_routers = held.routers.difference(&routers).cloned().collect();
    let kept_router = |r: &str| routers.contains(r) && held.routers.contains(r);
    let held_networks = held.networks;
    for g in groups.difference(held.groups) {
        add_whole_group(state, g, &groups, &mut reply, &mut members);
    }
    reply.deleted_groups = held.groups.difference(&groups).cloned().collect();
    let kept_group = |g: &str| groups.contains(g) && held.groups.contains(g);
    let mut resent_groups = BTreeSet::new();
    for id in view.difference(held_networks) {
        add_whole_network(state, id, &mut reply);
    }
    reply.deleted_networks = held_networks.difference(&view).cloned().collect();
    // Networks both sides have: only what changed in them.
    let kept = |network_id: &str| view.contains(network_id) && held_networks.contains(network_id);
    for Changed { kind, id } in changed {
        match kind.as_str() {
            "network" => match state.networks.get(&id) {
                Some(n) if kept(&n.id) => reply.networks.push(network_info(n)),
                _ => {}
            },
            "subnet" => {
                // A leg's prefix or gateway comes from its subnet.
                for r in routers.iter().filter(|r| kept_router(r)) {
                    let on_it = state
                        .interfaces_of(r)
                        .chain(state.gateway_port_of(r))
                        .any(|p| p.fixed_ips.iter().any(|f| f.subnet_id == id));
                    if on_it {
                        resent_routers.insert(r.clone());
                    }
                }
                match state.subnets.get(&id) {
                    Some(s) if kept(&s.network_id) => reply.subnets.push(subnet_info(s)),
                    Some(_) => {}
                    None => reply.deleted_subnets.push(id),
                }
            }
            "router" | ROUTER_MARKER if kept_router(&id) => {
                resent_routers.insert(id);
            }
            RESYNC_GROUPS_MARKER => {
                // Dropped and sent whole in one reply: the host rebuilds
                // each group's members from what comes now.
                for g in groups.iter().filter(|g| held.groups.contains(*g)) {
                    reply.deleted_groups.push(g.clone());
                    add_whole_group(state, g, &groups, &mut reply, &mut members);
                }
            }
            "port" => match state.ports.get(&id) {
                Some(p) if kept(&p.network_id) => reply.ports.push(port_info(p)),
                Some(_) => {}
                None => reply.deleted_ports.push(id),
            },
            "security_group" if kept_group(&id) => {
                resent_groups.insert(id);
            }
            "security_group_rule" => {
                if let Some(r) = state.rules.get(&id)
                    && kept_group(&r.security_group_id)
                {
                    resent_groups.insert(r.security_group_id.clone());
                }
            }
            MEMBER_MARKER => {
                if let Some((g, port)) = id.split_once('/')
                    && kept_group(g)
                    && let Some(p) = state.ports.get(port)
                {
                    members.insert(p.id.clone(), member_info(p, &groups));
                }
            }
            _ => {}
        }
    }
    for g in resent_groups {
        if let Some(info) = group_info(state, &g) {
            reply.security_groups.push(info);
        }
    }
    reply.routers = resent_routers
        .iter()
        .filter_map(|r| state.routers.get(r))
        .map(|r| router_info(state, r, host))
        .collect();
    reply.members = members.into_values().collect();
    reply
}

pub fn router_info(state: &State, r: &Router, host: &str) -> RouterInfo {
    let floating_ips = state
        .fips_of_router(&r.id)
        .filter_map(|f| {
            let port_id = f.port_id.clone()?;
            Some(FloatingIpInfo {
                id: f.id.clone(),
                floating_ip_address: f.floating_ip_address.clone(),
                fixed_ip_address: f.fixed_ip_address.clone()?,
                host: state
                    .ports
                    .get(&port_id)
                    .map(|p| p.binding_host_id.clone())
                    .unwrap_or_default(),
                port_id,
            })
        })
        .collect();
    RouterInfo {
        id: r.id.clone(),
        admin_state_up: r.admin_state_up,
        interfaces: state.interfaces_of(&r.id).map(|p| leg(state, p)).collect(),
        gateway: state.gateway_port_of(&r.id).map(|p| leg(state, p)),
        host_gateway: crate::ops::agents::host_gateway_port(state, host, &r.id)
            .map(|p| leg(state, &p)),
        enable_snat: r.external_gateway.as_ref().is_some_and(|g| g.enable_snat),
        routes: r
            .routes
            .iter()
            .map(|h| HostRoute {
                destination: h.destination.clone(),
                nexthop: h.nexthop.clone(),
            })
            .collect(),
        floating_ips,
    }
}

fn leg(state: &State, p: &Port) -> RouterLeg {
    RouterLeg {
        port_id: p.id.clone(),
        network_id: p.network_id.clone(),
        mac_address: p.mac_address.clone(),
        addresses: p
            .fixed_ips
            .iter()
            .filter_map(|f| {
                let s = state.subnets.get(&f.subnet_id)?;
                Some(LegAddress {
                    ip_address: f.ip_address.clone(),
                    subnet_id: s.id.clone(),
                    cidr: s.cidr.clone(),
                    gateway_ip: s.gateway_ip.clone(),
                })
            })
            .collect(),
    }
}

/// A group's rules and every member port.
fn add_whole_group(
    state: &State,
    id: &str,
    wanted: &BTreeSet<String>,
    reply: &mut FeedReply,
    members: &mut BTreeMap<String, MemberInfo>,
) {
    let Some(info) = group_info(state, id) else {
        return;
    };
    reply.security_groups.push(info);
    for port in state.ports_by_group.get(id).into_iter().flatten() {
        if !members.contains_key(port)
            && let Some(p) = state.ports.get(port)
        {
            members.insert(port.clone(), member_info(p, wanted));
        }
    }
}

fn group_info(state: &State, id: &str) -> Option<SecurityGroupInfo> {
    let g = state.security_groups.get(id)?;
    Some(SecurityGroupInfo {
        id: g.id.clone(),
        stateful: g.stateful,
        rules: state.rules_of(id).map(|r| rule_info(r)).collect(),
    })
}

pub fn rule_info(r: &SecurityGroupRule) -> RuleInfo {
    let protocol = r.protocol.as_deref().and_then(protocol_number);
    RuleInfo {
        id: r.id.clone(),
        direction: r.direction.clone(),
        ethertype: r.ethertype.clone(),
        // `ip` and `hopopt` (0) mean any protocol, as in Neutron's firewall.
        protocol: protocol.filter(|n| *n != 0),
        port_range_min: r.port_range_min,
        port_range_max: r.port_range_max,
        remote_ip_prefix: r
            .normalized_cidr
            .clone()
            .or_else(|| r.remote_ip_prefix.clone())
            .filter(|p| p != "0.0.0.0/0" && p != "::/0"),
        remote_group_id: r.remote_group_id.clone(),
    }
}

fn member_info(p: &Port, wanted: &BTreeSet<String>) -> MemberInfo {
    MemberInfo {
        port_id: p.id.clone(),
        groups: p
            .security_groups
            .iter()
            .filter(|g| wanted.contains(*g))
            .cloned()
            .collect(),
        addresses: p
            .fixed_ips
            .iter()
            .map(|f| f.ip_address.clone())
            .chain(p.allowed_address_pairs.iter().map(|a| a.ip_address.clone()))
            .collect(),
    }
}

fn add_whole_network(state: &State, id: &str, reply: &mut FeedReply) {
    let Some(n) = state.networks.get(id) else {
        return;
    };
    reply.networks.push(network_info(n));
    reply
        .subnets
        .extend(state.subnets_of(id).map(|s| subnet_info(s)));
    reply.ports.extend(state.ports_of(id).map(|p| port_info(p)));
}

pub fn network_info(n: &Network) -> NetworkInfo {
    NetworkInfo {
        id: n.id.clone(),
        name: n.name.clone(),
        project_id: n.std.project_id.clone(),
        network_type: n.network_type.clone(),
        physical_network: n.physical_network.clone(),
        segmentation_id: n.segmentation_id,
        mtu: n.mtu,
        admin_state_up: n.admin_state_up,
    }
}

pub fn subnet_info(s: &Subnet) -> SubnetInfo {
    SubnetInfo {
        id: s.id.clone(),
        network_id: s.network_id.clone(),
        ip_version: s.ip_version,
        cidr: s.cidr.clone(),
        gateway_ip: s.gateway_ip.clone(),
        enable_dhcp: s.enable_dhcp,
        dns_nameservers: s.dns_nameservers.clone(),
        host_routes: s
            .host_routes
            .iter()
            .map(|r| HostRoute {
                destination: r.destination.clone(),
                nexthop: r.nexthop.clone(),
            })
            .collect(),
    }
}

pub fn port_info(p: &Port) -> PortInfo {
    PortInfo {
        id: p.id.clone(),
        network_id: p.network_id.clone(),
        mac_address: p.mac_address.clone(),
        fixed_ips: p
            .fixed_ips
            .iter()
            .map(|f| FixedIp {
                subnet_id: f.subnet_id.clone(),
                ip_address: f.ip_address.clone(),
            })
            .collect(),
        host: p.binding_host_id.clone(),
        device_owner: p.device_owner.clone(),
        device_id: p.device_id.clone(),
        admin_state_up: p.admin_state_up,
        status: p.status.clone(),
        dns_name: p.dns_name.clone(),
        extra_dhcp_opts: p
            .extra_dhcp_opts
            .iter()
            .map(|o| ExtraDhcpOpt {
                opt_name: o.opt_name.clone(),
                opt_value: o.opt_value.clone(),
                ip_version: o.ip_version,
            })
            .collect(),
        port_security_enabled: p.port_security_enabled && !p.is_network_owned(),
        security_groups: p.security_groups.clone(),
        allowed_address_pairs: p
            .allowed_address_pairs
            .iter()
            .map(|a| AddressPair {
                ip_address: a.ip_address.clone(),
                mac_address: a.mac_address.clone(),
            })
            .collect(),
    }
}
