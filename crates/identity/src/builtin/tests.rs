//! Builtin identity through its HTTP routes, as clients see it.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use neutrino_model::time::{now_unix, parse_utc};
use neutrino_model::{ErrorKind, Role};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;
use crate::password::hash_password_with_iterations;
use crate::token::new_audit_id;

const KEY: [u8; 32] = [42; 32];
const NETWORK_URL: &str = "http://127.0.0.1:9696/";
const IDENTITY_URL: &str = "http://127.0.0.1:9696/v3";

fn config() -> BuiltinConfig {
    // Few iterations: these tests are about the protocol, not PBKDF2 cost.
    let hash = |pw: &str| hash_password_with_iterations(pw, 1000);
    BuiltinConfig {
        token_ttl_secs: 3600,
        region: "RegionOne".into(),
        projects: vec![
            ProjectConfig {
                name: "demo".into(),
                id: None,
                description: Some("Demo project".into()),
            },
            ProjectConfig {
                name: "other".into(),
                id: Some("other-id".into()),
                description: None,
            },
        ],
        users: vec![
            UserConfig {
                name: "alice".into(),
                id: None,
                password_hash: hash("alice-pw"),
                project: "demo".into(),
                roles: vec!["member".into(), "reader".into()],
            },
            UserConfig {
                name: "bob".into(),
                id: Some("bob-id".into()),
                password_hash: hash("bob-pw"),
                project: "other-id".into(),
                roles: vec!["reader".into()],
            },
        ],
    }
    .with_admin(hash("admin-pw"))
}

fn identity() -> Arc<BuiltinIdentity> {
    Arc::new(BuiltinIdentity::new(config(), KEY, NETWORK_URL.into(), IDENTITY_URL.into()).unwrap())
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
    raw_len: usize,
}

async fn call(
    idp: &Arc<BuiltinIdentity>,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = match body {
        Some(text) => Body::from(text.to_string()),
        None => Body::empty(),
    };
    let response = idp
        .clone()
        .router()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    Reply {
        status,
        headers,
        body,
        raw_len: bytes.len(),
    }
}

fn password_auth(user: Value, password: &str, scope: Option<Value>) -> String {
    let mut user = user;
    user["password"] = json!(password);
    let mut auth = json!({"identity": {"methods": ["password"], "password": {"user": user}}});
    if let Some(scope) = scope {
        auth["scope"] = scope;
    }
    json!({"auth": auth}).to_string()
}

fn by_name(name: &str) -> Value {
    json!({"name": name, "domain": {"name": "Default"}})
}

fn project_scope(name: &str) -> Option<Value> {
    Some(json!({"project": {"name": name, "domain": {"id": "default"}}}))
}

async fn login(idp: &Arc<BuiltinIdentity>, user: &str, password: &str, project: &str) -> String {
    let body = password_auth(by_name(user), password, project_scope(project));
    let reply = call(idp, Method::POST, "/v3/auth/tokens", &[], Some(&body)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    subject_token(&reply)
}

fn subject_token(reply: &Reply) -> String {
    reply
        .headers
        .get("x-subject-token")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string()
}

fn assert_unauthorized(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.body["error"]["code"], 401);
    assert_eq!(reply.body["error"]["title"], "Unauthorized");
}

#[tokio::test]
async fn version_document() {
    let idp = identity();
    for uri in ["/v3", "/v3/"] {
        let reply = call(&idp, Method::GET, uri, &[], None).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(
            reply.body,
            json!({"version": {
                "id": "v3.14",
                "status": "stable",
                "updated": "2020-04-07T00:00:00Z",
                "links": [{"rel": "self", "href": "http://127.0.0.1:9696/v3/"}],
                "media-types": [{"base": "application/json",
                                 "type": "application/vnd.openstack.identity-v3+json"}],
            }})
        );
    }
}

#[tokio::test]
async fn password_by_name_with_project_scope() {
    let idp = identity();
    let body = password_auth(by_name("alice"), "alice-pw", project_scope("demo"));
    let reply = call(&idp, Method::POST, "/v3/auth/tokens", &[], Some(&body)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let token = subject_token(&reply);

    let t = &reply.body["token"];
    let domain = json!({"id": "default", "name": "Default"});
    assert_eq!(t["methods"], json!(["password"]));
    assert_eq!(t["user"]["id"], stable_id("user", "alice"));
    assert_eq!(t["user"]["name"], "alice");
    assert_eq!(t["user"]["domain"], domain);
    assert_eq!(t["user"]["password_expires_at"], Value::Null);
    assert_eq!(t["project"]["id"], stable_id("project", "demo"));
    assert_eq!(t["project"]["name"], "demo");
    assert_eq!(t["project"]["domain"], domain);
    let role_names: Vec<&str> = t["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(role_names, ["member", "reader"]);
    assert!(t["roles"][0]["id"].as_str().unwrap().len() == 32);
    assert_eq!(t["is_domain"], false);
    assert_eq!(t["audit_ids"].as_array().unwrap().len(), 1);
    let issued = t["issued_at"].as_str().unwrap();
    let expires = t["expires_at"].as_str().unwrap();
    assert!(issued.ends_with(".000000Z") && expires.ends_with(".000000Z"));
    assert_eq!(
        parse_utc(expires).unwrap() - parse_utc(issued).unwrap(),
        3600
    );

    // The catalog: network and identity, each under all three interfaces.
    let catalog = t["catalog"].as_array().unwrap();
    let network = catalog.iter().find(|s| s["type"] == "network").unwrap();
    assert_eq!(network["name"], "neutron");
    let mut interfaces = Vec::new();
    for endpoint in network["endpoints"].as_array().unwrap() {
        assert_eq!(endpoint["url"], NETWORK_URL);
        assert_eq!(endpoint["region"], "RegionOne");
        assert_eq!(endpoint["region_id"], "RegionOne");
        interfaces.push(endpoint["interface"].as_str().unwrap());
    }
    interfaces.sort_unstable();
    assert_eq!(interfaces, ["admin", "internal", "public"]);
    let keystone = catalog.iter().find(|s| s["type"] == "identity").unwrap();
    assert_eq!(keystone["name"], "keystone");
    assert_eq!(keystone["endpoints"].as_array().unwrap().len(), 3);
    assert_eq!(keystone["endpoints"][0]["url"], IDENTITY_URL);

    // The token authenticates Neutron API requests.
    let context = idp.authenticate(&token).unwrap();
    assert_eq!(context.user_name, "alice");
    assert_eq!(context.project_name, "demo");
    assert_eq!(context.project_id, stable_id("project", "demo"));
    assert_eq!(context.roles, vec![Role::Member, Role::Reader]);
}

#[tokio::test]
async fn password_by_id_with_project_id() {
    let idp = identity();
    let body = password_auth(
        json!({"id": "bob-id"}),
        "bob-pw",
        Some(json!({"project": {"id": "other-id"}})),
    );
    let reply = call(
        &idp,
        Method::POST,
        "/v3/auth/tokens?nocatalog",
        &[],
        Some(&body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["token"]["user"]["id"], "bob-id");
    assert_eq!(reply.body["token"]["project"]["id"], "other-id");
    assert!(reply.body["token"].get("catalog").is_none());
    // One role, password method: the common case fits in 255 bytes.
    let token = subject_token(&reply);
    assert!(token.len() < 255, "token is {} bytes", token.len());
    let context = idp.authenticate(&token).unwrap();
    assert_eq!(context.roles, vec![Role::Reader]);
}

#[tokio::test]
async fn no_scope_means_own_project() {
    let idp = identity();
    for scope in [None, Some(json!("unscoped"))] {
        let body = password_auth(json!({"name": "admin"}), "admin-pw", scope);
        let reply = call(&idp, Method::POST, "/v3/auth/tokens", &[], Some(&body)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        assert_eq!(reply.body["token"]["project"]["name"], "admin");
        assert!(idp.authenticate(&subject_token(&reply)).unwrap().is_admin());
    }
}

#[tokio::test]
async fn bad_credentials_are_401_with_keystone_body() {
    let idp = identity();
    let attempts = [
        password_auth(by_name("alice"), "wrong", project_scope("demo")),
        password_auth(by_name("nobody"), "alice-pw", project_scope("demo")),
        password_auth(json!({"id": "nobody"}), "alice-pw", None),
        password_auth(
            json!({"name": "alice", "domain": {"name": "Other"}}),
            "alice-pw",
            None,
        ),
    ];
    for body in &attempts {
        let reply = call(&idp, Method::POST, "/v3/auth/tokens", &[], Some(body)).await;
        assert_eq!(
            reply.body,
            json!({"error": {"code": 401, "title": "Unauthorized",
                "message": "The request you have made requires authentication."}})
        );
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert!(reply.headers.get("x-subject-token").is_none());
    }
}

#[tokio::test]
async fn scope_without_roles_is_401() {
    let idp = identity();
    for scope in [
        project_scope("other"),
        project_scope("missing"),
        Some(json!({"project": {"name": "demo", "domain": {"name": "Elsewhere"}}})),
        Some(json!({"domain": {"id": "default"}})),
        Some(json!({"system": {"all": true}})),
    ] {
        let body = password_auth(by_name("alice"), "alice-pw", scope);
        let reply = call(&idp, Method::POST, "/v3/auth/tokens", &[], Some(&body)).await;
        assert_unauthorized(&reply);
    }
}

#[tokio::test]
async fn malformed_requests_are_400() {
    let idp = identity();
    for body in [
        "{not json",
        "",
        r#"{"auth": {"identity": {"methods": "password"}}}"#,
    ] {
        let reply = call(&idp, Method::POST, "/v3/auth/tokens", &[], Some(body)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply.body["error"]["code"], 400);
        assert_eq!(reply.body["error"]["title"], "Bad Request");
    }
}

#[tokio::test]
async fn validate_token() {
    let idp = identity();
    let alice = login(&idp, "alice", "alice-pw", "demo").await;
    let admin = login(&idp, "admin", "admin-pw", "admin").await;

    // Any valid token may validate another.
    let reply = call(
        &idp,
        Method::GET,
        "/v3/auth/tokens",
        &[("X-Auth-Token", &admin), ("X-Subject-Token", &alice)],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(subject_token(&reply), alice);
    assert_eq!(reply.body["token"]["user"]["name"], "alice");
    assert_eq!(reply.body["token"]["project"]["name"], "demo");
    assert!(reply.body["token"]["catalog"].is_array());

    let reply = call(
        &idp,
        Method::GET,
        "/v3/auth/tokens?nocatalog",
        &[("X-Auth-Token", &alice), ("X-Subject-Token", &alice)],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body["token"].get("catalog").is_none());

    let reply = call(
        &idp,
        Method::HEAD,
        "/v3/auth/tokens",
        &[("X-Auth-Token", &alice), ("X-Subject-Token", &alice)],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.raw_len, 0);

    let reply = call(
        &idp,
        Method::GET,
        "/v3/auth/tokens",
        &[("X-Auth-Token", &alice), ("X-Subject-Token", "bogus")],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.body["error"]["code"], 404);

    let reply = call(
        &idp,
        Method::GET,
        "/v3/auth/tokens",
        &[("X-Subject-Token", &alice)],
        None,
    )
    .await;
    assert_unauthorized(&reply);
    let reply = call(
        &idp,
        Method::GET,
        "/v3/auth/tokens",
        &[("X-Auth-Token", "bogus"), ("X-Subject-Token", &alice)],
        None,
    )
    .await;
    assert_unauthorized(&reply);
    let reply = call(
        &idp,
        Method::GET,
        "/v3/auth/tokens",
        &[("X-Auth-Token", &alice)],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn expired_and_forged_tokens_are_refused() {
    let idp = identity();
    let now = now_unix();
    let claims = TokenClaims {
        user_id: stable_id("user", "alice"),
        project_id: stable_id("project", "demo"),
        roles: vec!["admin".into()],
        issued_at: now - 7200,
        expires_at: now - 3600,
        audit_id: new_audit_id(),
        methods: vec!["password".into()],
    };
    let expired = TokenSigner::new(KEY).issue(&claims);
    let forged = TokenSigner::new([1; 32]).issue(&TokenClaims {
        expires_at: now + 3600,
        ..claims.clone()
    });
    // Signed correctly, but alice has no roles on `other`.
    let misscoped = TokenSigner::new(KEY).issue(&TokenClaims {
        expires_at: now + 3600,
        project_id: "other-id".into(),
        ..claims
    });
    for token in [&expired, &forged, &misscoped] {
        let err = idp.authenticate(token).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unauthorized);
        let admin = login(&idp, "admin", "admin-pw", "admin").await;
        let reply = call(
            &idp,
            Method::GET,
            "/v3/auth/tokens",
            &[("X-Auth-Token", &admin), ("X-Subject-Token", token)],
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn tokens_from_a_removed_user_stop_working() {
    let idp = identity();
    let token = login(&idp, "alice", "alice-pw", "demo").await;
    let mut config = config();
    config.users.retain(|u| u.name != "alice");
    let restarted =
        BuiltinIdentity::new(config, KEY, NETWORK_URL.into(), IDENTITY_URL.into()).unwrap();
    assert!(idp.authenticate(&token).is_ok());
    assert_eq!(
        restarted.authenticate(&token).unwrap_err().kind,
        ErrorKind::Unauthorized
    );
}

#[tokio::test]
async fn revoke_token() {
    let idp = identity();
    let alice = login(&idp, "alice", "alice-pw", "demo").await;
    let alice2 = login(&idp, "alice", "alice-pw", "demo").await;
    let bob = login(&idp, "bob", "bob-pw", "other").await;

    // Bob may not revoke Alice's token.
    let reply = call(
        &idp,
        Method::DELETE,
        "/v3/auth/tokens",
        &[("X-Auth-Token", &bob), ("X-Subject-Token", &alice)],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.body["error"]["code"], 403);

    let reply = call(
        &idp,
        Method::DELETE,
        "/v3/auth/tokens",
        &[("X-Auth-Token", &alice), ("X-Subject-Token", &alice)],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert!(idp.authenticate(&alice).is_err());
    // Other tokens of the same user are unaffected.
    assert!(idp.authenticate(&alice2).is_ok());
    let reply = call(
        &idp,
        Method::GET,
        "/v3/auth/tokens",
        &[("X-Auth-Token", &alice2), ("X-Subject-Token", &alice)],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);

    // An admin may revoke anyone's.
    let admin = login(&idp, "admin", "admin-pw", "admin").await;
    let reply = call(
        &idp,
        Method::DELETE,
        "/v3/auth/tokens",
        &[("X-Auth-Token", &admin), ("X-Subject-Token", &bob)],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert!(idp.authenticate(&bob).is_err());
}

#[tokio::test]
async fn token_method_rescopes() {
    let idp = identity();
    let alice = login(&idp, "alice", "alice-pw", "demo").await;
    let body = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": alice}},
        "scope": {"project": {"id": stable_id("project", "demo")}}}})
    .to_string();
    let reply = call(&idp, Method::POST, "/v3/auth/tokens", &[], Some(&body)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["token"]["methods"], json!(["token", "password"]));
    let rescoped = subject_token(&reply);
    assert_ne!(rescoped, alice);
    let original = idp.signer.verify(&alice).unwrap();
    let new = idp.signer.verify(&rescoped).unwrap();
    assert!(new.expires_at <= original.expires_at);
    assert_eq!(idp.authenticate(&rescoped).unwrap().user_name, "alice");

    // A token cannot buy a scope its user has no roles on.
    let body = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": alice}},
        "scope": {"project": {"name": "other", "domain": {"id": "default"}}}}})
    .to_string();
    let reply = call(&idp, Method::POST, "/v3/auth/tokens", &[], Some(&body)).await;
    assert_unauthorized(&reply);

    // Nor does an invalid one work.
    let body =
        json!({"auth": {"identity": {"methods": ["token"], "token": {"id": "junk"}}}}).to_string();
    let reply = call(&idp, Method::POST, "/v3/auth/tokens", &[], Some(&body)).await;
    assert_unauthorized(&reply);
}

fn names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn project_visibility() {
    let idp = identity();
    let admin = login(&idp, "admin", "admin-pw", "admin").await;
    let alice = login(&idp, "alice", "alice-pw", "demo").await;
    let get = |token: String, uri: &'static str| {
        let idp = idp.clone();
        async move { call(&idp, Method::GET, uri, &[("X-Auth-Token", &token)], None).await }
    };

    let reply = get(admin.clone(), "/v3/projects").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(names(&reply.body["projects"]), ["admin", "demo", "other"]);
    assert_eq!(
        reply.body["links"]["self"],
        "http://127.0.0.1:9696/v3/projects"
    );
    let demo = reply.body["projects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "demo")
        .unwrap();
    assert_eq!(
        *demo,
        json!({
            "id": stable_id("project", "demo"), "name": "demo", "domain_id": "default",
            "enabled": true, "description": "Demo project", "is_domain": false,
            "parent_id": "default", "tags": [], "options": {},
            "links": {"self": format!("http://127.0.0.1:9696/v3/projects/{}", stable_id("project", "demo"))},
        })
    );

    let reply = get(alice.clone(), "/v3/projects").await;
    assert_eq!(names(&reply.body["projects"]), ["demo"]);

    // python-openstackclient resolving a project name: GET by "id" → 404, then ?name=.
    let reply = get(admin.clone(), "/v3/projects/other").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.body["error"]["code"], 404);
    let reply = get(admin.clone(), "/v3/projects?name=other").await;
    assert_eq!(names(&reply.body["projects"]), ["other"]);
    assert_eq!(reply.body["projects"][0]["id"], "other-id");
    let reply = get(alice.clone(), "/v3/projects?name=other").await;
    assert_eq!(names(&reply.body["projects"]), Vec::<String>::new());

    let reply = get(admin.clone(), "/v3/projects/other-id").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["project"]["name"], "other");
    let reply = get(alice.clone(), "/v3/projects/other-id").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);

    let reply = get(alice.clone(), "/v3/auth/projects").await;
    assert_eq!(names(&reply.body["projects"]), ["demo"]);
    let reply = get(admin.clone(), "/v3/auth/projects").await;
    assert_eq!(names(&reply.body["projects"]), ["admin"]);

    let reply = call(&idp, Method::GET, "/v3/projects", &[], None).await;
    assert_unauthorized(&reply);
}

#[tokio::test]
async fn users_catalog_and_domains() {
    let idp = identity();
    let admin = login(&idp, "admin", "admin-pw", "admin").await;
    let alice = login(&idp, "alice", "alice-pw", "demo").await;
    let alice_id = stable_id("user", "alice");
    let get = |token: String, uri: String| {
        let idp = idp.clone();
        async move { call(&idp, Method::GET, &uri, &[("X-Auth-Token", &token)], None).await }
    };

    let reply = get(alice.clone(), format!("/v3/users/{alice_id}/projects")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(names(&reply.body["projects"]), ["demo"]);
    let reply = get(admin.clone(), format!("/v3/users/{alice_id}/projects")).await;
    assert_eq!(names(&reply.body["projects"]), ["demo"]);
    let reply = get(alice.clone(), "/v3/users/bob-id/projects".into()).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let reply = get(admin.clone(), "/v3/users/nobody/projects".into()).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);

    let reply = get(alice.clone(), format!("/v3/users/{alice_id}")).await;
    assert_eq!(reply.body["user"]["name"], "alice");
    assert_eq!(
        reply.body["user"]["default_project_id"],
        stable_id("project", "demo")
    );

    let reply = get(alice.clone(), "/v3/auth/catalog".into()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["catalog"].as_array().unwrap().len(), 2);

    let reply = get(alice.clone(), "/v3/domains/default".into()).await;
    assert_eq!(reply.body["domain"]["name"], "Default");
    let reply = get(alice.clone(), "/v3/domains/Default".into()).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let reply = get(alice.clone(), "/v3/domains?name=Default".into()).await;
    assert_eq!(reply.body["domains"][0]["id"], "default");
}

#[test]
fn config_errors_name_the_problem() {
    let build = |config: BuiltinConfig| {
        BuiltinIdentity::new(config, KEY, NETWORK_URL.into(), IDENTITY_URL.into()).map(|_| ())
    };
    assert_eq!(build(config()), Ok(()));

    let mut c = config();
    c.users[0].project = "nowhere".into();
    assert_eq!(
        build(c),
        Err(IdentityError::UnknownProject {
            user: "alice".into(),
            project: "nowhere".into()
        })
    );
    let mut c = config();
    c.users[0].roles.push("superuser".into());
    let err = build(c).unwrap_err();
    assert_eq!(
        err,
        IdentityError::UnknownRole {
            user: "alice".into(),
            role: "superuser".into()
        }
    );
    assert!(err.to_string().contains("superuser"));

    let mut c = config();
    c.projects.push(ProjectConfig {
        name: "demo".into(),
        id: Some("x".into()),
        description: None,
    });
    assert_eq!(
        build(c),
        Err(IdentityError::DuplicateProject("demo".into()))
    );
    let mut c = config();
    let alice = c.users[0].clone();
    c.users.push(alice);
    assert_eq!(build(c), Err(IdentityError::DuplicateUser("alice".into())));
    let mut c = config();
    c.users[0].password_hash = "plaintext".into();
    assert_eq!(
        build(c),
        Err(IdentityError::InvalidPasswordHash {
            user: "alice".into()
        })
    );
    let mut c = config();
    c.projects[0].id = Some("has/slash".into());
    assert!(matches!(build(c), Err(IdentityError::InvalidId { .. })));
    let mut c = config();
    c.token_ttl_secs = 0;
    assert!(matches!(
        build(c),
        Err(IdentityError::InvalidTokenTtl { .. })
    ));
    let mut c = config();
    c.users[0].name = " ".into();
    assert_eq!(build(c), Err(IdentityError::EmptyName { kind: "user" }));
}
