//! Security groups and their rules: stored and validated here (the agent
//! enforces them), with the project's `default` group created lazily and
//! Neutron's duplicate-rule detection.

use std::sync::Arc;

use neutrino_ipam::Cidr;
use neutrino_model::body::{Attr, Body, Op, attr};
use neutrino_model::{
    ApiError, ApiResult, AuthContext, IP_PROTOCOLS as PROTOCOLS, SecurityGroup, SecurityGroupRule,
};
use serde_json::{Map, Value};

use super::{check_change, check_quota, new_id, new_std, touch};
use crate::Engine;
use crate::policy;
use crate::txn::Txn;

const GROUP_ATTRS: &[Attr] = &[
    attr("name", true, true),
    attr("description", true, true),
    attr("stateful", true, true),
    attr("project_id", true, false),
    attr("tenant_id", true, false),
];

const RULE_ATTRS: &[Attr] = &[
    attr("security_group_id", true, false),
    attr("direction", true, false),
    attr("ethertype", true, false),
    attr("protocol", true, false),
    attr("port_range_min", true, false),
    attr("port_range_max", true, false),
    attr("remote_ip_prefix", true, false),
    attr("remote_group_id", true, false),
    attr("description", true, false),
    attr("project_id", true, false),
    attr("tenant_id", true, false),
];

fn egress_rules(txn: &Txn<'_>, group: &SecurityGroup) -> Vec<SecurityGroupRule> {
    ["IPv4", "IPv6"]
        .into_iter()
        .map(|eth| rule_template(txn, group, "egress", eth, None))
        .collect()
}

fn rule_template(
    txn: &Txn<'_>,
    g: &SecurityGroup,
    dir: &str,
    eth: &str,
    remote_group: Option<String>,
) -> SecurityGroupRule {
    SecurityGroupRule {
        id: new_id(),
        security_group_id: g.id.clone(),
        direction: dir.into(),
        ethertype: eth.into(),
        protocol: None,
        port_range_min: None,
        port_range_max: None,
        remote_ip_prefix: None,
        remote_group_id: remote_group,
        normalized_cidr: None,
        belongs_to_default_sg: g.is_default,
        std: new_std(txn, g.std.project_id.clone(), None),
    }
}

/// The project's `default` group, created on first need with Neutron's
/// default rules (egress anywhere; ingress from members of the group).
pub fn ensure_default_group(txn: &mut Txn<'_>, project: &str) -> ApiResult<String> {
    if let Some(id) = txn.state.default_groups.get(project) {
        return Ok(id.clone());
    }
    let g = SecurityGroup {
        id: new_id(),
        name: "default".into(),
        stateful: true,
        is_default: true,
        std: new_std(
            txn,
            project.to_string(),
            Some("Default security group".into()),
        ),
    };
    let mut rules = egress_rules(txn, &g);
    for eth in ["IPv4", "IPv6"] {
        rules.push(rule_template(txn, &g, "ingress", eth, Some(g.id.clone())));
    }
    let id = g.id.clone();
    txn.put_group(g);
    for r in rules {
        txn.put_rule(r);
    }
    Ok(id)
}

pub async fn ensure_default(engine: &Engine, project: String) -> ApiResult<()> {
    if engine.snapshot().default_groups.contains_key(&project) {
        return Ok(());
    }
    engine
        .write(move |txn| ensure_default_group(txn, &project).map(|_| ()))
        .await
}

pub async fn create(
    engine: &Engine,
    ctx: &AuthContext,
    items: Vec<Map<String, Value>>,
) -> ApiResult<Vec<Arc<SecurityGroup>>> {
    policy::require_writer(ctx, "create_security_group")?;
    let mut reqs = Vec::new();
    for m in items {
        let b = Body::new(m, GROUP_ATTRS, Op::Create)?;
        let name = b.string("name", 255)?.unwrap_or_default();
        if name.eq_ignore_ascii_case("default") {
            return Err(ApiError::conflict(
                "SecurityGroupDefaultAlreadyExists",
                "Default security group already exists.",
            ));
        }
        let project = policy::target_project(
            ctx,
            b.string("project_id", 255)?,
            b.string("tenant_id", 255)?,
        )?;
        reqs.push((
            name,
            b.string("description", 255)?,
            b.bool("stateful")?.unwrap_or(true),
            project,
        ));
    }
    engine
        .write(move |txn| {
            let mut out = Vec::new();
            for (name, description, stateful, project) in reqs {
                ensure_default_group(txn, &project)?;
                check_quota(txn, &project, "security_group", 1)?;
                check_quota(txn, &project, "security_group_rule", 2)?;
                let g = SecurityGroup {
                    id: new_id(),
                    name,
                    stateful,
                    is_default: false,
                    std: new_std(txn, project, description),
                };
                for r in egress_rules(txn, &g) {
                    txn.put_rule(r);
                }
                txn.put_group(g.clone());
                out.push(Arc::new(g));
            }
            Ok(out)
        })
        .await
}

pub async fn update(
    engine: &Engine,
    ctx: &AuthContext,
    id: String,
    m: Map<String, Value>,
    if_match: Option<u64>,
) -> ApiResult<Arc<SecurityGroup>> {
    let b = Body::new(m, GROUP_ATTRS, Op::Update)?;
    let name = b.string("name", 255)?;
    let description = b.string("description", 255)?;
    let stateful = b.bool("stateful")?;
    let ctx = ctx.clone();
    engine
        .write(move |txn| {
            let cur = visible_group(txn, &ctx, &id)?;
            check_change(&ctx, &cur.std, "update_security_group", if_match)?;
            let mut g = (*cur).clone();
            if let Some(n) = name {
                if g.is_default && n != "default" {
                    return Err(ApiError::conflict(
                        "SecurityGroupCannotUpdateDefault",
                        "Updating default security group not allowed.",
                    ));
                }
                if !g.is_default && n.eq_ignore_ascii_case("default") {
                    return Err(ApiError::conflict(
                        "SecurityGroupDefaultAlreadyExists",
                        "Default security group already exists.",
                    ));
                }
                g.name = n;
            }
            if let Some(d) = description {
                g.std.description = d;
            }
            if let Some(s) = stateful {
                if s != g.stateful && txn.state.group_users(&id) > 0 {
                    return Err(ApiError::conflict(
                        "SecurityGroupInUse",
                        format!(
                            "Security Group {id} in use: cannot change stateful while ports use it."
                        ),
                    ));
                }
                g.stateful = s;
            }
            touch(&mut g.std, txn.now);
            txn.put_group(g.clone());
            Ok(Arc::new(g))
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
            let cur = visible_group(txn, &ctx, &id)?;
            check_change(&ctx, &cur.std, "delete_security_group", if_match)?;
            if cur.is_default && !ctx.is_admin() {
                return Err(ApiError::conflict(
                    "SecurityGroupCannotRemoveDefault",
                    "Insufficient rights for removing default security group.",
                ));
            }
            if txn.state.group_users(&id) > 0 {
                return Err(ApiError::conflict(
                    "SecurityGroupInUse",
                    format!("Security Group {id} in use."),
                ));
            }
            let rules: Vec<String> = txn.state.rules_of(&id).map(|r| r.id.clone()).collect();
            for r in rules {
                txn.delete_rule(&r);
            }
            txn.delete_group(&id);
            Ok(())
        })
        .await
}

pub fn visible_group(txn: &Txn<'_>, ctx: &AuthContext, id: &str) -> ApiResult<Arc<SecurityGroup>> {
    match txn.state.security_groups.get(id) {
        Some(g) if policy::can_see_group(ctx, g) => Ok(g.clone()),
        _ => Err(group_not_found(id)),
    }
}

pub fn group_not_found(id: &str) -> ApiError {
    ApiError::not_found(
        "SecurityGroupNotFound",
        format!("Security group {id} does not exist"),
    )
}

/// A rule request, checked without the model.
fn parse_rule(ctx: &AuthContext, m: Map<String, Value>) -> ApiResult<(SecurityGroupRule, bool)> {
    let b = Body::new(m, RULE_ATTRS, Op::Create)?;
    b.required("security_group_id")?;
    b.required("direction")?;
    let group = b.uuid("security_group_id")?.unwrap_or_default();
    let direction = b.string("direction", 16)?.unwrap_or_default();
    if direction != "ingress" && direction != "egress" {
        return Err(ApiError::invalid_attr(
            "direction",
            format!("'{direction}' is not in ['ingress', 'egress']"),
        ));
    }
    let ethertype = match b
        .nullable_string("ethertype", 8)?
        .flatten()
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("ipv4") => "IPv4".to_string(),
        Some("ipv6") => "IPv6".to_string(),
        Some(other) => {
            return Err(ApiError::invalid_attr(
                "ethertype",
                format!("'{other}' is not in ['IPv4', 'IPv6']"),
            ));
        }
    };
    let v6 = ethertype == "IPv6";
    let protocol = match b.raw("protocol") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let s = match v {
                Value::String(s) => s.to_ascii_lowercase(),
                Value::Number(n) => n.to_string(),
                _ => {
                    return Err(ApiError::bad_request(
                        "Security group rule protocol must be a string or a number",
                    )
                    .with_type("SecurityGroupRuleInvalidProtocol"));
                }
            };
            if s == "any" || s.is_empty() {
                None
            } else if let Ok(n) = s.parse::<u16>() {
                if n > 255 {
                    return Err(invalid_protocol(&s));
                }
                Some(if v6 && n == 1 {
                    "58".to_string()
                } else {
                    n.to_string()
                })
            } else if PROTOCOLS.iter().any(|(p, _)| *p == s) {
                Some(match s.as_str() {
                    "icmp" | "icmpv6" if v6 => "ipv6-icmp".to_string(),
                    "icmpv6" => "ipv6-icmp".to_string(),
                    _ => s,
                })
            } else {
                return Err(invalid_protocol(&s));
            }
        }
    };
    let min = b.u32_in("port_range_min", 0, 65535)?.flatten();
    let max = b.u32_in("port_range_max", 0, 65535)?.flatten();
    let number = protocol.as_deref().map(|p| {
        PROTOCOLS
            .iter()
            .find(|(n, _)| *n == p)
            .map_or_else(|| p.parse::<u8>().unwrap_or(255), |(_, n)| *n)
    });
    let (min, max) = match number {
        _ if min.is_none() && max.is_none() => (None, None),
        None => {
            return Err(ApiError::bad_request(
                "Must also specify protocol if port range is given.",
            )
            .with_type("SecurityGroupProtocolRequiredWithPorts"));
        }
        Some(6 | 17 | 132 | 33 | 136) => {
            let (Some(lo), Some(hi)) = (min, max) else {
                return Err(ApiError::bad_request(
                    "For TCP/UDP protocols, port_range_min and port_range_max must both be given",
                )
                .with_type("SecurityGroupInvalidPortRange"));
            };
            if lo == 0 || hi == 0 || lo > hi {
                return Err(ApiError::bad_request(
                    "For TCP/UDP protocols, port_range_min must be <= port_range_max",
                )
                .with_type("SecurityGroupInvalidPortRange"));
            }
            if lo == 1 && hi == 65535 {
                (None, None)
            } else {
                (Some(lo), Some(hi))
            }
        }
        Some(1 | 58) => {
            if min.is_some_and(|v| v > 255) || max.is_some_and(|v| v > 255) {
                return Err(ApiError::bad_request(
                    "Invalid value for ICMP type or code: must be 0 through 255",
                )
                .with_type("SecurityGroupInvalidIcmpValue"));
            }
            if min.is_none() && max.is_some() {
                return Err(ApiError::bad_request("ICMP code (port-range-max) is provided but ICMP type (port-range-min) is missing.").with_type("SecurityGroupMissingIcmpType"));
            }
            (min, max)
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "Port ranges are only supported for TCP, UDP, SCTP, DCCP, UDP-Lite and ICMP",
            )
            .with_type("SecurityGroupInvalidProtocolForPort"));
        }
    };
    let (prefix, normalized) = match b.nullable_string("remote_ip_prefix", 64)?.flatten() {
        None => (None, None),
        Some(p) => {
            let c = if p.contains('/') {
                Cidr::parse(&p).map_err(neutrino_ipam::IpamError::from)
            } else {
                neutrino_ipam::parse_ip(&p).map(Cidr::host)
            }
            .map_err(|e| ApiError::invalid_attr("remote_ip_prefix", e))?;
            if c.is_v4() == v6 {
                return Err(ApiError::bad_request(format!(
                    "Conflicting value ethertype {ethertype} for CIDR {c}"
                ))
                .with_type("SecurityGroupRuleParameterConflict"));
            }
            // Host bits are kept as given; normalized_cidr shows the network.
            (Some(c.to_string()), Some(c.network().to_string()))
        }
    };
    let remote_group = b.uuid("remote_group_id")?;
    if prefix.is_some() && remote_group.is_some() {
        return Err(ApiError::bad_request(
            "Only remote_ip_prefix or remote_group_id may be provided.",
        )
        .with_type("SecurityGroupRemoteGroupAndRemoteIpPrefix"));
    }
    let project = policy::target_project(
        ctx,
        b.string("project_id", 255)?,
        b.string("tenant_id", 255)?,
    )?;
    let description = b.string("description", 255)?;
    let rule = SecurityGroupRule {
        id: new_id(),
        security_group_id: group,
        direction,
        ethertype,
        protocol,
        port_range_min: min,
        port_range_max: max,
        normalized_cidr: normalized,
        remote_ip_prefix: prefix,
        remote_group_id: remote_group,
        belongs_to_default_sg: false,
        std: neutrino_model::StdAttrs {
            project_id: project,
            description: description.unwrap_or_default(),
            ..Default::default()
        },
    };
    Ok((rule, b.has("project_id") || b.has("tenant_id")))
}

fn invalid_protocol(p: &str) -> ApiError {
    ApiError::bad_request(format!(
        "Security group rule protocol {p} not supported. Only protocol values [None, tcp, udp, icmp, ...] and integer representations [0 to 255] are supported."
    ))
    .with_type("SecurityGroupRuleInvalidProtocol")
}

pub async fn create_rules(
    engine: &Engine,
    ctx: &AuthContext,
    items: Vec<Map<String, Value>>,
) -> ApiResult<Vec<Arc<SecurityGroupRule>>> {
    policy::require_writer(ctx, "create_security_group_rule")?;
    let rules = items
        .into_iter()
        .map(|m| parse_rule(ctx, m))
        .collect::<ApiResult<Vec<_>>>()?;
    // Neutron tells a repeat inside one bulk POST apart from a clash with an
    // existing rule (which is SecurityGroupRuleExists, below).
    let mut keys = std::collections::HashSet::new();
    if !rules.iter().all(|(r, _)| keys.insert(r.dedup_key())) {
        return Err(ApiError::conflict(
            "DuplicateSecurityGroupRuleInPost",
            "Duplicate Security Group Rule in POST.",
        ));
    }
    let ctx = ctx.clone();
    engine
        .write(move |txn| {
            let mut out = Vec::new();
            for (mut r, explicit_project) in rules {
                let g = visible_group(txn, &ctx, &r.security_group_id)?;
                policy::require_owner(&ctx, &g.std.project_id, "create_security_group_rule")?;
                r.belongs_to_default_sg = g.is_default;
                if !explicit_project {
                    r.std.project_id = g.std.project_id.clone();
                }
                if let Some(rg) = &r.remote_group_id {
                    visible_group(txn, &ctx, rg)?;
                }
                if let Some(existing) = txn.state.rule_keys.get(&r.dedup_key()) {
                    return Err(ApiError::conflict(
                        "SecurityGroupRuleExists",
                        format!("Security group rule already exists. Rule id is {existing}."),
                    ));
                }
                check_quota(txn, &r.std.project_id, "security_group_rule", 1)?;
                r.std.created_at = txn.now;
                r.std.updated_at = txn.now;
                r.std.revision_number = 1;
                let mut group = (*g).clone();
                touch(&mut group.std, txn.now);
                txn.put_group(group);
                txn.put_rule(r.clone());
                out.push(Arc::new(r));
            }
            Ok(out)
        })
        .await
}

pub async fn delete_rule(engine: &Engine, ctx: &AuthContext, id: String) -> ApiResult<()> {
    let ctx = ctx.clone();
    engine
        .write(move |txn| {
            let r = match txn.state.rules.get(&id) {
                Some(r) if policy::can_see_rule(&ctx, txn.state, r) => r.clone(),
                _ => return Err(rule_not_found(&id)),
            };
            policy::require_owner(&ctx, &r.std.project_id, "delete_security_group_rule")?;
            txn.delete_rule(&id);
            if let Some(g) = txn.state.security_groups.get(&r.security_group_id).cloned() {
                let mut g = (*g).clone();
                touch(&mut g.std, txn.now);
                txn.put_group(g);
            }
            Ok(())
        })
        .await
}

pub fn rule_not_found(id: &str) -> ApiError {
    ApiError::not_found(
        "SecurityGroupRuleNotFound",
        format!("Security group rule {id} does not exist"),
    )
}
