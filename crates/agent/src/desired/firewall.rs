//! The firewall's share of the desired state: a filter for each local port
//! with port security (per network, cached with its network), and the rules
//! and member addresses of the host's security groups (cached until a group
//! or a membership changes).

use std::collections::{BTreeMap, BTreeSet};

use neutrino_agent_rpc::{PortInfo, RuleInfo};
use neutrino_dataplane::firewall::{Cidr, Direction, GroupFilter, PortFilter, Remote, Rule};
use neutrino_net::{Mac, names};

use crate::view::HostView;

/// What every port filter on the host shares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupState {
    pub groups: BTreeMap<String, GroupFilter>,
    pub members: BTreeMap<String, BTreeSet<Cidr>>,
}

/// A local port's filter (its mark is given by the worker), or None when
/// port security is off for it.
pub fn port_filter(p: &PortInfo) -> Option<(String, PortFilter)> {
    if !p.port_security_enabled || p.is_network_owned() {
        return None;
    }
    let mac = p.mac_address.parse::<Mac>().ok()?;
    let mut sources = BTreeSet::new();
    let mut macs = BTreeSet::from([mac]);
    for f in &p.fixed_ips {
        if let Ok(c) = Cidr::parse_host_or_network(&f.ip_address) {
            sources.insert((mac, c));
        }
    }
    for pair in &p.allowed_address_pairs {
        let (Ok(c), Ok(m)) = (
            Cidr::parse_host_or_network(&pair.ip_address),
            pair.mac_address.parse::<Mac>(),
        ) else {
            continue;
        };
        sources.insert((m, c));
        macs.insert(m);
    }
    let mut groups = p.security_groups.clone();
    groups.sort();
    groups.dedup();
    Some((
        names::tap(&p.id),
        PortFilter {
            mark: 0,
            network_id: p.network_id.clone(),
            sources,
            macs,
            groups,
        },
    ))
}

/// Addresses the instances of a network may send from (for
/// `allow_same_net_traffic`): fixed IPs and allowed address pairs.
pub fn instance_addresses<'a>(ports: impl Iterator<Item = &'a PortInfo>) -> BTreeSet<Cidr> {
    ports
        .filter(|p| !p.is_network_owned())
        .flat_map(|p| {
            p.fixed_ips.iter().map(|f| f.ip_address.as_str()).chain(
                p.allowed_address_pairs
                    .iter()
                    .map(|a| a.ip_address.as_str()),
            )
        })
        .filter_map(|a| Cidr::parse_host_or_network(a).ok())
        .collect()
}

pub fn group_state(view: &HostView) -> GroupState {
    let mut s = GroupState::default();
    for g in view.groups() {
        s.groups.insert(
            g.id.clone(),
            GroupFilter {
                rules: g.rules.iter().filter_map(rule).collect(),
            },
        );
        s.members.insert(
            g.id.clone(),
            view.member_addresses(&g.id)
                .filter_map(|a| Cidr::parse_host_or_network(a).ok())
                .collect(),
        );
    }
    s
}

fn rule(r: &RuleInfo) -> Option<Rule> {
    let direction = match r.direction.as_str() {
        "ingress" => Direction::Ingress,
        "egress" => Direction::Egress,
        _ => return None,
    };
    let remote = match (&r.remote_group_id, &r.remote_ip_prefix) {
        (Some(g), _) => Remote::Group(g.clone()),
        (None, Some(p)) => Remote::Prefix(Cidr::parse_host_or_network(p).ok()?),
        (None, None) => Remote::Any,
    };
    Some(Rule {
        direction,
        ipv4: r.ethertype != "IPv6",
        protocol: r.protocol,
        port_range_min: r.port_range_min,
        port_range_max: r.port_range_max,
        remote,
    })
}
