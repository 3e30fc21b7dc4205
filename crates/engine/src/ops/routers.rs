//! Routers: the external gateway (a `network:router_gateway` port on an
//! external network, project ""), interfaces (`network:router_interface`
//! ports holding a subnet's gateway address, or a user port taken over),
//! and extra routes whose nexthops must sit on a connected subnet. Neutron's
//! in-use rules keep floating IPs and routes from losing what they depend on.

use std::sync::Arc;

use neutrino_agent_rpc::HOST_GATEWAY_OWNER;
use neutrino_ipam::{Cidr, parse_ip};
use neutrino_model::body::{Body, is_uuid, item_str, to_bool, to_string};
use neutrino_model::query::{AttrValue as V, FilterType as T};
use neutrino_model::{
    ApiError, ApiResult, AuthContext, ErrorKind, ExternalGateway, FixedIp, HostRoute, Network,
    OWNER_ROUTER_GATEWAY, OWNER_ROUTER_INTERFACE, Port, Router, Subnet,
};
use serde_json::{Value, json};

use super::ports::{self, FixedIpRequest, create_service_port, release_port_ips};
use super::subnets::parse_routes;
use super::{check_change, check_quota, new_id, new_std, touch};
use crate::resource::{Attr, Resource, put_json};
use crate::txn::Txn;
use crate::{Engine, State, policy};

type A = Attr<Router>;

impl Resource for Router {
    const SINGULAR: &'static str = "router";
    const PLURAL: &'static str = "routers";
    const PATH: &'static str = "routers";
    const ATTRS: &'static [A] = &[
        A::value("id", |r| V::Str(&r.id)).filter(T::Str).sort(),
        A::value("name", |r| V::Str(&r.name))
            .set()
            .filter(T::Str)
            .sort(),
        A::value("admin_state_up", |r| V::Bool(r.admin_state_up))
            .set()
            .filter(T::Bool)
            .sort(),
        A::value("status", |r| V::Str(&r.status))
            .filter(T::Str)
            .sort(),
        // `{network_id, enable_snat, external_fixed_ips}` or null.
        A::json("external_gateway_info", |r, _, out| {
            put_json(out, &r.external_gateway)
        })
        .set(),
        // extraroute: routes are set by update only.
        A::json("routes", |r, _, out| put_json(out, &r.routes)).put(),
    ];
    type Update = RouterUpdate;

    fn all(state: &State) -> &imbl::OrdMap<String, Arc<Router>> {
        &state.routers
    }
    fn visible(ctx: &AuthContext, _: &State, r: &Router) -> bool {
        policy::can_see_router(ctx, r)
    }
    fn not_found(id: &str) -> ApiError {
        ApiError::not_found("RouterNotFound", format!("Router {id} could not be found"))
    }
    fn put(txn: &mut Txn<'_>, r: Router) -> ApiResult<()> {
        txn.put_router(r);
        Ok(())
    }

    type Create = NewRouter;

    fn parse_create(_: &Engine, ctx: &AuthContext, b: Body) -> ApiResult<NewRouter> {
        Ok(NewRouter {
            name: b.name("name")?.unwrap_or_default(),
            description: b.string("description", 255)?,
            admin_state_up: b.bool("admin_state_up")?.unwrap_or(true),
            gateway: b
                .raw("external_gateway_info")
                .map(|v| parse_gateway(v, ctx, "create_router"))
                .transpose()?,
            project_id: policy::target_project(
                ctx,
                b.string("project_id", 255)?,
                b.string("tenant_id", 255)?,
            )?,
        })
    }

    fn create_one(txn: &mut Txn<'_>, ctx: &AuthContext, r: NewRouter) -> ApiResult<Arc<Router>> {
        check_quota(txn, &r.project_id, "router", 1)?;
        let mut router = Router {
            id: new_id(),
            name: r.name,
            admin_state_up: r.admin_state_up,
            status: "ACTIVE".into(),
            external_gateway: None,
            gw_port_id: None,
            routes: Vec::new(),
            std: new_std(txn, r.project_id, r.description),
        };
        if let Some(GatewayRequest::Set {
            network_id,
            enable_snat,
            fixed_ips,
        }) = r.gateway
        {
            set_gateway(txn, ctx, &mut router, network_id, enable_snat, fixed_ips)?;
        }
        txn.put_router(router.clone());
        Ok(Arc::new(router))
    }

    fn parse_update(_: &Engine, ctx: &AuthContext, b: Body) -> ApiResult<RouterUpdate> {
        Ok(RouterUpdate {
            name: b.name("name")?,
            description: b.string("description", 255)?,
            admin_state_up: b.bool("admin_state_up")?,
            gateway: b
                .raw("external_gateway_info")
                .map(|v| parse_gateway(v, ctx, "update_router"))
                .transpose()?,
            routes: b
                .list("routes")?
                .map(|r| parse_routes("routes", r))
                .transpose()?,
        })
    }

    fn apply_update(
        txn: &mut Txn<'_>,
        ctx: &AuthContext,
        _: &Router,
        r: &mut Router,
        req: RouterUpdate,
    ) -> ApiResult<()> {
        let RouterUpdate {
            name,
            description,
            admin_state_up,
            gateway,
            routes,
        } = req;
        let ctx = ctx.clone();
        if let Some(v) = name {
            r.name = v;
        }
        if let Some(v) = description {
            r.std.description = v;
        }
        if let Some(v) = admin_state_up {
            r.admin_state_up = v;
        }
        match gateway {
            None => {}
            Some(GatewayRequest::Remove) => remove_gateway(txn, r)?,
            Some(GatewayRequest::Set {
                network_id,
                enable_snat,
                fixed_ips,
            }) => set_gateway(txn, &ctx, r, network_id, enable_snat, fixed_ips)?,
        }
        if let Some(routes) = routes {
            check_routes(txn, r, &routes)?;
            r.routes = routes;
        }
        Ok(())
    }

    fn remove(txn: &mut Txn<'_>, _: &AuthContext, cur: Arc<Router>) -> ApiResult<()> {
        let id = cur.id.as_str();
        let ports: Vec<&str> = txn.state.interfaces_of(id).map(|p| p.id.as_str()).collect();
        if !ports.is_empty() {
            return Err(ApiError::conflict(
                "RouterInUse",
                format!("Router {id} still has ports: {}", ports.join(", ")),
            ));
        }
        let mut r = (*cur).clone();
        remove_gateway(txn, &mut r)?;
        txn.delete_router(id);
        Ok(())
    }
}

/// Neutron's `BadRequest(resource='router', …)`.
fn bad_request(msg: impl std::fmt::Display) -> ApiError {
    super::bad_resource_request("router", msg)
}

/// What `external_gateway_info` asks for.
enum GatewayRequest {
    /// `null` or `{}`.
    Remove,
    Set {
        network_id: String,
        enable_snat: Option<bool>,
        fixed_ips: Option<Vec<FixedIpRequest>>,
    },
}

const GW_KEYS: [&str; 3] = ["network_id", "enable_snat", "external_fixed_ips"];

fn parse_gateway(v: &Value, ctx: &AuthContext, action: &str) -> ApiResult<GatewayRequest> {
    const A: &str = "external_gateway_info";
    let o = match v {
        Value::Null => return Ok(GatewayRequest::Remove),
        Value::Object(o) if o.is_empty() => return Ok(GatewayRequest::Remove),
        Value::Object(o) => o,
        other => {
            return Err(ApiError::invalid_attr(
                A,
                format!("'{other}' is not a dictionary"),
            ));
        }
    };
    if let Some(k) = o.keys().find(|k| !GW_KEYS.contains(&k.as_str())) {
        return Err(ApiError::invalid_attr(
            A,
            format!("Unexpected keys supplied: {k}"),
        ));
    }
    let Some(net) = o.get("network_id") else {
        return Err(ApiError::invalid_attr(
            A,
            "Validation of dictionary's keys failed: network_id is required",
        ));
    };
    let network_id = to_string(A, net, 36)?;
    if !is_uuid(&network_id) {
        return Err(ApiError::invalid_attr(
            A,
            format!("'{network_id}' is not a valid UUID"),
        ));
    }
    let enable_snat = match o.get("enable_snat") {
        None | Some(Value::Null) => None,
        Some(v) => Some(to_bool(v)?),
    };
    let fixed_ips = match o.get("external_fixed_ips") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            let mut out = Vec::new();
            for item in items {
                let Value::Object(f) = item else {
                    return Err(ApiError::invalid_attr(
                        A,
                        "external_fixed_ips must be a list of dictionaries",
                    ));
                };
                if let Some(k) = f.keys().find(|k| *k != "subnet_id" && *k != "ip_address") {
                    return Err(ApiError::invalid_attr(
                        A,
                        format!("Unexpected keys supplied: {k}"),
                    ));
                }
                let subnet_id = item_str(A, f, "subnet_id")?;
                if let Some(s) = &subnet_id
                    && !is_uuid(s)
                {
                    return Err(ApiError::invalid_attr(
                        A,
                        format!("'{s}' is not a valid UUID"),
                    ));
                }
                let ip = item_str(A, f, "ip_address")?
                    .map(|s| parse_ip(&s).map_err(|e| ApiError::invalid_attr(A, e)))
                    .transpose()?;
                if subnet_id.is_none() && ip.is_none() {
                    return Err(ApiError::invalid_attr(
                        A,
                        "each external fixed IP needs a subnet_id or an ip_address",
                    ));
                }
                out.push(FixedIpRequest::new(subnet_id, ip));
            }
            Some(out)
        }
        Some(other) => {
            return Err(ApiError::invalid_attr(
                A,
                format!("'{other}' is not a list"),
            ));
        }
    };
    // Only admins choose SNAT or the external addresses (Neutron's policy).
    if enable_snat.is_some() && !ctx.is_admin() {
        return Err(ApiError::forbidden(&format!(
            "rule:{action}:external_gateway_info:enable_snat"
        )));
    }
    if fixed_ips.is_some() && !ctx.is_admin() {
        return Err(ApiError::forbidden(&format!(
            "rule:{action}:external_gateway_info:external_fixed_ips"
        )));
    }
    Ok(GatewayRequest::Set {
        network_id,
        enable_snat,
        fixed_ips,
    })
}

pub struct NewRouter {
    name: String,
    description: Option<String>,
    admin_state_up: bool,
    gateway: Option<GatewayRequest>,
    project_id: String,
}

/// The subnets a router is attached to (interfaces and gateway), with CIDRs.
fn attached_subnets(txn: &Txn<'_>, router_id: &str) -> Vec<(String, Cidr)> {
    let s = &*txn.state;
    s.interfaces_of(router_id)
        .chain(s.gateway_port_of(router_id))
        .flat_map(|p| p.fixed_ips.iter())
        .filter_map(|f| {
            let sub = s.subnets.get(&f.subnet_id)?;
            Some((sub.id.clone(), Cidr::parse(&sub.cidr).ok()?))
        })
        .collect()
}

/// A subnet joining a router may be neither attached already nor overlap
/// what is (Neutron's `_check_for_dup_router_subnets`).
fn check_new_subnet(txn: &Txn<'_>, router_id: &str, subnet_id: &str) -> ApiResult<()> {
    let Some(sub) = txn.state.subnets.get(subnet_id) else {
        return Err(Subnet::not_found(subnet_id));
    };
    let cidr = Cidr::parse(&sub.cidr).map_err(super::ipam_error)?;
    for (other, other_cidr) in attached_subnets(txn, router_id) {
        if other == subnet_id {
            return Err(bad_request(format!(
                "Router already has a port on subnet {subnet_id}"
            )));
        }
        if other_cidr.overlaps(&cidr) {
            return Err(bad_request(format!(
                "Cidr {cidr} of subnet {subnet_id} overlaps with cidr {other_cidr} of subnet {other}"
            )));
        }
    }
    Ok(())
}

/// Sets or changes the gateway: same network → new SNAT mode and (admin)
/// addresses on the same port; another network → the old port goes (if no
/// floating IP needs it) and a new one is made.
fn set_gateway(
    txn: &mut Txn<'_>,
    ctx: &AuthContext,
    r: &mut Router,
    network_id: String,
    enable_snat: Option<bool>,
    fixed_ips: Option<Vec<FixedIpRequest>>,
) -> ApiResult<()> {
    let net = neutrino_model::Network::find(txn.state, ctx, &network_id)?;
    if !net.router_external {
        return Err(bad_request(format!(
            "Network {network_id} is not an external network"
        )));
    }
    if let Some(reqs) = &fixed_ips {
        check_not_gateway_ips(txn, &network_id, reqs)?;
    }
    let same = r
        .external_gateway
        .as_ref()
        .is_some_and(|g| g.network_id == network_id);
    let port = match (same, txn.state.gateway_port_of(&r.id).cloned()) {
        (true, Some(p)) => match fixed_ips {
            Some(reqs) => ports::set_service_port_ips(txn, &p, reqs)?,
            None => (*p).clone(),
        },
        _ => {
            remove_gateway(txn, r)?;
            create_service_port(
                txn,
                &net,
                String::new(),
                OWNER_ROUTER_GATEWAY,
                &r.id,
                fixed_ips,
            )?
        }
    };
    // The port may have no address (an external network with no subnet,
    // as Neutron allows): a subnet added later gives it one
    // (`give_gateways_an_address`).
    let previous_snat = r
        .external_gateway
        .as_ref()
        .filter(|_| same)
        .map(|g| g.enable_snat);
    r.gw_port_id = Some(port.id.clone());
    r.external_gateway = Some(ExternalGateway {
        network_id,
        enable_snat: enable_snat.or(previous_snat).unwrap_or(true),
        external_fixed_ips: port.fixed_ips.clone(),
    });
    // The external subnets may not overlap the router's internal ones.
    for f in &port.fixed_ips {
        let others: Vec<(String, Cidr)> = attached_subnets(txn, &r.id)
            .into_iter()
            .filter(|(id, _)| !port.fixed_ips.iter().any(|g| g.subnet_id == *id))
            .collect();
        let Some(sub) = txn.state.subnets.get(&f.subnet_id) else {
            continue;
        };
        let cidr = Cidr::parse(&sub.cidr).map_err(super::ipam_error)?;
        if let Some((other, c)) = others.iter().find(|(_, c)| c.overlaps(&cidr)) {
            return Err(bad_request(format!(
                "Cidr {cidr} of subnet {} overlaps with cidr {c} of subnet {other}",
                sub.id
            )));
        }
    }
    Ok(())
}

/// A subnet's gateway address cannot be a router's external address.
fn check_not_gateway_ips(
    txn: &Txn<'_>,
    network_id: &str,
    reqs: &[FixedIpRequest],
) -> ApiResult<()> {
    for (sid, ip) in reqs.iter().filter_map(|r| Some((r.subnet_id(), r.ip()?))) {
        let hit = txn.state.subnets_of(network_id).find(|s| {
            sid.is_none_or(|x| x == s.id)
                && s.gateway_ip
                    .as_deref()
                    .is_some_and(|g| parse_ip(g).ok() == Some(ip))
        });
        if let Some(s) = hit {
            return Err(bad_request(format!(
                "IP address {ip} is the gateway of subnet {} and cannot be used as an external fixed IP",
                s.id
            )));
        }
    }
    Ok(())
}

/// Drops the gateway and its port, unless floating IPs are translated through it.
fn remove_gateway(txn: &mut Txn<'_>, r: &mut Router) -> ApiResult<()> {
    if let Some(g) = &r.external_gateway
        && txn.state.fips_of_router(&r.id).next().is_some()
    {
        return Err(ApiError::conflict(
            "RouterExternalGatewayInUseByFloatingIp",
            format!(
                "Gateway cannot be updated for router {}, since a gateway to external network {} is required by one or more floating IPs.",
                r.id, g.network_id
            ),
        ));
    }
    if let Some(p) = txn.state.gateway_port_of(&r.id).cloned() {
        release_port_ips(txn, &p);
        txn.delete_port(&p.id);
    }
    // Multi-host agents' per-host gateway ports go with the gateway.
    for p in super::agents::host_gateway_ports(txn.state, &r.id) {
        release_port_ips(txn, &p);
        txn.delete_port(&p.id);
    }
    r.external_gateway = None;
    r.gw_port_id = None;
    Ok(())
}

/// Extra routes: at most `max_routes`, each nexthop on a subnet the router
/// is attached to and not one of the router's own addresses.
fn check_routes(txn: &Txn<'_>, r: &Router, routes: &[HostRoute]) -> ApiResult<()> {
    if routes.len() > txn.config.max_routes {
        return Err(ApiError::bad_request(format!(
            "Unable to complete operation for {}. The number of routes exceeds the maximum {}.",
            r.id, txn.config.max_routes
        ))
        .with_type("RoutesExhausted"));
    }
    let s = &*txn.state;
    let own: Vec<&FixedIp> = s
        .interfaces_of(&r.id)
        .chain(s.gateway_port_of(&r.id))
        .flat_map(|p| p.fixed_ips.iter())
        .collect();
    let invalid = |route: &HostRoute, why: &str| {
        ApiError::bad_request(format!(
            "Invalid format for routes: [{{'destination': '{}', 'nexthop': '{}'}}], {why}",
            route.destination, route.nexthop
        ))
        .with_type("InvalidRoutes")
    };
    for route in routes {
        let Ok(hop) = parse_ip(&route.nexthop) else {
            return Err(invalid(route, "the nexthop is not a valid IP address"));
        };
        let connected = own.iter().any(|f| {
            s.subnets
                .get(&f.subnet_id)
                .and_then(|sub| Cidr::parse(&sub.cidr).ok())
                .is_some_and(|c| c.contains(hop))
        });
        if !connected {
            return Err(invalid(route, "the nexthop is not connected with router"));
        }
        let dst_v4 = route
            .destination
            .split('/')
            .next()
            .is_some_and(|d| !d.contains(':'));
        if dst_v4 != hop.is_ipv4() {
            return Err(invalid(
                route,
                "the nexthop and the destination are of different IP versions",
            ));
        }
        if own
            .iter()
            .any(|f| parse_ip(&f.ip_address).ok() == Some(hop))
        {
            return Err(invalid(route, "the nexthop is used by router"));
        }
    }
    Ok(())
}

/// A validated update request.
pub struct RouterUpdate {
    name: Option<String>,
    description: Option<String>,
    admin_state_up: Option<bool>,
    gateway: Option<GatewayRequest>,
    routes: Option<Vec<HostRoute>>,
}

/// Which interface an add/remove call names.
struct InterfaceRequest {
    subnet_id: Option<String>,
    port_id: Option<String>,
}

fn parse_interface(body: Value) -> ApiResult<InterfaceRequest> {
    let Value::Object(o) = body else {
        return Err(ApiError::bad_request("Body contains invalid data"));
    };
    let get = |k: &str| -> ApiResult<Option<String>> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => {
                let s = to_string(k, v, 36)?;
                if !is_uuid(&s) {
                    return Err(ApiError::invalid_attr(
                        k,
                        format!("'{s}' is not a valid UUID"),
                    ));
                }
                Ok(Some(s))
            }
        }
    };
    let r = InterfaceRequest {
        subnet_id: get("subnet_id")?,
        port_id: get("port_id")?,
    };
    if r.subnet_id.is_none() && r.port_id.is_none() {
        return Err(bad_request("Either subnet_id or port_id must be specified"));
    }
    Ok(r)
}

/// The answer to both interface calls (Neutron's `_make_router_interface_info`).
fn interface_info(r: &Router, port: &Port, subnet_id: Option<&str>) -> Value {
    let subnet_ids: Vec<&str> = port
        .fixed_ips
        .iter()
        .map(|f| f.subnet_id.as_str())
        .collect();
    let subnet_id = subnet_id.or(subnet_ids.first().copied());
    json!({
        "id": r.id,
        "tenant_id": r.std.project_id,
        "project_id": r.std.project_id,
        "port_id": port.id,
        "network_id": port.network_id,
        "subnet_id": subnet_id,
        "subnet_ids": subnet_ids,
    })
}

/// `PUT /v2.0/routers/{id}/add_router_interface`.
pub async fn add_interface(
    engine: &Engine,
    ctx: &AuthContext,
    id: String,
    body: Value,
) -> ApiResult<Value> {
    let req = parse_interface(body)?;
    if req.subnet_id.is_some() && req.port_id.is_some() {
        return Err(bad_request("Cannot specify both subnet-id and port-id"));
    }
    let ctx = ctx.clone();
    engine
        .write(move |txn| {
            let check = |cur: &Router| check_change(&ctx, &cur.std, "add_router_interface", None);
            let (r, port) = Router::change(txn, &ctx, &id, check, |txn, cur, _| {
                match (req.port_id, req.subnet_id) {
                    (Some(pid), _) => attach_port(txn, &ctx, cur, &pid),
                    (None, Some(sid)) => attach_subnet(txn, &ctx, cur, &sid),
                    (None, None) => {
                        Err(bad_request("Either subnet_id or port_id must be specified"))
                    }
                }
            })?;
            Ok(interface_info(&r, &port, None))
        })
        .await
}

/// A new interface port holding the subnet's gateway address.
fn attach_subnet(
    txn: &mut Txn<'_>,
    ctx: &AuthContext,
    r: &Router,
    subnet_id: &str,
) -> ApiResult<Port> {
    let sub = Subnet::find(txn.state, ctx, subnet_id)?;
    let net = txn
        .state
        .networks
        .get(&sub.network_id)
        .cloned()
        .ok_or_else(|| Network::not_found(&sub.network_id))?;
    if !policy::owns(ctx, &sub.std.project_id) && !net.shared {
        return Err(bad_request(format!(
            "Subnet {subnet_id} is owned by another project and cannot be attached to router {}",
            r.id
        )));
    }
    let Some(gw) = sub.gateway_ip.as_deref().and_then(|g| parse_ip(g).ok()) else {
        return Err(bad_request(
            "Subnet for router interface must have a gateway IP",
        ));
    };
    check_new_subnet(txn, &r.id, subnet_id)?;
    create_service_port(
        txn,
        &net,
        r.std.project_id.clone(),
        OWNER_ROUTER_INTERFACE,
        &r.id,
        Some(vec![FixedIpRequest::new(Some(sub.id.clone()), Some(gw))]),
    )
}

/// A user's unbound port becomes the interface (and trusted, like any
/// `network:*` port).
fn attach_port(txn: &mut Txn<'_>, ctx: &AuthContext, r: &Router, port_id: &str) -> ApiResult<Port> {
    let cur = Port::find(txn.state, ctx, port_id)?;
    if !policy::owns(ctx, &cur.std.project_id) {
        return Err(Port::not_found(port_id));
    }
    if !cur.device_id.is_empty() || !cur.device_owner.is_empty() {
        return Err(ApiError::conflict(
            "PortInUse",
            format!(
                "Unable to complete operation on port {port_id} for network {}. Port already has an attached device {}.",
                cur.network_id,
                if cur.device_id.is_empty() {
                    &cur.device_owner
                } else {
                    &cur.device_id
                }
            ),
        ));
    }
    if cur.fixed_ips.is_empty() {
        return Err(bad_request("Router port must have at least one fixed IP"));
    }
    let v4_subnets = cur
        .fixed_ips
        .iter()
        .filter(|f| parse_ip(&f.ip_address).is_ok_and(|ip| ip.is_ipv4()))
        .count();
    if v4_subnets > 1 {
        return Err(bad_request(
            "Cannot have multiple IPv4 subnets on router port",
        ));
    }
    for f in &cur.fixed_ips {
        check_new_subnet(txn, &r.id, &f.subnet_id)?;
    }
    let mut p = (*cur).clone();
    p.device_owner = OWNER_ROUTER_INTERFACE.into();
    p.device_id = r.id.clone();
    p.security_groups = Vec::new();
    p.port_security_enabled = false;
    p.allowed_address_pairs = Vec::new();
    touch(&mut p.std, txn.now);
    txn.put_port(p.clone());
    // A router port cannot be a floating IP's target.
    super::floatingips::disassociate_port(txn, port_id, |_| true);
    Ok(p)
}

/// `PUT /v2.0/routers/{id}/remove_router_interface`.
pub async fn remove_interface(
    engine: &Engine,
    ctx: &AuthContext,
    id: String,
    body: Value,
) -> ApiResult<Value> {
    let req = parse_interface(body)?;
    let ctx = ctx.clone();
    engine
        .write(move |txn| {
            let check =
                |cur: &Router| check_change(&ctx, &cur.std, "remove_router_interface", None);
            let (r, (port, subnet)) = Router::change(txn, &ctx, &id, check, |txn, cur, _| {
                Ok(match (req.port_id, req.subnet_id) {
                    (Some(pid), sid) => {
                        let port = txn
                            .state
                            .interfaces_of(&id)
                            .find(|p| p.id == pid)
                            .cloned()
                            .ok_or_else(|| {
                                ApiError::not_found(
                                    "RouterInterfaceNotFound",
                                    format!("Router {id} does not have an interface with id {pid}"),
                                )
                            })?;
                        if let Some(s) = &sid
                            && !port.fixed_ips.iter().any(|f| f.subnet_id == *s)
                        {
                            return Err(ApiError::new(
                                ErrorKind::BadRequest,
                                "SubnetMismatchForPort",
                                format!(
                                    "Subnet on port {pid} does not match the requested subnet {s}."
                                ),
                            ));
                        }
                        for f in &port.fixed_ips {
                            check_subnet_unused(txn, cur, &f.subnet_id)?;
                        }
                        release_port_ips(txn, &port);
                        txn.delete_port(&pid);
                        (port, sid)
                    }
                    (None, Some(sid)) => {
                        Subnet::find(txn.state, &ctx, &sid)?;
                        let port = txn
                            .state
                            .interfaces_of(&id)
                            .find(|p| p.fixed_ips.iter().any(|f| f.subnet_id == sid))
                            .cloned()
                            .ok_or_else(|| {
                                ApiError::not_found(
                                    "RouterInterfaceNotFoundForSubnet",
                                    format!("Router {id} has no interface on subnet {sid}"),
                                )
                            })?;
                        check_subnet_unused(txn, cur, &sid)?;
                        let rest: Vec<FixedIpRequest> = port
                            .fixed_ips
                            .iter()
                            .filter(|f| f.subnet_id != sid)
                            .map(FixedIpRequest::existing)
                            .collect();
                        if rest.is_empty() {
                            release_port_ips(txn, &port);
                            txn.delete_port(&port.id);
                        } else {
                            // Multi-prefix (IPv6) interface: only this subnet's address goes.
                            ports::set_service_port_ips(txn, &port, rest)?;
                        }
                        (port, Some(sid))
                    }
                    (None, None) => {
                        return Err(bad_request("Either subnet_id or port_id must be specified"));
                    }
                })
            })?;
            Ok(interface_info(&r, &port, subnet.as_deref()))
        })
        .await
}

/// An interface's subnet stays while floating IPs or routes depend on it.
fn check_subnet_unused(txn: &Txn<'_>, r: &Router, subnet_id: &str) -> ApiResult<()> {
    let s = &*txn.state;
    let used_by_fip = s.fips_of_router(&r.id).any(|f| {
        let (Some(pid), Some(ip)) = (&f.port_id, &f.fixed_ip_address) else {
            return false;
        };
        s.ports.get(pid).is_some_and(|p| {
            p.fixed_ips
                .iter()
                .any(|x| x.ip_address == *ip && x.subnet_id == subnet_id)
        })
    });
    if used_by_fip {
        return Err(ApiError::conflict(
            "RouterInterfaceInUseByFloatingIP",
            format!(
                "Router interface for subnet {subnet_id} on router {} cannot be deleted, as it is required by one or more floating IPs.",
                r.id
            ),
        ));
    }
    if let Some(cidr) = s
        .subnets
        .get(subnet_id)
        .and_then(|x| Cidr::parse(&x.cidr).ok())
    {
        let needed = r
            .routes
            .iter()
            .any(|rt| parse_ip(&rt.nexthop).is_ok_and(|h| cidr.contains(h)));
        if needed {
            return Err(ApiError::conflict(
                "RouterInterfaceInUseByRoute",
                format!(
                    "Router interface for subnet {subnet_id} on router {} cannot be deleted, as it is required by one or more routes.",
                    r.id
                ),
            ));
        }
    }
    Ok(())
}

/// A new subnet on an external network gives each gateway port on it (a
/// router's, and in multi-host mode each host's own) an address there,
/// unless the port already has a fixed address of that version or two of
/// them, as Neutron's `_update_router_gw_port` does. A gateway the subnet
/// has no free address for stays as it is: the subnet is still made.
pub fn give_gateways_an_address(txn: &mut Txn<'_>, subnet: &Subnet) -> ApiResult<()> {
    let gateways: Vec<Arc<Port>> = txn
        .state
        .ports_of(&subnet.network_id)
        .filter(|p| p.device_owner == OWNER_ROUTER_GATEWAY || p.device_owner == HOST_GATEWAY_OWNER)
        .cloned()
        .collect();
    let auto: Vec<String> = txn
        .state
        .subnets_of(&subnet.network_id)
        .filter(|s| s.is_auto_address())
        .map(|s| s.id.clone())
        .collect();
    let v4 = subnet.ip_version == 4;
    for p in gateways {
        let stateful: Vec<&FixedIp> = p
            .fixed_ips
            .iter()
            .filter(|f| !auto.contains(&f.subnet_id))
            .collect();
        let has_version = |f: &&FixedIp| parse_ip(&f.ip_address).is_ok_and(|ip| ip.is_ipv4() == v4);
        if stateful.len() > 1 || stateful.iter().any(has_version) {
            continue;
        }
        let mut reqs: Vec<FixedIpRequest> =
            p.fixed_ips.iter().map(FixedIpRequest::existing).collect();
        reqs.push(FixedIpRequest::new(Some(subnet.id.clone()), None));
        let port = match ports::set_service_port_ips(txn, &p, reqs) {
            Ok(port) => port,
            Err(e) if e.error_type == "IpAddressGenerationFailure" => continue,
            Err(e) => return Err(e),
        };
        // The router shows its own gateway's addresses.
        if port.device_owner == OWNER_ROUTER_GATEWAY
            && let Some(r) = txn.state.routers.get(&port.device_id)
        {
            let mut router = (**r).clone();
            if let Some(g) = router.external_gateway.as_mut() {
                g.external_fixed_ips = port.fixed_ips.clone();
            }
            touch(&mut router.std, txn.now);
            txn.put_router(router);
        }
    }
    Ok(())
}
