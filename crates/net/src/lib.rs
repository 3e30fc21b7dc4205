//! The network value types every other crate shares: [`Mac`], the IP prefix
//! types [`Cidr`] and [`Ipv4Net`] with the strict address parser, and
//! [`names`], the host object names the agent creates and recognises, and
//! [`dns`], the rules of DNS names the API takes.
//!
//! There is one copy of each rule here on purpose: if the server normalised a
//! MAC one way and the agent parsed it another, or if the agent built a
//! bridge name one way and recognised its own bridges another, DHCP,
//! anti-spoofing or cleanup would break with no error anywhere. No I/O and
//! no dependencies (serde only behind the `serde` feature), so the server,
//! IPAM, the DHCP server and the agent can all link it.

pub mod addr;
pub mod cidr;
pub mod dns;
pub mod mac;
pub mod names;

pub use addr::{AddrError, ip_to_u128, parse_ip, u128_to_ip};
pub use cidr::{Cidr, CidrError, Ipv4Net};
pub use mac::{Mac, MacError};
