//! neutrino-dhcp: a native DHCPv4 server for reservations only.
//!
//! The controller (IPAM) decides every address; this crate only hands out the
//! reservation it is given for a MAC (nova-network FlatDHCP / Neutron style).
//! There is no dynamic pool and no lease database: a restart loses nothing.
//!
//! Everything but [`socket`] is pure so that it can be unit-tested, fuzzed and
//! benchmarked without a network namespace.
//!
//! Typical use by the host agent:
//!
//! ```no_run
//! # async fn run(reservations: Vec<neutrino_dhcp::Reservation>) -> std::io::Result<()> {
//! use std::sync::Arc;
//! use arc_swap::ArcSwap;
//! use neutrino_dhcp::{Stats, Table, bind_dhcp_socket, serve};
//!
//! // On a thread inside the network's namespace:
//! let sock = bind_dhcp_socket("tap-dhcp0")?;
//! let table = Arc::new(ArcSwap::from_pointee(Table::new(reservations)));
//! let stats = Arc::new(Stats::new());
//! let (stop, stop_rx) = tokio::sync::watch::channel(false);
//! let task = tokio::spawn(serve(
//!     tokio::net::UdpSocket::from_std(sock)?,
//!     table.clone(),
//!     stats.clone(),
//!     stop_rx,
//! ));
//! // When the feed changes: table.store(Arc::new(Table::new(new_reservations)));
//! // Extra options come from `options::parse_extras(port.extra_dhcp_opts...)`.
//! let _ = stop.send(true);
//! let _ = task.await;
//! # Ok(()) }
//! ```

pub mod codec;
pub mod options;
pub mod server;
pub mod socket;
pub mod stats;
pub mod table;

pub use codec::{DecodeError, Header, Message, MessageType};
pub use neutrino_net::{Ipv4Net, Mac};
pub use options::{ExtraOption, OptionError, parse_extra, parse_extras};
pub use server::{DropReason, Outcome, ReplyKind, ServeConfig, handle, handle_with};
pub use socket::{bind_dhcp_socket, bind_udp_socket, serve, serve_with};
pub use stats::Stats;
pub use table::{Reservation, SubnetParams, Table};
