//! Reading Keystone's token bodies: only the fields Neutrino needs, with
//! everything else ignored so newer Keystone releases keep working.

use neutrino_model::time::parse_utc;
use neutrino_model::{AuthContext, Role};
use serde::Deserialize;

use super::client::KeystoneError;

#[derive(Deserialize)]
struct Envelope {
    token: TokenBody,
}

#[derive(Deserialize)]
struct TokenBody {
    expires_at: String,
    user: Named,
    project: Option<Named>,
    #[serde(default)]
    roles: Vec<RoleRef>,
}

#[derive(Deserialize)]
struct Named {
    id: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct RoleRef {
    name: String,
}

/// What a successful validation says about a user token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Subject {
    /// A project-scoped token and when it expires (Unix seconds).
    Valid {
        context: AuthContext,
        expires_at: i64,
    },
    /// Domain- or system-scoped, or unscoped: valid in Keystone, but the
    /// Neutron API needs a project to act in.
    NotProjectScoped,
}

/// Reads the body of `GET /v3/auth/tokens` (200).
pub(crate) fn subject(body: &[u8]) -> Result<Subject, KeystoneError> {
    let envelope: Envelope = serde_json::from_slice(body)
        .map_err(|e| KeystoneError::BadResponse(format!("token body: {e}")))?;
    let token = envelope.token;
    let expires_at = expiry(&token.expires_at)?;
    let Some(project) = token.project else {
        return Ok(Subject::NotProjectScoped);
    };
    let mut roles: Vec<Role> = Vec::new();
    // Roles Neutrino's policy does not know (e.g. `service`) grant nothing.
    for role in token.roles.iter().filter_map(|r| Role::from_name(&r.name)) {
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    let context = AuthContext {
        user_id: token.user.id,
        user_name: token.user.name,
        project_id: project.id,
        project_name: project.name,
        roles,
    };
    Ok(Subject::Valid {
        context,
        expires_at,
    })
}

/// Reads `token.expires_at` from the body of `POST /v3/auth/tokens` (201).
pub(crate) fn issued_expiry(body: &[u8]) -> Result<i64, KeystoneError> {
    #[derive(Deserialize)]
    struct Envelope {
        token: Expiry,
    }
    #[derive(Deserialize)]
    struct Expiry {
        expires_at: String,
    }
    let envelope: Envelope = serde_json::from_slice(body)
        .map_err(|e| KeystoneError::BadResponse(format!("token body: {e}")))?;
    expiry(&envelope.token.expires_at)
}

fn expiry(text: &str) -> Result<i64, KeystoneError> {
    parse_utc(text)
        .ok_or_else(|| KeystoneError::BadResponse(format!("unreadable expires_at {text:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_keystone_token() {
        let body = br#"{"token": {"methods": ["password"], "expires_at": "2026-08-01T10:00:00.000000Z",
            "user": {"id": "u1", "name": "alice", "domain": {"id": "default"}},
            "project": {"id": "p1", "name": "demo", "domain": {"id": "default"}},
            "roles": [{"id": "r1", "name": "member"}, {"id": "r2", "name": "reader"},
                      {"id": "r3", "name": "load-balancer_member"}, {"id": "r4", "name": "_member_"}],
            "audit_ids": ["x"], "issued_at": "2026-08-01T09:00:00.000000Z"}}"#;
        let Subject::Valid {
            context,
            expires_at,
        } = subject(body).unwrap()
        else {
            panic!("not valid");
        };
        assert_eq!(expires_at, 1_785_578_400);
        assert_eq!(context.user_id, "u1");
        assert_eq!(context.user_name, "alice");
        assert_eq!(context.project_id, "p1");
        assert_eq!(context.project_name, "demo");
        assert_eq!(context.roles, vec![Role::Member, Role::Reader]);
    }

    #[test]
    fn domain_scoped_and_garbage() {
        let body = br#"{"token": {"expires_at": "2026-08-01T10:00:00Z",
            "user": {"id": "u1", "name": "alice"}, "domain": {"id": "default"}}}"#;
        assert_eq!(subject(body), Ok(Subject::NotProjectScoped));
        assert!(subject(b"{}").is_err());
        assert!(subject(br#"{"token": {"expires_at": "soon", "user": {"id": "u"}}}"#).is_err());
        assert_eq!(
            issued_expiry(br#"{"token": {"expires_at": "1970-01-01T00:01:00Z"}}"#),
            Ok(60)
        );
    }
}
