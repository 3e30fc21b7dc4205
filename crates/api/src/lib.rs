//! The HTTP face of Neutrino: the OpenStack Networking API v2.0 (and, in
//! builtin identity mode, the Keystone v3 subset) on one axum router.
//! A request goes: `request_id` middleware → `dispatch` (auth, routing by
//! path) → a handler in `resources` → the engine → a JSON response.

pub mod agents;
mod dispatch;
mod extensions;
pub mod metadata;
mod reply;
mod resources;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{any, post};
use neutrino_engine::Engine;
use neutrino_identity::Identity;

/// Everything a request handler needs.
pub struct AppState {
    pub engine: Engine,
    pub identity: Identity,
    /// Largest request body accepted (bytes).
    pub max_body_bytes: usize,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
    /// Host agents and the secret they authenticate with.
    pub agents: agents::AgentRegistry,
    /// The metadata service's backend and counters.
    pub metadata: metadata::MetadataService,
    /// Turns true when the server stops, so long polls return at once.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

#[derive(Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    pub errors_4xx: AtomicU64,
    pub errors_5xx: AtomicU64,
}

/// The full router: Neutron API, versions, metrics and (builtin mode) Keystone.
pub fn router(state: Arc<AppState>) -> Router {
    let mut r = Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .route("/agent/v1/report", post(agents::report))
        .route("/agent/v1/feed", post(agents::feed))
        .route("/agent/v1/bind", post(agents::bind))
        .route("/agent/v1/port-status", post(agents::port_status))
        .route(
            "/agent/v1/dhcp-port",
            post(agents::dhcp_port).delete(agents::delete_dhcp_port),
        )
        .route(
            "/agent/v1/host-gateway",
            post(agents::host_gateway).delete(agents::delete_host_gateway),
        )
        .route("/agent/v1/metadata", any(metadata::relay))
        .route("/agent/v1/metadata/", any(metadata::relay))
        .route("/agent/v1/metadata/{*path}", any(metadata::relay))
        .fallback(dispatch::dispatch)
        .with_state(state.clone());
    if let Some(k) = state.identity.router() {
        r = k.merge(r);
    }
    r.layer(middleware::from_fn_with_state(state, request_id))
}

/// Gives every request an `x-openstack-request-id`, logs it with the outcome,
/// and counts it.
async fn request_id(
    State(state): State<Arc<AppState>>,
    req: Request<Body>,
    next: Next,
) -> Response {
    let id = format!("req-{}", uuid::Uuid::new_v4());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let span = tracing::info_span!("request", request_id = %id);
    let start = std::time::Instant::now();
    let mut resp = tracing::Instrument::instrument(next.run(req), span.clone()).await;
    let status = resp.status().as_u16();
    state.metrics.requests.fetch_add(1, Ordering::Relaxed);
    if status >= 500 {
        state.metrics.errors_5xx.fetch_add(1, Ordering::Relaxed);
    } else if status >= 400 {
        state.metrics.errors_4xx.fetch_add(1, Ordering::Relaxed);
    }
    span.in_scope(|| {
        tracing::info!(%method, %path, status, elapsed_ms = start.elapsed().as_secs_f64() * 1000.0, "handled")
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-openstack-request-id", v);
    }
    resp
}

async fn metrics(State(state): State<Arc<AppState>>) -> String {
    let m = &state.metrics;
    let snap = state.engine.snapshot();
    let mut out = format!(
        "# TYPE neutrino_api_requests_total counter\nneutrino_api_requests_total {}\n\
         # TYPE neutrino_api_errors_total counter\nneutrino_api_errors_total{{class=\"4xx\"}} {}\nneutrino_api_errors_total{{class=\"5xx\"}} {}\n\
         # TYPE neutrino_revision gauge\nneutrino_revision {}\n\
         # TYPE neutrino_resources gauge\nneutrino_resources{{kind=\"network\"}} {}\nneutrino_resources{{kind=\"subnet\"}} {}\nneutrino_resources{{kind=\"port\"}} {}\n",
        m.requests.load(Ordering::Relaxed),
        m.errors_4xx.load(Ordering::Relaxed),
        m.errors_5xx.load(Ordering::Relaxed),
        snap.revision,
        snap.networks.len(),
        snap.subnets.len(),
        snap.ports.len(),
    );
    state.metadata.render_metrics(&mut out);
    out
}
