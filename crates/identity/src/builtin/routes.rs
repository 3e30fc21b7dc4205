//! The HTTP surface of builtin identity: the Keystone v3 routes clients use.
//! Handlers stay thin: parse, call the provider, render.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::fault::KeystoneFault;
use super::request::AuthRequest;
use super::{BuiltinIdentity, DEFAULT_DOMAIN_ID, DEFAULT_DOMAIN_NAME, ValidToken, render};

/// The header carrying the caller's own token.
const AUTH_TOKEN: &str = "x-auth-token";
/// The header carrying the token being issued, validated or revoked.
const SUBJECT_TOKEN: &str = "x-subject-token";

type Idp = State<Arc<BuiltinIdentity>>;

pub(crate) fn router(idp: Arc<BuiltinIdentity>) -> Router {
    Router::new()
        .route("/v3", get(version))
        .route("/v3/", get(version))
        // `get` also answers HEAD (without a body), which keystonemiddleware
        // uses to check a token.
        .route(
            "/v3/auth/tokens",
            get(validate_token).post(issue_token).delete(revoke_token),
        )
        .route("/v3/auth/catalog", get(auth_catalog))
        .route("/v3/auth/projects", get(auth_projects))
        .route("/v3/projects", get(list_projects))
        .route("/v3/projects/{project_id}", get(show_project))
        .route("/v3/users/{user_id}", get(show_user))
        .route("/v3/users/{user_id}/projects", get(user_projects))
        .route("/v3/domains", get(list_domains))
        .route("/v3/domains/{domain_id}", get(show_domain))
        .with_state(idp)
}

/// The caller, from `X-Auth-Token`.
fn caller<'a>(
    idp: &'a BuiltinIdentity,
    headers: &HeaderMap,
) -> Result<ValidToken<'a>, KeystoneFault> {
    let token = header_str(headers, AUTH_TOKEN).ok_or_else(KeystoneFault::unauthorized)?;
    idp.validate(token).ok_or_else(KeystoneFault::unauthorized)
}

/// The token named by `X-Subject-Token`: 400 if absent, 404 if not valid.
fn subject<'a>(
    idp: &'a BuiltinIdentity,
    headers: &HeaderMap,
) -> Result<ValidToken<'a>, KeystoneFault> {
    let token = header_str(headers, SUBJECT_TOKEN).ok_or_else(|| {
        KeystoneFault::bad_request("Expecting to find X-Subject-Token in the request headers.")
    })?;
    // The token itself is a credential: do not echo it in the message.
    idp.validate(token)
        .ok_or_else(|| KeystoneFault::new(StatusCode::NOT_FOUND, "Could not find token."))
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Keystone omits the catalog when the query has `nocatalog` (any value).
fn wants_catalog(query: Option<&str>) -> bool {
    !query
        .unwrap_or_default()
        .split('&')
        .any(|pair| pair.split('=').next() == Some("nocatalog"))
}

/// A token body with the token in `X-Subject-Token`.
fn token_response(status: StatusCode, token: &str, body: serde_json::Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(token) {
        response.headers_mut().insert(SUBJECT_TOKEN, value);
    }
    response
}

fn ok_json(body: serde_json::Value) -> Response {
    (StatusCode::OK, Json(body)).into_response()
}

async fn version(State(idp): Idp) -> Response {
    ok_json(render::version_document(&idp))
}

async fn issue_token(State(idp): Idp, RawQuery(query): RawQuery, body: Bytes) -> Response {
    let request = match AuthRequest::parse(&body) {
        Ok(request) => request,
        Err(fault) => return fault.into_response(),
    };
    match idp.login(&request).await {
        Ok((token, valid)) => {
            tracing::info!(user = %valid.user.name, project = %valid.project.name, "issued token");
            let body = render::token(&idp, &valid, wants_catalog(query.as_deref()));
            token_response(StatusCode::CREATED, &token, body)
        }
        Err(fault) => {
            tracing::info!(status = fault.status.as_u16(), "token request refused");
            fault.into_response()
        }
    }
}

async fn validate_token(
    State(idp): Idp,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let result = caller(&idp, &headers).and_then(|_| subject(&idp, &headers));
    match result {
        Ok(valid) => {
            let body = render::token(&idp, &valid, wants_catalog(query.as_deref()));
            let token = header_str(&headers, SUBJECT_TOKEN).unwrap_or_default();
            token_response(StatusCode::OK, token, body)
        }
        Err(fault) => fault.into_response(),
    }
}

async fn revoke_token(State(idp): Idp, headers: HeaderMap) -> Response {
    let result = caller(&idp, &headers).and_then(|caller| {
        let subject = subject(&idp, &headers)?;
        // Keystone's identity:revoke_token: admins, or the token's own user.
        if !caller.is_admin() && caller.user.id != subject.user.id {
            return Err(KeystoneFault::forbidden("identity:revoke_token"));
        }
        idp.revoke(&subject.claims);
        Ok(())
    });
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(fault) => fault.into_response(),
    }
}

async fn auth_catalog(State(idp): Idp, headers: HeaderMap) -> Response {
    match caller(&idp, &headers) {
        Ok(_) => ok_json(json!({
            "catalog": render::catalog(&idp),
            "links": render::collection_links(&idp, "/auth/catalog"),
        })),
        Err(fault) => fault.into_response(),
    }
}

async fn auth_projects(State(idp): Idp, headers: HeaderMap) -> Response {
    match caller(&idp, &headers) {
        Ok(caller) => {
            let projects = idp.projects_of(caller.user);
            ok_json(render::projects(&idp, &projects, "/auth/projects"))
        }
        Err(fault) => fault.into_response(),
    }
}

/// `GET /v3/projects`: admins see every project, others their own. Supports
/// the `name`, `domain_id` and `enabled` filters clients use to find a
/// project by name.
async fn list_projects(
    State(idp): Idp,
    Query(filters): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let caller = match caller(&idp, &headers) {
        Ok(caller) => caller,
        Err(fault) => return fault.into_response(),
    };
    // Every builtin project is enabled and in the default domain.
    let filters_match = filters
        .get("domain_id")
        .is_none_or(|d| d == DEFAULT_DOMAIN_ID)
        && filters
            .get("enabled")
            .is_none_or(|e| !e.eq_ignore_ascii_case("false"));
    let visible: Vec<_> = idp
        .projects()
        .iter()
        .filter(|_| filters_match)
        .filter(|p| caller.is_admin() || p.id == caller.user.project_id)
        .filter(|p| filters.get("name").is_none_or(|name| &p.name == name))
        .collect();
    ok_json(render::projects(&idp, &visible, "/projects"))
}

async fn show_project(
    State(idp): Idp,
    Path(project_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let caller = match caller(&idp, &headers) {
        Ok(caller) => caller,
        Err(fault) => return fault.into_response(),
    };
    // Invisible projects are reported missing, which is also what lets
    // `openstack ... <project name>` fall back to a search by name.
    match idp.project_by_id(&project_id) {
        Some(project) if caller.is_admin() || project.id == caller.user.project_id => {
            ok_json(json!({"project": render::project(&idp, project)}))
        }
        _ => KeystoneFault::not_found("project", &project_id).into_response(),
    }
}

/// Resolves `user_id` for a request that only the user itself or an admin
/// may make (`action` names the Keystone policy in the 403).
fn self_or_admin<'a>(
    idp: &'a BuiltinIdentity,
    headers: &HeaderMap,
    user_id: &str,
    action: &str,
) -> Result<&'a super::User, KeystoneFault> {
    let caller = caller(idp, headers)?;
    if !caller.is_admin() && caller.user.id != user_id {
        return Err(KeystoneFault::forbidden(action));
    }
    idp.user_by_id(user_id)
        .ok_or_else(|| KeystoneFault::not_found("user", user_id))
}

async fn show_user(State(idp): Idp, Path(user_id): Path<String>, headers: HeaderMap) -> Response {
    match self_or_admin(&idp, &headers, &user_id, "identity:get_user") {
        Ok(user) => ok_json(render::user(&idp, user)),
        Err(fault) => fault.into_response(),
    }
}

async fn user_projects(
    State(idp): Idp,
    Path(user_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match self_or_admin(&idp, &headers, &user_id, "identity:list_user_projects") {
        Ok(user) => {
            let projects = idp.projects_of(user);
            let path = format!("/users/{}/projects", user.id);
            ok_json(render::projects(&idp, &projects, &path))
        }
        Err(fault) => fault.into_response(),
    }
}

/// `GET /v3/domains`, with the `name` filter clients use to resolve
/// `--project-domain Default` after `GET /v3/domains/Default` gave 404.
async fn list_domains(
    State(idp): Idp,
    Query(filters): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(fault) = caller(&idp, &headers) {
        return fault.into_response();
    }
    let matches = filters
        .get("name")
        .is_none_or(|n| n.eq_ignore_ascii_case(DEFAULT_DOMAIN_NAME));
    let domains = if matches {
        vec![render::domain(&idp)]
    } else {
        Vec::new()
    };
    ok_json(json!({"domains": domains, "links": render::collection_links(&idp, "/domains")}))
}

async fn show_domain(
    State(idp): Idp,
    Path(domain_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(fault) = caller(&idp, &headers) {
        return fault.into_response();
    }
    if domain_id == DEFAULT_DOMAIN_ID {
        ok_json(json!({"domain": render::domain(&idp)}))
    } else {
        KeystoneFault::not_found("domain", &domain_id).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::wants_catalog;

    #[test]
    fn nocatalog_query() {
        assert!(wants_catalog(None));
        assert!(wants_catalog(Some("allow_expired=1")));
        assert!(!wants_catalog(Some("nocatalog")));
        assert!(!wants_catalog(Some("a=1&nocatalog=1")));
    }
}
