//! neutrino-identity: who is calling the Neutron API.
//!
//! Three modes, chosen in the config:
//! - `noauth`: every request is the development admin; for tests and labs.
//! - `builtin`: Neutrino itself answers the Keystone v3 calls clients make to
//!   log in ([`BuiltinIdentity`]), from users and projects in its config.
//! - `keystone`: tokens come from an existing Keystone and are validated
//!   against it ([`KeystoneValidator`]), as keystonemiddleware does.
//!
//! Whatever the mode, the result is an [`AuthContext`] or an [`ApiError`].

pub mod builtin;
pub mod error;
pub mod keystone;
pub mod password;
pub mod token;

use std::sync::Arc;

use neutrino_model::{ApiError, AuthContext};

pub use builtin::{BuiltinConfig, BuiltinIdentity, ProjectConfig, UserConfig, stable_id};
pub use error::IdentityError;
pub use keystone::{KeystoneConfig, KeystoneValidator};
pub use password::{hash_password, verify_password};
pub use token::{TokenClaims, TokenError, TokenSigner};

/// The identity provider the Neutron API authenticates requests with.
#[derive(Debug, Clone)]
pub enum Identity {
    NoAuth,
    Builtin(Arc<BuiltinIdentity>),
    Keystone(Arc<KeystoneValidator>),
}

impl Identity {
    /// Authenticates one request given its `X-Auth-Token`, if any. In
    /// `noauth` mode the token is ignored; otherwise a missing token is 401.
    pub async fn authenticate(&self, token: Option<&str>) -> Result<AuthContext, ApiError> {
        let token = token.map(str::trim).filter(|t| !t.is_empty());
        match (self, token) {
            (Identity::NoAuth, _) => Ok(AuthContext::noauth_admin()),
            (_, None) => Err(ApiError::unauthorized()),
            (Identity::Builtin(builtin), Some(token)) => builtin.authenticate(token),
            (Identity::Keystone(keystone), Some(token)) => keystone.authenticate(token).await,
        }
    }

    /// The Keystone v3 routes to serve next to the Neutron API (builtin mode only).
    pub fn router(&self) -> Option<axum::Router> {
        match self {
            Identity::Builtin(builtin) => Some(Arc::clone(builtin).router()),
            Identity::NoAuth | Identity::Keystone(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use neutrino_model::ErrorKind;

    #[tokio::test]
    async fn noauth_is_always_admin() {
        let identity = Identity::NoAuth;
        assert_eq!(
            identity.authenticate(None).await,
            Ok(AuthContext::noauth_admin())
        );
        assert_eq!(
            identity.authenticate(Some("junk")).await,
            Ok(AuthContext::noauth_admin())
        );
        assert!(identity.router().is_none());
    }

    #[tokio::test]
    async fn missing_token_is_401() {
        let builtin = BuiltinIdentity::new(
            BuiltinConfig::default(),
            [0; 32],
            "http://127.0.0.1:9696/".into(),
            "http://127.0.0.1:9696/v3".into(),
        )
        .unwrap();
        let identity = Identity::Builtin(Arc::new(builtin));
        for token in [None, Some(""), Some("garbage")] {
            let err = identity.authenticate(token).await.unwrap_err();
            assert_eq!(err.kind, ErrorKind::Unauthorized);
        }
        assert!(identity.router().is_some());
    }
}
