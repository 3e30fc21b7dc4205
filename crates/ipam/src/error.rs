//! The one error type of the crate.
//!
//! Every variant maps onto a Neutron exception so the API layer can render the
//! `{"NeutronError": {"type", "message", "detail"}}` body without knowing IPAM
//! internals: [`IpamError::neutron_type`] gives the `type`, the `Display` text
//! gives the `message` (worded like Neutron's so clients that grep messages keep
//! working), and [`IpamError::http_status`] the status code.

/// Why an IPAM operation or validation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    /// Address text rejected by the strict validator; `message` is neutron-lib's
    /// wording (e.g. "'010.0.0.1' is not an accepted IP address, '10.0.0.1' is recommended").
    #[error("Invalid input for operation: {message}.")]
    InvalidAddress { message: String },

    /// CIDR text rejected (missing '/', bad prefix, bad address).
    #[error("Invalid input for operation: {message}.")]
    InvalidCidr { message: String },

    /// A pool whose start is after its end or whose family differs from the subnet's.
    #[error("The allocation pool {pool} is not valid.")]
    InvalidAllocationPool { pool: String },

    /// A pool reaching outside the subnet's usable range.
    #[error("The allocation pool {pool} spans beyond the subnet cidr {subnet_cidr}.")]
    OutOfBoundsAllocationPool { pool: String, subnet_cidr: String },

    /// Two pools sharing at least one address.
    #[error("Found overlapping allocation pools: {pool_1} {pool_2} for subnet {subnet_cidr}.")]
    OverlappingAllocationPools {
        pool_1: String,
        pool_2: String,
        subnet_cidr: String,
    },

    /// The gateway lies inside a pool, so a port could be handed the router's address.
    #[error("Gateway ip {ip_address} conflicts with allocation pool {pool}.")]
    GatewayConflictWithAllocationPools { pool: String, ip_address: String },

    /// Gateway of the wrong family, or the IPv4 network/broadcast address.
    #[error("Invalid input for operation: {message}.")]
    InvalidGateway { message: String },

    /// The requested address is held by another port.
    #[error("IP address {ip} already allocated in subnet {subnet_id}")]
    InUse { ip: String, subnet_id: String },

    /// No free address is left in the subnet's pools.
    #[error("No more IP addresses available for subnet {subnet_id}.")]
    Exhausted { subnet_id: String },

    /// The requested address is not an assignable address of the subnet.
    #[error("IP address {ip} is not a valid IP for the specified subnet.")]
    NotInSubnet { ip: String, subnet_id: String },

    /// The IPAM does not know the subnet.
    #[error("Subnet {subnet_id} could not be found.")]
    UnknownSubnet { subnet_id: String },

    /// `add_subnet` for an id the IPAM already manages; replacing it silently
    /// would forget every allocation, so it is refused.
    #[error("Subnet {subnet_id} is already managed by the IPAM.")]
    SubnetExists { subnet_id: String },

    /// EUI-64 needs an IPv6 /64 prefix.
    #[error(
        "Invalid input for operation: Invalid CIDR {cidr} for IPv6 address mode. \
         OpenStack uses the EUI-64 address format, which requires the prefix to be /64."
    )]
    NotSlaacPrefix { cidr: String },
}

impl IpamError {
    /// The Neutron exception class name clients see as `NeutronError.type`.
    /// Terraform and gophercloud branch on these names (e.g. retrying another
    /// subnet on `IpAddressGenerationFailure`), so they must match Neutron's.
    pub fn neutron_type(&self) -> &'static str {
        match self {
            Self::InvalidAddress { .. }
            | Self::InvalidCidr { .. }
            | Self::InvalidGateway { .. }
            | Self::NotSlaacPrefix { .. } => "InvalidInput",
            Self::InvalidAllocationPool { .. } => "InvalidAllocationPool",
            Self::OutOfBoundsAllocationPool { .. } => "OutOfBoundsAllocationPool",
            Self::OverlappingAllocationPools { .. } => "OverlappingAllocationPools",
            Self::GatewayConflictWithAllocationPools { .. } => "GatewayConflictWithAllocationPools",
            Self::InUse { .. } => "IpAddressAlreadyAllocated",
            Self::Exhausted { .. } => "IpAddressGenerationFailure",
            Self::NotInSubnet { .. } => "InvalidIpForSubnet",
            Self::UnknownSubnet { .. } => "SubnetNotFound",
            Self::SubnetExists { .. } => "Conflict",
        }
    }

    /// The HTTP status Neutron answers with for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::InUse { .. }
            | Self::Exhausted { .. }
            | Self::OverlappingAllocationPools { .. }
            | Self::GatewayConflictWithAllocationPools { .. }
            | Self::SubnetExists { .. } => 409,
            Self::UnknownSubnet { .. } => 404,
            Self::InvalidAddress { .. }
            | Self::InvalidCidr { .. }
            | Self::InvalidAllocationPool { .. }
            | Self::OutOfBoundsAllocationPool { .. }
            | Self::InvalidGateway { .. }
            | Self::NotInSubnet { .. }
            | Self::NotSlaacPrefix { .. } => 400,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_use_message_and_status_match_neutron() {
        let e = IpamError::InUse {
            ip: "10.0.0.5".into(),
            subnet_id: "s1".into(),
        };
        assert_eq!(
            e.to_string(),
            "IP address 10.0.0.5 already allocated in subnet s1"
        );
        assert_eq!(e.neutron_type(), "IpAddressAlreadyAllocated");
        assert_eq!(e.http_status(), 409);
    }

    #[test]
    fn statuses_per_kind() {
        let exhausted = IpamError::Exhausted {
            subnet_id: "s".into(),
        };
        assert_eq!(
            (exhausted.neutron_type(), exhausted.http_status()),
            ("IpAddressGenerationFailure", 409)
        );
        let unknown = IpamError::UnknownSubnet {
            subnet_id: "s".into(),
        };
        assert_eq!(unknown.http_status(), 404);
        let not_in = IpamError::NotInSubnet {
            ip: "1.2.3.4".into(),
            subnet_id: "s".into(),
        };
        assert_eq!(
            (not_in.neutron_type(), not_in.http_status()),
            ("InvalidIpForSubnet", 400)
        );
        let bad = IpamError::InvalidAddress {
            message: "'x' is not a valid IP address".into(),
        };
        assert_eq!(
            bad.to_string(),
            "Invalid input for operation: 'x' is not a valid IP address."
        );
        assert_eq!(
            (bad.neutron_type(), bad.http_status()),
            ("InvalidInput", 400)
        );
    }
}
