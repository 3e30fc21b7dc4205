//! Tags on networks, subnets, ports, security groups, routers and floating IPs. Every tag change
//! bumps the resource's revision.

use neutrino_model::{ApiError, ApiResult, AuthContext, StdAttrs};

use super::{check_tag, touch};
use crate::txn::Txn;
use crate::{Engine, State, policy};

/// Which collection a tag URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taggable {
    Network,
    Subnet,
    Port,
    SecurityGroup,
    Router,
    FloatingIp,
}

impl Taggable {
    pub fn from_collection(c: &str) -> Option<Taggable> {
        match c {
            "networks" => Some(Taggable::Network),
            "subnets" => Some(Taggable::Subnet),
            "ports" => Some(Taggable::Port),
            "security-groups" => Some(Taggable::SecurityGroup),
            "routers" => Some(Taggable::Router),
            "floatingips" => Some(Taggable::FloatingIp),
            _ => None,
        }
    }
}

const MAX_TAGS: usize = 50;

fn resource_not_found(id: &str) -> ApiError {
    ApiError::not_found(
        "TagResourceNotFound",
        format!("Resource {id} could not be found."),
    )
}

/// The resource's current standard attributes, if the caller can see it.
fn current(s: &State, ctx: &AuthContext, t: Taggable, id: &str) -> ApiResult<StdAttrs> {
    let std = match t {
        Taggable::Network => s
            .networks
            .get(id)
            .filter(|n| policy::can_see_network(ctx, n))
            .map(|n| n.std.clone()),
        Taggable::Subnet => s
            .subnets
            .get(id)
            .filter(|n| policy::can_see_subnet(ctx, s, n))
            .map(|n| n.std.clone()),
        Taggable::Port => s
            .ports
            .get(id)
            .filter(|n| policy::can_see_port(ctx, s, n))
            .map(|n| n.std.clone()),
        Taggable::SecurityGroup => s
            .security_groups
            .get(id)
            .filter(|n| policy::can_see_group(ctx, n))
            .map(|n| n.std.clone()),
        Taggable::Router => s
            .routers
            .get(id)
            .filter(|n| policy::can_see_router(ctx, n))
            .map(|n| n.std.clone()),
        Taggable::FloatingIp => s
            .floatingips
            .get(id)
            .filter(|n| policy::can_see_fip(ctx, n))
            .map(|n| n.std.clone()),
    };
    std.ok_or_else(|| resource_not_found(id))
}

fn store(txn: &mut Txn<'_>, t: Taggable, id: &str, tags: Vec<String>) {
    let now = txn.now;
    let apply = |std: &mut StdAttrs| {
        std.tags = tags.clone();
        touch(std, now);
    };
    match t {
        Taggable::Network => {
            if let Some(n) = txn.state.networks.get(id).cloned() {
                let mut n = (*n).clone();
                apply(&mut n.std);
                txn.put_network(n);
            }
        }
        Taggable::Subnet => {
            if let Some(n) = txn.state.subnets.get(id).cloned() {
                let mut n = (*n).clone();
                apply(&mut n.std);
                let _ = txn.put_subnet(n);
            }
        }
        Taggable::Port => {
            if let Some(n) = txn.state.ports.get(id).cloned() {
                let mut n = (*n).clone();
                apply(&mut n.std);
                txn.put_port(n);
            }
        }
        Taggable::SecurityGroup => {
            if let Some(n) = txn.state.security_groups.get(id).cloned() {
                let mut n = (*n).clone();
                apply(&mut n.std);
                txn.put_group(n);
            }
        }
        Taggable::Router => {
            if let Some(n) = txn.state.routers.get(id).cloned() {
                let mut n = (*n).clone();
                apply(&mut n.std);
                txn.put_router(n);
            }
        }
        Taggable::FloatingIp => {
            if let Some(n) = txn.state.floatingips.get(id).cloned() {
                let mut n = (*n).clone();
                apply(&mut n.std);
                txn.put_fip(n);
            }
        }
    }
}

/// The tags of a resource (read path).
pub fn get(engine: &Engine, ctx: &AuthContext, t: Taggable, id: &str) -> ApiResult<Vec<String>> {
    Ok(current(&engine.snapshot(), ctx, t, id)?.tags)
}

/// Applies an edit to a resource's tag set; returns the new set.
pub async fn edit(
    engine: &Engine,
    ctx: &AuthContext,
    t: Taggable,
    id: String,
    edit: impl FnOnce(&mut Vec<String>) -> ApiResult<()> + Send + 'static,
) -> ApiResult<Vec<String>> {
    let ctx = ctx.clone();
    engine
        .write(move |txn| {
            let std = current(txn.state, &ctx, t, &id)?;
            policy::require_owner(&ctx, &std.project_id, "update_tags")?;
            let mut tags = std.tags.clone();
            edit(&mut tags)?;
            tags.sort();
            tags.dedup();
            for tag in &tags {
                check_tag(tag)?;
            }
            if tags.len() > MAX_TAGS {
                return Err(ApiError::bad_request(format!(
                    "Too many tags: at most {MAX_TAGS} per resource"
                )));
            }
            if tags != std.tags {
                store(txn, t, &id, tags.clone());
            }
            Ok(tags)
        })
        .await
}
