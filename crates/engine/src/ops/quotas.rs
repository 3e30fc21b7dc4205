//! Per-project quotas: configured defaults, admin overrides, and the usage
//! the model counts as resources come and go.

use std::collections::BTreeMap;

use neutrino_model::{ApiError, ApiResult, AuthContext, QuotaOverrides};
use serde_json::{Map, Value, json};

use crate::config::QUOTA_RESOURCES;
use crate::{Engine, State, policy};

/// The effective limits of a project.
pub fn limits(engine: &Engine, state: &State, project: &str) -> BTreeMap<&'static str, i64> {
    let overrides = state.quotas.get(project);
    QUOTA_RESOURCES
        .iter()
        .map(|(r, _)| {
            let v = overrides
                .and_then(|o| o.limits.get(*r).copied())
                .unwrap_or_else(|| engine.config().quota_default(r));
            (*r, v)
        })
        .collect()
}

/// A project's limits as the API shows them, with its id.
fn quota_object(engine: &Engine, state: &State, project: &str) -> Value {
    let mut m: Map<String, Value> = limits(engine, state, project)
        .into_iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    m.insert("project_id".into(), json!(project));
    m.insert("tenant_id".into(), json!(project));
    Value::Object(m)
}

pub fn check_read(ctx: &AuthContext, project: &str) -> ApiResult<()> {
    if ctx.is_admin() || ctx.project_id == project {
        Ok(())
    } else {
        Err(ApiError::forbidden("rule:get_quota"))
    }
}

pub fn show(engine: &Engine, ctx: &AuthContext, project: &str) -> ApiResult<Value> {
    check_read(ctx, project)?;
    let state = engine.snapshot();
    Ok(json!({ "quota": quota_object(engine, &state, project) }))
}

pub fn defaults(engine: &Engine, ctx: &AuthContext, project: &str) -> ApiResult<Value> {
    check_read(ctx, project)?;
    let mut m: Map<String, Value> = QUOTA_RESOURCES
        .iter()
        .map(|(r, _)| (r.to_string(), json!(engine.config().quota_default(r))))
        .collect();
    m.insert("project_id".into(), json!(project));
    m.insert("tenant_id".into(), json!(project));
    Ok(json!({ "quota": m }))
}

pub fn details(engine: &Engine, ctx: &AuthContext, project: &str) -> ApiResult<Value> {
    check_read(ctx, project)?;
    let state = engine.snapshot();
    let m: Map<String, Value> = limits(engine, &state, project)
        .into_iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                json!({"limit": v, "used": state.used(project, k), "reserved": 0}),
            )
        })
        .collect();
    Ok(json!({ "quota": m }))
}

/// Projects with non-default limits (admin only).
pub fn list(engine: &Engine, ctx: &AuthContext) -> ApiResult<Value> {
    policy::require_admin(ctx, "rule:get_quota")?;
    let state = engine.snapshot();
    let items: Vec<Value> = state
        .quotas
        .keys()
        .map(|p| quota_object(engine, &state, p))
        .collect();
    Ok(json!({ "quotas": items }))
}

pub async fn update(
    engine: &Engine,
    ctx: &AuthContext,
    project: String,
    body: Value,
) -> ApiResult<Value> {
    policy::require_admin(ctx, "rule:update_quota")?;
    let Some(Value::Object(q)) = body.get("quota").cloned() else {
        return Err(ApiError::bad_request(
            "Unable to find 'quota' in request body",
        ));
    };
    let mut force = false;
    let mut changes = BTreeMap::new();
    for (k, v) in q {
        match k.as_str() {
            "force" => force = neutrino_model::body::to_bool(&v)?,
            "check_limit" => {}
            _ => {
                let Some((name, _)) = QUOTA_RESOURCES.iter().find(|(r, _)| *r == k) else {
                    return Err(ApiError::bad_request(format!(
                        "Unrecognized attribute(s) '{k}'"
                    )));
                };
                let n = v
                    .as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()));
                match n {
                    Some(n) if (-1..=i64::from(i32::MAX)).contains(&n) => {
                        changes.insert(name.to_string(), n);
                    }
                    _ => {
                        return Err(ApiError::invalid_attr(
                            &k,
                            format!("'{v}' is not an integer in [-1, 2147483647]"),
                        ));
                    }
                }
            }
        }
    }
    let engine2 = engine.clone();
    let p = project.clone();
    engine
        .write(move |txn| {
            if !force {
                for (k, v) in &changes {
                    let resource = QUOTA_RESOURCES.iter().find(|(r, _)| r == k).map(|(r, _)| *r).unwrap_or("");
                    let used = txn.state.used(&p, resource);
                    if *v >= 0 && used > *v {
                        return Err(ApiError::bad_request(format!(
                            "Quota limit {v} for {k} must be greater than or equal to already used {used}"
                        ))
                        .with_type("InvalidQuotaValue"));
                    }
                }
            }
            let mut q = txn.state.quotas.get(&p).map(|q| (**q).clone()).unwrap_or_else(|| QuotaOverrides { project_id: p.clone(), ..Default::default() });
            q.limits.extend(changes);
            txn.put_quota(q);
            Ok(())
        })
        .await?;
    let state = engine2.snapshot();
    Ok(json!({ "quota": quota_object(&engine2, &state, &project) }))
}

pub async fn reset(engine: &Engine, ctx: &AuthContext, project: String) -> ApiResult<()> {
    policy::require_admin(ctx, "rule:delete_quota")?;
    engine
        .write(move |txn| {
            if txn.state.quotas.contains_key(&project) {
                txn.delete_quota(&project);
            }
            Ok(())
        })
        .await
}
