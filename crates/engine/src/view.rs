//! Response shapes. Each view borrows from the model and serialises straight
//! to JSON (no intermediate maps on the list path); admin-only attributes are
//! left out for other callers rather than nulled.

use neutrino_model::time::format_utc;
use neutrino_model::{
    AddressPair, AllocationPool, ExternalGateway, ExtraDhcpOpt, FixedIp, FloatingIp, HostRoute,
    Network, Port, Router, SecurityGroup, SecurityGroupRule, Subnet,
};
use serde::Serialize;
use serde_json::Value;

use crate::state::State;

/// Who is looking, and the model they look at.
pub struct ViewCtx<'a> {
    pub admin: bool,
    pub state: &'a State,
    pub dns_domain: &'a str,
}

#[derive(Serialize)]
pub struct NetworkView<'a> {
    id: &'a str,
    name: &'a str,
    description: &'a str,
    admin_state_up: bool,
    status: &'a str,
    subnets: Vec<&'a str>,
    shared: bool,
    mtu: u32,
    port_security_enabled: bool,
    #[serde(rename = "router:external")]
    router_external: bool,
    #[serde(
        rename = "provider:network_type",
        skip_serializing_if = "Option::is_none"
    )]
    network_type: Option<&'a str>,
    #[serde(
        rename = "provider:physical_network",
        skip_serializing_if = "Option::is_none"
    )]
    physical_network: Option<Option<&'a str>>,
    #[serde(
        rename = "provider:segmentation_id",
        skip_serializing_if = "Option::is_none"
    )]
    segmentation_id: Option<Option<u32>>,
    tags: &'a [String],
    created_at: String,
    updated_at: String,
    revision_number: u64,
    project_id: &'a str,
    tenant_id: &'a str,
}

pub fn network<'a>(n: &'a Network, cx: &ViewCtx<'a>) -> NetworkView<'a> {
    NetworkView {
        id: &n.id,
        name: &n.name,
        description: &n.std.description,
        admin_state_up: n.admin_state_up,
        status: &n.status,
        subnets: cx
            .state
            .subnets_by_network
            .get(&n.id)
            .map(|v| v.iter().map(String::as_str).collect())
            .unwrap_or_default(),
        shared: n.shared,
        mtu: n.mtu,
        port_security_enabled: n.port_security_enabled,
        router_external: n.router_external,
        network_type: cx.admin.then_some(n.network_type.as_str()),
        physical_network: cx.admin.then_some(n.physical_network.as_deref()),
        segmentation_id: cx.admin.then_some(n.segmentation_id),
        tags: &n.std.tags,
        created_at: format_utc(n.std.created_at),
        updated_at: format_utc(n.std.updated_at),
        revision_number: n.std.revision_number,
        project_id: &n.std.project_id,
        tenant_id: &n.std.project_id,
    }
}

#[derive(Serialize)]
pub struct SubnetView<'a> {
    id: &'a str,
    name: &'a str,
    description: &'a str,
    network_id: &'a str,
    ip_version: u8,
    cidr: &'a str,
    gateway_ip: Option<&'a str>,
    allocation_pools: &'a [AllocationPool],
    dns_nameservers: &'a [String],
    host_routes: &'a [HostRoute],
    enable_dhcp: bool,
    ipv6_ra_mode: Option<&'a str>,
    ipv6_address_mode: Option<&'a str>,
    subnetpool_id: Option<&'a str>,
    #[serde(rename = "router:external")]
    router_external: bool,
    tags: &'a [String],
    created_at: String,
    updated_at: String,
    revision_number: u64,
    project_id: &'a str,
    tenant_id: &'a str,
}

pub fn subnet<'a>(s: &'a Subnet, cx: &ViewCtx<'a>) -> SubnetView<'a> {
    SubnetView {
        id: &s.id,
        name: &s.name,
        description: &s.std.description,
        network_id: &s.network_id,
        ip_version: s.ip_version,
        cidr: &s.cidr,
        gateway_ip: s.gateway_ip.as_deref(),
        allocation_pools: &s.allocation_pools,
        dns_nameservers: &s.dns_nameservers,
        host_routes: &s.host_routes,
        enable_dhcp: s.enable_dhcp,
        ipv6_ra_mode: s.ipv6_ra_mode.as_deref(),
        ipv6_address_mode: s.ipv6_address_mode.as_deref(),
        subnetpool_id: None,
        router_external: cx
            .state
            .networks
            .get(&s.network_id)
            .is_some_and(|n| n.router_external),
        tags: &s.std.tags,
        created_at: format_utc(s.std.created_at),
        updated_at: format_utc(s.std.updated_at),
        revision_number: s.std.revision_number,
        project_id: &s.std.project_id,
        tenant_id: &s.std.project_id,
    }
}

#[derive(Serialize)]
pub struct DnsAssignment {
    hostname: String,
    ip_address: String,
    fqdn: String,
}

#[derive(Serialize)]
pub struct PortView<'a> {
    id: &'a str,
    name: &'a str,
    description: &'a str,
    network_id: &'a str,
    admin_state_up: bool,
    status: &'a str,
    mac_address: &'a str,
    fixed_ips: &'a [FixedIp],
    device_id: &'a str,
    device_owner: &'a str,
    security_groups: &'a [String],
    port_security_enabled: bool,
    allowed_address_pairs: &'a [AddressPair],
    extra_dhcp_opts: &'a [ExtraDhcpOpt],
    #[serde(rename = "binding:vnic_type")]
    vnic_type: &'a str,
    #[serde(rename = "binding:host_id", skip_serializing_if = "Option::is_none")]
    host_id: Option<&'a str>,
    #[serde(rename = "binding:profile", skip_serializing_if = "Option::is_none")]
    profile: Option<&'a Value>,
    #[serde(rename = "binding:vif_type", skip_serializing_if = "Option::is_none")]
    vif_type: Option<&'a str>,
    #[serde(
        rename = "binding:vif_details",
        skip_serializing_if = "Option::is_none"
    )]
    vif_details: Option<&'a Value>,
    dns_name: &'a str,
    dns_assignment: Vec<DnsAssignment>,
    tags: &'a [String],
    created_at: String,
    updated_at: String,
    revision_number: u64,
    project_id: &'a str,
    tenant_id: &'a str,
}

/// `host-10-0-0-5` / the port's dns_name, per fixed IP.
fn dns_assignment(p: &Port, domain: &str) -> Vec<DnsAssignment> {
    p.fixed_ips
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
        .collect()
}

pub fn port<'a>(p: &'a Port, cx: &ViewCtx<'a>) -> PortView<'a> {
    PortView {
        id: &p.id,
        name: &p.name,
        description: &p.std.description,
        network_id: &p.network_id,
        admin_state_up: p.admin_state_up,
        status: &p.status,
        mac_address: &p.mac_address,
        fixed_ips: &p.fixed_ips,
        device_id: &p.device_id,
        device_owner: &p.device_owner,
        security_groups: &p.security_groups,
        port_security_enabled: p.port_security_enabled,
        allowed_address_pairs: &p.allowed_address_pairs,
        extra_dhcp_opts: &p.extra_dhcp_opts,
        vnic_type: &p.binding_vnic_type,
        host_id: cx.admin.then_some(p.binding_host_id.as_str()),
        profile: cx.admin.then_some(&p.binding_profile),
        vif_type: cx.admin.then_some(p.binding_vif_type.as_str()),
        vif_details: cx.admin.then_some(&p.binding_vif_details),
        dns_name: &p.dns_name,
        dns_assignment: dns_assignment(p, cx.dns_domain),
        tags: &p.std.tags,
        created_at: format_utc(p.std.created_at),
        updated_at: format_utc(p.std.updated_at),
        revision_number: p.std.revision_number,
        project_id: &p.std.project_id,
        tenant_id: &p.std.project_id,
    }
}

#[derive(Serialize)]
pub struct RuleView<'a> {
    id: &'a str,
    security_group_id: &'a str,
    direction: &'a str,
    ethertype: &'a str,
    protocol: Option<&'a str>,
    port_range_min: Option<u32>,
    port_range_max: Option<u32>,
    remote_ip_prefix: Option<&'a str>,
    remote_group_id: Option<&'a str>,
    normalized_cidr: Option<&'a str>,
    belongs_to_default_sg: bool,
    description: &'a str,
    created_at: String,
    updated_at: String,
    revision_number: u64,
    project_id: &'a str,
    tenant_id: &'a str,
}

pub fn rule<'a>(r: &'a SecurityGroupRule) -> RuleView<'a> {
    RuleView {
        id: &r.id,
        security_group_id: &r.security_group_id,
        direction: &r.direction,
        ethertype: &r.ethertype,
        protocol: r.protocol.as_deref(),
        port_range_min: r.port_range_min,
        port_range_max: r.port_range_max,
        remote_ip_prefix: r.remote_ip_prefix.as_deref(),
        remote_group_id: r.remote_group_id.as_deref(),
        normalized_cidr: r.normalized_cidr.as_deref(),
        belongs_to_default_sg: r.belongs_to_default_sg,
        description: &r.std.description,
        created_at: format_utc(r.std.created_at),
        updated_at: format_utc(r.std.updated_at),
        revision_number: r.std.revision_number,
        project_id: &r.std.project_id,
        tenant_id: &r.std.project_id,
    }
}

#[derive(Serialize)]
pub struct GroupView<'a> {
    id: &'a str,
    name: &'a str,
    description: &'a str,
    stateful: bool,
    shared: bool,
    security_group_rules: Vec<RuleView<'a>>,
    tags: &'a [String],
    created_at: String,
    updated_at: String,
    revision_number: u64,
    project_id: &'a str,
    tenant_id: &'a str,
}

pub fn group<'a>(g: &'a SecurityGroup, cx: &ViewCtx<'a>) -> GroupView<'a> {
    GroupView {
        id: &g.id,
        name: &g.name,
        description: &g.std.description,
        stateful: g.stateful,
        shared: false,
        security_group_rules: cx.state.rules_of(&g.id).map(|r| rule(r)).collect(),
        tags: &g.std.tags,
        created_at: format_utc(g.std.created_at),
        updated_at: format_utc(g.std.updated_at),
        revision_number: g.std.revision_number,
        project_id: &g.std.project_id,
        tenant_id: &g.std.project_id,
    }
}

#[derive(Serialize)]
pub struct RouterView<'a> {
    id: &'a str,
    name: &'a str,
    description: &'a str,
    admin_state_up: bool,
    status: &'a str,
    /// `{network_id, enable_snat, external_fixed_ips}` or null.
    external_gateway_info: Option<&'a ExternalGateway>,
    routes: &'a [HostRoute],
    tags: &'a [String],
    created_at: String,
    updated_at: String,
    revision_number: u64,
    project_id: &'a str,
    tenant_id: &'a str,
}

pub fn router(r: &Router) -> RouterView<'_> {
    RouterView {
        id: &r.id,
        name: &r.name,
        description: &r.std.description,
        admin_state_up: r.admin_state_up,
        status: &r.status,
        external_gateway_info: r.external_gateway.as_ref(),
        routes: &r.routes,
        tags: &r.std.tags,
        created_at: format_utc(r.std.created_at),
        updated_at: format_utc(r.std.updated_at),
        revision_number: r.std.revision_number,
        project_id: &r.std.project_id,
        tenant_id: &r.std.project_id,
    }
}

#[derive(Serialize)]
pub struct FloatingIpView<'a> {
    id: &'a str,
    floating_ip_address: &'a str,
    floating_network_id: &'a str,
    router_id: Option<&'a str>,
    port_id: Option<&'a str>,
    fixed_ip_address: Option<&'a str>,
    status: &'a str,
    description: &'a str,
    tags: &'a [String],
    created_at: String,
    updated_at: String,
    revision_number: u64,
    project_id: &'a str,
    tenant_id: &'a str,
}

pub fn floatingip(f: &FloatingIp) -> FloatingIpView<'_> {
    FloatingIpView {
        id: &f.id,
        floating_ip_address: &f.floating_ip_address,
        floating_network_id: &f.floating_network_id,
        router_id: f.router_id.as_deref(),
        port_id: f.port_id.as_deref(),
        fixed_ip_address: f.fixed_ip_address.as_deref(),
        status: &f.status,
        description: &f.std.description,
        tags: &f.std.tags,
        created_at: format_utc(f.std.created_at),
        updated_at: format_utc(f.std.updated_at),
        revision_number: f.std.revision_number,
        project_id: &f.std.project_id,
        tenant_id: &f.std.project_id,
    }
}
