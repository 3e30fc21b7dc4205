//! Configuration errors: reported once at startup so a broken identity
//! section stops the server instead of failing logins one by one.

/// Why an identity configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("builtin identity: user {user:?} refers to unknown project {project:?}")]
    UnknownProject { user: String, project: String },
    #[error(
        "builtin identity: user {user:?} has unknown role {role:?} (known: admin, member, reader)"
    )]
    UnknownRole { user: String, role: String },
    #[error("builtin identity: project name or id {0:?} is used twice")]
    DuplicateProject(String),
    #[error("builtin identity: user name or id {0:?} is used twice")]
    DuplicateUser(String),
    #[error("builtin identity: a {kind} has an empty name")]
    EmptyName { kind: &'static str },
    #[error(
        "builtin identity: {kind} id {id:?} is invalid (1 to 64 characters of A-Z, a-z, 0-9, '-', '_')"
    )]
    InvalidId { kind: &'static str, id: String },
    #[error(
        "builtin identity: user {user:?} has a malformed password_hash \
         (expected $pbkdf2-sha256$i=<iterations>$<salt>$<hash>)"
    )]
    InvalidPasswordHash { user: String },
    #[error("builtin identity: token_ttl_secs must be between 1 and {max}")]
    InvalidTokenTtl { max: u64 },
    #[error("keystone identity: url {url:?} is invalid: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error(
        "keystone identity: url {0:?} uses https, which Neutrino's Keystone client does not \
         support; point it at a plain http endpoint (e.g. a local TLS-terminating proxy)"
    )]
    TlsUnsupported(String),
    #[error("keystone identity: {0} must not be empty")]
    MissingSetting(&'static str),
}
