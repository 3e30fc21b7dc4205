//! The names the agent gives host objects, and how it recognises its own.
//!
//! They are those of Neutron's linuxbridge agent (`brq` + 11 characters of the
//! network id, `tap` + 11 of the port id, ...), so that tools and habits
//! carry over, and the kernel's 15-byte interface-name limit is respected.
//! Builders and recognisers live side by side: a name the agent makes is
//! exactly a name it will later treat as its own (and delete when stale).
//! `docs/agent.md` ("Names on the host") lists them.

/// Prefix of a network's bridge.
pub const BRIDGE_PREFIX: &str = "brq";
/// Prefix of an instance tap, and of the bridge side of the agent's veths.
pub const TAP_PREFIX: &str = "tap";
/// Prefix of a VXLAN device (`vxlan-<vni>`).
pub const VXLAN_PREFIX: &str = "vxlan-";
/// Prefix of a DHCP port's namespace side.
pub const DHCP_NS_SIDE_PREFIX: &str = "ns-";
/// Prefix of a router's leg on a tenant network.
pub const ROUTER_INTERFACE_PREFIX: &str = "qr-";
/// Prefix of a router's gateway leg.
pub const ROUTER_GATEWAY_PREFIX: &str = "qg-";
/// Prefix (after the configured namespace prefix) of a DHCP namespace.
pub const DHCP_NAMESPACE_PREFIX: &str = "qdhcp-";
/// Prefix (after the configured namespace prefix) of a router namespace.
pub const ROUTER_NAMESPACE_PREFIX: &str = "qrouter-";

/// The first 11 characters of a resource id (all of it if shorter).
fn short(id: &str) -> &str {
    id.get(..11).unwrap_or(id)
}

/// The bridge of a network: `brq` + 11 characters of its id.
pub fn bridge(network_id: &str) -> String {
    format!("{BRIDGE_PREFIX}{}", short(network_id))
}

/// A port's tap: `tap` + 11 characters of its id (the hypervisor's name for
/// an instance port, the bridge side of a DHCP port or router leg).
pub fn tap(port_id: &str) -> String {
    format!("{TAP_PREFIX}{}", short(port_id))
}

/// A DHCP port's side in its namespace: `ns-` + 11 characters of its id.
pub fn dhcp_ns_side(port_id: &str) -> String {
    format!("{DHCP_NS_SIDE_PREFIX}{}", short(port_id))
}

/// A network's VXLAN device: `vxlan-<vni>`.
pub fn vxlan(vni: u32) -> String {
    format!("{VXLAN_PREFIX}{vni}")
}

/// A network's DHCP namespace: `<prefix>qdhcp-<network id>`.
pub fn dhcp_namespace(prefix: &str, network_id: &str) -> String {
    format!("{prefix}{DHCP_NAMESPACE_PREFIX}{network_id}")
}

/// A router's namespace: `<prefix>qrouter-<router id>`.
pub fn router_namespace(prefix: &str, router_id: &str) -> String {
    format!("{prefix}{ROUTER_NAMESPACE_PREFIX}{router_id}")
}

/// A router's leg on a tenant network, inside its namespace.
pub fn router_interface(port_id: &str) -> String {
    format!("{ROUTER_INTERFACE_PREFIX}{}", short(port_id))
}

/// A router's gateway leg, inside its namespace.
pub fn router_gateway(port_id: &str) -> String {
    format!("{ROUTER_GATEWAY_PREFIX}{}", short(port_id))
}

/// A name [`bridge`] makes.
pub fn is_bridge(name: &str) -> bool {
    name.starts_with(BRIDGE_PREFIX)
}

/// A name [`tap`] makes.
pub fn is_tap(name: &str) -> bool {
    name.starts_with(TAP_PREFIX)
}

/// A name [`vxlan`] makes.
pub fn is_vxlan(name: &str) -> bool {
    name.starts_with(VXLAN_PREFIX)
}

/// Links the agent owns by their name alone (bridges and VXLAN devices): it
/// deletes them when no network wants them. Taps belong to the hypervisor;
/// the agent's veths are owned through their peer in an owned namespace.
pub fn is_owned_link(name: &str) -> bool {
    is_bridge(name) || is_vxlan(name)
}

/// Links whose changes concern the agent: its bridges and VXLAN devices and
/// every tap (one may need plugging into a bridge).
pub fn is_watched_link(name: &str) -> bool {
    is_tap(name) || is_owned_link(name)
}

/// A namespace that [`dhcp_namespace`] or [`router_namespace`] makes with
/// this `prefix`.
pub fn is_owned_namespace(prefix: &str, name: &str) -> bool {
    name.strip_prefix(prefix).is_some_and(|rest| {
        rest.starts_with(DHCP_NAMESPACE_PREFIX) || rest.starts_with(ROUTER_NAMESPACE_PREFIX)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET: &str = "5a1e0c2d-8f3b-4c6a-9d7e-0b1c2d3e4f50";
    const PORT: &str = "0f9e8d7c-6b5a-4f3e-8d2c-1b0a99887766";

    #[test]
    fn linuxbridge_names() {
        assert_eq!(bridge(NET), "brq5a1e0c2d-8f");
        assert_eq!(tap(PORT), "tap0f9e8d7c-6b");
        assert_eq!(dhcp_ns_side(PORT), "ns-0f9e8d7c-6b");
        assert_eq!(router_interface(PORT), "qr-0f9e8d7c-6b");
        assert_eq!(router_gateway(PORT), "qg-0f9e8d7c-6b");
        assert_eq!(vxlan(1001), "vxlan-1001");
        assert_eq!(dhcp_namespace("", NET), format!("qdhcp-{NET}"));
        assert_eq!(router_namespace("t1-", NET), format!("t1-qrouter-{NET}"));
        // Short ids (tests, hand-made resources) are used whole.
        assert_eq!(bridge("n1"), "brqn1");
        assert_eq!(tap(""), "tap");
        // An id whose 11th character is not on a boundary is used whole too: no panic.
        assert_eq!(tap("ééééééé"), "tapééééééé");
        for name in [
            bridge(NET),
            tap(PORT),
            dhcp_ns_side(PORT),
            router_interface(PORT),
            vxlan(16_777_215),
        ] {
            assert!(name.len() <= 15, "{name} is longer than IFNAMSIZ allows");
        }
    }

    #[test]
    fn recognises_what_it_builds() {
        assert!(
            is_bridge(&bridge(NET)) && is_owned_link(&bridge(NET)) && is_watched_link(&bridge(NET))
        );
        assert!(is_vxlan(&vxlan(7)) && is_owned_link(&vxlan(7)) && is_watched_link(&vxlan(7)));
        assert!(is_tap(&tap(PORT)) && !is_owned_link(&tap(PORT)) && is_watched_link(&tap(PORT)));
        for other in ["eth0", "br-ex", "vxlan0", "veth12", "qr-x", "ns-x", "lo"] {
            assert!(!is_owned_link(other), "{other}");
            assert!(!is_watched_link(other), "{other}");
        }
        assert!(!is_bridge(&tap(PORT)) && !is_tap(&bridge(NET)));
    }

    #[test]
    fn owned_namespaces_follow_the_prefix() {
        assert!(is_owned_namespace("", &dhcp_namespace("", NET)));
        assert!(is_owned_namespace("", &router_namespace("", NET)));
        assert!(is_owned_namespace("t1-", &router_namespace("t1-", NET)));
        assert!(!is_owned_namespace("t1-", &router_namespace("t2-", NET)));
        assert!(!is_owned_namespace("t1-", &router_namespace("", NET)));
        assert!(!is_owned_namespace("", "demo-vm1"));
        assert!(!is_owned_namespace("", "qdhcp"));
    }
}
