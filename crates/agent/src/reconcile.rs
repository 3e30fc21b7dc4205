//! The agent's loop: the feed brings this host's slice of the model, each
//! pass computes what the host should have, compares it with what the kernel
//! has and applies only the difference, then reports which ports are wired.
//! A pass with nothing to change issues no netlink write at all, so an agent
//! restart (which starts from a fresh snapshot) leaves a converged host as
//! it is: no packet is dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use neutrino_agent_rpc::{AgentReport, FeedReply, FeedRequest, PortStatusReport};
use neutrino_dataplane::{Host, ObservedHost, Ownership, plan};
use serde_json::json;
use tokio::sync::{mpsc, watch};

use crate::client::ServerClient;
use crate::config::AgentConfig;
use crate::desired::{Desired, compute};
use crate::dhcp::Driver;
use crate::metrics::{Shared, now_ms};
use crate::view::HostView;

/// How long the server may hold a feed request.
const FEED_WAIT_MS: u64 = 25_000;

/// Where the feed task resumes from: what the reconciler has applied.
#[derive(Debug, Clone, Default)]
struct Cursor {
    since: u64,
    networks: Vec<String>,
    agents_version: u64,
}

pub struct Agent {
    cfg: AgentConfig,
    client: ServerClient,
    view: HostView,
    driver: Driver,
    own: Ownership,
    shared: Arc<Shared>,
    /// port id → ACTIVE as last told to the server.
    reported: BTreeMap<String, bool>,
    /// network id → the last error logged for it (each logged once).
    errors: BTreeMap<String, String>,
    /// What the last pass computed, reused until the view changes.
    desired: Option<Arc<Desired>>,
    view_changed: bool,
    /// The DHCP driver has not seen the latest services yet.
    dhcp_dirty: bool,
    /// network id → why the DHCP driver could not serve it (retried each pass).
    dhcp_failures: BTreeMap<String, String>,
}

/// Whether a port's device is plugged into its bridge and up.
fn wired(observed: &ObservedHost, device: &str, bridge: &str) -> bool {
    observed
        .links
        .get(device)
        .is_some_and(|l| l.up && l.master.as_deref() == Some(bridge))
}

impl Agent {
    pub fn new(cfg: AgentConfig, client: ServerClient, shared: Arc<Shared>) -> Agent {
        Agent {
            own: Ownership {
                namespace_prefix: cfg.agent.namespace_prefix.clone(),
            },
            driver: Driver::from_config(&cfg),
            cfg,
            client,
            view: HostView::default(),
            shared,
            reported: BTreeMap::new(),
            errors: BTreeMap::new(),
            desired: None,
            view_changed: true,
            dhcp_dirty: true,
            dhcp_failures: BTreeMap::new(),
        }
    }

    fn note(&mut self, key: &str, error: Option<String>) {
        match error {
            Some(e) => {
                if self.errors.get(key) != Some(&e) {
                    tracing::warn!(%key, error = %e, "cannot converge");
                    self.errors.insert(key.to_string(), e);
                }
            }
            None => {
                if self.errors.remove(key).is_some() {
                    tracing::info!(%key, "converged again");
                }
            }
        }
    }

    /// Asks the server for missing DHCP ports and gives back unneeded ones;
    /// returns whether the view changed.
    async fn settle_dhcp_ports(&mut self, d: &Desired) -> bool {
        let host = self.cfg.agent.host.clone();
        let mut changed = false;
        for net in &d.need_dhcp_port {
            match self.client.ensure_dhcp_port(&host, net).await {
                Ok(p) => {
                    self.note(&format!("dhcp-port {net}"), None);
                    // The feed brings it too; taking it now saves a round.
                    changed |= self.view.upsert_port(p);
                }
                Err(e) => self.note(&format!("dhcp-port {net}"), Some(e.to_string())),
            }
        }
        for net in &d.drop_dhcp_port {
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
                }
                Err(e) => self.note(&format!("dhcp-port {net}"), Some(e.to_string())),
            }
        }
        changed
    }

    /// One reconcile pass.
    pub async fn pass(&mut self) -> anyhow::Result<()> {
        if !self.view.initialized {
            return Ok(());
        }
        let started = Instant::now();
        // The desired state changes only with the view; between feed changes a
        // pass only looks for new taps, so it reuses what it computed.
        let mut desired = match self.desired.take() {
            Some(d) if !self.view_changed => d,
            _ => {
                self.dhcp_dirty = true;
                Arc::new(compute(&self.view, &self.cfg))
            }
        };
        self.view_changed = false;
        if (!desired.need_dhcp_port.is_empty() || !desired.drop_dhcp_port.is_empty())
            && self.settle_dhcp_ports(&desired).await
        {
            desired = Arc::new(compute(&self.view, &self.cfg));
            self.dhcp_dirty = true;
        }
        self.desired = Some(desired.clone());
        for (net, why) in &desired.problems {
            self.note(net, Some(why.clone()));
        }

        let (own, want) = (self.own.clone(), desired.host.clone());
        let (observed, applied) =
            tokio::task::spawn_blocking(move || -> anyhow::Result<(ObservedHost, usize)> {
                let host = Host::new();
                let observed = host.observe(&own).context("reading the host")?;
                let ops = plan(&want, &observed, &own);
                if ops.is_empty() {
                    return Ok((observed, 0));
                }
                for op in &ops {
                    tracing::debug!(?op, "applying");
                }
                host.apply(&ops).context("changing the host")?;
                Ok((host.observe(&own).context("reading the host")?, ops.len()))
            })
            .await
            .context("reconcile thread")??;
        let shared = self.shared.clone();
        let m = &shared.metrics;
        if applied > 0 {
            tracing::info!(ops = applied, "host changed");
            m.netlink_ops.fetch_add(applied as u64, Ordering::Relaxed);
        }

        if self.dhcp_dirty || !self.dhcp_failures.is_empty() {
            self.dhcp_failures = self.driver.sync(&desired.dhcp).await;
            self.dhcp_dirty = false;
            for net in desired.dhcp.keys() {
                let failure = self.dhcp_failures.get(net).cloned();
                self.note(&format!("dhcp {net}"), failure);
            }
        }
        let failures = &self.dhcp_failures;

        // Ports: ACTIVE once their device is on the bridge and up.
        let mut status = PortStatusReport {
            host: self.cfg.agent.host.clone(),
            active: Vec::new(),
            down: Vec::new(),
        };
        let mut ports_json = serde_json::Map::new();
        let (mut active, mut down) = (0u64, 0u64);
        for (port, (device, bridge)) in &desired.local_ports {
            let up = wired(&observed, device, bridge)
                && !self
                    .view
                    .port(port)
                    .is_some_and(|p| p.is_dhcp() && failures.contains_key(&p.network_id));
            if up {
                active += 1
            } else {
                down += 1
            }
            if self.reported.get(port) != Some(&up) {
                if up {
                    status.active.push(port.clone())
                } else {
                    status.down.push(port.clone())
                }
            }
            ports_json.insert(
                port.clone(),
                json!({"device": device, "bridge": bridge, "active": up}),
            );
        }
        if !status.active.is_empty() || !status.down.is_empty() {
            match self.client.port_status(&status).await {
                Ok(_) => {
                    for p in &status.active {
                        self.reported.insert(p.clone(), true);
                    }
                    for p in &status.down {
                        self.reported.insert(p.clone(), false);
                    }
                }
                Err(e) => self.note("port-status", Some(e.to_string())),
            }
        }
        let local: BTreeSet<&String> = desired.local_ports.keys().collect();
        self.reported.retain(|p, _| local.contains(p));

        let elapsed = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        m.passes.fetch_add(1, Ordering::Relaxed);
        m.pass_micros_total.fetch_add(elapsed, Ordering::Relaxed);
        m.last_pass_micros.store(elapsed, Ordering::Relaxed);
        m.ports_active.store(active, Ordering::Relaxed);
        m.ports_down.store(down, Ordering::Relaxed);
        m.networks
            .store(desired.host.bridges.len() as u64, Ordering::Relaxed);
        m.dhcp_networks
            .store(desired.dhcp.len() as u64, Ordering::Relaxed);
        m.dhcp_reservations.store(
            desired.dhcp.values().map(|s| s.hosts.len() as u64).sum(),
            Ordering::Relaxed,
        );
        let mut dhcp_text = String::new();
        self.driver.render_metrics(&mut dhcp_text);
        self.shared.dhcp_metrics.store(Arc::new(dhcp_text));
        let networks: Vec<_> = self
            .view
            .networks()
            .map(|n| {
                json!({
                    "id": n.id, "name": n.name, "type": n.network_type,
                    "segmentation_id": n.segmentation_id, "mtu": n.mtu,
                    "bridge": neutrino_agent_rpc::names::bridge(&n.id),
                    "problem": desired.problems.get(&n.id),
                })
            })
            .collect();
        self.shared.status.store(Arc::new(json!({
            "host": self.cfg.agent.host,
            "revision": self.view.revision,
            "networks": networks,
            "ports": ports_json,
            "dhcp": {"mode": self.cfg.dhcp.mode, "driver": self.driver.name(), "networks": self.driver.status()},
            "vteps": self.view.vteps,
            "errors": self.errors,
            "last_pass_ms": elapsed as f64 / 1000.0,
        })));
        Ok(())
    }

    fn apply_feed(&mut self, reply: FeedReply) -> bool {
        let m = &self.shared.metrics;
        if reply.snapshot {
            m.feed_snapshots.fetch_add(1, Ordering::Relaxed);
        } else {
            m.feed_deltas.fetch_add(1, Ordering::Relaxed);
        }
        m.last_feed_unix_ms.store(now_ms(), Ordering::Relaxed);
        let changed = self.view.apply(reply);
        self.view_changed |= changed;
        m.revision.store(self.view.revision, Ordering::Relaxed);
        changed
    }

    fn cursor(&self) -> Cursor {
        Cursor {
            since: self.view.revision,
            networks: self.view.held_networks(),
            agents_version: self.view.agents_version,
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
        dhcp_driver: cfg.dhcp.driver.clone(),
        physical_interface_mappings: cfg.l2.physical_interface_mappings.clone(),
        counters: BTreeMap::from([
            ("devices".to_string(), g(&m.ports_active) + g(&m.ports_down)),
            ("dhcp_networks".to_string(), g(&m.dhcp_networks)),
            ("dhcp_ports".to_string(), g(&m.dhcp_reservations)),
        ]),
        started_at,
    }
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

    // Heartbeats.
    let (force_status_tx, mut force_status_rx) = watch::channel(());
    {
        let (client, cfg, shared) = (client.clone(), cfg.clone(), shared.clone());
        tokio::spawn(async move {
            let mut tick =
                tokio::time::interval(Duration::from_secs(cfg.agent.report_interval_secs));
            let mut failing = false;
            loop {
                tick.tick().await;
                match client.report(&report_body(&cfg, &shared, started_at)).await {
                    Ok(_) => {
                        if failing {
                            tracing::info!("server reachable again");
                        }
                        failing = false;
                        // Re-send every port's status: the server may have restarted
                        // or marked this host down while it was unreachable.
                        let _ = force_status_tx.send(());
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
    }

    // The feed: strictly alternating with the reconciler, which moves the cursor.
    let (cursor_tx, mut cursor_rx) = watch::channel(Cursor::default());
    let (reply_tx, mut reply_rx) = mpsc::channel::<FeedReply>(1);
    {
        let (client, cfg, shared) = (client.clone(), cfg.clone(), shared.clone());
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
    }

    let mut agent = Agent::new(cfg.clone(), client, shared.clone());
    let mut tick =
        tokio::time::interval(Duration::from_millis(cfg.agent.resync_interval_ms.max(50)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(host = %cfg.agent.host, server = %cfg.agent.server_url, dhcp = ?cfg.dhcp.mode, driver = %cfg.dhcp.driver, "neutrino agent started");
    tokio::pin!(stop);
    loop {
        let run_pass = tokio::select! {
            Some(reply) = reply_rx.recv() => {
                let changed = agent.apply_feed(reply);
                let _ = cursor_tx.send(agent.cursor());
                changed
            }
            _ = tick.tick() => true,
            Ok(()) = force_status_rx.changed() => {
                agent.reported.clear();
                true
            }
            _ = &mut stop => break,
        };
        if run_pass && let Err(e) = agent.pass().await {
            shared.metrics.errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = format!("{e:#}"), "reconcile pass failed; retrying");
        }
    }
    agent.driver.shutdown().await;
    tracing::info!("neutrino agent stopped");
    Ok(())
}
