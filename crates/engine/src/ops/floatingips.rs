//! Floating IPs: an IPv4 address on an external network, held by a hidden
//! `network:floatingip` port, optionally translated to an internal port's
//! fixed IPv4 address by the router that links that port's subnet to the
//! external network. The router is derived, never given.

use std::net::IpAddr;
use std::sync::Arc;

use neutrino_agent_rpc::DHCP_OWNER;
use neutrino_ipam::parse_ip;
use neutrino_model::body::Body;
use neutrino_model::query::{AttrValue as V, FilterType as T};
use neutrino_model::{
    ApiError, ApiResult, AuthContext, ErrorKind, FloatingIp, Network, OWNER_FLOATINGIP,
    OWNER_ROUTER_INTERFACE, Port, Subnet,
};
use serde_json::Value;

use super::ports::{FixedIpRequest, create_service_port, release_port_ips};
use super::{check_quota, new_id, new_std, touch};
use crate::resource::{Attr, Resource, opt_str};
use crate::txn::Txn;
use crate::{Engine, State, policy};

type A = Attr<FloatingIp>;

impl Resource for FloatingIp {
    const SINGULAR: &'static str = "floatingip";
    const PLURAL: &'static str = "floatingips";
    const PATH: &'static str = "floatingips";
    const ATTRS: &'static [A] = &[
        A::value("id", |f| V::Str(&f.id)).filter(T::Str).sort(),
        A::value("floating_ip_address", |f| V::Str(&f.floating_ip_address))
            .post()
            .filter(T::Str)
            .sort(),
        A::value("floating_network_id", |f| V::Str(&f.floating_network_id))
            .post()
            .filter(T::Str)
            .sort(),
        A::request("subnet_id").post(),
        // Derived from the port's subnet, never given.
        A::value("router_id", |f| opt_str(&f.router_id))
            .filter(T::Str)
            .sort(),
        A::value("port_id", |f| opt_str(&f.port_id))
            .set()
            .filter(T::Str),
        A::value("fixed_ip_address", |f| opt_str(&f.fixed_ip_address))
            .set()
            .filter(T::Str)
            .sort(),
        A::value("status", |f| V::Str(&f.status))
            .filter(T::Str)
            .sort(),
    ];
    type Update = FipUpdate;

    fn all(state: &State) -> &imbl::OrdMap<String, Arc<FloatingIp>> {
        &state.floatingips
    }
    fn visible(ctx: &AuthContext, _: &State, f: &FloatingIp) -> bool {
        policy::can_see_fip(ctx, f)
    }
    fn not_found(id: &str) -> ApiError {
        ApiError::not_found(
            "FloatingIPNotFound",
            format!("Floating IP {id} could not be found"),
        )
    }
    fn put(txn: &mut Txn<'_>, f: FloatingIp) -> ApiResult<()> {
        txn.put_fip(f);
        Ok(())
    }

    type Create = NewFip;

    fn parse_create(_: &Engine, ctx: &AuthContext, b: Body) -> ApiResult<NewFip> {
        b.required("floating_network_id")?;
        let r = NewFip {
            network_id: b.uuid("floating_network_id")?.unwrap_or_default(),
            address: parse_ip_attr(&b, "floating_ip_address")?,
            subnet_id: match b.raw("subnet_id") {
                Some(Value::Null) => None,
                _ => b.uuid("subnet_id")?,
            },
            port_id: parse_port_id(&b)?.flatten(),
            fixed_ip: parse_ip_attr(&b, "fixed_ip_address")?,
            description: b.string("description", 255)?,
            project_id: policy::target_project(
                ctx,
                b.string("project_id", 255)?,
                b.string("tenant_id", 255)?,
            )?,
        };
        if r.address.is_some() && !ctx.is_admin() {
            return Err(ApiError::forbidden(
                "rule:create_floatingip:floating_ip_address",
            ));
        }
        if r.fixed_ip.is_some() && r.port_id.is_none() {
            return Err(bad_request(
                "fixed_ip_address cannot be specified without a port_id",
            ));
        }
        Ok(r)
    }

    fn create_one(txn: &mut Txn<'_>, ctx: &AuthContext, r: NewFip) -> ApiResult<Arc<FloatingIp>> {
        let net = Network::find(txn.state, ctx, &r.network_id)?;
        if !net.router_external {
            return Err(bad_request(format!(
                "Network {} is not a valid external network",
                net.id
            )));
        }
        check_quota(txn, &r.project_id, "floatingip", 1)?;
        let id = new_id();
        // The address first, then the association, as Neutron does.
        let port = allocate_address(txn, &net, &id, r.subnet_id.as_deref(), r.address)?;
        let address = port
            .fixed_ips
            .iter()
            .find(|f| parse_ip(&f.ip_address).is_ok_and(|ip| ip.is_ipv4()))
            .map(|f| f.ip_address.clone())
            .ok_or_else(|| exhausted(&net.id))?;
        let mut fip = FloatingIp {
            id,
            floating_network_id: net.id.clone(),
            floating_ip_address: address,
            floating_port_id: port.id,
            port_id: None,
            fixed_ip_address: None,
            router_id: None,
            status: "DOWN".into(),
            std: new_std(txn, r.project_id, r.description),
        };
        if let Some(p) = &r.port_id {
            associate(txn, ctx, &mut fip, p, r.fixed_ip)?;
        }
        txn.put_fip(fip.clone());
        Ok(Arc::new(fip))
    }

    fn parse_update(_: &Engine, _: &AuthContext, b: Body) -> ApiResult<FipUpdate> {
        let r = FipUpdate {
            empty: b.is_empty(),
            port_id: parse_port_id(&b)?,
            fixed_ip: parse_ip_attr(&b, "fixed_ip_address")?,
            description: b.string("description", 255)?,
        };
        if r.fixed_ip.is_some() && !matches!(r.port_id, Some(Some(_))) {
            return Err(bad_request(
                "fixed_ip_address cannot be specified without a port_id",
            ));
        }
        Ok(r)
    }

    fn apply_update(
        txn: &mut Txn<'_>,
        ctx: &AuthContext,
        _: &FloatingIp,
        f: &mut FloatingIp,
        r: FipUpdate,
    ) -> ApiResult<()> {
        if let Some(v) = r.description {
            f.std.description = v;
        }
        // A null port_id disassociates, and so does an empty update (as in
        // Neutron, whose `_check_and_get_fip_assoc` keeps the port only for
        // a non-empty body without port_id).
        match r.port_id {
            None if !r.empty => {}
            None | Some(None) => disassociate(f),
            Some(Some(p)) => associate(txn, ctx, f, &p, r.fixed_ip)?,
        }
        Ok(())
    }

    fn remove(txn: &mut Txn<'_>, _: &AuthContext, cur: Arc<FloatingIp>) -> ApiResult<()> {
        release(txn, &cur);
        Ok(())
    }
}

/// Deletes a floating IP and the port holding its address.
fn release(txn: &mut Txn<'_>, fip: &FloatingIp) {
    txn.delete_fip(&fip.id);
    if let Some(p) = txn.state.ports.get(&fip.floating_port_id).cloned() {
        release_port_ips(txn, &p);
        txn.delete_port(&p.id);
    }
}

/// Deletes the floating IPs of an external network that point nowhere, of
/// every project (Neutron's `delete_disassociated_floatingips`, run when the
/// network is deleted).
pub fn release_unassociated(txn: &mut Txn<'_>, network_id: &str) {
    // Each address is held by a port on the network whose device is the FIP.
    let idle: Vec<Arc<FloatingIp>> = txn
        .state
        .ports_of(network_id)
        .filter(|p| p.device_owner == OWNER_FLOATINGIP)
        .filter_map(|p| txn.state.floatingips.get(&p.device_id))
        .filter(|f| f.port_id.is_none())
        .cloned()
        .collect();
    for f in idle {
        release(txn, &f);
    }
}

/// A validated update request.
pub struct FipUpdate {
    /// The request object was `{}`.
    empty: bool,
    port_id: Option<Option<String>>,
    fixed_ip: Option<IpAddr>,
    description: Option<String>,
}

/// Neutron's `BadRequest(resource='floatingip', …)`.
fn bad_request(msg: impl std::fmt::Display) -> ApiError {
    super::bad_resource_request("floatingip", msg)
}

/// `port_id`: absent, null (disassociate) or a UUID.
fn parse_port_id(b: &Body) -> ApiResult<Option<Option<String>>> {
    match b.nullable_string("port_id", 36)? {
        Some(Some(p)) if !neutrino_model::body::is_uuid(&p) => Err(ApiError::invalid_attr(
            "port_id",
            format!("'{p}' is not a valid UUID"),
        )),
        other => Ok(other),
    }
}

fn parse_ip_attr(b: &Body, k: &str) -> ApiResult<Option<IpAddr>> {
    match b.nullable_string(k, 64)?.flatten() {
        None => Ok(None),
        Some(s) => parse_ip(&s)
            .map(Some)
            .map_err(|e| ApiError::invalid_attr(k, e)),
    }
}

pub struct NewFip {
    network_id: String,
    address: Option<IpAddr>,
    subnet_id: Option<String>,
    port_id: Option<String>,
    fixed_ip: Option<IpAddr>,
    description: Option<String>,
    project_id: String,
}

fn exhausted(network_id: &str) -> ApiError {
    ApiError::new(
        ErrorKind::BadRequest,
        "ExternalIpAddressExhausted",
        format!("Unable to find any IP address on external network {network_id}."),
    )
}

/// Creates the hidden port holding the address: the requested one, or the
/// first free address of the requested (or any) IPv4 subnet.
fn allocate_address(
    txn: &mut Txn<'_>,
    net: &Network,
    fip_id: &str,
    subnet_id: Option<&str>,
    address: Option<IpAddr>,
) -> ApiResult<Port> {
    let v4: Vec<String> = txn
        .state
        .subnets_of(&net.id)
        .filter(|s| s.ip_version == 4)
        .map(|s| s.id.clone())
        .collect();
    if v4.is_empty() {
        return Err(bad_request(format!(
            "Network {} does not contain any IPv4 subnet",
            net.id
        )));
    }
    if let Some(sid) = subnet_id {
        let Some(sub) = txn.state.subnets.get(sid) else {
            return Err(Subnet::not_found(sid));
        };
        if sub.network_id != net.id || sub.ip_version != 4 {
            return Err(bad_request(format!(
                "Subnet {sid} is not an IPv4 subnet of network {}",
                net.id
            )));
        }
    }
    let make = |txn: &mut Txn<'_>, req: FixedIpRequest| {
        create_service_port(
            txn,
            net,
            String::new(),
            OWNER_FLOATINGIP,
            fip_id,
            Some(vec![req]),
        )
    };
    if let Some(ip) = address {
        if !ip.is_ipv4() {
            return Err(bad_request(format!("{ip} is not an IPv4 address")));
        }
        return make(
            txn,
            FixedIpRequest::new(subnet_id.map(str::to_string), Some(ip)),
        )
        .map_err(|e| match e.error_type.as_str() {
            "IpAddressAlreadyAllocated" => ApiError::conflict(
                "IpAddressInUse",
                format!(
                    "Unable to complete operation for network {}. The IP address {ip} is in use.",
                    net.id
                ),
            ),
            _ => e,
        });
    }
    let candidates = match subnet_id {
        Some(s) => vec![s.to_string()],
        None => v4,
    };
    for sid in candidates {
        match make(txn, FixedIpRequest::new(Some(sid), None)) {
            Ok(p) => return Ok(p),
            Err(e) if e.error_type == "IpAddressGenerationFailure" => continue,
            Err(e) => return Err(e),
        }
    }
    Err(exhausted(&net.id))
}

/// Points `fip` at `port_id` (and one of its IPv4 addresses), deriving the
/// router; Neutron's `_check_and_get_fip_assoc` checks in its order.
fn associate(
    txn: &Txn<'_>,
    ctx: &AuthContext,
    fip: &mut FloatingIp,
    port_id: &str,
    fixed_ip: Option<IpAddr>,
) -> ApiResult<()> {
    let port = Port::find(txn.state, ctx, port_id)?;
    if !ctx.is_admin() && port.std.project_id != fip.std.project_id {
        return Err(bad_request(format!(
            "Cannot process floating IP association with Port {port_id}, since that port is owned by a different project"
        )));
    }
    // Neutron's `is_fip_serviced`: any port but a DHCP server's (a router
    // interface's address may be reached from outside too).
    if port.device_owner == DHCP_OWNER {
        return Err(bad_request(format!(
            "Port {port_id} is unable to be assigned a floating IP"
        )));
    }
    let is_v4 = |s: &str| parse_ip(s).is_ok_and(|ip| ip.is_ipv4());
    let chosen = match fixed_ip {
        Some(ip) => {
            let Some(f) = port
                .fixed_ips
                .iter()
                .find(|f| parse_ip(&f.ip_address).ok() == Some(ip))
            else {
                return Err(bad_request(format!(
                    "Port {port_id} does not have fixed ip {ip}"
                )));
            };
            if !ip.is_ipv4() {
                return Err(bad_request(format!(
                    "Cannot process floating IP association with {ip}, since that is not an IPv4 address"
                )));
            }
            f.clone()
        }
        None => {
            let v4: Vec<_> = port
                .fixed_ips
                .iter()
                .filter(|f| is_v4(&f.ip_address))
                .collect();
            match v4.as_slice() {
                [] => {
                    return Err(bad_request(format!(
                        "Cannot add floating IP to port {port_id} that has no fixed IPv4 addresses"
                    )));
                }
                [one] => (*one).clone(),
                _ => {
                    return Err(bad_request(format!(
                        "Port {port_id} has multiple fixed IPv4 addresses. Must provide a specific IPv4 address when assigning a floating IP"
                    )));
                }
            }
        }
    };
    let router_id = router_for(txn, &fip.floating_network_id, &port, &chosen.subnet_id)?;
    let taken = txn.state.fips_of_port(port_id).find(|f| {
        f.id != fip.id
            && f.floating_network_id == fip.floating_network_id
            && f.fixed_ip_address.as_deref() == Some(chosen.ip_address.as_str())
    });
    if let Some(other) = taken {
        return Err(ApiError::conflict(
            "FloatingIPPortAlreadyAssociated",
            format!(
                "Cannot associate floating IP {} ({}) with port {port_id} using fixed IP {}, as that fixed IP already has a floating IP on external network {}.",
                fip.floating_ip_address, fip.id, chosen.ip_address, other.floating_network_id
            ),
        ));
    }
    fip.port_id = Some(port_id.to_string());
    fip.fixed_ip_address = Some(chosen.ip_address);
    fip.router_id = Some(router_id);
    fip.status = "ACTIVE".into();
    Ok(())
}

/// The router with an interface on `subnet_id` and its gateway on the
/// floating network; the one owning the subnet's gateway address first.
fn router_for(
    txn: &Txn<'_>,
    floating_network_id: &str,
    port: &Port,
    subnet_id: &str,
) -> ApiResult<String> {
    let s = &*txn.state;
    let Some(subnet) = s.subnets.get(subnet_id) else {
        return Err(Subnet::not_found(subnet_id));
    };
    let Some(gateway) = subnet.gateway_ip.as_deref() else {
        return Err(bad_request(format!(
            "Cannot add floating IP to port on subnet {subnet_id} which has no gateway_ip"
        )));
    };
    let mut found: Vec<(bool, &str)> = s
        .ports_of(&port.network_id)
        .filter(|p| p.device_owner == OWNER_ROUTER_INTERFACE)
        .filter(|p| {
            s.routers.get(&p.device_id).is_some_and(|r| {
                r.external_gateway
                    .as_ref()
                    .is_some_and(|g| g.network_id == floating_network_id)
            })
        })
        .filter_map(|p| {
            let on = p.fixed_ips.iter().find(|f| f.subnet_id == subnet_id)?;
            Some((on.ip_address != gateway, p.device_id.as_str()))
        })
        .collect();
    found.sort_unstable();
    match found.first() {
        Some((_, r)) => Ok(r.to_string()),
        None => Err(ApiError::not_found(
            "ExternalGatewayForFloatingIPNotFound",
            format!(
                "External network {floating_network_id} is not reachable from subnet {subnet_id}.  Therefore, cannot associate Port {} with a Floating IP.",
                port.id
            ),
        )),
    }
}

fn disassociate(f: &mut FloatingIp) {
    f.port_id = None;
    f.fixed_ip_address = None;
    f.router_id = None;
    f.status = "DOWN".into();
}

/// Unassociates the floating IPs of a port that `drop` selects (the port is
/// going away, or lost the fixed address a FIP pointed at).
pub fn disassociate_port(txn: &mut Txn<'_>, port_id: &str, drop: impl Fn(&FloatingIp) -> bool) {
    let affected: Vec<FloatingIp> = txn
        .state
        .fips_of_port(port_id)
        .filter(|f| drop(f))
        .map(|f| (**f).clone())
        .collect();
    for mut f in affected {
        disassociate(&mut f);
        touch(&mut f.std, txn.now);
        txn.put_fip(f);
    }
}
