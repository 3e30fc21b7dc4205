//! What a hypervisor does for a VM NIC, for `neutrino vif plug` and tests:
//! a veth pair with the "guest" end inside a namespace.

use crate::model::{LinkKind, Mac};
use crate::netlink::{HostError, in_ns};
use crate::netns;
use crate::rtnl;
use crate::socket::Nl;

#[derive(Debug, thiserror::Error)]
pub enum PlugError {
    #[error("plug {host_side}: {source}")]
    Host {
        host_side: String,
        source: HostError,
    },
}

/// Create (or repair) a veth pair: `host_side` here, `ns_ifname` inside
/// `namespace` with `mac` and `mtu`; both ends up. The peer is created
/// directly inside the namespace under its final name, which is what "move
/// and rename" achieves without a window where it exists here. Idempotent.
pub fn plug_veth(
    host_side: &str,
    namespace: &str,
    ns_ifname: &str,
    mac: Mac,
    mtu: u32,
) -> Result<(), PlugError> {
    plug_inner(host_side, namespace, ns_ifname, mac, mtu).map_err(|source| PlugError::Host {
        host_side: host_side.to_owned(),
        source,
    })
}

fn plug_inner(
    host_side: &str,
    namespace: &str,
    ns_ifname: &str,
    mac: Mac,
    mtu: u32,
) -> Result<(), HostError> {
    let mut nl = Nl::open()?;
    let host = rtnl::links(&mut nl)?
        .into_iter()
        .find(|l| l.name == host_side);
    let inner = in_ns(namespace, |nl| {
        Ok(rtnl::links(nl)?.into_iter().find(|l| l.name == ns_ifname))
    })?;
    let paired = match (&host, &inner) {
        (Some(h), Some(i)) => {
            h.kind == LinkKind::Veth && h.link == Some(i.index) && i.link == Some(h.index)
        }
        _ => false,
    };
    if !paired {
        if host.is_some() {
            rtnl::delete_link(&mut nl, host_side)?;
        }
        if inner.is_some() {
            in_ns(namespace, |nl| rtnl::delete_link(nl, ns_ifname))?;
        }
        let ns = netns::open(namespace)?;
        rtnl::create_veth_into(&mut nl, host_side, ns_ifname, &ns, mac, mtu)?;
    } else if host.as_ref().is_some_and(|h| h.mtu != mtu) {
        rtnl::set_mtu(&mut nl, host_side, mtu)?;
    }
    rtnl::set_up(&mut nl, host_side)?;
    in_ns(namespace, |nl| {
        if let Some(i) = inner.as_ref().filter(|_| paired) {
            if i.mtu != mtu {
                rtnl::set_mtu(nl, ns_ifname, mtu)?;
            }
            if i.mac != Some(mac) {
                rtnl::set_mac(nl, ns_ifname, mac)?;
            }
        }
        rtnl::set_up(nl, "lo")?;
        rtnl::set_up(nl, ns_ifname)
    })?;
    Ok(())
}

/// Delete the pair by its host side. Missing is fine.
pub fn unplug(host_side: &str) -> Result<(), PlugError> {
    let res = (|| -> Result<(), HostError> {
        let mut nl = Nl::open()?;
        match rtnl::delete_link(&mut nl, host_side) {
            Err(e) if e.errno() == Some(nix::libc::ENODEV) => Ok(()),
            r => Ok(r?),
        }
    })();
    res.map_err(|source| PlugError::Host {
        host_side: host_side.to_owned(),
        source,
    })
}
