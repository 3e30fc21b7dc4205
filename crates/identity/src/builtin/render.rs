//! The JSON documents of the Keystone v3 API, shaped as Keystone renders
//! them (clients index into these bodies directly).

use neutrino_model::time::format_keystone;
use serde_json::{Value, json};

use super::config::stable_id;
use super::{BuiltinIdentity, DEFAULT_DOMAIN_ID, DEFAULT_DOMAIN_NAME, Project, User, ValidToken};

/// Interfaces every catalog endpoint is published under: clients pick one
/// (`--os-interface`), and all reach the same server.
const INTERFACES: [&str; 3] = ["public", "internal", "admin"];

/// The API version Neutrino claims; v3.14 (Ussuri) covers everything served.
const VERSION_ID: &str = "v3.14";
const VERSION_UPDATED: &str = "2020-04-07T00:00:00Z";

fn domain_ref() -> Value {
    json!({"id": DEFAULT_DOMAIN_ID, "name": DEFAULT_DOMAIN_NAME})
}

/// `GET /v3`: what keystoneauth1's version discovery reads.
pub(crate) fn version_document(idp: &BuiltinIdentity) -> Value {
    json!({"version": {
        "id": VERSION_ID,
        "status": "stable",
        "updated": VERSION_UPDATED,
        "links": [{"rel": "self", "href": format!("{}/", idp.identity_base)}],
        "media-types": [{
            "base": "application/json",
            "type": "application/vnd.openstack.identity-v3+json",
        }],
    }})
}

/// The `{"token": ...}` body of token issue and validation.
pub(crate) fn token(idp: &BuiltinIdentity, valid: &ValidToken<'_>, include_catalog: bool) -> Value {
    let claims = &valid.claims;
    let roles: Vec<Value> = claims
        .roles
        .iter()
        .map(|name| json!({"id": role_id(name), "name": name}))
        .collect();
    let mut token = json!({
        "methods": claims.methods,
        "user": {
            "id": valid.user.id,
            "name": valid.user.name,
            "domain": domain_ref(),
            "password_expires_at": null,
        },
        "project": {
            "id": valid.project.id,
            "name": valid.project.name,
            "domain": domain_ref(),
        },
        "roles": roles,
        "issued_at": format_keystone(claims.issued_at),
        "expires_at": format_keystone(claims.expires_at),
        "audit_ids": [claims.audit_id],
        "is_domain": false,
    });
    if include_catalog {
        token["catalog"] = catalog(idp);
    }
    json!({"token": token})
}

/// Role ids are derived from the lowercased name: `Member` and `member` are one role.
fn role_id(name: &str) -> String {
    stable_id("role", &name.to_ascii_lowercase())
}

/// The service catalog: Neutron itself and this identity endpoint.
pub(crate) fn catalog(idp: &BuiltinIdentity) -> Value {
    json!([
        service(idp, "network", "neutron", &idp.network_url),
        service(idp, "identity", "keystone", &idp.identity_url),
    ])
}

fn service(idp: &BuiltinIdentity, kind: &str, name: &str, url: &str) -> Value {
    let endpoints: Vec<Value> = INTERFACES
        .iter()
        .map(|interface| {
            json!({
                "id": stable_id("endpoint", &format!("{kind}:{interface}")),
                "interface": interface,
                "region": idp.region,
                "region_id": idp.region,
                "url": url,
            })
        })
        .collect();
    json!({"type": kind, "name": name, "id": stable_id("service", kind), "endpoints": endpoints})
}

/// A collection's `links`: builtin lists are never paginated.
pub(crate) fn collection_links(idp: &BuiltinIdentity, path: &str) -> Value {
    json!({"self": format!("{}{path}", idp.identity_base), "previous": null, "next": null})
}

pub(crate) fn project(idp: &BuiltinIdentity, project: &Project) -> Value {
    json!({
        "id": project.id,
        "name": project.name,
        "domain_id": DEFAULT_DOMAIN_ID,
        "enabled": true,
        "description": project.description,
        "is_domain": false,
        "parent_id": DEFAULT_DOMAIN_ID,
        "tags": [],
        "options": {},
        "links": {"self": format!("{}/projects/{}", idp.identity_base, project.id)},
    })
}

pub(crate) fn projects(idp: &BuiltinIdentity, projects: &[&Project], path: &str) -> Value {
    let list: Vec<Value> = projects.iter().map(|p| project(idp, p)).collect();
    json!({"projects": list, "links": collection_links(idp, path)})
}

pub(crate) fn user(idp: &BuiltinIdentity, user: &User) -> Value {
    json!({"user": {
        "id": user.id,
        "name": user.name,
        "domain_id": DEFAULT_DOMAIN_ID,
        "enabled": true,
        "default_project_id": user.project_id,
        "password_expires_at": null,
        "options": {},
        "links": {"self": format!("{}/users/{}", idp.identity_base, user.id)},
    }})
}

pub(crate) fn domain(idp: &BuiltinIdentity) -> Value {
    json!({
        "id": DEFAULT_DOMAIN_ID,
        "name": DEFAULT_DOMAIN_NAME,
        "description": "The default domain",
        "enabled": true,
        "tags": [],
        "options": {},
        "links": {"self": format!("{}/domains/{DEFAULT_DOMAIN_ID}", idp.identity_base)},
    })
}
