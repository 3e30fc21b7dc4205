//! The host on Linux, as the Neutrino agent programs it: links (bridges,
//! VXLAN devices, taps, veths) and the namespaces of DHCP ports and routers
//! with their addresses and routes, planned from desired vs observed state
//! (`plan`, pure) and applied over rtnetlink (`netlink`; sync, call from
//! tokio via `spawn_blocking`); security groups, anti-spoofing and the
//! routers' NAT on nftables (`firewall`).

pub mod firewall;
pub mod model;
pub mod netlink;
pub mod netns;
pub mod plan;
pub mod plug;
mod raw;
mod rtnl;
mod socket;
pub mod watch;

pub use model::{
    Bridge, DesiredHost, FdbEntry, LinkKind, Mac, NsEndpoint, NsLink, NsRoute, NsRouting,
    ObservedHost, ObservedLink, ObservedNamespace, Ownership, Uplink, Vxlan, VxlanParams,
};
pub use netlink::{ApplyError, ApplyErrors, Host, HostError, Object};
pub use plan::{Op, plan};
pub use plug::{PlugError, plug_veth, unplug};
pub use socket::SocketError;
