//! The routers' share of the desired state: a namespace per router with a
//! leg on each attached network and one on the external network, its routes,
//! and its NAT (source NAT of the attached subnets, floating IPs).
//!
//! On the network node (`l3.mode = all`) a router has its own gateway port
//! and every floating IP. In multi-host mode (`local`) each host runs a copy
//! with the same legs on the tenant networks, its own gateway port on the
//! external network, and only the floating IPs of its own instances; the
//! copies' MACs are kept off the uplinks, so each instance only ever sees
//! the copy on its own host.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use neutrino_agent_rpc::{L3Mode, RouterInfo, RouterLeg};
use neutrino_dataplane::firewall::{Cidr, RouterNat};
use neutrino_dataplane::{NsEndpoint, NsRoute, NsRouting};
use neutrino_net::{Mac, names};

use super::{Arrival, Desired, MetadataListener};
use crate::config::AgentConfig;
use crate::view::HostView;

/// One router as this host runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterHere {
    pub namespace: String,
    pub nat: RouterNat,
}

pub fn add_routers(d: &mut Desired, view: &HostView, cfg: &AgentConfig) {
    let mode = cfg.l3.mode;
    if mode == L3Mode::Off {
        return;
    }
    let me = cfg.agent.host.as_str();
    for r in view.routers().filter(|r| r.admin_state_up) {
        let namespace = names::router_namespace(&cfg.agent.namespace_prefix, &r.id);
        let mut nat = RouterNat::default();
        let mut routing = NsRouting {
            forwarding: true,
            routes: BTreeSet::new(),
        };
        for leg in &r.interfaces {
            let Some(ep) = endpoint(
                d,
                view,
                &namespace,
                leg,
                names::router_interface(&leg.port_id),
            ) else {
                continue;
            };
            if mode == L3Mode::All {
                own_leg(d, view, me, leg, &ep);
            }
            if mode == L3Mode::Local
                && let Ok(mac) = leg.mac_address.parse::<Mac>()
            {
                d.router_macs.insert(mac);
            }
            for a in &leg.addresses {
                if let Some(c) = Cidr::parse_host_or_network(&a.cidr)
                    .ok()
                    .filter(Cidr::is_v4)
                {
                    nat.internal.insert(c);
                }
            }
            d.host.endpoints.insert(ep.host_side.clone(), ep);
        }
        let gateway = match mode {
            L3Mode::Local => {
                if r.gateway.is_some() && r.host_gateway.is_none() {
                    d.need_host_gateway.insert(r.id.clone());
                }
                r.host_gateway.as_ref()
            }
            _ => r.gateway.as_ref(),
        };
        if let Some(leg) = gateway
            && let Some(mut ep) = endpoint(
                d,
                view,
                &namespace,
                leg,
                names::router_gateway(&leg.port_id),
            )
        {
            if mode == L3Mode::All {
                own_leg(d, view, me, leg, &ep);
            }
            nat.gateway_interface = Some(ep.ns_side.clone());
            let v4 = leg
                .addresses
                .iter()
                .find(|a| a.ip_address.parse::<Ipv4Addr>().is_ok());
            if r.enable_snat {
                nat.snat_address = v4.and_then(|a| a.ip_address.parse().ok());
            }
            if let Some(gw) = v4
                .and_then(|a| a.gateway_ip.as_deref())
                .and_then(|g| g.parse().ok())
            {
                routing.routes.insert(NsRoute {
                    dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    prefix: 0,
                    via: gw,
                });
            }
            for f in floating_ips_here(r, mode, me) {
                ep.addrs.insert((IpAddr::V4(f.0), 32));
                nat.floating_ips.insert(f);
            }
            d.host.endpoints.insert(ep.host_side.clone(), ep);
        }
        // Extra routes the kernel would refuse, or that would fight another
        // route, are left out: one bad route must not stop the host's pass.
        let connected: Vec<Cidr> = d
            .host
            .endpoints
            .values()
            .filter(|e| e.namespace == namespace)
            .flat_map(|e| e.addrs.iter())
            .filter_map(|(ip, len)| Cidr::new(*ip, *len).ok().map(|c| c.network()))
            .collect();
        for route in &r.routes {
            let (Ok(dst), Ok(via)) = (
                Cidr::parse_host_or_network(&route.destination),
                route.nexthop.parse::<IpAddr>(),
            ) else {
                continue;
            };
            let on_link = connected.iter().any(|c| c.covers(&Cidr::host(via)));
            let taken = routing
                .routes
                .iter()
                .any(|r| r.dst == dst.addr() && r.prefix == dst.prefix());
            if dst.addr().is_ipv4() != via.is_ipv4() || !on_link || taken {
                continue;
            }
            routing.routes.insert(NsRoute {
                dst: dst.addr(),
                prefix: dst.prefix(),
                via,
            });
        }
        if cfg.metadata.enabled && !nat.internal.is_empty() {
            let port = cfg.metadata.router_port;
            nat.metadata_port = Some(port);
            d.metadata.insert(
                namespace.clone(),
                MetadataListener {
                    arrival: Arrival::Router(r.id.clone()),
                    bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
                },
            );
        }
        d.host.ns_routing.insert(namespace.clone(), routing);
        d.routers
            .insert(r.id.clone(), RouterHere { namespace, nat });
    }
}

/// On the network node a router's legs are bound here, like any port: the
/// other hosts then send this host the network's flooded traffic (the
/// router's ARP) and its MACs, and the leg turns ACTIVE once wired. (Router
/// copies in multi-host mode stay unbound: every host has its own.)
fn own_leg(d: &mut Desired, view: &HostView, me: &str, leg: &RouterLeg, ep: &NsEndpoint) {
    let Some(port) = view.port(&leg.port_id) else {
        return;
    };
    if port.host != me {
        d.need_bind.insert(leg.port_id.clone());
        return;
    }
    d.local_ports.insert(
        leg.port_id.clone(),
        (ep.host_side.clone(), ep.bridge.clone()),
    );
    if port.status == "ACTIVE" {
        d.server_active.insert(leg.port_id.clone());
    }
}

/// (floating, fixed) pairs this host translates for a router.
fn floating_ips_here(r: &RouterInfo, mode: L3Mode, me: &str) -> Vec<(Ipv4Addr, Ipv4Addr)> {
    r.floating_ips
        .iter()
        .filter(|f| mode == L3Mode::All || f.host == me)
        .filter_map(|f| {
            Some((
                f.floating_ip_address.parse().ok()?,
                f.fixed_ip_address.parse().ok()?,
            ))
        })
        .collect()
}

/// A leg as a veth pair into the router's namespace, when its network is
/// wired on this host.
fn endpoint(
    d: &Desired,
    view: &HostView,
    namespace: &str,
    leg: &RouterLeg,
    ns_side: String,
) -> Option<NsEndpoint> {
    let bridge = names::bridge(&leg.network_id);
    if !d.host.bridges.contains_key(&bridge) {
        return None;
    }
    let net = view.network(&leg.network_id)?;
    let mac = leg.mac_address.parse::<Mac>().ok()?;
    let addrs = leg
        .addresses
        .iter()
        .filter_map(|a| {
            let ip: IpAddr = a.ip_address.parse().ok()?;
            Some((ip, Cidr::parse_host_or_network(&a.cidr).ok()?.prefix()))
        })
        .collect();
    Some(NsEndpoint {
        namespace: namespace.to_string(),
        bridge,
        host_side: names::tap(&leg.port_id),
        ns_side,
        mac,
        mtu: net.mtu,
        addrs,
    })
}

/// Uplinks of the host's bridges: where router copies' MACs must not go.
pub fn uplinks(d: &Desired) -> BTreeSet<String> {
    d.host
        .bridges
        .values()
        .filter_map(|b| match &b.uplink {
            neutrino_dataplane::Uplink::None => None,
            neutrino_dataplane::Uplink::Physical { ifname } => Some(ifname.clone()),
            neutrino_dataplane::Uplink::Vxlan(v) => Some(v.name.clone()),
        })
        .collect()
}

pub type Routers = BTreeMap<String, RouterHere>;
