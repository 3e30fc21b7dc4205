//! The L2 worker: makes the kernel match the latest desired host and reports
//! which ports are wired. It runs beside the model loop (`reconcile`), so a
//! netlink dump of a host with thousands of links never delays a DHCP table
//! swap. A pass runs when the desired host changes, when a link the agent
//! cares about changes (a hypervisor plugged a tap), and on a slow timer as a
//! safety net. A pass with nothing to change writes nothing.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use neutrino_agent_rpc::PortStatusReport;
use neutrino_dataplane::{Host, ObservedHost, Ownership, plan};
use serde_json::json;
use tokio::sync::{Notify, watch};

use crate::client::ServerClient;
use crate::desired::Desired;
use crate::firewall::Firewall;
use crate::l3::L3Worker;
use crate::metrics::Shared;

/// Whether two desired states ask the same of the kernel.
fn same_host_state(a: &Desired, b: &Desired) -> bool {
    a.host == b.host
        && a.local_ports == b.local_ports
        && a.port_filters == b.port_filters
        && a.network_addresses == b.network_addresses
        && (Arc::ptr_eq(&a.groups, &b.groups) || a.groups == b.groups)
        && a.routers == b.routers
        && a.router_macs == b.router_macs
}

/// Whether a port's device is plugged into its bridge and up.
fn wired(observed: &ObservedHost, device: &str, bridge: &str) -> bool {
    observed
        .links
        .get(device)
        .is_some_and(|l| l.up && l.master.as_deref() == Some(bridge))
}

pub struct L2Worker {
    pub host: String,
    pub own: Ownership,
    pub client: ServerClient,
    pub shared: Arc<Shared>,
    pub resync: Duration,
    /// port id → ACTIVE as last told to the server.
    reported: BTreeMap<String, bool>,
    /// port id → whether the last pass found its device wired.
    wired: BTreeMap<String, bool>,
    /// What the last pass that succeeded made the host match.
    done: Option<Arc<Desired>>,
    /// Security groups and anti-spoofing (None: `firewall.enabled = false`).
    firewall: Option<Arc<Mutex<Firewall>>>,
    /// Routers' NAT, announcements and connection flushes.
    l3: Arc<Mutex<L3Worker>>,
}

impl L2Worker {
    pub fn new(
        host: String,
        own: Ownership,
        client: ServerClient,
        shared: Arc<Shared>,
        resync: Duration,
        firewall: Option<Firewall>,
        l3: L3Worker,
    ) -> Self {
        L2Worker {
            l3: Arc::new(Mutex::new(l3)),
            firewall: firewall.map(|f| Arc::new(Mutex::new(f))),
            host,
            own,
            client,
            shared,
            resync,
            reported: BTreeMap::new(),
            wired: BTreeMap::new(),
            done: None,
        }
    }

    /// Runs until `desired` closes. `applied` is signalled after every change
    /// to the host (the model loop retries DHCP endpoints that were missing).
    pub async fn run(
        mut self,
        mut desired: watch::Receiver<Option<Arc<Desired>>>,
        link_changed: Arc<Notify>,
        mut resend_status: watch::Receiver<()>,
        applied: Arc<Notify>,
    ) {
        let mut tick = tokio::time::interval(self.resync);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // `kernel`: the host may differ from what the last pass saw.
            let kernel = tokio::select! {
                r = desired.changed() => {
                    if r.is_err() {
                        return;
                    }
                    false
                }
                _ = link_changed.notified() => true,
                _ = tick.tick() => true,
                Ok(()) = resend_status.changed() => {
                    self.reported.clear();
                    true
                }
            };
            let Some(want) = desired.borrow_and_update().clone() else {
                continue;
            };
            // A newer view of the model: what was told before is judged
            // against it again (the server may have changed a port's status).
            if self.done.as_ref().is_some_and(|d| !Arc::ptr_eq(d, &want)) {
                self.reported.clear();
            }
            // Only the model moved, and not in anything L2 cares about
            // (e.g. a DHCP option): nothing to read or write.
            if !kernel
                && self
                    .done
                    .as_ref()
                    .is_some_and(|d| same_host_state(d, &want))
            {
                // The server's view of port states may have moved, though:
                // correct it from what the last pass saw.
                self.report(&want).await;
                self.done = Some(want);
                continue;
            }
            match self.pass(&want).await {
                Ok(changed) => {
                    if changed {
                        applied.notify_one();
                    }
                }
                Err(e) => {
                    self.done = None;
                    self.shared.metrics.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = format!("{e:#}"), "L2 pass failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    link_changed.notify_one();
                }
            }
        }
    }

    /// Tells the server the state of every local port whose state in the
    /// server's view (from the feed) differs from what the host has; not again
    /// until a newer view arrives, so a pending echo is not re-sent.
    async fn report(&mut self, want: &Desired) {
        let mut report = PortStatusReport {
            host: self.host.clone(),
            active: Vec::new(),
            down: Vec::new(),
        };
        for port in want.local_ports.keys() {
            let up = self.wired.get(port).copied().unwrap_or(false);
            if want.server_active.contains(port) != up && self.reported.get(port) != Some(&up) {
                if up {
                    report.active.push(port.clone())
                } else {
                    report.down.push(port.clone())
                }
            }
        }
        if !report.active.is_empty() || !report.down.is_empty() {
            match self.client.port_status(&report).await {
                Ok(_) => {
                    for p in &report.active {
                        self.reported.insert(p.clone(), true);
                    }
                    for p in &report.down {
                        self.reported.insert(p.clone(), false);
                    }
                }
                // Not recorded as reported: the next pass sends them again.
                Err(e) => tracing::warn!(error = %e, "cannot report port status"),
            }
        }
        self.reported
            .retain(|p, _| want.local_ports.contains_key(p));
    }

    /// One pass; returns whether it changed the host.
    async fn pass(&mut self, want: &Arc<Desired>) -> anyhow::Result<bool> {
        let started = Instant::now();
        let (own, host_want) = (self.own.clone(), want.host.clone());
        let (firewall, fw_want) = (self.firewall.clone(), want.clone());
        let l3 = self.l3.clone();
        let shared = self.shared.clone();
        let (observed, applied) =
            tokio::task::spawn_blocking(move || -> anyhow::Result<(ObservedHost, usize)> {
                // Filters first: a port's rules exist before its tap joins
                // the bridge, so it is never on the network unfiltered.
                if let Some(fw) = firewall {
                    let mut fw = fw.lock().unwrap_or_else(|e| e.into_inner());
                    let p = fw.sync(&fw_want).context("programming the firewall")?;
                    let m = &shared.metrics;
                    m.firewall_ports
                        .store(fw_want.port_filters.len() as u64, Ordering::Relaxed);
                    if !p.is_empty() {
                        tracing::info!(
                            commands = p.commands,
                            elements = p.elements,
                            chains = p.chains_written,
                            "firewall changed"
                        );
                        m.firewall_syncs.fetch_add(1, Ordering::Relaxed);
                        m.firewall_commands
                            .fetch_add(p.commands as u64, Ordering::Relaxed);
                        m.firewall_elements
                            .fetch_add(p.elements as u64, Ordering::Relaxed);
                        m.firewall_chains_written
                            .fetch_add(p.chains_written as u64, Ordering::Relaxed);
                    }
                }
                let host = Host::new();
                let observed = host.observe(&own).context("reading the host")?;
                let ops = plan(&host_want, &observed, &own);
                let observed = if ops.is_empty() {
                    observed
                } else {
                    for op in &ops {
                        tracing::debug!(?op, "applying");
                    }
                    host.apply(&ops).context("changing the host")?;
                    host.observe(&own).context("reading the host")?
                };
                // Routers' NAT once their namespaces and legs exist.
                if !fw_want.routers.is_empty()
                    || ops
                        .iter()
                        .any(|o| matches!(o, neutrino_dataplane::Op::DeleteNamespace { .. }))
                {
                    let mut l3 = l3.lock().unwrap_or_else(|e| e.into_inner());
                    let o = l3.sync(&fw_want).context("routers")?;
                    if o.commands + o.announced + o.flushed > 0 {
                        tracing::info!(
                            commands = o.commands,
                            announced = o.announced,
                            flushed = o.flushed,
                            "routers changed"
                        );
                    }
                }
                Ok((observed, ops.len()))
            })
            .await
            .context("L2 thread")??;
        let shared = self.shared.clone();
        let m = &shared.metrics;
        if applied > 0 {
            tracing::info!(ops = applied, "host changed");
            m.netlink_ops.fetch_add(applied as u64, Ordering::Relaxed);
        }

        // Ports: ACTIVE once their device is on the bridge and up.
        let mut ports = serde_json::Map::new();
        let (mut active, mut down) = (0u64, 0u64);
        self.wired.clear();
        for (port, (device, bridge)) in &want.local_ports {
            let up = wired(&observed, device, bridge);
            if up {
                active += 1
            } else {
                down += 1
            }
            self.wired.insert(port.clone(), up);
            ports.insert(
                port.clone(),
                json!({"device": device, "bridge": bridge, "active": up}),
            );
        }
        self.report(want).await;

        let elapsed = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        m.passes.fetch_add(1, Ordering::Relaxed);
        m.pass_micros_total.fetch_add(elapsed, Ordering::Relaxed);
        m.last_pass_micros.store(elapsed, Ordering::Relaxed);
        m.ports_active.store(active, Ordering::Relaxed);
        m.ports_down.store(down, Ordering::Relaxed);
        self.shared.ports.store(Arc::new(json!({
            "ports": ports,
            "last_pass_ms": elapsed as f64 / 1000.0,
        })));
        self.done = Some(want.clone());
        Ok(applied > 0)
    }
}
