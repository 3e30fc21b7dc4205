//! What the agent wants filtered: pure data built from its view.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use crate::model::Mac;

/// An address with a prefix length; the host bits are cleared on parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    pub addr: IpAddr,
    pub len: u8,
}

impl Cidr {
    pub fn host(addr: IpAddr) -> Cidr {
        Cidr {
            addr,
            len: if addr.is_ipv4() { 32 } else { 128 },
        }
    }

    /// `10.0.0.5`, `10.0.0.0/24`, `2001:db8::/64`.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l.parse::<u8>().ok()?)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = len.unwrap_or(max);
        if len > max {
            return None;
        }
        Some(Cidr {
            addr: mask(addr, len),
            len,
        })
    }

    pub fn is_v4(&self) -> bool {
        self.addr.is_ipv4()
    }

    pub fn is_host(&self) -> bool {
        self.len == if self.is_v4() { 32 } else { 128 }
    }

    /// First and last address of an IPv6 network as integers ((0, 0) for IPv4).
    pub fn v6_bounds(&self) -> (u128, u128) {
        match self.addr {
            IpAddr::V6(a) => {
                let lo = u128::from(a);
                let host_bits = 128 - u32::from(self.len);
                let hi = if host_bits == 128 {
                    u128::MAX
                } else {
                    lo | ((1u128 << host_bits) - 1)
                };
                (lo, hi)
            }
            IpAddr::V4(_) => (0, 0),
        }
    }

    /// The IPv6 network spanning lo..=hi, if that range is one.
    pub fn from_v6_bounds(lo: u128, hi: u128) -> Option<Cidr> {
        let size = hi.checked_sub(lo)?.checked_add(1);
        let len = match size {
            None => 0, // the whole space
            Some(n) if n.is_power_of_two() && lo.is_multiple_of(n) => {
                u8::try_from(128 - n.trailing_zeros()).ok()?
            }
            Some(_) => return None,
        };
        Some(Cidr {
            addr: IpAddr::V6(lo.into()),
            len,
        })
    }

    pub fn contains(&self, other: &Cidr) -> bool {
        self.is_v4() == other.is_v4()
            && other.len >= self.len
            && mask(other.addr, self.len) == self.addr
    }
}

fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len))
            };
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len))
            };
            IpAddr::V6((bits & m).into())
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_host() {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.len)
        }
    }
}

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
