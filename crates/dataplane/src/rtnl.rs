//! Typed rtnetlink requests and decoders on top of [`Nl`]: links, FDB and
//! addresses. Everything here acts on the namespace the socket was opened in.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;

use netlink_packet_core::{NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::model::{LinkKind, Mac, VxlanParams};
use crate::socket::{Nl, SocketError};

/// A link as decoded from RTM_NEWLINK, master still as an index.
#[derive(Debug, Clone)]
pub struct RawLink {
    pub index: u32,
    pub name: String,
    pub kind: LinkKind,
    pub master: Option<u32>,
    pub mtu: u32,
    pub up: bool,
    pub mac: Option<Mac>,
    pub vxlan: Option<VxlanParams>,
    /// IFLA_LINK: for a veth, the peer's ifindex.
    pub link: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct RawFdb {
    pub ifindex: u32,
    pub mac: Mac,
    pub dst: Ipv4Addr,
}

fn to_mac(v: &[u8]) -> Option<Mac> {
    v.try_into().ok()
}

fn decode_link(m: LinkMessage) -> RawLink {
    let mut l = RawLink {
        index: m.header.index,
        name: String::new(),
        kind: LinkKind::Other(String::new()),
        master: None,
        mtu: 0,
        up: m.header.flags.contains(LinkFlags::Up),
        mac: None,
        vxlan: None,
        link: None,
    };
    for a in m.attributes {
        match a {
            LinkAttribute::IfName(n) => l.name = n,
            LinkAttribute::Mtu(v) => l.mtu = v,
            LinkAttribute::Controller(i) if i != 0 => l.master = Some(i),
            LinkAttribute::Address(a) => l.mac = to_mac(&a),
            LinkAttribute::Link(i) => l.link = Some(i),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    match info {
                        LinkInfo::Kind(k) => {
                            l.kind = match k {
                                InfoKind::Bridge => LinkKind::Bridge,
                                InfoKind::Vxlan => LinkKind::Vxlan,
                                InfoKind::Veth => LinkKind::Veth,
                                InfoKind::Tun => LinkKind::Tun,
                                other => LinkKind::Other(other.to_string()),
                            }
                        }
                        LinkInfo::Data(InfoData::Vxlan(v)) => {
                            let mut p = VxlanParams {
                                vni: 0,
                                local: None,
                                dstport: 0,
                            };
                            for x in v {
                                match x {
                                    InfoVxlan::Id(id) => p.vni = id,
                                    InfoVxlan::Local(a) => p.local = Some(a),
                                    InfoVxlan::Port(port) => p.dstport = port,
                                    _ => {}
                                }
                            }
                            l.vxlan = Some(p);
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    l
}

pub fn links(nl: &mut Nl) -> Result<Vec<RawLink>, SocketError> {
    let replies = nl.dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))?;
    Ok(replies
        .into_iter()
        .filter_map(|r| match r {
            RouteNetlinkMessage::NewLink(m) => Some(decode_link(m)),
            _ => None,
        })
        .collect())
}

/// Resolve a name to its ifindex (ENODEV from the kernel if absent).
pub fn index_of(nl: &mut Nl, name: &str) -> Result<u32, SocketError> {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.into()));
    for r in nl.get(RouteNetlinkMessage::GetLink(m))? {
        if let RouteNetlinkMessage::NewLink(m) = r {
            return Ok(m.header.index);
        }
    }
    Err(SocketError::Kernel(std::io::Error::from_raw_os_error(
        nix::libc::ENODEV,
    )))
}

/// A change to an existing link addressed by name (the kernel resolves
/// IFLA_IFNAME when the index is 0).
fn set_link(
    nl: &mut Nl,
    name: &str,
    fill: impl FnOnce(&mut LinkMessage),
) -> Result<(), SocketError> {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.into()));
    fill(&mut m);
    nl.request(RouteNetlinkMessage::SetLink(m), 0)
}

pub fn set_mtu(nl: &mut Nl, name: &str, mtu: u32) -> Result<(), SocketError> {
    set_link(nl, name, |m| m.attributes.push(LinkAttribute::Mtu(mtu)))
}

pub fn set_mac(nl: &mut Nl, name: &str, mac: Mac) -> Result<(), SocketError> {
    set_link(nl, name, |m| {
        m.attributes.push(LinkAttribute::Address(mac.to_vec()))
    })
}

pub fn set_up(nl: &mut Nl, name: &str) -> Result<(), SocketError> {
    set_link(nl, name, |m| {
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
    })
}

/// `master == 0` detaches.
pub fn set_master_index(nl: &mut Nl, name: &str, master: u32) -> Result<(), SocketError> {
    set_link(nl, name, |m| {
        m.attributes.push(LinkAttribute::Controller(master))
    })
}

pub fn delete_link(nl: &mut Nl, name: &str) -> Result<(), SocketError> {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.into()));
    nl.request(RouteNetlinkMessage::DelLink(m), 0)
}

fn new_link(nl: &mut Nl, name: &str, mtu: u32, info: Vec<LinkInfo>) -> Result<(), SocketError> {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.into()));
    m.attributes.push(LinkAttribute::Mtu(mtu));
    m.attributes.push(LinkAttribute::LinkInfo(info));
    nl.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
}

pub fn create_bridge(nl: &mut Nl, name: &str, mtu: u32) -> Result<(), SocketError> {
    new_link(nl, name, mtu, vec![LinkInfo::Kind(InfoKind::Bridge)])?;
    // IFLA_MTU at creation does not mark the MTU as user-set, so the bridge
    // would follow its ports' MTUs (e.g. a 9000 NIC). Only a real change
    // through changelink pins it, and setting the same value is a no-op in
    // the kernel: step away and back while the bridge has no ports.
    let step = if mtu > 68 { mtu - 1 } else { mtu + 1 };
    set_mtu(nl, name, step)?;
    set_mtu(nl, name, mtu)
}

pub fn create_vxlan(
    nl: &mut Nl,
    name: &str,
    vni: u32,
    local: Ipv4Addr,
    dstport: u16,
    mtu: u32,
) -> Result<(), SocketError> {
    let data = vec![
        InfoVxlan::Id(vni),
        InfoVxlan::Local(local),
        InfoVxlan::Port(dstport),
        InfoVxlan::Learning(false),
    ];
    new_link(
        nl,
        name,
        mtu,
        vec![
            LinkInfo::Kind(InfoKind::Vxlan),
            LinkInfo::Data(InfoData::Vxlan(data)),
        ],
    )
}

/// A veth pair whose peer is born inside `netns` (so its name cannot clash
/// with anything in this namespace).
pub fn create_veth_into(
    nl: &mut Nl,
    host_side: &str,
    ns_side: &str,
    netns: &std::fs::File,
    mac: Mac,
    mtu: u32,
) -> Result<(), SocketError> {
    let mut peer = LinkMessage::default();
    peer.attributes.push(LinkAttribute::IfName(ns_side.into()));
    peer.attributes.push(LinkAttribute::Mtu(mtu));
    peer.attributes.push(LinkAttribute::Address(mac.to_vec()));
    peer.attributes
        .push(LinkAttribute::NetNsFd(netns.as_raw_fd()));
    new_link(
        nl,
        host_side,
        mtu,
        vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ],
    )
}

fn fdb_msg(ifindex: u32, mac: Mac, dst: Ipv4Addr) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.family = AddressFamily::Bridge;
    m.header.ifindex = ifindex;
    m.header.state = NeighbourState::Permanent;
    m.header.flags = NeighbourFlags::Own; // NTF_SELF: the vxlan device's own table
    m.attributes
        .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
    m.attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(dst)));
    m
}

/// Append semantics: several all-zero entries with different dst coexist.
pub fn fdb_add(nl: &mut Nl, ifindex: u32, mac: Mac, dst: Ipv4Addr) -> Result<(), SocketError> {
    nl.request(
        RouteNetlinkMessage::NewNeighbour(fdb_msg(ifindex, mac, dst)),
        NLM_F_CREATE | NLM_F_APPEND,
    )
}

pub fn fdb_del(nl: &mut Nl, ifindex: u32, mac: Mac, dst: Ipv4Addr) -> Result<(), SocketError> {
    nl.request(
        RouteNetlinkMessage::DelNeighbour(fdb_msg(ifindex, mac, dst)),
        0,
    )
}

/// `self` FDB entries with an IPv4 remote: the ones we manage on vxlan
/// devices. Bridge (`master`) entries and local MACs carry no remote and are
/// left out.
pub fn fdb(nl: &mut Nl) -> Result<Vec<RawFdb>, SocketError> {
    let mut req = NeighbourMessage::default();
    req.header.family = AddressFamily::Bridge;
    let mut out = Vec::new();
    for r in nl.dump(RouteNetlinkMessage::GetNeighbour(req))? {
        let RouteNetlinkMessage::NewNeighbour(m) = r else {
            continue;
        };
        if !m.header.flags.contains(NeighbourFlags::Own)
            || m.header.flags.contains(NeighbourFlags::Controller)
        {
            continue;
        }
        let mut mac = None;
        let mut dst = None;
        for a in &m.attributes {
            match a {
                NeighbourAttribute::LinkLayerAddress(v) => mac = to_mac(v),
                NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => dst = Some(*ip),
                // In AF_BRIDGE messages the decoder cannot tell the address
                // family from the header: a 4-byte value is the IPv4 remote.
                NeighbourAttribute::Destination(NeighbourAddress::Other(v)) => {
                    dst = <[u8; 4]>::try_from(v.as_slice()).ok().map(Ipv4Addr::from)
                }
                _ => {}
            }
        }
        if let (Some(mac), Some(dst)) = (mac, dst) {
            out.push(RawFdb {
                ifindex: m.header.ifindex,
                mac,
                dst,
            });
        }
    }
    Ok(out)
}

/// (ifindex, address, prefix), leaving out IPv6 link-local addresses (the
/// kernel adds those itself).
pub fn addrs(nl: &mut Nl) -> Result<Vec<(u32, IpAddr, u8)>, SocketError> {
    let mut out = Vec::new();
    for r in nl.dump(RouteNetlinkMessage::GetAddress(AddressMessage::default()))? {
        let RouteNetlinkMessage::NewAddress(m) = r else {
            continue;
        };
        let mut addr = None;
        for a in &m.attributes {
            match a {
                // IFA_LOCAL is the interface's own address on IPv4 (IFA_ADDRESS
                // may be a point-to-point peer); IPv6 only has IFA_ADDRESS.
                AddressAttribute::Local(ip) => addr = Some(*ip),
                AddressAttribute::Address(ip) if addr.is_none() => addr = Some(*ip),
                _ => {}
            }
        }
        let Some(addr) = addr else { continue };
        if let IpAddr::V6(v6) = addr
            && v6.segments()[0] & 0xffc0 == 0xfe80
        {
            continue;
        }
        out.push((m.header.index, addr, m.header.prefix_len));
    }
    Ok(out)
}

fn addr_msg(ifindex: u32, addr: IpAddr, prefix: u8) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    m.header.prefix_len = prefix;
    m.header.index = ifindex;
    m.header.scope = AddressScope::Universe;
    m.attributes.push(AddressAttribute::Address(addr));
    if addr.is_ipv4() {
        m.attributes.push(AddressAttribute::Local(addr));
    }
    m
}

pub fn addr_add(nl: &mut Nl, ifindex: u32, addr: IpAddr, prefix: u8) -> Result<(), SocketError> {
    nl.request(
        RouteNetlinkMessage::NewAddress(addr_msg(ifindex, addr, prefix)),
        NLM_F_CREATE | NLM_F_REPLACE,
    )
}

pub fn addr_del(nl: &mut Nl, ifindex: u32, addr: IpAddr, prefix: u8) -> Result<(), SocketError> {
    nl.request(
        RouteNetlinkMessage::DelAddress(addr_msg(ifindex, addr, prefix)),
        0,
    )
}
