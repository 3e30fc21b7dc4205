//! The `[identity]` settings of keystone mode.

use serde::{Deserialize, Serialize};

use crate::error::IdentityError;

/// Where the external Keystone is and how Neutrino logs in to it (the
/// equivalent of keystonemiddleware's `[keystone_authtoken]` section).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeystoneConfig {
    /// Keystone's v3 root, e.g. `http://127.0.0.1:5000/v3`. A bare host
    /// (`http://127.0.0.1:5000`) gets `/v3` appended. Plain http only.
    pub url: String,
    /// The service user Neutrino authenticates as; it needs the `service`
    /// or `admin` role to validate other users' tokens.
    pub username: String,
    pub password: String,
    /// The project the service user's token is scoped to (usually `service`).
    pub project_name: String,
    #[serde(default = "default_domain_name")]
    pub user_domain_name: String,
    #[serde(default = "default_domain_name")]
    pub project_domain_name: String,
    /// How many validated tokens to remember; each saves one Keystone round trip.
    #[serde(default = "default_cache_max_entries")]
    pub cache_max_entries: usize,
    /// Give up on a Keystone request after this many seconds (then 503).
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

impl std::fmt::Debug for KeystoneConfig {
    // Never print the service password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeystoneConfig")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("project_name", &self.project_name)
            .field("user_domain_name", &self.user_domain_name)
            .field("project_domain_name", &self.project_domain_name)
            .field("cache_max_entries", &self.cache_max_entries)
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
}

fn default_domain_name() -> String {
    "Default".to_string()
}

fn default_cache_max_entries() -> usize {
    10_000
}

fn default_timeout_secs() -> u64 {
    10
}

impl KeystoneConfig {
    /// Checks the settings and returns Keystone's v3 root without a trailing
    /// slash (`http://host:5000/v3`), ready for appending `/auth/tokens`.
    pub(crate) fn validated_base_url(&self) -> Result<String, IdentityError> {
        for (name, value) in [
            ("username", &self.username),
            ("password", &self.password),
            ("project_name", &self.project_name),
            ("user_domain_name", &self.user_domain_name),
            ("project_domain_name", &self.project_domain_name),
        ] {
            if value.is_empty() {
                return Err(IdentityError::MissingSetting(name));
            }
        }
        base_url(&self.url)
    }
}

fn base_url(url: &str) -> Result<String, IdentityError> {
    let invalid = |reason: &str| IdentityError::InvalidUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = url.trim();
    if trimmed
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    {
        return Err(IdentityError::TlsUnsupported(url.to_string()));
    }
    let uri: hyper::Uri = trimmed.parse().map_err(|_| invalid("not a URL"))?;
    if uri.scheme_str() != Some("http") {
        return Err(invalid("the scheme must be http"));
    }
    let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
    if uri.query().is_some() {
        return Err(invalid("a query string is not allowed"));
    }
    let path = uri.path().trim_end_matches('/');
    let path = if path.is_empty() { "/v3" } else { path };
    Ok(format!("http://{authority}{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(
            base_url("http://127.0.0.1:5000/v3").unwrap(),
            "http://127.0.0.1:5000/v3"
        );
        assert_eq!(
            base_url("http://127.0.0.1:5000/v3/").unwrap(),
            "http://127.0.0.1:5000/v3"
        );
        assert_eq!(
            base_url("http://keystone:5000").unwrap(),
            "http://keystone:5000/v3"
        );
        assert_eq!(
            base_url("http://h/identity/v3").unwrap(),
            "http://h/identity/v3"
        );
        assert!(matches!(
            base_url("https://h/v3"),
            Err(IdentityError::TlsUnsupported(_))
        ));
        assert!(matches!(
            base_url("HTTPS://h/v3"),
            Err(IdentityError::TlsUnsupported(_))
        ));
        for bad in [
            "",
            "h:5000/v3",
            "ftp://h/v3",
            "http:///v3",
            "http://h/v3?x=1",
            "not a url",
        ] {
            assert!(
                matches!(base_url(bad), Err(IdentityError::InvalidUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn defaults_and_redaction() {
        let config: KeystoneConfig = serde_json::from_str(
            r#"{"url": "http://k:5000/v3", "username": "neutron", "password": "hunter2",
                "project_name": "service"}"#,
        )
        .unwrap();
        assert_eq!(config.user_domain_name, "Default");
        assert_eq!(config.project_domain_name, "Default");
        assert_eq!(config.cache_max_entries, 10_000);
        assert_eq!(config.timeout_secs, 10);
        assert!(!format!("{config:?}").contains("hunter2"));
        let mut empty = config.clone();
        empty.password.clear();
        assert_eq!(
            empty.validated_base_url(),
            Err(IdentityError::MissingSetting("password"))
        );
    }
}
