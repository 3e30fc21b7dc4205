//! Security groups, anti-spoofing and same-network isolation on nftables.
//!
//! Instances sit on Linux bridges, so their frames are filtered in two
//! tables the agent owns, both named `neutrino`:
//!
//! - `bridge neutrino` sees the real bridge ports. Its `pre` chain marks a
//!   frame from a port with port security with that port's number (the
//!   `ports` map) and drops what the port may not send (source MAC, IP and
//!   ARP not its own, DHCP and router-advertisement servers, other
//!   ethertypes). Its `fw` chain re-marks the frame with the number of the
//!   port it leaves by (or 0).
//! - `inet neutrino` sees the same frames through br_netfilter, where
//!   conntrack works (this kernel has no bridge conntrack). `pre` sends a
//!   new connection from a port to the egress chain of its security groups
//!   (`egress`, a verdict map keyed by mark); `fw` sends what goes to a
//!   port to the ingress chain (`ingress`).
//!
//! Ports that share a set of groups share one chain per direction, which
//! jumps to one chain per group; remote groups are address sets. So adding
//! a port is a handful of set elements, and a new member of a remote group
//! is one element: the cost of a change does not grow with the host.
//!
//! The flow: the agent builds a [`FirewallSpec`]; [`render`] turns it into
//! a [`Ruleset`]; [`plan`] diffs that against what the kernel has
//! ([`Observed`], read back with [`nft::observe`] at start) into one nft
//! script, which [`nft::apply`] runs as one transaction. [`apply()`] is the
//! one entry point that chooses how a change is written (delta over
//! netlink, full plan through nft, or a first load).

mod apply;
pub mod cold;
mod delta;
mod model;
mod nat;
pub mod nfnl;
pub mod nft;
mod observe;
mod plan;
mod render;
mod ruleset;

pub use apply::{Applied, ApplyError, Path, apply};
pub use delta::{Touched, plan_delta};
pub use model::{Cidr, Direction, FirewallSpec, GroupFilter, PortFilter, Remote, Rule};
pub use nat::{RouterNat, render_nat};
pub use observe::{ObserveError, Observed};
pub use plan::{Plan, plan};
pub use render::{link_local, render, rule_text};
pub use ruleset::{Chain, Elem, Family, Part, Ruleset, Set, TABLE, Value};

#[cfg(test)]
mod tests;
