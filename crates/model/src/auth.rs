//! Who is calling: the identity layer produces an [`AuthContext`] per request,
//! and every policy decision in the engine reads only this.

use serde::{Deserialize, Serialize};

/// The roles Neutrino's default policy knows. Keystone role names map onto
/// these case-insensitively; unknown role names carry no rights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, in every project.
    Admin,
    /// Read and write within its own project, plus shared networks.
    Member,
    /// Read only, within its own project plus shared networks.
    Reader,
}

impl Role {
    /// Maps a Keystone role name to a policy role (`_member_` is the legacy member role).
    pub fn from_name(name: &str) -> Option<Role> {
        match name.to_ascii_lowercase().as_str() {
            "admin" => Some(Role::Admin),
            "member" | "_member_" => Some(Role::Member),
            "reader" => Some(Role::Reader),
            _ => None,
        }
    }
}

/// The authenticated caller of one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthContext {
    pub user_id: String,
    pub user_name: String,
    /// The project the token is scoped to.
    pub project_id: String,
    pub project_name: String,
    pub roles: Vec<Role>,
}

impl AuthContext {
    pub fn is_admin(&self) -> bool {
        self.roles.contains(&Role::Admin)
    }

    /// Whether the caller may change anything at all (admin or member).
    pub fn can_write(&self) -> bool {
        self.roles
            .iter()
            .any(|r| matches!(r, Role::Admin | Role::Member))
    }

    /// The caller used in `noauth` mode: admin of a fixed development project.
    pub fn noauth_admin() -> AuthContext {
        AuthContext {
            user_id: "noauth-admin".into(),
            user_name: "admin".into(),
            project_id: "noauth-project".into(),
            project_name: "admin".into(),
            roles: vec![Role::Admin],
        }
    }
}
