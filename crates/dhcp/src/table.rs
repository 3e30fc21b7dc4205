//! The reservation table: an immutable value built once per feed change and
//! swapped atomically (`ArcSwap<Table>`), so the packet path never locks.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::Ipv4Addr;
use std::str::FromStr;
use std::sync::Arc;

use thiserror::Error;

use crate::options::{self, ExtraOption, Prepared};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NetworkError {
    #[error("prefix length {0} > 32")]
    BadPrefix(u8),
    #[error("invalid IPv4 CIDR {0:?}")]
    Parse(String),
}

/// An IPv4 network (address + prefix length). The address is stored with the
/// host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Network {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Network {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Self, NetworkError> {
        if prefix > 32 {
            return Err(NetworkError::BadPrefix(prefix));
        }
        let mask = prefix_mask(prefix);
        Ok(Self {
            addr: Ipv4Addr::from(u32::from(addr) & mask),
            prefix,
        })
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn mask(&self) -> Ipv4Addr {
        Ipv4Addr::from(prefix_mask(self.prefix))
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !prefix_mask(self.prefix))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & prefix_mask(self.prefix) == u32::from(self.addr)
    }
}

pub(crate) fn prefix_mask(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p => u32::MAX << (32 - u32::from(p.min(32))),
    }
}

impl FromStr for Ipv4Network {
    type Err = NetworkError;

    /// Parses "10.0.0.0/24" (host bits are cleared, as Neutron CIDRs allow).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || NetworkError::Parse(s.to_owned());
        let (a, p) = s.split_once('/').ok_or_else(err)?;
        let addr: Ipv4Addr = a.trim().parse().map_err(|_| err())?;
        let prefix: u8 = p.trim().parse().map_err(|_| err())?;
        Self::new(addr, prefix)
    }
}

impl fmt::Display for Ipv4Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Per-subnet DHCP parameters, shared by every reservation of the subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetParams {
    pub network: Ipv4Network,
    /// Default gateway; `None` omits option 3 (Neutron `gateway_ip: null`).
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    /// Option 15; empty omits it.
    pub domain: String,
    pub mtu: Option<u16>,
    /// Host routes as (destination, prefix length, next hop).
    pub routes: Vec<(Ipv4Addr, u8, Ipv4Addr)>,
    pub lease_secs: u32,
    /// Our address on this subnet (option 54 and default siaddr).
    pub server_id: Ipv4Addr,
}

/// One MAC → IP reservation, as decided by the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
    /// Option 12; empty omits it.
    pub hostname: String,
    pub subnet: Arc<SubnetParams>,
    /// Port `extra_dhcp_opts`, already parsed (see [`crate::options::parse_extras`]).
    pub extra: Arc<[ExtraOption]>,
}

pub(crate) struct Entry {
    pub(crate) res: Reservation,
    pub(crate) prepared: Prepared,
}

/// A MAC is already uniformly distributed in its low bytes, so the hasher
/// just folds it into a u64 and multiplies: cheaper than SipHash per packet.
/// Only the controller inserts keys, so HashDoS is not a concern.
#[derive(Default)]
pub(crate) struct MacHasher(u64);

impl Hasher for MacHasher {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(26)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
}

type MacMap = HashMap<[u8; 6], Entry, BuildHasherDefault<MacHasher>>;

/// Immutable reservation table with O(1) lookup by MAC. Reply options are
/// encoded once here so that answering a packet is mostly a memcpy.
#[derive(Default)]
pub struct Table {
    by_mac: MacMap,
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("len", &self.by_mac.len())
            .finish()
    }
}

impl Table {
    /// Builds the table. A duplicate MAC keeps the first reservation (a DHCP
    /// client can only get one address) and is logged.
    pub fn new(reservations: impl IntoIterator<Item = Reservation>) -> Self {
        let mut by_mac = MacMap::default();
        for res in reservations {
            if by_mac.contains_key(&res.mac) {
                tracing::warn!(mac = %fmt_mac(&res.mac), ip = %res.ip, "duplicate MAC in DHCP reservations, keeping the first");
                continue;
            }
            if !res.subnet.network.contains(res.ip) {
                tracing::warn!(mac = %fmt_mac(&res.mac), ip = %res.ip, network = %res.subnet.network, "reserved address outside its subnet");
            }
            let prepared = options::prepare(&res);
            by_mac.insert(res.mac, Entry { res, prepared });
        }
        Self { by_mac }
    }

    pub fn empty() -> Self {
        Self::default()
    }

    pub fn get(&self, mac: &[u8; 6]) -> Option<&Reservation> {
        self.by_mac.get(mac).map(|e| &e.res)
    }

    pub(crate) fn entry(&self, mac: &[u8; 6]) -> Option<&Entry> {
        self.by_mac.get(mac)
    }

    pub fn len(&self) -> usize {
        self.by_mac.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_mac.is_empty()
    }
}

/// Formats a MAC as `aa:bb:cc:dd:ee:ff` for logs.
pub fn fmt_mac(mac: &[u8]) -> String {
    let mut s = String::with_capacity(17);
    for (i, b) in mac.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn subnet() -> Arc<SubnetParams> {
        Arc::new(SubnetParams {
            network: "10.0.0.0/24".parse().unwrap(),
            router: Some(Ipv4Addr::new(10, 0, 0, 1)),
            dns: vec![Ipv4Addr::new(10, 0, 0, 3)],
            domain: "openstacklocal".into(),
            mtu: Some(1450),
            routes: vec![],
            lease_secs: 86400,
            server_id: Ipv4Addr::new(10, 0, 0, 2),
        })
    }

    fn res(mac: u8, ip: u8) -> Reservation {
        Reservation {
            mac: [0xfa, 0x16, 0x3e, 0, 0, mac],
            ip: Ipv4Addr::new(10, 0, 0, ip),
            hostname: format!("host-{ip}"),
            subnet: subnet(),
            extra: Arc::from(Vec::new()),
        }
    }

    #[test]
    fn network_math() {
        let n: Ipv4Network = "10.1.2.3/24".parse().unwrap();
        assert_eq!(n.addr(), Ipv4Addr::new(10, 1, 2, 0));
        assert_eq!(n.mask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(n.broadcast(), Ipv4Addr::new(10, 1, 2, 255));
        assert!(n.contains(Ipv4Addr::new(10, 1, 2, 200)));
        assert!(!n.contains(Ipv4Addr::new(10, 1, 3, 1)));
        let all: Ipv4Network = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(all.broadcast(), Ipv4Addr::BROADCAST);
        let host: Ipv4Network = "10.0.0.7/32".parse().unwrap();
        assert_eq!(host.mask(), Ipv4Addr::BROADCAST);
        assert!("10.0.0.0/33".parse::<Ipv4Network>().is_err());
        assert!("10.0.0.0".parse::<Ipv4Network>().is_err());
        assert!("fe80::/64".parse::<Ipv4Network>().is_err());
        assert_eq!(n.to_string(), "10.1.2.0/24");
    }

    #[test]
    fn lookup_and_duplicates() {
        let t = Table::new([res(1, 5), res(2, 6), res(1, 7)]);
        assert_eq!(t.len(), 2);
        assert_eq!(
            t.get(&[0xfa, 0x16, 0x3e, 0, 0, 1]).unwrap().ip,
            Ipv4Addr::new(10, 0, 0, 5)
        );
        assert_eq!(
            t.get(&[0xfa, 0x16, 0x3e, 0, 0, 2]).unwrap().ip,
            Ipv4Addr::new(10, 0, 0, 6)
        );
        assert!(t.get(&[0; 6]).is_none());
        assert!(Table::empty().is_empty());
    }

    #[test]
    fn mac_format() {
        assert_eq!(
            fmt_mac(&[0xfa, 0x16, 0x3e, 0, 0xa, 0xff]),
            "fa:16:3e:00:0a:ff"
        );
    }
}
