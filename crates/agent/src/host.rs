//! The host step: makes the kernel match the latest desired host and reports
//! which ports are wired. One pass is four steps, and their order is the
//! rule:
//!
//! 1. `sync_firewall`: a port's filters exist before its tap joins the
//!    bridge, so it is never on its network unfiltered (while the firewall
//!    cannot be programmed, no port with port security is attached);
//! 2. `sync_links`: bridges, uplinks, taps, forwarding entries, and the
//!    namespaces, legs and routes of DHCP ports and routers (netlink);
//! 3. `sync_routers`: the routers' NAT, once their namespaces and legs
//!    exist;
//! 4. the metadata listeners (`metadata::MetadataListeners`), in the
//!    namespaces step 2 made;
//! 5. `report_ports`: always, whatever failed before.
//!
//! After a pass that read the host, the step publishes the DHCP endpoints it
//! found ([`DhcpEndpoints`]: each DHCP namespace and the DHCP port
//! interfaces up in it). The model loop hands a network to the DHCP driver
//! only once its endpoint is there, so the driver always comes after step 2
//! for that network: a new network is served on the first try, and the
//! loop is woken for it by this signal, not by a retry.
//!
//! A failure holds back only what it concerns: `Host::apply` skips only the
//! ops that depend on a failed one, each failure becomes a [`Problem`] named
//! after its network or router, and that object alone is retried on its own
//! backoff (500 ms doubling to 30 s) while every other network, router and
//! port converges.
//!
//! It runs beside the model loop (`reconcile`), so a netlink dump of a host
//! with thousands of links never delays a DHCP table swap. A pass runs when
//! the desired host changes, when a link the agent cares about changes (a
//! hypervisor plugged a tap), when a failed object is due for a retry, and on
//! a slow timer as a safety net. A pass with nothing to change writes
//! nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use neutrino_agent_rpc::PortStatusReport;
use neutrino_dataplane::{Host, Object, ObservedHost, Op, Ownership, plan};
use neutrino_net::names;
use serde_json::json;
use tokio::sync::{Notify, watch};

use crate::client::ServerClient;
use crate::desired::Desired;
use crate::dhcp::DhcpEndpoints;
use crate::firewall::Firewall;
use crate::l3::L3Worker;
use crate::metadata::MetadataListeners;
use crate::metrics::Shared;
use crate::problem::{Backoff, Problem, Problems};

/// Whether two desired states ask the same of the kernel.
fn same_host_state(a: &Desired, b: &Desired) -> bool {
    a.host == b.host
        && a.local_ports == b.local_ports
        && a.port_filters == b.port_filters
        && a.network_addresses == b.network_addresses
        && (Arc::ptr_eq(&a.groups, &b.groups) || a.groups == b.groups)
        && a.routers == b.routers
        && a.router_macs == b.router_macs
        && a.metadata == b.metadata
}

/// Whether a port's device is plugged into its bridge and up.
fn wired(observed: &ObservedHost, device: &str, bridge: &str) -> bool {
    observed
        .links
        .get(device)
        .is_some_and(|l| l.up && l.master.as_deref() == Some(bridge))
}

/// The DHCP endpoints among what was observed: each owned DHCP namespace
/// with the DHCP port interfaces (`ns-…`) that are up in it.
fn dhcp_endpoints(own: &Ownership, observed: &ObservedHost) -> DhcpEndpoints {
    let dhcp = format!("{}{}", own.namespace_prefix, names::DHCP_NAMESPACE_PREFIX);
    observed
        .namespaces
        .iter()
        .filter(|(name, _)| name.starts_with(&dhcp))
        .map(|(name, ns)| {
            let up = ns
                .links
                .values()
                .filter(|l| l.up && l.name.starts_with(names::DHCP_NS_SIDE_PREFIX))
                .map(|l| l.name.clone())
                .collect();
            (name.clone(), up)
        })
        .collect()
}

/// A host object whose op failed: retried when its backoff ends.
struct Held {
    backoff: Backoff,
    /// The last failure, as its problem says it.
    error: String,
}

/// What the blocking part of a pass found.
#[derive(Default)]
struct Outcome {
    /// None when the host could not be read.
    observed: Option<ObservedHost>,
    /// Ops that took effect.
    applied: usize,
    /// Objects whose op failed, with the error.
    failed: BTreeMap<Object, String>,
    /// Objects whose op was skipped: it waits for another that failed.
    skipped: BTreeSet<Object>,
    /// Every object the plan had an op for (None: there was no plan, the
    /// host could not be read).
    planned: Option<BTreeSet<Object>>,
    /// Failures retried with the whole pass (firewall, routers' NAT,
    /// reading the host).
    problems: BTreeMap<Problem, String>,
}

impl Outcome {
    fn problem(&mut self, p: Problem, error: String) {
        match self.problems.get_mut(&p) {
            Some(e) => {
                e.push_str("; ");
                e.push_str(&error);
            }
            None => {
                self.problems.insert(p, error);
            }
        }
    }
}

pub struct HostStep {
    pub host: String,
    pub own: Ownership,
    pub client: ServerClient,
    pub shared: Arc<Shared>,
    pub resync: Duration,
    /// port id → ACTIVE as last told to the server.
    reported: BTreeMap<String, bool>,
    /// port id → whether the last pass found its device wired.
    wired: BTreeMap<String, bool>,
    /// What the last pass that fully converged made the host match.
    done: Option<Arc<Desired>>,
    /// Security groups and anti-spoofing (None: `firewall.enabled = false`).
    firewall: Option<Arc<Mutex<Firewall>>>,
    /// Routers' NAT, announcements and connection flushes.
    l3: Arc<Mutex<L3Worker>>,
    /// Host objects whose op failed, backing off.
    held: BTreeMap<Object, Held>,
    /// The backoff of what is retried with the whole pass.
    pass_backoff: Option<Backoff>,
    problems: Problems,
    /// The metadata service's listeners in this host's namespaces.
    metadata: MetadataListeners,
}

impl HostStep {
    pub fn new(
        host: String,
        own: Ownership,
        client: ServerClient,
        shared: Arc<Shared>,
        resync: Duration,
        firewall: Option<Firewall>,
        l3: L3Worker,
    ) -> Self {
        HostStep {
            metadata: MetadataListeners::new(client.clone(), shared.metadata.clone()),
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
            held: BTreeMap::new(),
            pass_backoff: None,
            problems: Problems::default(),
        }
    }

    /// When the next failed object is due for a retry.
    fn next_retry(&self) -> Option<Instant> {
        self.held
            .values()
            .map(|h| h.backoff.until)
            .chain(self.pass_backoff.map(|b| b.until))
            .min()
    }

    /// Runs until `desired` closes. `endpoints` gets the DHCP endpoints found
    /// after every pass that read the host, when they differ from the last
    /// (None until the first: the model loop serves no DHCP before).
    pub async fn run(
        mut self,
        mut desired: watch::Receiver<Option<Arc<Desired>>>,
        link_changed: Arc<Notify>,
        mut resend_status: watch::Receiver<()>,
        endpoints: watch::Sender<Option<Arc<DhcpEndpoints>>>,
    ) {
        let mut tick = tokio::time::interval(self.resync);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let retry = self.next_retry();
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
                _ = sleep_until(retry), if retry.is_some() => true,
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
            // Only the model moved, and not in anything the host step cares
            // about (e.g. a DHCP option): nothing to read or write.
            if !kernel
                && self
                    .done
                    .as_ref()
                    .is_some_and(|d| same_host_state(d, &want))
            {
                // The server's view of port states may have moved, though:
                // correct it from what the last pass saw.
                self.report_ports(&want).await;
                self.done = Some(want);
                continue;
            }
            if let Some(found) = self.pass(&want).await {
                endpoints.send_if_modified(|last| {
                    let changed = last.as_deref() != Some(&found);
                    if changed {
                        *last = Some(Arc::new(found));
                    }
                    changed
                });
            }
        }
    }

    /// Tells the server the state of every local port whose state in the
    /// server's view (from the feed) differs from what the host has; not again
    /// until a newer view arrives, so a pending echo is not re-sent.
    async fn report_ports(&mut self, want: &Desired) {
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

    /// One pass; returns the DHCP endpoints the host holds after it (None
    /// when the host could not be read).
    async fn pass(&mut self, want: &Arc<Desired>) -> Option<DhcpEndpoints> {
        let started = Instant::now();
        let held: BTreeSet<Object> = self
            .held
            .iter()
            .filter(|(_, h)| !h.backoff.due(started))
            .map(|(o, _)| o.clone())
            .collect();
        let (own, firewall, l3, shared) = (
            self.own.clone(),
            self.firewall.clone(),
            self.l3.clone(),
            self.shared.clone(),
        );
        let job_want = want.clone();
        let job_held = held.clone();
        let out = tokio::task::spawn_blocking(move || {
            let mut out = Outcome::default();
            let firewall_ok = match firewall {
                Some(fw) => sync_firewall(&fw, &job_want, &shared, &mut out),
                None => true,
            };
            let ops = sync_links(&own, &job_want, firewall_ok, &job_held, &mut out);
            sync_routers(&l3, &job_want, &ops, &mut out);
            out
        })
        .await
        .unwrap_or_else(|e| {
            let mut out = Outcome::default();
            out.problem(Problem::Host("agent".into()), format!("host step: {e}"));
            out
        });

        // The listeners, once their namespaces exist.
        let mut out = out;
        for (id, e) in self.metadata.sync(&want.metadata).await {
            out.problem(Problem::Metadata(id), e);
        }
        self.shared
            .metadata_status
            .store(Arc::new(self.metadata.status()));

        let m = &self.shared.metrics;
        if out.applied > 0 {
            tracing::info!(ops = out.applied, "host changed");
            m.netlink_ops
                .fetch_add(out.applied as u64, Ordering::Relaxed);
        }
        self.note_failures(want, &held, &out, started);

        // Ports: ACTIVE once their device is on the bridge and up. Without
        // a reading of the host, what the last pass saw stands.
        let mut ports = serde_json::Map::new();
        let (mut active, mut down) = (0u64, 0u64);
        if let Some(observed) = &out.observed {
            self.wired.clear();
            for (port, (device, bridge)) in &want.local_ports {
                self.wired
                    .insert(port.clone(), wired(observed, device, bridge));
            }
        }
        for (port, (device, bridge)) in &want.local_ports {
            let up = self.wired.get(port).copied().unwrap_or(false);
            if up {
                active += 1
            } else {
                down += 1
            }
            ports.insert(
                port.clone(),
                json!({"device": device, "bridge": bridge, "active": up}),
            );
        }
        self.report_ports(want).await;

        let m = &self.shared.metrics;
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
        // Only a pass that left nothing failing lets the next model-only
        // change skip the kernel.
        self.done = self.problems.is_empty().then(|| want.clone());
        out.observed.as_ref().map(|o| dhcp_endpoints(&self.own, o))
    }

    /// Keeps the backoff of every failed object, forgets those that
    /// converged or are no longer planned, and publishes the problems.
    fn note_failures(
        &mut self,
        want: &Desired,
        held: &BTreeSet<Object>,
        out: &Outcome,
        now: Instant,
    ) {
        let mut next: BTreeMap<Object, Held> = BTreeMap::new();
        for (o, error) in &out.failed {
            let before = self.held.get(o).map(|h| h.backoff);
            let backoff = Backoff::failed(before, now);
            tracing::debug!(object = %o, retry_in = ?backoff.delay(), "host object failed");
            next.insert(
                o.clone(),
                Held {
                    backoff,
                    error: error.clone(),
                },
            );
        }
        // Still waiting (held back, or due but skipped behind another
        // failure: its backoff goes on growing), and still needing an op.
        for (o, h) in std::mem::take(&mut self.held) {
            let needed = out.planned.as_ref().is_none_or(|p| p.contains(&o));
            if (held.contains(&o) || out.skipped.contains(&o)) && needed {
                next.entry(o).or_insert(h);
            }
        }
        self.held = next;
        self.pass_backoff = if out.problems.is_empty() {
            None
        } else {
            Some(Backoff::failed(self.pass_backoff, now))
        };

        let mut problems: BTreeMap<Problem, String> = out.problems.clone();
        for (o, h) in &self.held {
            let e = problems.entry(problem_of(want, o)).or_default();
            if !e.is_empty() {
                e.push_str("; ");
            }
            e.push_str(&format!("{o}: {}", h.error));
        }
        if !problems.is_empty() {
            self.shared.metrics.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.problems.replace(problems);
        self.shared.host_problems.store(self.problems.snapshot());
    }
}

async fn sleep_until(t: Option<Instant>) {
    if let Some(t) = t {
        tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await;
    }
}

/// Step 1: security groups and anti-spoofing; returns whether the kernel
/// holds the filters `want` asks for.
fn sync_firewall(fw: &Mutex<Firewall>, want: &Desired, shared: &Shared, out: &mut Outcome) -> bool {
    let mut fw = fw.lock().unwrap_or_else(|e| e.into_inner());
    let p = match fw.sync(want) {
        Ok(p) => p,
        Err(e) => {
            out.problem(Problem::Firewall, format!("programming the firewall: {e}"));
            return false;
        }
    };
    let m = &shared.metrics;
    m.firewall_ports
        .store(want.port_filters.len() as u64, Ordering::Relaxed);
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
    true
}

/// Step 2: the links, namespaces and routes; returns the ops planned. Ops
/// on `held` objects are skipped, and so, while the firewall is not
/// programmed (`firewall_ok` false), is every attachment of a filtered tap.
fn sync_links(
    own: &Ownership,
    want: &Desired,
    firewall_ok: bool,
    held: &BTreeSet<Object>,
    out: &mut Outcome,
) -> Vec<Op> {
    let host = Host::new();
    let observed = match host.observe(own) {
        Ok(o) => o,
        Err(e) => {
            out.problem(
                Problem::Host("links".into()),
                format!("reading the host: {e}"),
            );
            return Vec::new();
        }
    };
    let mut ops = plan(&want.host, &observed, own);
    if !firewall_ok {
        ops.retain(
            |op| !matches!(op, Op::SetMaster { link, .. } if want.port_filters.contains_key(link)),
        );
    }
    out.planned = Some(ops.iter().flat_map(Op::objects).collect());
    if ops.is_empty() {
        out.observed = Some(observed);
        return ops;
    }
    for op in &ops {
        tracing::debug!(?op, "applying");
    }
    let mut applied = ops.len();
    if let Err(errors) = host.apply_holding(&ops, held) {
        applied -= errors.failed.len() + errors.skipped.len();
        for e in errors.failed {
            let message = format!("{:?}: {}", e.op, e.source);
            out.failed.entry(e.object).or_insert(message);
        }
        for (index, waits_for) in &errors.skipped {
            tracing::debug!(op = ?ops[*index], %waits_for, "skipped");
            out.skipped.extend(ops[*index].objects().into_iter().next());
        }
    }
    out.applied = applied;
    match host.observe(own) {
        Ok(o) => out.observed = Some(o),
        Err(e) => out.problem(
            Problem::Host("links".into()),
            format!("reading the host: {e}"),
        ),
    }
    ops
}

/// Step 3: the routers' NAT, now that their namespaces exist.
fn sync_routers(l3: &Mutex<L3Worker>, want: &Desired, ops: &[Op], out: &mut Outcome) {
    if want.routers.is_empty() && !ops.iter().any(|o| matches!(o, Op::DeleteNamespace { .. })) {
        return;
    }
    let mut l3 = l3.lock().unwrap_or_else(|e| e.into_inner());
    let (o, errors) = l3.sync(want);
    if o.commands + o.announced + o.flushed > 0 {
        tracing::info!(
            commands = o.commands,
            announced = o.announced,
            flushed = o.flushed,
            "routers changed"
        );
    }
    for (router, e) in errors {
        out.problem(Problem::Router(router), format!("{e:#}"));
    }
}

/// The network or router a host object belongs to.
fn problem_of(want: &Desired, o: &Object) -> Problem {
    let in_namespace = |ns: &str| -> Problem {
        if let Some((id, _)) = want.routers.iter().find(|(_, r)| r.namespace == ns) {
            return Problem::Router(id.clone());
        }
        want.host
            .endpoints
            .values()
            .find(|e| e.namespace == ns)
            .and_then(|e| want.bridge_networks.get(&e.bridge))
            .map(|net| Problem::Network(net.clone()))
            .unwrap_or_else(|| Problem::Host(ns.to_owned()))
    };
    match o {
        Object::Namespace(ns) | Object::NsLink { namespace: ns, .. } => in_namespace(ns),
        Object::Link(name) => {
            if let Some(e) = want.host.endpoints.get(name) {
                return in_namespace(&e.namespace);
            }
            let bridge = want.host.bridges.values().find(|b| {
                &b.name == name
                    || b.members.contains(name)
                    || match &b.uplink {
                        neutrino_dataplane::Uplink::None => false,
                        neutrino_dataplane::Uplink::Physical { ifname } => ifname == name,
                        neutrino_dataplane::Uplink::Vxlan(v) => &v.name == name,
                    }
            });
            bridge
                .and_then(|b| want.bridge_networks.get(&b.name))
                .map(|net| Problem::Network(net.clone()))
                .unwrap_or_else(|| Problem::Host(name.clone()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use neutrino_dataplane::{Bridge, NsEndpoint, NsLink, ObservedNamespace, Uplink, Vxlan};

    #[test]
    fn dhcp_endpoints_are_the_dhcp_port_interfaces_up_in_dhcp_namespaces() {
        let link = |name: &str, up| NsLink {
            name: name.into(),
            index: 2,
            mtu: 1450,
            up,
            mac: None,
            addrs: BTreeSet::new(),
            peer_index: Some(7),
        };
        let ns = |links: Vec<NsLink>| ObservedNamespace {
            links: links.into_iter().map(|l| (l.name.clone(), l)).collect(),
            ..Default::default()
        };
        let mut observed = ObservedHost::default();
        observed.namespaces.insert(
            "p-qdhcp-n1".into(),
            ns(vec![link("lo", true), link("ns-port1", true)]),
        );
        // Created, its interface not up yet.
        observed
            .namespaces
            .insert("p-qdhcp-n2".into(), ns(vec![link("ns-port2", false)]));
        observed
            .namespaces
            .insert("p-qrouter-r1".into(), ns(vec![link("qr-leg", true)]));
        let own = Ownership {
            namespace_prefix: "p-".into(),
        };
        assert_eq!(
            dhcp_endpoints(&own, &observed),
            BTreeMap::from([
                (
                    "p-qdhcp-n1".to_string(),
                    BTreeSet::from(["ns-port1".to_string()])
                ),
                ("p-qdhcp-n2".to_string(), BTreeSet::new()),
            ])
        );
    }

    #[test]
    fn failures_are_named_after_their_network_or_router() {
        let mut want = Desired::default();
        want.host.bridges.insert(
            "brqnet1".into(),
            Bridge {
                name: "brqnet1".into(),
                mtu: 1450,
                uplink: Uplink::Vxlan(Vxlan {
                    name: "vxlan-7".into(),
                    vni: 7,
                    local: [192, 0, 2, 1].into(),
                    dstport: 4789,
                    flood: BTreeSet::new(),
                    macs: BTreeMap::new(),
                }),
                members: BTreeSet::from(["tapport1".to_string()]),
            },
        );
        want.bridge_networks.insert("brqnet1".into(), "net1".into());
        want.host.endpoints.insert(
            "qr-leg".into(),
            NsEndpoint {
                namespace: "qrouter-r1".into(),
                bridge: "brqnet1".into(),
                host_side: "qr-leg".into(),
                ns_side: "qr-leg".into(),
                mac: [2, 0, 0, 0, 0, 1].into(),
                mtu: 1450,
                addrs: BTreeSet::new(),
            },
        );
        want.routers.insert(
            "r1".into(),
            crate::desired::l3::RouterHere {
                namespace: "qrouter-r1".into(),
                nat: Default::default(),
            },
        );
        let net = Problem::Network("net1".into());
        for link in ["brqnet1", "vxlan-7", "tapport1"] {
            assert_eq!(problem_of(&want, &Object::Link(link.into())), net);
        }
        let router = Problem::Router("r1".into());
        assert_eq!(problem_of(&want, &Object::Link("qr-leg".into())), router);
        assert_eq!(
            problem_of(&want, &Object::Namespace("qrouter-r1".into())),
            router
        );
        assert_eq!(
            problem_of(&want, &Object::Link("vxlan-9".into())),
            Problem::Host("vxlan-9".into())
        );
    }
}
