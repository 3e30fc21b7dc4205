//! Networks: creation with a segment (provider attributes for admins, a
//! tenant segment from the configured ranges otherwise), updates, and delete
//! with Neutron's in-use rules.

use std::sync::Arc;

use neutrino_agent_rpc::{DHCP_OWNER, HOST_GATEWAY_OWNER};
use neutrino_model::body::Body;
use neutrino_model::query::{AttrValue as V, FilterType as T};
use neutrino_model::{ApiError, ApiResult, AuthContext, Network, OWNER_ROUTER_GATEWAY};

use super::ports::release_port_ips;
use super::subnets::check_mtu;
use super::{check_quota, new_id, new_std};
use crate::resource::{Attr, Resource, ViewCtx, opt_int, opt_str, put_json};
use crate::txn::Txn;
use crate::{Engine, State, ops, policy};

type A = Attr<Network>;

impl Resource for Network {
    const SINGULAR: &'static str = "network";
    const PLURAL: &'static str = "networks";
    const PATH: &'static str = "networks";
    const ATTRS: &'static [A] = &[
        A::value("id", |n| V::Str(&n.id)).filter(T::Str).sort(),
        A::value("name", |n| V::Str(&n.name))
            .set()
            .filter(T::Str)
            .sort(),
        A::value("admin_state_up", |n| V::Bool(n.admin_state_up))
            .set()
            .filter(T::Bool)
            .sort(),
        A::value("status", |n| V::Str(&n.status))
            .filter(T::Str)
            .sort(),
        A::json("subnets", subnet_ids),
        A::value("shared", |n| V::Bool(n.shared))
            .set()
            .filter(T::Bool),
        A::value("mtu", |n| V::Int(n.mtu.into()))
            .set()
            .filter(T::Int)
            .sort(),
        A::value("port_security_enabled", |n| {
            V::Bool(n.port_security_enabled)
        })
        .set()
        .filter(T::Bool),
        A::value("router:external", |n| V::Bool(n.router_external))
            .set()
            .filter(T::Bool),
        A::value("dns_domain", |n| V::Str(&n.dns_domain))
            .set()
            .filter(T::Str),
        A::value("provider:network_type", |n| V::Str(&n.network_type))
            .set()
            .filter(T::Str)
            .admin(),
        A::value("provider:physical_network", |n| {
            opt_str(&n.physical_network)
        })
        .set()
        .filter(T::Str)
        .admin(),
        A::value("provider:segmentation_id", |n| opt_int(n.segmentation_id))
            .set()
            .filter(T::Int)
            .admin(),
    ];
    type Update = NetworkUpdate;

    fn all(state: &State) -> &imbl::OrdMap<String, Arc<Network>> {
        &state.networks
    }
    fn visible(ctx: &AuthContext, _: &State, n: &Network) -> bool {
        policy::can_see_network(ctx, n)
    }
    fn not_found(id: &str) -> ApiError {
        ApiError::not_found(
            "NetworkNotFound",
            format!("Network {id} could not be found."),
        )
    }
    fn put(txn: &mut Txn<'_>, n: Network) -> ApiResult<()> {
        txn.put_network(n);
        Ok(())
    }

    type Create = NewNetwork;

    fn parse_create(_: &Engine, ctx: &AuthContext, b: Body) -> ApiResult<NewNetwork> {
        let n = NewNetwork {
            name: b.name("name")?.unwrap_or_default(),
            description: b.string("description", 255)?,
            admin_state_up: b.bool("admin_state_up")?.unwrap_or(true),
            shared: b.bool("shared")?.unwrap_or(false),
            router_external: b.bool("router:external")?.unwrap_or(false),
            mtu: b.u32_in("mtu", 0, 65535)?.flatten(),
            port_security_enabled: b.bool("port_security_enabled")?.unwrap_or(true),
            dns_domain: ops::parse_dns_domain(&b)?.unwrap_or_default(),
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

    fn create_one(txn: &mut Txn<'_>, _ctx: &AuthContext, r: NewNetwork) -> ApiResult<Arc<Network>> {
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
            // 0 asks for the network type's MTU (ML2's `net_mtu or max_mtu`).
            mtu: r.mtu.filter(|m| *m != 0).unwrap_or(max_mtu),
            port_security_enabled: r.port_security_enabled,
            network_type,
            physical_network: physnet,
            segmentation_id: seg,
            dns_domain: r.dns_domain,
            std: new_std(txn, r.project_id, r.description),
        };
        txn.put_network(n.clone());
        Ok(Arc::new(n))
    }

    fn parse_update(_: &Engine, ctx: &AuthContext, b: Body) -> ApiResult<NetworkUpdate> {
        let r = NetworkUpdate {
            name: b.name("name")?,
            description: b.string("description", 255)?,
            admin_state_up: b.bool("admin_state_up")?,
            shared: b.bool("shared")?,
            external: b.bool("router:external")?,
            mtu: b.u32_in("mtu", 0, 65535)?.flatten(),
            port_security: b.bool("port_security_enabled")?,
            dns_domain: ops::parse_dns_domain(&b)?,
            provider_type: b.nullable_string("provider:network_type", 32)?,
            provider_physnet: b.nullable_string("provider:physical_network", 64)?,
            provider_seg: b.u32_in("provider:segmentation_id", 0, 16_777_215)?,
        };
        if (r.shared.is_some() || r.external.is_some()) && !ctx.is_admin() {
            return Err(ApiError::forbidden("rule:update_network:shared"));
        }
        Ok(r)
    }

    fn apply_update(
        txn: &mut Txn<'_>,
        ctx: &AuthContext,
        cur: &Network,
        n: &mut Network,
        r: NetworkUpdate,
    ) -> ApiResult<()> {
        let NetworkUpdate {
            name,
            description,
            admin_state_up,
            shared,
            external,
            mtu,
            port_security,
            dns_domain,
            provider_type,
            provider_physnet,
            provider_seg,
        } = r;
        if let Some(v) = dns_domain {
            n.dns_domain = v;
        }
        let provider_given =
            provider_type.is_some() || provider_physnet.is_some() || provider_seg.is_some();
        if provider_given {
            if !ctx.is_admin() {
                return Err(ApiError::forbidden(
                    "rule:update_network:provider:network_type",
                ));
            }
            let same = provider_type
                .as_ref()
                .is_none_or(|t| t.as_deref() == Some(cur.network_type.as_str()))
                && provider_physnet
                    .as_ref()
                    .is_none_or(|p| *p == cur.physical_network)
                && provider_seg
                    .as_ref()
                    .is_none_or(|s| *s == cur.segmentation_id);
            if !same {
                return Err(ApiError::invalid_input(
                    "Plugin does not support updating provider attributes",
                ));
            }
        }
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
                let foreign = txn
                    .state
                    .ports_of(&n.id)
                    .any(|p| p.std.project_id != n.std.project_id && !p.is_network_owned());
                if foreign {
                    return Err(ApiError::conflict(
                        "InvalidSharedSetting",
                        format!(
                            "Unable to reconfigure sharing settings for network {}. Multiple tenants are using it.",
                            n.id
                        ),
                    ));
                }
            }
            n.shared = v;
        }
        if let Some(v) = external {
            // Routers' gateways need the network to stay external.
            if !v
                && n.router_external
                && txn
                    .state
                    .ports_of(&n.id)
                    .any(|p| p.device_owner == OWNER_ROUTER_GATEWAY)
            {
                return Err(ApiError::conflict(
                    "ExternalNetworkInUse",
                    format!(
                        "External network {} cannot be updated to be made non-external, since it has existing gateway ports.",
                        n.id
                    ),
                ));
            }
            n.router_external = v;
        }
        if let Some(v) = mtu {
            let max = txn.config.default_mtu(&n.network_type);
            if v > max {
                return Err(ApiError::invalid_input(format!(
                    "Requested MTU is too big, maximum is {max}"
                )));
            }
            let mut subnets = txn.state.subnets_of(&n.id).peekable();
            let any = subnets.peek().is_some();
            let v6 = subnets.any(|s| s.ip_version == 6);
            check_mtu(&n.id, v, any, v6)?;
            // 0 asks for the network type's MTU (ML2's `net_mtu or max_mtu`).
            n.mtu = if v == 0 { max } else { v };
        }
        if let Some(v) = port_security {
            n.port_security_enabled = v;
        }
        Ok(())
    }

    fn remove(txn: &mut Txn<'_>, _: &AuthContext, cur: Arc<Network>) -> ApiResult<()> {
        let id = cur.id.as_str();
        // Unused floating IPs go with their network, external still or not
        // (a failed delete keeps them: the transaction is dropped whole).
        super::floatingips::release_unassociated(txn, id);
        let ports: Vec<_> = txn.state.ports_of(id).cloned().collect();
        let blocking: Vec<&str> = ports
            .iter()
            .filter(|p| !is_auto_delete_owner(&p.device_owner))
            .map(|p| p.id.as_str())
            .collect();
        if !blocking.is_empty() {
            return Err(ApiError::conflict(
                "NetworkInUse",
                format!(
                    "Unable to complete operation on network {id}. There are one or more ports still in use on the network, id for these ports is: {}.",
                    blocking.join(",")
                ),
            ));
        }
        for p in &ports {
            release_port_ips(txn, p);
            txn.delete_port(&p.id);
        }
        let subnets: Vec<String> = txn.state.subnets_of(id).map(|s| s.id.clone()).collect();
        for s in subnets {
            txn.delete_subnet(&s);
        }
        txn.delete_network(id);
        Ok(())
    }
}

/// The network's subnets, in creation order.
fn subnet_ids(n: &Network, cx: &ViewCtx<'_>, out: &mut Vec<u8>) {
    let ids: Vec<&str> = cx
        .state
        .subnets_by_network
        .get(&n.id)
        .map(|v| v.iter().map(String::as_str).collect())
        .unwrap_or_default();
    put_json(out, &ids);
}

/// A validated create request.
pub struct NewNetwork {
    name: String,
    description: Option<String>,
    admin_state_up: bool,
    shared: bool,
    router_external: bool,
    mtu: Option<u32>,
    port_security_enabled: bool,
    dns_domain: String,
    network_type: Option<String>,
    physical_network: Option<String>,
    segmentation_id: Option<u32>,
    project_id: String,
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

/// A validated update request.
pub struct NetworkUpdate {
    name: Option<String>,
    description: Option<String>,
    admin_state_up: Option<bool>,
    shared: Option<bool>,
    external: Option<bool>,
    mtu: Option<u32>,
    port_security: Option<bool>,
    dns_domain: Option<String>,
    provider_type: Option<Option<String>>,
    provider_physnet: Option<Option<String>>,
    provider_seg: Option<Option<u32>>,
}

/// Ports that go away with their network (Neutron's AUTO_DELETE_PORT_OWNERS).
pub fn is_auto_delete_owner(owner: &str) -> bool {
    matches!(
        owner,
        DHCP_OWNER | "network:distributed" | HOST_GATEWAY_OWNER
    )
}
