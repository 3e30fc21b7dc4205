//! What the server knows of the instance that asked: filled from the model
//! for every request, so an answer always reflects the current state.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use bytes::Bytes;
use neutrino_net::{Cidr, Mac};

/// The instance behind a request, and what its metadata says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The port the request came from.
    pub port_id: String,
    /// The port's `device_id`: Nova's server UUID, the instance's id.
    pub device_id: String,
    pub project_id: String,
    /// The source address the request came from.
    pub address: IpAddr,
    /// The port's `dns_name`, else `host-<ip>`.
    pub hostname: String,
    /// The instance's name (the extension's, else the hostname).
    pub name: String,
    pub availability_zone: String,
    /// (key name, public key), in order.
    pub public_keys: Vec<(String, String)>,
    pub user_data: Option<Bytes>,
    /// Nova's server properties (`meta`).
    pub meta: BTreeMap<String, String>,
    /// The asking port's IPv4 address, and the floating IP in front of it.
    pub local_ipv4: Option<Ipv4Addr>,
    pub public_ipv4: Option<Ipv4Addr>,
    pub mac: Mac,
    /// Names of the asking port's security groups.
    pub security_groups: Vec<String>,
    /// Every port of the instance, the asking one first.
    pub links: Vec<Link>,
}

/// One of the instance's ports, as `network_data.json` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub port_id: String,
    pub network_id: String,
    pub mac: Mac,
    pub mtu: u32,
    /// One per fixed IP of the port.
    pub subnets: Vec<SubnetFacts>,
}

/// A fixed IP of a port and the subnet it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetFacts {
    pub address: IpAddr,
    pub cidr: Cidr,
    pub gateway: Option<IpAddr>,
    /// `ipv6_address_mode`: `slaac`, `dhcpv6-stateful`, `dhcpv6-stateless`.
    pub ipv6_address_mode: Option<String>,
    /// (destination, next hop)
    pub host_routes: Vec<(Cidr, IpAddr)>,
    /// The subnet's `dns_nameservers`, else the DHCP server's address on it.
    pub dns: Vec<IpAddr>,
}
