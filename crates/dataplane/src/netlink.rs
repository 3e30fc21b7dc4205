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

/// What an op concerns: an op on an object whose creation (or removal)
/// failed earlier in the same apply is skipped, and a failure names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Object {
    /// A link in the agent's namespace.
    Link(String),
    Namespace(String),
    /// A link inside a namespace.
    NsLink {
        namespace: String,
        link: String,
    },
}

impl std::fmt::Display for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Object::Link(l) => write!(f, "link {l}"),
            Object::Namespace(n) => write!(f, "namespace {n}"),
            Object::NsLink { namespace, link } => write!(f, "link {link} in {namespace}"),
        }
    }
}

/// `ops[index]` failed; it concerns `object`.
#[derive(Debug, thiserror::Error)]
#[error("{object}: op #{index} {op:?} failed: {source}")]
pub struct ApplyError {
    pub index: usize,
    /// Boxed to keep the list small.
    pub op: Box<Op>,
    pub object: Object,
    #[source]
    pub source: HostError,
}

/// Every op that failed, and those skipped because they depend on one that
/// failed (or on an object the caller held back). Everything else took effect.
#[derive(Debug, Default, thiserror::Error)]
#[error("{}", describe(.failed, .skipped))]
pub struct ApplyErrors {
    pub failed: Vec<ApplyError>,
    /// (index, the object it waited for)
    pub skipped: Vec<(usize, Object)>,
}

fn describe(failed: &[ApplyError], skipped: &[(usize, Object)]) -> String {
    let mut parts: Vec<String> = failed.iter().map(|e| e.to_string()).collect();
    if !skipped.is_empty() {
        parts.push(format!("{} dependent ops skipped", skipped.len()));
    }
    parts.join("; ")
}

impl Op {
    /// The objects this op works on, the one it is about first. It depends
    /// on every one of them.
    pub fn objects(&self) -> Vec<Object> {
        let link = |l: &str| Object::Link(l.to_owned());
        let ns = |n: &str| Object::Namespace(n.to_owned());
        let ns_link = |n: &str, l: &str| Object::NsLink {
            namespace: n.to_owned(),
            link: l.to_owned(),
        };
        match self {
            Op::CreateNamespace { name } | Op::DeleteNamespace { name } => vec![ns(name)],
            Op::CreateBridge { name, .. }
            | Op::CreateVxlan { name, .. }
            | Op::DeleteLink { name } => vec![link(name)],
            Op::CreateVethIntoNs {
                host_side,
                ns_side,
                namespace,
                ..
            } => vec![link(host_side), ns_link(namespace, ns_side), ns(namespace)],
            Op::SetMaster { link: l, master } => vec![link(l), link(master)],
            Op::NoMaster { link: l } | Op::SetMtu { link: l, .. } | Op::SetUp { link: l } => {
                vec![link(l)]
            }
            Op::AddFdb { dev, .. } | Op::DelFdb { dev, .. } => vec![link(dev)],
            Op::NsDeleteLink { namespace, link }
            | Op::NsSetMtu {
                namespace, link, ..
            }
            | Op::NsSetMac {
                namespace, link, ..
            }
            | Op::NsSetUp { namespace, link }
            | Op::NsAddAddr {
                namespace, link, ..
            }
            | Op::NsDelAddr {
                namespace, link, ..
            } => vec![ns_link(namespace, link), ns(namespace)],
            Op::NsSetForwarding { namespace, .. }
            | Op::NsAddRoute { namespace, .. }
            | Op::NsDelRoute { namespace, .. } => vec![ns(namespace)],
        }
    }

    /// Whether later ops on this op's objects depend on it succeeding: it
    /// creates or removes them (a name not freed cannot be created again).
    /// A failed attribute change (MTU, master, address) holds back nothing.
    /// What later ops cannot use when this one failed or was skipped: the
    /// objects it creates or removes. A veth's namespace is not its to break
    /// (the namespace's other legs and routes still converge).
    fn left_unbuilt(&self) -> Vec<Object> {
        if !self.others_depend() {
            return Vec::new();
        }
        let mut objects = self.objects();
        if matches!(self, Op::CreateVethIntoNs { .. }) {
            objects.retain(|o| !matches!(o, Object::Namespace(_)));
        }
        objects
    }

    fn others_depend(&self) -> bool {
        matches!(
            self,
            Op::CreateNamespace { .. }
                | Op::CreateBridge { .. }
                | Op::CreateVxlan { .. }
                | Op::CreateVethIntoNs { .. }
                | Op::DeleteLink { .. }
                | Op::NsDeleteLink { .. }
        )
    }
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

    /// Apply ops in order, every one it can: an op that fails is reported
    /// and the ops after it still run, except those on an object whose
    /// creation or removal failed (enslaving to a bridge that could not be
    /// created, bringing up a vxlan device that does not exist), which are
    /// skipped. Deleting what is already gone counts as success, so a
    /// retried plan converges.
    pub fn apply(&self, ops: &[Op]) -> Result<(), ApplyErrors> {
        self.apply_holding(ops, &BTreeSet::new())
    }

    /// [`Host::apply`], skipping from the start every op on a `held` object
    /// (one whose retries the caller is backing off).
    pub fn apply_holding(&self, ops: &[Op], held: &BTreeSet<Object>) -> Result<(), ApplyErrors> {
        let mut nl = None;
        let mut broken: BTreeSet<Object> = held.clone();
        let mut errors = ApplyErrors::default();
        for (index, op) in ops.iter().enumerate() {
            let objects = op.objects();
            let Some(object) = objects.first().cloned() else {
                continue;
            };
            if let Some(o) = objects.iter().find(|o| broken.contains(*o)) {
                errors.skipped.push((index, o.clone()));
                // Its own objects are not built either.
                broken.extend(op.left_unbuilt());
                continue;
            }
            let res = (|| -> Result<(), HostError> {
                let nl = match &mut nl {
                    Some(nl) => nl,
                    None => nl.insert(Nl::open()?),
                };
                apply_one(nl, op)
            })();
            if let Err(source) = res {
                broken.extend(op.left_unbuilt());
                errors.failed.push(ApplyError {
                    index,
                    op: Box::new(op.clone()),
                    object,
                    source,
                });
            }
        }
        if errors.failed.is_empty() && errors.skipped.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
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
