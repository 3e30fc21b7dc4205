//! neutrino-ipam: the built-in IP address manager, pure (no I/O).
//!
//! Addresses are handled as `u128` ranges so that memory and time never depend
//! on a subnet's size (Neutron's Python driver struggles with large IPv6 pools),
//! and all state lives in `imbl` persistent collections so the engine can
//! snapshot the whole manager in O(1) per commit.

pub mod addr;
pub mod builtin;
pub mod error;
pub mod eui64;
pub mod free_ranges;
pub mod subnet_plan;

pub use addr::{AddrRange, Cidr, ip_to_u128, parse_ip, u128_to_ip};
pub use builtin::{AddressRequest, BuiltinIpam, Ipam, SubnetAllocations};
pub use error::IpamError;
pub use eui64::eui64;
pub use free_ranges::FreeRanges;
pub use neutrino_net::Mac;
pub use subnet_plan::{
    default_gateway, default_pools, pools_to_strings, usable_range, validate_gateway,
    validate_pools,
};
