//! Security groups and their rules: stored and validated here (the agent
//! enforces them), with the project's `default` group created lazily and
//! Neutron's duplicate-rule detection.

use std::sync::Arc;

use neutrino_ipam::Cidr;
use neutrino_model::body::Body;
use neutrino_model::query::{AttrValue as V, FilterType as T};
use neutrino_model::{
    ApiError, ApiResult, AuthContext, IP_PROTOCOLS as PROTOCOLS, Kind, SecurityGroup,
    SecurityGroupRule, protocol_number,
};
use serde_json::{Map, Value};

use super::{check_quota, new_id, new_std, touch};
use crate::resource::{Attr, Resource, ViewCtx, opt_int, opt_str, write_json};
use crate::txn::Txn;
use crate::{Engine, State, policy};

type G = Attr<SecurityGroup>;
type R = Attr<SecurityGroupRule>;

impl Resource for SecurityGroup {
    const SINGULAR: &'static str = "security_group";
    const PLURAL: &'static str = "security_groups";
    const PATH: &'static str = "security-groups";
    const ATTRS: &'static [G] = &[
        G::value("id", |g| V::Str(&g.id)).filter(T::Str).sort(),
        G::value("name", |g| V::Str(&g.name))
            .set()
            .filter(T::Str)
            .sort(),
        G::value("stateful", |g| V::Bool(g.stateful))
            .set()
            .filter(T::Bool),
        // Sharing groups through RBAC is not implemented.
        G::value("shared", |_| V::Bool(false)).filter(T::Bool),
        G::json("security_group_rules", group_rules),
    ];
    type Update = GroupUpdate;

    fn all(state: &State) -> &imbl::OrdMap<String, Arc<SecurityGroup>> {
        &state.security_groups
    }
    fn visible(ctx: &AuthContext, _: &State, g: &SecurityGroup) -> bool {
        policy::can_see_group(ctx, g)
    }
    fn not_found(id: &str) -> ApiError {
        ApiError::not_found(
            "SecurityGroupNotFound",
            format!("Security group {id} does not exist"),
        )
    }
    fn put(txn: &mut Txn<'_>, g: SecurityGroup) -> ApiResult<()> {
        txn.put_group(g);
        Ok(())
    }

    type Create = NewGroup;

    fn parse_create(_: &Engine, ctx: &AuthContext, b: Body) -> ApiResult<NewGroup> {
        parse_group(ctx, b)
    }

    fn create_one(
        txn: &mut Txn<'_>,
        _: &AuthContext,
        r: NewGroup,
    ) -> ApiResult<Arc<SecurityGroup>> {
        create_group(txn, r)
    }

    /// The default group of the project looked at: the caller's, or the
    /// first `project_id` (`tenant_id`) an admin filters on.
    async fn before_list(
        engine: &Engine,
        ctx: &AuthContext,
        pairs: &[(String, String)],
    ) -> ApiResult<()> {
        let first = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let filtered = first("project_id").or_else(|| first("tenant_id"));
        let project = match filtered {
            Some(p) if ctx.is_admin() && !p.is_empty() => p,
            _ => ctx.project_id.clone(),
        };
        ensure_default(engine, project).await
    }

    fn parse_update(_: &Engine, _: &AuthContext, b: Body) -> ApiResult<GroupUpdate> {
        Ok(GroupUpdate {
            name: b.string("name", 255)?,
            description: b.string("description", 255)?,
            stateful: b.bool("stateful")?,
        })
    }

    fn apply_update(
        txn: &mut Txn<'_>,
        _: &AuthContext,
        _: &SecurityGroup,
        g: &mut SecurityGroup,
        r: GroupUpdate,
    ) -> ApiResult<()> {
        update_group(txn, g, r)
    }

    fn remove(txn: &mut Txn<'_>, ctx: &AuthContext, cur: Arc<SecurityGroup>) -> ApiResult<()> {
        remove_group(txn, ctx, &cur)
    }
}

/// A group's rules, each as the rules collection shows it.
fn group_rules(g: &SecurityGroup, cx: &ViewCtx<'_>, out: &mut Vec<u8>) {
    out.push(b'[');
    for (i, r) in cx.state.rules_of(&g.id).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json(&**r, cx, &[], out);
    }
    out.push(b']');
}

impl Resource for SecurityGroupRule {
    const SINGULAR: &'static str = "security_group_rule";
    const PLURAL: &'static str = "security_group_rules";
    const PATH: &'static str = "security-group-rules";
    const TAGGABLE: bool = false;
    const ATTRS: &'static [R] = &[
        R::value("id", |r| V::Str(&r.id)).filter(T::Str).sort(),
        R::value("security_group_id", |r| V::Str(&r.security_group_id))
            .post()
            .filter(T::Str)
            .sort(),
        R::value("direction", |r| V::Str(&r.direction))
            .post()
            .filter(T::Str)
            .sort(),
        R::value("ethertype", |r| V::Str(&r.ethertype))
            .post()
            .filter(T::Str)
            .sort(),
        R::value("protocol", |r| opt_str(&r.protocol))
            .post()
            .filter(T::Str)
            .sort(),
        R::value("port_range_min", |r| opt_int(r.port_range_min))
            .post()
            .filter(T::Int)
            .sort(),
        R::value("port_range_max", |r| opt_int(r.port_range_max))
            .post()
            .filter(T::Int)
            .sort(),
        R::value("remote_ip_prefix", |r| opt_str(&r.remote_ip_prefix))
            .post()
            .filter(T::Str)
            .sort(),
        R::value("remote_group_id", |r| opt_str(&r.remote_group_id))
            .post()
            .filter(T::Str)
            .sort(),
        R::value("normalized_cidr", |r| opt_str(&r.normalized_cidr)).filter(T::Str),
        R::value("belongs_to_default_sg", |r| {
            V::Bool(r.belongs_to_default_sg)
        })
        .filter(T::Bool),
    ];
    type Update = std::convert::Infallible;

    fn all(state: &State) -> &imbl::OrdMap<String, Arc<SecurityGroupRule>> {
        &state.rules
    }
    fn visible(ctx: &AuthContext, state: &State, r: &SecurityGroupRule) -> bool {
        policy::can_see_rule(ctx, state, r)
    }
    fn not_found(id: &str) -> ApiError {
        ApiError::not_found(
            "SecurityGroupRuleNotFound",
            format!("Security group rule {id} does not exist"),
        )
    }
    fn put(txn: &mut Txn<'_>, r: SecurityGroupRule) -> ApiResult<()> {
        txn.put_rule(r);
        Ok(())
    }

    type Create = NewRule;

    fn parse_create(_: &Engine, ctx: &AuthContext, b: Body) -> ApiResult<NewRule> {
        parse_rule(ctx, b)
    }

    /// Neutron tells a repeat inside one bulk POST apart from a clash with an
    /// existing rule (which is SecurityGroupRuleExists).
    fn check_bulk(rules: &[NewRule]) -> ApiResult<()> {
        let mut keys = std::collections::HashSet::new();
        if !rules.iter().all(|r| keys.insert(r.rule.dedup_key())) {
            return Err(ApiError::conflict(
                "DuplicateSecurityGroupRuleInPost",
                "Duplicate Security Group Rule in POST.",
            ));
        }
        Ok(())
    }

    fn create_one(
        txn: &mut Txn<'_>,
        ctx: &AuthContext,
        r: NewRule,
    ) -> ApiResult<Arc<SecurityGroupRule>> {
        create_rule(txn, ctx, r)
    }

    /// Rules are immutable: a change is a delete and a create.
    async fn update(
        _: &Engine,
        _: &AuthContext,
        _: String,
        _: Map<String, Value>,
        _: Option<u64>,
    ) -> ApiResult<Arc<SecurityGroupRule>> {
        Err(ApiError::new(
            neutrino_model::ErrorKind::MethodNotAllowed,
            "HTTPMethodNotAllowed",
            "Security group rules cannot be updated.",
        ))
    }

    fn parse_update(_: &Engine, _: &AuthContext, _: Body) -> ApiResult<Self::Update> {
        Err(ApiError::internal())
    }

    fn apply_update(
        _: &mut Txn<'_>,
        _: &AuthContext,
        _: &SecurityGroupRule,
        _: &mut SecurityGroupRule,
        never: Self::Update,
    ) -> ApiResult<()> {
        match never {}
    }

    /// Only the owner of a rule deletes it; `If-Match` is not checked.
    fn check_delete(
        _: &Txn<'_>,
        ctx: &AuthContext,
        r: &SecurityGroupRule,
        _: Option<u64>,
    ) -> ApiResult<()> {
        policy::require_owner(ctx, &r.std.project_id, "delete_security_group_rule")
    }

    fn remove(txn: &mut Txn<'_>, _: &AuthContext, r: Arc<SecurityGroupRule>) -> ApiResult<()> {
        txn.delete_rule(&r.id);
        if let Some(g) = txn.state.security_groups.get(&r.security_group_id).cloned() {
            let mut g = (*g).clone();
            touch(&mut g.std, txn.now);
            txn.put_group(g);
        }
        Ok(())
    }
}

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

/// A validated create request.
pub struct NewGroup {
    name: String,
    description: Option<String>,
    stateful: bool,
    project: String,
}

fn parse_group(ctx: &AuthContext, b: Body) -> ApiResult<NewGroup> {
    let name = b.string("name", 255)?.unwrap_or_default();
    if name.eq_ignore_ascii_case("default") {
        return Err(ApiError::conflict(
            "SecurityGroupDefaultAlreadyExists",
            "Default security group already exists.",
        ));
    }
    Ok(NewGroup {
        project: policy::target_project(
            ctx,
            b.string("project_id", 255)?,
            b.string("tenant_id", 255)?,
        )?,
        name,
        description: b.string("description", 255)?,
        stateful: b.bool("stateful")?.unwrap_or(true),
    })
}

fn create_group(txn: &mut Txn<'_>, r: NewGroup) -> ApiResult<Arc<SecurityGroup>> {
    let NewGroup {
        name,
        description,
        stateful,
        project,
    } = r;
    // The project's default group is the cloud's doing and never counts
    // against this request, as in Neutron (which reserves the request's
    // groups before making it): before it is made, or when an earlier item
    // of this bulk made it. Neither are the rules that come with a group.
    let default_made_here = txn
        .state
        .default_groups
        .get(&project)
        .is_some_and(|id| txn.wrote(Kind::SecurityGroup, id));
    check_quota(
        txn,
        &project,
        "security_group",
        i64::from(!default_made_here),
    )?;
    ensure_default_group(txn, &project)?;
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
    Ok(Arc::new(g))
}

/// A validated update request.
pub struct GroupUpdate {
    name: Option<String>,
    description: Option<String>,
    stateful: Option<bool>,
}

fn update_group(txn: &mut Txn<'_>, g: &mut SecurityGroup, r: GroupUpdate) -> ApiResult<()> {
    let GroupUpdate {
        name,
        description,
        stateful,
    } = r;
    let id = g.id.clone();
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
                format!("Security Group {id} in use: cannot change stateful while ports use it."),
            ));
        }
        g.stateful = s;
    }
    Ok(())
}

fn remove_group(txn: &mut Txn<'_>, ctx: &AuthContext, cur: &SecurityGroup) -> ApiResult<()> {
    let id = cur.id.as_str();
    if cur.is_default && !ctx.is_admin() {
        return Err(ApiError::conflict(
            "SecurityGroupCannotRemoveDefault",
            "Insufficient rights for removing default security group.",
        ));
    }
    if txn.state.group_users(id) > 0 {
        return Err(ApiError::conflict(
            "SecurityGroupInUse",
            format!("Security Group {id} in use."),
        ));
    }
    let rules: Vec<String> = txn.state.rules_of(id).map(|r| r.id.clone()).collect();
    for r in rules {
        txn.delete_rule(&r);
    }
    txn.delete_group(id);
    Ok(())
}

/// A rule request, checked without the model.
pub struct NewRule {
    rule: SecurityGroupRule,
    /// The request named the rule's project (else it is the group's).
    explicit_project: bool,
}

fn parse_rule(ctx: &AuthContext, b: Body) -> ApiResult<NewRule> {
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
    let ethertype = parse_ethertype(&b)?;
    let protocol = parse_protocol(&b, ethertype == "IPv6")?;
    // Neutron's order: the port range, the prefix, then the protocol
    // against the ethertype.
    let (min, max) = port_range(
        protocol.as_deref(),
        port_value(&b, "port_range_min")?,
        port_value(&b, "port_range_max")?,
    )?;
    let (prefix, normalized) = remote_prefix(&b, &ethertype)?;
    check_ethertype_fits(&b, &ethertype, protocol.as_deref())?;
    // Not checked as a UUID: Neutron looks it up, so a malformed one is a
    // group that does not exist (404 when the rule is created).
    let remote_group = b.nullable_string("remote_group_id", 255)?.flatten();
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
    Ok(NewRule {
        rule,
        explicit_project: b.has("project_id") || b.has("tenant_id"),
    })
}

/// `ethertype`: IPv4 (the default) or IPv6, in any case.
fn parse_ethertype(b: &Body) -> ApiResult<String> {
    Ok(
        match b
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
        },
    )
}

/// Protocols of IPv6 alone (its extension headers and ICMPv6): a rule for
/// them must be IPv6.
const IPV6_ONLY: [u8; 6] = [41, 43, 44, 58, 59, 60];

/// A protocol of IPv6 alone needs an IPv6 rule; the error names the
/// protocol as the request gave it.
fn check_ethertype_fits(b: &Body, ethertype: &str, protocol: Option<&str>) -> ApiResult<()> {
    let Some(p) = protocol else {
        return Ok(());
    };
    if ethertype == "IPv6" || !IPV6_ONLY.contains(&ip_protocol(p)) {
        return Ok(());
    }
    let given = match b.raw("protocol") {
        Some(Value::String(s)) => s.to_ascii_lowercase(),
        Some(other) => other.to_string(),
        None => p.to_string(),
    };
    Err(ApiError::bad_request(format!(
        "Invalid ethertype {ethertype} for protocol {given}."
    ))
    .with_type("SecurityGroupEthertypeConflictWithProtocol"))
}

/// A protocol's number, from its name or its digits (255 when neither).
fn ip_protocol(p: &str) -> u8 {
    protocol_number(p).unwrap_or(255)
}

/// `protocol`: a name, a number or nothing (any); ICMP on IPv6 is ICMPv6.
fn parse_protocol(b: &Body, v6: bool) -> ApiResult<Option<String>> {
    Ok(match b.raw("protocol") {
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
    })
}

/// A port bound: null, or 0 to 65535 as a number or its digits (Neutron's
/// `convert_validate_port_value`).
fn port_value(b: &Body, k: &str) -> ApiResult<Option<u32>> {
    let v = match b.raw(k) {
        None | Some(Value::Null) => return Ok(None),
        Some(v) => v,
    };
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match n
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n <= 65535)
    {
        Some(n) => Ok(Some(n)),
        None => {
            let shown = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Err(invalid_port(&shown))
        }
    }
}

fn invalid_port(port: &str) -> ApiError {
    ApiError::bad_request(format!("Invalid value for port {port}"))
        .with_type("SecurityGroupInvalidPortValue")
}

/// Protocols whose rules take a port range (Neutron's `SG_PORT_PROTO_NUMS`:
/// DCCP, SCTP, TCP, UDP, UDP-Lite).
const PORT_PROTOCOLS: [u8; 5] = [33, 132, 6, 17, 136];

/// The port range (or ICMP type and code) a protocol allows, checked in
/// Neutron's order with its messages; TCP's and UDP's whole range is no
/// range.
fn port_range(
    protocol: Option<&str>,
    min: Option<u32>,
    max: Option<u32>,
) -> ApiResult<(Option<u32>, Option<u32>)> {
    // The whole range is no range (Neutron's canonical form), whatever the
    // protocol.
    let whole = min == Some(1) && max == Some(65535);
    if whole || (min.is_none() && max.is_none()) {
        return Ok((None, None));
    }
    let Some(number) = protocol.map(ip_protocol) else {
        return Err(
            ApiError::bad_request("Must also specify protocol if port range is given.")
                .with_type("SecurityGroupProtocolRequiredWithPorts"),
        );
    };
    if PORT_PROTOCOLS.contains(&number) {
        if min == Some(0) || max == Some(0) {
            return Err(invalid_port("0"));
        }
        match (min, max) {
            (Some(lo), Some(hi)) if lo <= hi => Ok((min, max)),
            _ => Err(ApiError::bad_request(
                "For TCP/UDP protocols, port_range_min must be <= port_range_max",
            )
            .with_type("SecurityGroupInvalidPortRange")),
        }
    } else if number == 1 || number == 58 {
        for (v, attr, field) in [
            (min, "port_range_min", "type"),
            (max, "port_range_max", "code"),
        ] {
            if let Some(v) = v.filter(|v| *v > 255) {
                return Err(ApiError::bad_request(format!(
                    "Invalid value for ICMP {field} ({attr}) {v}. It must be 0 to 255."
                ))
                .with_type("SecurityGroupInvalidIcmpValue"));
            }
        }
        if let (None, Some(code)) = (min, max) {
            return Err(ApiError::bad_request(format!(
                "ICMP code (port-range-max) {code} is provided but ICMP type (port-range-min) is missing."
            ))
            .with_type("SecurityGroupMissingIcmpType"));
        }
        Ok((min, max))
    } else {
        Err(ApiError::bad_request(format!(
            "Ports cannot be specified for protocol {number}. Ports are only supported for DCCP, SCTP, TCP, UDP, UDPLITE."
        ))
        .with_type("SecurityGroupInvalidProtocolForPort"))
    }
}

/// `remote_ip_prefix` of the rule's ethertype, and the network it names.
fn remote_prefix(b: &Body, ethertype: &str) -> ApiResult<(Option<String>, Option<String>)> {
    let v6 = ethertype == "IPv6";
    Ok(match b.nullable_string("remote_ip_prefix", 64)?.flatten() {
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
    })
}

fn invalid_protocol(p: &str) -> ApiError {
    ApiError::bad_request(format!(
        "Security group rule protocol {p} not supported. Only protocol values [None, tcp, udp, icmp, ...] and integer representations [0 to 255] are supported."
    ))
    .with_type("SecurityGroupRuleInvalidProtocol")
}

fn create_rule(
    txn: &mut Txn<'_>,
    ctx: &AuthContext,
    r: NewRule,
) -> ApiResult<Arc<SecurityGroupRule>> {
    let NewRule {
        mut rule,
        explicit_project,
    } = r;
    let r = &mut rule;
    // The remote group first, as Neutron looks them up.
    if let Some(rg) = &r.remote_group_id {
        SecurityGroup::find(txn.state, ctx, rg)?;
    }
    let g = SecurityGroup::find(txn.state, ctx, &r.security_group_id)?;
    policy::require_owner(ctx, &g.std.project_id, "create_security_group_rule")?;
    r.belongs_to_default_sg = g.is_default;
    if !explicit_project {
        r.std.project_id = g.std.project_id.clone();
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
    txn.put_rule(rule.clone());
    Ok(Arc::new(rule))
}
