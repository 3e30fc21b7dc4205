//! Observe the kernel and apply plans, synchronously over rtnetlink.
//!
//! Sync on purpose: calls block on netlink and namespace work happens on
//! dedicated threads, so from tokio call these via `spawn_blocking` (whose
//! threads stay in the agent's own namespace: nothing here ever `setns`es
//! the calling thread).

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{
    FdbEntry, LinkKind, NsLink, ObservedHost, ObservedLink, ObservedNamespace, Ownership,
};
use crate::netns::{self, NetnsError};
use crate::plan::Op;
use crate::rtnl::{self, RawLink};
use crate::socket::{Nl, SocketError};

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(transparent)]
    Netlink(#[from] SocketError),
    #[error(transparent)]
    Netns(#[from] NetnsError),
}

/// Apply stopped at `ops[index]`; earlier ops took effect.
#[derive(Debug, thiserror::Error)]
#[error("op #{index} {op:?} failed: {source}")]
pub struct ApplyError {
    pub index: usize,
    /// Boxed to keep `Result<(), ApplyError>` small.
    pub op: Box<Op>,
    #[source]
    pub source: HostError,
}

/// The host's L2 state in the namespace of the calling thread.
#[derive(Debug, Default, Clone)]
pub struct Host {}

fn is_errno(e: &SocketError, errno: i32) -> bool {
    e.errno() == Some(errno)
}

/// Links and addresses of one namespace, read from inside it.
fn observe_namespace(name: &str) -> Result<ObservedNamespace, HostError> {
    netns::run_in(name, || -> Result<ObservedNamespace, HostError> {
        let mut nl = Nl::open()?;
        let raw = rtnl::links(&mut nl)?;
        let addrs = rtnl::addrs(&mut nl)?;
        let mut ns = ObservedNamespace::default();
        for l in raw {
            let link = NsLink {
                addrs: addrs
                    .iter()
                    .filter(|a| a.0 == l.index)
                    .map(|a| (a.1, a.2))
                    .collect(),
                peer_index: if l.kind == LinkKind::Veth {
                    l.link
                } else {
                    None
                },
                name: l.name.clone(),
                index: l.index,
                mtu: l.mtu,
                up: l.up,
                mac: l.mac,
            };
            ns.links.insert(l.name, link);
        }
        ns.routes = rtnl::routes(&mut nl)?.into_iter().collect();
        ns.forwarding =
            std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").is_ok_and(|v| v.trim() == "1");
        Ok(ns)
    })?
}

impl Host {
    pub fn new() -> Self {
        Host {}
    }

    /// Read links, FDB of owned vxlan devices and owned namespaces.
    pub fn observe(&self, own: &Ownership) -> Result<ObservedHost, HostError> {
        let mut nl = Nl::open()?;
        let raw = rtnl::links(&mut nl)?;
        let by_index: BTreeMap<u32, &RawLink> = raw.iter().map(|l| (l.index, l)).collect();

        let mut namespaces = BTreeMap::new();
        for name in netns::list()? {
            if own.owns_namespace(&name) {
                match observe_namespace(&name) {
                    Ok(ns) => {
                        namespaces.insert(name, ns);
                    }
                    // Deleted between list and open: simply not there.
                    Err(HostError::Netns(NetnsError::NotFound(_))) => {}
                    Err(e) => return Err(e),
                }
            }
        }

        // A host veth is owned when its peer sits in an owned namespace; both
        // sides must point at each other (ifindexes are per namespace).
        let mut peers: BTreeMap<u32, (String, String)> = BTreeMap::new();
        for (ns_name, ns) in &namespaces {
            for l in ns.links.values() {
                let Some(p) = l.peer_index else { continue };
                if by_index
                    .get(&p)
                    .is_some_and(|h| h.kind == LinkKind::Veth && h.link == Some(l.index))
                {
                    peers.insert(p, (ns_name.clone(), l.name.clone()));
                }
            }
        }

        let mut links = BTreeMap::new();
        for l in &raw {
            links.insert(
                l.name.clone(),
                ObservedLink {
                    name: l.name.clone(),
                    index: l.index,
                    kind: l.kind.clone(),
                    master: l
                        .master
                        .and_then(|m| by_index.get(&m))
                        .map(|m| m.name.clone()),
                    mtu: l.mtu,
                    up: l.up,
                    mac: l.mac,
                    vxlan: l.vxlan,
                    peer: peers.get(&l.index).cloned(),
                },
            );
        }

        let owned_vxlan: BTreeMap<u32, &str> = raw
            .iter()
            .filter(|l| l.kind == LinkKind::Vxlan && neutrino_net::names::is_vxlan(&l.name))
            .map(|l| (l.index, l.name.as_str()))
            .collect();
        let mut fdb: BTreeMap<String, BTreeSet<FdbEntry>> = BTreeMap::new();
        if !owned_vxlan.is_empty() {
            let devices = owned_vxlan.keys().copied().collect();
            rtnl::fdb(&mut nl, &devices, |e| {
                if let Some(dev) = owned_vxlan.get(&e.ifindex) {
                    fdb.entry((*dev).to_owned()).or_default().insert(FdbEntry {
                        mac: e.mac,
                        dst: e.dst,
                    });
                }
            })?;
        }
        Ok(ObservedHost {
            links,
            fdb,
            namespaces,
        })
    }

    /// Apply ops in order, stopping at the first failure. Deleting what is
    /// already gone counts as success, so a retried plan converges.
    pub fn apply(&self, ops: &[Op]) -> Result<(), ApplyError> {
        let mut nl = None;
        for (index, op) in ops.iter().enumerate() {
            let res = (|| -> Result<(), HostError> {
                let nl = match &mut nl {
                    Some(nl) => nl,
                    None => nl.insert(Nl::open()?),
                };
                apply_one(nl, op)
            })();
            res.map_err(|source| ApplyError {
                index,
                op: Box::new(op.clone()),
                source,
            })?;
        }
        Ok(())
    }
}

fn apply_one(nl: &mut Nl, op: &Op) -> Result<(), HostError> {
    use nix::libc::{EADDRNOTAVAIL, ENODEV, ENOENT, ESRCH};
    match op {
        Op::CreateNamespace { name } => netns::create(name)?,
        Op::DeleteNamespace { name } => netns::delete(name)?,
        Op::CreateBridge { name, mtu } => rtnl::create_bridge(nl, name, *mtu)?,
        Op::CreateVxlan {
            name,
            vni,
            local,
            dstport,
            mtu,
        } => rtnl::create_vxlan(nl, name, *vni, *local, *dstport, *mtu)?,
        Op::CreateVethIntoNs {
            host_side,
            ns_side,
            namespace,
            mac,
            mtu,
        } => {
            let ns = netns::open(namespace)?;
            rtnl::create_veth_into(nl, host_side, ns_side, &ns, *mac, *mtu)?
        }
        Op::DeleteLink { name } => match rtnl::delete_link(nl, name) {
            Err(e) if is_errno(&e, ENODEV) => {}
            r => r?,
        },
        Op::SetMaster { link, master } => {
            let m = rtnl::index_of(nl, master)?;
            rtnl::set_master_index(nl, link, m)?
        }
        Op::NoMaster { link } => rtnl::set_master_index(nl, link, 0)?,
        Op::SetMtu { link, mtu } => rtnl::set_mtu(nl, link, *mtu)?,
        Op::SetUp { link } => rtnl::set_up(nl, link)?,
        Op::AddFdb { dev, mac, dst } => {
            let i = rtnl::index_of(nl, dev)?;
            rtnl::fdb_add(nl, i, *mac, *dst)?
        }
        Op::DelFdb { dev, mac, dst } => {
            let i = rtnl::index_of(nl, dev)?;
            match rtnl::fdb_del(nl, i, *mac, *dst) {
                Err(e) if is_errno(&e, ENOENT) => {}
                r => r?,
            }
        }
        Op::NsDeleteLink { namespace, link } => {
            in_ns(namespace, |nl| match rtnl::delete_link(nl, link) {
                Err(e) if is_errno(&e, ENODEV) => Ok(()),
                r => r,
            })?
        }
        Op::NsSetMtu {
            namespace,
            link,
            mtu,
        } => in_ns(namespace, |nl| rtnl::set_mtu(nl, link, *mtu))?,
        Op::NsSetMac {
            namespace,
            link,
            mac,
        } => in_ns(namespace, |nl| rtnl::set_mac(nl, link, *mac))?,
        Op::NsSetUp { namespace, link } => in_ns(namespace, |nl| rtnl::set_up(nl, link))?,
        Op::NsAddAddr {
            namespace,
            link,
            addr,
            prefix,
        } => in_ns(namespace, |nl| {
            let i = rtnl::index_of(nl, link)?;
            rtnl::addr_add(nl, i, *addr, *prefix)
        })?,
        Op::NsDelAddr {
            namespace,
            link,
            addr,
            prefix,
        } => in_ns(namespace, |nl| {
            let i = rtnl::index_of(nl, link)?;
            match rtnl::addr_del(nl, i, *addr, *prefix) {
                Err(e) if is_errno(&e, EADDRNOTAVAIL) => Ok(()),
                r => r,
            }
        })?,
        Op::NsSetForwarding { namespace, on } => in_ns(namespace, |_| set_forwarding(*on))?,
        Op::NsAddRoute { namespace, route } => in_ns(namespace, |nl| rtnl::route_add(nl, route))?,
        Op::NsDelRoute { namespace, route } => {
            in_ns(namespace, |nl| match rtnl::route_del(nl, route) {
                Err(e) if is_errno(&e, ESRCH) => Ok(()),
                r => r,
            })?
        }
    }
    Ok(())
}

/// IPv4 (and IPv6) forwarding of the namespace the thread is in.
fn set_forwarding(on: bool) -> Result<(), SocketError> {
    let v = if on { "1" } else { "0" };
    std::fs::write("/proc/sys/net/ipv4/ip_forward", v).map_err(SocketError::Io)?;
    // Absent when IPv6 is disabled on the host: IPv4 forwarding is what counts.
    let _ = std::fs::write("/proc/sys/net/ipv6/conf/all/forwarding", v);
    Ok(())
}

/// Run netlink work inside a named namespace on a dedicated thread.
pub(crate) fn in_ns<T: Send>(
    namespace: &str,
    f: impl FnOnce(&mut Nl) -> Result<T, SocketError> + Send,
) -> Result<T, HostError> {
    netns::run_in(namespace, || -> Result<T, HostError> {
        let mut nl = Nl::open()?;
        Ok(f(&mut nl)?)
    })?
}
