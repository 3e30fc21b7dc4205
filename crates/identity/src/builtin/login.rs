//! `POST /v3/auth/tokens`: checking credentials, resolving the scope and
//! issuing the token.

use axum::http::StatusCode;
use neutrino_model::time::now_unix;

use super::fault::KeystoneFault;
use super::request::{AuthRequest, Method, PasswordCredentials, ProjectRef, Scope, UserRef};
use super::{BuiltinIdentity, Project, User, ValidToken};
use crate::password;
use crate::token::{TokenClaims, new_audit_id};

/// A hash of a random, forgotten password with the default iteration count.
/// Logins naming an unknown user are checked against it, so they take as long
/// as a wrong password and response times do not reveal which users exist.
const DECOY_HASH: &str =
    "$pbkdf2-sha256$i=100000$dXGZJCGF3gf4C4GZChFeEw$TRiWl6KVrLro/tFtCYPC9vlxsFRcJsBPpuJTDQN1JvI";

impl BuiltinIdentity {
    /// Runs every requested method (all must succeed and name the same
    /// user), resolves the scope and issues a token.
    pub(crate) async fn login(
        &self,
        request: &AuthRequest,
    ) -> Result<(String, ValidToken<'_>), KeystoneFault> {
        let now = now_unix();
        let mut expires_at = now.saturating_add(self.token_ttl_secs);
        let mut methods: Vec<String> = request
            .methods
            .iter()
            .map(|m| m.name().to_string())
            .collect();
        let mut user: Option<&User> = None;
        for method in &request.methods {
            let authenticated = match method {
                Method::Password => {
                    let credentials = request
                        .password
                        .as_ref()
                        .ok_or_else(KeystoneFault::unauthorized)?;
                    self.check_password(credentials).await?
                }
                Method::Token => {
                    let token_id = request
                        .token_id
                        .as_deref()
                        .ok_or_else(KeystoneFault::unauthorized)?;
                    let original = self
                        .validate(token_id)
                        .ok_or_else(KeystoneFault::unauthorized)?;
                    // Like Keystone: a token obtained with a token lives no
                    // longer than the original, and remembers how that was obtained.
                    expires_at = expires_at.min(original.claims.expires_at);
                    for method in &original.claims.methods {
                        if !methods.contains(method) {
                            methods.push(method.clone());
                        }
                    }
                    original.user
                }
            };
            if user.is_some_and(|u| u.id != authenticated.id) {
                return Err(KeystoneFault::unauthorized());
            }
            user = Some(authenticated);
        }
        let user = user.ok_or_else(KeystoneFault::unauthorized)?;
        let project = self.resolve_scope(user, &request.scope)?;
        let claims = TokenClaims {
            user_id: user.id.clone(),
            project_id: project.id.clone(),
            roles: user.roles.clone(),
            issued_at: now,
            expires_at,
            audit_id: new_audit_id(),
            methods,
        };
        let token = self.signer.issue(&claims);
        Ok((
            token,
            ValidToken {
                claims,
                user,
                project,
            },
        ))
    }

    async fn check_password(
        &self,
        credentials: &PasswordCredentials,
    ) -> Result<&User, KeystoneFault> {
        let user = match &credentials.user {
            UserRef::Id(id) => self.user_by_id(id),
            UserRef::Name { name, domain } => {
                if domain.as_ref().is_none_or(|d| d.is_default()) {
                    self.user_by_name(name)
                } else {
                    None
                }
            }
        };
        let hash = user
            .map_or(DECOY_HASH, |u| u.password_hash.as_str())
            .to_string();
        let password = credentials.password.clone();
        // PBKDF2 takes tens of milliseconds: keep it off the async workers.
        let matches =
            tokio::task::spawn_blocking(move || password::verify_password(&password, &hash))
                .await
                .unwrap_or(false);
        match user {
            Some(user) if matches => Ok(user),
            _ => Err(KeystoneFault::unauthorized()),
        }
    }

    /// The project a token for `user` gets; 401 unless the user has roles on it.
    fn resolve_scope<'a>(
        &'a self,
        user: &'a User,
        scope: &Scope,
    ) -> Result<&'a Project, KeystoneFault> {
        let project = match scope {
            Scope::Default => self.project_by_id(&user.project_id),
            Scope::Project(ProjectRef::Id(id)) => self.project_by_id(id),
            Scope::Project(ProjectRef::Name { name, domain }) => {
                if domain.as_ref().is_none_or(|d| d.is_default()) {
                    self.project_by_name(name)
                } else {
                    None
                }
            }
            Scope::Unsupported => None,
        }
        .ok_or_else(KeystoneFault::unauthorized)?;
        if project.id != user.project_id || user.roles.is_empty() {
            return Err(KeystoneFault::new(
                StatusCode::UNAUTHORIZED,
                format!("User {} has no access to project {}.", user.id, project.id),
            ));
        }
        Ok(project)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoy_hash_is_well_formed() {
        assert!(password::is_well_formed(DECOY_HASH));
    }
}
