//! The agent's model loop: the feed brings this host's slice of the model;
//! on each change the loop computes what the host should have, settles the
//! host's DHCP ports with the server, passes the desired host to the host
//! step (`host`), which changes the kernel beside it, and hands new
//! reservations to the DHCP driver at once. Until the first feed reply
//! nothing is computed, so a starting agent never tears down what it has not
//! been told about; and since a pass with nothing to change writes nothing,
//! an agent restart leaves a converged host as it is: no packet is dropped.
//!
//! The DHCP driver serves a network from the endpoint the host step builds
//! (its namespace and the DHCP port's interface), so it is given only the
//! networks whose endpoint the host step has reported built
//! ([`crate::dhcp::DhcpEndpoints`]): a new network waits for the host step's
//! pass that creates its namespace, and is served when the host step says
//! so. Before the host step's first reading of the host the driver is not
//! called at all (after a restart it would otherwise stop what runs).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use neutrino_agent_rpc::{AgentReport, FeedReply, FeedRequest};
use neutrino_dataplane::Ownership;
use serde_json::json;
use tokio::sync::{mpsc, watch};

use crate::client::ServerClient;
use crate::config::AgentConfig;
use crate::desired::{Desired, Planner};
use crate::dhcp::{DhcpEndpoints, Driver};
use crate::host::HostStep;
use crate::metrics::{Shared, now_ms};
use crate::problem::{Backoff, Problem, Problems};
use crate::view::HostView;

/// How long the server may hold a feed request.
const FEED_WAIT_MS: u64 = 25_000;

/// Where the feed task resumes from: what the reconciler has applied.
#[derive(Debug, Clone, Default)]
struct Cursor {
    since: u64,
    networks: Vec<String>,
    groups: Vec<String>,
    routers: Vec<String>,
    agents_version: u64,
}

pub struct Agent {
    cfg: AgentConfig,
    client: ServerClient,
    view: HostView,
    driver: Driver,
    shared: Arc<Shared>,
    /// What does not converge here, each logged once.
    problems: Problems,
    /// When each failed request to the server or the DHCP driver is tried
    /// again.
    backoff: BTreeMap<Problem, Backoff>,
    /// What the last pass computed, reused until the view changes.
    desired: Option<Arc<Desired>>,
    planner: Planner,
    view_changed: bool,
    /// The DHCP driver has not seen the latest services yet.
    dhcp_dirty: bool,
    /// network id → why the DHCP driver could not serve it (retried).
    dhcp_failures: BTreeMap<String, String>,
    /// The DHCP endpoints the host step last found (None: it has not read
    /// the host yet).
    dhcp_endpoints: Option<Arc<DhcpEndpoints>>,
    /// The host step's input.
    to_host: watch::Sender<Option<Arc<Desired>>>,
    /// Routers that left this host whose per-host gateway port is to be
    /// given back (multi-host).
    drop_gateways: BTreeSet<String>,
}

impl Agent {
    pub fn new(
        cfg: AgentConfig,
        client: ServerClient,
        shared: Arc<Shared>,
        to_host: watch::Sender<Option<Arc<Desired>>>,
    ) -> Agent {
        let driver = Driver::from_config(&cfg);
        let _ = shared.dhcp.set(driver.metrics());
        Agent {
            driver,
            cfg,
            client,
            view: HostView::default(),
            shared,
            problems: Problems::default(),
            backoff: BTreeMap::new(),
            desired: None,
            planner: Planner::default(),
            view_changed: true,
            dhcp_dirty: true,
            dhcp_failures: BTreeMap::new(),
            dhcp_endpoints: None,
            to_host,
            drop_gateways: BTreeSet::new(),
        }
    }

    /// Records the outcome of an attempt: a failure is retried on its
    /// backoff, a success clears it.
    fn note(&mut self, p: Problem, error: Option<String>) {
        match &error {
            Some(_) => {
                let b = Backoff::failed(self.backoff.get(&p).copied(), Instant::now());
                self.backoff.insert(p.clone(), b);
            }
            None => {
                self.backoff.remove(&p);
            }
        }
        self.problems.note(p, error);
    }

    /// Whether a failed attempt at `p` may be made again now (true for
    /// what has not failed).
    fn due(&self, p: &Problem) -> bool {
        self.backoff.get(p).is_none_or(|b| b.due(Instant::now()))
    }

    /// Whether some failed attempt is due for a retry.
    fn retry_due(&self, kind: impl Fn(&Problem) -> bool) -> bool {
        let now = Instant::now();
        self.backoff.iter().any(|(p, b)| kind(p) && b.due(now))
    }

    /// Asks the server for missing DHCP ports and gives back unneeded ones;
    /// returns whether the view changed.
    async fn settle_dhcp_ports(&mut self, d: &Desired) -> bool {
        let host = self.cfg.agent.host.clone();
        let mut changed = false;
        for net in &d.need_dhcp_port {
            let problem = Problem::DhcpPort(net.clone());
            if !self.due(&problem) {
                continue;
            }
            match self.client.ensure_dhcp_port(&host, net).await {
                Ok(p) => {
                    self.note(problem, None);
                    // The feed brings it too; taking it now saves a round.
                    changed |= self.view.upsert_port(p);
                }
                Err(e) => self.note(problem, Some(e.to_string())),
            }
        }
        for net in &d.drop_dhcp_port {
            let problem = Problem::DhcpPort(net.clone());
            if !self.due(&problem) {
                continue;
            }
            match self.client.delete_dhcp_port(&host, net).await {
                Ok(()) => {
                    let mine: Vec<String> = self
                        .view
                        .ports_of(net)
                        .filter(|p| p.is_dhcp() && p.host == host)
                        .map(|p| p.id.clone())
                        .collect();
                    for id in mine {
                        changed |= self.view.remove_port(&id);
                    }
                    self.note(problem, None);
                }
                Err(e) => self.note(problem, Some(e.to_string())),
            }
        }
        changed
    }

    /// Asks for this host's gateway port of each router that lacks one, and
    /// gives back those of routers that left (multi-host mode).
    async fn settle_host_gateways(&mut self, d: &Desired) {
        let host = self.cfg.agent.host.clone();
        for r in &d.need_host_gateway {
            let problem = Problem::HostGateway(r.clone());
            if !self.due(&problem) {
                continue;
            }
            let result = self.client.ensure_host_gateway(&host, r).await;
            // The feed brings the router again with its gateway leg.
            self.note(problem, result.err().map(|e| e.to_string()));
        }
        for p in &d.need_bind {
            let problem = Problem::Binding(p.clone());
            if !self.due(&problem) {
                continue;
            }
            let result = self.client.bind(&host, p).await;
            self.note(problem, result.err().map(|e| e.to_string()));
        }
        for r in std::mem::take(&mut self.drop_gateways) {
            let problem = Problem::HostGateway(r.clone());
            if !self.due(&problem) {
                self.drop_gateways.insert(r);
                continue;
            }
            match self.client.delete_host_gateway(&host, &r).await {
                Ok(()) => self.note(problem, None),
                Err(e) => {
                    self.note(problem, Some(e.to_string()));
                    self.drop_gateways.insert(r);
                }
            }
        }
    }

    /// Drops problems about what is no longer wanted (a network that left,
    /// a DHCP port no longer missing), so they neither show nor cause retries.
    fn forget_stale_problems(&mut self, d: &Desired) {
        let failures = &self.dhcp_failures;
        let drop_gateways = &self.drop_gateways;
        let wanted = |p: &Problem| match p {
            Problem::HostGateway(r) => d.need_host_gateway.contains(r) || drop_gateways.contains(r),
            Problem::Binding(p) => d.need_bind.contains(p),
            Problem::DhcpPort(net) => {
                d.need_dhcp_port.contains(net) || d.drop_dhcp_port.contains(net)
            }
            Problem::DhcpDriver(net) => failures.contains_key(net),
            Problem::Network(net) => d.problems.contains_key(net),
            // The host step's own.
            Problem::Router(_) | Problem::Metadata(_) | Problem::Firewall | Problem::Host(_) => {
                false
            }
        };
        self.problems.retain(wanted);
        self.backoff.retain(|p, _| wanted(p));
    }

    /// Hands the driver every DHCP service whose endpoint the host step has
    /// built; the others are served once it reports them (no failure: they
    /// wait for the host step, which names what it cannot build).
    async fn sync_dhcp(&mut self, desired: &Desired) {
        let Some(built) = &self.dhcp_endpoints else {
            // Not before the host step's first reading: the driver would stop
            // what runs. It stays dirty until then.
            return;
        };
        let servable = crate::dhcp::servable(&desired.dhcp, built);
        self.dhcp_failures = self.driver.sync(&servable).await;
        self.dhcp_dirty = false;
        for net in desired.dhcp.keys() {
            let failure = self.dhcp_failures.get(net).cloned();
            self.note(Problem::DhcpDriver(net.clone()), failure);
        }
    }

    /// One pass of the model loop.
    pub async fn pass(&mut self) {
        if !self.view.initialized {
            return;
        }
        let mut desired = match self.desired.take() {
            Some(d) if !self.view_changed => d,
            _ => {
                self.dhcp_dirty = true;
                Arc::new(self.planner.compute(&self.view, &self.cfg))
            }
        };
        self.view_changed = false;
        if (!desired.need_dhcp_port.is_empty() || !desired.drop_dhcp_port.is_empty())
            && self.settle_dhcp_ports(&desired).await
        {
            desired = Arc::new(self.planner.compute(&self.view, &self.cfg));
            self.dhcp_dirty = true;
        }
        if !desired.need_host_gateway.is_empty()
            || !desired.need_bind.is_empty()
            || !self.drop_gateways.is_empty()
        {
            self.settle_host_gateways(&desired).await;
        }
        let fresh = self
            .desired
            .as_ref()
            .is_none_or(|d| !Arc::ptr_eq(d, &desired));
        self.desired = Some(desired.clone());
        if fresh {
            for (net, why) in &desired.problems {
                // Not retried: it changes with the model only.
                self.problems
                    .note(Problem::Network(net.clone()), Some(why.clone()));
            }
            // The host step picks it up beside us.
            self.to_host.send_replace(Some(desired.clone()));
        }
        // New reservations take effect now, whatever the host step is doing;
        // a network whose endpoint is not built yet is left for the host
        // step, whose report of it brings the next DHCP sync.
        let dhcp_work = self.dhcp_dirty || self.retry_due(|p| matches!(p, Problem::DhcpDriver(_)));
        if dhcp_work {
            self.sync_dhcp(&desired).await;
        }
        self.forget_stale_problems(&desired);
        self.shared.model_problems.store(self.problems.snapshot());
        if fresh || dhcp_work {
            self.publish_status(&desired);
        }
    }

    fn publish_status(&self, desired: &Desired) {
        let m = &self.shared.metrics;
        m.networks
            .store(desired.host.bridges.len() as u64, Ordering::Relaxed);
        m.dhcp_networks
            .store(desired.dhcp.len() as u64, Ordering::Relaxed);
        m.routers
            .store(desired.routers.len() as u64, Ordering::Relaxed);
        m.floating_ips.store(
            desired
                .routers
                .values()
                .map(|r| r.nat.floating_ips.len() as u64)
                .sum(),
            Ordering::Relaxed,
        );
        m.dhcp_reservations.store(
            desired.dhcp.values().map(|s| s.hosts.len() as u64).sum(),
            Ordering::Relaxed,
        );
        let networks: Vec<_> = self
            .view
            .networks()
            .map(|n| {
                json!({
                    "id": n.id, "name": n.name, "type": n.network_type,
                    "segmentation_id": n.segmentation_id, "mtu": n.mtu,
                    "bridge": neutrino_net::names::bridge(&n.id),
                    "problem": desired.problems.get(&n.id),
                })
            })
            .collect();
        self.shared.status.store(Arc::new(json!({
            "host": self.cfg.agent.host,
            "revision": self.view.revision,
            "networks": networks,
            "dhcp": {"mode": self.cfg.dhcp.mode, "driver": self.driver.name(), "networks": self.driver.status()},
            "vteps": self.view.vteps,
            "routers": desired.routers.iter().map(|(id, r)| (id.clone(), json!({
                "namespace": r.namespace,
                "gateway": r.nat.gateway_interface,
                "snat": r.nat.snat_address,
                "floating_ips": r.nat.floating_ips.iter().map(|(f, x)| format!("{f} -> {x}")).collect::<Vec<_>>(),
            }))).collect::<serde_json::Map<String, serde_json::Value>>(),
        })));
    }

    fn apply_feed(&mut self, reply: FeedReply) -> bool {
        let m = &self.shared.metrics;
        if reply.snapshot {
            m.feed_snapshots.fetch_add(1, Ordering::Relaxed);
        } else {
            m.feed_deltas.fetch_add(1, Ordering::Relaxed);
        }
        m.last_feed_unix_ms.store(now_ms(), Ordering::Relaxed);
        if self.cfg.l3.mode == neutrino_agent_rpc::L3Mode::Local {
            self.drop_gateways
                .extend(reply.deleted_routers.iter().cloned());
        }
        let changed = self.view.apply(reply);
        self.view_changed |= changed;
        m.revision.store(self.view.revision, Ordering::Relaxed);
        changed
    }

    fn cursor(&self) -> Cursor {
        Cursor {
            since: self.view.revision,
            networks: self.view.held_networks(),
            groups: self.view.held_groups(),
            routers: self.view.held_routers(),
            agents_version: self.view.agents_version,
        }
    }
}

/// Runs on its own thread (in the agent's namespace): notifies on changes to
/// links the agent cares about.
fn watch_links(notify: &tokio::sync::Notify, physical: &[String]) {
    let mut events = match neutrino_dataplane::watch::LinkEvents::open() {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "no link events: relying on periodic resync");
            return;
        }
    };
    let ours = |n: &str| neutrino_net::names::is_watched_link(n) || physical.iter().any(|p| p == n);
    loop {
        match events.wait() {
            // None: events were lost; assume anything changed.
            Ok(None) => notify.notify_one(),
            Ok(Some(names)) if names.iter().any(|n| ours(n)) => notify.notify_one(),
            Ok(Some(_)) => {}
            Err(e) => {
                tracing::warn!(error = %e, "link events failed: relying on periodic resync");
                return;
            }
        }
    }
}

fn report_body(cfg: &AgentConfig, shared: &Shared, started_at: u64) -> AgentReport {
    let m = &shared.metrics;
    let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    AgentReport {
        host: cfg.agent.host.clone(),
        tunnel_ip: cfg.l2.tunnel_ip.map(|ip| ip.to_string()),
        dhcp_mode: cfg.dhcp.mode,
        l3_mode: cfg.l3.mode,
        dhcp_driver: cfg.dhcp.driver.to_string(),
        physical_interface_mappings: cfg.l2.physical_interface_mappings.clone(),
        counters: BTreeMap::from([
            ("devices".to_string(), g(&m.ports_active) + g(&m.ports_down)),
            ("dhcp_networks".to_string(), g(&m.dhcp_networks)),
            ("dhcp_ports".to_string(), g(&m.dhcp_reservations)),
            ("routers".to_string(), g(&m.routers)),
            ("floating_ips".to_string(), g(&m.floating_ips)),
        ]),
        started_at,
    }
}

/// Heartbeats every `report_interval_secs`; the receiver fires when every
/// port's state must be told again (the server restarted, marked this host
/// down, or was unreachable).
fn spawn_heartbeat(
    client: ServerClient,
    cfg: AgentConfig,
    shared: Arc<Shared>,
    started_at: u64,
) -> watch::Receiver<()> {
    let (force_status_tx, force_status_rx) = watch::channel(());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(cfg.agent.report_interval_secs));
        let mut failing = false;
        loop {
            tick.tick().await;
            match client.report(&report_body(&cfg, &shared, started_at)).await {
                Ok(reply) => {
                    if failing {
                        tracing::info!("server reachable again");
                    }
                    // The server restarted or marked this host down while it
                    // was unreachable: tell it every port's state again.
                    if reply.resend_port_status || failing {
                        let _ = force_status_tx.send(());
                    }
                    failing = false;
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "cannot report to the server");
                    }
                    failing = true;
                }
            }
        }
    });
    force_status_rx
}

/// The feed: strictly alternating with the model loop, which moves the
/// cursor after applying each reply.
fn spawn_feed(
    client: ServerClient,
    cfg: AgentConfig,
    shared: Arc<Shared>,
) -> (watch::Sender<Cursor>, mpsc::Receiver<FeedReply>) {
    let (cursor_tx, mut cursor_rx) = watch::channel(Cursor::default());
    let (reply_tx, reply_rx) = mpsc::channel::<FeedReply>(1);
    tokio::spawn(async move {
        let mut failing = false;
        loop {
            let c = cursor_rx.borrow_and_update().clone();
            let req = FeedRequest {
                host: cfg.agent.host.clone(),
                since: c.since,
                networks: c.networks,
                dhcp_mode: cfg.dhcp.mode,
                agents_version: c.agents_version,
                wait_ms: FEED_WAIT_MS,
                groups: c.groups,
                l3_mode: cfg.l3.mode,
                routers: c.routers,
            };
            match client.feed(&req).await {
                Ok(reply) => {
                    failing = false;
                    if reply_tx.send(reply).await.is_err() {
                        return;
                    }
                    if cursor_rx.changed().await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    shared.metrics.feed_errors.fetch_add(1, Ordering::Relaxed);
                    if !failing {
                        tracing::warn!(error = %e, "feed unavailable; the host is left as it is");
                    }
                    failing = true;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
    (cursor_tx, reply_rx)
}

/// Link events wake the host step at once (a hypervisor plugged a tap); its
/// timer is only the safety net.
fn spawn_link_watch(cfg: &AgentConfig) -> anyhow::Result<Arc<tokio::sync::Notify>> {
    let link_changed = Arc::new(tokio::sync::Notify::new());
    let notify = link_changed.clone();
    let physical: Vec<String> = cfg
        .l2
        .physical_interface_mappings
        .values()
        .cloned()
        .collect();
    std::thread::Builder::new()
        .name("link-events".into())
        .spawn(move || watch_links(&notify, &physical))
        .context("cannot start the link watcher")?;
    Ok(link_changed)
}

/// Runs the agent until `stop` resolves.
pub async fn run(
    cfg: AgentConfig,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let secret = cfg.secret()?;
    let client = ServerClient::new(&cfg.agent.server_url, &secret);
    let shared = Shared::new();
    if !cfg.agent.metrics_listen.is_empty() {
        let listener = tokio::net::TcpListener::bind(&cfg.agent.metrics_listen)
            .await
            .with_context(|| {
                format!(
                    "agent.metrics_listen: cannot listen on {}",
                    cfg.agent.metrics_listen
                )
            })?;
        let app = crate::metrics::router(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
    }
    let started_at = now_ms() / 1000;

    let force_status_rx = spawn_heartbeat(client.clone(), cfg.clone(), shared.clone(), started_at);
    let (cursor_tx, mut reply_rx) = spawn_feed(client.clone(), cfg.clone(), shared.clone());
    let link_changed = spawn_link_watch(&cfg)?;
    let (to_host, from_model) = watch::channel(None);
    let (endpoints_tx, mut endpoints) = watch::channel(None);
    let host_step = HostStep::new(
        cfg.agent.host.clone(),
        Ownership {
            namespace_prefix: cfg.agent.namespace_prefix.clone(),
        },
        client.clone(),
        shared.clone(),
        Duration::from_millis(cfg.agent.resync_interval_ms.max(50)),
        cfg.firewall
            .enabled
            .then(|| crate::firewall::Firewall::new(cfg.firewall.allow_same_net_traffic)),
        crate::l3::L3Worker::new(cfg.l3.clone()),
    );
    tokio::spawn(host_step.run(
        from_model,
        link_changed.clone(),
        force_status_rx,
        endpoints_tx,
    ));

    let mut agent = Agent::new(cfg.clone(), client, shared.clone(), to_host);
    // Retries what failed (DHCP ports, DHCP endpoints, gateways), each on
    // its own backoff, even when nothing else happens.
    let mut retry = tokio::time::interval(Backoff::FIRST);
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(host = %cfg.agent.host, server = %cfg.agent.server_url, dhcp = ?cfg.dhcp.mode, driver = %cfg.dhcp.driver, "neutrino agent started");
    tokio::pin!(stop);
    loop {
        let run_pass = tokio::select! {
            Some(reply) = reply_rx.recv() => {
                let changed = agent.apply_feed(reply);
                let _ = cursor_tx.send(agent.cursor());
                changed
            }
            // The host step found other DHCP endpoints: a network may be
            // servable now (or no longer).
            Ok(()) = endpoints.changed() => {
                agent.dhcp_endpoints = endpoints.borrow_and_update().clone();
                agent.dhcp_dirty = true;
                true
            }
            _ = retry.tick() => {
                if agent.driver.needs_sync()
                    || agent.retry_due(|p| matches!(p, Problem::DhcpDriver(_)))
                {
                    agent.dhcp_dirty = true;
                }
                agent.dhcp_dirty || agent.retry_due(|_| true)
            }
            _ = &mut stop => break,
        };
        if run_pass {
            agent.view_changed |= agent.retry_due(|p| matches!(p, Problem::DhcpPort(_)));
            agent.pass().await;
        }
    }
    agent.driver.shutdown().await;
    tracing::info!("neutrino agent stopped");
    Ok(())
}
