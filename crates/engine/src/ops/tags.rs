//! Tags on any taggable resource (networks, subnets, ports, security groups,
//! routers, floating IPs). Every tag change bumps the resource's revision.

use neutrino_model::{ApiError, ApiResult, AuthContext};

use super::{check_tag, touch};
use crate::resource::Resource;
use crate::{Engine, policy};

const MAX_TAGS: usize = 50;

fn resource_not_found(id: &str) -> ApiError {
    ApiError::not_found(
        "TagResourceNotFound",
        format!("Resource {id} could not be found."),
    )
}

/// The tags of a resource (read path).
pub fn get<R: Resource>(engine: &Engine, ctx: &AuthContext, id: &str) -> ApiResult<Vec<String>> {
    let item = R::find(&engine.snapshot(), ctx, id).map_err(|_| resource_not_found(id))?;
    Ok(item.std().tags.clone())
}

/// Applies an edit to a resource's tag set; returns the new set.
pub async fn edit<R: Resource>(
    engine: &Engine,
    ctx: &AuthContext,
    id: String,
    edit: impl FnOnce(&mut Vec<String>) -> ApiResult<()> + Send + 'static,
) -> ApiResult<Vec<String>> {
    let ctx = ctx.clone();
    engine
        .write(move |txn| {
            let cur = R::find(txn.state, &ctx, &id).map_err(|_| resource_not_found(&id))?;
            policy::require_owner(&ctx, &cur.std().project_id, "update_tags")?;
            let mut tags = cur.std().tags.clone();
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
            if tags != cur.std().tags {
                let mut item = (*cur).clone();
                item.std_mut().tags = tags.clone();
                touch(item.std_mut(), txn.now);
                R::put(txn, item)?;
            }
            Ok(tags)
        })
        .await
}
