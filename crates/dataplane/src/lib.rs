//! L2 host state on Linux for the Neutrino agent: compute a plan from desired
//! vs observed state (pure) and apply it over rtnetlink (sync; call from
//! tokio via `spawn_blocking`).

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
pub use netlink::{ApplyError, Host, HostError};
pub use plan::{Op, plan};
pub use plug::{PlugError, plug_veth, unplug};
pub use socket::SocketError;
