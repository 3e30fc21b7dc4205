//! `network_data.json` (Nova's format, `doc/api_schemas/network_data.json`):
//! a link per port with its MAC and MTU, a network per fixed IP with its
//! routes and DNS servers, and the DNS servers once more at the top.
//!
//! Unlike Nova, an IPv4 address is given as `ipv4` (static) even on a DHCP
//! subnet: it is the address DHCP hands out anyway, and an image configured
//! from it comes up without waiting for a lease. IPv6 keeps the subnet's
//! address mode (`ipv6_slaac`, `ipv6_dhcpv6-*`), static `ipv6` without one.

use std::net::IpAddr;

use serde_json::{Value, json};

use crate::facts::{Instance, SubnetFacts};

pub fn render(i: &Instance) -> Value {
    let mut links = Vec::new();
    let mut networks = Vec::new();
    let mut services: Vec<IpAddr> = Vec::new();
    for link in &i.links {
        let link_id = format!("tap{}", link.port_id.chars().take(11).collect::<String>());
        links.push(json!({
            "id": link_id,
            "vif_id": link.port_id,
            "type": "bridge",
            "mtu": link.mtu,
            "ethernet_mac_address": link.mac.to_string(),
        }));
        for s in &link.subnets {
            let id = format!("network{}", networks.len());
            networks.push(network(&id, &link_id, &link.network_id, s));
            for d in &s.dns {
                if !services.contains(d) {
                    services.push(*d);
                }
            }
        }
    }
    json!({
        "links": links,
        "networks": networks,
        "services": services.iter().map(dns_service).collect::<Vec<_>>(),
    })
}

fn dns_service(a: &IpAddr) -> Value {
    json!({"type": "dns", "address": a.to_string()})
}

fn network(id: &str, link: &str, network_id: &str, s: &SubnetFacts) -> Value {
    let kind = match (s.address, s.ipv6_address_mode.as_deref()) {
        (IpAddr::V4(_), _) => "ipv4".to_string(),
        (IpAddr::V6(_), Some(mode)) => format!("ipv6_{mode}"),
        (IpAddr::V6(_), None) => "ipv6".to_string(),
    };
    let mut routes = Vec::new();
    if let Some(gw) = s.gateway {
        let any = if gw.is_ipv4() { "0.0.0.0" } else { "::" };
        routes.push(json!({"network": any, "netmask": any, "gateway": gw.to_string()}));
    }
    for (dst, via) in &s.host_routes {
        if dst.prefix() == 0 && s.gateway.is_some() {
            continue;
        }
        routes.push(json!({
            "network": dst.network().addr().to_string(),
            "netmask": mask(dst.addr(), dst.prefix()).to_string(),
            "gateway": via.to_string(),
        }));
    }
    json!({
        "id": id,
        "type": kind,
        "link": link,
        "ip_address": s.address.to_string(),
        "netmask": mask(s.address, s.cidr.prefix()).to_string(),
        "routes": routes,
        "network_id": network_id,
        "services": s.dns.iter().map(dns_service).collect::<Vec<_>>(),
    })
}

/// A prefix length as a mask of the address's family (`255.255.255.0`,
/// `ffff:ffff:ffff:ffff::`), as the format writes netmasks.
fn mask(family: IpAddr, prefix: u8) -> IpAddr {
    match family {
        IpAddr::V4(_) => {
            let bits = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            IpAddr::V4(bits.into())
        }
        IpAddr::V6(_) => {
            let bits = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            IpAddr::V6(bits.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Link;
    use crate::tree::tests::instance;

    #[test]
    fn a_port_becomes_a_link_and_its_addresses_networks() {
        let mut i = instance();
        i.links[0].subnets.push(SubnetFacts {
            address: "fd00:1::f816:3eff:fe9c:bf3d".parse().unwrap(),
            cidr: "fd00:1::/64".parse().unwrap(),
            gateway: Some("fd00:1::1".parse().unwrap()),
            ipv6_address_mode: Some("slaac".into()),
            host_routes: vec![],
            dns: vec![],
        });
        i.links.push(Link {
            port_id: "5d1a8a3c-0b5e-4c1e-9a43-2b7f6c1d9e10".into(),
            network_id: "net-2".into(),
            mac: "fa:16:3e:11:22:33".parse().unwrap(),
            mtu: 1500,
            subnets: vec![SubnetFacts {
                address: "192.168.5.9".parse().unwrap(),
                cidr: "192.168.5.0/24".parse().unwrap(),
                gateway: None,
                ipv6_address_mode: None,
                host_routes: vec![(
                    "0.0.0.0/0".parse().unwrap(),
                    "192.168.5.254".parse().unwrap(),
                )],
                dns: vec!["10.0.0.2".parse().unwrap()],
            }],
        });
        let v = render(&i);
        assert_eq!(
            v["links"][0],
            json!({"id": "tapcd9f6d46-4a", "vif_id": "cd9f6d46-4a3a-43ab-a466-994af9db96fc",
                   "type": "bridge", "mtu": 1450, "ethernet_mac_address": "fa:16:3e:9c:bf:3d"})
        );
        assert_eq!(
            v["networks"][0],
            json!({"id": "network0", "type": "ipv4", "link": "tapcd9f6d46-4a",
                   "ip_address": "10.0.0.5", "netmask": "255.255.255.0",
                   "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.0.0.1"},
                              {"network": "192.168.100.0", "netmask": "255.255.255.0", "gateway": "10.0.0.254"}],
                   "network_id": "net-1",
                   "services": [{"type": "dns", "address": "10.0.0.2"}]})
        );
        assert_eq!(v["networks"][1]["type"], "ipv6_slaac");
        assert_eq!(v["networks"][1]["netmask"], "ffff:ffff:ffff:ffff::");
        assert_eq!(v["networks"][1]["routes"][0]["network"], "::");
        // A default host route stands in for a missing gateway.
        assert_eq!(
            v["networks"][2]["routes"],
            json!([{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "192.168.5.254"}])
        );
        assert_eq!(v["networks"][2]["link"], "tap5d1a8a3c-0b");
        // DNS servers once each at the top.
        assert_eq!(
            v["services"],
            json!([{"type": "dns", "address": "10.0.0.2"}])
        );
    }
}
