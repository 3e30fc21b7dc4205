//! Builtin identity: Neutrino answers the subset of the Keystone v3 API that
//! OpenStack clients need to log in and find the network endpoint, from
//! projects and users in its own config. No Keystone deployment required.
//!
//! Tokens are signed, stateless [`crate::token`] tokens; the Neutron API
//! validates them with [`BuiltinIdentity::authenticate`] without any I/O.

mod config;
mod fault;
mod login;
mod render;
mod request;
mod revocation;
mod routes;

use std::sync::Arc;

use neutrino_model::time::now_unix;
use neutrino_model::{ApiError, AuthContext, Role};

pub use config::{BOOTSTRAP_ADMIN, BuiltinConfig, ProjectConfig, UserConfig, stable_id};

use crate::error::IdentityError;
use crate::password;
use crate::token::{TokenClaims, TokenSigner};
use revocation::RevocationList;

/// The id of the only domain builtin mode has.
pub(crate) const DEFAULT_DOMAIN_ID: &str = "default";
/// The name of the only domain builtin mode has.
pub(crate) const DEFAULT_DOMAIN_NAME: &str = "Default";
/// Longest accepted token lifetime; also keeps timestamp arithmetic far from overflow.
const MAX_TOKEN_TTL_SECS: u64 = 366 * 24 * 3600;

/// The builtin identity provider: validated config plus the token key.
pub struct BuiltinIdentity {
    signer: TokenSigner,
    token_ttl_secs: i64,
    region: String,
    /// Unversioned Neutron root, published as the `network` endpoint.
    network_url: String,
    /// Keystone v3 root as configured, published as the `identity` endpoint.
    identity_url: String,
    /// `identity_url` without a trailing slash, for building links.
    identity_base: String,
    projects: Vec<Project>,
    users: Vec<User>,
    revoked: RevocationList,
}

impl std::fmt::Debug for BuiltinIdentity {
    // Leaves out password hashes and the signing key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltinIdentity")
            .field("region", &self.region)
            .field("network_url", &self.network_url)
            .field("identity_url", &self.identity_url)
            .field("projects", &self.projects.len())
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

/// A validated project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Project {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) description: String,
}

/// A validated user.
#[derive(Clone)]
pub(crate) struct User {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) password_hash: String,
    /// The project the user's roles are on.
    pub(crate) project_id: String,
    /// Role names as configured, each known to [`Role::from_name`], no duplicates.
    pub(crate) roles: Vec<String>,
}

/// A token that passed every check: signature, expiry, revocation, and its
/// user still existing with roles on its project.
#[derive(Clone)]
pub(crate) struct ValidToken<'a> {
    pub(crate) claims: TokenClaims,
    pub(crate) user: &'a User,
    pub(crate) project: &'a Project,
}

impl ValidToken<'_> {
    pub(crate) fn is_admin(&self) -> bool {
        self.claims
            .roles
            .iter()
            .any(|r| Role::from_name(r) == Some(Role::Admin))
    }
}

impl BuiltinIdentity {
    /// Validates `config`. `network_url` is the unversioned Neutron root
    /// (e.g. `http://127.0.0.1:9696/`), `identity_url` the Keystone v3 root
    /// served by [`BuiltinIdentity::router`] (e.g. `http://127.0.0.1:9696/v3`).
    pub fn new(
        config: BuiltinConfig,
        signing_key: [u8; 32],
        network_url: String,
        identity_url: String,
    ) -> Result<BuiltinIdentity, IdentityError> {
        if !(1..=MAX_TOKEN_TTL_SECS).contains(&config.token_ttl_secs) {
            return Err(IdentityError::InvalidTokenTtl {
                max: MAX_TOKEN_TTL_SECS,
            });
        }
        let token_ttl_secs =
            i64::try_from(config.token_ttl_secs).map_err(|_| IdentityError::InvalidTokenTtl {
                max: MAX_TOKEN_TTL_SECS,
            })?;
        let projects = validate_projects(&config.projects)?;
        let users = validate_users(&config.users, &projects)?;
        let identity_base = identity_url.trim_end_matches('/').to_string();
        Ok(BuiltinIdentity {
            signer: TokenSigner::new(signing_key),
            token_ttl_secs,
            region: config.region,
            network_url,
            identity_url,
            identity_base,
            projects,
            users,
            revoked: RevocationList::default(),
        })
    }

    /// Authenticates a Neutron API request's `X-Auth-Token`.
    pub fn authenticate(&self, token: &str) -> Result<AuthContext, ApiError> {
        let valid = self.validate(token).ok_or_else(ApiError::unauthorized)?;
        let mut roles: Vec<Role> = Vec::new();
        for role in valid
            .claims
            .roles
            .iter()
            .filter_map(|name| Role::from_name(name))
        {
            if !roles.contains(&role) {
                roles.push(role);
            }
        }
        Ok(AuthContext {
            user_id: valid.user.id.clone(),
            user_name: valid.user.name.clone(),
            project_id: valid.project.id.clone(),
            project_name: valid.project.name.clone(),
            roles,
        })
    }

    /// The Keystone v3 routes (`/v3`, `/v3/auth/tokens`, ...), to be merged
    /// into the Neutron API server.
    pub fn router(self: Arc<Self>) -> axum::Router {
        routes::router(self)
    }

    /// Checks a token completely; `None` for any failure (callers answer
    /// every failure the same way, so the reason is not needed).
    pub(crate) fn validate(&self, token: &str) -> Option<ValidToken<'_>> {
        let claims = self.signer.verify(token).ok()?;
        if self.revoked.is_revoked(&claims.audit_id) {
            return None;
        }
        let user = self.user_by_id(&claims.user_id)?;
        let project = self.project_by_id(&claims.project_id)?;
        // A config change may have moved the user or taken its roles away.
        if user.project_id != project.id || user.roles.is_empty() {
            return None;
        }
        Some(ValidToken {
            claims,
            user,
            project,
        })
    }

    /// Revokes a token until its expiry.
    pub(crate) fn revoke(&self, claims: &TokenClaims) {
        self.revoked
            .revoke(&claims.audit_id, claims.expires_at, now_unix());
    }

    pub(crate) fn user_by_id(&self, id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    pub(crate) fn user_by_name(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    pub(crate) fn project_by_id(&self, id: &str) -> Option<&Project> {
        self.projects.iter().find(|p| p.id == id)
    }

    pub(crate) fn project_by_name(&self, name: &str) -> Option<&Project> {
        self.projects.iter().find(|p| p.name == name)
    }

    pub(crate) fn projects(&self) -> &[Project] {
        &self.projects
    }

    /// The projects a user has roles on (builtin users have one at most).
    pub(crate) fn projects_of(&self, user: &User) -> Vec<&Project> {
        if user.roles.is_empty() {
            return Vec::new();
        }
        self.project_by_id(&user.project_id).into_iter().collect()
    }
}

fn validate_projects(configs: &[ProjectConfig]) -> Result<Vec<Project>, IdentityError> {
    let mut projects: Vec<Project> = Vec::with_capacity(configs.len());
    for config in configs {
        if config.name.trim().is_empty() {
            return Err(IdentityError::EmptyName { kind: "project" });
        }
        let id = config.effective_id();
        if !config::is_valid_id(&id) {
            return Err(IdentityError::InvalidId {
                kind: "project",
                id,
            });
        }
        // Names and ids share one namespace: the user's `project` may be either.
        for taken in [&config.name, &id] {
            if projects.iter().any(|p| &p.name == taken || &p.id == taken) {
                return Err(IdentityError::DuplicateProject(taken.clone()));
            }
        }
        projects.push(Project {
            id,
            name: config.name.clone(),
            description: config.description.clone().unwrap_or_default(),
        });
    }
    Ok(projects)
}

fn validate_users(
    configs: &[UserConfig],
    projects: &[Project],
) -> Result<Vec<User>, IdentityError> {
    let mut users: Vec<User> = Vec::with_capacity(configs.len());
    for config in configs {
        if config.name.trim().is_empty() {
            return Err(IdentityError::EmptyName { kind: "user" });
        }
        let id = config.effective_id();
        if !config::is_valid_id(&id) {
            return Err(IdentityError::InvalidId { kind: "user", id });
        }
        if users
            .iter()
            .any(|u| u.name == config.name || u.id == config.name)
        {
            return Err(IdentityError::DuplicateUser(config.name.clone()));
        }
        if users.iter().any(|u| u.name == id || u.id == id) {
            return Err(IdentityError::DuplicateUser(id));
        }
        if !password::is_well_formed(&config.password_hash) {
            return Err(IdentityError::InvalidPasswordHash {
                user: config.name.clone(),
            });
        }
        let project = projects
            .iter()
            .find(|p| p.name == config.project)
            .or_else(|| projects.iter().find(|p| p.id == config.project))
            .ok_or_else(|| IdentityError::UnknownProject {
                user: config.name.clone(),
                project: config.project.clone(),
            })?;
        let mut roles: Vec<String> = Vec::new();
        for role in &config.roles {
            if Role::from_name(role).is_none() {
                return Err(IdentityError::UnknownRole {
                    user: config.name.clone(),
                    role: role.clone(),
                });
            }
            if !roles.iter().any(|r| r.eq_ignore_ascii_case(role)) {
                roles.push(role.clone());
            }
        }
        users.push(User {
            id,
            name: config.name.clone(),
            password_hash: config.password_hash.clone(),
            project_id: project.id.clone(),
            roles,
        });
    }
    Ok(users)
}

#[cfg(test)]
mod tests;
