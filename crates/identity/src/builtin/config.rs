//! The `[identity]` settings of builtin mode: a fixed set of projects and
//! users kept in the config file, all in Keystone's `Default` domain.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Projects and users Neutrino authenticates itself, answering Keystone v3.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuiltinConfig {
    /// Lifetime of issued tokens in seconds (Keystone's default is one hour).
    #[serde(default = "default_token_ttl_secs")]
    pub token_ttl_secs: u64,
    /// Region name in the service catalog; clients select endpoints by it.
    #[serde(default = "default_region")]
    pub region: String,
    /// Projects (tenants) that users can be scoped to.
    #[serde(default)]
    pub projects: Vec<ProjectConfig>,
    /// Users, each with roles on exactly one project.
    #[serde(default)]
    pub users: Vec<UserConfig>,
}

/// One project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectConfig {
    /// Unique name, as clients pass it in `--os-project-name`.
    pub name: String,
    /// Explicit id; defaults to a stable id derived from the name, so ids
    /// (which resources reference as `project_id`) survive restarts.
    #[serde(default)]
    pub id: Option<String>,
    /// Free text shown by `openstack project show`.
    #[serde(default)]
    pub description: Option<String>,
}

/// One user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserConfig {
    /// Unique login name.
    pub name: String,
    /// Explicit id; defaults to a stable id derived from the name.
    #[serde(default)]
    pub id: Option<String>,
    /// `$pbkdf2-sha256$...` as produced by [`crate::hash_password`]; never a
    /// clear-text password.
    pub password_hash: String,
    /// Name (or id) of the project the user has its roles on.
    pub project: String,
    /// Role names on that project: `admin`, `member` (or `_member_`), `reader`.
    #[serde(default = "default_roles")]
    pub roles: Vec<String>,
}

fn default_token_ttl_secs() -> u64 {
    3600
}

fn default_region() -> String {
    "RegionOne".to_string()
}

fn default_roles() -> Vec<String> {
    vec!["member".to_string()]
}

impl Default for BuiltinConfig {
    fn default() -> BuiltinConfig {
        BuiltinConfig {
            token_ttl_secs: default_token_ttl_secs(),
            region: default_region(),
            projects: Vec::new(),
            users: Vec::new(),
        }
    }
}

/// The name of the project and user [`BuiltinConfig::with_admin`] creates.
pub const BOOTSTRAP_ADMIN: &str = "admin";

impl BuiltinConfig {
    /// Adds project `admin` and user `admin` (role `admin`, the given
    /// password hash) unless a project or user of that name already exists:
    /// what the server does on first start so there is someone to log in as.
    /// An existing `admin` user keeps its password.
    pub fn with_admin(mut self, password_hash: String) -> BuiltinConfig {
        if !self.projects.iter().any(|p| p.name == BOOTSTRAP_ADMIN) {
            self.projects.push(ProjectConfig {
                name: BOOTSTRAP_ADMIN.to_string(),
                id: None,
                description: Some("Bootstrap project for administrators".to_string()),
            });
        }
        if !self.users.iter().any(|u| u.name == BOOTSTRAP_ADMIN) {
            self.users.push(UserConfig {
                name: BOOTSTRAP_ADMIN.to_string(),
                id: None,
                password_hash,
                project: BOOTSTRAP_ADMIN.to_string(),
                roles: vec!["admin".to_string()],
            });
        }
        self
    }
}

impl ProjectConfig {
    /// The configured id, or the stable id derived from the name.
    pub fn effective_id(&self) -> String {
        self.id
            .clone()
            .unwrap_or_else(|| stable_id("project", &self.name))
    }
}

impl UserConfig {
    /// The configured id, or the stable id derived from the name.
    pub fn effective_id(&self) -> String {
        self.id
            .clone()
            .unwrap_or_else(|| stable_id("user", &self.name))
    }
}

/// A Keystone-looking id (32 lowercase hex characters) that depends only on
/// `kind` and `name`: the first 16 bytes of SHA-256(`kind:name`).
pub fn stable_id(kind: &str, name: &str) -> String {
    let digest = Sha256::digest(format!("{kind}:{name}").as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `id` is safe to put into URLs and JSON unchanged.
pub(crate) fn is_valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_ids_look_like_keystone_ids() {
        let id = stable_id("project", "demo");
        assert_eq!(id.len(), 32);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_eq!(id, stable_id("project", "demo"));
        assert_ne!(id, stable_id("user", "demo"));
    }

    #[test]
    fn defaults_apply() {
        let config: BuiltinConfig = serde_json::from_str(
            r#"{"projects": [{"name": "demo"}],
                "users": [{"name": "u", "password_hash": "x", "project": "demo"}]}"#,
        )
        .unwrap();
        assert_eq!(config.token_ttl_secs, 3600);
        assert_eq!(config.region, "RegionOne");
        assert_eq!(config.users[0].roles, vec!["member"]);
        assert_eq!(
            config.projects[0].effective_id(),
            stable_id("project", "demo")
        );
    }

    #[test]
    fn with_admin_adds_once_and_keeps_existing() {
        let config = BuiltinConfig::default()
            .with_admin("h1".into())
            .with_admin("h2".into());
        assert_eq!(config.projects.len(), 1);
        assert_eq!(config.users.len(), 1);
        assert_eq!(config.users[0].password_hash, "h1");
        assert_eq!(config.users[0].roles, vec!["admin"]);
        assert_eq!(config.users[0].project, "admin");
    }
}
