//! What the agent wants filtered: pure data built from its view.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::Mac;

/// An address or a network, host bits cleared: read with
/// [`Cidr::parse_host_or_network`], printed with [`Cidr::compact`].
pub use neutrino_net::Cidr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// Towards the port (the instance receives).
    Ingress,
    /// From the port (the instance sends).
    Egress,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Remote {
    Any,
    Prefix(Cidr),
    /// Members of this group (their addresses, from the group's sets).
    Group(String),
}

/// One security group rule, already validated by the API.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rule {
    pub direction: Direction,
    /// false: IPv6.
    pub ipv4: bool,
    /// IP protocol number; None: any.
    pub protocol: Option<u8>,
    /// Ports (TCP, UDP, SCTP, DCCP, UDP-Lite) or ICMP type and code.
    pub port_range_min: Option<u32>,
    pub port_range_max: Option<u32>,
    pub remote: Remote,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupFilter {
    pub rules: Vec<Rule>,
}

/// A port with port security on, on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortFilter {
    /// Its number: the packet mark while its frames cross the host. Unique
    /// on the host, never 0.
    pub mark: u32,
    pub network_id: String,
    /// The addresses it may send from, each with the MAC it may use with it
    /// (fixed IPs with the port's MAC, allowed address pairs with theirs).
    pub sources: BTreeSet<(Mac, Cidr)>,
    /// MACs it may send from (its own and its pairs').
    pub macs: BTreeSet<Mac>,
    /// Sorted, unique.
    pub groups: Vec<String>,
}

/// Everything the firewall of one host should hold. The maps that grow with
/// the host are persistent (imbl): a copy is O(1) and two copies that share
/// most of their structure are compared without visiting what they share,
/// so a change of one port costs the same on any host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirewallSpec {
    /// Keyed by tap name.
    pub ports: imbl::OrdMap<String, PortFilter>,
    /// Rules of every group a local port uses.
    pub groups: BTreeMap<String, GroupFilter>,
    /// Addresses of the members of every group named as a remote group.
    pub members: imbl::OrdMap<String, imbl::OrdSet<Cidr>>,
    /// nova-network's `allow_same_net_traffic`: false drops traffic between
    /// instances of one network unless a rule other than "from my own
    /// group" admits it.
    pub allow_same_net_traffic: bool,
    /// Instance addresses per network (used when `allow_same_net_traffic`
    /// is false).
    pub network_addresses: imbl::OrdMap<String, imbl::OrdSet<Cidr>>,
    /// MACs of router copies' legs (multi-host routing): frames from or to
    /// them never cross `uplinks`, so each host's instances only reach the
    /// copy on their own host.
    pub router_macs: BTreeSet<Mac>,
    pub uplinks: BTreeSet<String>,
    /// Network bridge → its conntrack zone (unique on the host, never 0).
    pub zones: BTreeMap<String, u16>,
}
