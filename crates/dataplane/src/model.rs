//! Desired and observed host state: bridges, links, namespaces with their
//! legs and routes. Pure data: no I/O here, so the planner
//! can be tested without root.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

pub use neutrino_net::Mac;
use neutrino_net::names;

/// What the agent wants the host to look like.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesiredHost {
    /// Keyed by bridge name.
    pub bridges: BTreeMap<String, Bridge>,
    /// Keyed by host-side link name (a namespace may hold several: a
    /// router has a leg on each of its networks).
    pub endpoints: BTreeMap<String, NsEndpoint>,
    /// Routing inside owned namespaces (routers), keyed by namespace.
    pub ns_routing: BTreeMap<String, NsRouting>,
}

/// A route inside a namespace: destination prefix via a next hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NsRoute {
    pub dst: IpAddr,
    pub prefix: u8,
    pub via: IpAddr,
}

/// A namespace that forwards (a router): IPv4 forwarding and the routes
/// it holds besides the connected ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NsRouting {
    pub forwarding: bool,
    pub routes: BTreeSet<NsRoute>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bridge {
    pub name: String,
    pub mtu: u32,
    pub uplink: Uplink,
    /// Tap names that belong on this bridge if they exist on the host.
    pub members: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uplink {
    None,
    Physical { ifname: String },
    Vxlan(Vxlan),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vxlan {
    pub name: String,
    pub vni: u32,
    pub local: Ipv4Addr,
    pub dstport: u16,
    /// Remote VTEPs: all-zero MAC ([`Mac::ZERO`]) FDB entries for BUM traffic.
    pub flood: BTreeSet<Ipv4Addr>,
    /// Remote port MAC → its VTEP (l2pop).
    pub macs: BTreeMap<Mac, Ipv4Addr>,
}

/// A veth pair: host side on a bridge, namespace side (with addresses) in a
/// namespace: a DHCP port's or a router's leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsEndpoint {
    pub namespace: String,
    pub bridge: String,
    pub host_side: String,
    pub ns_side: String,
    pub mac: Mac,
    pub mtu: u32,
    pub addrs: BTreeSet<(IpAddr, u8)>,
}

/// Which namespaces and links this agent owns (may delete).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ownership {
    /// Owned namespaces are named `<namespace_prefix>qdhcp-*` (DHCP) and
    /// `<namespace_prefix>qrouter-*` (routers).
    pub namespace_prefix: String,
}

impl Ownership {
    pub fn owns_namespace(&self, name: &str) -> bool {
        names::is_owned_namespace(&self.namespace_prefix, name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkKind {
    Bridge,
    Vxlan,
    Veth,
    Tun,
    Other(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VxlanParams {
    pub vni: u32,
    pub local: Option<Ipv4Addr>,
    pub dstport: u16,
}

/// A link in the agent's own namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedLink {
    pub name: String,
    pub index: u32,
    pub kind: LinkKind,
    /// Name of the master device, if enslaved.
    pub master: Option<String>,
    pub mtu: u32,
    pub up: bool,
    pub mac: Option<Mac>,
    pub vxlan: Option<VxlanParams>,
    /// For a veth whose peer lives in an owned namespace: that namespace and
    /// the peer's name there.
    pub peer: Option<(String, String)>,
}

/// A link inside an owned namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsLink {
    pub name: String,
    pub index: u32,
    pub mtu: u32,
    pub up: bool,
    pub mac: Option<Mac>,
    /// Addresses the kernel did not add itself (IPv6 link-local is left out).
    pub addrs: BTreeSet<(IpAddr, u8)>,
    /// Peer ifindex for veths (in the namespace the peer lives in).
    pub peer_index: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedNamespace {
    pub links: BTreeMap<String, NsLink>,
    /// Routes with a next hop in the main table (connected ones are left out).
    pub routes: BTreeSet<NsRoute>,
    pub forwarding: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FdbEntry {
    pub mac: Mac,
    pub dst: Ipv4Addr,
}

/// What the kernel has, as far as the planner cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedHost {
    pub links: BTreeMap<String, ObservedLink>,
    /// Per owned vxlan device: `self` entries with a remote destination that
    /// the kernel did not create itself.
    pub fdb: BTreeMap<String, BTreeSet<FdbEntry>>,
    /// Owned namespaces only.
    pub namespaces: BTreeMap<String, ObservedNamespace>,
}
