//! KeystoneValidator against a live Keystone v3 API: the builtin provider,
//! served on a loopback port, speaks the same protocol.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use neutrino_identity::password::hash_password_with_iterations;
use neutrino_identity::{
    BuiltinConfig, BuiltinIdentity, Identity, IdentityError, KeystoneConfig, KeystoneValidator,
    ProjectConfig, UserConfig, stable_id,
};
use neutrino_model::{ErrorKind, Role};
use tower::ServiceExt;

/// What the fake Keystone saw.
#[derive(Default)]
struct Traffic {
    requests: AtomicUsize,
    /// The X-Auth-Token of the last request: the validator's service token.
    last_auth_token: Mutex<Option<String>>,
}

impl Traffic {
    fn count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

struct FakeKeystone {
    idp: Arc<BuiltinIdentity>,
    addr: SocketAddr,
    traffic: Arc<Traffic>,
}

fn builtin() -> Arc<BuiltinIdentity> {
    let hash = |pw: &str| hash_password_with_iterations(pw, 1000);
    let config = BuiltinConfig {
        projects: vec![
            ProjectConfig {
                name: "service".into(),
                id: None,
                description: None,
            },
            ProjectConfig {
                name: "demo".into(),
                id: None,
                description: None,
            },
        ],
        users: vec![
            UserConfig {
                name: "neutron".into(),
                id: None,
                password_hash: hash("service-pw"),
                project: "service".into(),
                roles: vec!["admin".into()],
            },
            UserConfig {
                name: "alice".into(),
                id: None,
                password_hash: hash("alice-pw"),
                project: "demo".into(),
                roles: vec!["member".into()],
            },
        ],
        ..BuiltinConfig::default()
    };
    Arc::new(
        BuiltinIdentity::new(config, [9; 32], "http://n/".into(), "http://k/v3".into()).unwrap(),
    )
}

async fn start_keystone() -> FakeKeystone {
    let idp = builtin();
    let traffic = Arc::new(Traffic::default());
    let counter = traffic.clone();
    let app = idp.clone().router().layer(axum::middleware::from_fn(
        move |req: Request, next: Next| {
            let counter = counter.clone();
            async move {
                counter.requests.fetch_add(1, Ordering::SeqCst);
                let token = req
                    .headers()
                    .get("x-auth-token")
                    .and_then(|v| v.to_str().ok());
                if let Some(token) = token {
                    *counter.last_auth_token.lock().unwrap() = Some(token.to_string());
                }
                next.run(req).await
            }
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    FakeKeystone { idp, addr, traffic }
}

fn validator_config(addr: SocketAddr, password: &str) -> KeystoneConfig {
    KeystoneConfig {
        url: format!("http://{addr}/v3"),
        username: "neutron".into(),
        password: password.into(),
        project_name: "service".into(),
        user_domain_name: "Default".into(),
        project_domain_name: "Default".into(),
        cache_max_entries: 100,
        timeout_secs: 5,
    }
}

/// A user token, obtained in-process so it does not count as traffic.
async fn user_token(idp: &Arc<BuiltinIdentity>, user: &str, password: &str) -> String {
    let body = serde_json::json!({"auth": {"identity": {"methods": ["password"], "password":
        {"user": {"name": user, "domain": {"id": "default"}, "password": password}}}}});
    let request = Request::builder()
        .method("POST")
        .uri("/v3/auth/tokens")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = idp.clone().router().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    response.headers()["x-subject-token"]
        .to_str()
        .unwrap()
        .to_string()
}

fn revoke(idp: &Arc<BuiltinIdentity>, token: &str) -> impl Future<Output = ()> {
    let request = Request::builder()
        .method("DELETE")
        .uri("/v3/auth/tokens")
        .header("x-auth-token", token)
        .header("x-subject-token", token)
        .body(Body::empty())
        .unwrap();
    let router = idp.clone().router();
    async move {
        let response = router.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
}

#[tokio::test]
async fn validates_and_caches() {
    let keystone = start_keystone().await;
    let validator = KeystoneValidator::new(validator_config(keystone.addr, "service-pw")).unwrap();
    let token = user_token(&keystone.idp, "alice", "alice-pw").await;

    let context = validator.authenticate(&token).await.unwrap();
    assert_eq!(context.user_id, stable_id("user", "alice"));
    assert_eq!(context.user_name, "alice");
    assert_eq!(context.project_id, stable_id("project", "demo"));
    assert_eq!(context.project_name, "demo");
    assert_eq!(context.roles, vec![Role::Member]);
    // One login for the service token, one validation.
    assert_eq!(keystone.traffic.count(), 2);

    // Cached: no more traffic.
    assert_eq!(validator.authenticate(&token).await.unwrap(), context);
    assert_eq!(keystone.traffic.count(), 2);

    // Another token reuses the service token: one request.
    let other = user_token(&keystone.idp, "alice", "alice-pw").await;
    assert_eq!(
        validator.authenticate(&other).await.unwrap().user_name,
        "alice"
    );
    assert_eq!(keystone.traffic.count(), 3);

    // Through the Identity front door as well.
    let identity = Identity::Keystone(Arc::new(validator));
    assert_eq!(identity.authenticate(Some(&token)).await.unwrap(), context);
    assert_eq!(
        identity.authenticate(None).await.unwrap_err().kind,
        ErrorKind::Unauthorized
    );
    assert!(identity.router().is_none());
}

#[tokio::test]
async fn invalid_tokens_are_401() {
    let keystone = start_keystone().await;
    let validator = KeystoneValidator::new(validator_config(keystone.addr, "service-pw")).unwrap();

    let err = validator.authenticate("not-a-token").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unauthorized);
    let seen = keystone.traffic.count();
    assert_eq!(seen, 2);
    // Briefly remembered: a client retrying a bad token does not hammer Keystone.
    assert_eq!(
        validator
            .authenticate("not-a-token")
            .await
            .unwrap_err()
            .kind,
        ErrorKind::Unauthorized
    );
    assert_eq!(keystone.traffic.count(), seen);

    // Revoked in Keystone before first use.
    let token = user_token(&keystone.idp, "alice", "alice-pw").await;
    revoke(&keystone.idp, &token).await;
    assert_eq!(
        validator.authenticate(&token).await.unwrap_err().kind,
        ErrorKind::Unauthorized
    );

    // Not even sent: empty, oversized, or not a valid header value.
    let before = keystone.traffic.count();
    for token in ["", "   ", &"x".repeat(10_000), "bad\ntoken"] {
        assert_eq!(
            validator.authenticate(token).await.unwrap_err().kind,
            ErrorKind::Unauthorized
        );
    }
    assert_eq!(keystone.traffic.count(), before);
}

#[tokio::test]
async fn renews_a_rejected_service_token() {
    let keystone = start_keystone().await;
    let validator = KeystoneValidator::new(validator_config(keystone.addr, "service-pw")).unwrap();
    let first = user_token(&keystone.idp, "alice", "alice-pw").await;
    validator.authenticate(&first).await.unwrap();
    assert_eq!(keystone.traffic.count(), 2);

    // Revoke the validator's own token behind its back.
    let service_token = keystone
        .traffic
        .last_auth_token
        .lock()
        .unwrap()
        .clone()
        .unwrap();
    revoke(&keystone.idp, &service_token).await;

    // Validation answers 401, the validator logs in again and retries.
    let second = user_token(&keystone.idp, "alice", "alice-pw").await;
    assert_eq!(
        validator.authenticate(&second).await.unwrap().user_name,
        "alice"
    );
    assert_eq!(keystone.traffic.count(), 5);
    let renewed = keystone
        .traffic
        .last_auth_token
        .lock()
        .unwrap()
        .clone()
        .unwrap();
    assert_ne!(renewed, service_token);
}

#[tokio::test]
async fn unreachable_or_misconfigured_keystone_is_503() {
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let validator = KeystoneValidator::new(validator_config(addr, "service-pw")).unwrap();
    let err = validator.authenticate("some-token").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable);
    assert_eq!(err.kind.status(), 503);

    // Wrong service password: Keystone is up but Neutrino cannot ask it anything.
    let keystone = start_keystone().await;
    let validator = KeystoneValidator::new(validator_config(keystone.addr, "wrong")).unwrap();
    let token = user_token(&keystone.idp, "alice", "alice-pw").await;
    assert_eq!(
        validator.authenticate(&token).await.unwrap_err().kind,
        ErrorKind::Unavailable
    );
    // Failures are not cached as token verdicts; after the short back-off
    // the validator would try again (not waited for here).
    assert_eq!(
        validator.authenticate(&token).await.unwrap_err().kind,
        ErrorKind::Unavailable
    );
}

#[test]
fn https_and_bad_urls_are_config_errors() {
    let mut config = validator_config("127.0.0.1:5000".parse().unwrap(), "pw");
    config.url = "https://keystone.example:5000/v3".into();
    assert!(matches!(
        KeystoneValidator::new(config.clone()),
        Err(IdentityError::TlsUnsupported(_))
    ));
    config.url = "keystone:5000".into();
    assert!(matches!(
        KeystoneValidator::new(config),
        Err(IdentityError::InvalidUrl { .. })
    ));
}
