//! What one host's agent needs to know, cut from the model: the networks it
//! carries (ports bound to it, plus every DHCP-served network when it is the
//! DHCP node), with their subnets and all their ports (remote ports feed the
//! VXLAN forwarding entries). Pure: the API layer adds long polling and the
//! VTEP map.

use std::collections::BTreeSet;

use neutrino_agent_rpc::{
    DhcpMode, ExtraDhcpOpt, FeedReply, FixedIp, HostRoute, NetworkInfo, PortInfo, SubnetInfo,
};
use neutrino_model::{Network, Port, Subnet};

use crate::changes::{Changed, Since};
use crate::state::State;

/// The networks a host carries now.
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

/// The feed reply for a host that holds `held` at revision `since`.
pub fn feed(
    state: &State,
    since: Since,
    host: &str,
    dhcp: DhcpMode,
    held: &BTreeSet<String>,
) -> FeedReply {
    let view = host_networks(state, host, dhcp);
    let mut reply = FeedReply {
        revision: state.revision,
        ..FeedReply::default()
    };
    let changed = match since {
        Since::Gone => {
            reply.snapshot = true;
            for id in &view {
                add_whole_network(state, id, &mut reply);
            }
            return reply;
        }
        Since::Changes(c) => c,
    };
    for id in view.difference(held) {
        add_whole_network(state, id, &mut reply);
    }
    reply.deleted_networks = held.difference(&view).cloned().collect();
    // Networks both sides have: only what changed in them.
    let kept = |network_id: &str| view.contains(network_id) && held.contains(network_id);
    for Changed { kind, id } in changed {
        match kind.as_str() {
            "network" => match state.networks.get(&id) {
                Some(n) if kept(&n.id) => reply.networks.push(network_info(n)),
                _ => {}
            },
            "subnet" => match state.subnets.get(&id) {
                Some(s) if kept(&s.network_id) => reply.subnets.push(subnet_info(s)),
                Some(_) => {}
                None => reply.deleted_subnets.push(id),
            },
            "port" => match state.ports.get(&id) {
                Some(p) if kept(&p.network_id) => reply.ports.push(port_info(p)),
                Some(_) => {}
                None => reply.deleted_ports.push(id),
            },
            _ => {}
        }
    }
    reply
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
    }
}
