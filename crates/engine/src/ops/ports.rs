//! Ports: MAC generation, fixed IP allocation in every form Neutron accepts,
//! security groups, allowed address pairs, extra DHCP options and binding.
//! Addresses come from IPAM inside the writer, so no two ports ever get the
//! same one, and a freed address is reusable by the very next request.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use neutrino_ipam::{AddressRequest, Cidr, Ipam, IpamError, Mac, eui64, parse_ip};
use neutrino_model::body::{Body, Op, item_str};
use neutrino_model::query::{AttrValue as V, FilterType as T};
use neutrino_model::{
    AddressPair, ApiError, ApiResult, AuthContext, ExtraDhcpOpt, FixedIp, Network,
    OWNER_FLOATINGIP, OWNER_ROUTER_GATEWAY, OWNER_ROUTER_INTERFACE, Port, SecurityGroup,
};
use serde::Serialize;
use serde_json::{Map, Value};

use super::{check_quota, check_revision, ipam_error, new_id, new_std, touch};
use crate::resource::{Attr, Resource, ViewCtx, put_json, visible_all};
use crate::txn::Txn;
use crate::{Engine, State, ops, policy};

type A = Attr<Port>;

impl Resource for Port {
    const SINGULAR: &'static str = "port";
    const PLURAL: &'static str = "ports";
    const PATH: &'static str = "ports";
    const ATTRS: &'static [A] = &[
        A::value("id", |p| V::Str(&p.id)).filter(T::Str).sort(),
        A::value("name", |p| V::Str(&p.name))
            .set()
            .filter(T::Str)
            .sort(),
        A::value("network_id", |p| V::Str(&p.network_id))
            .post()
            .filter(T::Str)
            .sort(),
        A::value("admin_state_up", |p| V::Bool(p.admin_state_up))
            .set()
            .filter(T::Bool)
            .sort(),
        A::value("status", |p| V::Str(&p.status))
            .filter(T::Str)
            .sort(),
        A::value("mac_address", |p| V::Str(&p.mac_address))
            .set()
            .filter(T::Lower)
            .sort(),
        // `fixed_ips=ip_address=10.0.0.5` and `fixed_ips=subnet_id=…` match any entry.
        A::json("fixed_ips", |p, _, out| put_json(out, &p.fixed_ips))
            .compare(|p| {
                V::Many(
                    p.fixed_ips
                        .iter()
                        .flat_map(|f| {
                            [
                                format!("ip_address={}", f.ip_address),
                                format!("subnet_id={}", f.subnet_id),
                            ]
                        })
                        .collect(),
                )
            })
            .set()
            .filter(T::Str),
        A::value("device_id", |p| V::Str(&p.device_id))
            .set()
            .filter(T::Str)
            .sort(),
        A::value("device_owner", |p| V::Str(&p.device_owner))
            .set()
            .filter(T::Str)
            .sort(),
        A::value("security_groups", |p| V::Many(p.security_groups.clone()))
            .set()
            .filter(T::Str),
        A::value("port_security_enabled", |p| {
            V::Bool(p.port_security_enabled)
        })
        .set()
        .filter(T::Bool),
        A::json("allowed_address_pairs", |p, _, out| {
            put_json(out, &p.allowed_address_pairs)
        })
        .set(),
        A::json("extra_dhcp_opts", |p, _, out| {
            put_json(out, &p.extra_dhcp_opts)
        })
        .set(),
        A::value("binding:vnic_type", |p| V::Str(&p.binding_vnic_type))
            .set()
            .filter(T::Str),
        A::value("binding:host_id", |p| V::Str(&p.binding_host_id))
            .set()
            .filter(T::Str)
            .admin(),
        A::json("binding:profile", |p, _, out| {
            put_json(out, &p.binding_profile)
        })
        .set()
        .admin(),
        A::value("binding:vif_type", |p| V::Str(&p.binding_vif_type)).admin(),
        A::json("binding:vif_details", |p, _, out| {
            put_json(out, &p.binding_vif_details)
        })
        .admin(),
        A::value("dns_name", |p| V::Str(&p.dns_name))
            .set()
            .filter(T::Str),
        A::json("dns_assignment", dns_assignment),
        A::value("dns_domain", |p| V::Str(&p.dns_domain))
            .set()
            .filter(T::Str),
    ];
    type Update = PortRequest;

    fn all(state: &State) -> &imbl::OrdMap<String, Arc<Port>> {
        &state.ports
    }
    fn visible(ctx: &AuthContext, state: &State, p: &Port) -> bool {
        policy::can_see_port(ctx, state, p)
    }
    fn not_found(id: &str) -> ApiError {
        ApiError::not_found("PortNotFound", format!("Port {id} could not be found."))
    }
    fn put(txn: &mut Txn<'_>, p: Port) -> ApiResult<()> {
        txn.put_port(p);
        Ok(())
    }

    type Create = PortRequest;

    fn parse_create(_: &Engine, ctx: &AuthContext, b: Body) -> ApiResult<PortRequest> {
        parse(ctx, &b, Op::Create)
    }

    fn create_one(txn: &mut Txn<'_>, ctx: &AuthContext, r: PortRequest) -> ApiResult<Arc<Port>> {
        let network_id = r.network_id.clone().unwrap_or_default();
        let net = Network::find(txn.state, ctx, &network_id)?;
        let project = r
            .project_id
            .clone()
            .unwrap_or_else(|| ctx.project_id.clone());
        let owns_net = policy::owns(ctx, &net.std.project_id);
        if !owns_net && !net.shared {
            return Err(ApiError::forbidden("rule:create_port"));
        }
        if !owns_net {
            // On someone else's shared network a member may not pick addresses or MACs.
            let picks_ip = r
                .fixed_ips
                .as_ref()
                .is_some_and(|f| f.iter().any(|x| x.ip.is_some()));
            if picks_ip || r.mac.is_some() {
                return Err(ApiError::forbidden("rule:create_port:fixed_ips:ip_address"));
            }
            check_net_owner_attrs(&r, Op::Create)?;
        }
        let device_owner = r.device_owner.clone().unwrap_or_default();
        if device_owner.starts_with("network:") && !owns_net {
            return Err(ApiError::forbidden("rule:create_port:device_owner"));
        }
        check_router_device(
            txn,
            ctx,
            &device_owner,
            r.device_id.as_deref().unwrap_or_default(),
        )?;
        check_quota(txn, &project, "port", 1)?;
        let mac = match r.mac.clone().flatten() {
            Some(m) => {
                if txn
                    .state
                    .macs
                    .contains_key(&(network_id.clone(), m.clone()))
                {
                    return Err(ApiError::conflict(
                        "MacAddressInUse",
                        format!(
                            "Unable to complete operation for network {network_id}. The mac address {m} is in use."
                        ),
                    ));
                }
                m
            }
            None => generate_mac(txn, &network_id)?,
        };
        let trusted = device_owner.starts_with("network:");
        let port_security = if trusted {
            false
        } else {
            r.port_security_enabled.unwrap_or(net.port_security_enabled)
        };
        let id = new_id();
        let security_groups = match r.security_groups.clone() {
            Some(groups) => {
                check_groups(txn, ctx, &groups)?;
                if !port_security && !groups.is_empty() {
                    return Err(ApiError::bad_request(
                        "Port security must be enabled and port must have an IP address in order to use security groups.",
                    ));
                }
                groups
            }
            None if port_security => {
                vec![ops::security_groups::ensure_default_group(txn, &project)?]
            }
            None => Vec::new(),
        };
        let pairs = build_pairs(
            txn,
            r.allowed_address_pairs.clone().unwrap_or_default(),
            &mac,
            port_security,
        )?;
        let mut extra = Vec::new();
        merge_dhcp_opts(&mut extra, r.extra_dhcp_opts.clone().unwrap_or_default());
        let mac_bytes = mac.parse().unwrap_or(Mac::ZERO);
        let fixed_ips = allocate(
            txn,
            &net,
            &device_owner,
            mac_bytes,
            r.fixed_ips.clone(),
            &[],
        )?;
        let host = r.host_id.clone().unwrap_or_default();
        let p = Port {
            id,
            name: r.name.unwrap_or_default(),
            network_id,
            admin_state_up: r.admin_state_up.unwrap_or(true),
            status: "DOWN".into(),
            mac_address: mac,
            fixed_ips,
            device_id: r.device_id.unwrap_or_default(),
            device_owner,
            security_groups,
            port_security_enabled: port_security,
            allowed_address_pairs: pairs,
            extra_dhcp_opts: extra,
            binding_vif_type: if host.is_empty() {
                "unbound".into()
            } else {
                "binding_failed".into()
            },
            binding_host_id: host,
            binding_vnic_type: r.vnic_type.unwrap_or_else(|| "normal".into()),
            binding_profile: r.profile.unwrap_or_else(|| Value::Object(Map::new())),
            binding_vif_details: Value::Object(Map::new()),
            dns_name: r.dns_name.unwrap_or_default(),
            dns_domain: r.dns_domain.unwrap_or_default(),
            std: new_std(txn, project, r.description),
        };
        txn.put_port(p.clone());
        Ok(Arc::new(p))
    }

    fn parse_update(_: &Engine, ctx: &AuthContext, b: Body) -> ApiResult<PortRequest> {
        parse(ctx, &b, Op::Update)
    }

    fn apply_update(
        txn: &mut Txn<'_>,
        ctx: &AuthContext,
        cur: &Port,
        p: &mut Port,
        r: PortRequest,
    ) -> ApiResult<()> {
        let ctx = ctx.clone();
        let net = txn
            .state
            .networks
            .get(&cur.network_id)
            .cloned()
            .ok_or_else(|| Network::not_found(&cur.network_id))?;
        if !policy::owns(&ctx, &net.std.project_id) {
            check_net_owner_attrs(&r, Op::Update)?;
        }
        if let Some(v) = r.name {
            p.name = v;
        }
        if let Some(v) = r.description {
            p.std.description = v;
        }
        if let Some(v) = r.admin_state_up {
            p.admin_state_up = v;
        }
        if let Some(v) = r.device_id {
            p.device_id = v;
        }
        if let Some(v) = r.device_owner {
            if v.starts_with("network:") && !policy::owns(&ctx, &net.std.project_id) {
                return Err(ApiError::forbidden("rule:update_port:device_owner"));
            }
            p.device_owner = v;
        }
        if let Some(v) = r.dns_name {
            p.dns_name = v;
        }
        if let Some(v) = r.dns_domain {
            p.dns_domain = v;
        }
        if let Some(v) = r.vnic_type {
            p.binding_vnic_type = v;
        }
        if let Some(v) = r.profile {
            p.binding_profile = v;
        }
        if let Some(v) = r.host_id {
            if v != p.binding_host_id {
                // Moving a port to another host unbinds it until that host's agent wires it.
                p.status = "DOWN".into();
                p.binding_vif_type = if v.is_empty() {
                    "unbound".into()
                } else {
                    "binding_failed".into()
                };
            }
            p.binding_host_id = v;
        }
        if let Some(mac) = r.mac {
            let new_mac = match mac {
                Some(m) => m,
                None => generate_mac(txn, &p.network_id)?,
            };
            if new_mac != p.mac_address {
                if !p.binding_host_id.is_empty() {
                    return Err(ApiError::conflict(
                        "PortBound",
                        format!(
                            "Unable to complete operation on port {}, port is already bound, port type: {}, old_mac {}, new_mac {}.",
                            p.id, p.binding_vif_type, p.mac_address, new_mac
                        ),
                    ));
                }
                if txn
                    .state
                    .macs
                    .contains_key(&(p.network_id.clone(), new_mac.clone()))
                {
                    return Err(ApiError::conflict(
                        "MacAddressInUse",
                        format!(
                            "Unable to complete operation for network {}. The mac address {new_mac} is in use.",
                            p.network_id
                        ),
                    ));
                }
                p.mac_address = new_mac;
            }
        }
        if r.port_security_enabled.is_some()
            || r.security_groups.is_some()
            || r.allowed_address_pairs.is_some()
        {
            let ps = r.port_security_enabled.unwrap_or(p.port_security_enabled);
            let groups = match r.security_groups {
                Some(g) => {
                    check_groups(txn, &ctx, &g)?;
                    g
                }
                None => p.security_groups.clone(),
            };
            if !ps && !groups.is_empty() {
                return Err(ApiError::conflict(
                    "PortSecurityPortHasSecurityGroup",
                    "Port has security group associated. Cannot disable port security or ip address until security group is removed",
                ));
            }
            let pairs = match r.allowed_address_pairs {
                Some(pairs) => build_pairs(txn, pairs, &p.mac_address, ps)?,
                None if !ps && !p.allowed_address_pairs.is_empty() => {
                    return Err(ApiError::conflict(
                        "AddressPairAndPortSecurityRequired",
                        "Port Security must be enabled in order to have allowed address pairs on a port.",
                    ));
                }
                None => p.allowed_address_pairs.clone(),
            };
            p.port_security_enabled = ps;
            p.security_groups = groups;
            p.allowed_address_pairs = pairs;
        }
        if let Some(opts) = r.extra_dhcp_opts {
            merge_dhcp_opts(&mut p.extra_dhcp_opts, opts);
        }
        let mac_changed = p.mac_address != cur.mac_address;
        if r.fixed_ips.is_some() || mac_changed {
            let mac = p.mac_address.parse().unwrap_or(Mac::ZERO);
            let mut existing = cur.fixed_ips.clone();
            if mac_changed {
                // EUI-64 addresses follow the MAC: drop the old ones so they are recomputed.
                let auto: Vec<String> = txn
                    .state
                    .subnets_of(&p.network_id)
                    .filter(|s| s.is_auto_address())
                    .map(|s| s.id.clone())
                    .collect();
                for f in cur.fixed_ips.iter().filter(|f| auto.contains(&f.subnet_id)) {
                    if let Ok(ip) = parse_ip(&f.ip_address) {
                        txn.state
                            .ipam
                            .release(&f.subnet_id, ip)
                            .map_err(ipam_error)?;
                    }
                }
                existing.retain(|f| !auto.contains(&f.subnet_id));
            }
            let requested = r
                .fixed_ips
                .or_else(|| Some(existing.iter().map(FixedIpRequest::existing).collect()));
            p.fixed_ips = allocate_update(txn, &net, &p.device_owner, mac, requested, &existing)?;
            // A floating IP whose fixed address went away is no longer associated.
            let held: Vec<String> = p.fixed_ips.iter().map(|f| f.ip_address.clone()).collect();
            ops::floatingips::disassociate_port(txn, &p.id, |f| {
                f.fixed_ip_address
                    .as_ref()
                    .is_none_or(|ip| !held.contains(ip))
            });
        }
        if p.device_owner != cur.device_owner || p.device_id != cur.device_id {
            check_router_device(txn, &ctx, &p.device_owner, &p.device_id)?;
        }
        Ok(())
    }

    /// The network's owner may delete other projects' ports on it.
    fn check_delete(
        txn: &Txn<'_>,
        ctx: &AuthContext,
        cur: &Port,
        if_match: Option<u64>,
    ) -> ApiResult<()> {
        let net_owner = txn
            .state
            .networks
            .get(&cur.network_id)
            .is_some_and(|n| policy::owns(ctx, &n.std.project_id));
        if !net_owner {
            policy::require_owner(ctx, &cur.std.project_id, "delete_port")?;
        } else {
            policy::require_writer(ctx, "delete_port")?;
        }
        check_revision(&cur.std, if_match)?;
        check_not_service_port(txn, cur)
    }

    fn remove(txn: &mut Txn<'_>, _: &AuthContext, cur: Arc<Port>) -> ApiResult<()> {
        // Its floating IPs stay, unassociated.
        ops::floatingips::disassociate_port(txn, &cur.id, |_| true);
        release_port_ips(txn, &cur);
        txn.delete_port(&cur.id);
        Ok(())
    }

    /// A `network_id` filter walks only that network's ports.
    fn listed<'s>(
        state: &'s State,
        ctx: &AuthContext,
        pairs: &[(String, String)],
    ) -> Vec<&'s Arc<Port>> {
        let nets: Vec<&str> = pairs
            .iter()
            .filter(|(k, _)| k == "network_id")
            .map(|(_, v)| v.as_str())
            .collect();
        if nets.is_empty() {
            return visible_all(state, ctx);
        }
        let mut v: Vec<_> = nets
            .into_iter()
            .flat_map(|n| state.ports_of(n))
            .filter(|p| policy::can_see_port(ctx, state, p))
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }
}

#[derive(Serialize)]
struct DnsAssignment {
    hostname: String,
    ip_address: String,
    fqdn: String,
}

/// `host-10-0-0-5` / the port's dns_name, per fixed IP.
fn dns_assignment(p: &Port, cx: &ViewCtx<'_>, out: &mut Vec<u8>) {
    let domain = cx.dns_domain;
    let names: Vec<DnsAssignment> = p
        .fixed_ips
        .iter()
        .map(|ip| {
            let hostname = if p.dns_name.is_empty() || domain == "openstacklocal" {
                format!("host-{}", ip.ip_address.replace(['.', ':'], "-"))
            } else {
                p.dns_name.clone()
            };
            let fqdn = format!("{hostname}.{}.", domain.trim_end_matches('.'));
            DnsAssignment {
                hostname,
                ip_address: ip.ip_address.clone(),
                fqdn,
            }
        })
        .collect();
    put_json(out, &names);
}

const VNIC_TYPES: &[&str] = &[
    "normal",
    "direct",
    "macvtap",
    "baremetal",
    "direct-physical",
    "virtio-forwarder",
    "smart-nic",
    "vdpa",
    "accelerator-direct",
    "accelerator-direct-physical",
    "remote-managed",
];

/// One requested `fixed_ips` entry.
#[derive(Debug, Clone)]
pub struct FixedIpRequest {
    subnet_id: Option<String>,
    ip: Option<IpAddr>,
}

impl FixedIpRequest {
    pub fn new(subnet_id: Option<String>, ip: Option<IpAddr>) -> FixedIpRequest {
        FixedIpRequest { subnet_id, ip }
    }

    pub fn subnet_id(&self) -> Option<&str> {
        self.subnet_id.as_deref()
    }

    pub fn ip(&self) -> Option<IpAddr> {
        self.ip
    }

    /// Keeps an address a port already has.
    pub fn existing(f: &FixedIp) -> FixedIpRequest {
        FixedIpRequest {
            subnet_id: Some(f.subnet_id.clone()),
            ip: parse_ip(&f.ip_address).ok(),
        }
    }
}

/// One requested allowed address pair (the port's MAC when none is given).
#[derive(Debug, Clone, PartialEq)]
pub struct AddressPairRequest {
    ip_address: String,
    mac_address: Option<String>,
}

/// One requested extra DHCP option; no value deletes it on update.
#[derive(Debug, Clone)]
pub struct DhcpOptRequest {
    name: String,
    value: Option<String>,
    ip_version: u8,
}

/// The parsed, context-free part of a port request (create or update).
#[derive(Default)]
pub struct PortRequest {
    name: Option<String>,
    description: Option<String>,
    network_id: Option<String>,
    admin_state_up: Option<bool>,
    mac: Option<Option<String>>,
    fixed_ips: Option<Vec<FixedIpRequest>>,
    device_id: Option<String>,
    device_owner: Option<String>,
    security_groups: Option<Vec<String>>,
    port_security_enabled: Option<bool>,
    allowed_address_pairs: Option<Vec<AddressPairRequest>>,
    extra_dhcp_opts: Option<Vec<DhcpOptRequest>>,
    host_id: Option<String>,
    vnic_type: Option<String>,
    profile: Option<Value>,
    dns_name: Option<String>,
    dns_domain: Option<String>,
    project_id: Option<String>,
}

/// What only admins and the network's owner may give on a port of someone
/// else's (shared) network, as Neutron's policy says: port security and
/// allowed address pairs (they open the port's filters), and on update its
/// addresses and MAC (on create the check on picked addresses covers them).
fn check_net_owner_attrs(r: &PortRequest, op: Op) -> ApiResult<()> {
    let action = match op {
        Op::Create => "create_port",
        Op::Update => "update_port",
    };
    let update = op == Op::Update;
    for (given, attr) in [
        (r.port_security_enabled.is_some(), "port_security_enabled"),
        (r.allowed_address_pairs.is_some(), "allowed_address_pairs"),
        (update && r.fixed_ips.is_some(), "fixed_ips"),
        (update && r.mac.is_some(), "mac_address"),
    ] {
        if given {
            return Err(ApiError::forbidden(&format!(
                "rule:{action} and rule:{action}:{attr}"
            )));
        }
    }
    Ok(())
}

fn parse(ctx: &AuthContext, b: &Body, op: Op) -> ApiResult<PortRequest> {
    let mut r = PortRequest {
        name: b.name("name")?,
        description: b.string("description", 255)?,
        network_id: b.uuid("network_id")?,
        admin_state_up: b.bool("admin_state_up")?,
        device_id: b.string("device_id", 255)?,
        device_owner: b.string("device_owner", 255)?,
        port_security_enabled: b.bool("port_security_enabled")?,
        host_id: b.string("binding:host_id", 255)?,
        vnic_type: b.string("binding:vnic_type", 64)?,
        profile: b.dict("binding:profile")?,
        dns_name: b.string("dns_name", 255)?,
        dns_domain: ops::parse_dns_domain(b)?,
        ..PortRequest::default()
    };
    if op == Op::Create {
        b.required("network_id")?;
        r.project_id = Some(policy::target_project(
            ctx,
            b.string("project_id", 255)?,
            b.string("tenant_id", 255)?,
        )?);
    }
    if let Some(v) = b.raw("mac_address") {
        r.mac = Some(match v {
            Value::Null if op == Op::Update => None,
            Value::String(s) => Some(valid_mac(s)?.to_string()),
            other => {
                return Err(ApiError::invalid_attr(
                    "mac_address",
                    format!("'{other}' is not a valid MAC address"),
                ));
            }
        });
    }
    r.fixed_ips = b.list("fixed_ips")?.map(parse_fixed_ips).transpose()?;
    r.security_groups = b
        .string_list("security_groups", 36)?
        .map(parse_security_groups)
        .transpose()?;
    r.allowed_address_pairs = b
        .list("allowed_address_pairs")?
        .map(parse_address_pairs)
        .transpose()?;
    r.extra_dhcp_opts = b
        .list("extra_dhcp_opts")?
        .map(parse_dhcp_opts)
        .transpose()?;
    if let Some(v) = &r.vnic_type
        && !VNIC_TYPES.contains(&v.as_str())
    {
        return Err(ApiError::invalid_attr(
            "binding:vnic_type",
            format!("'{v}' is not in {VNIC_TYPES:?}"),
        ));
    }
    if (r.host_id.is_some() || r.profile.is_some()) && !ctx.is_admin() {
        return Err(ApiError::forbidden("rule:create_port:binding:host_id"));
    }
    if let Some(d) = &r.dns_name
        && !d.is_empty()
        && !is_hostname(d)
    {
        return Err(ApiError::invalid_attr(
            "dns_name",
            format!("'{d}' is not a valid DNS name"),
        ));
    }
    Ok(r)
}

/// `fixed_ips`: each a subnet, an address or both; no address twice.
fn parse_fixed_ips(items: Vec<Value>) -> ApiResult<Vec<FixedIpRequest>> {
    let mut out = Vec::with_capacity(items.len());
    let mut seen = Vec::new();
    for item in items {
        let Value::Object(o) = item else {
            return Err(ApiError::invalid_attr(
                "fixed_ips",
                "Invalid data format for fixed IP",
            ));
        };
        let subnet_id = item_str("fixed_ips", &o, "subnet_id")?;
        if let Some(s) = &subnet_id
            && !neutrino_model::body::is_uuid(s)
        {
            return Err(ApiError::invalid_attr(
                "fixed_ips",
                format!("'{s}' is not a valid UUID"),
            ));
        }
        let ip = match item_str("fixed_ips", &o, "ip_address")? {
            Some(s) => {
                let ip = parse_ip(&s).map_err(|e| ApiError::invalid_attr("fixed_ips", e))?;
                if seen.contains(&ip) {
                    return Err(ApiError::invalid_attr(
                        "fixed_ips",
                        format!("Duplicate IP address '{s}'"),
                    ));
                }
                seen.push(ip);
                Some(ip)
            }
            None => None,
        };
        if subnet_id.is_none() && ip.is_none() {
            return Err(ApiError::invalid_attr(
                "fixed_ips",
                "Exactly one of subnet_id or ip_address, or both, is required",
            ));
        }
        out.push(FixedIpRequest { subnet_id, ip });
    }
    Ok(out)
}

/// `security_groups`: UUIDs, each once (neutron-lib's `uuid_list`, which
/// looks for repeats first).
fn parse_security_groups(groups: Vec<String>) -> ApiResult<Vec<String>> {
    let mut repeated: Vec<&str> = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        if groups[..i].contains(g) && !repeated.contains(&g.as_str()) {
            repeated.push(g);
        }
    }
    if !repeated.is_empty() {
        return Err(ApiError::invalid_attr(
            "security_groups",
            format!("Duplicate items in the list: '{}'", repeated.join(", ")),
        ));
    }
    if let Some(g) = groups.iter().find(|g| !neutrino_model::body::is_uuid(g)) {
        return Err(ApiError::invalid_attr(
            "security_groups",
            format!("'{g}' is not a valid UUID"),
        ));
    }
    Ok(groups)
}

/// `allowed_address_pairs`: an address or a prefix, and an optional MAC.
fn parse_address_pairs(pairs: Vec<Value>) -> ApiResult<Vec<AddressPairRequest>> {
    let mut out: Vec<AddressPairRequest> = Vec::new();
    for p in pairs {
        let Value::Object(o) = p else {
            return Err(ApiError::invalid_attr(
                "allowed_address_pairs",
                "Allowed address pairs must be a list of dictionaries",
            ));
        };
        if let Some(k) = o.keys().find(|k| *k != "ip_address" && *k != "mac_address") {
            return Err(ApiError::invalid_attr(
                "allowed_address_pairs",
                format!("Unrecognized attribute '{k}'"),
            ));
        }
        let Some(ip) = item_str("allowed_address_pairs", &o, "ip_address")? else {
            return Err(ApiError::bad_request(
                "AllowedAddressPair must contain ip_address",
            ));
        };
        let ip = if ip.contains('/') {
            let c = Cidr::parse(&ip)
                .map_err(|e| ApiError::invalid_attr("allowed_address_pairs", IpamError::from(e)))?;
            check_not_multicast_range(&c)?;
            c.to_string()
        } else {
            let a =
                parse_ip(&ip).map_err(|e| ApiError::invalid_attr("allowed_address_pairs", e))?;
            if a.is_multicast() {
                return Err(ApiError::bad_request(format!(
                    "IP {a} is a multicast address, which is not supported."
                )));
            }
            a.to_string()
        };
        // A pair lets the port send from its address: never a group's
        // (neutron-lib's `aap-reject-multicast`).
        let mac = item_str("allowed_address_pairs", &o, "mac_address")?
            .map(|m| valid_mac(&m))
            .transpose()?;
        if let Some(m) = mac.filter(Mac::is_multicast) {
            return Err(ApiError::bad_request(format!(
                "MAC address {m} is a multicast address, which is not supported."
            )));
        }
        let pair = AddressPairRequest {
            ip_address: ip,
            mac_address: mac.map(|m| m.to_string()),
        };
        if out.contains(&pair) {
            return Err(ApiError::bad_request(
                "Request contains duplicate address pair",
            ));
        }
        out.push(pair);
    }
    Ok(out)
}

/// An address pair's prefix may not reach into the multicast ranges
/// (224.0.0.0/4, ff00::/8); `0.0.0.0/0`, any IPv4 address, is allowed.
fn check_not_multicast_range(c: &Cidr) -> ApiResult<()> {
    let group = if c.is_v4() { "224.0.0.0/4" } else { "ff00::/8" };
    let group = Cidr::parse(group).map_err(ipam_error)?;
    let any_v4 = c.is_v4() && c.prefix() == 0;
    if !any_v4 && c.overlaps(&group) {
        return Err(ApiError::bad_request(format!(
            "Subnet {c} overlaps with multicast range {group}, which is not supported."
        )));
    }
    Ok(())
}

/// `extra_dhcp_opts`: a name, an optional value and an IP version.
fn parse_dhcp_opts(opts: Vec<Value>) -> ApiResult<Vec<DhcpOptRequest>> {
    let mut out = Vec::new();
    for o in opts {
        let Value::Object(o) = o else {
            return Err(ApiError::invalid_attr(
                "extra_dhcp_opts",
                "each option must be a dictionary",
            ));
        };
        if let Some(k) = o
            .keys()
            .find(|k| !matches!(k.as_str(), "opt_name" | "opt_value" | "ip_version"))
        {
            return Err(ApiError::invalid_attr(
                "extra_dhcp_opts",
                format!("Unrecognized attribute '{k}'"),
            ));
        }
        let Some(name) = item_str("extra_dhcp_opts", &o, "opt_name")? else {
            return Err(ApiError::invalid_attr(
                "extra_dhcp_opts",
                "opt_name is required",
            ));
        };
        if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
            return Err(ApiError::invalid_attr(
                "extra_dhcp_opts",
                format!("'{name}' is not a valid option name"),
            ));
        }
        let value = item_str("extra_dhcp_opts", &o, "opt_value")?;
        if value
            .as_ref()
            .is_some_and(|v| v.len() > 255 || v.contains('\n'))
        {
            return Err(ApiError::invalid_attr(
                "extra_dhcp_opts",
                "opt_value must be one line of at most 255 characters",
            ));
        }
        let version = match o.get("ip_version") {
            None | Some(Value::Null) => 4,
            Some(v) => match v
                .as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            {
                Some(4) => 4,
                Some(6) => 6,
                _ => {
                    return Err(ApiError::invalid_attr(
                        "extra_dhcp_opts",
                        format!("'{v}' is not a valid IP version"),
                    ));
                }
            },
        };
        out.push(DhcpOptRequest {
            name,
            value,
            ip_version: version,
        });
    }
    Ok(out)
}

fn is_hostname(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

/// neutron-lib's `validate_mac_address`: any MAC but all-zeros and
/// broadcast (a multicast-bit MAC is valid).
fn valid_mac(s: &str) -> ApiResult<Mac> {
    match s.parse::<Mac>() {
        Ok(m) if !m.is_zero() && !m.is_broadcast() => Ok(m),
        _ => Err(ApiError::invalid_attr(
            "mac_address",
            format!("'{s}' is not a valid MAC address"),
        )),
    }
}

/// A random MAC under `base_mac`, unique on the network.
fn generate_mac(txn: &Txn<'_>, network_id: &str) -> ApiResult<String> {
    let base = txn.config.base_mac.octets();
    for _ in 0..16 {
        let mut rnd = [0u8; 3];
        getrandom::fill(&mut rnd).map_err(|_| ApiError::internal())?;
        let fourth = if base[3] != 0 { base[3] } else { rnd[0] };
        let mac = Mac::new([base[0], base[1], base[2], fourth, rnd[1], rnd[2]]).to_string();
        if !txn
            .state
            .macs
            .contains_key(&(network_id.to_string(), mac.clone()))
        {
            return Ok(mac);
        }
    }
    Err(ApiError::new(
        neutrino_model::ErrorKind::Unavailable,
        "MacAddressGenerationFailure",
        format!("Unable to generate unique mac on network {network_id}."),
    ))
}

/// The groups exist for the caller, and are all stateful or all stateless
/// (one port's traffic is tracked or not).
fn check_groups(txn: &Txn<'_>, ctx: &AuthContext, groups: &[String]) -> ApiResult<()> {
    let mut kinds = BTreeSet::new();
    for g in groups {
        kinds.insert(SecurityGroup::find(txn.state, ctx, g)?.stateful);
    }
    if kinds.len() > 1 {
        return Err(ApiError::conflict(
            "SecurityGroupConflict",
            "Error Cannot apply both stateful and stateless security groups on the same port at the same time while attempting the operation.",
        ));
    }
    Ok(())
}

fn build_pairs(
    txn: &Txn<'_>,
    pairs: Vec<AddressPairRequest>,
    mac: &str,
    port_security: bool,
) -> ApiResult<Vec<AddressPair>> {
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    if !port_security {
        return Err(ApiError::conflict(
            "AddressPairAndPortSecurityRequired",
            "Port Security must be enabled in order to have allowed address pairs on a port.",
        ));
    }
    if pairs.len() > txn.config.max_allowed_address_pairs {
        return Err(ApiError::bad_request(format!(
            "The number of allowed address pair exceeds the maximum {}.",
            txn.config.max_allowed_address_pairs
        )));
    }
    Ok(pairs
        .into_iter()
        .map(|p| AddressPair {
            ip_address: p.ip_address,
            mac_address: p.mac_address.unwrap_or_else(|| mac.to_string()),
        })
        .collect())
}

/// Neutron's merge semantics: upsert by (name, version); a null value deletes.
fn merge_dhcp_opts(current: &mut Vec<ExtraDhcpOpt>, updates: Vec<DhcpOptRequest>) {
    for DhcpOptRequest {
        name,
        value,
        ip_version: version,
    } in updates
    {
        let pos = current
            .iter()
            .position(|o| o.opt_name == name && o.ip_version == version);
        match (pos, value) {
            (Some(i), None) => {
                current.remove(i);
            }
            (Some(i), Some(v)) => current[i].opt_value = v,
            (None, Some(v)) => current.push(ExtraDhcpOpt {
                opt_name: name,
                opt_value: v,
                ip_version: version,
            }),
            (None, None) => {}
        }
    }
}

/// Computes a port's fixed IPs from the request (`None` = not specified) and
/// the addresses it has now, allocating and releasing through IPAM.
fn allocate(
    txn: &mut Txn<'_>,
    net: &Network,
    device_owner: &str,
    mac: Mac,
    requested: Option<Vec<FixedIpRequest>>,
    existing: &[FixedIp],
) -> ApiResult<Vec<FixedIp>> {
    let subnets: Vec<_> = txn.state.subnets_of(&net.id).cloned().collect();
    let router_port = device_owner.starts_with("network:router");
    let mut result: Vec<FixedIp> = Vec::new();
    let mut keep: Vec<FixedIp> = Vec::new();
    match &requested {
        None => {
            // One IPv4 address, one stateful IPv6 address, and EUI-64 on auto-address subnets.
            for version in [4u8, 6] {
                let candidates: Vec<_> = subnets
                    .iter()
                    .filter(|s| s.ip_version == version && !s.is_auto_address())
                    .collect();
                if candidates.is_empty() {
                    continue;
                }
                let mut got = false;
                for s in &candidates {
                    match txn.state.ipam.allocate(&s.id, AddressRequest::Any) {
                        Ok(ip) => {
                            result.push(FixedIp {
                                subnet_id: s.id.clone(),
                                ip_address: ip.to_string(),
                            });
                            got = true;
                            break;
                        }
                        Err(neutrino_ipam::IpamError::Exhausted { .. }) => continue,
                        Err(e) => return Err(ipam_error(e)),
                    }
                }
                if !got {
                    return Err(ApiError::conflict(
                        "IpAddressGenerationFailure",
                        format!("No more IP addresses available on network {}.", net.id),
                    ));
                }
            }
        }
        Some(reqs) => {
            if !reqs.is_empty() && subnets.is_empty() {
                return Err(ApiError::bad_request(
                    "IP allocation requires subnets for network",
                ));
            }
            // Explicit addresses first, then "any address from subnet S".
            let mut ordered: Vec<&FixedIpRequest> =
                reqs.iter().filter(|r| r.ip.is_some()).collect();
            ordered.extend(reqs.iter().filter(|r| r.ip.is_none()));
            for req in ordered {
                let subnet = match (&req.subnet_id, req.ip) {
                    (Some(sid), ip) => {
                        let Some(s) = subnets.iter().find(|s| &s.id == sid) else {
                            return Err(ApiError::bad_request(format!(
                                "Failed to create port on network {}, because fixed_ips included invalid subnet {sid}",
                                net.id
                            )));
                        };
                        if let Some(ip) = ip {
                            let cidr = Cidr::parse(&s.cidr).map_err(ipam_error)?;
                            if !cidr.contains(ip) {
                                return Err(ApiError::bad_request(format!(
                                    "IP address {ip} is not a valid IP for the specified subnet."
                                ))
                                .with_type("InvalidIpForSubnet"));
                            }
                        }
                        s
                    }
                    (None, Some(ip)) => subnets
                        .iter()
                        .find(|s| Cidr::parse(&s.cidr).is_ok_and(|c| c.contains(ip)))
                        .ok_or_else(|| {
                            ApiError::bad_request(format!(
                                "IP address {ip} is not a valid IP for any of the subnets on the specified network."
                            ))
                            .with_type("InvalidIpForNetwork")
                        })?,
                    (None, None) => continue,
                };
                // Keep an address the port already has.
                let have = existing.iter().find(|f| {
                    f.subnet_id == subnet.id
                        && !keep.contains(f)
                        && req
                            .ip
                            .is_none_or(|ip| parse_ip(&f.ip_address).ok() == Some(ip))
                });
                if let Some(f) = have {
                    keep.push(f.clone());
                    continue;
                }
                let ip = if subnet.is_auto_address() && !router_port {
                    let cidr = Cidr::parse(&subnet.cidr).map_err(ipam_error)?;
                    let auto = IpAddr::V6(eui64(&cidr, mac).map_err(ipam_error)?);
                    if req.ip.is_some_and(|ip| ip != auto) {
                        return Err(ApiError::bad_request(format!(
                            "IPv6 address {} can not be directly assigned to a port on subnet {} since the subnet is configured for automatic addresses",
                            req.ip.map(|i| i.to_string()).unwrap_or_default(),
                            subnet.id
                        ))
                        .with_type("AllocationOnAutoAddressSubnet"));
                    }
                    txn.state
                        .ipam
                        .allocate(&subnet.id, AddressRequest::Specific(auto))
                        .map_err(ipam_error)?
                } else {
                    let req = req.ip.map_or(AddressRequest::Any, AddressRequest::Specific);
                    txn.state
                        .ipam
                        .allocate(&subnet.id, req)
                        .map_err(|e| match e {
                            neutrino_ipam::IpamError::Exhausted { .. } => ApiError::conflict(
                                "IpAddressGenerationFailure",
                                format!("No more IP addresses available on network {}.", net.id),
                            ),
                            e => ipam_error(e),
                        })?
                };
                result.push(FixedIp {
                    subnet_id: subnet.id.clone(),
                    ip_address: ip.to_string(),
                });
            }
        }
    }
    // Auto-address (SLAAC) subnets are always included, unless the port
    // explicitly asked for no addresses at creation.
    let explicit_none = requested.as_ref().is_some_and(Vec::is_empty) && existing.is_empty();
    if !router_port && !explicit_none {
        for s in subnets.iter().filter(|s| s.is_auto_address()) {
            let covered = result
                .iter()
                .chain(keep.iter())
                .any(|f| f.subnet_id == s.id);
            if covered {
                continue;
            }
            if let Some(f) = existing.iter().find(|f| f.subnet_id == s.id) {
                keep.push(f.clone());
                continue;
            }
            let cidr = Cidr::parse(&s.cidr).map_err(ipam_error)?;
            let auto = IpAddr::V6(eui64(&cidr, mac).map_err(ipam_error)?);
            let ip = txn
                .state
                .ipam
                .allocate(&s.id, AddressRequest::Specific(auto))
                .map_err(ipam_error)?;
            result.push(FixedIp {
                subnet_id: s.id.clone(),
                ip_address: ip.to_string(),
            });
        }
    }
    // Release what the port had and no longer keeps.
    for f in existing {
        if !keep.contains(f)
            && let Ok(ip) = parse_ip(&f.ip_address)
        {
            txn.state
                .ipam
                .release(&f.subnet_id, ip)
                .map_err(ipam_error)?;
        }
    }
    // Keep the port's original order for addresses it keeps, new ones after.
    let mut out: Vec<FixedIp> = existing
        .iter()
        .filter(|f| keep.contains(f))
        .cloned()
        .collect();
    out.extend(result);
    Ok(out)
}

/// Returns a port's addresses to IPAM (reusable at once).
pub fn release_port_ips(txn: &mut Txn<'_>, p: &Port) {
    for f in &p.fixed_ips {
        if let Ok(ip) = parse_ip(&f.ip_address) {
            let _ = txn.state.ipam.release(&f.subnet_id, ip);
        }
    }
}

/// Updates keep SLAAC addresses the request does not mention (Neutron keeps them).
fn allocate_update(
    txn: &mut Txn<'_>,
    net: &Network,
    owner: &str,
    mac: Mac,
    requested: Option<Vec<FixedIpRequest>>,
    existing: &[FixedIp],
) -> ApiResult<Vec<FixedIp>> {
    let mut requested = requested.unwrap_or_default();
    if !owner.starts_with("network:router") {
        let auto: Vec<String> = txn
            .state
            .subnets_of(&net.id)
            .filter(|s| s.is_auto_address())
            .map(|s| s.id.clone())
            .collect();
        for f in existing.iter().filter(|f| auto.contains(&f.subnet_id)) {
            if !requested
                .iter()
                .any(|r| r.subnet_id.as_deref() == Some(f.subnet_id.as_str()))
            {
                requested.push(FixedIpRequest::existing(f));
            }
        }
    }
    allocate(txn, net, owner, mac, Some(requested), existing)
}

/// Creates a port the L3 API owns (router interface or gateway, floating IP):
/// no policy checks (the router or FIP operation made them), trusted (no
/// security groups, no port security), addresses from IPAM as requested
/// (`None` = Neutron's default: one IPv4, one IPv6).
pub fn create_service_port(
    txn: &mut Txn<'_>,
    net: &Network,
    project: String,
    owner: &str,
    device_id: &str,
    fixed_ips: Option<Vec<FixedIpRequest>>,
) -> ApiResult<Port> {
    let mac = generate_mac(txn, &net.id)?;
    let mac_bytes = mac.parse().unwrap_or(Mac::ZERO);
    let fixed_ips = allocate(txn, net, owner, mac_bytes, fixed_ips, &[])?;
    let p = Port {
        id: new_id(),
        name: String::new(),
        network_id: net.id.clone(),
        admin_state_up: true,
        // Floating IP ports are never bound: Neutron shows them N/A.
        status: if owner == OWNER_FLOATINGIP {
            "N/A".into()
        } else {
            "DOWN".into()
        },
        mac_address: mac,
        fixed_ips,
        device_id: device_id.to_string(),
        device_owner: owner.to_string(),
        security_groups: Vec::new(),
        port_security_enabled: false,
        allowed_address_pairs: Vec::new(),
        extra_dhcp_opts: Vec::new(),
        binding_host_id: String::new(),
        binding_vnic_type: "normal".into(),
        binding_profile: Value::Object(Map::new()),
        binding_vif_type: "unbound".into(),
        binding_vif_details: Value::Object(Map::new()),
        dns_name: String::new(),
        dns_domain: String::new(),
        std: new_std(txn, project, None),
    };
    txn.put_port(p.clone());
    Ok(p)
}

/// Replaces a service port's addresses with `requested` (kept addresses stay,
/// the others are released): a gateway's new external IPs, or an interface
/// losing one of its subnets.
pub fn set_service_port_ips(
    txn: &mut Txn<'_>,
    port: &Port,
    requested: Vec<FixedIpRequest>,
) -> ApiResult<Port> {
    let net = txn
        .state
        .networks
        .get(&port.network_id)
        .cloned()
        .ok_or_else(|| Network::not_found(&port.network_id))?;
    let mac = port.mac_address.parse().unwrap_or(Mac::ZERO);
    let mut p = port.clone();
    p.fixed_ips = allocate(
        txn,
        &net,
        &port.device_owner,
        mac,
        Some(requested),
        &port.fixed_ips,
    )?;
    touch(&mut p.std, txn.now);
    txn.put_port(p.clone());
    Ok(p)
}

/// Ports the L3 API owns may not be deleted through /ports while their
/// router or floating IP exists (Neutron's `prevent_l3_port_deletion`).
fn check_not_service_port(txn: &Txn<'_>, p: &Port) -> ApiResult<()> {
    let owned = match p.device_owner.as_str() {
        OWNER_ROUTER_INTERFACE | OWNER_ROUTER_GATEWAY => {
            txn.state.routers.contains_key(&p.device_id)
        }
        OWNER_FLOATINGIP => txn.state.floatingips.contains_key(&p.device_id),
        _ => false,
    };
    if owned {
        return Err(ApiError::conflict(
            "ServicePortInUse",
            format!(
                "Port {} cannot be deleted directly via the port API: has device owner {}.",
                p.id, p.device_owner
            ),
        ));
    }
    Ok(())
}

/// A port may name a router as its device only if the caller owns that
/// router (Neutron's `DeviceIDNotOwnedByTenant`).
fn check_router_device(
    txn: &Txn<'_>,
    ctx: &AuthContext,
    owner: &str,
    device_id: &str,
) -> ApiResult<()> {
    if !owner.starts_with("network:router") || device_id.is_empty() || ctx.is_admin() {
        return Ok(());
    }
    match txn.state.routers.get(device_id) {
        Some(r) if r.std.project_id != ctx.project_id => Err(ApiError::conflict(
            "DeviceIDNotOwnedByTenant",
            format!(
                "The following device_id {device_id} is not owned by your tenant or matches another tenants router."
            ),
        )),
        _ => Ok(()),
    }
}

/// Creates a port inside a writer job that does more (the agents' DHCP ports).
pub fn create_in(
    txn: &mut Txn<'_>,
    ctx: &AuthContext,
    m: Map<String, Value>,
) -> ApiResult<Arc<Port>> {
    let r = parse(ctx, &Port::body(m, Op::Create)?, Op::Create)?;
    Port::create_one(txn, ctx, r)
}
