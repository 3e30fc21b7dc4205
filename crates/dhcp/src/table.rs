//! The reservation table: an immutable value built once per feed change and
//! swapped atomically (`ArcSwap<Table>`), so the packet path never locks.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::Ipv4Addr;
use std::sync::Arc;

use neutrino_net::{Ipv4Net, Mac};

use crate::options::{self, ExtraOption, Prepared};

/// Per-subnet DHCP parameters, shared by every reservation of the subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetParams {
    pub network: Ipv4Net,
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
    pub mac: Mac,
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

type MacMap = HashMap<Mac, Entry, BuildHasherDefault<MacHasher>>;

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
                tracing::warn!(mac = %res.mac, ip = %res.ip, "duplicate MAC in DHCP reservations, keeping the first");
                continue;
            }
            if !res.subnet.network.contains(res.ip) {
                tracing::warn!(mac = %res.mac, ip = %res.ip, network = %res.subnet.network, "reserved address outside its subnet");
            }
            let prepared = options::prepare(&res);
            by_mac.insert(res.mac, Entry { res, prepared });
        }
        Self { by_mac }
    }

    pub fn empty() -> Self {
        Self::default()
    }

    pub fn get(&self, mac: &Mac) -> Option<&Reservation> {
        self.by_mac.get(mac).map(|e| &e.res)
    }

    pub(crate) fn entry(&self, mac: &Mac) -> Option<&Entry> {
        self.by_mac.get(mac)
    }

    pub fn len(&self) -> usize {
        self.by_mac.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_mac.is_empty()
    }
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
            mac: Mac::new([0xfa, 0x16, 0x3e, 0, 0, mac]),
            ip: Ipv4Addr::new(10, 0, 0, ip),
            hostname: format!("host-{ip}"),
            subnet: subnet(),
            extra: Arc::from(Vec::new()),
        }
    }

    #[test]
    fn lookup_and_duplicates() {
        let t = Table::new([res(1, 5), res(2, 6), res(1, 7)]);
        assert_eq!(t.len(), 2);
        assert_eq!(
            t.get(&Mac::new([0xfa, 0x16, 0x3e, 0, 0, 1])).unwrap().ip,
            Ipv4Addr::new(10, 0, 0, 5)
        );
        assert_eq!(
            t.get(&Mac::new([0xfa, 0x16, 0x3e, 0, 0, 2])).unwrap().ip,
            Ipv4Addr::new(10, 0, 0, 6)
        );
        assert!(t.get(&Mac::ZERO).is_none());
        assert!(Table::empty().is_empty());
    }
}
