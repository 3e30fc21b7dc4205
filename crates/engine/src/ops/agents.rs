//! What host agents change in the model: binding a port to a host (what
//! Nova does before plugging), port status as agents wire ports, and the
//! `network:dhcp` port each DHCP-serving host holds on a network. These run
//! as the admin of the resource's project: the agent protocol authenticates
//! agents separately (a shared secret), not with Keystone tokens.

use std::sync::Arc;

use neutrino_agent_rpc::{DHCP_OWNER, HOST_GATEWAY_OWNER, PortInfo};
use neutrino_model::{ApiError, ApiResult, AuthContext, Network, Port, Role};
use serde_json::{Map, Value, json};

use super::ports;
use super::touch;
use crate::Engine;
use crate::host_feed::port_info;
use crate::resource::Resource;
use crate::state::State;

pub const ACTIVE: &str = "ACTIVE";
pub const DOWN: &str = "DOWN";

fn agent_ctx(project_id: &str) -> AuthContext {
    AuthContext {
        user_id: "neutrino-agent".into(),
        user_name: "neutrino-agent".into(),
        project_id: project_id.into(),
        project_name: String::new(),
        roles: vec![Role::Admin],
    }
}

/// Sets `binding:host_id`; the port stays DOWN until the host's agent wires it.
pub async fn bind(engine: &Engine, host: String, port_id: String) -> ApiResult<PortInfo> {
    engine
        .write(move |txn| {
            let cur = txn
                .state
                .ports
                .get(&port_id)
                .cloned()
                .ok_or_else(|| Port::not_found(&port_id))?;
            if cur.binding_host_id == host && cur.binding_vif_type == "bridge" {
                return Ok(port_info(&cur));
            }
            let mut p = (*cur).clone();
            p.binding_host_id = host;
            p.binding_vif_type = "bridge".into();
            p.binding_vif_details = json!({"port_filter": true, "connectivity": "l2"});
            p.status = DOWN.into();
            touch(&mut p.std, txn.now);
            let info = port_info(&p);
            txn.put_port(p);
            Ok(info)
        })
        .await
}

/// Agents report which of their ports are wired (ACTIVE) or not (DOWN).
/// Ports bound elsewhere are ignored: a stale agent cannot flip them.
pub async fn set_status(
    engine: &Engine,
    host: String,
    active: Vec<String>,
    down: Vec<String>,
) -> ApiResult<usize> {
    let snap = engine.snapshot();
    let wanted = |ids: &[String], status: &str| {
        ids.iter()
            .filter(|id| {
                snap.ports
                    .get(*id)
                    .is_some_and(|p| p.binding_host_id == host && p.status != status)
            })
            .count()
    };
    // Nothing to change is the common case on every report: no write at all.
    if wanted(&active, ACTIVE) + wanted(&down, DOWN) == 0 {
        return Ok(0);
    }
    engine
        .write(move |txn| {
            let mut changed = 0;
            for (ids, status) in [(&active, ACTIVE), (&down, DOWN)] {
                for id in ids {
                    let Some(cur) = txn.state.ports.get(id).cloned() else {
                        continue;
                    };
                    if cur.binding_host_id != host || cur.status == status {
                        continue;
                    }
                    let mut p = (*cur).clone();
                    p.status = status.into();
                    touch(&mut p.std, txn.now);
                    txn.put_port(p);
                    changed += 1;
                }
            }
            Ok(changed)
        })
        .await
}

/// A host's agent died: its ports are shown DOWN until it reports again.
pub async fn host_down(engine: &Engine, host: &str) -> ApiResult<usize> {
    let snap = engine.snapshot();
    let active: Vec<String> = snap
        .ports_by_host
        .get(host)
        .into_iter()
        .flat_map(|ids| ids.iter())
        .filter(|id| snap.ports.get(*id).is_some_and(|p| p.status == ACTIVE))
        .cloned()
        .collect();
    set_status(engine, host.to_string(), Vec::new(), active).await
}

fn host_dhcp_port(state: &State, host: &str, network_id: &str) -> Option<Arc<Port>> {
    state
        .ports_by_host
        .get(host)?
        .iter()
        .filter_map(|id| state.ports.get(id))
        .find(|p| p.network_id == network_id && p.device_owner == DHCP_OWNER)
        .cloned()
}

/// Subnets the DHCP port must have an address on: the network's DHCPv4 ones.
fn dhcp_subnets(state: &State, network_id: &str) -> Vec<String> {
    state
        .subnets_of(network_id)
        .filter(|s| s.enable_dhcp && s.ip_version == 4)
        .map(|s| s.id.clone())
        .collect()
}

/// Creates this host's DHCP port on the network, or completes it with an
/// address on every DHCP-enabled subnet. Idempotent.
pub async fn ensure_dhcp_port(
    engine: &Engine,
    host: String,
    network_id: String,
) -> ApiResult<PortInfo> {
    let (h, n) = (host.clone(), network_id.clone());
    // Create (or find) in one job, so two calls cannot make two ports.
    let (port, missing) = engine
        .write(move |txn| {
            let net = txn
                .state
                .networks
                .get(&n)
                .cloned()
                .ok_or_else(|| Network::not_found(&n))?;
            let subnets = dhcp_subnets(txn.state, &n);
            if subnets.is_empty() {
                return Err(ApiError::conflict(
                    "NoDhcpSubnet",
                    format!("Network {n} has no subnet with DHCP enabled."),
                ));
            }
            if let Some(p) = host_dhcp_port(txn.state, &h, &n) {
                let missing: Vec<String> = subnets
                    .into_iter()
                    .filter(|s| !p.fixed_ips.iter().any(|f| &f.subnet_id == s))
                    .collect();
                return Ok((p, missing));
            }
            let body = json!({
                "network_id": n,
                "name": "",
                "device_owner": DHCP_OWNER,
                "device_id": format!("dhcp-{h}-{n}"),
                "binding:host_id": h,
                "project_id": net.std.project_id,
                "fixed_ips": subnets.iter().map(|s| json!({"subnet_id": s})).collect::<Vec<_>>(),
            });
            let m: Map<String, Value> = body.as_object().cloned().unwrap_or_default();
            let ctx = agent_ctx(&net.std.project_id);
            let p = ports::create_in(txn, &ctx, m)?;
            let mut bound = (*p).clone();
            bound.binding_vif_type = "bridge".into();
            txn.put_port(bound.clone());
            Ok((Arc::new(bound), Vec::new()))
        })
        .await?;
    if missing.is_empty() {
        return Ok(port_info(&port));
    }
    // A subnet was added to the network: give the port an address there too,
    // keeping the ones it has (same MAC, same addresses: the server keeps serving).
    let mut fixed: Vec<Value> = port
        .fixed_ips
        .iter()
        .map(|f| json!({"subnet_id": f.subnet_id, "ip_address": f.ip_address}))
        .collect();
    fixed.extend(missing.iter().map(|s| json!({"subnet_id": s})));
    let mut m = Map::new();
    m.insert("fixed_ips".into(), Value::Array(fixed));
    let ctx = agent_ctx(&port.std.project_id);
    let p = Port::update(engine, &ctx, port.id.clone(), m, None).await?;
    Ok(port_info(&p))
}

/// Removes this host's DHCP port from the network (its last DHCP subnet went,
/// or the host stopped serving it).
pub async fn delete_dhcp_port(engine: &Engine, host: String, network_id: String) -> ApiResult<()> {
    engine
        .write(move |txn| {
            if let Some(p) = host_dhcp_port(txn.state, &host, &network_id) {
                ports::release_port_ips(txn, &p);
                txn.delete_port(&p.id);
            }
            Ok(())
        })
        .await
}

/// The per-host gateway ports of a router (multi-host mode).
pub fn host_gateway_ports(state: &State, router_id: &str) -> Vec<Arc<Port>> {
    state
        .host_gateways
        .get(router_id)
        .into_iter()
        .flatten()
        .filter_map(|id| state.ports.get(id))
        .cloned()
        .collect()
}

/// This host's gateway port for a router, if it has one.
pub fn host_gateway_port(state: &State, host: &str, router_id: &str) -> Option<Arc<Port>> {
    host_gateway_ports(state, router_id)
        .into_iter()
        .find(|p| p.binding_host_id == host)
}

/// Gives this host its own port on the router's external network: in
/// multi-host mode each host's copy of the router NATs its instances'
/// outbound traffic to its own address (nova-network's multi_host did the
/// same with each host's public address). Idempotent.
pub async fn ensure_host_gateway(
    engine: &Engine,
    host: String,
    router_id: String,
) -> ApiResult<PortInfo> {
    engine
        .write(move |txn| {
            let router = txn.state.routers.get(&router_id).cloned().ok_or_else(|| {
                ApiError::not_found(
                    "RouterNotFound",
                    format!("Router {router_id} could not be found"),
                )
            })?;
            let Some(gw) = &router.external_gateway else {
                return Err(ApiError::conflict(
                    "RouterHasNoGateway",
                    format!("Router {router_id} has no external gateway."),
                ));
            };
            if let Some(p) = host_gateway_port(txn.state, &host, &router_id) {
                return Ok(port_info(&p));
            }
            let net = txn
                .state
                .networks
                .get(&gw.network_id)
                .cloned()
                .ok_or_else(|| Network::not_found(&gw.network_id))?;
            let mut p = ports::create_service_port(
                txn,
                &net,
                String::new(),
                HOST_GATEWAY_OWNER,
                &router_id,
                None,
            )?;
            p.binding_host_id = host.clone();
            p.binding_vif_type = "bridge".into();
            txn.put_port(p.clone());
            Ok(port_info(&p))
        })
        .await
}

/// Gives back this host's gateway port for a router (the host no longer
/// runs it).
pub async fn delete_host_gateway(
    engine: &Engine,
    host: String,
    router_id: String,
) -> ApiResult<()> {
    engine
        .write(move |txn| {
            if let Some(p) = host_gateway_port(txn.state, &host, &router_id) {
                ports::release_port_ips(txn, &p);
                txn.delete_port(&p.id);
            }
            Ok(())
        })
        .await
}
