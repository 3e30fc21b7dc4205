//! Networks: creation with a segment (provider attributes for admins, a
//! tenant segment from the configured ranges otherwise), updates, and delete
//! with Neutron's in-use rules.

use std::sync::Arc;

use neutrino_model::body::{Attr, Body, Op, attr};
use neutrino_model::{ApiError, ApiResult, AuthContext, Network, OWNER_ROUTER_GATEWAY};
use serde_json::{Map, Value};

use super::ports::release_port_ips;
use super::{check_change, check_quota, new_id, new_std, touch};
use crate::policy;
use crate::txn::Txn;
use crate::{Engine, ops};

const ATTRS: &[Attr] = &[
    attr("name", true, true),
    attr("description", true, true),
    attr("admin_state_up", true, true),
    attr("shared", true, true),
    attr("router:external", true, true),
    attr("mtu", true, true),
    attr("port_security_enabled", true, true),
    attr("provider:network_type", true, true),
    attr("provider:physical_network", true, true),
    attr("provider:segmentation_id", true, true),
    attr("project_id", true, false),
    attr("tenant_id", true, false),
];

/// A validated create request.
struct NewNetwork {
    name: String,
    description: Option<String>,
    admin_state_up: bool,
    shared: bool,
    router_external: bool,
    mtu: Option<u32>,
    port_security_enabled: bool,
    network_type: Option<String>,
    physical_network: Option<String>,
    segmentation_id: Option<u32>,
    project_id: String,
}

fn parse_create(ctx: &AuthContext, m: Map<String, Value>) -> ApiResult<NewNetwork> {
    let b = Body::new(m, ATTRS, Op::Create)?;
    let n = NewNetwork {
        name: b.name("name")?.unwrap_or_default(),
        description: b.string("description", 255)?,
        admin_state_up: b.bool("admin_state_up")?.unwrap_or(true),
        shared: b.bool("shared")?.unwrap_or(false),
        router_external: b.bool("router:external")?.unwrap_or(false),
        mtu: b.u32_in("mtu", 68, 65535)?.flatten(),
        port_security_enabled: b.bool("port_security_enabled")?.unwrap_or(true),
        network_type: b.nullable_string("provider:network_type", 32)?.flatten(),
        physical_network: b
            .nullable_string("provider:physical_network", 64)?
            .flatten(),
        segmentation_id: b
            .u32_in("provider:segmentation_id", 0, 16_777_215)?
            .flatten(),
        project_id: policy::target_project(
            ctx,
            b.string("project_id", 255)?,
            b.string("tenant_id", 255)?,
        )?,
    };
    if (n.shared || n.router_external) && !ctx.is_admin() {
        return Err(ApiError::forbidden("rule:create_network:shared"));
    }
    let provider =
        n.network_type.is_some() || n.physical_network.is_some() || n.segmentation_id.is_some();
    if provider && !ctx.is_admin() {
        return Err(ApiError::forbidden(
            "rule:create_network:provider:network_type",
        ));
    }
    Ok(n)
}

pub async fn create(
    engine: &Engine,
    ctx: &AuthContext,
    items: Vec<Map<String, Value>>,
) -> ApiResult<Vec<Arc<Network>>> {
    policy::require_writer(ctx, "create_network")?;
    let reqs = items
        .into_iter()
        .map(|m| parse_create(ctx, m))
        .collect::<ApiResult<Vec<_>>>()?;
    engine
        .write(move |txn| {
            let mut out = Vec::with_capacity(reqs.len());
            for r in reqs {
                check_quota(txn, &r.project_id, "network", 1)?;
                ops::security_groups::ensure_default_group(txn, &r.project_id)?;
                let (network_type, physnet, seg) = allocate_segment(txn, &r)?;
                let max_mtu = txn.config.default_mtu(&network_type);
                if let Some(mtu) = r.mtu
                    && mtu > max_mtu
                {
                    return Err(ApiError::invalid_input(format!(
                        "Requested MTU is too big, maximum is {max_mtu}"
                    )));
                }
                let n = Network {
                    id: new_id(),
                    name: r.name,
                    admin_state_up: r.admin_state_up,
                    status: "ACTIVE".into(),
                    shared: r.shared,
                    router_external: r.router_external,
                    mtu: r.mtu.unwrap_or(max_mtu),
                    port_security_enabled: r.port_security_enabled,
                    network_type,
                    physical_network: physnet,
                    segmentation_id: seg,
                    std: new_std(txn, r.project_id, r.description),
                };
                txn.put_network(n.clone());
                out.push(Arc::new(n));
            }
            Ok(out)
        })
        .await
}

/// Picks the network's segment: the admin's provider attributes, checked and
/// reserved, or the first tenant network type with a free segment.
fn allocate_segment(
    txn: &Txn<'_>,
    r: &NewNetwork,
) -> ApiResult<(String, Option<String>, Option<u32>)> {
    let cfg = txn.config;
    let used = |t: &str, p: &str, id: u32| {
        txn.state
            .segments
            .contains(&(t.to_string(), p.to_string(), id))
    };
    let Some(t) = r.network_type.as_deref() else {
        if r.physical_network.is_some() || r.segmentation_id.is_some() {
            return Err(ApiError::invalid_input("provider:network_type required"));
        }
        for t in &cfg.tenant_network_types {
            match t.as_str() {
                "vxlan" => {
                    for &(lo, hi) in &cfg.vxlan_ranges {
                        if let Some(id) = first_free(txn, "vxlan", "", lo, hi) {
                            return Ok(("vxlan".into(), None, Some(id)));
                        }
                    }
                }
                "vlan" => {
                    for (p, lo, hi) in &cfg.vlan_ranges {
                        if let Some(id) = first_free(txn, "vlan", p, *lo, *hi) {
                            return Ok(("vlan".into(), Some(p.clone()), Some(id)));
                        }
                    }
                }
                "local" => return Ok(("local".into(), None, None)),
                _ => {}
            }
        }
        return Err(ApiError::new(
            neutrino_model::ErrorKind::Unavailable,
            "NoNetworkAvailable",
            "Unable to create the network. No tenant network is available for allocation.",
        ));
    };
    match t {
        "local" => {
            if r.physical_network.is_some() || r.segmentation_id.is_some() {
                return Err(ApiError::invalid_input(
                    "provider:physical_network and provider:segmentation_id must not be set for local networks",
                ));
            }
            Ok(("local".into(), None, None))
        }
        "flat" => {
            let Some(p) = r.physical_network.clone() else {
                return Err(ApiError::invalid_input(
                    "provider:physical_network required for flat provider network",
                ));
            };
            if r.segmentation_id.is_some() {
                return Err(ApiError::invalid_input(
                    "provider:segmentation_id prohibited for flat provider network",
                ));
            }
            if !cfg.flat_networks.iter().any(|f| f == "*" || *f == p) {
                return Err(ApiError::invalid_input(format!(
                    "physical_network '{p}' unknown for flat provider network"
                )));
            }
            if used("flat", &p, 0) {
                return Err(ApiError::conflict(
                    "FlatNetworkInUse",
                    format!("Unable to create the flat network. Physical network {p} is in use."),
                ));
            }
            Ok(("flat".into(), Some(p), None))
        }
        "vlan" => {
            let Some(p) = r.physical_network.clone() else {
                return Err(ApiError::invalid_input(
                    "provider:physical_network required for VLAN provider network",
                ));
            };
            if !cfg.is_physnet_known(&p) {
                return Err(ApiError::invalid_input(format!(
                    "physical_network '{p}' unknown for VLAN provider network"
                )));
            }
            let id = match r.segmentation_id {
                Some(id) if !(1..=4094).contains(&id) => {
                    return Err(ApiError::invalid_input(format!(
                        "provider:segmentation_id out of range ({id} is not in 1 through 4094)"
                    )));
                }
                Some(id) => id,
                None => cfg
                    .vlan_ranges
                    .iter()
                    .filter(|(rp, _, _)| *rp == p)
                    .find_map(|(_, lo, hi)| first_free(txn, "vlan", &p, *lo, *hi))
                    .ok_or_else(|| ApiError::new(neutrino_model::ErrorKind::Unavailable, "NoNetworkAvailable",
                        "Unable to create the network. No tenant network is available for allocation."))?,
            };
            if used("vlan", &p, id) {
                return Err(ApiError::conflict(
                    "VlanIdInUse",
                    format!(
                        "Unable to create the network. The VLAN {id} on physical network {p} is in use."
                    ),
                ));
            }
            Ok(("vlan".into(), Some(p), Some(id)))
        }
        "vxlan" => {
            if r.physical_network.is_some() {
                return Err(ApiError::invalid_input(
                    "provider:physical_network specified for vxlan network",
                ));
            }
            let id = match r.segmentation_id {
                Some(0) => return Err(ApiError::invalid_input("provider:segmentation_id out of range (1 through 16777215)")),
                Some(id) => id,
                None => cfg
                    .vxlan_ranges
                    .iter()
                    .find_map(|(lo, hi)| first_free(txn, "vxlan", "", *lo, *hi))
                    .ok_or_else(|| ApiError::new(neutrino_model::ErrorKind::Unavailable, "NoNetworkAvailable",
                        "Unable to create the network. No tenant network is available for allocation."))?,
            };
            if used("vxlan", "", id) {
                return Err(ApiError::conflict(
                    "TunnelIdInUse",
                    format!("Unable to create the network. The tunnel ID {id} is in use."),
                ));
            }
            Ok(("vxlan".into(), None, Some(id)))
        }
        other => Err(ApiError::invalid_input(format!(
            "network_type value '{other}' not supported"
        ))),
    }
}

/// The lowest free segmentation id in `lo..=hi` (walks only the ids in use).
fn first_free(txn: &Txn<'_>, t: &str, physnet: &str, lo: u32, hi: u32) -> Option<u32> {
    let mut next = lo;
    let start = (t.to_string(), physnet.to_string(), lo);
    let end = (t.to_string(), physnet.to_string(), hi);
    for (_, _, id) in txn.state.segments.range(start..=end) {
        if *id > next {
            break;
        }
        next = id.checked_add(1)?;
    }
    (next <= hi).then_some(next)
}

pub async fn update(
    engine: &Engine,
    ctx: &AuthContext,
    id: String,
    m: Map<String, Value>,
    if_match: Option<u64>,
) -> ApiResult<Arc<Network>> {
    let b = Body::new(m, ATTRS, Op::Update)?;
    let name = b.name("name")?;
    let description = b.string("description", 255)?;
    let admin_state_up = b.bool("admin_state_up")?;
    let shared = b.bool("shared")?;
    let external = b.bool("router:external")?;
    let mtu = b.u32_in("mtu", 68, 65535)?.flatten();
    let port_security = b.bool("port_security_enabled")?;
    let provider_type = b.nullable_string("provider:network_type", 32)?;
    let provider_physnet = b.nullable_string("provider:physical_network", 64)?;
    let provider_seg = b.u32_in("provider:segmentation_id", 0, 16_777_215)?;
    if (shared.is_some() || external.is_some()) && !ctx.is_admin() {
        return Err(ApiError::forbidden("rule:update_network:shared"));
    }
    let ctx = ctx.clone();
    engine
        .write(move |txn| {
            let cur = visible_network(txn, &ctx, &id)?;
            check_change(&ctx, &cur.std, "update_network", if_match)?;
            let provider_given = provider_type.is_some() || provider_physnet.is_some() || provider_seg.is_some();
            if provider_given {
                if !ctx.is_admin() {
                    return Err(ApiError::forbidden("rule:update_network:provider:network_type"));
                }
                let same = provider_type.as_ref().is_none_or(|t| t.as_deref() == Some(cur.network_type.as_str()))
                    && provider_physnet.as_ref().is_none_or(|p| *p == cur.physical_network)
                    && provider_seg.as_ref().is_none_or(|s| *s == cur.segmentation_id);
                if !same {
                    return Err(ApiError::invalid_input("Plugin does not support updating provider attributes"));
                }
            }
            let mut n = (*cur).clone();
            if let Some(v) = name {
                n.name = v;
            }
            if let Some(v) = description {
                n.std.description = v;
            }
            if let Some(v) = admin_state_up {
                n.admin_state_up = v;
            }
            if let Some(v) = shared {
                if !v && n.shared {
                    let foreign = txn.state.ports_of(&n.id).any(|p| p.std.project_id != n.std.project_id && !p.is_network_owned());
                    if foreign {
                        return Err(ApiError::conflict("InvalidSharedSetting", format!(
                            "Unable to reconfigure sharing settings for network {}. Multiple tenants are using it.", n.id
                        )));
                    }
                }
                n.shared = v;
            }
            if let Some(v) = external {
                // Routers' gateways need the network to stay external.
                if !v && n.router_external && txn.state.ports_of(&n.id).any(|p| p.device_owner == OWNER_ROUTER_GATEWAY) {
                    return Err(ApiError::conflict("ExternalNetworkInUse", format!(
                        "External network {} cannot be updated to be made non-external, since it has existing gateway ports.", n.id
                    )));
                }
                n.router_external = v;
            }
            if let Some(v) = mtu {
                let max = txn.config.default_mtu(&n.network_type);
                if v > max {
                    return Err(ApiError::invalid_input(format!("Requested MTU is too big, maximum is {max}")));
                }
                if v < 1280 && txn.state.subnets_of(&n.id).any(|s| s.ip_version == 6) {
                    return Err(ApiError::conflict("NetworkMTUSubnetConflict", format!(
                        "MTU of {} contains subnets with incompatible MTU {v}", n.id
                    )));
                }
                n.mtu = v;
            }
            if let Some(v) = port_security {
                n.port_security_enabled = v;
            }
            touch(&mut n.std, txn.now);
            txn.put_network(n.clone());
            Ok(Arc::new(n))
        })
        .await
}

pub async fn delete(
    engine: &Engine,
    ctx: &AuthContext,
    id: String,
    if_match: Option<u64>,
) -> ApiResult<()> {
    let ctx = ctx.clone();
    engine
        .write(move |txn| {
            let cur = visible_network(txn, &ctx, &id)?;
            check_change(&ctx, &cur.std, "delete_network", if_match)?;
            let ports: Vec<_> = txn.state.ports_of(&id).cloned().collect();
            let blocking: Vec<&str> =
                ports.iter().filter(|p| !is_auto_delete_owner(&p.device_owner)).map(|p| p.id.as_str()).collect();
            if !blocking.is_empty() {
                return Err(ApiError::conflict("NetworkInUse", format!(
                    "Unable to complete operation on network {id}. There are one or more ports still in use on the network, id for these ports is: {}.",
                    blocking.join(",")
                )));
            }
            for p in &ports {
                release_port_ips(txn, p);
                txn.delete_port(&p.id);
            }
            let subnets: Vec<String> = txn.state.subnets_of(&id).map(|s| s.id.clone()).collect();
            for s in subnets {
                txn.delete_subnet(&s);
            }
            txn.delete_network(&id);
            Ok(())
        })
        .await
}

/// Ports that go away with their network (Neutron's AUTO_DELETE_PORT_OWNERS).
pub fn is_auto_delete_owner(owner: &str) -> bool {
    matches!(
        owner,
        "network:dhcp" | "network:distributed" | "network:floatingip_agent_gateway"
    )
}

/// The network if the caller may see it, else 404 NetworkNotFound.
pub fn visible_network(txn: &Txn<'_>, ctx: &AuthContext, id: &str) -> ApiResult<Arc<Network>> {
    match txn.state.networks.get(id) {
        Some(n) if policy::can_see_network(ctx, n) => Ok(n.clone()),
        _ => Err(not_found(id)),
    }
}

pub fn not_found(id: &str) -> ApiError {
    ApiError::not_found(
        "NetworkNotFound",
        format!("Network {id} could not be found."),
    )
}
