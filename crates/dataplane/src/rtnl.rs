//! Typed rtnetlink requests and decoders on top of [`Nl`]: links, FDB and
//! addresses. Everything here acts on the namespace the socket was opened in.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;

use netlink_packet_core::{NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, InfoVxlan, LinkAttribute, LinkExtentMask, LinkFlags, LinkInfo,
    LinkMessage,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::model::{LinkKind, Mac, NsRoute, VxlanParams};
use crate::raw;
use crate::socket::{Nl, SocketError, decode};

/// A link as decoded from RTM_NEWLINK, master still as an index.
#[derive(Debug, Clone, PartialEq, Eq)]
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFdb {
    pub ifindex: u32,
    pub mac: Mac,
    pub dst: Ipv4Addr,
}

#[cfg(test)]
fn to_mac(v: &[u8]) -> Option<Mac> {
    v.try_into().ok()
}

const RTM_NEWLINK: u16 = 16;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWNEIGH: u16 = 28;
const RTM_NEWROUTE: u16 = 24;

/// The link dump request. Stats are skipped (RTEXT_FILTER_SKIP_STATS): the
/// kernel then neither gathers nor sends them, and no RawLink field comes
/// from them. VF info is already off (no RTEXT_FILTER_VF).
fn link_dump_request() -> RouteNetlinkMessage {
    let mut m = LinkMessage::default();
    m.attributes
        .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
    RouteNetlinkMessage::GetLink(m)
}

/// All links, decoded straight from the dump as it streams in.
pub fn links(nl: &mut Nl) -> Result<Vec<RawLink>, SocketError> {
    let mut out = Vec::new();
    nl.dump_raw(link_dump_request(), |r| {
        if r.kind == RTM_NEWLINK {
            out.push(raw::link(r.payload)?);
        }
        Ok(())
    })?;
    Ok(out)
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
        m.attributes
            .push(LinkAttribute::Address(mac.octets().to_vec()))
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
    peer.attributes
        .push(LinkAttribute::Address(mac.octets().to_vec()));
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
        .push(NeighbourAttribute::LinkLayerAddress(mac.octets().to_vec()));
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

/// `self` FDB entries with an IPv4 remote of `devices` (the ones we manage
/// on vxlan devices), handed to `each` as the dump streams in (it can be
/// large: one entry per remote MAC). Bridge (`master`) entries and local
/// MACs carry no remote and are left out.
///
/// One dump per device, filtered by the kernel: an unfiltered AF_BRIDGE
/// dump walks a bridge's whole FDB once per port, quadratic on a host with
/// thousands of taps. Kernels without strict checking would ignore the
/// filter, so there one full dump is read and filtered here.
pub fn fdb(
    nl: &mut Nl,
    devices: &BTreeSet<u32>,
    mut each: impl FnMut(RawFdb),
) -> Result<(), SocketError> {
    let mut wanted = |e: RawFdb| {
        if devices.contains(&e.ifindex) {
            each(e)
        }
    };
    if nl.set_strict(true).is_err() {
        return fdb_dump(nl, 0, &mut wanted);
    }
    let res = devices
        .iter()
        .try_for_each(|&i| fdb_dump(nl, i, &mut wanted));
    nl.set_strict(false)?;
    res
}

/// An AF_BRIDGE neighbour dump, of one device unless `ifindex` is 0.
fn fdb_dump(nl: &mut Nl, ifindex: u32, each: &mut impl FnMut(RawFdb)) -> Result<(), SocketError> {
    let mut req = NeighbourMessage::default();
    req.header.family = AddressFamily::Bridge;
    req.header.ifindex = ifindex;
    nl.dump_raw(RouteNetlinkMessage::GetNeighbour(req), |r| {
        if r.kind == RTM_NEWNEIGH
            && let Some(e) = raw::fdb(r.payload)?
        {
            each(e);
        }
        Ok(())
    })
}

/// (ifindex, address, prefix), leaving out IPv6 link-local addresses (the
/// kernel adds those itself).
pub fn addrs(nl: &mut Nl) -> Result<Vec<(u32, IpAddr, u8)>, SocketError> {
    let mut out = Vec::new();
    let req = RouteNetlinkMessage::GetAddress(AddressMessage::default());
    nl.dump_raw(req, |r| {
        if r.kind == RTM_NEWADDR
            && let RouteNetlinkMessage::NewAddress(m) = decode(&r)?
            && let Some(a) = own_addr(&m)
        {
            out.push(a);
        }
        Ok(())
    })?;
    Ok(out)
}

/// (ifindex, address, prefix) of one address message, None for IPv6
/// link-local.
fn own_addr(m: &AddressMessage) -> Option<(u32, IpAddr, u8)> {
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
    let addr = addr?;
    if let IpAddr::V6(v6) = addr
        && v6.segments()[0] & 0xffc0 == 0xfe80
    {
        return None;
    }
    Some((m.header.index, addr, m.header.prefix_len))
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

/// Routes with a next hop in the main table (IPv4 and IPv6).
pub fn routes(nl: &mut Nl) -> Result<Vec<NsRoute>, SocketError> {
    let mut out = Vec::new();
    for family in [AddressFamily::Inet, AddressFamily::Inet6] {
        let mut m = RouteMessage::default();
        m.header.address_family = family;
        nl.dump_raw(RouteNetlinkMessage::GetRoute(m), |r| {
            if r.kind == RTM_NEWROUTE
                && let RouteNetlinkMessage::NewRoute(m) = decode(&r)?
                && let Some(route) = gateway_route(&m)
            {
                out.push(route);
            }
            Ok(())
        })?;
    }
    Ok(out)
}

fn gateway_route(m: &RouteMessage) -> Option<NsRoute> {
    let mut table = u32::from(m.header.table);
    let (mut dst, mut via) = (None, None);
    for a in &m.attributes {
        match a {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(d) => dst = route_ip(d),
            RouteAttribute::Gateway(g) => via = route_ip(g),
            _ => {}
        }
    }
    if table != u32::from(RouteHeader::RT_TABLE_MAIN) || m.header.kind != RouteType::Unicast {
        return None;
    }
    let via = via?;
    let dst = dst.unwrap_or(if via.is_ipv4() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
    });
    Some(NsRoute {
        dst,
        prefix: m.header.destination_prefix_length,
        via,
    })
}

fn route_ip(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn route_msg(r: &NsRoute) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = if r.dst.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    m.header.destination_prefix_length = r.prefix;
    m.header.table = RouteHeader::RT_TABLE_MAIN;
    m.header.protocol = RouteProtocol::Static;
    m.header.scope = RouteScope::Universe;
    m.header.kind = RouteType::Unicast;
    if r.prefix > 0 {
        m.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(r.dst)));
    }
    m.attributes
        .push(RouteAttribute::Gateway(RouteAddress::from(r.via)));
    m
}

pub fn route_add(nl: &mut Nl, r: &NsRoute) -> Result<(), SocketError> {
    nl.request(
        RouteNetlinkMessage::NewRoute(route_msg(r)),
        NLM_F_CREATE | NLM_F_REPLACE,
    )
}

pub fn route_del(nl: &mut Nl, r: &NsRoute) -> Result<(), SocketError> {
    nl.request(RouteNetlinkMessage::DelRoute(route_msg(r)), 0)
}

/// The netlink-packet-route decode the raw one replaced: the reference the
/// equivalence tests compare against.
#[cfg(test)]
pub(crate) fn decode_link(m: LinkMessage) -> RawLink {
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

/// The netlink-packet-route FDB filter the raw one replaced (reference).
#[cfg(test)]
pub(crate) fn decode_fdb(m: &NeighbourMessage) -> Option<RawFdb> {
    if !m.header.flags.contains(NeighbourFlags::Own)
        || m.header.flags.contains(NeighbourFlags::Controller)
    {
        return None;
    }
    let mut mac = None;
    let mut dst = None;
    for a in &m.attributes {
        match a {
            NeighbourAttribute::LinkLayerAddress(v) => mac = to_mac(v),
            NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => dst = Some(*ip),
            NeighbourAttribute::Destination(NeighbourAddress::Other(v)) => {
                dst = <[u8; 4]>::try_from(v.as_slice()).ok().map(Ipv4Addr::from)
            }
            _ => {}
        }
    }
    Some(RawFdb {
        ifindex: m.header.ifindex,
        mac: mac?,
        dst: dst?,
    })
}

#[cfg(test)]
mod tests {
    //! The raw decoders against netlink-packet-route on real dumps (root:
    //! each test unshares a fresh network namespace for its thread).

    use std::process::Command;

    use nix::sched::{CloneFlags, unshare};

    use super::*;

    /// False (after saying why) when not root.
    fn fresh_netns() -> bool {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIP: needs root (network namespaces)");
            return false;
        }
        unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        true
    }

    fn sh(tool: &str, script: &str) {
        for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let out = Command::new(tool)
                .args(line.split_whitespace())
                .output()
                .expect("spawn");
            assert!(
                out.status.success(),
                "{tool} {line}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// A bridge, vxlans (with and without local), a veth pair, a tap, all
    /// kinds of attributes the decoders read; FDB entries on the vxlan.
    fn populate() {
        sh(
            "ip",
            "link add brq-t type bridge
             link set brq-t mtu 1450 up
             link add vxlan-100 type vxlan id 100 local 10.0.0.1 dstport 4789 nolearning
             link set vxlan-100 master brq-t up
             link add vxlan-7 type vxlan id 16000000 dstport 8472
             link add va mtu 1400 type veth peer name vb
             link set va address fa:16:3e:00:00:01 master brq-t up
             tuntap add mode tap name tap-t
             link set tap-t master brq-t",
        );
        sh(
            "bridge",
            "fdb append 00:00:00:00:00:00 dev vxlan-100 dst 10.0.0.2 self permanent
             fdb append 00:00:00:00:00:00 dev vxlan-100 dst 10.0.0.3 self permanent
             fdb add fa:16:3e:00:00:02 dev vxlan-100 dst 10.0.0.2 self permanent",
        );
    }

    /// Every RTM_NEWLINK of one dump, decoded both ways.
    fn both_ways(nl: &mut Nl, req: RouteNetlinkMessage) -> (Vec<RawLink>, Vec<RawLink>) {
        let (mut raw, mut full) = (Vec::new(), Vec::new());
        nl.dump_raw(req, |r| {
            if r.kind == RTM_NEWLINK {
                raw.push(raw::link(r.payload)?);
                if let RouteNetlinkMessage::NewLink(m) = decode(&r)? {
                    full.push(decode_link(m));
                }
            }
            Ok(())
        })
        .unwrap();
        (raw, full)
    }

    #[test]
    fn raw_link_decode_agrees_with_netlink_packet_route() {
        if !fresh_netns() {
            return;
        }
        populate();
        let mut nl = Nl::open().unwrap();
        let (raw, full) = both_ways(&mut nl, link_dump_request());
        assert_eq!(raw, full);
        // The request without stats yields what the plain one did.
        let (_, plain) = both_ways(
            &mut nl,
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
        );
        assert_eq!(raw, plain);
        assert_eq!(links(&mut nl).unwrap(), plain);

        let by_name = |n: &str| raw.iter().find(|l| l.name == n).unwrap().clone();
        let (br, vx, vx7, va, vb) = (
            by_name("brq-t"),
            by_name("vxlan-100"),
            by_name("vxlan-7"),
            by_name("va"),
            by_name("vb"),
        );
        assert_eq!((br.kind, br.mtu, br.up), (LinkKind::Bridge, 1450, true));
        assert_eq!(vx.master, Some(br.index));
        let vxp = VxlanParams {
            vni: 100,
            local: Some(Ipv4Addr::new(10, 0, 0, 1)),
            dstport: 4789,
        };
        assert_eq!(vx.vxlan, Some(vxp));
        assert_eq!(
            vx7.vxlan.map(|p| (p.vni, p.local, p.dstport)),
            Some((16000000, None, 8472))
        );
        assert_eq!(
            (va.kind.clone(), va.link, va.mtu),
            (LinkKind::Veth, Some(vb.index), 1400)
        );
        assert_eq!(va.mac, Some(Mac::new([0xfa, 0x16, 0x3e, 0, 0, 1])));
        assert_eq!(by_name("tap-t").kind, LinkKind::Tun);
        assert_eq!(by_name("lo").kind, LinkKind::Other(String::new()));
    }

    #[test]
    fn raw_fdb_decode_agrees_with_netlink_packet_route() {
        if !fresh_netns() {
            return;
        }
        populate();
        let mut nl = Nl::open().unwrap();
        let mut req = NeighbourMessage::default();
        req.header.family = AddressFamily::Bridge;
        let (mut raw, mut full, mut all) = (Vec::new(), Vec::new(), 0);
        nl.dump_raw(RouteNetlinkMessage::GetNeighbour(req), |r| {
            if r.kind == RTM_NEWNEIGH {
                all += 1;
                raw.extend(raw::fdb(r.payload)?);
                if let RouteNetlinkMessage::NewNeighbour(m) = decode(&r)? {
                    full.extend(decode_fdb(&m));
                }
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(raw, full);
        assert_eq!(raw.len(), 3, "{raw:?}");
        assert!(all > raw.len(), "master and local entries are left out");
        // Filtered per device by the kernel: the same entries.
        let devices = raw.iter().map(|e| e.ifindex).collect();
        let mut streamed = Vec::new();
        fdb(&mut nl, &devices, |e| streamed.push(e)).unwrap();
        assert_eq!(streamed, raw);
        let mut none = Vec::new();
        fdb(&mut nl, &[1].into(), |e| none.push(e)).unwrap();
        assert_eq!(none, []);
    }
}
