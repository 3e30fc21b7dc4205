//! The host agent: follows the server's feed for this host and makes the host
//! match it (bridges, VXLAN, DHCP), reporting back what it wired.
//!
//! Where things go: `client` talks to the server, `view` keeps this host's
//! slice of the model, `desired` turns it into what the host should have,
//! `reconcile` runs the model loop (settling DHCP ports and gateways with the
//! server, feeding the DHCP driver), `host` is the host step that makes the
//! kernel match (through `neutrino-dataplane`: firewall, links, routers' NAT,
//! then port statuses), `problem` names what does not converge, `dhcp` runs
//! the DHCP driver, `metrics` serves `/metrics` and `/status`.

pub mod client;
pub mod config;
pub mod desired;
pub mod dhcp;
pub mod firewall;
pub mod host;
pub mod l3;
pub mod metadata;
pub mod metrics;
pub mod problem;
pub mod reconcile;
pub mod status;
pub mod view;
pub mod vif;
