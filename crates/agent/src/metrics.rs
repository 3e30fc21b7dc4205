//! The agent's counters, `/metrics` (Prometheus text) and `/status` (JSON
//! of what it manages), served on `agent.metrics_listen`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};

use crate::problem::{Noted, Problem};

#[derive(Default)]
pub struct AgentMetrics {
    pub passes: AtomicU64,
    pub pass_micros_total: AtomicU64,
    pub last_pass_micros: AtomicU64,
    pub netlink_ops: AtomicU64,
    pub errors: AtomicU64,
    pub feed_snapshots: AtomicU64,
    pub feed_deltas: AtomicU64,
    pub feed_errors: AtomicU64,
    pub revision: AtomicU64,
    pub last_feed_unix_ms: AtomicU64,
    pub ports_active: AtomicU64,
    pub ports_down: AtomicU64,
    pub networks: AtomicU64,
    pub dhcp_networks: AtomicU64,
    pub dhcp_reservations: AtomicU64,
    pub firewall_syncs: AtomicU64,
    pub firewall_commands: AtomicU64,
    pub firewall_elements: AtomicU64,
    pub firewall_chains_written: AtomicU64,
    pub firewall_ports: AtomicU64,
    pub routers: AtomicU64,
    pub floating_ips: AtomicU64,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// What `/metrics` and `/status` read: counters, the latest status document
/// and the DHCP driver's own metrics text (rendered by the reconciler).
pub struct Shared {
    pub metrics: AgentMetrics,
    /// The model loop's part of `/status`.
    pub status: ArcSwap<Value>,
    /// The host step's part: the ports on this host and its last pass.
    pub ports: ArcSwap<Value>,
    /// The DHCP driver's counters (set once the driver exists).
    pub dhcp: std::sync::OnceLock<Arc<dyn crate::dhcp::MetricsSource>>,
    /// The metadata listeners' counters.
    pub metadata: Arc<crate::metadata::MetadataStats>,
    /// The metadata listeners open, for `/status`.
    pub metadata_status: ArcSwap<Value>,
    /// What the model loop cannot settle (DHCP ports, gateways, bindings,
    /// the DHCP driver, unwireable networks).
    pub model_problems: ArcSwap<Vec<Noted>>,
    /// What the host step cannot apply (links, namespaces, firewall, NAT).
    pub host_problems: ArcSwap<Vec<Noted>>,
}

impl Shared {
    pub fn new() -> Arc<Shared> {
        Arc::new(Shared {
            metrics: AgentMetrics::default(),
            status: ArcSwap::from_pointee(Value::Null),
            ports: ArcSwap::from_pointee(Value::Null),
            dhcp: std::sync::OnceLock::new(),
            metadata: Default::default(),
            metadata_status: ArcSwap::from_pointee(Value::Null),
            model_problems: ArcSwap::from_pointee(Vec::new()),
            host_problems: ArcSwap::from_pointee(Vec::new()),
        })
    }

    /// Every current problem, the model loop's first.
    pub fn problems(&self) -> Vec<Noted> {
        let (a, b) = (self.model_problems.load(), self.host_problems.load());
        a.iter().chain(b.iter()).cloned().collect()
    }

    /// `/status`: the model loop's document with the host step's ports,
    /// and every problem with its age in seconds.
    pub fn status_document(&self) -> Value {
        let mut doc = (**self.status.load()).clone();
        if let (Value::Object(d), Value::Object(p)) = (&mut doc, &**self.ports.load()) {
            for (k, v) in p {
                d.insert(k.clone(), v.clone());
            }
        }
        if let Value::Object(d) = &mut doc {
            let now = now_ms();
            let problems: Vec<Value> = self
                .problems()
                .into_iter()
                .map(|n| {
                    json!({
                        "kind": n.kind,
                        "id": n.id,
                        "message": n.message,
                        "age_secs": now.saturating_sub(n.since_unix_ms) / 1000,
                    })
                })
                .collect();
            d.insert("problems".into(), Value::Array(problems));
            d.insert(
                "metadata_listeners".into(),
                (**self.metadata_status.load()).clone(),
            );
        }
        doc
    }

    pub fn render(&self) -> String {
        let m = &self.metrics;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed).to_string();
        let secs = |micros: u64| format!("{:.6}", micros as f64 / 1e6);
        let last = m.last_feed_unix_ms.load(Ordering::Relaxed);
        let lag = if last == 0 {
            -1.0
        } else {
            now_ms().saturating_sub(last) as f64 / 1000.0
        };
        let mut out = String::new();
        let mut metric = |kind: &str, name: &str, help: &str, samples: &[(&str, String)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        metric(
            "counter",
            "neutrino_agent_reconcile_passes_total",
            "Host passes run.",
            &[("", g(&m.passes))],
        );
        metric(
            "counter",
            "neutrino_agent_reconcile_seconds_total",
            "Time spent in host passes.",
            &[("", secs(m.pass_micros_total.load(Ordering::Relaxed)))],
        );
        metric(
            "gauge",
            "neutrino_agent_reconcile_last_seconds",
            "Duration of the last host pass.",
            &[("", secs(m.last_pass_micros.load(Ordering::Relaxed)))],
        );
        metric(
            "counter",
            "neutrino_agent_netlink_ops_total",
            "Netlink operations applied.",
            &[("", g(&m.netlink_ops))],
        );
        metric(
            "counter",
            "neutrino_agent_reconcile_errors_total",
            "Host passes that left something failing.",
            &[("", g(&m.errors))],
        );
        let problems = self.problems();
        let by_kind: Vec<(String, String)> = Problem::KINDS
            .iter()
            .map(|k| {
                let n = problems.iter().filter(|p| p.kind == *k).count();
                (format!("{{kind=\"{k}\"}}"), n.to_string())
            })
            .collect();
        let by_kind: Vec<(&str, String)> = by_kind
            .iter()
            .map(|(l, v)| (l.as_str(), v.clone()))
            .collect();
        metric(
            "gauge",
            "neutrino_agent_problems",
            "Objects that do not converge on this host, by kind.",
            &by_kind,
        );
        metric(
            "counter",
            "neutrino_agent_feed_replies_total",
            "Feed replies applied.",
            &[
                ("{kind=\"snapshot\"}", g(&m.feed_snapshots)),
                ("{kind=\"delta\"}", g(&m.feed_deltas)),
            ],
        );
        metric(
            "counter",
            "neutrino_agent_firewall_transactions_total",
            "nftables transactions applied.",
            &[("", g(&m.firewall_syncs))],
        );
        metric(
            "counter",
            "neutrino_agent_firewall_commands_total",
            "nft commands applied.",
            &[("", g(&m.firewall_commands))],
        );
        metric(
            "counter",
            "neutrino_agent_firewall_elements_total",
            "Set and map elements added or deleted.",
            &[("", g(&m.firewall_elements))],
        );
        metric(
            "counter",
            "neutrino_agent_firewall_chains_written_total",
            "Chains whose rules were written.",
            &[("", g(&m.firewall_chains_written))],
        );
        metric(
            "gauge",
            "neutrino_agent_firewall_ports",
            "Local ports filtered (port security on).",
            &[("", g(&m.firewall_ports))],
        );
        metric(
            "gauge",
            "neutrino_agent_routers",
            "Routers run on this host.",
            &[("", g(&m.routers))],
        );
        metric(
            "gauge",
            "neutrino_agent_floating_ips",
            "Floating IPs translated on this host.",
            &[("", g(&m.floating_ips))],
        );
        metric(
            "counter",
            "neutrino_agent_feed_errors_total",
            "Feed requests that failed.",
            &[("", g(&m.feed_errors))],
        );
        metric(
            "gauge",
            "neutrino_agent_feed_revision",
            "Server revision applied.",
            &[("", g(&m.revision))],
        );
        metric(
            "gauge",
            "neutrino_agent_feed_lag_seconds",
            "Seconds since the server last answered the feed (long polls answer at least every 25 s; -1 before the first).",
            &[("", format!("{lag:.3}"))],
        );
        metric(
            "gauge",
            "neutrino_agent_networks",
            "Networks wired on this host.",
            &[("", g(&m.networks))],
        );
        metric(
            "gauge",
            "neutrino_agent_ports",
            "Ports bound to this host, by state.",
            &[
                ("{state=\"active\"}", g(&m.ports_active)),
                ("{state=\"down\"}", g(&m.ports_down)),
            ],
        );
        metric(
            "gauge",
            "neutrino_agent_dhcp_networks",
            "Networks this host serves DHCP on.",
            &[("", g(&m.dhcp_networks))],
        );
        metric(
            "gauge",
            "neutrino_agent_dhcp_reservations",
            "DHCP reservations served.",
            &[("", g(&m.dhcp_reservations))],
        );
        if let Some(dhcp) = self.dhcp.get() {
            dhcp.render(&mut out);
        }
        self.metadata.render(&mut out);
        out
    }
}

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(s): State<Arc<Shared>>| async move { s.render() }),
        )
        .route(
            "/status",
            get(|State(s): State<Arc<Shared>>| async move { axum::Json(s.status_document()) }),
        )
        .with_state(shared)
}
