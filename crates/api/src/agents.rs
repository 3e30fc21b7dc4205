//! The host agents' side of the server: `/agent/v1` (reports, the change
//! feed, port binding and status, DHCP ports), authenticated with a shared
//! secret, and the admin's `GET /v2.0/agents` (Neutron's `agent` extension).
//! Agents are kept in memory: they report every few seconds, so after a
//! server restart the list refills within one report interval.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use neutrino_agent_rpc::{
    AgentReport, BindRequest, DhcpMode, DhcpPortRequest, FeedReply, FeedRequest,
    HostGatewayRequest, L3Mode, PortStatusReport, ReportReply,
};
use neutrino_engine::ops::agents as ops;
use neutrino_model::time::{format_utc, now_unix};
use neutrino_model::{ApiError, ApiResult, AuthContext, ErrorKind};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::{AppState, reply};

/// Longest a feed request is held when nothing changed.
const MAX_WAIT: Duration = Duration::from_secs(30);

struct Record {
    report: AgentReport,
    l2_id: String,
    dhcp_id: String,
    l3_id: String,
    created_at: i64,
    heartbeat_at: i64,
    seen: Instant,
    /// Its ports were marked DOWN when it went silent.
    marked_down: bool,
}

/// Registered agents, their VTEPs, and a version that changes whenever the
/// VTEP map does (so feeds learn of a new host at once).
pub struct AgentRegistry {
    agents: Mutex<BTreeMap<String, Record>>,
    version: watch::Sender<u64>,
    down_after: Duration,
    /// The shared secret agents present as `Authorization: Bearer …`.
    secret: String,
}

impl AgentRegistry {
    pub fn new(secret: String, down_after: Duration) -> AgentRegistry {
        // Starts from the clock so a restarted server never repeats a version
        // an agent already holds.
        let start = u64::try_from(now_unix()).unwrap_or(1);
        AgentRegistry {
            agents: Mutex::new(BTreeMap::new()),
            version: watch::channel(start).0,
            down_after,
            secret,
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Record>> {
        self.agents.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn version(&self) -> u64 {
        *self.version.borrow()
    }

    /// Records a heartbeat; returns whether the server may have stale port
    /// states for the host (it had marked it down, or has just met it).
    fn report(&self, r: AgentReport) -> bool {
        let now = now_unix();
        let mut agents = self.lock();
        let bump = match agents.get_mut(&r.host) {
            Some(rec) => {
                let vtep_changed = rec.report.tunnel_ip != r.tunnel_ip;
                let was_down = rec.marked_down;
                rec.report = r;
                rec.heartbeat_at = now;
                rec.seen = Instant::now();
                rec.marked_down = false;
                if vtep_changed {
                    self.version.send_modify(|v| *v += 1);
                }
                return was_down;
            }
            None => r.tunnel_ip.is_some(),
        };
        let new_id = || uuid::Uuid::new_v4().to_string();
        agents.insert(
            r.host.clone(),
            Record {
                report: r,
                l2_id: new_id(),
                dhcp_id: new_id(),
                l3_id: new_id(),
                created_at: now,
                heartbeat_at: now,
                seen: Instant::now(),
                marked_down: false,
            },
        );
        if bump {
            self.version.send_modify(|v| *v += 1);
        }
        true
    }

    /// host → tunnel IP of every registered agent that has one. Dead agents
    /// stay: their instances' entries must not flap with a heartbeat.
    pub fn vteps(&self) -> BTreeMap<String, String> {
        self.lock()
            .iter()
            .filter_map(|(h, r)| r.report.tunnel_ip.clone().map(|ip| (h.clone(), ip)))
            .collect()
    }

    /// Hosts that went silent and are not marked yet (marks them).
    fn newly_dead(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (host, r) in self.lock().iter_mut() {
            if !r.marked_down && r.seen.elapsed() > self.down_after {
                r.marked_down = true;
                out.push(host.clone());
            }
        }
        out
    }

    /// `GET /v2.0/agents` entries: an L2 agent per host, plus a DHCP agent
    /// where the host serves DHCP.
    fn views(&self) -> Vec<Value> {
        let agents = self.lock();
        let mut out = Vec::new();
        for (host, r) in agents.iter() {
            let alive = r.seen.elapsed() <= self.down_after;
            let common = |id: &str, agent_type: &str, binary: &str, topic: &str, conf: Value| {
                json!({
                    "id": id,
                    "agent_type": agent_type,
                    "binary": binary,
                    "topic": topic,
                    "host": host,
                    "admin_state_up": true,
                    "alive": alive,
                    "availability_zone": Value::Null,
                    "description": Value::Null,
                    "configurations": conf,
                    "created_at": format_utc(r.created_at),
                    "started_at": format_utc(i64::try_from(r.report.started_at).unwrap_or(0)),
                    "heartbeat_timestamp": format_utc(r.heartbeat_at),
                    "resources_synced": Value::Null,
                })
            };
            out.push(common(
                &r.l2_id,
                "Linux bridge agent",
                "neutrino-agent",
                "N/A",
                json!({
                    "tunnel_types": if r.report.tunnel_ip.is_some() { vec!["vxlan"] } else { vec![] },
                    "tunneling_ip": r.report.tunnel_ip,
                    "interface_mappings": r.report.physical_interface_mappings,
                    "l2_population": true,
                    "devices": r.report.counters.get("devices").copied().unwrap_or(0),
                }),
            ));
            if r.report.dhcp_mode != DhcpMode::Off {
                out.push(common(
                    &r.dhcp_id,
                    "DHCP agent",
                    "neutrino-agent",
                    "dhcp_agent",
                    json!({
                        "dhcp_driver": r.report.dhcp_driver,
                        "dhcp_mode": r.report.dhcp_mode,
                        "networks": r.report.counters.get("dhcp_networks").copied().unwrap_or(0),
                        "ports": r.report.counters.get("dhcp_ports").copied().unwrap_or(0),
                    }),
                ));
            }
            if r.report.l3_mode != L3Mode::Off {
                out.push(common(
                    &r.l3_id,
                    "L3 agent",
                    "neutrino-agent",
                    "l3_agent",
                    json!({
                        // Neutron's names: legacy (one node) and dvr (every host).
                        "agent_mode": if r.report.l3_mode == L3Mode::Local { "dvr" } else { "legacy" },
                        "routers": r.report.counters.get("routers").copied().unwrap_or(0),
                        "floating_ips": r.report.counters.get("floating_ips").copied().unwrap_or(0),
                    }),
                ));
            }
        }
        out
    }
}

/// Marks the ports of agents that went silent DOWN, every few seconds.
pub async fn watch_liveness(state: Arc<AppState>) {
    let period =
        (state.agents.down_after / 5).clamp(Duration::from_millis(200), Duration::from_secs(5));
    loop {
        tokio::time::sleep(period).await;
        for host in state.agents.newly_dead() {
            match ops::host_down(&state.engine, &host).await {
                Ok(n) => tracing::warn!(%host, ports = n, "agent is silent: its ports are DOWN"),
                Err(e) => tracing::error!(%host, error = %e, "cannot mark a dead agent's ports"),
            }
        }
    }
}

pub(crate) fn authorize(state: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or("");
    let want = state.agents.secret.as_bytes();
    // Compare without an early exit, so timing does not reveal the secret.
    let same = given.len() == want.len()
        && given
            .bytes()
            .zip(want)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if want.is_empty() || !same {
        return Err(ApiError::new(
            ErrorKind::Unauthorized,
            "HTTPUnauthorized",
            "The agent secret is missing or wrong.",
        ));
    }
    Ok(())
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Malformed request body: {e}")))
}

/// Every agent request names the host it speaks for.
trait FromHost {
    fn host(&self) -> &str;
}

macro_rules! from_host {
    ($($t:ty),*) => { $(impl FromHost for $t { fn host(&self) -> &str { &self.host } })* };
}
from_host!(
    AgentReport,
    FeedRequest,
    BindRequest,
    PortStatusReport,
    DhcpPortRequest,
    HostGatewayRequest
);

/// What every agent call starts with: the secret, a JSON body, a sane host name.
fn request<T: DeserializeOwned + FromHost>(
    state: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<T> {
    authorize(state, headers)?;
    let r: T = parse(body)?;
    check_host(r.host())?;
    Ok(r)
}

fn check_host(host: &str) -> ApiResult<()> {
    if host.is_empty()
        || host.len() > 255
        || host.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(ApiError::bad_request(format!("Invalid host name '{host}'")));
    }
    Ok(())
}

fn respond<T: serde::Serialize>(r: ApiResult<T>) -> Response {
    match r {
        Ok(v) => reply::json_bytes(200, serde_json::to_vec(&v).unwrap_or_default()),
        Err(e) => reply::error(&e),
    }
}

pub async fn report(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(
        async {
            let r: AgentReport = request(&state, &headers, &body)?;
            let host = r.host.clone();
            let resend = state.agents.report(r);
            if resend {
                tracing::info!(%host, "agent reporting (new, or back after it went silent)");
            }
            Ok(ReportReply {
                agents_version: state.agents.version(),
                resend_port_status: resend,
            })
        }
        .await,
    )
}

pub async fn feed(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    respond(feed_inner(&state, &headers, &body).await)
}

async fn feed_inner(state: &AppState, headers: &HeaderMap, body: &Bytes) -> ApiResult<FeedReply> {
    let req: FeedRequest = request(state, headers, body)?;
    let held: BTreeSet<String> = req.networks.iter().cloned().collect();
    let held_groups: BTreeSet<String> = req.groups.iter().cloned().collect();
    let held_routers: BTreeSet<String> = req.routers.iter().cloned().collect();
    let modes = neutrino_engine::host_feed::Modes {
        dhcp: req.dhcp_mode,
        l3: req.l3_mode,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_millis(req.wait_ms).min(MAX_WAIT);
    let mut revisions = state.engine.subscribe();
    let mut versions = state.agents.version.subscribe();
    let mut shutdown = state.shutdown.clone();
    let mut since = req.since;
    loop {
        revisions.borrow_and_update();
        versions.borrow_and_update();
        let (snap, changes) = state.engine.changes_since(since);
        let held_now = neutrino_engine::host_feed::Held {
            networks: &held,
            groups: &held_groups,
            routers: &held_routers,
        };
        let mut reply =
            neutrino_engine::host_feed::feed(&snap, changes, &req.host, modes, held_now);
        reply.agents_version = state.agents.version();
        // An empty snapshot to an agent that holds nothing tells it nothing.
        let nothing_new = reply.is_empty()
            || (reply.snapshot
                && reply.networks.is_empty()
                && reply.security_groups.is_empty()
                && reply.routers.is_empty()
                && held.is_empty()
                && held_groups.is_empty()
                && held_routers.is_empty());
        if !nothing_new
            || reply.agents_version != req.agents_version
            || tokio::time::Instant::now() >= deadline
            || *shutdown.borrow()
        {
            reply.vteps = state.agents.vteps();
            reply.dns_domain = state.engine.config().dns_domain.clone();
            return Ok(reply);
        }
        // Nothing for this host up to here: wait from this revision on.
        since = reply.revision;
        tokio::select! {
            _ = revisions.changed() => {}
            _ = versions.changed() => {}
            // A dropped sender (no shutdown wiring) must not end the wait.
            _ = async { if shutdown.changed().await.is_err() { std::future::pending::<()>().await } } => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// The shape of the simple agent calls: check the request, run `f`, answer
/// its result as JSON (or 204 when it has none).
async fn answer<T, R, F, Fut>(
    state: Arc<AppState>,
    headers: HeaderMap,
    body: Bytes,
    f: F,
) -> Response
where
    T: DeserializeOwned + FromHost,
    R: serde::Serialize,
    F: FnOnce(Arc<AppState>, T) -> Fut,
    Fut: std::future::Future<Output = ApiResult<Option<R>>>,
{
    let result = async {
        let r: T = request(&state, &headers, &body)?;
        f(state.clone(), r).await
    };
    match result.await {
        Ok(Some(v)) => reply::json_bytes(200, serde_json::to_vec(&v).unwrap_or_default()),
        Ok(None) => reply::no_content(),
        Err(e) => reply::error(&e),
    }
}

pub async fn bind(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    answer(state, headers, body, |s, r: BindRequest| async move {
        ops::bind(&s.engine, r.host, r.port_id).await.map(Some)
    })
    .await
}

pub async fn port_status(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(state, headers, body, |s, r: PortStatusReport| async move {
        let changed = ops::set_status(&s.engine, r.host, r.active, r.down).await?;
        Ok(Some(json!({ "changed": changed })))
    })
    .await
}

pub async fn dhcp_port(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(state, headers, body, |s, r: DhcpPortRequest| async move {
        ops::ensure_dhcp_port(&s.engine, r.host, r.network_id)
            .await
            .map(Some)
    })
    .await
}

pub async fn delete_dhcp_port(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(state, headers, body, |s, r: DhcpPortRequest| async move {
        ops::delete_dhcp_port(&s.engine, r.host, r.network_id).await?;
        Ok(None::<()>)
    })
    .await
}

pub async fn host_gateway(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(
        state,
        headers,
        body,
        |s, r: HostGatewayRequest| async move {
            ops::ensure_host_gateway(&s.engine, r.host, r.router_id)
                .await
                .map(Some)
        },
    )
    .await
}

pub async fn delete_host_gateway(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(
        state,
        headers,
        body,
        |s, r: HostGatewayRequest| async move {
            ops::delete_host_gateway(&s.engine, r.host, r.router_id).await?;
            Ok(None::<()>)
        },
    )
    .await
}

/// `GET /v2.0/agents[/ID]` with Neutron's simple equality filters. Agents
/// are admins' to see: others get the empty list and a 404, as Neutron's
/// policy filters them.
pub fn list(
    state: &AppState,
    ctx: &AuthContext,
    id: Option<&str>,
    query: &[(String, String)],
) -> ApiResult<Value> {
    if !ctx.is_admin() {
        return match id {
            Some(_) => Err(ApiError::hidden()),
            None => Ok(json!({ "agents": [] })),
        };
    }
    let views = state.agents.views();
    if let Some(id) = id {
        return views
            .into_iter()
            .find(|v| v["id"] == id)
            .map(|v| json!({ "agent": v }))
            .ok_or_else(|| {
                ApiError::not_found("AgentNotFound", format!("Agent {id} could not be found."))
            });
    }
    const FILTERS: [&str; 6] = ["id", "host", "agent_type", "binary", "alive", "topic"];
    for (k, _) in query {
        if !FILTERS.contains(&k.as_str()) && k != "fields" {
            return Err(ApiError::bad_request(format!(
                "{k} is an invalid filter for agents"
            )));
        }
    }
    let keep = |v: &Value| {
        FILTERS.iter().all(|f| {
            let wanted: Vec<&str> = query
                .iter()
                .filter(|(k, _)| k == f)
                .map(|(_, v)| v.as_str())
                .collect();
            wanted.is_empty()
                || wanted.iter().any(|w| match &v[*f] {
                    Value::Bool(b) => w.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
                    Value::String(s) => s == w,
                    _ => false,
                })
        })
    };
    Ok(json!({ "agents": views.into_iter().filter(keep).collect::<Vec<_>>() }))
}
