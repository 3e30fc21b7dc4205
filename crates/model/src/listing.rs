//! What each collection offers to list queries: its filterable attributes,
//! sort keys, and the values filters and sorting compare.

use crate::query::{AttrValue, FilterType as T, Listable, Schema};
use crate::resources::*;

pub const NETWORKS: Schema = Schema {
    singular: "network",
    plural: "networks",
    filters: &[
        ("id", T::Str),
        ("name", T::Str),
        ("description", T::Str),
        ("admin_state_up", T::Bool),
        ("status", T::Str),
        ("shared", T::Bool),
        ("mtu", T::Int),
        ("router:external", T::Bool),
        ("project_id", T::Str),
        ("tenant_id", T::Str),
        ("revision_number", T::Int),
        ("provider:network_type", T::Str),
        ("provider:physical_network", T::Str),
        ("provider:segmentation_id", T::Int),
        ("port_security_enabled", T::Bool),
    ],
    sort_keys: &[
        "id",
        "name",
        "admin_state_up",
        "status",
        "mtu",
        "project_id",
        "tenant_id",
        "created_at",
        "updated_at",
        "revision_number",
    ],
    taggable: true,
};

pub const SUBNETS: Schema = Schema {
    singular: "subnet",
    plural: "subnets",
    filters: &[
        ("id", T::Str),
        ("name", T::Str),
        ("description", T::Str),
        ("network_id", T::Str),
        ("ip_version", T::Int),
        ("cidr", T::Str),
        ("gateway_ip", T::Str),
        ("enable_dhcp", T::Bool),
        ("ipv6_ra_mode", T::Str),
        ("ipv6_address_mode", T::Str),
        ("project_id", T::Str),
        ("tenant_id", T::Str),
        ("revision_number", T::Int),
        ("subnetpool_id", T::Str),
    ],
    sort_keys: &[
        "id",
        "name",
        "network_id",
        "ip_version",
        "cidr",
        "gateway_ip",
        "enable_dhcp",
        "project_id",
        "tenant_id",
        "created_at",
        "updated_at",
        "revision_number",
    ],
    taggable: true,
};

pub const PORTS: Schema = Schema {
    singular: "port",
    plural: "ports",
    filters: &[
        ("id", T::Str),
        ("name", T::Str),
        ("description", T::Str),
        ("network_id", T::Str),
        ("admin_state_up", T::Bool),
        ("status", T::Str),
        ("mac_address", T::Lower),
        ("fixed_ips", T::Str),
        ("device_id", T::Str),
        ("device_owner", T::Str),
        ("project_id", T::Str),
        ("tenant_id", T::Str),
        ("revision_number", T::Int),
        ("binding:host_id", T::Str),
        ("binding:vnic_type", T::Str),
        ("security_groups", T::Str),
        ("dns_name", T::Str),
        ("port_security_enabled", T::Bool),
    ],
    sort_keys: &[
        "id",
        "name",
        "network_id",
        "admin_state_up",
        "status",
        "mac_address",
        "device_id",
        "device_owner",
        "project_id",
        "tenant_id",
        "created_at",
        "updated_at",
        "revision_number",
    ],
    taggable: true,
};

pub const SECURITY_GROUPS: Schema = Schema {
    singular: "security_group",
    plural: "security_groups",
    filters: &[
        ("id", T::Str),
        ("name", T::Str),
        ("description", T::Str),
        ("project_id", T::Str),
        ("tenant_id", T::Str),
        ("revision_number", T::Int),
        ("stateful", T::Bool),
    ],
    sort_keys: &[
        "id",
        "name",
        "project_id",
        "tenant_id",
        "created_at",
        "updated_at",
        "revision_number",
    ],
    taggable: true,
};

pub const SECURITY_GROUP_RULES: Schema = Schema {
    singular: "security_group_rule",
    plural: "security_group_rules",
    filters: &[
        ("id", T::Str),
        ("security_group_id", T::Str),
        ("direction", T::Str),
        ("ethertype", T::Str),
        ("protocol", T::Str),
        ("port_range_min", T::Int),
        ("port_range_max", T::Int),
        ("remote_ip_prefix", T::Str),
        ("remote_group_id", T::Str),
        ("project_id", T::Str),
        ("tenant_id", T::Str),
        ("description", T::Str),
        ("revision_number", T::Int),
        ("normalized_cidr", T::Str),
        ("belongs_to_default_sg", T::Bool),
    ],
    sort_keys: &[
        "id",
        "security_group_id",
        "direction",
        "ethertype",
        "protocol",
        "port_range_min",
        "port_range_max",
        "remote_ip_prefix",
        "remote_group_id",
        "project_id",
        "tenant_id",
        "created_at",
        "updated_at",
        "revision_number",
    ],
    taggable: false,
};

pub const ROUTERS: Schema = Schema {
    singular: "router",
    plural: "routers",
    filters: &[
        ("id", T::Str),
        ("name", T::Str),
        ("description", T::Str),
        ("admin_state_up", T::Bool),
        ("status", T::Str),
        ("project_id", T::Str),
        ("tenant_id", T::Str),
        ("revision_number", T::Int),
    ],
    sort_keys: &[
        "id",
        "name",
        "admin_state_up",
        "status",
        "project_id",
        "tenant_id",
        "created_at",
        "updated_at",
        "revision_number",
    ],
    taggable: true,
};

pub const FLOATINGIPS: Schema = Schema {
    singular: "floatingip",
    plural: "floatingips",
    filters: &[
        ("id", T::Str),
        ("description", T::Str),
        ("floating_network_id", T::Str),
        ("floating_ip_address", T::Str),
        ("port_id", T::Str),
        ("fixed_ip_address", T::Str),
        ("router_id", T::Str),
        ("status", T::Str),
        ("project_id", T::Str),
        ("tenant_id", T::Str),
        ("revision_number", T::Int),
    ],
    sort_keys: &[
        "id",
        "floating_network_id",
        "floating_ip_address",
        "fixed_ip_address",
        "router_id",
        "status",
        "project_id",
        "tenant_id",
        "created_at",
        "updated_at",
        "revision_number",
    ],
    taggable: true,
};

fn opt(v: &Option<String>) -> AttrValue<'_> {
    v.as_deref().map_or(AttrValue::Null, AttrValue::Str)
}

fn std_attr<'a>(s: &'a StdAttrs, name: &str) -> AttrValue<'a> {
    match name {
        "project_id" | "tenant_id" => AttrValue::Str(&s.project_id),
        "description" => AttrValue::Str(&s.description),
        "revision_number" => AttrValue::Int(i64::try_from(s.revision_number).unwrap_or(i64::MAX)),
        "created_at" => AttrValue::Int(s.created_at),
        "updated_at" | "updated_at_unix" => AttrValue::Int(s.updated_at),
        _ => AttrValue::Null,
    }
}

impl Listable for Network {
    fn id(&self) -> &str {
        &self.id
    }
    fn tags(&self) -> &[String] {
        &self.std.tags
    }
    fn attr(&self, name: &str) -> AttrValue<'_> {
        match name {
            "id" => AttrValue::Str(&self.id),
            "name" => AttrValue::Str(&self.name),
            "admin_state_up" => AttrValue::Bool(self.admin_state_up),
            "status" => AttrValue::Str(&self.status),
            "shared" => AttrValue::Bool(self.shared),
            "mtu" => AttrValue::Int(i64::from(self.mtu)),
            "router:external" => AttrValue::Bool(self.router_external),
            "port_security_enabled" => AttrValue::Bool(self.port_security_enabled),
            "provider:network_type" => AttrValue::Str(&self.network_type),
            "provider:physical_network" => opt(&self.physical_network),
            "provider:segmentation_id" => self
                .segmentation_id
                .map_or(AttrValue::Null, |v| AttrValue::Int(i64::from(v))),
            other => std_attr(&self.std, other),
        }
    }
}

impl Listable for Subnet {
    fn id(&self) -> &str {
        &self.id
    }
    fn tags(&self) -> &[String] {
        &self.std.tags
    }
    fn attr(&self, name: &str) -> AttrValue<'_> {
        match name {
            "id" => AttrValue::Str(&self.id),
            "name" => AttrValue::Str(&self.name),
            "network_id" => AttrValue::Str(&self.network_id),
            "ip_version" => AttrValue::Int(i64::from(self.ip_version)),
            "cidr" => AttrValue::Str(&self.cidr),
            "gateway_ip" => opt(&self.gateway_ip),
            "enable_dhcp" => AttrValue::Bool(self.enable_dhcp),
            "ipv6_ra_mode" => opt(&self.ipv6_ra_mode),
            "ipv6_address_mode" => opt(&self.ipv6_address_mode),
            "subnetpool_id" => AttrValue::Null,
            other => std_attr(&self.std, other),
        }
    }
}

impl Listable for Port {
    fn id(&self) -> &str {
        &self.id
    }
    fn tags(&self) -> &[String] {
        &self.std.tags
    }
    fn attr(&self, name: &str) -> AttrValue<'_> {
        match name {
            "id" => AttrValue::Str(&self.id),
            "name" => AttrValue::Str(&self.name),
            "network_id" => AttrValue::Str(&self.network_id),
            "admin_state_up" => AttrValue::Bool(self.admin_state_up),
            "status" => AttrValue::Str(&self.status),
            "mac_address" => AttrValue::Str(&self.mac_address),
            // `fixed_ips=ip_address=10.0.0.5` and `fixed_ips=subnet_id=…` match any entry.
            "fixed_ips" => AttrValue::Many(
                self.fixed_ips
                    .iter()
                    .flat_map(|f| {
                        [
                            format!("ip_address={}", f.ip_address),
                            format!("subnet_id={}", f.subnet_id),
                        ]
                    })
                    .collect(),
            ),
            "device_id" => AttrValue::Str(&self.device_id),
            "device_owner" => AttrValue::Str(&self.device_owner),
            "binding:host_id" => AttrValue::Str(&self.binding_host_id),
            "binding:vnic_type" => AttrValue::Str(&self.binding_vnic_type),
            "security_groups" => AttrValue::Many(self.security_groups.clone()),
            "dns_name" => AttrValue::Str(&self.dns_name),
            "port_security_enabled" => AttrValue::Bool(self.port_security_enabled),
            other => std_attr(&self.std, other),
        }
    }
}

impl Listable for SecurityGroup {
    fn id(&self) -> &str {
        &self.id
    }
    fn tags(&self) -> &[String] {
        &self.std.tags
    }
    fn attr(&self, name: &str) -> AttrValue<'_> {
        match name {
            "id" => AttrValue::Str(&self.id),
            "name" => AttrValue::Str(&self.name),
            "stateful" => AttrValue::Bool(self.stateful),
            other => std_attr(&self.std, other),
        }
    }
}

impl Listable for SecurityGroupRule {
    fn id(&self) -> &str {
        &self.id
    }
    fn attr(&self, name: &str) -> AttrValue<'_> {
        let port = |v: Option<u32>| v.map_or(AttrValue::Null, |p| AttrValue::Int(i64::from(p)));
        match name {
            "id" => AttrValue::Str(&self.id),
            "security_group_id" => AttrValue::Str(&self.security_group_id),
            "direction" => AttrValue::Str(&self.direction),
            "ethertype" => AttrValue::Str(&self.ethertype),
            "protocol" => opt(&self.protocol),
            "port_range_min" => port(self.port_range_min),
            "port_range_max" => port(self.port_range_max),
            "remote_ip_prefix" => opt(&self.remote_ip_prefix),
            "remote_group_id" => opt(&self.remote_group_id),
            "normalized_cidr" => opt(&self.normalized_cidr),
            "belongs_to_default_sg" => AttrValue::Bool(self.belongs_to_default_sg),
            other => std_attr(&self.std, other),
        }
    }
}

impl Listable for Router {
    fn id(&self) -> &str {
        &self.id
    }
    fn tags(&self) -> &[String] {
        &self.std.tags
    }
    fn attr(&self, name: &str) -> AttrValue<'_> {
        match name {
            "id" => AttrValue::Str(&self.id),
            "name" => AttrValue::Str(&self.name),
            "admin_state_up" => AttrValue::Bool(self.admin_state_up),
            "status" => AttrValue::Str(&self.status),
            other => std_attr(&self.std, other),
        }
    }
}

impl Listable for FloatingIp {
    fn id(&self) -> &str {
        &self.id
    }
    fn tags(&self) -> &[String] {
        &self.std.tags
    }
    fn attr(&self, name: &str) -> AttrValue<'_> {
        match name {
            "id" => AttrValue::Str(&self.id),
            "floating_network_id" => AttrValue::Str(&self.floating_network_id),
            "floating_ip_address" => AttrValue::Str(&self.floating_ip_address),
            "port_id" => opt(&self.port_id),
            "fixed_ip_address" => opt(&self.fixed_ip_address),
            "router_id" => opt(&self.router_id),
            "status" => AttrValue::Str(&self.status),
            other => std_attr(&self.std, other),
        }
    }
}
