//! Parsing of `POST /v3/auth/tokens` bodies into what the builtin provider
//! supports: the `password` and `token` methods and project scope.
//!
//! Parsing is lenient where real clients differ (a missing user or project
//! domain means `Default`) and strict where a mistake would otherwise be
//! silently ignored (an unsupported method or scope is refused).

use serde::Deserialize;

use super::fault::KeystoneFault;

/// An authentication request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuthRequest {
    /// Requested methods, without duplicates, in request order. Each must succeed.
    pub(crate) methods: Vec<Method>,
    pub(crate) password: Option<PasswordCredentials>,
    /// The token being exchanged when `methods` contains `token`.
    pub(crate) token_id: Option<String>,
    pub(crate) scope: Scope,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Password,
    Token,
}

impl Method {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Method::Password => "password",
            Method::Token => "token",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PasswordCredentials {
    pub(crate) user: UserRef,
    pub(crate) password: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UserRef {
    Id(String),
    Name {
        name: String,
        domain: Option<DomainRef>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DomainRef {
    Id(String),
    Name(String),
}

impl DomainRef {
    /// Whether this names the one domain builtin mode has. Domain names are
    /// compared case-insensitively, as Keystone's usual MySQL backend does.
    pub(crate) fn is_default(&self) -> bool {
        match self {
            DomainRef::Id(id) => id == super::DEFAULT_DOMAIN_ID,
            DomainRef::Name(name) => name.eq_ignore_ascii_case(super::DEFAULT_DOMAIN_NAME),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProjectRef {
    Id(String),
    Name {
        name: String,
        domain: Option<DomainRef>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    /// No scope (or `"unscoped"`): the user's own project. Neutrino cannot
    /// represent unscoped tokens, and the one project is what clients want.
    Default,
    Project(ProjectRef),
    /// Domain, system or trust scope: valid Keystone, but nothing builtin
    /// mode can grant.
    Unsupported,
}

#[derive(Deserialize)]
struct RawRequest {
    auth: RawAuth,
}

#[derive(Deserialize)]
struct RawAuth {
    identity: RawIdentity,
    scope: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawIdentity {
    methods: Vec<String>,
    password: Option<RawPassword>,
    token: Option<RawToken>,
}

#[derive(Deserialize)]
struct RawPassword {
    user: RawUser,
}

#[derive(Deserialize)]
struct RawUser {
    id: Option<String>,
    name: Option<String>,
    domain: Option<RawDomain>,
    password: Option<String>,
}

#[derive(Deserialize)]
struct RawDomain {
    id: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
struct RawToken {
    id: String,
}

#[derive(Deserialize)]
struct RawProject {
    id: Option<String>,
    name: Option<String>,
    domain: Option<RawDomain>,
}

impl AuthRequest {
    /// Parses a request body; every failure is a 400 or (for methods and
    /// scopes Keystone knows but builtin mode does not offer) a 401.
    pub(crate) fn parse(body: &[u8]) -> Result<AuthRequest, KeystoneFault> {
        let raw: RawRequest = serde_json::from_slice(body).map_err(describe_json_error)?;
        let identity = raw.auth.identity;

        let mut methods = Vec::new();
        for name in &identity.methods {
            let method = match name.as_str() {
                "password" => Method::Password,
                "token" => Method::Token,
                // Keystone answers unknown methods with 401.
                _ => return Err(KeystoneFault::unauthorized()),
            };
            if !methods.contains(&method) {
                methods.push(method);
            }
        }
        if methods.is_empty() {
            return Err(KeystoneFault::bad_request(
                "Expecting to find methods in identity.",
            ));
        }

        let password = if methods.contains(&Method::Password) {
            let raw = identity.password.ok_or_else(|| {
                KeystoneFault::bad_request("Expecting to find password in identity.")
            })?;
            Some(password_credentials(raw.user)?)
        } else {
            None
        };
        let token_id = if methods.contains(&Method::Token) {
            let raw = identity.token.ok_or_else(|| {
                KeystoneFault::bad_request("Expecting to find token in identity.")
            })?;
            Some(raw.id)
        } else {
            None
        };
        let scope = parse_scope(raw.auth.scope)?;
        Ok(AuthRequest {
            methods,
            password,
            token_id,
            scope,
        })
    }
}

fn password_credentials(user: RawUser) -> Result<PasswordCredentials, KeystoneFault> {
    let password = user
        .password
        .ok_or_else(|| KeystoneFault::bad_request("Expecting to find password in user."))?;
    let user = match (user.id, user.name) {
        (Some(id), _) => UserRef::Id(id),
        (None, Some(name)) => UserRef::Name {
            name,
            domain: domain_ref(user.domain)?,
        },
        (None, None) => {
            return Err(KeystoneFault::bad_request(
                "Expecting to find id or name in user.",
            ));
        }
    };
    Ok(PasswordCredentials { user, password })
}

fn domain_ref(domain: Option<RawDomain>) -> Result<Option<DomainRef>, KeystoneFault> {
    match domain {
        None => Ok(None),
        Some(RawDomain { id: Some(id), .. }) => Ok(Some(DomainRef::Id(id))),
        Some(RawDomain {
            name: Some(name), ..
        }) => Ok(Some(DomainRef::Name(name))),
        Some(_) => Err(KeystoneFault::bad_request(
            "Expecting to find id or name in domain.",
        )),
    }
}

fn parse_scope(scope: Option<serde_json::Value>) -> Result<Scope, KeystoneFault> {
    use serde_json::Value;
    let object = match scope {
        None | Some(Value::Null) => return Ok(Scope::Default),
        Some(Value::String(s)) if s == "unscoped" => return Ok(Scope::Default),
        Some(Value::Object(object)) => object,
        Some(_) => return Err(KeystoneFault::bad_request("Invalid scope in auth.")),
    };
    if let Some(project) = object.get("project") {
        let raw: RawProject = serde_json::from_value(project.clone())
            .map_err(|_| KeystoneFault::bad_request("Invalid project in scope."))?;
        let project = match (raw.id, raw.name) {
            (Some(id), _) => ProjectRef::Id(id),
            (None, Some(name)) => ProjectRef::Name {
                name,
                domain: domain_ref(raw.domain)?,
            },
            (None, None) => {
                return Err(KeystoneFault::bad_request(
                    "Expecting to find id or name in project.",
                ));
            }
        };
        return Ok(Scope::Project(project));
    }
    if object.is_empty() {
        return Ok(Scope::Default);
    }
    Ok(Scope::Unsupported)
}

/// A 400 describing a body that is not an auth request, without echoing
/// values from it (they may contain a password).
fn describe_json_error(err: serde_json::Error) -> KeystoneFault {
    use serde_json::error::Category;
    match err.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            KeystoneFault::bad_request("The request body is not valid JSON.")
        }
        Category::Data => {
            let text = err.to_string();
            let detail = match text.split_once("missing field `") {
                Some((_, rest)) => {
                    let field = rest.split('`').next().unwrap_or_default();
                    format!("Expecting to find {field} in the authentication request.")
                }
                None => "Invalid authentication request: expected \
                         {\"auth\": {\"identity\": {\"methods\": [...], ...}}}."
                    .to_string(),
            };
            KeystoneFault::bad_request(detail)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn parse(body: &str) -> Result<AuthRequest, KeystoneFault> {
        AuthRequest::parse(body.as_bytes())
    }

    #[test]
    fn password_by_name_with_project_scope() {
        let request = parse(
            r#"{"auth": {"identity": {"methods": ["password"], "password": {"user":
                {"name": "demo", "domain": {"name": "Default"}, "password": "pw"}}},
                "scope": {"project": {"name": "demo", "domain": {"id": "default"}}}}}"#,
        )
        .unwrap();
        assert_eq!(request.methods, vec![Method::Password]);
        let password = request.password.unwrap();
        assert_eq!(
            password.user,
            UserRef::Name {
                name: "demo".into(),
                domain: Some(DomainRef::Name("Default".into()))
            }
        );
        assert_eq!(password.password, "pw");
        assert_eq!(
            request.scope,
            Scope::Project(ProjectRef::Name {
                name: "demo".into(),
                domain: Some(DomainRef::Id("default".into()))
            })
        );
    }

    #[test]
    fn token_method_and_scopes() {
        let request = parse(
            r#"{"auth": {"identity": {"methods": ["token", "token"], "token": {"id": "abc"}},
                "scope": "unscoped"}}"#,
        )
        .unwrap();
        assert_eq!(request.methods, vec![Method::Token]);
        assert_eq!(request.token_id.as_deref(), Some("abc"));
        assert_eq!(request.scope, Scope::Default);

        let request = parse(
            r#"{"auth": {"identity": {"methods": ["token"], "token": {"id": "abc"}},
                "scope": {"domain": {"id": "default"}}}}"#,
        )
        .unwrap();
        assert_eq!(request.scope, Scope::Unsupported);
    }

    #[test]
    fn malformed_bodies_are_400() {
        for body in [
            "",
            "{",
            "[]",
            r#"{"auth": {}}"#,
            r#"{"auth": {"identity": {}}}"#,
            r#"{"auth": {"identity": {"methods": []}}}"#,
            r#"{"auth": {"identity": {"methods": ["password"]}}}"#,
            r#"{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "x"}}}}}"#,
            r#"{"auth": {"identity": {"methods": ["password"], "password": {"user": {"password": "x"}}}}}"#,
            r#"{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "x", "password": 5}}}}}"#,
            r#"{"auth": {"identity": {"methods": ["token"]}}}"#,
            r#"{"auth": {"identity": {"methods": ["token"], "token": {"id": "a"}}, "scope": 5}}"#,
            r#"{"auth": {"identity": {"methods": ["token"], "token": {"id": "a"}}, "scope": {"project": {}}}}"#,
        ] {
            let fault = parse(body).unwrap_err();
            assert_eq!(fault.status, StatusCode::BAD_REQUEST, "{body}");
        }
    }

    #[test]
    fn password_values_are_not_echoed() {
        let fault = parse(
            r#"{"auth": {"identity": {"methods": ["password"], "password": {"user": "hunter2"}}}}"#,
        )
        .unwrap_err();
        assert!(!fault.message.contains("hunter2"), "{}", fault.message);
    }

    #[test]
    fn unknown_method_is_401() {
        let fault =
            parse(r#"{"auth": {"identity": {"methods": ["totp"], "totp": {}}}}"#).unwrap_err();
        assert_eq!(fault.status, StatusCode::UNAUTHORIZED);
    }
}
