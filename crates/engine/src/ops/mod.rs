//! Resource operations. Each create/update/delete parses and checks the
//! request body outside the writer (pure validation), then runs the parts
//! that depend on the model (existence, uniqueness, IPAM, quotas) inside one
//! writer job, so a request is applied whole or not at all.

pub mod agents;
pub mod floatingips;
pub mod instance_metadata;
pub mod networks;
pub mod ports;
pub mod quotas;
pub mod routers;
pub mod security_groups;
pub mod subnets;
pub mod tags;

use neutrino_ipam::IpamError;
use neutrino_model::{ApiError, ApiResult, AuthContext, ErrorKind, StdAttrs};

use crate::txn::Txn;

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Standard attributes for a new resource.
pub fn new_std(txn: &Txn<'_>, project_id: String, description: Option<String>) -> StdAttrs {
    StdAttrs {
        project_id,
        description: description.unwrap_or_default(),
        tags: Vec::new(),
        created_at: txn.now,
        updated_at: txn.now,
        revision_number: 1,
    }
}

/// Marks a resource changed: bumps its revision and update time.
pub fn touch(std: &mut StdAttrs, now: i64) {
    std.revision_number += 1;
    std.updated_at = now;
}

/// The checks before changing or deleting a visible resource: the caller
/// must own it, and its revision must match `If-Match` if one was sent.
pub fn check_change(
    ctx: &AuthContext,
    std: &StdAttrs,
    action: &str,
    if_match: Option<u64>,
) -> ApiResult<()> {
    crate::policy::require_owner(ctx, &std.project_id, action)?;
    check_revision(std, if_match)
}

/// `If-Match: revision_number=N`: compared inside the writer, so the check
/// and the update are atomic.
pub fn check_revision(std: &StdAttrs, if_match: Option<u64>) -> ApiResult<()> {
    match if_match {
        Some(want) if want != std.revision_number => Err(ApiError::new(
            ErrorKind::PreconditionFailed,
            "RevisionNumberConstraintFailed",
            format!(
                "Constrained to {want}, but current revision is {}",
                std.revision_number
            ),
        )),
        _ => Ok(()),
    }
}

/// Checks a project's quota for `n` more of a resource.
pub fn check_quota(txn: &Txn<'_>, project: &str, resource: &'static str, n: i64) -> ApiResult<()> {
    let limit = txn
        .state
        .quotas
        .get(project)
        .and_then(|q| q.limits.get(resource).copied())
        .unwrap_or_else(|| txn.config.quota_default(resource));
    if limit >= 0 && txn.state.used(project, resource) + n > limit {
        return Err(ApiError::conflict(
            "OverQuota",
            format!("Quota exceeded for resources: ['{resource}']."),
        ));
    }
    Ok(())
}

/// Neutron's `BadRequest(resource=…, msg=…)`: "Bad <resource> request: <msg>."
pub fn bad_resource_request(resource: &str, msg: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        neutrino_model::ErrorKind::BadRequest,
        "BadRequest",
        format!("Bad {resource} request: {msg}."),
    )
}

/// An IPAM error as the API reports it.
pub fn ipam_error(e: impl Into<IpamError>) -> ApiError {
    let e = e.into();
    let kind = match e.http_status() {
        404 => ErrorKind::NotFound,
        409 => ErrorKind::Conflict,
        _ => ErrorKind::BadRequest,
    };
    ApiError::new(kind, e.neutron_type(), e.to_string())
}

/// Validates a new tag value.
pub fn check_tag(tag: &str) -> ApiResult<()> {
    if tag.is_empty() || tag.chars().count() > 255 || tag.contains(',') {
        return Err(ApiError::bad_request(format!(
            "Invalid input for operation: '{tag}' is not a valid tag (1 to 255 characters, no commas)."
        )));
    }
    Ok(())
}

/// `dns_domain` of a network or port: lower-cased (neutron-lib's
/// converter), then a FQDN with room for a host name, or empty.
pub fn parse_dns_domain(b: &neutrino_model::body::Body) -> ApiResult<Option<String>> {
    let Some(d) = b.string("dns_domain", neutrino_net::dns::FQDN_MAX)? else {
        return Ok(None);
    };
    let d = d.to_ascii_lowercase();
    neutrino_net::dns::check_domain(&d).map_err(|e| ApiError::invalid_attr("dns_domain", e))?;
    Ok(Some(d))
}
