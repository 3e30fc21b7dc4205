//! Subnets: CIDR, gateway and pool defaults and checks (Neutron's rules, via
//! the IPAM crate), DNS servers and host routes, IPv6 modes, and the
//! in-use rules on delete.

use std::net::IpAddr;
use std::sync::Arc;

use neutrino_ipam::{AddressRequest, Cidr, Ipam, IpamError, Mac, eui64, parse_ip, subnet_plan};
use neutrino_model::body::{Body, item_str};
use neutrino_model::query::{AttrValue as V, FilterType as T};
use neutrino_model::{
    AllocationPool, ApiError, ApiResult, AuthContext, FixedIp, HostRoute, Network,
    OWNER_ROUTER_INTERFACE, Subnet,
};
use serde_json::Value;

use super::networks::is_auto_delete_owner;
use super::{check_quota, ipam_error, new_id, new_std, touch};
use crate::resource::{Attr, Resource, opt_str, put_json};
use crate::state::{pool_objects, pool_pairs};
use crate::txn::Txn;
use crate::{Engine, State, policy};

type A = Attr<Subnet>;

fn network_of<'s>(s: &Subnet, state: &'s State) -> Option<&'s Arc<Network>> {
    state.networks.get(&s.network_id)
}

impl Resource for Subnet {
    const SINGULAR: &'static str = "subnet";
    const PLURAL: &'static str = "subnets";
    const PATH: &'static str = "subnets";
    const ATTRS: &'static [A] = &[
        A::value("id", |s| V::Str(&s.id)).filter(T::Str).sort(),
        A::value("name", |s| V::Str(&s.name))
            .set()
            .filter(T::Str)
            .sort(),
        A::value("network_id", |s| V::Str(&s.network_id))
            .post()
            .filter(T::Str)
            .sort(),
        A::value("ip_version", |s| V::Int(s.ip_version.into()))
            .post()
            .filter(T::Int)
            .sort(),
        A::value("cidr", |s| V::Str(&s.cidr))
            .post()
            .filter(T::Str)
            .sort(),
        A::value("gateway_ip", |s| opt_str(&s.gateway_ip))
            .set()
            .filter(T::Str)
            .sort(),
        A::json("allocation_pools", |s, _, out| {
            put_json(out, &s.allocation_pools)
        })
        .set(),
        A::json("dns_nameservers", |s, _, out| {
            put_json(out, &s.dns_nameservers)
        })
        .set(),
        A::json("host_routes", |s, _, out| put_json(out, &s.host_routes)).set(),
        A::value("enable_dhcp", |s| V::Bool(s.enable_dhcp))
            .set()
            .filter(T::Bool)
            .sort(),
        A::value("ipv6_ra_mode", |s| opt_str(&s.ipv6_ra_mode))
            .post()
            .filter(T::Str),
        A::value("ipv6_address_mode", |s| opt_str(&s.ipv6_address_mode))
            .post()
            .filter(T::Str),
        // Subnet pools are not implemented: always null.
        A::value("subnetpool_id", |_| V::Null).post().filter(T::Str),
        A::request("use_default_subnetpool").post(),
        A::request("prefixlen").post(),
        // Its network's flags: shown (router:external) or only filtered on
        // (shared), as Neutron does.
        A::derived("router:external", |s, state| {
            V::Bool(network_of(s, state).is_some_and(|n| n.router_external))
        })
        .filter(T::Bool),
        A::derived("shared", |s, state| {
            V::Bool(network_of(s, state).is_some_and(|n| n.shared))
        })
        .filter(T::Bool)
        .hidden(),
    ];
    type Update = Common;

    fn all(state: &State) -> &imbl::OrdMap<String, Arc<Subnet>> {
        &state.subnets
    }
    fn visible(ctx: &AuthContext, state: &State, s: &Subnet) -> bool {
        policy::can_see_subnet(ctx, state, s)
    }
    fn not_found(id: &str) -> ApiError {
        ApiError::not_found("SubnetNotFound", format!("Subnet {id} could not be found."))
    }
    fn put(txn: &mut Txn<'_>, s: Subnet) -> ApiResult<()> {
        txn.put_subnet(s).map_err(ApiError::from)
    }

    type Create = NewSubnet;

    fn parse_create(engine: &Engine, ctx: &AuthContext, b: Body) -> ApiResult<NewSubnet> {
        let cfg = engine.config();
        let (max_dns, max_routes) = (cfg.max_dns_nameservers, cfg.max_subnet_host_routes);
        let network_id = b.uuid("network_id")?;
        b.required("network_id")?;
        b.required("ip_version")?;
        let version = b.int("ip_version", i64::MIN, i64::MAX)?.flatten();
        let version = match version {
            Some(4) => 4u8,
            Some(6) => 6,
            other => {
                return Err(ApiError::invalid_attr(
                    "ip_version",
                    format!("'{}' is not in [4, 6]", other.unwrap_or(0)),
                ));
            }
        };
        if b.raw("subnetpool_id").is_some_and(|v| !v.is_null())
            || b.bool("use_default_subnetpool")? == Some(true)
        {
            return Err(ApiError::bad_request(
                "Subnet pools are not supported; give a cidr",
            ));
        }
        if b.has("prefixlen") {
            return Err(ApiError::bad_request(
                "prefixlen is only valid with a subnet pool",
            ));
        }
        let Some(cidr_text) = b.string("cidr", 64)? else {
            return Err(ApiError::bad_request(
                "a cidr must be specified in the absence of a subnet pool",
            ));
        };
        let cidr = Cidr::parse(&cidr_text)
            .map_err(|e| ApiError::invalid_attr("cidr", IpamError::from(e)))?;
        if cidr.is_v4() != (version == 4) {
            return Err(ApiError::invalid_input("Cidr and ip_version mismatch"));
        }
        if cidr.prefix() == 0 {
            return Err(ApiError::invalid_input(
                "0 is not allowed as CIDR prefix length",
            ));
        }
        let cidr = cidr.network();
        let mode = |k: &str| -> ApiResult<Option<String>> {
            match b.nullable_string(k, 32)?.flatten() {
                None => Ok(None),
                Some(m) if IPV6_MODES.contains(&m.as_str()) => Ok(Some(m)),
                Some(m) => Err(ApiError::invalid_attr(
                    k,
                    format!("'{m}' is not in {IPV6_MODES:?}"),
                )),
            }
        };
        let (ra_mode, address_mode) = (mode("ipv6_ra_mode")?, mode("ipv6_address_mode")?);
        let common = parse_common(&b, max_dns, max_routes)?;
        if version == 4 && (ra_mode.is_some() || address_mode.is_some()) {
            return Err(ApiError::invalid_input(
                "ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False or ip_version is 4",
            ));
        }
        if let (Some(a), Some(b)) = (&ra_mode, &address_mode)
            && a != b
        {
            return Err(ApiError::invalid_input(format!(
                "ipv6_ra_mode set to '{a}' with ipv6_address_mode set to '{b}' is not valid. If both attributes are set, they must be the same value"
            )));
        }
        let dhcp = common.enable_dhcp.unwrap_or(true);
        if !dhcp && (ra_mode.is_some() || address_mode.is_some()) {
            return Err(ApiError::invalid_input(
                "ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False",
            ));
        }
        let auto = [&ra_mode, &address_mode]
            .iter()
            .any(|m| matches!(m.as_deref(), Some("slaac" | "dhcpv6-stateless")));
        if auto && cidr.prefix() != 64 {
            return Err(ApiError::invalid_input(
                "Invalid CIDR for IPv6 address mode. OpenStack uses the EUI-64 address format, which requires the prefix to be /64",
            ));
        }
        if dhcp && ((version == 4 && cidr.prefix() > 30) || (version == 6 && cidr.prefix() > 126)) {
            return Err(ApiError::invalid_input(
                "The CIDR prefix is too long for DHCP; disable DHCP or use a shorter prefix",
            ));
        }
        Ok(NewSubnet {
            common,
            network_id: network_id.unwrap_or_default(),
            cidr,
            ra_mode,
            address_mode,
            project_id: policy::target_project(
                ctx,
                b.string("project_id", 255)?,
                b.string("tenant_id", 255)?,
            )?,
        })
    }

    fn create_one(txn: &mut Txn<'_>, ctx: &AuthContext, r: NewSubnet) -> ApiResult<Arc<Subnet>> {
        let net = Network::find(txn.state, ctx, &r.network_id)?;
        policy::require_owner(ctx, &net.std.project_id, "create_subnet")?;
        check_quota(txn, &r.project_id, "subnet", 1)?;
        for other in txn.state.subnets_of(&net.id) {
            if Cidr::parse(&other.cidr).is_ok_and(|c| c.overlaps(&r.cidr)) {
                return Err(ApiError::bad_request(format!(
                    "Invalid input for operation: Requested subnet with cidr: {} for network: {} overlaps with another subnet.",
                    r.cidr, net.id
                ))
                .with_type("InvalidInput"));
            }
        }
        check_mtu(&net.id, net.mtu, true, !r.cidr.is_v4())?;
        let (gw, pools) = plan(&r.cidr, r.common.gateway, r.common.pools)?;
        let s = Subnet {
            id: new_id(),
            name: r.common.name.unwrap_or_default(),
            network_id: net.id.clone(),
            ip_version: if r.cidr.is_v4() { 4 } else { 6 },
            cidr: r.cidr.to_string(),
            gateway_ip: gw.map(|g| g.to_string()),
            allocation_pools: pools,
            dns_nameservers: r.common.dns.unwrap_or_default(),
            host_routes: r.common.routes.unwrap_or_default(),
            enable_dhcp: r.common.enable_dhcp.unwrap_or(true),
            ipv6_ra_mode: r.ra_mode,
            ipv6_address_mode: r.address_mode,
            std: new_std(txn, r.project_id, r.common.description),
        };
        txn.put_subnet(s.clone()).map_err(ApiError::from)?;
        revise_network(txn, &s.network_id);
        if net.router_external {
            super::routers::give_gateways_an_address(txn, &s)?;
        }
        // A new auto-address subnet gives every existing port its EUI-64 address.
        if s.is_auto_address() {
            let ports: Vec<_> = txn.state.ports_of(&net.id).cloned().collect();
            for p in ports
                .into_iter()
                .filter(|p| !p.device_owner.starts_with("network:router"))
            {
                let Ok(mac) = p.mac_address.parse::<Mac>() else {
                    continue;
                };
                let ip = IpAddr::V6(eui64(&r.cidr, mac).map_err(ipam_error)?);
                txn.state
                    .ipam
                    .allocate(&s.id, AddressRequest::Specific(ip))
                    .map_err(ipam_error)?;
                let mut p = (*p).clone();
                p.fixed_ips.push(FixedIp {
                    subnet_id: s.id.clone(),
                    ip_address: ip.to_string(),
                });
                super::touch(&mut p.std, txn.now);
                txn.put_port(p);
            }
        }
        Ok(Arc::new(s))
    }

    fn parse_update(engine: &Engine, _: &AuthContext, b: Body) -> ApiResult<Common> {
        let cfg = engine.config();
        parse_common(&b, cfg.max_dns_nameservers, cfg.max_subnet_host_routes)
    }

    fn apply_update(
        txn: &mut Txn<'_>,
        _: &AuthContext,
        cur: &Subnet,
        s: &mut Subnet,
        c: Common,
    ) -> ApiResult<()> {
        let cidr = Cidr::parse(&cur.cidr).map_err(ipam_error)?;
        if let Some(v) = c.name {
            s.name = v;
        }
        if let Some(v) = c.description {
            s.std.description = v;
        }
        if let Some(v) = c.dns {
            s.dns_nameservers = v;
        }
        if let Some(v) = c.routes {
            s.host_routes = v;
        }
        if let Some(v) = c.enable_dhcp {
            if !v && (s.ipv6_ra_mode.is_some() || s.ipv6_address_mode.is_some()) {
                return Err(ApiError::invalid_input(
                    "Cannot disable enable_dhcp with ipv6 attributes set",
                ));
            }
            s.enable_dhcp = v;
        }
        if c.gateway.is_some() || c.pools.is_some() {
            let gw = match c.gateway {
                Some(g) => g,
                None => cur.gateway_ip.as_deref().and_then(|g| parse_ip(g).ok()),
            };
            if let Some(g) = gw {
                subnet_plan::validate_gateway(&cidr, g).map_err(ipam_error)?;
            }
            check_gateway_not_routed(txn, cur, gw)?;
            let pools: Vec<(IpAddr, IpAddr)> = match c.pools {
                Some(p) => p,
                None => pool_pairs(s),
            };
            let ranges = subnet_plan::validate_pools(&cidr, &pools, gw).map_err(ipam_error)?;
            let held: Vec<IpAddr> = txn
                .state
                .ports_of(&s.network_id)
                .flat_map(|p| p.fixed_ips.iter())
                .filter(|f| f.subnet_id == s.id)
                .filter_map(|f| parse_ip(&f.ip_address).ok())
                .collect();
            txn.state
                .ipam
                .update_pools(&s.id, ranges.clone(), &held)
                .map_err(ipam_error)?;
            s.gateway_ip = gw.map(|g| g.to_string());
            s.allocation_pools = pool_objects(&ranges, cidr.is_v4());
        }
        // Neutron revises the network when the subnet's own row changes:
        // not for its description, pools, DNS servers or routes, which live
        // in rows of their own.
        if s.name != cur.name || s.gateway_ip != cur.gateway_ip || s.enable_dhcp != cur.enable_dhcp
        {
            revise_network(txn, &cur.network_id);
        }
        Ok(())
    }

    fn remove(txn: &mut Txn<'_>, _: &AuthContext, cur: Arc<Subnet>) -> ApiResult<()> {
        let id = cur.id.as_str();
        let users: Vec<_> = txn
            .state
            .ports_of(&cur.network_id)
            .filter(|p| p.fixed_ips.iter().any(|f| f.subnet_id == id))
            .cloned()
            .collect();
        let auto = cur.is_auto_address();
        let blocked = users.iter().any(|p| {
            p.device_owner.starts_with("network:router")
                || (!auto && !is_auto_delete_owner(&p.device_owner))
        });
        if blocked {
            return Err(ApiError::conflict(
                "SubnetInUse",
                format!(
                    "Unable to complete operation on subnet {id}: One or more ports have an IP allocation from this subnet."
                ),
            ));
        }
        for p in users {
            let mut p = (*p).clone();
            p.fixed_ips.retain(|f| f.subnet_id != id);
            touch(&mut p.std, txn.now);
            txn.put_port(p);
        }
        txn.delete_subnet(id);
        revise_network(txn, &cur.network_id);
        Ok(())
    }
}

/// The least MTU of a network with any subnet (RFC 791's 68 octets) and
/// with an IPv6 one (RFC 8200's 1280).
pub const IPV4_MIN_MTU: u32 = 68;
pub const IPV6_MIN_MTU: u32 = 1280;

/// Whether a network's MTU carries its subnets (`any` of them, and an IPv6
/// one among them), checked in Neutron's order with its 409.
pub fn check_mtu(network_id: &str, mtu: u32, any: bool, v6: bool) -> ApiResult<()> {
    for (needed, least) in [(any, IPV4_MIN_MTU), (v6, IPV6_MIN_MTU)] {
        if needed && mtu < least {
            return Err(ApiError::conflict(
                "NetworkMTUSubnetConflict",
                format!("MTU of {network_id} is not valid, subnet requires a minimum of {least}"),
            ));
        }
    }
    Ok(())
}

/// A subnet is part of its network's state (its `subnets`): a change to one
/// is a new revision of the network too, as in Neutron.
fn revise_network(txn: &mut Txn<'_>, network_id: &str) {
    if let Some(n) = txn.state.networks.get(network_id) {
        let mut n = (**n).clone();
        touch(&mut n.std, txn.now);
        txn.put_network(n);
    }
}

const IPV6_MODES: &[&str] = &["slaac", "dhcpv6-stateful", "dhcpv6-stateless"];

/// The attributes a create and an update share, checked.
pub struct Common {
    name: Option<String>,
    description: Option<String>,
    gateway: Option<Option<IpAddr>>,
    pools: Option<Vec<(IpAddr, IpAddr)>>,
    dns: Option<Vec<String>>,
    routes: Option<Vec<HostRoute>>,
    enable_dhcp: Option<bool>,
}

fn parse_common(b: &Body, max_dns: usize, max_routes: usize) -> ApiResult<Common> {
    let gateway = match b.raw("gateway_ip") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) => Some(Some(
            parse_ip(s).map_err(|e| ApiError::invalid_attr("gateway_ip", e))?,
        )),
        Some(v) => {
            return Err(ApiError::invalid_attr(
                "gateway_ip",
                format!("'{v}' is not a valid IP address"),
            ));
        }
    };
    let pools = match b.list("allocation_pools")? {
        None => None,
        Some(items) => {
            let mut out = Vec::new();
            for p in items {
                let Value::Object(o) = p else {
                    return Err(ApiError::invalid_attr(
                        "allocation_pools",
                        "Invalid data format for IP pool",
                    ));
                };
                if o.len() != 2 || !o.contains_key("start") || !o.contains_key("end") {
                    return Err(ApiError::invalid_attr(
                        "allocation_pools",
                        "Invalid data format for IP pool: exactly start and end are required",
                    ));
                }
                let ip = |k: &str| -> ApiResult<IpAddr> {
                    let s = item_str("allocation_pools", &o, k)?.unwrap_or_default();
                    parse_ip(&s).map_err(|e| ApiError::invalid_attr("allocation_pools", e))
                };
                out.push((ip("start")?, ip("end")?));
            }
            Some(out)
        }
    };
    let dns = match b.string_list("dns_nameservers", 64)? {
        None => None,
        Some(list) => {
            if list.len() > max_dns {
                return Err(ApiError::bad_request(format!(
                    "Unable to complete operation for subnet. The number of DNS nameservers exceeds the limit {max_dns}."
                ))
                .with_type("DNSNameServersExhausted"));
            }
            let mut out: Vec<String> = Vec::new();
            for s in list {
                let ip = parse_ip(&s)
                    .map_err(|e| ApiError::invalid_attr("dns_nameservers", e))?
                    .to_string();
                if out.contains(&ip) {
                    return Err(ApiError::invalid_attr(
                        "dns_nameservers",
                        format!("Duplicate nameserver '{ip}'"),
                    ));
                }
                out.push(ip);
            }
            Some(out)
        }
    };
    let routes = match b.list("host_routes")? {
        None => None,
        Some(items) => {
            if items.len() > max_routes {
                return Err(ApiError::bad_request(format!(
                    "Unable to complete operation for subnet. The number of host routes exceeds the limit {max_routes}."
                ))
                .with_type("HostRoutesExhausted"));
            }
            Some(parse_routes("host_routes", items)?)
        }
    };
    Ok(Common {
        name: b.name("name")?,
        description: b.string("description", 255)?,
        gateway,
        pools,
        dns,
        routes,
        enable_dhcp: b.bool("enable_dhcp")?,
    })
}

/// A `{destination, nexthop}` list (subnet `host_routes`, router `routes`):
/// exactly those keys, the destination a network address, no duplicates.
pub fn parse_routes(attr: &str, items: Vec<Value>) -> ApiResult<Vec<HostRoute>> {
    let mut out: Vec<HostRoute> = Vec::new();
    for r in items {
        let Value::Object(o) = r else {
            return Err(ApiError::invalid_attr(
                attr,
                "Invalid data format for hostroute",
            ));
        };
        if o.len() != 2 || !o.contains_key("destination") || !o.contains_key("nexthop") {
            return Err(ApiError::invalid_attr(
                attr,
                "Invalid data format for hostroute: exactly destination and nexthop are required",
            ));
        }
        let dest = item_str(attr, &o, "destination")?.unwrap_or_default();
        let c = Cidr::parse(&dest).map_err(|e| ApiError::invalid_attr(attr, IpamError::from(e)))?;
        if !c.is_network() {
            return Err(ApiError::invalid_attr(
                attr,
                format!(
                    "'{dest}' is not a recognized route cidr, '{}' is recommended",
                    c.network()
                ),
            ));
        }
        let hop = item_str(attr, &o, "nexthop")?.unwrap_or_default();
        let hop = parse_ip(&hop).map_err(|e| ApiError::invalid_attr(attr, e))?;
        let route = HostRoute {
            destination: c.to_string(),
            nexthop: hop.to_string(),
        };
        if out.contains(&route) {
            return Err(ApiError::invalid_attr(attr, "Duplicate hostroute"));
        }
        out.push(route);
    }
    Ok(out)
}

pub struct NewSubnet {
    common: Common,
    network_id: String,
    cidr: Cidr,
    ra_mode: Option<String>,
    address_mode: Option<String>,
    project_id: String,
}

/// Gateway and pools: defaults and Neutron's checks.
fn plan(
    cidr: &Cidr,
    gateway: Option<Option<IpAddr>>,
    pools: Option<Vec<(IpAddr, IpAddr)>>,
) -> ApiResult<(Option<IpAddr>, Vec<AllocationPool>)> {
    let gw = match gateway {
        Some(g) => g,
        None => subnet_plan::default_gateway(cidr),
    };
    if let Some(g) = gw {
        subnet_plan::validate_gateway(cidr, g).map_err(ipam_error)?;
    }
    let ranges = match pools {
        Some(p) => subnet_plan::validate_pools(cidr, &p, gw).map_err(ipam_error)?,
        None => subnet_plan::default_pools(cidr, gw),
    };
    let pools = pool_objects(&ranges, cidr.is_v4());
    Ok((gw, pools))
}

/// A router interface holding the subnet's gateway pins it (Neutron's
/// `GatewayIpInUse`): the routers' address would silently stop being the gateway.
fn check_gateway_not_routed(txn: &Txn<'_>, cur: &Subnet, new: Option<IpAddr>) -> ApiResult<()> {
    let Some(old) = cur.gateway_ip.as_deref() else {
        return Ok(());
    };
    if new.is_some_and(|n| parse_ip(old).ok() == Some(n)) {
        return Ok(());
    }
    let holder = txn.state.ports_of(&cur.network_id).find(|p| {
        p.device_owner == OWNER_ROUTER_INTERFACE
            && p.fixed_ips
                .iter()
                .any(|f| f.subnet_id == cur.id && f.ip_address == old)
    });
    match holder {
        Some(p) => Err(ApiError::conflict(
            "GatewayIpInUse",
            format!(
                "Current gateway ip {old} already in use by port {}. Unable to update.",
                p.id
            ),
        )),
        None => Ok(()),
    }
}
