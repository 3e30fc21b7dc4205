//! Neutron's default policy, reduced to what Neutrino implements: admins see
//! and change everything; members see their project's resources plus shared
//! and external networks (and those networks' subnets), and change their own;
//! readers only read. A caller gets 404, never 403, for what it cannot see.

use neutrino_model::{
    ApiError, ApiResult, AuthContext, FloatingIp, Network, Port, Router, SecurityGroup,
    SecurityGroupRule, Subnet,
};

use crate::state::State;

pub fn owns(ctx: &AuthContext, project_id: &str) -> bool {
    ctx.is_admin() || ctx.project_id == project_id
}

pub fn can_see_network(ctx: &AuthContext, n: &Network) -> bool {
    owns(ctx, &n.std.project_id) || n.shared || n.router_external
}

pub fn can_see_subnet(ctx: &AuthContext, state: &State, s: &Subnet) -> bool {
    owns(ctx, &s.std.project_id)
        || state
            .networks
            .get(&s.network_id)
            .is_some_and(|n| n.shared || n.router_external)
}

/// Ports: their owner, and the owner of the network they sit on.
pub fn can_see_port(ctx: &AuthContext, state: &State, p: &Port) -> bool {
    owns(ctx, &p.std.project_id)
        || state
            .networks
            .get(&p.network_id)
            .is_some_and(|n| n.std.project_id == ctx.project_id)
}

pub fn can_see_group(ctx: &AuthContext, g: &SecurityGroup) -> bool {
    owns(ctx, &g.std.project_id)
}

pub fn can_see_rule(ctx: &AuthContext, state: &State, r: &SecurityGroupRule) -> bool {
    owns(ctx, &r.std.project_id)
        || state
            .security_groups
            .get(&r.security_group_id)
            .is_some_and(|g| owns(ctx, &g.std.project_id))
}

/// Routers and floating IPs: their project only (and admins).
pub fn can_see_router(ctx: &AuthContext, r: &Router) -> bool {
    owns(ctx, &r.std.project_id)
}

pub fn can_see_fip(ctx: &AuthContext, f: &FloatingIp) -> bool {
    owns(ctx, &f.std.project_id)
}

/// Readers may not write anything.
pub fn require_writer(ctx: &AuthContext, action: &str) -> ApiResult<()> {
    if ctx.can_write() {
        Ok(())
    } else {
        Err(ApiError::forbidden(&format!("rule:{action}")))
    }
}

/// A visible resource the caller does not own may not be changed (403).
pub fn require_owner(ctx: &AuthContext, project_id: &str, action: &str) -> ApiResult<()> {
    require_writer(ctx, action)?;
    if owns(ctx, project_id) {
        Ok(())
    } else {
        Err(ApiError::forbidden(&format!("rule:{action}")))
    }
}

pub fn require_admin(ctx: &AuthContext, rule: &str) -> ApiResult<()> {
    if ctx.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden(rule))
    }
}

/// The project a new resource belongs to: the caller's, unless an admin names
/// another (`project_id` and `tenant_id` must agree when both are given).
pub fn target_project(
    ctx: &AuthContext,
    project_id: Option<String>,
    tenant_id: Option<String>,
) -> ApiResult<String> {
    let given = match (project_id, tenant_id) {
        (Some(p), Some(t)) if p != t => {
            return Err(ApiError::bad_request(
                "'project_id' and 'tenant_id' do not match",
            ));
        }
        (Some(p), _) | (None, Some(p)) => Some(p),
        (None, None) => None,
    };
    match given {
        None => Ok(ctx.project_id.clone()),
        Some(p) if p == ctx.project_id || ctx.is_admin() => Ok(p),
        Some(_) => Err(ApiError::bad_request(
            "Specifying 'project_id' or 'tenant_id' other than the authenticated project in request requires admin privileges",
        )),
    }
}
