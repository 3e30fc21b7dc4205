//! In-process harness for the API tests: a fresh store, engine and builtin
//! identity per test, driven through the real router with `oneshot` (no
//! sockets). Tokens come from the router's own Keystone routes.
#![allow(dead_code)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use neutrino_api::{AppState, router};
use neutrino_engine::{Engine, EngineConfig};
use neutrino_identity::password::hash_password_with_iterations;
use neutrino_identity::{
    BuiltinConfig, BuiltinIdentity, Identity, ProjectConfig, UserConfig, stable_id,
};
use neutrino_store::SqliteStore;
use serde_json::{Value, json};
use tower::ServiceExt;

pub const AGENT_SECRET: &str = "test-agent-secret";
pub const PASSWORD: &str = "secret-pw";
/// Largest body the app under test accepts.
pub const MAX_BODY: usize = 1 << 20;

/// One app under test plus a token per user.
pub struct App {
    pub router: Router,
    dir: Arc<tempfile::TempDir>,
    pub admin: String,
    pub alice: String,
    pub bob: String,
    pub rita: String,
    pub project_admin: String,
    pub project_a: String,
    pub project_b: String,
}

/// A response: status, headers and the parsed JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub raw: Vec<u8>,
}

impl Resp {
    /// Asserts the status, returning the body (for chaining).
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            String::from_utf8_lossy(&self.raw)
        );
        &self.body
    }

    /// Asserts a NeutronError with this status and type (and its exact shape).
    #[track_caller]
    pub fn expect_error(&self, status: u16, error_type: &str) -> String {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            String::from_utf8_lossy(&self.raw)
        );
        assert_error_shape(self);
        let e = &self.body["NeutronError"];
        assert_eq!(
            e["type"], error_type,
            "unexpected error type; body: {}",
            self.body
        );
        e["message"].as_str().unwrap_or_default().to_string()
    }
}

/// Every error body is `{"NeutronError": {"type", "message", "detail": ""}}` as JSON.
#[track_caller]
pub fn assert_error_shape(r: &Resp) {
    let ct = r
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        ct.starts_with("application/json"),
        "error without JSON content type: {ct:?}"
    );
    let obj = r.body.as_object().unwrap_or_else(|| {
        panic!(
            "error body is not an object: {}",
            String::from_utf8_lossy(&r.raw)
        )
    });
    assert_eq!(obj.len(), 1, "error body has extra keys: {}", r.body);
    let e = obj["NeutronError"]
        .as_object()
        .unwrap_or_else(|| panic!("no NeutronError object: {}", r.body));
    let mut keys: Vec<&str> = e.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["detail", "message", "type"],
        "NeutronError keys: {}",
        r.body
    );
    assert!(
        e["type"].as_str().is_some_and(|t| !t.is_empty()),
        "type must be a non-empty string: {}",
        r.body
    );
    assert!(
        e["message"].as_str().is_some_and(|t| !t.is_empty()),
        "message must be a non-empty string: {}",
        r.body
    );
    assert_eq!(e["detail"], "", "detail must be empty: {}", r.body);
}

fn project(name: &str) -> ProjectConfig {
    ProjectConfig {
        name: name.into(),
        id: None,
        description: None,
    }
}

fn user(name: &str, project: &str, role: &str, hash: &str) -> UserConfig {
    UserConfig {
        name: name.into(),
        id: None,
        password_hash: hash.into(),
        project: project.into(),
        roles: vec![role.into()],
    }
}

impl App {
    pub async fn new() -> App {
        App::with_config(EngineConfig::default()).await
    }

    pub async fn with_config(config: EngineConfig) -> App {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        App::open(dir, config).await
    }

    /// A second server on this one's database, as after a restart: the
    /// model is rebuilt from the store alone.
    pub async fn reopen(&self) -> App {
        App::open(self.dir.clone(), EngineConfig::default()).await
    }

    async fn open(dir: Arc<tempfile::TempDir>, config: EngineConfig) -> App {
        let store = SqliteStore::open(&dir.path().join("db")).expect("open store");
        let engine = Engine::start(Box::new(store), config).expect("start engine");
        let hash = hash_password_with_iterations(PASSWORD, 1000);
        let cfg = BuiltinConfig {
            projects: vec![project("A"), project("B")],
            users: vec![
                user("alice", "A", "member", &hash),
                user("bob", "B", "member", &hash),
                user("rita", "A", "reader", &hash),
            ],
            ..BuiltinConfig::default()
        }
        .with_admin(hash.clone());
        let identity = BuiltinIdentity::new(
            cfg,
            [7; 32],
            "http://localhost/".into(),
            "http://localhost/v3".into(),
        )
        .expect("builtin identity");
        let state = AppState {
            engine,
            identity: Identity::Builtin(Arc::new(identity)),
            max_body_bytes: MAX_BODY,
            metrics: Default::default(),
            agents: neutrino_api::agents::AgentRegistry::new(
                AGENT_SECRET.into(),
                std::time::Duration::from_secs(2),
            ),
            metadata: neutrino_api::metadata::MetadataService::new(
                neutrino_metadata::Backend::Builtin,
            ),
            shutdown: tokio::sync::watch::channel(false).1,
        };
        let router = router(Arc::new(state));
        let mut app = App {
            router,
            dir,
            admin: String::new(),
            alice: String::new(),
            bob: String::new(),
            rita: String::new(),
            project_admin: stable_id("project", "admin"),
            project_a: stable_id("project", "A"),
            project_b: stable_id("project", "B"),
        };
        app.admin = app.login("admin", "admin").await;
        app.alice = app.login("alice", "A").await;
        app.bob = app.login("bob", "B").await;
        app.rita = app.login("rita", "A").await;
        app
    }

    /// A project-scoped token through `POST /v3/auth/tokens` (password method).
    pub async fn login(&self, user: &str, project: &str) -> String {
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"id": "default"}, "password": PASSWORD}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}});
        let r = self
            .send(
                Method::POST,
                "/v3/auth/tokens",
                None,
                Some(body.to_string().into_bytes()),
                &[],
            )
            .await;
        assert_eq!(
            r.status,
            201,
            "login {user}: {}",
            String::from_utf8_lossy(&r.raw)
        );
        r.headers
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .expect("X-Subject-Token")
            .to_string()
    }

    /// Sends one request; no request may ever produce a 5xx.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut b = Request::builder().method(method.clone()).uri(path);
        if let Some(t) = token {
            b = b.header("x-auth-token", t);
        }
        if body.is_some() {
            b = b.header("content-type", "application/json");
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b
            .body(body.map_or_else(Body::empty, Body::from))
            .expect("request");
        let resp = self
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("router is infallible");
        let status = resp.status();
        let headers = resp.headers().clone();
        // Every response, success or error, carries the request id the logs carry.
        let rid = headers
            .get("x-openstack-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(
            rid.starts_with("req-") && rid.len() == 40,
            "{method} {path}: bad or missing x-openstack-request-id {rid:?}"
        );
        let raw = resp
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        assert!(
            status < StatusCode::INTERNAL_SERVER_ERROR,
            "{method} {path} gave {status}: {}",
            String::from_utf8_lossy(&raw)
        );
        let body = if raw.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&raw).unwrap_or_else(|e| {
                panic!(
                    "{method} {path}: body is not JSON ({e}): {}",
                    String::from_utf8_lossy(&raw)
                )
            })
        };
        if status.as_u16() >= 400 {
            assert_error_shape(&Resp {
                status: status.as_u16(),
                headers: headers.clone(),
                body: body.clone(),
                raw: raw.clone(),
            });
        }
        Resp {
            status: status.as_u16(),
            headers,
            body,
            raw,
        }
    }

    pub async fn get(&self, token: &str, path: &str) -> Resp {
        self.send(Method::GET, path, Some(token), None, &[]).await
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> Resp {
        self.send(
            Method::POST,
            path,
            Some(token),
            Some(body.to_string().into_bytes()),
            &[],
        )
        .await
    }

    pub async fn put(&self, token: &str, path: &str, body: Value) -> Resp {
        self.send(
            Method::PUT,
            path,
            Some(token),
            Some(body.to_string().into_bytes()),
            &[],
        )
        .await
    }

    pub async fn delete(&self, token: &str, path: &str) -> Resp {
        self.send(Method::DELETE, path, Some(token), None, &[])
            .await
    }

    // ---- fixtures -------------------------------------------------------

    /// Creates a network (201 asserted) and returns it.
    pub async fn network(&self, token: &str, body: Value) -> Value {
        let r = self
            .post(token, "/v2.0/networks", json!({ "network": body }))
            .await;
        r.expect(201)["network"].clone()
    }

    pub async fn subnet(&self, token: &str, network_id: &str, cidr: &str, extra: Value) -> Value {
        let version = if cidr.contains(':') { 6 } else { 4 };
        let mut b = json!({"network_id": network_id, "cidr": cidr, "ip_version": version});
        if let (Some(m), Value::Object(e)) = (b.as_object_mut(), extra) {
            m.extend(e);
        }
        let r = self
            .post(token, "/v2.0/subnets", json!({ "subnet": b }))
            .await;
        r.expect(201)["subnet"].clone()
    }

    pub async fn port(&self, token: &str, network_id: &str, extra: Value) -> Value {
        let mut b = json!({"network_id": network_id});
        if let (Some(m), Value::Object(e)) = (b.as_object_mut(), extra) {
            m.extend(e);
        }
        let r = self.post(token, "/v2.0/ports", json!({ "port": b })).await;
        r.expect(201)["port"].clone()
    }

    /// An admin-owned external network named `public` with one subnet;
    /// returns (network id, subnet id).
    pub async fn external_network(&self, cidr: &str) -> (String, String) {
        let n = self
            .network(
                &self.admin,
                json!({"name": "public", "router:external": true}),
            )
            .await;
        let s = self.subnet(&self.admin, &id(&n), cidr, json!({})).await;
        (id(&n), id(&s))
    }

    /// A network with one IPv4 subnet; returns (network id, subnet id).
    pub async fn net_with_subnet(&self, token: &str, name: &str, cidr: &str) -> (String, String) {
        let n = self.network(token, json!({ "name": name })).await;
        let nid = id(&n);
        let s = self.subnet(token, &nid, cidr, json!({})).await;
        (nid, id(&s))
    }

    /// The ids in a list response under `key`.
    pub async fn list_ids(&self, token: &str, path: &str, key: &str) -> Vec<String> {
        let r = self.get(token, path).await;
        r.expect(200)[key]
            .as_array()
            .unwrap_or_else(|| panic!("no {key} list: {}", r.body))
            .iter()
            .map(id)
            .collect()
    }
}

pub fn id(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_string()
}

pub fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("list")
        .iter()
        .map(|v| v["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The `ip_address` values of a port.
pub fn ips(port: &Value) -> Vec<String> {
    port["fixed_ips"]
        .as_array()
        .expect("fixed_ips")
        .iter()
        .map(|f| f["ip_address"].as_str().unwrap_or_default().to_string())
        .collect()
}
